// The VM controller: a VM, its VMI, or a DataVolume or claim it names
// changes, the VM's key is queued, and reconcile carries out planVm
// (./vm.ts): finalizers, run strategy, the DataVolumes of its templates,
// creating or deleting the VMI, and the VM's status.
import type { V1ControllerRevision, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type {
  DataVolume,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstancetype,
  VirtualMachinePreference,
} from '../api/types.ts';
import { jsonEqual } from '../api/json-equal.ts';
import type { EventRecorder } from '../lib/events.ts';
import { Expectations } from '../lib/expectations.ts';
import {
  apiErrorMessage,
  ignoreConflict,
  ignoreNotFound,
  keyOf,
  onEveryChange,
  type InformerCache,
  type JsonPatchOperation,
  type Typed,
} from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { appliedTemplate, inferMatchers, syncInstancetypes, type InstancetypeLookup } from './instancetype.ts';
import { lookUpVmVolumes, planVm, volumeNamesOf, withSyncFailure, type VmPlan, type VmTemplateSource } from './vm.ts';
import { dataVolumeOwnerOf } from './vmi.ts';

/** The API writes of the VM controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface VmControllerApi {
  patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<VirtualMachine>>;
  createDataVolume(namespace: string, dv: DataVolume): Promise<Typed<DataVolume>>;
  /** A JSON patch; the adoption of an orphan is one, guarded by tests on what it changes. */
  patchDataVolume(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
  createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>>;
  /** A JSON patch of the VMI; the generation annotation's bump is one, guarded by a test of the annotations. */
  patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
  /** Deletes the VMI only if it still is the one of this UID. */
  deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void>;
  replaceVmStatus(namespace: string, name: string, vm: VirtualMachine): Promise<void>;
  /** A JSON patch of the VM's status subresource: the instance type and preference references. */
  patchVmStatus(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
  /** Rejects with 409 when one of that name exists. */
  createControllerRevision(namespace: string, revision: V1ControllerRevision): Promise<void>;
  deleteControllerRevision(namespace: string, name: string): Promise<void>;
}

/** The caches of instance types, preferences and the ControllerRevisions that capture them for VMs. */
export interface InstancetypeInformers {
  instancetypes: InformerCache<Typed<VirtualMachineInstancetype>>;
  clusterInstancetypes: InformerCache<Typed<VirtualMachineInstancetype>>;
  preferences: InformerCache<Typed<VirtualMachinePreference>>;
  clusterPreferences: InformerCache<Typed<VirtualMachinePreference>>;
  revisions: InformerCache<V1ControllerRevision>;
}

export interface VmControllerOptions {
  api: VmControllerApi;
  informers: {
    vms: InformerCache<Typed<VirtualMachine>>;
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
    dataVolumes: InformerCache<Typed<DataVolume>>;
    pvcs: InformerCache<V1PersistentVolumeClaim>;
  } & Partial<InstancetypeInformers>;
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
  readonly #dataVolumes: InformerCache<Typed<DataVolume>>;
  readonly #pvcs: InformerCache<V1PersistentVolumeClaim>;
  readonly #queue: WorkQueue;
  readonly #now: () => Date;
  readonly #jitter: () => number;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  readonly #vmiExpectations: Expectations;
  readonly #dataVolumeExpectations: Expectations;
  readonly #instancetypes: InstancetypeLookup;
  readonly #revisions: InformerCache<V1ControllerRevision> | undefined;

  constructor(options: VmControllerOptions) {
    this.#api = options.api;
    this.#vms = options.informers.vms;
    this.#vmis = options.informers.vmis;
    this.#dataVolumes = options.informers.dataVolumes;
    this.#pvcs = options.informers.pvcs;
    this.#queue = options.queue;
    this.#now = options.now;
    this.#jitter = options.jitter;
    this.#record = options.record;
    this.#log = options.log;
    this.#vmiExpectations = new Expectations(() => options.now().getTime());
    this.#dataVolumeExpectations = new Expectations(() => options.now().getTime());
    const it = options.informers;
    this.#revisions = it.revisions;
    this.#instancetypes = {
      instancetype: (namespace, name) => it.instancetypes?.get(name, namespace),
      clusterInstancetype: (name) => it.clusterInstancetypes?.get(name),
      preference: (namespace, name) => it.preferences?.get(name, namespace),
      clusterPreference: (name) => it.clusterPreferences?.get(name),
      revision: (namespace, name) => it.revisions?.get(name, namespace),
    };
    // A revision of a VM's instance type or preference showing up lets the VM start.
    if (it.revisions) {
      onEveryChange(it.revisions, (revision) => {
        const owner = revision.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'VirtualMachine');
        if (owner) this.#queue.add(`${revision.metadata?.namespace}/${owner.name}`);
      });
    }
    // An instance type or preference created late lets the VMs naming it go on; one edited changes none.
    const queueNaming = (which: 'instancetype' | 'preference') => (object: { metadata: { name?: string; namespace?: string } }) => {
      for (const vm of this.#vms.list(object.metadata.namespace)) {
        if (vm.spec[which]?.name === object.metadata.name && !vm.status?.[`${which}Ref`]?.controllerRevisionRef) this.#queue.add(keyOf(vm));
      }
    };
    for (const informer of [it.instancetypes, it.clusterInstancetypes]) if (informer) informer.on('add', queueNaming('instancetype'));
    for (const informer of [it.preferences, it.clusterPreferences]) if (informer) informer.on('add', queueNaming('preference'));
    onEveryChange(this.#vms, (vm) => this.#queue.add(keyOf(vm)));
    onEveryChange(this.#vmis, (vmi, verb) => {
      if (verb === 'add') this.#vmiExpectations.creationObserved(keyOf(vmi));
      // A VMI's changes matter to the VM that owns it, which has the same name.
      this.#queue.add(keyOf(vmi));
    });
    onEveryChange(this.#dataVolumes, (dv, verb) => {
      const owner = dv.metadata.ownerReferences?.find((o) => o.controller && o.kind === 'VirtualMachine');
      if (owner) {
        const key = `${dv.metadata.namespace}/${owner.name}`;
        if (verb === 'add') this.#dataVolumeExpectations.creationObserved(key);
        this.#queue.add(key);
      }
      // An orphan, or one another controller holds, still matters to each VM that names it.
      this.#queueVmsNaming(dv.metadata.namespace, dv.metadata.name);
    });
    onEveryChange(this.#pvcs, (pvc) => {
      this.#queueVmsNaming(pvc.metadata?.namespace, pvc.metadata?.name);
      const owner = dataVolumeOwnerOf(pvc);
      if (owner && owner.name !== pvc.metadata?.name) this.#queueVmsNaming(pvc.metadata?.namespace, owner.name);
    });
  }

  /** Queues every VM of the namespace whose templates or volumes name this DataVolume or claim. */
  #queueVmsNaming(namespace: string | undefined, name: string | undefined): void {
    if (!namespace || !name) return;
    for (const vm of this.#vms.list(namespace)) if (volumeNamesOf(vm).has(name)) this.#queue.add(keyOf(vm));
  }

  /** Reconciles queued VMs until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'VM');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const vm = this.#vms.get(name, namespace);
    if (!vm) {
      this.#dataVolumeExpectations.forget(key);
      return;
    }
    const vmi = this.#vmis.get(name, namespace);
    const volumes = lookUpVmVolumes(
      vm,
      (claim) => this.#pvcs.get(claim, namespace),
      (dv) => this.#dataVolumes.get(dv, namespace),
    );
    const vmLog = this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata });
    const source = await this.#syncInstancetypes(vm, vmLog);
    if (!source) return;
    const revisions = this.#revisions;
    const revisionLookup = {
      get: (revision: string) => revisions?.get(revision, namespace),
      list: () => revisions?.list(namespace) ?? [],
    };
    const plan = planVm(vm, vmi, { now: this.#now(), jitter: this.#jitter() }, volumes, source, revisionLookup);
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: vm.metadata };
    // The status is written with the resourceVersion of the latest write, so a request virt-api added meanwhile is never lost.
    let resourceVersion = vm.metadata.resourceVersion;
    const patchVm = async (patch: JsonPatchOperation[]) => {
      resourceVersion = (await this.#api.patchVm(namespace, name, patch)).metadata.resourceVersion;
    };
    if (plan.finalizers) {
      // Letting go of a VM being deleted races the garbage collector's own finalizer: only over the list read.
      const guard: JsonPatchOperation[] = vm.metadata.deletionTimestamp
        ? [{ op: 'test', path: '/metadata/finalizers', value: vm.metadata.finalizers ?? [] }]
        : [];
      await patchVm([...guard, { op: 'add', path: '/metadata/finalizers', value: plan.finalizers }]);
    }
    if (plan.setRunStrategy) {
      const path = vm.spec.runStrategy !== undefined ? '/spec/runStrategy' : '/spec/running';
      await patchVm([{ op: 'add', path, value: path === '/spec/running' ? true : plan.setRunStrategy }]);
    }
    for (const { name: dv, patch } of plan.adoptDataVolumes ?? []) {
      vmLog.info('adopting the orphaned DataVolume', { dataVolume: dv });
      // A DataVolume gone meanwhile needs no owner.
      await this.#api.patchDataVolume(namespace, dv, patch).catch(ignoreNotFound);
    }
    if (plan.patchVmi) {
      // A VMI gone meanwhile needs no new generation; a test that fails (someone else wrote first) is tried again.
      await this.#api.patchVmi(namespace, name, plan.patchVmi).catch(ignoreNotFound);
    }
    if (plan.createDataVolumes) {
      const failure = await this.#createDataVolumes(key, vm, plan.createDataVolumes, subject);
      if (failure) {
        // Written before the failure is passed on for a retry: the VM's Failure condition tells why nothing starts.
        const body = {
          ...vm,
          metadata: { ...vm.metadata, resourceVersion },
          status: withSyncFailure(plan.status, failure.sync, this.#now()),
        };
        await this.#api
          .replaceVmStatus(namespace, name, body)
          .catch((error) => vmLog.warning('could not write the status', { error: apiErrorMessage(error) }));
        throw failure.error;
      }
    }
    if (plan.createVmi) {
      if (!this.#vmiExpectations.satisfied(key)) return;
      for (const earlier of plan.startRevision?.delete ?? [])
        await this.#api.deleteControllerRevision(namespace, earlier).catch(ignoreNotFound);
      const revision = plan.startRevision?.create;
      if (revision) {
        // Made by an earlier start that the cache has not shown yet: the same name holds the same generation.
        await this.#api.createControllerRevision(namespace, revision).catch(ignoreConflict);
      }
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

  /**
   * Captures the VM's instance type and preference (upstream's revision store) and tells what its VMI
   * may be made from. Undefined when it wrote something (the VM's change requeues it).
   */
  async #syncInstancetypes(vm: Typed<VirtualMachine>, vmLog: Logger): Promise<VmTemplateSource | undefined> {
    if (vm.metadata.deletionTimestamp || (!vm.spec.instancetype && !vm.spec.preference)) return { template: vm.spec.template };
    const namespace = vm.metadata.namespace!;
    const name = vm.metadata.name!;
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: vm.metadata };
    const inferred = inferMatchers(vm, {
      pvc: (ns, claim) => this.#pvcs.get(claim, ns),
      dataVolume: (ns, dv) => this.#dataVolumes.get(dv, ns),
    });
    if (inferred && 'error' in inferred) return { failure: { reason: 'FailedCreate', message: inferred.error } };
    if (inferred) {
      vmLog.info('inferred the instance type or preference from a volume');
      await this.#api.patchVm(namespace, name, inferred);
      return undefined;
    }
    const sync = syncInstancetypes(vm, this.#instancetypes);
    if (sync.failure) return { failure: sync.failure };
    for (const revision of sync.create) {
      try {
        await this.#api.createControllerRevision(namespace, revision);
        vmLog.info('captured an instance type or preference', { revision: revision.metadata?.name });
      } catch (error) {
        // Made by an earlier sync that the cache has not shown yet: the same name holds the same object.
        if ((error as { code?: number }).code === 409) continue;
        const message = `error encountered while storing instancetype.kubevirt.io controllerRevisions: ${apiErrorMessage(error)}`;
        this.#record(subject, 'Warning', 'FailedCreate', message);
        throw error;
      }
    }
    if (sync.patch) {
      await this.#api.patchVmStatus(namespace, name, sync.patch);
      return undefined;
    }
    if (!sync.applied) return { failure: undefined };
    const applied = appliedTemplate(vm, sync.applied);
    return 'failure' in applied ? { failure: applied.failure } : applied;
  }

  /**
   * Creates the DataVolumes in order, up to the first that fails, unless some created earlier
   * are still to show up in the cache (they would be created again). Resolves to the failure, if one did.
   */
  async #createDataVolumes(
    key: string,
    vm: VirtualMachine,
    dataVolumes: NonNullable<VmPlan['createDataVolumes']>,
    subject: { apiVersion: string; kind: string; metadata: VirtualMachine['metadata'] },
  ): Promise<{ error: unknown; sync: { reason: string; message: string } } | undefined> {
    if (!this.#dataVolumeExpectations.satisfied(key)) return undefined;
    const vmLog = this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata });
    const namespace = vm.metadata.namespace!;
    this.#dataVolumeExpectations.expectCreations(key, dataVolumes.length);
    for (const [i, dv] of dataVolumes.entries()) {
      const dvName = dv.metadata.name!;
      try {
        await this.#api.createDataVolume(namespace, dv);
        vmLog.info('created a DataVolume', { dataVolume: dvName });
        this.#record(subject, 'Normal', 'SuccessfulDataVolumeCreate', `Created DataVolume ${dvName}`);
      } catch (error) {
        // This one will not show up as ours.
        this.#dataVolumeExpectations.creationObserved(key);
        if ((error as { code?: number }).code === 409 && this.#pvcs.get(dvName, namespace)) {
          // Upstream's allowance for a CDI that refuses to adopt the claim: the claim is used as it is.
          vmLog.warning('the DataVolume is refused over its existing claim; using the claim', { dataVolume: dvName });
          continue;
        }
        // Nor will those never tried.
        for (let rest = i + 1; rest < dataVolumes.length; rest++) this.#dataVolumeExpectations.creationObserved(key);
        const reason = apiErrorMessage(error);
        this.#record(subject, 'Warning', 'FailedDataVolumeCreate', `Error creating DataVolume ${dvName}: ${reason}`);
        const message = `Error encountered while creating DataVolumes: failed to create DataVolume: ${reason}`;
        return { error, sync: { reason: 'FailedCreate', message } };
      }
    }
    return undefined;
  }
}
