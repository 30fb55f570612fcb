// The VirtualMachineInstanceReplicaSet controller's decisions, as pure
// functions: from a replica set and the VMIs of its namespace to the VMIs to
// adopt, release, create and delete, and then the status to report.
// ./replicaset-controller.ts carries them out.
import type { OwnerReference, VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../api/types.ts';
import { selectorError, selectorMatches, selectorString } from '../api/selector.ts';
import { isFinalPhase } from '../contract/vmi.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';

export const REPLICASET_KIND = 'VirtualMachineInstanceReplicaSet';
/** Upstream's default burst: at most this many VMIs are created or deleted in one sync. */
export const DEFAULT_BURST_REPLICAS = 250;

type Status = NonNullable<VirtualMachineInstanceReplicaSet['status']>;
type Condition = NonNullable<Status['conditions']>[number];

const condition = (vmi: VirtualMachineInstance, type: string) => vmi.status?.conditions?.find((c) => c.type === type);

/** A VMI whose pod is going away while the VMI has not noticed yet: neither counted nor kept (upstream's "unknown"). */
const podTerminating = (vmi: VirtualMachineInstance) => {
  const ready = condition(vmi, 'Ready');
  return ready?.status === 'False' && ready.reason === 'PodTerminating';
};

/** Counted as a replica: not ended, not being deleted, its pod not going away. */
export const isActive = (vmi: VirtualMachineInstance) =>
  !isFinalPhase(vmi.status?.phase) && !vmi.metadata.deletionTimestamp && !podTerminating(vmi);
/** To be cleaned up and replaced: ended (or its pod going away), not yet being deleted. */
const isFinished = (vmi: VirtualMachineInstance) =>
  !vmi.metadata.deletionTimestamp && (isFinalPhase(vmi.status?.phase) || podTerminating(vmi));
export const isReady = (vmi: VirtualMachineInstance) => condition(vmi, 'Ready')?.status === 'True';

export function replicaSetOwnerRef(rs: VirtualMachineInstanceReplicaSet): OwnerReference {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: REPLICASET_KIND,
    name: rs.metadata.name!,
    uid: rs.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export const controllerOf = (vmi: VirtualMachineInstance) => vmi.metadata.ownerReferences?.find((o) => o.controller);

/** Why the replica set cannot be acted on (upstream logs it and does not requeue), or undefined. */
export function invalidSpec(rs: VirtualMachineInstanceReplicaSet): string | undefined {
  const labels = rs.spec.template?.metadata?.labels;
  if (!rs.spec.template || !rs.spec.selector || !labels || Object.keys(labels).length === 0) return 'invalid controller spec';
  const error = selectorError(rs.spec.selector);
  if (error) return `invalid selector: ${error}`;
  if (!selectorMatches(rs.spec.selector, labels)) return 'the selector does not match the template labels';
  return undefined;
}

/**
 * The order in which VMIs go on scale-down: those not running yet first (the further from running,
 * the sooner), then the not ready, then the newest (upstream's intended order, as for pods).
 */
const PHASE_RANK: Record<string, number> = { '': 0, Pending: 0, Scheduling: 1, Scheduled: 2, Running: 3 };
export function deletionOrder(a: VirtualMachineInstance, b: VirtualMachineInstance): number {
  const rank = (vmi: VirtualMachineInstance) => PHASE_RANK[vmi.status?.phase ?? ''] ?? 3;
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (isReady(a) !== isReady(b)) return isReady(a) ? 1 : -1;
  const created = (vmi: VirtualMachineInstance) => Date.parse(vmi.metadata.creationTimestamp ?? '') || 0;
  if (created(a) !== created(b)) return created(b) - created(a);
  return (a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1;
}

/** The patch that makes the replica set an orphan's controller, only over the owners it was computed from. */
function adoptionPatch(rs: VirtualMachineInstanceReplicaSet, vmi: VirtualMachineInstance): JsonPatchOperation[] {
  const owners = vmi.metadata.ownerReferences;
  return [
    { op: 'test', path: '/metadata/uid', value: vmi.metadata.uid },
    ...(owners ? [{ op: 'test' as const, path: '/metadata/ownerReferences', value: owners }] : []),
    { op: 'add', path: '/metadata/ownerReferences', value: [...(owners ?? []), replicaSetOwnerRef(rs)] },
  ];
}

/** The patch that lets go of a VMI whose labels no longer match: its reference to the replica set goes. */
function releasePatch(rs: VirtualMachineInstanceReplicaSet, vmi: VirtualMachineInstance): JsonPatchOperation[] {
  const owners = vmi.metadata.ownerReferences ?? [];
  return [
    { op: 'test', path: '/metadata/uid', value: vmi.metadata.uid },
    { op: 'test', path: '/metadata/ownerReferences', value: owners },
    { op: 'replace', path: '/metadata/ownerReferences', value: owners.filter((o) => o.uid !== rs.metadata.uid) },
  ];
}

export interface ReplicaSetPlan {
  /** Orphans the selector matches, with the patch that adopts each. */
  adopt: { vmi: VirtualMachineInstance; patch: JsonPatchOperation[] }[];
  /** VMIs it owns that the selector no longer matches, with the patch that releases each. */
  release: { vmi: VirtualMachineInstance; patch: JsonPatchOperation[] }[];
  /** New VMIs (generateName), as many as are missing, up to the burst. */
  create: VirtualMachineInstance[];
  /** Active VMIs beyond the replica count, in deletion order. */
  scaleDown: VirtualMachineInstance[];
  /** Ended VMIs to clean up (they are replaced, since they no longer count). */
  cleanUp: VirtualMachineInstance[];
  /** The active VMIs it owns, after adoption and release. */
  active: VirtualMachineInstance[];
  /** Replicas wanted minus active: > 0 when creating, < 0 when deleting. */
  missing: number;
}

export const wantedReplicas = (rs: VirtualMachineInstanceReplicaSet) => rs.spec.replicas ?? 1;

/** The VMI a replica set makes: its template's metadata and spec, a name generated from its base name, owned by it. */
export function vmiFromTemplate(rs: VirtualMachineInstanceReplicaSet): VirtualMachineInstance {
  const template = rs.spec.template;
  const metadata = structuredClone(template.metadata ?? {}) as VirtualMachineInstance['metadata'];
  const base = metadata.name || metadata.generateName || rs.metadata.name!;
  delete metadata.name;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { ...metadata, generateName: base, namespace: rs.metadata.namespace, ownerReferences: [replicaSetOwnerRef(rs)] },
    spec: structuredClone(template.spec!),
  };
}

/**
 * What a sync of the replica set does, given the VMIs of its namespace. `sync` is false while
 * expectations are pending, the set is paused or being deleted: then only the claim is made.
 */
export function planReplicaSet(
  rs: VirtualMachineInstanceReplicaSet,
  namespaceVmis: readonly VirtualMachineInstance[],
  options: { sync: boolean; burst?: number } = { sync: true },
): ReplicaSetPlan {
  const burst = options.burst ?? DEFAULT_BURST_REPLICAS;
  const plan: ReplicaSetPlan = { adopt: [], release: [], create: [], scaleDown: [], cleanUp: [], active: [], missing: 0 };
  const owned: VirtualMachineInstance[] = [];
  for (const vmi of namespaceVmis) {
    const ref = controllerOf(vmi);
    const matches = selectorMatches(rs.spec.selector, vmi.metadata.labels ?? {});
    if (ref?.uid === rs.metadata.uid) {
      if (matches || vmi.metadata.deletionTimestamp) owned.push(vmi);
      else plan.release.push({ vmi, patch: releasePatch(rs, vmi) });
    } else if (!ref && matches && !vmi.metadata.deletionTimestamp && !rs.metadata.deletionTimestamp) {
      plan.adopt.push({ vmi, patch: adoptionPatch(rs, vmi) });
      owned.push(vmi);
    }
  }
  plan.active = owned.filter(isActive);
  plan.missing = wantedReplicas(rs) - plan.active.length;
  if (!options.sync || rs.spec.paused || rs.metadata.deletionTimestamp) return plan;
  if (plan.missing > 0) {
    plan.create = Array.from({ length: Math.min(plan.missing, burst) }, () => vmiFromTemplate(rs));
  } else if (plan.missing < 0) {
    plan.scaleDown = [...plan.active].sort(deletionOrder).slice(0, Math.min(-plan.missing, burst));
  }
  plan.cleanUp = owned.filter(isFinished).slice(0, burst);
  return plan;
}

export interface ScaleFailure {
  /** FailedCreate or FailedDelete, as upstream's ReplicaFailure reasons. */
  reason: string;
  message: string;
}

/**
 * The status after a sync (upstream's updateStatus): the active and ready counts, the selector as
 * text for the scale subresource, ReplicaFailure while scaling fails, ReplicaPaused while paused.
 * Undefined when nothing it reports has changed.
 */
export function replicaSetStatus(
  rs: VirtualMachineInstanceReplicaSet,
  active: readonly VirtualMachineInstance[],
  failure: ScaleFailure | undefined,
  now: string,
): Status | undefined {
  const current = rs.status ?? {};
  const has = (type: string) => current.conditions?.some((c) => c.type === type) ?? false;
  const readyReplicas = active.filter(isReady).length;
  const labelSelector = selectorString(rs.spec.selector);
  const paused = rs.spec.paused === true;
  if (
    active.length === (current.replicas ?? 0) &&
    readyReplicas === (current.readyReplicas ?? 0) &&
    (failure !== undefined) === has('ReplicaFailure') &&
    paused === has('ReplicaPaused') &&
    labelSelector === current.labelSelector
  ) {
    return undefined;
  }
  let conditions: Condition[] = [...(current.conditions ?? [])];
  if (paused && !has('ReplicaPaused')) {
    conditions.push({ type: 'ReplicaPaused', status: 'True', reason: 'Paused', message: 'Controller got paused', lastTransitionTime: now });
  } else if (!paused) {
    conditions = conditions.filter((c) => c.type !== 'ReplicaPaused');
  }
  if (failure && !has('ReplicaFailure')) {
    conditions.push({ type: 'ReplicaFailure', status: 'True', reason: failure.reason, message: failure.message, lastTransitionTime: now });
  } else if (!failure) {
    conditions = conditions.filter((c) => c.type !== 'ReplicaFailure');
  }
  const status: Status = { ...current, replicas: active.length, readyReplicas, labelSelector, conditions };
  if (!conditions.length) delete status.conditions;
  return status;
}
