// The VirtualMachinePool controller's decisions, as pure functions: from a
// pool, the VMs of its namespace and their VMIs to the VMs to create (named
// <pool>-<ordinal>, their DataVolume templates and, when asked, secret and
// config map references suffixed with the ordinal), delete, update to the
// current template, and the VMIs to restart on it; then the status.
// ./pool-controller.ts carries them out.
import type { V1ControllerRevision } from '@kubernetes/client-node';
import { jsonEqual } from '../api/json-equal.ts';
import { selectorError, selectorMatches, selectorString } from '../api/selector.ts';
import type {
  OwnerReference,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachinePool,
  VirtualMachinePoolSpec,
  VirtualMachineSpec,
} from '../api/types.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';
import { isReady } from './replicaset.ts';
import { TEMPLATE_HASH_ANNOTATION, templateHash } from './vm.ts';

export const POOL_KIND = 'VirtualMachinePool';
export const POOL_API_VERSION = 'pool.kubevirt.io/v1beta1';
/** The pool revision a VM (and its template, so its VMI) was made from. */
export const POOL_REVISION_LABEL = 'kubevirt.io/vm-pool-revision-name';
export const DEFAULT_BURST_REPLICAS = 250;

type Status = NonNullable<VirtualMachinePool['status']>;
type Condition = NonNullable<Status['conditions']>[number];

export function poolOwnerRef(pool: VirtualMachinePool): OwnerReference {
  return {
    apiVersion: POOL_API_VERSION,
    kind: POOL_KIND,
    name: pool.metadata.name!,
    uid: pool.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

const controllerOf = (vm: VirtualMachine) => vm.metadata.ownerReferences?.find((o) => o.controller);

/** Why the pool cannot be acted on (upstream logs it and does not requeue), or undefined. */
export function invalidPool(pool: VirtualMachinePool): string | undefined {
  const error = selectorError(pool.spec.selector);
  if (error) return `invalid selector: ${error}`;
  if (!selectorMatches(pool.spec.selector, pool.spec.virtualMachineTemplate.metadata?.labels ?? {})) {
    return 'the selector does not match the template labels';
  }
  return undefined;
}

/** The ordinal a pool VM's name ends with, or undefined. */
export function ordinalOf(name: string): number | undefined {
  const match = /-(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * The VM spec for the VM of this ordinal (upstream's indexVMSpec): DataVolume templates and the volumes
 * naming them get `-<ordinal>`; with nameGeneration, config map and secret references (cloud-init's
 * user and network data secrets among them) get it too.
 */
export function indexedVmSpec(pool: VirtualMachinePool, ordinal: number): VirtualMachineSpec {
  const spec = structuredClone(pool.spec.virtualMachineTemplate.spec);
  const suffix = `-${ordinal}`;
  const renamed = new Map<string, string>();
  for (const template of spec.dataVolumeTemplates ?? []) {
    if (!template.metadata?.name) continue;
    renamed.set(template.metadata.name, template.metadata.name + suffix);
    template.metadata.name += suffix;
  }
  const configMaps = pool.spec.nameGeneration?.appendIndexToConfigMapRefs === true;
  const secrets = pool.spec.nameGeneration?.appendIndexToSecretRefs === true;
  for (const volume of spec.template.spec?.volumes ?? []) {
    if (volume.persistentVolumeClaim) {
      const name = renamed.get(volume.persistentVolumeClaim.claimName);
      if (name) volume.persistentVolumeClaim.claimName = name;
    } else if (volume.dataVolume) {
      const name = renamed.get(volume.dataVolume.name);
      if (name) volume.dataVolume.name = name;
    } else if (volume.configMap && configMaps) {
      volume.configMap.name = `${volume.configMap.name ?? ''}${suffix}`;
    } else if (volume.secret && secrets) {
      volume.secret.secretName = `${volume.secret.secretName ?? ''}${suffix}`;
    } else if (secrets) {
      for (const source of [volume.cloudInitNoCloud, volume.cloudInitConfigDrive]) {
        if (source?.secretRef) source.secretRef.name = `${source.secretRef.name ?? ''}${suffix}`;
        if (source?.networkDataSecretRef) source.networkDataSecretRef.name = `${source.networkDataSecretRef.name ?? ''}${suffix}`;
      }
    }
  }
  return spec;
}

/** The name of the pool's revision for its current generation (upstream's getRevisionName). */
export const poolRevisionName = (pool: VirtualMachinePool) => `${pool.metadata.name}-${pool.metadata.generation ?? 0}`;

/** The ControllerRevision recording the pool's spec of this generation, owned by the pool. */
export function poolRevision(pool: VirtualMachinePool): V1ControllerRevision {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: { name: poolRevisionName(pool), namespace: pool.metadata.namespace, ownerReferences: [poolOwnerRef(pool)] },
    data: pool.spec,
    revision: pool.metadata.generation ?? 0,
  };
}

/** What the pool's template makes of the VM of this ordinal: its labels, annotations and spec, with the revision label. */
function desiredVm(pool: VirtualMachinePool, ordinal: number, revision: string) {
  const template = pool.spec.virtualMachineTemplate;
  const spec = indexedVmSpec(pool, ordinal);
  spec.template.metadata = { ...spec.template.metadata, labels: { ...spec.template.metadata?.labels, [POOL_REVISION_LABEL]: revision } };
  return {
    labels: { ...template.metadata?.labels, [POOL_REVISION_LABEL]: revision },
    annotations: { ...template.metadata?.annotations },
    spec,
  };
}

/** A new pool VM. */
export function poolVm(pool: VirtualMachinePool, ordinal: number, revision: string): VirtualMachine {
  const { labels, annotations, spec } = desiredVm(pool, ordinal, revision);
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      name: `${pool.metadata.name}-${ordinal}`,
      namespace: pool.metadata.namespace,
      labels,
      ...(Object.keys(annotations).length ? { annotations } : {}),
      ownerReferences: [poolOwnerRef(pool)],
    },
    spec,
  };
}

/**
 * Whether the VM is outdated (upstream's isOutdatedVM): it names no revision, or one whose VM template
 * differs from the pool's now. The pool's current revision, not yet in the cache, is current.
 */
function outdated(
  pool: VirtualMachinePool,
  vm: VirtualMachine,
  revisionSpec: (name: string) => VirtualMachinePoolSpec | undefined,
): boolean {
  const name = vm.metadata.labels?.[POOL_REVISION_LABEL];
  if (!name) return true;
  if (name === poolRevisionName(pool)) return false;
  const recorded = revisionSpec(name);
  return !recorded || !jsonEqual(recorded.virtualMachineTemplate, pool.spec.virtualMachineTemplate);
}

/**
 * The update that brings an outdated VM to the current template (upstream's opportunistic update): a
 * JSON patch, only over the VM as read, keeping the firmware UUID and serial that identify it to its guest.
 */
function updatePatch(pool: VirtualMachinePool, vm: VirtualMachine, ordinal: number, revision: string): JsonPatchOperation[] {
  const desired = desiredVm(pool, ordinal, revision);
  const firmware = vm.spec.template.spec?.domain.firmware;
  const domain = desired.spec.template.spec?.domain;
  if (domain && (firmware?.uuid || firmware?.serial)) {
    domain.firmware = {
      ...domain.firmware,
      ...(firmware.uuid ? { uuid: firmware.uuid } : {}),
      ...(firmware.serial ? { serial: firmware.serial } : {}),
    };
  }
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: vm.metadata.resourceVersion },
    { op: 'replace', path: '/spec', value: desired.spec },
    { op: 'add', path: '/metadata/labels', value: desired.labels },
    { op: 'add', path: '/metadata/annotations', value: desired.annotations },
  ];
}

export interface PoolPlan {
  /** VMs it owns that the selector no longer matches: their reference to the pool goes. */
  release: { vm: VirtualMachine; patch: JsonPatchOperation[] }[];
  /** The revision of the pool's current spec, when VMs are to be made or updated and it is not in the cache. */
  createRevision?: V1ControllerRevision;
  create: VirtualMachine[];
  delete: VirtualMachine[];
  update: { vm: VirtualMachine; patch: JsonPatchOperation[] }[];
  /** VMIs started from another template than their VM's now: deleted, their VM starts them again (proactive update). */
  restart: VirtualMachineInstance[];
  /** VMs it owns, after release. */
  owned: VirtualMachine[];
}

const SORT_POLICIES: Record<string, (a: VirtualMachine, b: VirtualMachine) => number> = {
  DescendingOrder: (a, b) => (ordinalOf(b.metadata.name!) ?? 0) - (ordinalOf(a.metadata.name!) ?? 0),
  AscendingOrder: (a, b) => (ordinalOf(a.metadata.name!) ?? 0) - (ordinalOf(b.metadata.name!) ?? 0),
  Newest: (a, b) => Date.parse(b.metadata.creationTimestamp ?? '') - Date.parse(a.metadata.creationTimestamp ?? ''),
  Oldest: (a, b) => Date.parse(a.metadata.creationTimestamp ?? '') - Date.parse(b.metadata.creationTimestamp ?? ''),
};

/**
 * What a sync of the pool does. `namespaceVms` are all the VMs of its namespace (new names must be
 * free among them), `vmiOf` finds a VM's VMI, `revisionSpec` the pool spec a cached revision records.
 * `sync` is false while expectations are pending: then only the claim is made.
 */
export function planPool(
  pool: VirtualMachinePool,
  namespaceVms: readonly VirtualMachine[],
  vmiOf: (name: string) => VirtualMachineInstance | undefined,
  revisionSpec: (name: string) => VirtualMachinePoolSpec | undefined,
  options: { sync: boolean; burst?: number } = { sync: true },
): PoolPlan {
  const burst = options.burst ?? DEFAULT_BURST_REPLICAS;
  const plan: PoolPlan = { release: [], create: [], delete: [], update: [], restart: [], owned: [] };
  for (const vm of namespaceVms) {
    if (controllerOf(vm)?.uid !== pool.metadata.uid) continue;
    if (selectorMatches(pool.spec.selector, vm.metadata.labels ?? {}) || vm.metadata.deletionTimestamp) {
      plan.owned.push(vm);
      continue;
    }
    const owners = vm.metadata.ownerReferences ?? [];
    plan.release.push({
      vm,
      patch: [
        { op: 'test', path: '/metadata/ownerReferences', value: owners },
        { op: 'replace', path: '/metadata/ownerReferences', value: owners.filter((o) => o.uid !== pool.metadata.uid) },
      ],
    });
  }
  if (!options.sync || pool.spec.paused || pool.metadata.deletionTimestamp) return plan;
  const revision = poolRevisionName(pool);
  const needRevision = () => {
    if (!revisionSpec(revision)) plan.createRevision = poolRevision(pool);
  };
  const wanted = pool.spec.replicas ?? 1;
  const deleting = plan.owned.filter((vm) => vm.metadata.deletionTimestamp);
  const live = plan.owned.filter((vm) => !vm.metadata.deletionTimestamp);
  const diff = plan.owned.length - wanted;
  if (diff < 0) {
    needRevision();
    const taken = new Set(namespaceVms.map((vm) => vm.metadata.name));
    for (let ordinal = 0; plan.create.length < Math.min(-diff, burst); ordinal++) {
      if (!taken.has(`${pool.metadata.name}-${ordinal}`)) plan.create.push(poolVm(pool, ordinal, revision));
    }
    return plan;
  }
  if (diff > 0) {
    if (pool.spec.scaleInStrategy?.unmanaged) return plan;
    // As the brief of upstream's older pools: the highest ordinals go first, unless a sort policy says otherwise.
    const policy = pool.spec.scaleInStrategy?.proactive?.selectionPolicy?.sortPolicy ?? 'DescendingOrder';
    const count = Math.min(diff - deleting.length, burst);
    if (count > 0) plan.delete = [...live].sort(SORT_POLICIES[policy] ?? SORT_POLICIES.DescendingOrder).slice(0, count);
    return plan;
  }
  // Scale is stable: bring VMs, then their VMIs, to the current template.
  if (pool.spec.updateStrategy?.unmanaged) return plan;
  for (const vm of live) {
    const ordinal = ordinalOf(vm.metadata.name!);
    if (ordinal === undefined || !outdated(pool, vm, revisionSpec)) continue;
    needRevision();
    plan.update.push({ vm, patch: updatePatch(pool, vm, ordinal, revision) });
  }
  if (plan.update.length || pool.spec.updateStrategy?.opportunistic) return plan;
  // VMIs restarted by an earlier sync are still down (deleted, starting, not yet Ready): they count
  // against maxUnavailable, so the update rolls through the pool instead of taking it all down.
  const unavailable = live.filter((vm) => !isAvailable(vmiOf(vm.metadata.name!))).length;
  const restartable = maxUnavailable(pool) - unavailable;
  for (const vm of live) {
    if (plan.restart.length >= restartable) break;
    const vmi = vmiOf(vm.metadata.name!);
    if (!vmi || vmi.metadata.deletionTimestamp) continue;
    const started = vmi.metadata.annotations?.[TEMPLATE_HASH_ANNOTATION];
    if (started !== undefined && started !== templateHash(vm)) plan.restart.push(vmi);
  }
  return plan;
}

/** A VMI that serves (upstream's isVMIReady): Running and Ready, not being deleted. A VM without one is unavailable. */
const isAvailable = (vmi: VirtualMachineInstance | undefined) =>
  !!vmi && !vmi.metadata.deletionTimestamp && vmi.status?.phase === 'Running' && isReady(vmi);

/** How many VMIs may be restarted at once by a proactive update (upstream's maxUnavailable, 100% by default, at least 1). */
function maxUnavailable(pool: VirtualMachinePool): number {
  const replicas = pool.spec.replicas ?? 1;
  const value = pool.spec.maxUnavailable ?? '100%';
  const count = typeof value === 'number' ? value : Math.floor((replicas * Number.parseInt(value, 10)) / 100);
  return Math.max(1, Number.isNaN(count) ? 1 : count);
}

export interface PoolSyncFailure {
  /** FailedScaleOut, FailedScaleIn or FailedUpdate, as upstream's. */
  reason: string;
  message: string;
}

/** The pool's status after a sync (upstream's updateStatus), or undefined when it would not change. */
export function poolStatus(
  pool: VirtualMachinePool,
  owned: readonly VirtualMachine[],
  failure: PoolSyncFailure | undefined,
  now: string,
): Status | undefined {
  const current = pool.status ?? {};
  let conditions: Condition[] = [...(current.conditions ?? [])];
  const has = (type: string) => conditions.some((c) => c.type === type);
  if (failure && !has('ReplicaFailure')) {
    conditions.push({ type: 'ReplicaFailure', status: 'True', reason: failure.reason, message: failure.message, lastTransitionTime: now });
  } else if (!failure) {
    conditions = conditions.filter((c) => c.type !== 'ReplicaFailure');
  }
  if (pool.spec.paused && !has('ReplicaPaused')) {
    conditions.push({
      type: 'ReplicaPaused',
      status: 'True',
      reason: 'SuccessfulPaused',
      message: 'Pool controller is paused',
      lastTransitionTime: now,
    });
  } else if (!pool.spec.paused) {
    conditions = conditions.filter((c) => c.type !== 'ReplicaPaused');
  }
  const status: Status = {
    ...current,
    replicas: owned.length,
    readyReplicas: owned.filter((vm) => vm.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length,
    labelSelector: selectorString(pool.spec.selector),
    conditions,
  };
  if (!conditions.length) delete status.conditions;
  return jsonEqual(status, current) ? undefined : status;
}
