// Instance types and preferences in virt-controller, as pure functions (the
// VM controller carries them out): the first time a VM's matcher is used,
// the object it names is captured in a ControllerRevision owned by the VM and
// referenced from status.instancetypeRef / status.preferenceRef (upstream's
// revision store), so later edits to the object change no existing VM; the
// VMI is then made from the captured specs. A matcher that infers its name
// from a volume is resolved from the labels of that volume's claim or
// DataVolume, as upstream's inference does.
import type { V1ControllerRevision, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { path } from '../api/causes.ts';
import { expandVm } from '../api/instancetype.ts';
import type {
  DataVolume,
  VirtualMachine,
  VirtualMachineInstancetypeSpec,
  VirtualMachinePreferenceSpec,
  VirtualMachineStatus,
} from '../api/types.ts';
import { instancetypeConflicts } from '../api/validation/objects.ts';
import { vmControllerRef } from '../contract/vmi.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';
import type { SyncFailure } from './vm.ts';
import { CLUSTER_INSTANCETYPE_ANNOTATION, INSTANCETYPE_ANNOTATION } from '../api/constants.ts';

export const INSTANCETYPE_GROUP = 'instancetype.kubevirt.io';
export const INSTANCETYPE_VERSION = 'v1beta1';
export const OBJECT_GENERATION_LABEL = 'instancetype.kubevirt.io/object-generation';
export const OBJECT_KIND_LABEL = 'instancetype.kubevirt.io/object-kind';
export const OBJECT_NAME_LABEL = 'instancetype.kubevirt.io/object-name';
export const OBJECT_UID_LABEL = 'instancetype.kubevirt.io/object-uid';
export const OBJECT_VERSION_LABEL = 'instancetype.kubevirt.io/object-version';
/** The VMI annotations naming what it was sized and shaped by. */
export { CLUSTER_INSTANCETYPE_ANNOTATION, INSTANCETYPE_ANNOTATION };
export const PREFERENCE_ANNOTATION = 'kubevirt.io/preference-name';
export const CLUSTER_PREFERENCE_ANNOTATION = 'kubevirt.io/cluster-preference-name';
/** Labels on a claim, DataVolume or DataSource that name the defaults of a VM booting from it. */
export const DEFAULT_INSTANCETYPE_LABEL = 'instancetype.kubevirt.io/default-instancetype';
export const DEFAULT_INSTANCETYPE_KIND_LABEL = 'instancetype.kubevirt.io/default-instancetype-kind';
export const DEFAULT_PREFERENCE_LABEL = 'instancetype.kubevirt.io/default-preference';
export const DEFAULT_PREFERENCE_KIND_LABEL = 'instancetype.kubevirt.io/default-preference-kind';

type Matcher = NonNullable<VirtualMachine['spec']['instancetype']>;
type StatusRef = NonNullable<VirtualMachineStatus['instancetypeRef']>;

/** An instance type or preference object, namespaced or cluster-wide, as the caches hold it. */
export interface InstancetypeObject<Spec> {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; generation?: number; resourceVersion?: string; creationTimestamp?: string };
  spec: Spec;
}

export interface InstancetypeLookup {
  instancetype(namespace: string, name: string): InstancetypeObject<VirtualMachineInstancetypeSpec> | undefined;
  clusterInstancetype(name: string): InstancetypeObject<VirtualMachineInstancetypeSpec> | undefined;
  preference(namespace: string, name: string): InstancetypeObject<VirtualMachinePreferenceSpec> | undefined;
  clusterPreference(name: string): InstancetypeObject<VirtualMachinePreferenceSpec> | undefined;
  revision(namespace: string, name: string): V1ControllerRevision | undefined;
}

type Which = 'instancetype' | 'preference';
const KINDS: Record<Which, { namespaced: string; cluster: string }> = {
  instancetype: { namespaced: 'VirtualMachineInstancetype', cluster: 'VirtualMachineClusterInstancetype' },
  preference: { namespaced: 'VirtualMachinePreference', cluster: 'VirtualMachineClusterPreference' },
};

/** Whether a matcher's kind names the namespaced kind; empty means the cluster-wide one. Undefined for an unknown kind. */
function isNamespacedKind(which: Which, kind: string | undefined): boolean | undefined {
  const k = (kind ?? '').toLowerCase();
  const { namespaced, cluster } = KINDS[which];
  if (k === '' || k === cluster.toLowerCase() || k === `${cluster.toLowerCase()}s`) return false;
  if (k === namespaced.toLowerCase() || k === `${namespaced.toLowerCase()}s`) return true;
  return undefined;
}

/** The name of the ControllerRevision capturing an object for a VM (upstream's GenerateName). */
export function revisionName(vmName: string, object: InstancetypeObject<unknown>, version = INSTANCETYPE_VERSION): string {
  return `${vmName}-${object.metadata.name}-${version}-${object.metadata.uid}-${object.metadata.generation ?? 0}`;
}

/** The ControllerRevision that captures the object for the VM: owned by it, labelled with what it holds. */
export function controllerRevisionFor(vm: VirtualMachine, kind: string, object: InstancetypeObject<unknown>): V1ControllerRevision {
  const { name, namespace, uid, generation, resourceVersion, creationTimestamp } = object.metadata;
  const data = {
    apiVersion: `${INSTANCETYPE_GROUP}/${INSTANCETYPE_VERSION}`,
    kind,
    metadata: {
      name,
      ...(namespace ? { namespace } : {}),
      uid,
      ...(resourceVersion ? { resourceVersion } : {}),
      ...(generation !== undefined ? { generation } : {}),
      ...(creationTimestamp ? { creationTimestamp } : {}),
    },
    spec: object.spec,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: revisionName(vm.metadata.name!, object),
      namespace: vm.metadata.namespace,
      ownerReferences: [vmControllerRef(vm)],
      labels: {
        [OBJECT_GENERATION_LABEL]: String(generation ?? 0),
        [OBJECT_KIND_LABEL]: kind,
        [OBJECT_NAME_LABEL]: name!,
        [OBJECT_UID_LABEL]: uid!,
        [OBJECT_VERSION_LABEL]: INSTANCETYPE_VERSION,
      },
    },
    data,
    revision: 0,
  };
}

/** The spec a revision captured (upstream's compatibility reader, for the v1beta1 objects kubevirt-ts writes). */
export function specOfRevision<Spec>(revision: V1ControllerRevision): Spec | undefined {
  const data = revision.data as { spec?: Spec } | undefined;
  return data?.spec;
}

export interface InstancetypeSync {
  /** ControllerRevisions to create before the status may reference them. */
  create: V1ControllerRevision[];
  /** The status references, when they change (a JSON patch of the status adds them). */
  patch?: JsonPatchOperation[];
  /** Why the VM cannot start as it is (upstream's sync errors: FailedFindInstancetype, FailedFindPreference, FailedCreate). */
  failure?: SyncFailure;
  /** The specs to apply, once every reference is captured and its revision is in the cache. */
  applied?: { instancetype?: VirtualMachineInstancetypeSpec; preference?: VirtualMachinePreferenceSpec };
}

const notFound = (which: Which, namespaced: boolean, name: string) =>
  `${(namespaced ? KINDS[which].namespaced : KINDS[which].cluster).toLowerCase()}.instancetype.kubevirt.io "${name}" not found`;

/** The object a matcher names, or why it cannot be had. */
function findObject(
  which: Which,
  vm: VirtualMachine,
  matcher: Matcher,
  lookup: InstancetypeLookup,
): { object: InstancetypeObject<unknown>; kind: string } | { error: string } {
  const namespaced = isNamespacedKind(which, matcher.kind);
  if (namespaced === undefined)
    return { error: `got unexpected kind in ${which === 'instancetype' ? 'Instancetype' : 'Preference'}Matcher: ${matcher.kind}` };
  const name = matcher.name ?? '';
  const namespace = vm.metadata.namespace!;
  const object =
    which === 'instancetype'
      ? namespaced
        ? lookup.instancetype(namespace, name)
        : lookup.clusterInstancetype(name)
      : namespaced
        ? lookup.preference(namespace, name)
        : lookup.clusterPreference(name);
  if (!object) return { error: notFound(which, namespaced, name) };
  return { object, kind: namespaced ? KINDS[which].namespaced : KINDS[which].cluster };
}

/**
 * Upstream's Store for one matcher: the status reference follows the matcher (a new name, kind or
 * volume drops the captured revision), and a reference without a revision gets one.
 */
function syncRef(
  which: Which,
  vm: VirtualMachine,
  matcher: Matcher,
  lookup: InstancetypeLookup,
  sync: InstancetypeSync,
): { ref: StatusRef; revision?: V1ControllerRevision } | undefined {
  const ref: StatusRef = structuredClone((which === 'instancetype' ? vm.status?.instancetypeRef : vm.status?.preferenceRef) ?? {});
  let stale = false;
  if (matcher.name && matcher.name !== ref.name) [ref.name, stale] = [matcher.name, true];
  if (matcher.kind && matcher.kind !== ref.kind) [ref.kind, stale] = [matcher.kind, true];
  if (matcher.inferFromVolume && matcher.inferFromVolume !== ref.inferFromVolume)
    [ref.inferFromVolume, stale] = [matcher.inferFromVolume, true];
  if (stale) delete ref.controllerRevisionRef;
  if (matcher.inferFromVolumeFailurePolicy) ref.inferFromVolumeFailurePolicy = matcher.inferFromVolumeFailurePolicy;
  if (matcher.revisionName && ref.controllerRevisionRef?.name !== matcher.revisionName)
    ref.controllerRevisionRef = { name: matcher.revisionName };
  const namespace = vm.metadata.namespace!;
  const captured = ref.controllerRevisionRef?.name;
  if (captured) {
    const revision = lookup.revision(namespace, captured);
    // A revision for another object than the matcher names is not used (upstream's check of its name label).
    if (revision && !matcher.revisionName && revision.metadata?.labels?.[OBJECT_NAME_LABEL] !== matcher.name) {
      delete ref.controllerRevisionRef;
    } else {
      return { ref, ...(revision ? { revision } : {}) };
    }
  }
  const found = findObject(which, vm, matcher, lookup);
  if ('error' in found) {
    sync.failure ??= { reason: which === 'instancetype' ? 'FailedFindInstancetype' : 'FailedFindPreference', message: found.error };
    return undefined;
  }
  if (which === 'instancetype' && vm.spec.template.spec) {
    const conflicts = instancetypeConflicts(
      path('spec').child('template', 'spec'),
      vm.spec.template.spec,
      found.object.spec as VirtualMachineInstancetypeSpec,
    );
    if (conflicts.length) {
      const message = `error encountered while storing instancetype.kubevirt.io controllerRevisions: ${conflicts.map((c) => c.message).join(', ')}`;
      sync.failure ??= { reason: 'FailedCreate', message };
      return undefined;
    }
  }
  const revision = controllerRevisionFor(vm, found.kind, found.object);
  const name = revision.metadata!.name!;
  const existing = lookup.revision(namespace, name);
  if (!existing) sync.create.push(revision);
  ref.controllerRevisionRef = { name };
  return { ref, ...(existing ? { revision: existing } : {}) };
}

/** What a VM with an instance type or preference needs before (and for) its VMI. VMs with neither need nothing. */
export function syncInstancetypes(vm: VirtualMachine, lookup: InstancetypeLookup): InstancetypeSync {
  const sync: InstancetypeSync = { create: [] };
  const { instancetype, preference } = vm.spec;
  if (!instancetype && !preference) {
    sync.applied = {};
    return sync;
  }
  const it = instancetype ? syncRef('instancetype', vm, instancetype, lookup, sync) : undefined;
  const pref = preference ? syncRef('preference', vm, preference, lookup, sync) : undefined;
  if (sync.failure) return { create: [], failure: sync.failure };
  const patch: JsonPatchOperation[] = [];
  if (it && JSON.stringify(it.ref) !== JSON.stringify(vm.status?.instancetypeRef ?? {}))
    patch.push({ op: 'add', path: '/status/instancetypeRef', value: it.ref });
  if (pref && JSON.stringify(pref.ref) !== JSON.stringify(vm.status?.preferenceRef ?? {}))
    patch.push({ op: 'add', path: '/status/preferenceRef', value: pref.ref });
  if (patch.length) {
    // The status must exist for an add below it.
    if (!vm.status) patch.unshift({ op: 'add', path: '/status', value: {} });
    sync.patch = patch;
  }
  const ready = (!instancetype || it?.revision) && (!preference || pref?.revision);
  if (ready && !patch.length && !sync.create.length) {
    sync.applied = {
      ...(it?.revision ? { instancetype: specOfRevision<VirtualMachineInstancetypeSpec>(it.revision) } : {}),
      ...(pref?.revision ? { preference: specOfRevision<VirtualMachinePreferenceSpec>(pref.revision) } : {}),
    };
  }
  return sync;
}

/** The revisions a VM's VMI is made from: they are part of what a running VMI was started as. */
export function capturedRevisions(vm: VirtualMachine): string[] {
  return [vm.status?.instancetypeRef?.controllerRevisionRef?.name, vm.status?.preferenceRef?.controllerRevisionRef?.name].filter(
    (n): n is string => n !== undefined && (vm.spec.instancetype !== undefined || vm.spec.preference !== undefined),
  );
}

/** The annotations naming the instance type and preference on the VMI (upstream's annotations.Set). */
export function matcherAnnotations(vm: VirtualMachine): Record<string, string> {
  const annotations: Record<string, string> = {};
  const { instancetype, preference } = vm.spec;
  if (instancetype?.name) {
    annotations[isNamespacedKind('instancetype', instancetype.kind) ? INSTANCETYPE_ANNOTATION : CLUSTER_INSTANCETYPE_ANNOTATION] =
      instancetype.name;
  }
  if (preference?.name) {
    annotations[isNamespacedKind('preference', preference.kind) ? PREFERENCE_ANNOTATION : CLUSTER_PREFERENCE_ANNOTATION] = preference.name;
  }
  return annotations;
}

/**
 * The VM's template with the captured instance type and preference applied (the VMI's spec), or
 * the causes that keep them from applying.
 */
export function appliedTemplate(
  vm: VirtualMachine,
  applied: NonNullable<InstancetypeSync['applied']>,
): { template: VirtualMachine['spec']['template'] } | { failure: SyncFailure } {
  if (!vm.spec.instancetype && !vm.spec.preference) return { template: vm.spec.template };
  const expansion = expandVm(vm, applied.instancetype, applied.preference);
  if ('causes' in expansion) {
    const message = `Failed to apply instancetype: ${expansion.causes.map((c) => c.message).join(', ')}`;
    return { failure: { reason: 'FailedCreate', message } };
  }
  return { template: expansion.vm.spec.template };
}

/** Where a matcher's inferFromVolume looks: the labels of the volume's claim, DataVolume, or its template's source claim. */
export interface VolumeLabelLookup {
  pvc(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  dataVolume(namespace: string, name: string): DataVolume | undefined;
}

/**
 * Upstream's inference of a matcher from a volume, as a patch of the VM's spec: the matcher names the
 * defaults the volume's labels give. With failure policy Ignore, a volume without such labels clears
 * the matcher. Undefined when there is nothing to infer or nothing to go on yet.
 */
export function inferMatchers(vm: VirtualMachine, volumes: VolumeLabelLookup): JsonPatchOperation[] | { error: string } | undefined {
  const namespace = vm.metadata.namespace!;
  const labelsOf = (volumeName: string): Record<string, string> | undefined => {
    const volume = vm.spec.template.spec?.volumes?.find((v) => v.name === volumeName);
    if (!volume) return undefined;
    if (volume.persistentVolumeClaim) return volumes.pvc(namespace, volume.persistentVolumeClaim.claimName)?.metadata?.labels ?? {};
    if (volume.dataVolume) {
      const template = vm.spec.dataVolumeTemplates?.find((t) => t.metadata?.name === volume.dataVolume!.name);
      const source = template?.spec.source?.pvc;
      if (source) return volumes.pvc(source.namespace ?? namespace, source.name)?.metadata?.labels ?? {};
      const dv = volumes.dataVolume(namespace, volume.dataVolume.name);
      if (dv?.metadata.labels && Object.keys(dv.metadata.labels).length) return dv.metadata.labels;
      return volumes.pvc(namespace, volume.dataVolume.name)?.metadata?.labels ?? {};
    }
    return {};
  };
  const patch: JsonPatchOperation[] = [];
  for (const [which, nameLabel, kindLabel] of [
    ['instancetype', DEFAULT_INSTANCETYPE_LABEL, DEFAULT_INSTANCETYPE_KIND_LABEL],
    ['preference', DEFAULT_PREFERENCE_LABEL, DEFAULT_PREFERENCE_KIND_LABEL],
  ] as const) {
    const matcher = vm.spec[which];
    if (!matcher?.inferFromVolume) continue;
    const labels = labelsOf(matcher.inferFromVolume);
    if (labels === undefined) return { error: `unable to find volume ${matcher.inferFromVolume} to infer defaults` };
    const name = labels[nameLabel];
    if (!name) {
      if (matcher.inferFromVolumeFailurePolicy === 'Ignore') patch.push({ op: 'remove', path: `/spec/${which}` });
      else return { error: `unable to find required ${nameLabel} label on the volume` };
      continue;
    }
    patch.push({ op: 'replace', path: `/spec/${which}`, value: { name, ...(labels[kindLabel] ? { kind: labels[kindLabel] } : {}) } });
    if (which === 'instancetype' && matcher.inferFromVolumeFailurePolicy === 'Ignore' && vm.spec.template.spec?.domain.memory) {
      patch.push({ op: 'remove', path: '/spec/template/spec/domain/memory' });
    }
  }
  return patch.length ? [{ op: 'test', path: '/metadata/resourceVersion', value: vm.metadata.resourceVersion }, ...patch] : undefined;
}
