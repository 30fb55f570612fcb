// virt-controller: once it holds the leader lease, informers fill caches,
// events enqueue keys, and workers reconcile them with the pure plans of the
// VM (./vm.ts), VMI (./vmi.ts) and node (./node.ts) controllers.
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, makeInformer, type KubernetesListObject, type KubernetesObject, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { NODE_SCHEDULABLE_LABEL } from '../api/constants.ts';
import type { VirtualMachine, VirtualMachineInstance } from '../api/types.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { eventRecorder } from '../lib/events.ts';
import { Expectations, UpdateExpectations } from '../lib/expectations.ts';
import { apiErrorMessage, customInformer, keyOf, loadKubeConfig, startInformers, type CachedInformer } from '../lib/kube.ts';
import { LeaderElector } from '../lib/leader.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue, runWorkers } from '../lib/workqueue.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, planNode } from './node.ts';
import { planVm } from './vm.ts';
import { LAUNCHER_SELECTOR } from '../contract/launcher-pod.ts';
import { apiTimestamp, vmiOwnerOf } from '../contract/vmi.ts';
import { planVmi } from './vmi.ts';
import { jsonEqual } from '../api/json-equal.ts';

const log = createLogger('virt-controller');
const { values: flags } = parseArgs({
  options: {
    'launcher-image': { type: 'string', default: 'registry:5000/kubevirt-ts/virt-launcher:devel' },
    'image-pull-policy': { type: 'string', default: 'IfNotPresent' },
    'node-heartbeat-timeout-seconds': { type: 'string', default: String(DEFAULT_HEARTBEAT_TIMEOUT_MS / 1000) },
    'leader-elect': { type: 'boolean', default: true },
  },
});
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
const GROUP = 'kubevirt.io';
const VERSION = 'v1';
const heartbeatTimeoutMs = Number(flags['node-heartbeat-timeout-seconds']) * 1000;
type Typed<T> = T & KubernetesObject;

const kc = loadKubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);
const record = eventRecorder(kc, 'virt-controller', log);

if (flags['leader-elect']) {
  const identity = process.env.POD_NAME ?? `${process.env.HOSTNAME}-${process.pid}`;
  const elector = new LeaderElector(kc, { namespace: NAMESPACE, name: 'virt-controller', identity }, log);
  // Giving the lease back on the way out lets the other replica lead at once.
  exitOnSignals(log, () => elector.release());
  await elector.run(() => process.exit(1));
} else {
  exitOnSignals(log);
}

const vms = customInformer<Typed<VirtualMachine>>(kc, GROUP, VERSION, 'virtualmachines');
const vmis = customInformer<Typed<VirtualMachineInstance>>(kc, GROUP, VERSION, 'virtualmachineinstances');
// The label only narrows the watch; which VMI a pod belongs to is decided by its ownerReference.
const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: LAUNCHER_SELECTOR }) as Promise<KubernetesListObject<V1Pod>>, LAUNCHER_SELECTOR);
const nodes = makeInformer<V1Node>(kc, '/api/v1/nodes', () => core.listNode() as Promise<KubernetesListObject<V1Node>>);
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);

const vmQueue = new WorkQueue();
const vmiQueue = new WorkQueue();
const nodeQueue = new WorkQueue();
const podExpectations = new Expectations();
const vmiExpectations = new Expectations();
const vmiUpdates = new UpdateExpectations();

const ownerKey = (pod: V1Pod) => {
  const owner = vmiOwnerOf(pod);
  return owner ? `${pod.metadata?.namespace}/${owner.name}` : undefined;
};
for (const verb of ['add', 'update', 'delete'] as const) {
  vms.on(verb, (vm) => vmQueue.add(keyOf(vm)));
  vmis.on(verb, (vmi) => {
    if (verb === 'add') vmiExpectations.creationObserved(keyOf(vmi));
    vmiQueue.add(keyOf(vmi));
    // A VMI's changes matter to the VM that owns it, which has the same name.
    vmQueue.add(keyOf(vmi));
    if (vmi.status?.nodeName) nodeQueue.add(vmi.status.nodeName);
  });
  pods.on(verb, (pod) => {
    const key = ownerKey(pod);
    if (!key) return;
    if (verb === 'add') podExpectations.creationObserved(key);
    vmiQueue.add(key);
  });
  nodes.on(verb, (node) => nodeQueue.add(node.metadata!.name!));
}
await startInformers(log, vms, vmis, pods as CachedInformer<KubernetesObject>, nodes as CachedInformer<KubernetesObject>, clusterConfig.informer);

const now = () => apiTimestamp();
const jsonPatch = (ops: object[]) => ops as unknown as object;
const vmiApi = { group: GROUP, version: VERSION, plural: 'virtualmachineinstances' };
const vmApi = { group: GROUP, version: VERSION, plural: 'virtualmachines' };

async function reconcileVmi(key: string): Promise<void> {
  const [namespace, name] = key.split('/');
  const vmi = vmis.get(name, namespace);
  if (!vmi) {
    podExpectations.forget(key);
    vmiUpdates.forget(key);
    return;
  }
  if (vmiUpdates.stale(key, vmi.metadata.resourceVersion)) return;
  const params = { launcherImage: flags['launcher-image']!, imagePullPolicy: flags['image-pull-policy']!, config: clusterConfig.current() };
  const plan = planVmi(vmi, pods.list(namespace), params, now(), !podExpectations.satisfied(key));
  const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
  const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata };
  if (plan.createPod) {
    podExpectations.expectCreations(key, 1);
    try {
      const pod = await core.createNamespacedPod({ namespace, body: plan.createPod });
      vmiLog.info('created the launcher pod', { pod: pod.metadata?.name });
      record(subject, 'Normal', 'SuccessfulCreate', `Created virtual machine pod ${pod.metadata?.name}`);
    } catch (error) {
      podExpectations.forget(key);
      record(subject, 'Warning', 'FailedCreate', `Error creating pod: ${(error as Error).message.split('\n')[0]}`);
      throw error;
    }
  }
  for (const pod of plan.deletePods ?? []) {
    await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace }).catch((error: { code?: number }) => {
      if (error.code !== 404) throw error;
    });
  }
  if (plan.update) {
    if (plan.update.status?.phase !== vmi.status?.phase) vmiLog.info('phase changed', { from: vmi.status?.phase ?? '', to: plan.update.status?.phase });
    const written = (await custom.replaceNamespacedCustomObject({ ...vmiApi, namespace, name, body: plan.update }).catch((error: { code?: number }) => {
      // Gone meanwhile: there is nothing left to report on.
      if (error.code !== 404) throw error;
    })) as Typed<VirtualMachineInstance> | undefined;
    vmiUpdates.wrote(key, vmi.metadata.resourceVersion, written?.metadata.resourceVersion);
  }
  for (const event of plan.events) record(subject, event.type, event.reason, event.message);
}

async function reconcileVm(key: string): Promise<void> {
  const [namespace, name] = key.split('/');
  const vm = vms.get(name, namespace);
  if (!vm) return;
  const vmi = vmis.get(name, namespace);
  const plan = planVm(vm, vmi, { now: new Date(), jitter: Math.random() });
  const vmLog = log.object({ kind: 'VirtualMachine', metadata: vm.metadata });
  const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: vm.metadata };
  // The status is written with the resourceVersion of the latest write, so a request virt-api added meanwhile is never lost.
  let resourceVersion = vm.metadata.resourceVersion;
  const patchVm = async (ops: object[]) => {
    const patched = (await custom.patchNamespacedCustomObject({ ...vmApi, namespace, name, body: jsonPatch(ops) })) as Typed<VirtualMachine>;
    resourceVersion = patched.metadata.resourceVersion;
  };
  if (plan.finalizers) await patchVm([{ op: 'add', path: '/metadata/finalizers', value: plan.finalizers }]);
  if (plan.setRunStrategy) {
    const path = vm.spec.runStrategy !== undefined ? '/spec/runStrategy' : '/spec/running';
    await patchVm([{ op: 'add', path, value: path === '/spec/running' ? true : plan.setRunStrategy }]);
  }
  if (plan.createVmi) {
    if (!vmiExpectations.satisfied(key)) return;
    vmLog.info('creating the VMI', { runStrategy: plan.status.runStrategy });
    vmiExpectations.expectCreations(key, 1);
    await custom.createNamespacedCustomObject({ ...vmApi, plural: vmiApi.plural, namespace, body: plan.createVmi }).catch((error: { code?: number; body?: unknown }) => {
      vmiExpectations.forget(key);
      record(subject, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${String((error as Error).message).split('\n')[0]}`);
      throw error;
    });
  }
  if (plan.deleteVmi) {
    vmLog.info('deleting the VMI', { runStrategy: plan.status.runStrategy, uid: vmi?.metadata.uid });
    await custom.deleteNamespacedCustomObject({ ...vmiApi, namespace, name, body: { preconditions: { uid: vmi?.metadata.uid } } });
  }
  for (const event of plan.events) record(subject, event.type, event.reason, event.message);
  if (plan.requeueAfterMs !== undefined) vmQueue.addAfter(key, plan.requeueAfterMs);
  if (!jsonEqual(plan.status, vm.status ?? {})) {
    await custom
      .replaceNamespacedCustomObjectStatus({ ...vmApi, namespace, name, body: { ...vm, metadata: { ...vm.metadata, resourceVersion }, status: plan.status } })
      .catch((error: { code?: number }) => {
        // A VM whose last finalizer just came off is gone: nothing to report on.
        if (error.code !== 404) throw error;
      });
  }
}

async function reconcileNode(name: string): Promise<void> {
  const node = nodes.get(name);
  if (!node) return;
  const plan = planNode(node, vmis.list(), pods.list(), Date.now(), heartbeatTimeoutMs);
  if (plan.markUnschedulable) {
    log.warning('virt-handler stopped heartbeating; the node is no longer schedulable for VMIs', { node: name });
    await core.patchNode({ name, body: jsonPatch([{ op: 'add', path: `/metadata/labels/${NODE_SCHEDULABLE_LABEL.replace('/', '~1')}`, value: 'false' }]) });
  }
  for (const vmi of plan.failVmis) {
    const failed = structuredClone(vmi);
    failed.status = { ...failed.status, phase: 'Failed', reason: 'NodeUnresponsive' };
    await custom.replaceNamespacedCustomObject({ ...vmiApi, namespace: vmi.metadata.namespace!, name: vmi.metadata.name!, body: failed });
    record({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata }, 'Warning', 'NodeUnresponsive', `virt-handler on node ${name} is unresponsive; the VirtualMachineInstance failed`);
  }
  if (plan.recheckAfterMs !== undefined) nodeQueue.addAfter(name, plan.recheckAfterMs);
}

log.info('caches synced; reconciling', { vms: vms.list().length, vmis: vmis.list().length, launcherPods: pods.list().length });
const onError = (kind: string) => (key: string, error: unknown) => log.warning(`${kind} reconcile failed; will retry`, { key, error: apiErrorMessage(error) });
await Promise.all([
  runWorkers(vmQueue, 3, reconcileVm, onError('VM')),
  // As upstream: VMIs get more workers than VMs, since each start takes several writes.
  runWorkers(vmiQueue, 10, reconcileVmi, onError('VMI')),
  runWorkers(nodeQueue, 1, reconcileNode, onError('node')),
]);
