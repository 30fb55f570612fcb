// The VM controller: a VM or its VMI changes, the VM's key is queued, and
// reconcile carries out planVm (./vm.ts): finalizers, run strategy, creating
// or deleting the VMI, and the VM's status.
import type { VirtualMachine, VirtualMachineInstance } from '../api/types.ts';
import { jsonEqual } from '../api/json-equal.ts';
import type { EventRecorder } from '../lib/events.ts';
import { Expectations } from '../lib/expectations.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { planVm } from './vm.ts';

/** The API writes of the VM controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface VmControllerApi {
  patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<VirtualMachine>>;
  createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>>;
  /** Deletes the VMI only if it still is the one of this UID. */
  deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void>;
  replaceVmStatus(namespace: string, name: string, vm: VirtualMachine): Promise<void>;
}

export interface VmControllerOptions {
  api: VmControllerApi;
  informers: { vms: InformerCache<Typed<VirtualMachine>>; vmis: InformerCache<Typed<VirtualMachineInstance>> };
  queue: WorkQueue;
  now: () => Date;
  /** 0 ≤ jitter < 1, spreading the restarts of VMs that failed together. */
  jitter: () => number;
  record: EventRecorder;
  log: Logger;
}

export class VmController {
  readonly #api: VmControllerApi;
  readonly #vms: InformerCache<Typed<VirtualMachine>>;
  readonly #vmis: InformerCache<Typed<VirtualMachineInstance>>;
  readonly #queue: WorkQueue;
  readonly #now: () => Date;
  readonly #jitter: () => number;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  readonly #vmiExpectations: Expectations;

  constructor(options: VmControllerOptions) {
    this.#api = options.api;
    this.#vms = options.informers.vms;
    this.#vmis = options.informers.vmis;
    this.#queue = options.queue;
    this.#now = options.now;
    this.#jitter = options.jitter;
    this.#record = options.record;
    this.#log = options.log;
    this.#vmiExpectations = new Expectations(() => options.now().getTime());
    onEveryChange(this.#vms, (vm) => this.#queue.add(keyOf(vm)));
    onEveryChange(this.#vmis, (vmi, verb) => {
      if (verb === 'add') this.#vmiExpectations.creationObserved(keyOf(vmi));
      // A VMI's changes matter to the VM that owns it, which has the same name.
      this.#queue.add(keyOf(vmi));
    });
  }

  /** Reconciles queued VMs until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'VM');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const vm = this.#vms.get(name, namespace);
    if (!vm) return;
    const vmi = this.#vmis.get(name, namespace);
    const plan = planVm(vm, vmi, { now: this.#now(), jitter: this.#jitter() });
    const vmLog = this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata });
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: vm.metadata };
    // The status is written with the resourceVersion of the latest write, so a request virt-api added meanwhile is never lost.
    let resourceVersion = vm.metadata.resourceVersion;
    const patchVm = async (patch: JsonPatchOperation[]) => {
      resourceVersion = (await this.#api.patchVm(namespace, name, patch)).metadata.resourceVersion;
    };
    if (plan.finalizers) await patchVm([{ op: 'add', path: '/metadata/finalizers', value: plan.finalizers }]);
    if (plan.setRunStrategy) {
      const path = vm.spec.runStrategy !== undefined ? '/spec/runStrategy' : '/spec/running';
      await patchVm([{ op: 'add', path, value: path === '/spec/running' ? true : plan.setRunStrategy }]);
    }
    if (plan.createVmi) {
      if (!this.#vmiExpectations.satisfied(key)) return;
      vmLog.info('creating the VMI', { runStrategy: plan.status.runStrategy });
      this.#vmiExpectations.expectCreations(key, 1);
      await this.#api.createVmi(namespace, plan.createVmi).catch((error: Error) => {
        this.#vmiExpectations.forget(key);
        const reason = String(error.message).split('\n')[0];
        this.#record(subject, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${reason}`);
        throw error;
      });
    }
    if (plan.deleteVmi) {
      vmLog.info('deleting the VMI', { runStrategy: plan.status.runStrategy, uid: vmi?.metadata.uid });
      await this.#api.deleteVmi(namespace, name, vmi?.metadata.uid);
    }
    for (const event of plan.events) this.#record(subject, event.type, event.reason, event.message);
    if (plan.requeueAfterMs !== undefined) this.#queue.addAfter(key, plan.requeueAfterMs);
    if (!jsonEqual(plan.status, vm.status ?? {})) {
      const body = { ...vm, metadata: { ...vm.metadata, resourceVersion }, status: plan.status };
      // A VM whose last finalizer just came off is gone: nothing to report on.
      await this.#api.replaceVmStatus(namespace, name, body).catch(ignoreNotFound);
    }
  }
}
