// The VMI controller's decisions, as pure functions: from a VMI, the
// launcher pods it owns and the claims and DataVolumes its volumes name to
// the pod to create or delete and the VMI's next status. Only pods
// controller-owned by the VMI's UID count: labels alone can be forged by
// anyone who may create pods.
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { comparableConditions, setCondition, withoutCondition } from '../api/conditions.ts';
import { NODE_NAME_LABEL, VMI_FINALIZER } from '../api/constants.ts';
import type { DataVolume, VirtualMachineInstance, VirtualMachineInstanceStatus } from '../api/types.ts';
import { type FilesystemOverheadStatus, filesystemOverheadFor } from '../contract/cdi.ts';
import { COMPUTE_CONTAINER, computeStatus } from '../contract/launcher-pod.ts';
import {
  claimNameOf,
  isEphemeralProvisioningPod,
  isFinalPhase,
  ownedPods,
  PAUSED_NOT_READY,
  podCondition,
  podIsFinal,
  podIsReady,
  vmiIsPaused,
} from '../contract/vmi.ts';
import { keepsLauncherAfterFailure, renderLauncherPod, renderTemporaryPod, type LauncherPodParams } from './launcher-pod.ts';
import { isMigratedAwaySource, isPendingMigrationTarget } from '../contract/migration.ts';
import { jsonEqual } from '../api/json-equal.ts';

type Condition = NonNullable<VirtualMachineInstanceStatus['conditions']>[number];
type VolumeStatus = NonNullable<VirtualMachineInstanceStatus['volumeStatus']>[number];
type ClaimInfo = NonNullable<VolumeStatus['persistentVolumeClaimInfo']>;

/** The claims and DataVolumes of the VMI's namespace that its volumes name, as the caches hold them. */
export interface VmiVolumes {
  pvcs: ReadonlyMap<string, V1PersistentVolumeClaim>;
  dataVolumes: ReadonlyMap<string, DataVolume>;
  /**
   * The CDIConfig's status.filesystemOverhead (undefined without a CDIConfig,
   * or before CDI wrote its status: then CDI's default is reported).
   */
  filesystemOverhead?: FilesystemOverheadStatus;
}

export const NO_VOLUMES: VmiVolumes = { pvcs: new Map(), dataVolumes: new Map() };

/** The DataVolume a claim belongs to: CDI makes itself its claim's controller. */
export const dataVolumeOwnerOf = (pvc: V1PersistentVolumeClaim) =>
  pvc.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'DataVolume');

/** Looks up, by name, everything planVmi reads about a VMI's claims. */
export function lookUpVolumes(
  vmi: VirtualMachineInstance,
  pvc: (name: string) => V1PersistentVolumeClaim | undefined,
  dataVolume: (name: string) => DataVolume | undefined,
  filesystemOverhead?: FilesystemOverheadStatus,
): VmiVolumes {
  const pvcs = new Map<string, V1PersistentVolumeClaim>();
  const dataVolumes = new Map<string, DataVolume>();
  for (const volume of vmi.spec.volumes ?? []) {
    const name = claimNameOf(volume);
    if (!name) continue;
    const claim = pvc(name);
    if (claim) pvcs.set(name, claim);
    for (const dvName of [volume.dataVolume?.name, claim && dataVolumeOwnerOf(claim)?.name]) {
      const dv = dvName === undefined ? undefined : dataVolume(dvName);
      if (dv) dataVolumes.set(dvName!, dv);
    }
  }
  return { pvcs, dataVolumes, ...(filesystemOverhead ? { filesystemOverhead } : {}) };
}

/** The DataVolumes behind the VMI's volumes: those its dataVolume volumes name, and the owners of its PVCs (upstream's list). */
function dataVolumesOf(vmi: VirtualMachineInstance, volumes: VmiVolumes): DataVolume[] {
  const names = new Set<string>();
  for (const volume of vmi.spec.volumes ?? []) {
    if (volume.dataVolume) names.add(volume.dataVolume.name);
    const claim = volume.persistentVolumeClaim && volumes.pvcs.get(volume.persistentVolumeClaim.claimName);
    const owner = claim && dataVolumeOwnerOf(claim);
    if (owner) names.add(owner.name);
  }
  return [...names].flatMap((name) => volumes.dataVolumes.get(name) ?? []);
}

export interface VolumeReadiness {
  /** Every claim can be attached: filled, or waiting for its first consumer. */
  ready: boolean;
  /** Some claim waits for its first consumer: a temporary pod gets it bound. */
  waitForFirstConsumer: boolean;
  /** Why no pod can be made yet, in the words of the VMI's Synchronized condition (upstream's sync error). */
  trouble?: { reason: 'FailedPvcNotFound' | 'FailedDataVolumeImport'; message: string; event: RecordedEvent };
}

/** Upstream's areDataVolumesReady: a claim of no DataVolume is ready as it is; one of a DataVolume is as ready as its DataVolume. */
export function volumeReadiness(vmi: VirtualMachineInstance, volumes: VmiVolumes): VolumeReadiness {
  const namespace = vmi.metadata.namespace;
  let ready = true;
  let waitForFirstConsumer = false;
  for (const volume of vmi.spec.volumes ?? []) {
    // Hotplugged claims are attached by their own pods, later, and do not hold the launcher back.
    const name =
      volume.dataVolume && !volume.dataVolume.hotpluggable
        ? volume.dataVolume.name
        : volume.persistentVolumeClaim && !volume.persistentVolumeClaim.hotpluggable
          ? volume.persistentVolumeClaim.claimName
          : undefined;
    if (name === undefined) continue;
    const pvc = volumes.pvcs.get(name);
    if (!pvc) {
      // CDI, or whoever makes the claim, may simply not have got to it yet: wait for it, without backing off.
      const message = `PVC ${namespace}/${name} does not exist, waiting for it to appear`;
      return {
        ready: false,
        waitForFirstConsumer: false,
        trouble: { reason: 'FailedPvcNotFound', message, event: { type: 'Normal', reason: 'FailedPvcNotFound', message } },
      };
    }
    const owner = dataVolumeOwnerOf(pvc);
    if (!owner) continue;
    const dv = volumes.dataVolumes.get(owner.name);
    if (!dv) {
      const error = `DataVolume ${namespace}/${owner.name} of PVC ${name} not found`;
      return {
        ready: false,
        waitForFirstConsumer: false,
        trouble: {
          reason: 'FailedDataVolumeImport',
          message: `Error determining if volume is ready ${error}`,
          event: { type: 'Warning', reason: 'FailedPvcNotFound', message: `Error determining if volume is ready: ${error}` },
        },
      };
    }
    const phase = dv.status?.phase;
    const filled = phase === 'Succeeded' || phase === 'PendingPopulation';
    const waits = phase === 'WaitForFirstConsumer';
    waitForFirstConsumer ||= waits;
    ready &&= filled || waits;
  }
  return { ready, waitForFirstConsumer };
}

/** Upstream's aggregateDataVolumesConditions, from each DataVolume's CDI Ready condition (missing: Unknown). */
function dataVolumesReadyCondition(dataVolumes: DataVolume[], now: string): Condition {
  let status = 'True';
  for (const dv of dataVolumes) {
    const ready = dv.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
    if (ready === 'False') status = 'False';
    else if (ready !== 'True' && status === 'True') status = ready;
  }
  return status === 'True'
    ? {
        type: 'DataVolumesReady',
        status,
        reason: 'AllDVsReady',
        message: "All of the VMI's DVs are bound and ready",
        lastTransitionTime: now,
      }
    : {
        type: 'DataVolumesReady',
        status,
        reason: 'NotAllDVsReady',
        message: "Not all of the VMI's DVs are ready",
        lastTransitionTime: now,
      };
}

const isPreallocated = (pvc: V1PersistentVolumeClaim) =>
  Object.entries(pvc.metadata?.annotations ?? {}).some(
    ([key, value]) => (key.includes('/storage.preallocation') || key.includes('/storage.thick-provisioned')) && value === 'true',
  );

/**
 * What virt-handler needs of a claim without reading it: its mode and size (upstream's PersistentVolumeClaimInfo),
 * with the filesystem overhead the CDIConfig gives the claim's StorageClass (as upstream, by the claim's own
 * storageClassName, the global share when it names none).
 */
export function claimInfo(pvc: V1PersistentVolumeClaim, overheads?: FilesystemOverheadStatus): ClaimInfo {
  const mode = pvc.spec?.volumeMode;
  const requests = pvc.spec?.resources?.requests;
  const capacity = pvc.status?.capacity;
  return {
    claimName: pvc.metadata?.name,
    ...(pvc.spec?.accessModes ? { accessModes: pvc.spec.accessModes } : {}),
    ...(mode ? { volumeMode: mode } : {}),
    ...(capacity ? { capacity } : {}),
    ...(requests ? { requests } : {}),
    ...(isPreallocated(pvc) ? { preallocated: true } : {}),
    filesystemOverhead: filesystemOverheadFor(overheads, pvc.spec?.storageClassName, mode),
  };
}

/**
 * Upstream's updateVolumeStatus: one entry per volume, sorted by name, what others wrote in it kept,
 * and the claim's info for each claim-backed volume whose claim the cache holds.
 */
export function volumeStatusOf(vmi: VirtualMachineInstance, volumes: VmiVolumes): VolumeStatus[] {
  const previous = new Map((vmi.status?.volumeStatus ?? []).map((s) => [s.name, s]));
  const next: VolumeStatus[] = [];
  for (const volume of vmi.spec.volumes ?? []) {
    const status: VolumeStatus = structuredClone(previous.get(volume.name)) ?? { name: volume.name, target: '' };
    if (volume.memoryDump && !status.memoryDumpVolume) status.memoryDumpVolume = { claimName: volume.name };
    const name = claimNameOf(volume);
    const pvc = name === undefined ? undefined : volumes.pvcs.get(name);
    if (pvc) status.persistentVolumeClaimInfo = claimInfo(pvc, volumes.filesystemOverhead);
    next.push(status);
  }
  return next.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface VmiPlan {
  createPod?: V1Pod;
  deletePods?: V1Pod[];
  /** The VMI as it should be written back, when anything about it changes. */
  update?: VirtualMachineInstance;
  events: RecordedEvent[];
}

/**
 * Upstream's isPodDownOrGoingDown: the pod ended or is being deleted, or its compute container
 * exited (the console-log container keeps such a pod Running, never Ready).
 */
const podIsDownOrGoingDown = (pod: V1Pod) =>
  podIsFinal(pod) || pod.metadata?.deletionTimestamp !== undefined || computeStatus(pod)?.state?.terminated !== undefined;

const launcherExitedCleanly = (pod: V1Pod) => computeStatus(pod)?.state?.terminated?.exitCode === 0;

/** The reason a container of the pod cannot get its image, if one cannot. */
export function imagePullTrouble(pod: V1Pod): { reason: string; message: string } | undefined {
  for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason === 'ErrImagePull' || waiting?.reason === 'ImagePullBackOff') {
      return { reason: waiting.reason, message: waiting.message ?? `${status.name}: ${waiting.reason}` };
    }
  }
  return undefined;
}

/** The Ready condition as upstream derives it from the launcher pod. */
function readyCondition(vmi: VirtualMachineInstance, pod: V1Pod | undefined, now: string): Condition {
  const base = { type: 'Ready', status: 'False', lastTransitionTime: now };
  if (!pod) return { ...base, reason: 'PodNotExists', message: 'virt-launcher pod has not yet been scheduled' };
  if (podIsDownOrGoingDown(pod)) return { ...base, reason: 'PodTerminating', message: 'virt-launcher pod is terminating' };
  if (vmi.status?.phase !== 'Running') return { ...base, reason: 'GuestNotRunning', message: 'Guest VM is not reported as running' };
  const ready = podCondition(pod, 'Ready');
  if (!ready) return { ...base, reason: 'PodConditionMissing', message: 'virt-launcher pod is missing the Ready condition' };
  if (ready.status === 'True' && vmiIsPaused(vmi)) return { ...base, ...PAUSED_NOT_READY };
  return {
    ...base,
    status: ready.status,
    ...(ready.reason ? { reason: ready.reason } : {}),
    ...(ready.message ? { message: ready.message } : {}),
  };
}

/** The source pod of the VMI's migration once the guest has left it, while it is still there and not yet being deleted. */
function migratedAwayPod(vmi: VirtualMachineInstance, owned: readonly V1Pod[]): V1Pod | undefined {
  if (!vmi.status?.migrationState?.targetNodeDomainDetected) return undefined;
  return owned.find((p) => isMigratedAwaySource(vmi, p) && !p.metadata?.deletionTimestamp && !podIsFinal(p));
}

const TEMPORARY_POD_DELETABLE = new Set(['Running', 'Succeeded', 'Failed']);
const newest = (pods: V1Pod[]) =>
  [...pods].sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];

/**
 * What to do for one VMI. `candidatePods` are launcher pods of its namespace, of which only those it owns count; `podCreationPending`
 * says a pod was created and the cache has not shown it yet (expectations); `volumes` holds the claims and DataVolumes its volumes name.
 */
export function planVmi(
  vmi: VirtualMachineInstance,
  candidatePods: readonly V1Pod[],
  params: LauncherPodParams,
  now: string,
  podCreationPending = false,
  volumes: VmiVolumes = NO_VOLUMES,
  /** The VMI's node has stopped heartbeating past the timeout (../controller/node.ts). */
  nodeUnresponsive = false,
): VmiPlan {
  const plan: VmiPlan = { events: [] };
  const owned = ownedPods(vmi, candidatePods);
  // The temporary pod that binds WaitForFirstConsumer claims is never the VMI's pod: it is dealt with on its own.
  const temporary = owned.filter(isEphemeralProvisioningPod);
  // A migration's target pod becomes the VMI's pod only once the guest has moved to it, and the pod it left is no longer.
  const pods = owned.filter((p) => !isEphemeralProvisioningPod(p) && !isPendingMigrationTarget(vmi, p) && !isMigratedAwaySource(vmi, p));
  const live = pods.filter((p) => !podIsFinal(p));
  const pod = live[0] ?? pods[0];
  const phase = vmi.status?.phase ?? '';
  const deleting = vmi.metadata.deletionTimestamp !== undefined;
  const pending = phase === '' || phase === 'Pending';
  const next: VirtualMachineInstance = structuredClone(vmi);
  next.status ??= {};
  let conditions: Condition[] = next.status.conditions ?? [];
  const dataVolumes = dataVolumesOf(vmi, volumes);
  const failedDataVolume = dataVolumes.find((dv) => dv.status?.phase === 'Failed');
  // A failed DataVolume fails the VMI; waiting for a consumer would be beside the point.
  const waitingDataVolume = !failedDataVolume && dataVolumes.some((dv) => dv.status?.phase === 'WaitForFirstConsumer');
  const readiness = deleting || isFinalPhase(phase) ? undefined : volumeReadiness(vmi, volumes);
  let temporaryCreated = false;

  if (deleting) {
    const deletable = owned.filter((p) => !p.metadata?.deletionTimestamp && !podIsFinal(p));
    if (deletable.length) {
      plan.deletePods = deletable;
      for (const p of deletable)
        plan.events.push({ type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted virtual machine pod ${p.metadata?.name}` });
    }
  } else if (migratedAwayPod(vmi, owned)) {
    // The guest moved to its migration target: the source pod's helpers (image holders, console log) would run on.
    const source = migratedAwayPod(vmi, owned)!;
    plan.deletePods = [source];
    plan.events.push({ type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted migration source pod ${source.metadata?.name}` });
  } else if (isFinalPhase(phase)) {
    // The guest has ended; its pod's other containers (image holders, console log) would run on.
    // A VMI that asked for its failed launcher to be kept (for debugging) keeps its pod too.
    const lingering = keepsLauncherAfterFailure(vmi) ? [] : owned.filter((p) => !p.metadata?.deletionTimestamp && !podIsFinal(p));
    if (lingering.length) plan.deletePods = lingering;
  } else if (readiness?.trouble) {
    if (pending) plan.events.push(readiness.trouble.event);
  } else if (pending && !pod && !temporary.length && !podCreationPending) {
    // A claim still being filled holds the pod back; one waiting for its consumer gets a temporary pod to be bound.
    if (readiness?.ready) {
      temporaryCreated = readiness.waitForFirstConsumer;
      plan.createPod = temporaryCreated ? renderTemporaryPod(vmi, params, volumes.pvcs) : renderLauncherPod(vmi, params, volumes.pvcs);
    }
  } else if (!readiness?.waitForFirstConsumer) {
    // Only a pod that got as far as binding its claims is done with; a pending one may still be about to.
    const done = temporary.filter((p) => !p.metadata?.deletionTimestamp && TEMPORARY_POD_DELETABLE.has(p.status?.phase ?? ''));
    if (done.length) {
      plan.deletePods = done;
      for (const p of done)
        plan.events.push({
          type: 'Normal',
          reason: 'SuccessfulDelete',
          message: `Deleted WaitForFirstConsumer temporary pod ${p.metadata?.name}`,
        });
    }
  }
  const launcherCreated = plan.createPod !== undefined && !temporaryCreated;

  let nextPhase = phase;
  switch (phase) {
    case '':
    case 'Pending': {
      // The pod is created before the status is written, so one write records both steps.
      if (pod || launcherCreated) nextPhase = 'Scheduling';
      else if (deleting || failedDataVolume) nextPhase = 'Failed';
      else nextPhase = 'Pending';
      const trouble = readiness?.trouble;
      conditions = trouble
        ? setCondition(conditions, {
            type: 'Synchronized',
            status: 'False',
            reason: trouble.reason,
            message: trouble.message,
            lastTransitionTime: now,
          })
        : withoutCondition(conditions, 'Synchronized');
      const bindingPod = newest(temporary);
      const bindingScheduled = bindingPod && podCondition(bindingPod, 'PodScheduled');
      if (nextPhase === 'Pending' && waitingDataVolume) {
        if (!conditions.some((c) => c.type === 'Provisioning'))
          conditions = [...conditions, { type: 'Provisioning', status: 'True', lastTransitionTime: now }];
        if (bindingPod && (bindingPod.status?.phase === 'Failed' || bindingPod.metadata?.deletionTimestamp)) nextPhase = 'Failed';
      }
      if (nextPhase === 'Pending' && trouble?.reason === 'FailedPvcNotFound') {
        conditions = setCondition(conditions, {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: trouble.message,
          lastTransitionTime: now,
        });
      } else if (nextPhase === 'Pending' && waitingDataVolume && bindingScheduled?.status === 'False') {
        // The temporary pod is scheduled as the launcher will be: why it cannot be placed is why the VMI cannot.
        conditions = setCondition(conditions, {
          type: 'PodScheduled',
          status: 'False',
          reason: bindingScheduled.reason,
          message: bindingScheduled.message,
          lastTransitionTime: now,
        });
      } else {
        // Nothing is left that cannot be scheduled (a claim appeared, a temporary pod was placed): the condition would lie.
        // A launcher pod's own trouble is mirrored once the VMI is Scheduling.
        conditions = withoutCondition(conditions, 'PodScheduled');
      }
      if (nextPhase === 'Scheduling') conditions = withoutCondition(conditions, 'Provisioning');
      break;
    }
    case 'Scheduling': {
      // Scheduling is written with the pod's creation, so the cache may not show that pod yet.
      if (!pod && podCreationPending && !vmi.metadata.deletionTimestamp) return plan;
      conditions = withoutCondition(conditions, 'Provisioning');
      if (!pod) {
        nextPhase = 'Failed';
        break;
      }
      const scheduled = podCondition(pod, 'PodScheduled');
      if (scheduled?.status === 'False') {
        conditions = setCondition(conditions, {
          type: 'PodScheduled',
          status: 'False',
          reason: scheduled.reason,
          message: scheduled.message,
          lastTransitionTime: now,
        });
      } else {
        conditions = withoutCondition(conditions, 'PodScheduled');
      }
      const pull = imagePullTrouble(pod);
      if (pull) {
        conditions = setCondition(conditions, {
          type: 'Synchronized',
          status: 'False',
          reason: pull.reason,
          message: pull.message,
          lastTransitionTime: now,
        });
      } else {
        conditions = withoutCondition(conditions, 'Synchronized');
      }
      if (podIsReady(pod) && !vmi.metadata.deletionTimestamp) {
        nextPhase = 'Scheduled';
        next.status.nodeName = pod.spec?.nodeName;
        next.metadata.labels = { ...next.metadata.labels, [NODE_NAME_LABEL]: pod.spec!.nodeName! };
        next.status.qosClass = pod.status?.qosClass;
        next.status.launcherContainerImageVersion = pod.spec?.containers.find((c) => c.name === COMPUTE_CONTAINER)?.image;
      } else if (podIsDownOrGoingDown(pod)) {
        nextPhase = 'Failed';
      }
      break;
    }
    case 'Scheduled':
    case 'Running':
      // The pod is how the guest runs: without it the guest is gone. A pod that ended tells how:
      // the launcher exits 0 only after a clean shutdown.
      // On a node whose virt-handler stopped heartbeating, an ended pod is the node controller's to
      // judge (NodeUnresponsive), as upstream's: this controller fails a VMI only for a pod gone.
      if (!pods.length) nextPhase = 'Failed';
      else if (pods.every(podIsFinal) && !nodeUnresponsive)
        nextPhase = phase === 'Running' && launcherExitedCleanly(pods[0]) ? 'Succeeded' : 'Failed';
      break;
  }
  // Once the VMI has ended and no pod of it is left, nothing holds it any more.
  if (isFinalPhase(nextPhase) && owned.length === 0 && next.metadata.finalizers?.includes(VMI_FINALIZER)) {
    next.metadata.finalizers = next.metadata.finalizers.filter((f) => f !== VMI_FINALIZER);
  }
  if (nextPhase === 'Succeeded' && !isFinalPhase(phase)) {
    plan.events.push({ type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' });
  }
  if (nextPhase === 'Failed' && !isFinalPhase(phase)) {
    const bindingPod = !pod && pending && !deleting ? newest(temporary) : undefined;
    const importFailed = !pod && pending && !deleting && failedDataVolume !== undefined;
    const why = pod
      ? `its virt-launcher pod ${pod.metadata?.name} ${podIsFinal(pod) ? `ended (${pod.status?.phase})` : 'is being deleted'}`
      : importFailed
        ? `its DataVolume ${failedDataVolume!.metadata.name} failed`
        : bindingPod
          ? `the temporary pod ${bindingPod.metadata?.name} that binds its claims ${bindingPod.status?.phase === 'Failed' ? 'failed' : 'is being deleted'}`
          : 'its virt-launcher pod is gone';
    plan.events.push({ type: 'Warning', reason: 'Stopped', message: `The VirtualMachineInstance failed: ${why}` });
    // A failed import is the DataVolume's to tell (its events and conditions), not a pod's.
    if (!importFailed) next.status.reason ??= pod || bindingPod ? 'PodTerminating' : 'PodNotExists';
  }

  // A pod created now counts as existing, so the next look at it finds nothing new to write.
  conditions = setCondition(
    conditions,
    readyCondition({ ...vmi, status: { ...vmi.status, phase: nextPhase } }, live[0] ?? (launcherCreated ? plan.createPod : undefined), now),
  );
  if (dataVolumes.length) conditions = setCondition(conditions, dataVolumesReadyCondition(dataVolumes, now));
  next.status.conditions = conditions;
  next.status.phase = nextPhase;
  if (nextPhase !== phase) {
    const seen = next.status.phaseTransitionTimestamps ?? [];
    const passed = nextPhase === 'Scheduling' && !seen.some((t) => t.phase === 'Pending') ? ['Pending', 'Scheduling'] : [nextPhase];
    next.status.phaseTransitionTimestamps = [...seen, ...passed.map((p) => ({ phase: p, phaseTransitionTimestamp: now }))];
  }
  // Pods map to their nodes once the VMI is on one: written with Scheduled, not as a write of its own.
  if (pod && (nextPhase === 'Scheduled' || nextPhase === 'Running')) {
    next.status.activePods = Object.fromEntries(live.map((p) => [p.metadata!.uid!, p.spec?.nodeName ?? '']));
  }
  // virt-handler reads the claims' modes and sizes from here, and may take the VMI up while it is
  // still Scheduling: so they are written with the pod's creation, and kept current from then on.
  if (launcherCreated || ['Scheduling', 'Scheduled', 'Running'].includes(nextPhase)) {
    const volumeStatus = volumeStatusOf(vmi, volumes);
    if (volumeStatus.length) next.status.volumeStatus = volumeStatus;
  }

  if (!jsonEqual(stripProbe(next), stripProbe(vmi))) plan.update = next;
  return plan;
}

/** Comparing VMIs: a condition's recomputed times alone are no change. */
function stripProbe(vmi: VirtualMachineInstance) {
  return {
    labels: vmi.metadata.labels,
    finalizers: vmi.metadata.finalizers,
    status: { ...vmi.status, conditions: comparableConditions(vmi.status?.conditions) },
  };
}
