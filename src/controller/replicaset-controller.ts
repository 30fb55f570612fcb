// The VirtualMachineInstanceReplicaSet controller: a replica set or one of
// the VMIs it owns (or might adopt) changes, the set's key is queued, and
// reconcile carries out planReplicaSet (./replicaset.ts): adopt and release,
// create and delete VMIs, then write the status. Expectations keep it from
// acting again on a cache that has not yet seen its own creates and deletes.
import type { VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../api/types.ts';
import { selectorMatches } from '../api/selector.ts';
import { apiTimestamp } from '../contract/vmi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { Expectations } from '../lib/expectations.ts';
import { apiErrorMessage, ignoreNotFound, keyOf, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { controllerOf, invalidSpec, planReplicaSet, REPLICASET_KIND, replicaSetStatus, type ScaleFailure } from './replicaset.ts';

/** The API writes of the replica set controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface ReplicaSetControllerApi {
  createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>>;
  /** Deletes the VMI only if it still is the one of this UID. */
  deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void>;
  /** A guarded JSON patch (adoption and release of VMIs). */
  patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
  replaceReplicaSetStatus(namespace: string, name: string, rs: VirtualMachineInstanceReplicaSet): Promise<void>;
}

export interface ReplicaSetControllerOptions {
  api: ReplicaSetControllerApi;
  informers: {
    replicaSets: InformerCache<Typed<VirtualMachineInstanceReplicaSet>>;
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
  };
  queue: WorkQueue;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
  /** At most this many creates or deletes per sync (upstream's burstReplicas). */
  burst?: number;
}

export class ReplicaSetController {
  readonly #api: ReplicaSetControllerApi;
  readonly #replicaSets: InformerCache<Typed<VirtualMachineInstanceReplicaSet>>;
  readonly #vmis: InformerCache<Typed<VirtualMachineInstance>>;
  readonly #queue: WorkQueue;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  readonly #burst: number | undefined;
  readonly #expectations: Expectations;

  constructor(options: ReplicaSetControllerOptions) {
    this.#api = options.api;
    this.#replicaSets = options.informers.replicaSets;
    this.#vmis = options.informers.vmis;
    this.#queue = options.queue;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    this.#burst = options.burst;
    this.#expectations = new Expectations(() => options.now().getTime());
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.#replicaSets.on(verb, (rs) => this.#queue.add(keyOf(rs)));
    }
    this.#vmis.on('add', (vmi) => this.#vmiChanged(vmi, 'add'));
    this.#vmis.on('update', (vmi) => this.#vmiChanged(vmi, 'update'));
    this.#vmis.on('delete', (vmi) => this.#vmiChanged(vmi, 'delete'));
  }

  /** The replica set a VMI's controller reference names, if it is one in the cache (same UID). */
  #owner(vmi: VirtualMachineInstance): Typed<VirtualMachineInstanceReplicaSet> | undefined {
    const ref = controllerOf(vmi);
    if (ref?.kind !== REPLICASET_KIND) return undefined;
    const rs = this.#replicaSets.get(ref.name, vmi.metadata.namespace);
    return rs?.metadata.uid === ref.uid ? rs : undefined;
  }

  #vmiChanged(vmi: VirtualMachineInstance, verb: 'add' | 'update' | 'delete'): void {
    const owner = this.#owner(vmi);
    if (owner) {
      const key = keyOf(owner);
      if (verb === 'delete' || vmi.metadata.deletionTimestamp) this.#expectations.deletionObserved(key, vmi.metadata.name!);
      else if (verb === 'add') this.#expectations.creationObserved(key);
      this.#queue.add(key);
      return;
    }
    if (controllerOf(vmi) || verb === 'delete') return;
    // An orphan: every replica set whose selector matches it may adopt it.
    for (const rs of this.#replicaSets.list(vmi.metadata.namespace)) {
      if (selectorMatches(rs.spec.selector, vmi.metadata.labels ?? {})) this.#queue.add(keyOf(rs));
    }
  }

  /** Reconciles queued replica sets until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'VirtualMachineInstanceReplicaSet');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const rs = this.#replicaSets.get(name, namespace);
    if (!rs) {
      this.#expectations.forget(key);
      return;
    }
    const rsLog = this.#log.object({ kind: REPLICASET_KIND, metadata: rs.metadata });
    const invalid = invalidSpec(rs);
    if (invalid) {
      // As upstream: logged, and not retried until the replica set changes.
      rsLog.error(`${invalid}; not acting on the replica set`);
      return;
    }
    const sync = this.#expectations.satisfied(key);
    const plan = planReplicaSet(rs, this.#vmis.list(namespace), { sync, ...(this.#burst ? { burst: this.#burst } : {}) });
    const subject = { apiVersion: 'kubevirt.io/v1', kind: REPLICASET_KIND, metadata: rs.metadata };
    for (const { vmi, patch } of plan.release) {
      rsLog.info('releasing a VMI its selector no longer matches', { vmi: vmi.metadata.name });
      await this.#api.patchVmi(namespace, vmi.metadata.name!, patch).catch(ignoreNotFound);
    }
    for (const { vmi, patch } of plan.adopt) {
      rsLog.info('adopting an orphaned VMI', { vmi: vmi.metadata.name });
      await this.#api.patchVmi(namespace, vmi.metadata.name!, patch).catch(ignoreNotFound);
    }
    let failure: ScaleFailure | undefined;
    let firstError: unknown;
    const fail = (reason: string, error: unknown) => {
      failure ??= { reason, message: apiErrorMessage(error) };
      firstError ??= error;
    };
    if (plan.create.length) {
      this.#expectations.expectCreations(key, plan.create.length);
      await Promise.all(
        plan.create.map(async (vmi) => {
          try {
            const created = await this.#api.createVmi(namespace, vmi);
            const message = `Started the virtual machine by creating the new virtual machine instance ${created.metadata.name}`;
            this.#record(subject, 'Normal', 'SuccessfulCreate', message);
          } catch (error) {
            // Never to be seen: not waited for.
            this.#expectations.creationObserved(key);
            this.#record(subject, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${apiErrorMessage(error)}`);
            fail('FailedCreate', error);
          }
        }),
      );
    }
    if (plan.scaleDown.length) {
      rsLog.info('scaling down', { delete: plan.scaleDown.map((v) => v.metadata.name) });
      await this.#deleteVmis(key, subject, plan.scaleDown, (vmi) => ({
        ok: `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata.uid}`,
        failed: `Error deleting virtual machine instance ${vmi.metadata.name}`,
      })).catch((error) => fail('FailedDelete', error));
    }
    if (plan.cleanUp.length && !failure) {
      await this.#deleteVmis(key, subject, plan.cleanUp, (vmi) => ({
        ok: `Deleted finished virtual machine: ${vmi.metadata.uid}`,
        failed: `Error deleting finished virtual machine ${vmi.metadata.name}`,
      })).catch((error) => fail('FailedDelete', error));
    }
    const status = replicaSetStatus(rs, plan.active, failure, apiTimestamp(this.#now()));
    if (status) {
      const wasPaused = rs.status?.conditions?.some((c) => c.type === 'ReplicaPaused') ?? false;
      const paused = rs.spec.paused === true;
      try {
        await this.#api.replaceReplicaSetStatus(namespace, name, { ...rs, status });
        if (paused !== wasPaused)
          this.#record(subject, 'Normal', paused ? 'SuccessfulPaused' : 'SuccessfulResumed', paused ? 'Paused' : 'Resumed');
      } catch (error) {
        if ((error as { code?: number }).code !== 404) {
          rsLog.warning('could not write the status', { error: apiErrorMessage(error) });
          firstError ??= error;
        }
      }
    }
    if (firstError) throw firstError;
  }

  /** Deletes the VMIs at once, expecting each to go; rejects with the first failure once all are tried. */
  async #deleteVmis(
    key: string,
    subject: { apiVersion: string; kind: string; metadata: VirtualMachineInstanceReplicaSet['metadata'] },
    vmis: readonly VirtualMachineInstance[],
    messages: (vmi: VirtualMachineInstance) => { ok: string; failed: string },
  ): Promise<void> {
    const namespace = subject.metadata.namespace!;
    this.#expectations.expectDeletions(
      key,
      vmis.map((v) => v.metadata.name!),
    );
    const errors: unknown[] = [];
    await Promise.all(
      vmis.map(async (vmi) => {
        try {
          await this.#api.deleteVmi(namespace, vmi.metadata.name!, vmi.metadata.uid);
          this.#record(subject, 'Normal', 'SuccessfulDelete', messages(vmi).ok);
        } catch (error) {
          this.#expectations.deletionObserved(key, vmi.metadata.name!);
          // Gone already: as good as deleted.
          if ((error as { code?: number }).code === 404) return;
          this.#record(subject, 'Warning', 'FailedDelete', `${messages(vmi).failed}: ${apiErrorMessage(error)}`);
          errors.push(error);
        }
      }),
    );
    if (errors.length) throw errors[0];
  }
}
