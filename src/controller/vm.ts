// The VM controller's decisions, as pure functions: from a VM, its VMI (if
// any) and the DataVolumes and claims it names to the changes to make.
// ./vm-controller.ts carries them out.
import { createHash } from 'node:crypto';
import type { V1ControllerRevision, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { CREATED_BY_LABEL } from '../api/constants.ts';
import type { DataVolume, VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api/types.ts';
import { CDI_GROUP, CDI_VERSION } from '../contract/cdi.ts';
import { apiTimestamp, claimNameOf, isFinalPhase, runStrategyOf, vmControllerRef } from '../contract/vmi.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';
import { capturedRevisions, matcherAnnotations } from './instancetype.ts';
import type { RecordedEvent } from './vmi.ts';

export const VM_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize';
/** The finalizer kube-apiserver puts on an object deleted with propagationPolicy Orphan, until the GC has orphaned its dependents. */
export const ORPHAN_FINALIZER = 'orphan';
/** The hash of the template a VMI was started from, to tell when a restart is required. */
export const TEMPLATE_HASH_ANNOTATION = 'kubevirt-ts.io/template-hash';
export const VM_GENERATION_ANNOTATION = 'kubevirt.io/vm-generation';
/** Upstream's ceiling on the crash-loop backoff. */
export const MAX_START_BACKOFF_SECONDS = 300;
/** "false" puts off creating a VM's DataVolumes until it starts; by default they are made as soon as the VM is seen. */
export const IMMEDIATE_DATA_VOLUME_CREATION_ANNOTATION = 'kubevirt.io/immediate-data-volume-creation';
/** Lets CDI take over a claim that already has the DataVolume's name instead of failing on it. */
export const ALLOW_CLAIM_ADOPTION_ANNOTATION = 'cdi.kubevirt.io/allowClaimAdoption';

type Condition = NonNullable<VirtualMachineStatus['conditions']>[number];
type StateChangeRequest = NonNullable<VirtualMachineStatus['stateChangeRequests']>[number];
type DataVolumeTemplate = NonNullable<VirtualMachine['spec']['dataVolumeTemplates']>[number];

/** Why a sync failed, as the VM's Failure condition tells it (upstream's sync error). */
export interface SyncFailure {
  reason: string;
  message: string;
}

export interface VmPlan {
  finalizers?: string[];
  /** Orphaned DataVolumes of the VM's templates, with the patch that makes the VM their controller. */
  adoptDataVolumes?: { name: string; patch: JsonPatchOperation[] }[];
  /** DataVolumes of the VM's templates that the cache does not hold, in template order. */
  createDataVolumes?: DataVolume[];
  createVmi?: VirtualMachineInstance;
  /** Before the VMI is created: its start revision, if the cache lacks it, and the VM's earlier ones to delete. */
  startRevision?: { create?: V1ControllerRevision; delete: string[] };
  /** A guarded JSON patch of the VMI's annotations: the VM's new generation, while its template is unchanged. */
  patchVmi?: JsonPatchOperation[];
  deleteVmi?: boolean;
  /** A Halted VM asked to start becomes Always (upstream's start on Halted). */
  setRunStrategy?: string;
  status: VirtualMachineStatus;
  events: RecordedEvent[];
  /** Reconcile again after this long (a crash-loop backoff running out). */
  requeueAfterMs?: number;
}

export interface VmClock {
  now: Date;
  /** 0 ≤ jitter < 1, to spread VMs failing together (upstream randomises too). */
  jitter: number;
}

const isFinal = (vmi: VirtualMachineInstance) => isFinalPhase(vmi.status?.phase);
const conditionTrue = (vmi: VirtualMachineInstance | undefined, type: string) =>
  vmi?.status?.conditions?.find((c) => c.type === type)?.status === 'True';
const vmiCondition = (vmi: VirtualMachineInstance | undefined, type: string) => vmi?.status?.conditions?.find((c) => c.type === type);

/**
 * The template with its live-updatable parts (CPU sockets, guest memory,
 * placement) left out: a change there needs no restart.
 */
export function templateHash(vm: VirtualMachine): string {
  const spec = structuredClone(vm.spec.template.spec ?? {}) as NonNullable<VirtualMachine['spec']['template']['spec']>;
  if (spec.domain?.cpu) delete spec.domain.cpu.sockets;
  if (spec.domain?.memory) delete spec.domain.memory.guest;
  delete spec.nodeSelector;
  delete spec.affinity;
  delete spec.tolerations;
  // The captured instance type and preference are part of what the VMI was started as: another one needs a restart.
  const revisions = capturedRevisions(vm);
  return createHash('sha256')
    .update(JSON.stringify({ spec, labels: vm.spec.template.metadata?.labels, ...(revisions.length ? { revisions } : {}) }))
    .digest('hex')
    .slice(0, 16);
}

/** JSON with every object's keys sorted, so that equal values compare equal whatever order they were written in. */
const canonicalJson = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );

/** The ControllerRevisions of the VM's namespace, as the cache holds them. */
export interface VmRevisionLookup {
  get(name: string): V1ControllerRevision | undefined;
  list(): readonly V1ControllerRevision[];
}

const NO_REVISIONS: VmRevisionLookup = { get: () => undefined, list: () => [] };

const startRevisionPrefix = (vm: VirtualMachine) => `revision-start-vm-${vm.metadata.uid}-`;

/**
 * The ControllerRevision of the VM's spec as a VMI is started from it (upstream's name, owner and
 * data: the spec with the captured instance type and preference named), so that what a VMI runs
 * can be told from what its VM has become since.
 */
export function startRevision(vm: VirtualMachine): V1ControllerRevision {
  const spec = structuredClone(vm.spec);
  const instancetypeRevision = vm.status?.instancetypeRef?.controllerRevisionRef?.name;
  if (spec.instancetype && instancetypeRevision) spec.instancetype.revisionName = instancetypeRevision;
  const preferenceRevision = vm.status?.preferenceRef?.controllerRevisionRef?.name;
  if (spec.preference && preferenceRevision) spec.preference.revisionName = preferenceRevision;
  const generation = vm.metadata.generation ?? 0;
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: { name: `${startRevisionPrefix(vm)}${generation}`, namespace: vm.metadata.namespace, ownerReferences: [vmControllerRef(vm)] },
    data: { spec },
    revision: generation,
  };
}

/** The template the VMI was started from, as its start revision holds it. */
function startedTemplate(vmi: VirtualMachineInstance, revisions: VmRevisionLookup): VirtualMachine['spec']['template'] | undefined {
  const name = vmi.status?.virtualMachineRevisionName;
  const data = name ? (revisions.get(name)?.data as { spec?: VirtualMachine['spec'] } | undefined) : undefined;
  return data?.spec?.template;
}

/** The VM generation a VMI carries in its annotation, if it carries a well-formed one. */
export function vmiGeneration(vmi: VirtualMachineInstance): number | undefined {
  const value = vmi.metadata.annotations?.[VM_GENERATION_ANNOTATION];
  return value !== undefined && /^-?\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The VMI a VM runs: its template, named after it and owned by it (upstream's SetupVMIFromVM). With
 * an instance type or preference, `applied` is the template with them applied, and the VMI is annotated
 * with their names.
 */
export function vmiFromVm(vm: VirtualMachine, startPaused = false, applied?: VirtualMachine['spec']['template']): VirtualMachineInstance {
  const template = applied ?? vm.spec.template;
  const spec = structuredClone(template.spec!);
  if (startPaused) spec.startStrategy = 'Paused';
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: vm.metadata.name,
      namespace: vm.metadata.namespace,
      ...(template.metadata?.labels ? { labels: template.metadata.labels } : {}),
      annotations: {
        ...template.metadata?.annotations,
        ...matcherAnnotations(vm),
        [TEMPLATE_HASH_ANNOTATION]: templateHash(vm),
        ...(vm.metadata.generation !== undefined ? { [VM_GENERATION_ANNOTATION]: String(vm.metadata.generation) } : {}),
      },
      ownerReferences: [vmControllerRef(vm)],
    },
    spec,
  };
}

const firstRequest = (vm: VirtualMachine): StateChangeRequest | undefined => vm.status?.stateChangeRequests?.[0];
const hasStartRequest = (vm: VirtualMachine) => firstRequest(vm)?.action === 'Start';
const hasStopRequestFor = (vm: VirtualMachine, vmi: VirtualMachineInstance) => {
  const request = firstRequest(vm);
  return request?.action === 'Stop' && request.uid === vmi.metadata.uid;
};
const startPausedRequested = (vm: VirtualMachine) => hasStartRequest(vm) && firstRequest(vm)?.data?.paused === 'true';

/** Whether the first state change request has been carried out and can go (upstream's trim rule). */
function firstRequestDone(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): boolean {
  const request = firstRequest(vm);
  if (!request) return false;
  if (request.action === 'Stop') return !vmi || !request.uid || request.uid !== vmi.metadata.uid;
  if (request.action === 'Start') return vmi !== undefined && !vmi.metadata.deletionTimestamp && !isFinal(vmi);
  return false;
}

const ranOnce = (vmi: VirtualMachineInstance) => vmi.status?.phaseTransitionTimestamps?.some((t) => t.phase === 'Running') ?? false;

/** Upstream's crash-loop delay: grows with the square of the failures, jittered, capped at 5 minutes. */
export function startBackoffSeconds(failures: number, jitter: number): number {
  const interval = Math.max(10, Math.floor(MAX_START_BACKOFF_SECONDS / 30));
  const delay = interval * Math.max(1, failures) ** 2;
  return Math.min(MAX_START_BACKOFF_SECONDS, delay + Math.floor(jitter * (Math.floor(delay / 2) + 1)));
}

const RESTARTING_STRATEGIES = new Set(['Always', 'RerunOnFailure', 'Once']);

function startFailure(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  runStrategy: string,
  clock: VmClock,
): VirtualMachineStatus['startFailure'] {
  if ((vmi && ranOnce(vmi)) || !RESTARTING_STRATEGIES.has(runStrategy)) return undefined;
  const current = vm.status?.startFailure;
  if (!vmi || !isFinal(vmi) || current?.lastFailedVMIUID === vmi.metadata.uid) return current;
  const count = (current?.consecutiveFailCount ?? 0) + 1;
  const retryAfter = new Date(clock.now.getTime() + startBackoffSeconds(count, clock.jitter) * 1000);
  return { consecutiveFailCount: count, lastFailedVMIUID: vmi.metadata.uid, retryAfterTimestamp: apiTimestamp(retryAfter) };
}

/** The DataVolumes and claims of the VM's namespace that its templates and volumes name, as the caches hold them. */
export interface VmVolumes {
  dataVolumes: ReadonlyMap<string, DataVolume>;
  pvcs: ReadonlyMap<string, V1PersistentVolumeClaim>;
}

export const NO_VM_VOLUMES: VmVolumes = { dataVolumes: new Map(), pvcs: new Map() };

/** The names planVm looks up: its templates' DataVolumes and the claims of its template's volumes. */
export function volumeNamesOf(vm: VirtualMachine): Set<string> {
  const names = new Set<string>();
  for (const template of vm.spec.dataVolumeTemplates ?? []) if (template.metadata?.name) names.add(template.metadata.name);
  for (const volume of vm.spec.template.spec?.volumes ?? []) {
    const name = claimNameOf(volume);
    if (name) names.add(name);
  }
  return names;
}

/** Looks up, by name, everything planVm reads about a VM's DataVolumes and claims. */
export function lookUpVmVolumes(
  vm: VirtualMachine,
  pvc: (name: string) => V1PersistentVolumeClaim | undefined,
  dataVolume: (name: string) => DataVolume | undefined,
): VmVolumes {
  const pvcs = new Map<string, V1PersistentVolumeClaim>();
  const dataVolumes = new Map<string, DataVolume>();
  for (const name of volumeNamesOf(vm)) {
    const claim = pvc(name);
    if (claim) pvcs.set(name, claim);
    const dv = dataVolume(name);
    if (dv) dataVolumes.set(name, dv);
  }
  return { dataVolumes, pvcs };
}

/** A template's DataVolume, as upstream makes it: named by the template, in the VM's namespace, controlled by the VM. */
export function dataVolumeFromTemplate(vm: VirtualMachine, template: DataVolumeTemplate): DataVolume {
  const metadata = structuredClone(template.metadata ?? {});
  const spec = structuredClone(template.spec);
  const priorityClassName = vm.spec.template.spec?.priorityClassName;
  if (!spec.priorityClassName && priorityClassName) spec.priorityClassName = priorityClassName;
  // A clone from "its own" namespace means the VM's, wherever the template was written.
  if (spec.source?.pvc && !spec.source.pvc.namespace) spec.source.pvc.namespace = vm.metadata.namespace!;
  return {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataVolume',
    metadata: {
      ...metadata,
      namespace: vm.metadata.namespace,
      labels: { ...metadata.labels, [CREATED_BY_LABEL]: vm.metadata.uid! },
      annotations: { ...metadata.annotations, [ALLOW_CLAIM_ADOPTION_ANNOTATION]: 'true' },
      ownerReferences: [vmControllerRef(vm)],
    },
    spec,
  };
}

/**
 * The patch that makes the VM an orphaned DataVolume's controller. It applies only to that very
 * DataVolume, and only while no one else has changed its owners meanwhile.
 */
export function adoptionPatch(vm: VirtualMachine, dv: DataVolume): JsonPatchOperation[] {
  const owners = dv.metadata.ownerReferences;
  return [
    { op: 'test', path: '/metadata/uid', value: dv.metadata.uid },
    ...(owners ? [{ op: 'test' as const, path: '/metadata/ownerReferences', value: owners }] : []),
    { op: 'add', path: '/metadata/ownerReferences', value: [...(owners ?? []), vmControllerRef(vm)] },
  ];
}

const hasController = (dv: DataVolume) => dv.metadata.ownerReferences?.some((o) => o.controller) ?? false;
const dvCondition = (dv: DataVolume, type: string) => dv.status?.conditions?.find((c) => c.type === type);

/** The DataVolumes of the templates that no controller owns yet (upstream's ClaimMatchedDataVolumes). */
function orphanedDataVolumes(vm: VirtualMachine, volumes: VmVolumes): DataVolume[] {
  if (vm.metadata.deletionTimestamp) return [];
  return (vm.spec.dataVolumeTemplates ?? []).flatMap((template) => {
    const dv = template.metadata?.name ? volumes.dataVolumes.get(template.metadata.name) : undefined;
    return dv && !hasController(dv) && !dv.metadata.deletionTimestamp ? [dv] : [];
  });
}

export interface DataVolumesSync {
  /** Every template's DataVolume is filled, or waits for the VMI's pod to be its first consumer. */
  ready: boolean;
  create: DataVolume[];
  events: RecordedEvent[];
  failure?: SyncFailure;
}

/**
 * Upstream's handleDataVolumes: the templates' DataVolumes the cache lacks are to be made, and the
 * ones it holds say whether the VMI can start. One held by another controller is used all the same.
 */
export function syncDataVolumes(vm: VirtualMachine, volumes: VmVolumes): DataVolumesSync {
  const sync: DataVolumesSync = { ready: true, create: [], events: [] };
  for (const template of vm.spec.dataVolumeTemplates ?? []) {
    const name = template.metadata?.name;
    if (!name) continue;
    const dv = volumes.dataVolumes.get(name);
    if (!dv) {
      sync.ready = false;
      sync.create.push(dataVolumeFromTemplate(vm, template));
      continue;
    }
    const phase = dv.status?.phase;
    if (phase === 'Succeeded' || phase === 'WaitForFirstConsumer' || phase === 'PendingPopulation') continue;
    sync.ready = false;
    if (phase === 'Failed') {
      sync.events.push({ type: 'Warning', reason: 'FailedDataVolumeImport', message: `DataVolume ${name} failed to import disk image` });
    } else if (phase === 'Pending') {
      const bound = dvCondition(dv, 'Bound');
      if (bound && bound.status !== 'True' && bound.reason === 'ErrExceededQuota') {
        sync.events.push({ type: 'Warning', reason: 'FailedDataVolumeImport', message: `DataVolume ${name} exceeds quota limits` });
        const error = `DataVolume ${name} importer is not running due to an error: ${bound.message ?? ''}`;
        sync.failure = { reason: 'FailedCreate', message: `Error encountered while creating DataVolumes: ${error}` };
        return sync;
      }
    }
  }
  return sync;
}

/** The existing DataVolumes of the template's dataVolume volumes (claims named directly are not CDI's to report on). */
const templateDataVolumes = (vm: VirtualMachine, volumes: VmVolumes) =>
  (vm.spec.template.spec?.volumes ?? []).flatMap((v) => (v.dataVolume ? (volumes.dataVolumes.get(v.dataVolume.name) ?? []) : []));

/** Upstream's HasDataVolumeErrors. */
function hasDataVolumeErrors(vm: VirtualMachine, volumes: VmVolumes): boolean {
  return templateDataVolumes(vm, volumes).some((dv) => {
    const running = dvCondition(dv, 'Running');
    return (
      dv.status?.phase === 'Failed' || (running?.status === 'False' && (running.reason === 'Error' || running.reason === 'ImagePullFailed'))
    );
  });
}

/** Upstream's HasDataVolumeProvisioning: a claim waiting for its consumer is not being provisioned until it is bound. */
function hasDataVolumeProvisioning(vm: VirtualMachine, volumes: VmVolumes): boolean {
  return templateDataVolumes(vm, volumes).some((dv) => {
    const phase = dv.status?.phase;
    if (phase === 'Succeeded' || phase === 'PendingPopulation') return false;
    return dvCondition(dv, 'Bound')?.status === 'True' || phase !== 'WaitForFirstConsumer';
  });
}

/** Upstream's HasUnboundPVC: a claim the template names exists and is not bound yet. */
function hasUnboundPvc(vm: VirtualMachine, volumes: VmVolumes): boolean {
  return (vm.spec.template.spec?.volumes ?? []).some((v) => {
    const name = claimNameOf(v);
    const pvc = name === undefined ? undefined : volumes.pvcs.get(name);
    return pvc !== undefined && pvc.status?.phase !== 'Bound';
  });
}

/** Upstream's isSetToStart: whether the VM is meant to be running. */
function isSetToStart(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): boolean {
  switch (runStrategyOf(vm)) {
    case 'Always':
      return true;
    case 'Manual':
      return vmi ? !hasStopRequestFor(vm, vmi) : hasStartRequest(vm);
    case 'RerunOnFailure':
      // Without a VMI, only a start request or a new run strategy starts it (upstream's shouldStartRerunOnFailure).
      return vmi ? vmi.status?.phase !== 'Succeeded' : hasStartRequest(vm) || vm.status?.runStrategy !== 'RerunOnFailure';
    case 'Once':
      return vmi === undefined;
    default:
      return false;
  }
}

/** upstream's printableStatus, first match wins, over the states kubevirt-ts can be in. */
export function printableStatus(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  startExpected = false,
  volumes: VmVolumes = NO_VM_VOLUMES,
): string {
  const stopExpected = vmi !== undefined && (runStrategyOf(vm) === 'Halted' || hasStopRequestFor(vm, vmi));
  if (vm.metadata.deletionTimestamp) return 'Terminating';
  if (vmi && !isFinal(vmi) && (vmi.metadata.deletionTimestamp || stopExpected)) return 'Stopping';
  if (vmi?.status?.migrationState && !vmi.status.migrationState.completed) return 'Migrating';
  if (vmi?.status?.phase === 'Running') return conditionTrue(vmi, 'Paused') ? 'Paused' : 'Running';
  const sync = vmiCondition(vmi, 'Synchronized');
  if (sync?.status === 'False' && sync.reason === 'FailedPvcNotFound') return 'ErrorPvcNotFound';
  if (hasDataVolumeErrors(vm, volumes)) return 'DataVolumeError';
  const scheduled = vmiCondition(vmi, 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') return 'ErrorUnschedulable';
  if (hasDataVolumeProvisioning(vm, volumes)) return 'Provisioning';
  if (isSetToStart(vm, vmi) && hasUnboundPvc(vm, volumes)) return 'WaitingForVolumeBinding';
  if (sync?.status === 'False' && sync.reason === 'ErrImagePull') return 'ErrImagePull';
  if (sync?.status === 'False' && sync.reason === 'ImagePullBackOff') return 'ImagePullBackOff';
  if (vmi ? ['', 'Pending', 'Scheduling', 'Scheduled'].includes(vmi.status?.phase ?? '') : startExpected) return 'Starting';
  if (
    (!vmi || isFinal(vmi)) &&
    !startExpected &&
    (vm.status?.startFailure?.consecutiveFailCount ?? 0) > 0 &&
    RESTARTING_STRATEGIES.has(runStrategyOf(vm))
  ) {
    return 'CrashLoopBackOff';
  }
  if (vmi ? isFinal(vmi) : !startExpected) return 'Stopped';
  return 'Unknown';
}

function readyCondition(vmi: VirtualMachineInstance | undefined, now: string, previous: Condition[] | undefined): Condition {
  const source = vmiCondition(vmi, 'Ready');
  const next: Condition = !vmi
    ? { type: 'Ready', status: 'False', reason: 'VMINotExists', message: 'VMI does not exist', lastTransitionTime: now }
    : source
      ? {
          type: 'Ready',
          status: source.status,
          ...(source.reason ? { reason: source.reason } : {}),
          ...(source.message ? { message: source.message } : {}),
          lastTransitionTime: source.lastTransitionTime ?? now,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'VMIConditionMissing',
          message: 'VMI is missing the Ready condition',
          lastTransitionTime: now,
        };
  const old = previous?.find((c) => c.type === 'Ready');
  if (old && old.status === next.status && old.reason === next.reason && old.message === next.message) return old;
  return next;
}

function restartRequired(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  now: string,
  previous: Condition[] | undefined,
): Condition | undefined {
  const hash = vmi?.metadata.annotations?.[TEMPLATE_HASH_ANNOTATION];
  if (!vmi || isFinal(vmi) || !hash || hash === templateHash(vm)) return undefined;
  return (
    previous?.find((c) => c.type === 'RestartRequired') ?? {
      type: 'RestartRequired',
      status: 'True',
      message: 'a non-live-updatable field was changed in the template spec',
      lastTransitionTime: now,
    }
  );
}

/** The VM's Failure condition for a failed sync; its transition time stays while the failure does. */
function failureCondition(failure: SyncFailure, now: string, previous: Condition[] | undefined): Condition {
  const old = previous?.find((c) => c.type === 'Failure');
  if (old && old.status === 'True' && old.reason === failure.reason && old.message === failure.message) return old;
  return { type: 'Failure', status: 'True', reason: failure.reason, message: failure.message, lastTransitionTime: now };
}

/** The status with the Failure condition of a sync that failed while the plan was carried out. */
export function withSyncFailure(status: VirtualMachineStatus, failure: SyncFailure, now: Date): VirtualMachineStatus {
  const conditions = status.conditions ?? [];
  const failed = failureCondition(failure, apiTimestamp(now), conditions);
  const others = conditions.filter((c) => c.type !== 'Failure');
  const ready = others.findIndex((c) => c.type === 'Ready');
  const at = ready < 0 ? others.length : ready;
  return { ...status, conditions: [...others.slice(0, at), failed, ...others.slice(at)] };
}

/**
 * Upstream's conditionallyBumpGenerationAnnotationOnVmi: a VM generation that left the template
 * as the VMI was started from (a run strategy change, say) is the VMI's generation too. The patch
 * applies only over the VMI as read. It tests the resourceVersion, not the annotations: kube-apiserver
 * compares a tested string by its JSON bytes, and Go writes `>`, `<` and `&` escaped (`\u003e`) where
 * JSON.stringify does not, so a test of an annotation holding one never passes.
 */
function generationBump(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  revisions: VmRevisionLookup,
): JsonPatchOperation[] | undefined {
  const generation = vm.metadata.generation;
  const annotations = vmi?.metadata.annotations;
  if (!vmi || generation === undefined || vmi.metadata.deletionTimestamp) return undefined;
  if (annotations?.[VM_GENERATION_ANNOTATION] === String(generation)) return undefined;
  const started = startedTemplate(vmi, revisions);
  if (started === undefined || canonicalJson(started) !== canonicalJson(vm.spec.template)) return undefined;
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: vmi.metadata.resourceVersion },
    { op: 'replace', path: '/metadata/annotations', value: { ...annotations, [VM_GENERATION_ANNOTATION]: String(generation) } },
  ];
}

/** Conditions the VM controller decides itself; every other condition of the VMI is the VM's too. */
const VM_OWN_CONDITIONS = new Set(['Ready', 'Failure', 'RestartRequired']);

/** What to do for a VM, given its VMI (if one exists), the DataVolumes and claims it names, and the time. */
/**
 * What the VM's instance type and preference allow: the template to start from (with them applied),
 * or why it cannot start yet (a failure, or, with neither, revisions still to be captured).
 */
export type VmTemplateSource = { template: VirtualMachine['spec']['template'] } | { failure?: SyncFailure };

export function planVm(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  clock: VmClock = { now: new Date(), jitter: 0 },
  volumes: VmVolumes = NO_VM_VOLUMES,
  source: VmTemplateSource = { template: vm.spec.template },
  revisions: VmRevisionLookup = NO_REVISIONS,
): VmPlan {
  const now = apiTimestamp(clock.now);
  const runStrategy = runStrategyOf(vm);
  const owned = vmi?.metadata.ownerReferences?.some((o) => o.controller && o.uid === vm.metadata.uid);
  const ours = owned ? vmi : undefined;
  const plan: VmPlan = { status: { ...vm.status }, events: [] };
  const finalizers = vm.metadata.finalizers ?? [];
  let syncFailure: SyncFailure | undefined;
  let dataVolumes: DataVolumesSync | undefined;
  const syncTemplates = (): DataVolumesSync => {
    if (dataVolumes) return dataVolumes;
    dataVolumes = syncDataVolumes(vm, volumes);
    if (dataVolumes.create.length) plan.createDataVolumes = dataVolumes.create;
    plan.events.push(...dataVolumes.events);
    syncFailure = dataVolumes.failure;
    return dataVolumes;
  };

  const stop = () => {
    if (!ours || ours.metadata.deletionTimestamp) return;
    plan.deleteVmi = true;
    plan.events.push({
      type: 'Normal',
      reason: 'SuccessfulDelete',
      message: `Stopped the virtual machine by deleting the virtual machine instance ${ours.metadata.uid}`,
    });
  };
  const start = (failure: VirtualMachineStatus['startFailure']) => {
    // Made here when their creation waits for the start; either way the VMI waits for them.
    const templates = syncTemplates();
    if (templates.failure || !templates.ready) return;
    if (!('template' in source)) {
      // Nothing starts before the instance type and preference are captured and apply.
      syncFailure ??= source.failure;
      return;
    }
    const retryAt = failure?.retryAfterTimestamp ? Date.parse(failure.retryAfterTimestamp) : 0;
    if (retryAt > clock.now.getTime()) {
      plan.requeueAfterMs = retryAt - clock.now.getTime();
      return;
    }
    const revision = startRevision(vm);
    plan.createVmi = {
      ...vmiFromVm(vm, startPausedRequested(vm), source.template),
      status: { virtualMachineRevisionName: revision.metadata!.name },
    };
    // Upstream keeps one start revision per VM: those of earlier generations go.
    const prefix = startRevisionPrefix(vm);
    const earlier = revisions.list().filter((r) => r.metadata?.name?.startsWith(prefix) && r.metadata.name !== revision.metadata!.name);
    plan.startRevision = {
      ...(revisions.get(revision.metadata!.name!) ? {} : { create: revision }),
      delete: earlier.map((r) => r.metadata!.name!),
    };
    plan.events.push({
      type: 'Normal',
      reason: 'SuccessfulCreate',
      message: `Started the virtual machine by creating the new virtual machine instance ${vm.metadata.name}`,
    });
  };

  const failure = startFailure(vm, ours, runStrategy, clock);
  let observedGeneration = ours ? vmiGeneration(ours) : undefined;
  if (vm.metadata.deletionTimestamp) {
    // Deleted with propagationPolicy Orphan, the garbage collector leaves the VMI running on its
    // own (it takes the ownerReference off): the VM only lets go, as upstream's.
    const orphaning = finalizers.includes(ORPHAN_FINALIZER);
    if (ours && !orphaning) stop();
    else if (finalizers.includes(VM_FINALIZER)) plan.finalizers = finalizers.filter((f) => f !== VM_FINALIZER);
  } else {
    if (!finalizers.includes(VM_FINALIZER)) plan.finalizers = [...finalizers, VM_FINALIZER];
    const bump = generationBump(vm, ours, revisions);
    if (bump) {
      plan.patchVmi = bump;
      observedGeneration = vm.metadata.generation;
    }
    const orphans = orphanedDataVolumes(vm, volumes);
    if (orphans.length) plan.adoptDataVolumes = orphans.map((dv) => ({ name: dv.metadata.name!, patch: adoptionPatch(vm, dv) }));
    // As upstream: the DataVolumes are made (and imported) even for a VM that is not to run, and
    // until they are ready nothing is started or stopped, except that a Halted VM stays halted.
    let settled = true;
    if (vm.metadata.annotations?.[IMMEDIATE_DATA_VOLUME_CREATION_ANNOTATION] !== 'false') {
      const templates = syncTemplates();
      settled = !templates.failure && (templates.ready || runStrategy === 'Halted');
    }
    // A VMI of the same name that this VM does not own is left alone, and nothing is created over it.
    if (settled && (!vmi || owned)) {
      switch (runStrategy) {
        case 'Always':
          if (!ours) start(failure);
          else if (hasStopRequestFor(vm, ours) || isFinal(ours)) stop();
          break;
        case 'RerunOnFailure':
          if (ours) {
            if (hasStopRequestFor(vm, ours) || isFinal(ours)) stop();
            // A failed VMI comes back; one that ended of its own accord stays stopped.
            if (ours.status?.phase === 'Failed' && !ours.metadata.deletionTimestamp && !hasStartRequest(vm)) {
              plan.status.stateChangeRequests = [...(plan.status.stateChangeRequests ?? []), { action: 'Start' }];
            }
          } else if (hasStartRequest(vm) || vm.status?.runStrategy !== runStrategy) {
            start(failure);
          }
          break;
        case 'Manual':
          if (ours && hasStopRequestFor(vm, ours)) stop();
          else if (!ours && hasStartRequest(vm)) start(undefined);
          break;
        case 'Halted':
          if (ours) stop();
          else if (hasStartRequest(vm)) plan.setRunStrategy = 'Always';
          break;
        case 'Once':
          // Started once, the first time the VM is seen under Once; what it ends as stays.
          if (!ours && vm.status?.runStrategy !== 'Once') start(failure);
          break;
      }
    }
  }

  const previous = vm.status?.conditions;
  // Upstream's syncConditions: the VMI's conditions become the VM's; without a VMI the last ones stay.
  const mirrored = ours ? (ours.status?.conditions ?? []) : (previous ?? []);
  const conditions: Condition[] = mirrored.filter((c) => !VM_OWN_CONDITIONS.has(c.type)).map((c) => ({ ...c }));
  // A missing instance type or preference is reported whether or not the VM is to run, as upstream's.
  if (!('template' in source) && source.failure && !vm.metadata.deletionTimestamp) syncFailure ??= source.failure;
  if (syncFailure) conditions.push(failureCondition(syncFailure, now, previous));
  conditions.push(readyCondition(ours, now, previous));
  const restart = restartRequired(vm, ours, now, previous);
  if (restart) conditions.push(restart);
  // A start put off by the crash-loop backoff is not under way: upstream shows CrashLoopBackOff meanwhile.
  const startExpected = plan.createVmi !== undefined;
  plan.status = {
    ...plan.status,
    created: ours !== undefined,
    ready: conditionTrue(ours, 'Ready'),
    conditions,
    printableStatus: printableStatus({ ...vm, status: { ...vm.status, startFailure: failure } }, ours, startExpected, volumes),
    // Reported from the first start on, so that RerunOnFailure can tell a fresh VM from a stopped one.
    ...(vm.status?.runStrategy || ours || plan.createVmi ? { runStrategy } : {}),
  };
  // Upstream's syncGenerationInfo: reported while a VMI exists; without one the last figures stay.
  if (ours && observedGeneration !== undefined) {
    plan.status.observedGeneration = observedGeneration;
    if (vm.metadata.generation !== undefined) plan.status.desiredGeneration = vm.metadata.generation;
  }
  if (failure) plan.status.startFailure = failure;
  else delete plan.status.startFailure;
  if (firstRequestDone(vm, ours)) plan.status.stateChangeRequests = plan.status.stateChangeRequests?.slice(1);
  if (plan.status.stateChangeRequests?.length === 0) delete plan.status.stateChangeRequests;
  return plan;
}
