// The VirtualMachinePool controller: a pool, one of its VMs or their VMIs
// changes, the pool's key is queued, and reconcile carries out planPool
// (./pool.ts): release, record the pool's revision, create, delete and update
// VMs, restart outdated VMIs, then write the status. Expectations keep it from
// acting again on a cache that has not yet seen its own creates and deletes.
import type { V1ControllerRevision } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachinePool } from '../api/types.ts';
import { apiTimestamp } from '../contract/vmi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { Expectations } from '../lib/expectations.ts';
import { apiErrorMessage, ignoreNotFound, keyOf, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { invalidPool, planPool, POOL_KIND, poolStatus, type PoolSyncFailure } from './pool.ts';

/** The API writes of the pool controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface PoolControllerApi {
  createVm(namespace: string, vm: VirtualMachine): Promise<Typed<VirtualMachine>>;
  deleteVm(namespace: string, name: string, uid: string | undefined): Promise<void>;
  /** A guarded JSON patch (release, update to the current template). */
  patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<VirtualMachine>>;
  /** Deletes the VMI only if it still is the one of this UID. */
  deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void>;
  /** Rejects with 409 when one of that name exists. */
  createControllerRevision(namespace: string, revision: V1ControllerRevision): Promise<void>;
  replacePoolStatus(namespace: string, name: string, pool: VirtualMachinePool): Promise<void>;
}

export interface PoolControllerOptions {
  api: PoolControllerApi;
  informers: {
    pools: InformerCache<Typed<VirtualMachinePool>>;
    vms: InformerCache<Typed<VirtualMachine>>;
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
    revisions: InformerCache<V1ControllerRevision>;
  };
  queue: WorkQueue;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

type Subject = { apiVersion: string; kind: string; metadata: VirtualMachinePool['metadata'] };

export class PoolController {
  readonly #api: PoolControllerApi;
  readonly #pools: InformerCache<Typed<VirtualMachinePool>>;
  readonly #vms: InformerCache<Typed<VirtualMachine>>;
  readonly #vmis: InformerCache<Typed<VirtualMachineInstance>>;
  readonly #revisions: InformerCache<V1ControllerRevision>;
  readonly #queue: WorkQueue;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  readonly #expectations: Expectations;

  constructor(options: PoolControllerOptions) {
    this.#api = options.api;
    this.#pools = options.informers.pools;
    this.#vms = options.informers.vms;
    this.#vmis = options.informers.vmis;
    this.#revisions = options.informers.revisions;
    this.#queue = options.queue;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    this.#expectations = new Expectations(() => options.now().getTime());
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.#pools.on(verb, (pool) => this.#queue.add(keyOf(pool)));
      this.#vms.on(verb, (vm) => {
        const pool = this.#owner(vm);
        if (!pool) return;
        const key = keyOf(pool);
        if (verb === 'delete' || vm.metadata.deletionTimestamp) this.#expectations.deletionObserved(key, vm.metadata.name!);
        else if (verb === 'add') this.#expectations.creationObserved(key);
        this.#queue.add(key);
      });
      // A VMI has its VM's name: its readiness and the template it started from matter to the VM's pool.
      this.#vmis.on(verb, (vmi) => {
        const vm = this.#vms.get(vmi.metadata.name!, vmi.metadata.namespace);
        const pool = vm && this.#owner(vm);
        if (pool) this.#queue.add(keyOf(pool));
      });
    }
  }

  #owner(vm: VirtualMachine): Typed<VirtualMachinePool> | undefined {
    const ref = vm.metadata.ownerReferences?.find((o) => o.controller);
    if (ref?.kind !== POOL_KIND) return undefined;
    const pool = this.#pools.get(ref.name, vm.metadata.namespace);
    return pool?.metadata.uid === ref.uid ? pool : undefined;
  }

  /** Reconciles queued pools until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'VirtualMachinePool');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const pool = this.#pools.get(name, namespace);
    if (!pool) {
      this.#expectations.forget(key);
      return;
    }
    const poolLog = this.#log.object({ kind: POOL_KIND, metadata: pool.metadata });
    const invalid = invalidPool(pool);
    if (invalid) {
      poolLog.error(`${invalid}; not acting on the pool`);
      return;
    }
    const plan = planPool(
      pool,
      this.#vms.list(namespace),
      (vm) => this.#vmis.get(vm, namespace),
      (revision) => {
        const cached = this.#revisions.get(revision, namespace);
        // Only the pool's own revisions record a pool spec.
        const ours = cached?.metadata?.ownerReferences?.some((o) => o.controller && o.uid === pool.metadata.uid);
        return ours ? (cached?.data as VirtualMachinePool['spec'] | undefined) : undefined;
      },
      { sync: this.#expectations.satisfied(key) },
    );
    const subject: Subject = { apiVersion: 'pool.kubevirt.io/v1beta1', kind: POOL_KIND, metadata: pool.metadata };
    for (const { vm, patch } of plan.release) {
      poolLog.info('releasing a VM its selector no longer matches', { vm: vm.metadata.name });
      await this.#api.patchVm(namespace, vm.metadata.name!, patch).catch(ignoreNotFound);
    }
    let failure: PoolSyncFailure | undefined;
    try {
      if (plan.createRevision) {
        await this.#api.createControllerRevision(namespace, plan.createRevision).catch((error) => {
          if ((error as { code?: number }).code !== 409) throw error;
        });
      }
    } catch (error) {
      failure = { reason: plan.create.length ? 'FailedScaleOut' : 'FailedUpdate', message: apiErrorMessage(error) };
    }
    if (!failure && plan.create.length) failure = await this.#scaleOut(key, subject, plan.create);
    if (!failure && plan.delete.length) failure = await this.#scaleIn(key, subject, plan.delete);
    if (!failure) failure = await this.#update(subject, plan.update, plan.restart);
    const status = poolStatus(pool, plan.owned, failure, apiTimestamp(this.#now()));
    if (status) {
      const wasPaused = pool.status?.conditions?.some((c) => c.type === 'ReplicaPaused') ?? false;
      if (failure && !pool.status?.conditions?.some((c) => c.type === 'ReplicaFailure'))
        this.#record(subject, 'Warning', failure.reason, failure.message);
      await this.#api.replacePoolStatus(namespace, name, { ...pool, status }).catch(ignoreNotFound);
      if (pool.spec.paused && !wasPaused) this.#record(subject, 'Normal', 'SuccessfulPaused', 'Pool is paused');
      if (!pool.spec.paused && wasPaused) this.#record(subject, 'Normal', 'SuccessfulResume', 'Pool is unpaused');
    }
    if (failure) throw new Error(`${failure.reason}: ${failure.message}`);
  }

  async #scaleOut(key: string, subject: Subject, vms: VirtualMachine[]): Promise<PoolSyncFailure | undefined> {
    const namespace = subject.metadata.namespace!;
    this.#expectations.expectCreations(key, vms.length);
    const errors: unknown[] = [];
    await Promise.all(
      vms.map(async (vm) => {
        try {
          await this.#api.createVm(namespace, vm);
          this.#record(subject, 'Normal', 'SuccessfulCreate', `Created VM ${namespace}/${vm.metadata.name}`);
        } catch (error) {
          this.#expectations.creationObserved(key);
          errors.push(error);
        }
      }),
    );
    if (!errors.length) return undefined;
    this.#record(subject, 'Warning', 'FailedCreate', `Error creating VM: ${apiErrorMessage(errors[0])}`);
    return { reason: 'FailedScaleOut', message: `error during scale out: ${apiErrorMessage(errors[0])}` };
  }

  async #scaleIn(key: string, subject: Subject, vms: VirtualMachine[]): Promise<PoolSyncFailure | undefined> {
    const namespace = subject.metadata.namespace!;
    this.#expectations.expectDeletions(
      key,
      vms.map((vm) => vm.metadata.name!),
    );
    const errors: unknown[] = [];
    await Promise.all(
      vms.map(async (vm) => {
        try {
          await this.#api.deleteVm(namespace, vm.metadata.name!, vm.metadata.uid);
          const message = `Deleted VM ${namespace}/${vm.metadata.name} with uid ${vm.metadata.uid} from pool`;
          this.#record(subject, 'Normal', 'SuccessfulDelete', message);
        } catch (error) {
          this.#expectations.deletionObserved(key, vm.metadata.name!);
          if ((error as { code?: number }).code === 404) return;
          this.#record(
            subject,
            'Warning',
            'FailedDelete',
            `Error deleting virtual machine ${namespace}/${vm.metadata.name}: ${apiErrorMessage(error)}`,
          );
          errors.push(error);
        }
      }),
    );
    return errors.length ? { reason: 'FailedScaleIn', message: `error during scale in: ${apiErrorMessage(errors[0])}` } : undefined;
  }

  async #update(
    subject: Subject,
    updates: { vm: VirtualMachine; patch: JsonPatchOperation[] }[],
    restarts: VirtualMachineInstance[],
  ): Promise<PoolSyncFailure | undefined> {
    const namespace = subject.metadata.namespace!;
    try {
      for (const { vm, patch } of updates) {
        await this.#api.patchVm(namespace, vm.metadata.name!, patch);
        this.#record(subject, 'Normal', 'SuccessfulUpdate', `Updated VM ${namespace}/${vm.metadata.name}`);
      }
      for (const vmi of restarts) {
        await this.#api.deleteVmi(namespace, vmi.metadata.name!, vmi.metadata.uid).catch(ignoreNotFound);
        this.#record(subject, 'Normal', 'SuccessfulDelete', `Successfully updated resource ${namespace}/${vmi.metadata.name}`);
      }
      return undefined;
    } catch (error) {
      this.#record(subject, 'Warning', 'FailedUpdate', `Error updating resource: ${apiErrorMessage(error)}`);
      return { reason: 'FailedUpdate', message: `error during VM update: ${apiErrorMessage(error)}` };
    }
  }
}
