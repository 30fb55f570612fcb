// virt-controller: informers fill caches, events enqueue VM keys, and workers
// reconcile each key with the VM controller's plan (./vm.ts).
import { CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance } from '../api/types.ts';
import { createLogger } from '../lib/log.ts';
import { customInformer, loadKubeConfig } from '../lib/kube.ts';
import { WorkQueue, runWorkers } from '../lib/workqueue.ts';
import { planVm, vmiFinalizersAfterDeletion } from './vm.ts';

const log = createLogger('virt-controller');
const GROUP = 'kubevirt.io';
const VERSION = 'v1';
type Typed<T> = T & KubernetesObject;

const kc = loadKubeConfig();
const api = kc.makeApiClient(CustomObjectsApi);
const vms = customInformer<Typed<VirtualMachine>>(kc, GROUP, VERSION, 'virtualmachines');
const vmis = customInformer<Typed<VirtualMachineInstance>>(kc, GROUP, VERSION, 'virtualmachineinstances');
const queue = new WorkQueue();

const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;
for (const verb of ['add', 'update', 'delete'] as const) {
  vms.on(verb, (vm) => queue.add(keyOf(vm)));
  // A VMI's changes matter to the VM that owns it, which has the same name.
  vmis.on(verb, (vmi) => queue.add(keyOf(vmi)));
}
for (const informer of [vms, vmis]) {
  informer.on('error', (error) => {
    log.warning('watch failed; restarting it', { error: String(error) });
    setTimeout(() => void informer.start(), 2000);
  });
}

const jsonPatch = (ops: object[]) => ops as unknown as object;

async function reconcile(key: string): Promise<void> {
  const [namespace, name] = key.split('/');
  const vm = vms.get(name, namespace);
  const vmi = vmis.get(name, namespace);
  if (vmi) {
    const finalizers = vmiFinalizersAfterDeletion(vmi, 0);
    if (finalizers) {
      await api.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachineinstances', name, body: jsonPatch([{ op: 'replace', path: '/metadata/finalizers', value: finalizers }]) });
    }
  }
  if (!vm) return;
  const plan = planVm(vm, vmi);
  const vmLog = log.object({ kind: 'VirtualMachine', metadata: vm.metadata });
  if (plan.finalizers) {
    await api.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachines', name, body: jsonPatch([{ op: 'add', path: '/metadata/finalizers', value: plan.finalizers }]) });
  }
  if (plan.createVmi) {
    vmLog.info('creating the VMI', { runStrategy: plan.status.runStrategy });
    await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachineinstances', body: plan.createVmi });
  }
  if (plan.deleteVmi) {
    vmLog.info('deleting the VMI', { runStrategy: plan.status.runStrategy, uid: vmi?.metadata.uid });
    await api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachineinstances', name, body: { preconditions: { uid: vmi?.metadata.uid } } });
  }
  if (JSON.stringify(plan.status) !== JSON.stringify(vm.status ?? {})) {
    await api
      .patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: 'virtualmachines', name, body: jsonPatch([{ op: 'add', path: '/status', value: plan.status }]) })
      .catch((error: { code?: number }) => {
        // A VM whose last finalizer just came off is gone: nothing to report on.
        if (error.code !== 404) throw error;
      });
  }
}

await Promise.all([vms.start(), vmis.start()]);
log.info('caches synced; reconciling', { vms: vms.list().length, vmis: vmis.list().length });
await runWorkers(queue, 3, reconcile, (key, error) => log.warning('reconcile failed; will retry', { key, error: (error as Error).message?.split('\n')[0] }));
