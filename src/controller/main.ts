// virt-controller: once it holds the leader lease, it fills its informers'
// caches and runs the VM, VMI, node, replica set and pool controllers over them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Lease,
  type V1Namespace,
  type V1Node,
  AppsV1Api,
  type V1ControllerRevision,
  type V1PersistentVolumeClaim,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import type {
  CDIConfig,
  MigrationPolicy,
  DataVolume,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstancetype,
  VirtualMachinePool,
  VirtualMachinePreference,
} from '../api/types.ts';
import { CDI_GROUP, CDI_VERSION } from '../contract/cdi.ts';
import { LAUNCHER_SELECTOR, launcherPodAsRead } from '../contract/launcher-pod.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { eventRecorder } from '../lib/events.ts';
import { serveHealth } from '../lib/health.ts';
import {
  chain,
  customInformer,
  loadKubeConfig,
  makeInformer,
  startInformers,
  withoutLastApplied,
  type CachedInformer,
  type Typed,
} from '../lib/kube.ts';
import { LeaderElector } from '../lib/leader.ts';
import { componentMetrics } from '../lib/metrics.ts';
import { controllerMetrics } from './metrics.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue } from '../lib/workqueue.ts';
import { ControllerKubeApi } from './kube-api.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS } from './node.ts';
import { NodeController, nodeAsRead } from './node-controller.ts';
import { PoolController } from './pool-controller.ts';
import { ReplicaSetController } from './replicaset-controller.ts';
import { NOT_SUPPORTED_KINDS } from '../contract/not-supported.ts';
import type { NotSupportedObject } from './not-supported.ts';
import { NotSupportedController } from './not-supported-controller.ts';
import { VmController } from './vm-controller.ts';
import { VmiController } from './vmi-controller.ts';
import { MigrationController, namespaceAsRead } from './migration-controller.ts';
import { EvacuationController } from './evacuation-controller.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('virt-controller');
const { values: flags } = parseArgs({
  // --no-leader-elect: one replica acting alone, without the lease.
  allowNegative: true,
  options: {
    'launcher-image': { type: 'string', default: 'registry:5000/kubevirt-ts/virt-launcher:devel' },
    'image-pull-policy': { type: 'string', default: 'IfNotPresent' },
    'node-heartbeat-timeout-seconds': { type: 'string', default: String(DEFAULT_HEARTBEAT_TIMEOUT_MS / 1000) },
    'leader-elect': { type: 'boolean', default: true },
    port: { type: 'string', default: '8443' },
    'cert-dir': { type: 'string', default: '/etc/virt-controller/certificates' },
  },
});
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';

// Made before any request is sent: the API client's requests are counted from the first.
const metrics = componentMetrics('virt-controller');
const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);

// Every replica watches the configuration and answers /healthz and /leader, the standby too, as upstream's.
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
await startInformers(log, clusterConfig.informer);
let leading = false;
const versionApi = kc.makeApiClient(VersionApi);
try {
  serveHealth({
    port: Number(flags.port),
    tls: () => ({ cert: readFileSync(join(flags['cert-dir']!, 'tls.crt')), key: readFileSync(join(flags['cert-dir']!, 'tls.key')) }),
    state: { apiserverVersion: () => versionApi.getCode(), configResourceVersion: clusterConfig.resourceVersion, leader: () => leading },
    log,
    metrics: metrics.registry,
  });
} catch (error) {
  // Without its certificate the controller still does its work; only the probes go unanswered.
  log.warning('not serving /healthz: no serving certificate', { error: String(error) });
}

// Ready to take the lead once it serves and has its configuration, as upstream's readiness.
metrics.setReady(true);

if (flags['leader-elect']) {
  const identity = process.env.POD_NAME ?? `${process.env.HOSTNAME}-${process.pid}`;
  const elector = new LeaderElector(kc, { namespace: NAMESPACE, name: 'virt-controller', identity }, log);
  // Giving the lease back on the way out lets the other replica lead at once.
  exitOnSignals(log, () => elector.release());
  await elector.run(() => process.exit(1));
} else {
  exitOnSignals(log);
}

const vms = customInformer<Typed<VirtualMachine>>(kc, 'kubevirt.io', 'v1', 'virtualmachines');
const vmis = customInformer<Typed<VirtualMachineInstance>>(kc, 'kubevirt.io', 'v1', 'virtualmachineinstances');
const pools = customInformer<Typed<VirtualMachinePool>>(kc, 'pool.kubevirt.io', 'v1beta1', 'virtualmachinepools');
// What a migration runs with: the cluster's settings, or a MigrationPolicy's matched by VMI and namespace labels.
const migrationPolicies = customInformer<Typed<MigrationPolicy>>(kc, 'migrations.kubevirt.io', 'v1alpha1', 'migrationpolicies');
const namespaces = makeInformer<V1Namespace>(
  kc,
  '/api/v1/namespaces',
  () => core.listNamespace() as Promise<KubernetesListObject<V1Namespace>>,
  undefined,
  namespaceAsRead,
);
// virt-handlers' node leases: a node whose lease ran out has stopped its guests (self-fencing).
const coordination = kc.makeApiClient(CoordinationV1Api);
const leases = makeInformer<V1Lease>(
  kc,
  `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`,
  () => coordination.listNamespacedLease({ namespace: NAMESPACE }) as Promise<KubernetesListObject<V1Lease>>,
  undefined,
  withoutLastApplied,
);
const migrations = customInformer<Typed<VirtualMachineInstanceMigration>>(kc, 'kubevirt.io', 'v1', 'virtualmachineinstancemigrations');
const replicaSets = customInformer<Typed<VirtualMachineInstanceReplicaSet>>(kc, 'kubevirt.io', 'v1', 'virtualmachineinstancereplicasets');
// The label only narrows the watch; which VMI a pod belongs to is decided by its ownerReference.
const listLauncherPods = () => core.listPodForAllNamespaces({ labelSelector: LAUNCHER_SELECTOR }) as Promise<KubernetesListObject<V1Pod>>;
// Each cache keeps what the controllers read of its objects (every cache drops managedFields; see lib/kube.ts).
const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', listLauncherPods, LAUNCHER_SELECTOR, chain(withoutLastApplied, launcherPodAsRead));
const nodes = makeInformer<V1Node>(
  kc,
  '/api/v1/nodes',
  () => core.listNode() as Promise<KubernetesListObject<V1Node>>,
  undefined,
  nodeAsRead,
);
// Served by kubevirt-ts's own DataVolume controller, or by CDI where that is installed: the CRD is there either way.
const dataVolumes = customInformer<Typed<DataVolume>>(kc, CDI_GROUP, CDI_VERSION, 'datavolumes');
const listClaims = () => core.listPersistentVolumeClaimForAllNamespaces() as Promise<KubernetesListObject<V1PersistentVolumeClaim>>;
const pvcs = makeInformer<V1PersistentVolumeClaim>(kc, '/api/v1/persistentvolumeclaims', listClaims, undefined, withoutLastApplied);
// The CDIConfig's filesystem overhead goes into each VMI's volumeStatus, as upstream's.
const cdiConfigs = customInformer<Typed<CDIConfig>>(kc, CDI_GROUP, CDI_VERSION, 'cdiconfigs');

// Instance types and preferences, and the ControllerRevisions that capture them for VMs.
const instancetypeInformer = <T>(plural: string) =>
  customInformer<Typed<T>>(kc, 'instancetype.kubevirt.io', 'v1beta1', plural, withoutLastApplied);
const instancetypes = instancetypeInformer<VirtualMachineInstancetype>('virtualmachineinstancetypes');
const clusterInstancetypes = instancetypeInformer<VirtualMachineInstancetype>('virtualmachineclusterinstancetypes');
const preferences = instancetypeInformer<VirtualMachinePreference>('virtualmachinepreferences');
const clusterPreferences = instancetypeInformer<VirtualMachinePreference>('virtualmachineclusterpreferences');
const apps = kc.makeApiClient(AppsV1Api);
const listRevisions = () => apps.listControllerRevisionForAllNamespaces() as Promise<KubernetesListObject<V1ControllerRevision>>;
const revisions = makeInformer<V1ControllerRevision>(kc, '/apis/apps/v1/controllerrevisions', listRevisions, undefined, withoutLastApplied);
// Snapshots, restores, exports, clones and backups: served, not carried out yet; each says so in its status.
const unsupported = Object.fromEntries(
  NOT_SUPPORTED_KINDS.map((k) => [k.kind, customInformer<KubernetesObject & NotSupportedObject>(kc, k.group, k.version, k.plural)]),
);

controllerMetrics(metrics.registry, { vms, vmis, pods });

const api = new ControllerKubeApi(kc);
// Asked once: the cluster's Kubernetes gates are set when its kube-apiserver starts.
const imageVolumesServed = await api.servesImageVolumes(NAMESPACE, flags['launcher-image']!).catch((error: unknown) => {
  log.warning('cannot tell whether the cluster serves image volumes; containerDisks stay in holder containers', { error: String(error) });
  return false;
});
log.info('image volumes', { served: imageVolumesServed });
const launcherPodParams = { launcherImage: flags['launcher-image']!, imagePullPolicy: flags['image-pull-policy']!, imageVolumesServed };
const record = eventRecorder(kc, 'virt-controller', log);
const now = () => new Date();
const vmController = new VmController({
  api,
  informers: { vms, vmis, dataVolumes, pvcs, instancetypes, clusterInstancetypes, preferences, clusterPreferences, revisions },
  queue: new WorkQueue(),
  now,
  jitter: Math.random,
  record,
  log,
});
const heartbeatTimeoutMs = Number(flags['node-heartbeat-timeout-seconds']) * 1000;
const vmiController = new VmiController({
  api,
  informers: { vmis, pods, dataVolumes, pvcs, cdiConfigs, nodes },
  heartbeatTimeoutMs,
  queue: new WorkQueue(),
  now,
  record,
  log,
  params: launcherPodParams,
  config: clusterConfig.current,
});
const nodeController = new NodeController({
  api,
  informers: { nodes, vmis, pods, leases },
  queue: new WorkQueue(),
  now,
  record,
  log,
  heartbeatTimeoutMs,
});
const replicaSetController = new ReplicaSetController({
  api,
  informers: { replicaSets, vmis },
  queue: new WorkQueue(),
  now,
  record,
  log,
});
const poolController = new PoolController({
  api,
  informers: { pools, vms, vmis, revisions },
  queue: new WorkQueue(),
  now,
  record,
  log,
});
const migrationController = new MigrationController({
  api,
  informers: { migrations, vmis, pods, nodes, pvcs, policies: migrationPolicies, namespaces },
  queue: new WorkQueue(),
  now,
  record,
  log,
  params: launcherPodParams,
  config: clusterConfig.current,
});
const evacuationController = new EvacuationController({
  api,
  informers: { vmis, migrations },
  queue: new WorkQueue(),
  now,
  record,
  log,
});
const notSupportedController = new NotSupportedController({ api, informers: unsupported, queue: new WorkQueue(), now, record, log });
await startInformers(
  log,
  pools,
  ...Object.values(unsupported),
  vms,
  vmis,
  migrations,
  migrationPolicies,
  namespaces as CachedInformer<KubernetesObject>,
  leases as CachedInformer<KubernetesObject>,
  replicaSets,
  pods as CachedInformer<KubernetesObject>,
  nodes as CachedInformer<KubernetesObject>,
  dataVolumes,
  cdiConfigs,
  pvcs as CachedInformer<KubernetesObject>,
  instancetypes,
  clusterInstancetypes,
  preferences,
  clusterPreferences,
  revisions as CachedInformer<KubernetesObject>,
);
leading = true;
metrics.setLeading(true);

log.info('caches synced; reconciling', {
  vms: vms.list().length,
  vmis: vmis.list().length,
  replicaSets: replicaSets.list().length,
  launcherPods: pods.list().length,
  dataVolumes: dataVolumes.list().length,
  pvcs: pvcs.list().length,
});
await Promise.all([
  vmController.run(3),
  // VMIs get more workers than VMs, since each start takes several writes. A worker here is an
  // async loop that mostly waits on kube-apiserver, not a thread as upstream's 10 are.
  vmiController.run(30),
  nodeController.run(1),
  replicaSetController.run(3),
  poolController.run(3),
  migrationController.run(3),
  evacuationController.run(1),
  notSupportedController.run(1),
]);
