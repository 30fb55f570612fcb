// virt-operator's wiring: seeded informers of the KubeVirt CR and of the
// operator's workloads in, the work queue and a recording fake of the API
// out, which keeps what is applied so the PKI read back is what was written.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type {
  V1APIService,
  V1CustomResourceDefinition,
  V1ConfigMap,
  V1DaemonSet,
  V1Deployment,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import type { KubeVirt } from '../../src/api/types.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { commonInstancetypes } from '../../src/operator/common-instancetypes.ts';
import { leafCertificates } from '../../src/operator/components.ts';
import { desiredInstall, KUBEVIRT_FINALIZER } from '../../src/operator/install.ts';
import { KubeVirtController, type InstallObject, type KubeVirtControllerApi } from '../../src/operator/kubevirt-controller.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { apiError, capturedEvents, capturedLog } from '../helpers/wiring.ts';

const NAMESPACE = 'kubevirt';
const NOW = new Date('2026-11-22T10:00:00Z');
const images = {
  image: 'registry:5000/kubevirt-ts/virt-ts:devel',
  launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: 'IfNotPresent',
};
const nameOf = (o: InstallObject) => `${o.kind}/${o.metadata?.name}`;

/** Records every call; applied objects are kept (and deleted ones dropped), so reads see what was written. */
class RecordingApi implements KubeVirtControllerApi {
  applied: InstallObject[] = [];
  deleted: InstallObject[] = [];
  /** deleteAll calls: kind and label selector. */
  deletedAll: string[] = [];
  readonly patches: JsonPatchOperation[][] = [];
  readonly statuses: KubeVirt[] = [];
  vmisLeft = false;
  readonly #stored = new Map<string, InstallObject>();

  async apply(object: InstallObject): Promise<void> {
    this.applied.push(object);
    this.#stored.set(`${nameOf(object)}@${object.metadata?.namespace}`, object);
  }

  async delete(object: InstallObject): Promise<void> {
    this.deleted.push(object);
    this.#stored.delete(`${nameOf(object)}@${object.metadata?.namespace}`);
  }

  async deleteAll(kind: string, labelSelector: string): Promise<void> {
    this.deletedAll.push(`${kind}?${labelSelector}`);
  }

  #read<T>(kind: string, namespace: string, name: string): T {
    const object = this.#stored.get(`${kind}/${name}@${namespace}`);
    if (!object) throw apiError(404, `${kind.toLowerCase()}s "${name}" not found`);
    return object as T;
  }

  async readSecret(namespace: string, name: string): Promise<V1Secret> {
    return this.#read('Secret', namespace, name);
  }

  async readConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    return this.#read('ConfigMap', namespace, name);
  }

  async readApiService(): Promise<V1APIService> {
    return { status: { conditions: [{ type: 'Available', status: 'True' }] } };
  }

  /** The CRDs of others found in the cluster, by name: none, unless a test installs them. */
  readonly crds = new Map<string, V1CustomResourceDefinition>();
  /** The service accounts outside the install, as namespace/name. */
  readonly serviceAccounts = new Set<string>();

  async readCrd(name: string): Promise<V1CustomResourceDefinition> {
    const crd = this.crds.get(name);
    if (!crd) throw apiError(404, `customresourcedefinitions "${name}" not found`);
    return crd;
  }

  async readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount> {
    if (!this.serviceAccounts.has(`${namespace}/${name}`)) throw apiError(404, `serviceaccounts "${name}" not found`);
    return { metadata: { namespace, name } };
  }

  /** The Services outside the install, by namespace/name: none, unless a test adds them. */
  readonly services = new Map<string, V1Service>();

  async readService(namespace: string, name: string): Promise<V1Service> {
    const service = this.services.get(`${namespace}/${name}`);
    if (!service) throw apiError(404, `services "${name}" not found`);
    return service;
  }

  async vmisExist(): Promise<boolean> {
    return this.vmisLeft;
  }

  async patchKubeVirt(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<KubeVirt>> {
    this.patches.push(patch);
    return { metadata: { name, namespace, resourceVersion: String(10 + this.patches.length) } } as Typed<KubeVirt>;
  }

  async replaceKubeVirtStatus(_namespace: string, _name: string, kv: KubeVirt): Promise<void> {
    this.statuses.push(kv);
  }
}

const kubevirt = (namespace = NAMESPACE, extra: Partial<KubeVirt['metadata']> = {}): Typed<KubeVirt> =>
  ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    spec: {},
    metadata: { name: 'kubevirt', namespace, resourceVersion: '5', generation: 1, ...extra },
  }) as Typed<KubeVirt>;

const readyDeployment = (name: string) =>
  ({
    metadata: { name, namespace: NAMESPACE, generation: 1 },
    spec: { replicas: 2 },
    status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, updatedReplicas: 2 },
  }) as V1Deployment;

const readyHandler = {
  metadata: { name: 'virt-handler', namespace: NAMESPACE, generation: 1 },
  status: { observedGeneration: 1, desiredNumberScheduled: 1, numberReady: 1, updatedNumberScheduled: 1 },
} as V1DaemonSet;

function setup(t: TestContext, kubevirts: Typed<KubeVirt>[] = []) {
  const informers = {
    kubevirts: new SeededInformer<Typed<KubeVirt>>(kubevirts),
    deployments: new SeededInformer<V1Deployment>([
      readyDeployment('virt-api'),
      readyDeployment('virt-controller'),
      readyDeployment('cdi-controller'),
    ]),
    daemonsets: new SeededInformer<V1DaemonSet>([readyHandler]),
  };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  // Each reconcile queues its CR again for later; those timers end with the queue.
  t.after(() => queue.shutDown());
  const { record, events } = capturedEvents();
  const { log } = capturedLog();
  const controller = new KubeVirtController({ api, informers, queue, namespace: NAMESPACE, images, now: () => NOW, record, log });
  return { informers, api, queue, events, controller };
}

const installNames = (cdi = true) =>
  desiredInstall({ namespace: NAMESPACE, ...images, caBundle: '', cdi }).map((o) => nameOf(o as InstallObject));
const pkiNames = ['Secret/kubevirt-ca', 'ConfigMap/kubevirt-ca', ...leafCertificates(NAMESPACE).map((l) => `Secret/${l.secret}`)];
const uploadKey = 'Secret/kubevirt-cdi-upload-token-key';
const catalogueRemoval = [
  'VirtualMachineClusterInstancetype?app.kubernetes.io/managed-by=virt-operator',
  'VirtualMachineClusterPreference?app.kubernetes.io/managed-by=virt-operator',
];
const fillPodCa = 'Secret/kubevirt-cdi-fill-pod-ca';

test('a KubeVirt CR event queues it; its reconcile issues the PKI, applies the install and writes the status Deployed', async (t) => {
  const { informers, api, queue, events, controller } = setup(t);
  informers.kubevirts.upsert(kubevirt('elsewhere'));
  assert.equal(queue.length, 0, "a CR outside the operator's namespace is not its business");
  informers.kubevirts.upsert(kubevirt());
  assert.equal(await queue.get(), 'kubevirt/kubevirt');
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(api.patches, [[{ op: 'add', path: '/metadata/finalizers', value: [KUBEVIRT_FINALIZER] }]]);
  // Then, with every component ready, the catalogue of common instance types and preferences.
  const catalogue = commonInstancetypes().map((o) => `${o.kind}/${o.metadata.name}`);
  assert.deepEqual(api.applied.map(nameOf), [...pkiNames, uploadKey, fillPodCa, ...installNames(), ...catalogue]);
  assert.ok(catalogue.includes('VirtualMachineClusterInstancetype/u1.medium'));
  const [status] = api.statuses;
  assert.equal(status.status?.phase, 'Deployed');
  assert.equal(status.metadata.resourceVersion, '11', 'written at the version the finalizer patch returned');
  assert.deepEqual(
    events.map((e) => e.reason),
    ['CARotated', 'Deployed'],
  );
});

test('an unchanged install is not applied again; deleting a managed Deployment queues the CR and re-applies it', async (t) => {
  const { informers, api, queue, controller } = setup(t, [kubevirt()]);
  await controller.reconcile('kubevirt/kubevirt');
  api.applied = [];
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(api.applied, [], 'the PKI read back is current and the install unchanged');
  informers.deployments.remove(readyDeployment('virt-api'));
  assert.equal(await queue.get(), 'kubevirt/kubevirt');
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(api.applied.map(nameOf), installNames());
  assert.equal(api.statuses.at(-1)?.status?.phase, 'Deploying');
});

test('a deleted CR is uninstalled, in reverse order with its PKI, once no VMI is left', async (t) => {
  const deleting = kubevirt(NAMESPACE, { deletionTimestamp: NOW.toISOString(), finalizers: [KUBEVIRT_FINALIZER, 'other'] });
  const { api, controller } = setup(t, [deleting]);
  api.vmisLeft = true;
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(api.deleted, [], 'VMIs block the uninstall');
  api.vmisLeft = false;
  await controller.reconcile('kubevirt/kubevirt');
  const [ca, ...leaves] = pkiNames.filter((n) => n.startsWith('Secret/'));
  assert.deepEqual(api.deleted.map(nameOf), [...installNames().reverse(), ca, uploadKey, fillPodCa, ...leaves, 'ConfigMap/kubevirt-ca']);
  assert.deepEqual(api.deletedAll, catalogueRemoval, 'the catalogue the operator made goes too');
  assert.deepEqual(api.patches, [[{ op: 'replace', path: '/metadata/finalizers', value: ['other'] }]]);
});

test("with the Prometheus Operator's CRDs and the CR's monitoring account, the install has the ServiceMonitor, rules and RBAC; they go with the CRDs", async (t) => {
  const kv = kubevirt();
  kv.spec = { monitorNamespace: 'obs', monitorAccount: 'prom' };
  const { api, informers, controller } = setup(t, [kv]);
  for (const crd of ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com'])
    api.crds.set(crd, { metadata: { name: crd }, spec: {} as V1CustomResourceDefinition['spec'] });
  await controller.reconcile('kubevirt/kubevirt');
  assert.ok(!api.applied.some((o) => o.kind === 'ServiceMonitor'), 'no account, no monitoring objects');

  api.serviceAccounts.add('monitoring/prometheus-k8s');
  await controller.reconcile('kubevirt/kubevirt');
  assert.ok(!api.applied.some((o) => o.kind === 'ServiceMonitor'), "upstream's default account does not stand in for the CR's");

  api.serviceAccounts.add('obs/prom');
  informers.kubevirts.upsert({ ...kv, metadata: { ...kv.metadata, resourceVersion: '6' } });
  await controller.reconcile('kubevirt/kubevirt');
  const at = (kind: string) => api.applied.find((o) => o.kind === kind);
  assert.equal(at('ServiceMonitor')?.metadata?.namespace, 'obs');
  assert.equal(at('PrometheusRule')?.metadata?.namespace, NAMESPACE);
  assert.equal(at('PrometheusRule')?.metadata?.name, 'prometheus-kubevirt-rules');
  const binding = api.applied.find((o) => o.kind === 'RoleBinding' && o.metadata?.name === 'kubevirt-monitoring') as
    | (InstallObject & { subjects: unknown[] })
    | undefined;
  assert.deepEqual(binding?.subjects, [{ kind: 'ServiceAccount', namespace: 'obs', name: 'prom' }]);

  api.deleted = [];
  api.crds.delete('servicemonitors.monitoring.coreos.com');
  informers.kubevirts.upsert({ ...kv, metadata: { ...kv.metadata, resourceVersion: '7' } });
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(
    api.deleted.map((o) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`),
    [
      'Role/kubevirt/kubevirt-monitoring',
      'RoleBinding/kubevirt/kubevirt-monitoring',
      'ServiceMonitor/obs/prometheus-kubevirt-rules',
      'ServiceMonitor/kubevirt/prometheus-kubevirt-rules',
    ],
    'without ServiceMonitors the account has no role either; the rules stay',
  );
});

test('a Prometheus Service in a monitoring namespace gives the web console its address; without one, the console keeps its own history', async (t) => {
  const kv = kubevirt();
  const { api, informers, controller } = setup(t, [kv]);
  const consoleArgs = () => {
    const deployment = api.applied.findLast((o) => o.kind === 'Deployment' && o.metadata?.name === 'virt-console') as
      | (InstallObject & { spec: { template: { spec: { containers: { command: string[] }[] } } } })
      | undefined;
    return deployment?.spec.template.spec.containers[0].command.filter((arg) => /^--(prometheus-url|handler-metrics)=/.test(arg));
  };

  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(consoleArgs(), ['--prometheus-url=', '--handler-metrics=virt-handler-metrics.kubevirt.svc:8443']);
  assert.ok(
    api.applied.some((o) => nameOf(o) === 'Service/virt-handler-metrics'),
    'the headless Service the console finds virt-handlers by',
  );

  api.services.set('monitoring/prometheus', {
    metadata: { name: 'prometheus', namespace: 'monitoring' },
    spec: { ports: [{ name: 'web', port: 9090 }] },
  });
  informers.kubevirts.upsert({ ...kv, metadata: { ...kv.metadata, resourceVersion: '6' } });
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(consoleArgs(), [
    '--prometheus-url=http://prometheus.monitoring.svc:9090',
    '--handler-metrics=virt-handler-metrics.kubevirt.svc:8443',
  ]);

  // The CR's monitorNamespace is where it is looked for, instead of upstream's defaults.
  kv.spec = { monitorNamespace: 'obs' };
  api.services.set('obs/prometheus-k8s', { metadata: { name: 'prometheus-k8s', namespace: 'obs' }, spec: { ports: [{ port: 9090 }] } });
  informers.kubevirts.upsert({ ...kv, metadata: { ...kv.metadata, resourceVersion: '7' } });
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(consoleArgs()?.[0], '--prometheus-url=http://prometheus-k8s.obs.svc:9090');
});

test('commonInstancetypesDeployment.enabled false removes the catalogue once; enabled again, it is applied again', async (t) => {
  const kv = kubevirt();
  const { informers, api, controller } = setup(t, [kv]);
  await controller.reconcile('kubevirt/kubevirt');
  assert.ok(api.applied.some((o) => nameOf(o) === 'VirtualMachineClusterInstancetype/u1.medium'));
  assert.deepEqual(api.deletedAll, []);
  informers.kubevirts.upsert({ ...kv, spec: { configuration: { commonInstancetypesDeployment: { enabled: false } } } });
  api.applied = [];
  await controller.reconcile('kubevirt/kubevirt');
  await controller.reconcile('kubevirt/kubevirt');
  assert.deepEqual(api.deletedAll, catalogueRemoval, 'removed by its label, once');
  assert.ok(!api.applied.some((o) => String(o.kind).startsWith('VirtualMachineCluster')), 'and not applied');
  informers.kubevirts.upsert(kv);
  await controller.reconcile('kubevirt/kubevirt');
  assert.ok(
    api.applied.some((o) => nameOf(o) === 'VirtualMachineClusterPreference/fedora'),
    'applied again at once',
  );
});
