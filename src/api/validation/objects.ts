// Admission validation of whole objects, one function per kind and operation,
// each returning upstream's status causes (an empty list admits the object).
import type {
  VirtualMachineInstancePreset,
  ObjectMeta,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstancetype,
  VirtualMachinePool,
  VirtualMachinePreference,
  MigrationPolicy,
  VirtualMachineSpec,
  VirtualMachineInstanceSpec,
  VirtualMachineInstancetypeSpec,
} from '../types.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import { path, invalid, required, notSupported, forbidden, type FieldPath, type StatusCause } from '../causes.ts';
import { RESTRICTED_VMI_LABELS } from '../constants.ts';
import { parseQuantity, quantityValue } from '../quantity.ts';
import { selectorError, selectorMatches } from '../selector.ts';
import { validateDisks, validateFirmware, validateVmiSpec } from './vmi-spec.ts';
import { jsonEqual } from '../json-equal.ts';

export interface RequestContext {
  /** Whether the request comes from one of kubevirt-ts's own service accounts. */
  isKubeVirtServiceAccount: boolean;
}

const SIDECAR_ANNOTATION = 'hooks.kubevirt.io/hookSidecars';
const IGNITION_ANNOTATION = 'kubevirt.io/ignitiondata';
const ARCHITECTURES = ['amd64', 'arm64', 's390x'];
const RUN_STRATEGIES = ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once'];
const FAILURE_POLICIES = ['Reject', 'Ignore', 'RejectInferFromVolumeFailure', 'IgnoreInferFromVolumeFailure'];

export function validateVmiMetadata(
  field: FieldPath,
  meta: ObjectMeta | undefined,
  config: ClusterConfig,
  ctx: RequestContext,
): StatusCause[] {
  const causes: StatusCause[] = [];
  const labels = meta?.labels ?? {};
  const annotations = meta?.annotations ?? {};
  if (!ctx.isKubeVirtServiceAccount && Object.keys(labels).some((l) => RESTRICTED_VMI_LABELS.includes(l))) {
    causes.push(
      notSupported(field.child('labels'), 'creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited'),
    );
  }
  if (annotations[IGNITION_ANNOTATION] && !config.isFeatureGateEnabled('ExperimentalIgnitionSupport')) {
    causes.push(
      invalid(
        field.child('annotations'),
        `ExperimentalIgnitionSupport feature gate is not enabled in kubevirt-config, invalid entry ${field.child('annotations').child(IGNITION_ANNOTATION)}`,
      ),
    );
  }
  if (annotations[SIDECAR_ANNOTATION] && !config.isFeatureGateEnabled('Sidecar')) {
    causes.push(
      invalid(
        field.child('annotations'),
        `sidecar feature gate is not enabled in kubevirt-config, invalid entry ${field.child('annotations', SIDECAR_ANNOTATION)}`,
      ),
    );
  }
  return causes;
}

function validateVolumesHaveDisks(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const causes: StatusCause[] = [];
  const devices = spec.domain?.devices ?? {};
  const names = new Set([...(devices.disks ?? []), ...(devices.filesystems ?? [])].map((d) => d.name));
  const filesystems = new Set((devices.filesystems ?? []).map((d) => d.name));
  for (const [i, volume] of (spec.volumes ?? []).entries()) {
    if (volume.memoryDump) continue;
    // Upstream names this path under domain, not spec: keep it for compatibility.
    const f = field.child('domain', 'volumes').index(i).child('name');
    if (!names.has(volume.name)) causes.push(invalid(f, `${f} '${volume.name}' not found.`));
    if (volume.containerPath) {
      if ((devices.disks ?? []).some((d) => d.name === volume.name)) {
        causes.push(invalid(f, `ContainerPath volume '${volume.name}' must be mapped to a filesystem, not a disk`));
      } else if (!filesystems.has(volume.name)) {
        causes.push(
          invalid(f, `ContainerPath volume '${volume.name}' must have a matching filesystem defined in spec.domain.devices.filesystems`),
        );
      }
    }
  }
  return causes;
}

function validateMemoryProvided(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const requests = spec.domain?.resources?.requests?.memory;
  if (requests !== undefined && safeValue(requests) !== 0) return [];
  const memory = spec.domain?.memory;
  if (memory?.guest !== undefined || memory?.hugepages !== undefined) return [];
  const f = field.child('domain');
  // Upstream leaves this cause without a field; the message names the three paths.
  return [
    required(
      '',
      `no memory requested, at least one of '${f.child('memory', 'guest')}', '${f.child('memory', 'hugepages', 'pageSize')}' or '${f.child('resources', 'requests', 'memory')}' must be set`,
    ),
  ];
}

function safeValue(q: string | number): number | undefined {
  try {
    return quantityValue(parseQuantity(q));
  } catch {
    return undefined;
  }
}

export function validateVmiCreate(vmi: VirtualMachineInstance, config: ClusterConfig, ctx: RequestContext): StatusCause[] {
  const spec = path('spec');
  if (!vmi.spec?.domain) return [required(spec.child('domain'), `${spec.child('domain')} is required`)];
  const causes = [
    ...validateVmiSpec(spec, vmi.spec, config),
    ...validateVolumesHaveDisks(spec, vmi.spec),
    ...validateMemoryProvided(spec, vmi.spec),
    ...validateVmiMetadata(path('metadata'), vmi.metadata, config, ctx),
  ];
  const arch = vmi.spec.architecture;
  if (arch && !ARCHITECTURES.includes(arch)) causes.push(invalid(spec.child('architecture'), `unsupported architecture: ${arch}`));
  return causes;
}

/** A VMI's spec is fixed once created, except for kubevirt-ts's own updates. */
export function validateVmiUpdate(oldVmi: VirtualMachineInstance, newVmi: VirtualMachineInstance, ctx: RequestContext): StatusCause[] {
  if (ctx.isKubeVirtServiceAccount) return [];
  const causes: StatusCause[] = [];
  if (!jsonEqual(oldVmi.spec, newVmi.spec)) {
    causes.push(forbidden(path('spec'), 'update of VMI object is restricted'));
  }
  const oldLabels = oldVmi.metadata.labels ?? {};
  const newLabels = newVmi.metadata.labels ?? {};
  if (RESTRICTED_VMI_LABELS.some((l) => oldLabels[l] !== newLabels[l])) {
    causes.push(
      notSupported(
        path('metadata').child('labels'),
        'modification of the following reserved kubevirt.io/ labels on a VMI object is prohibited',
      ),
    );
  }
  return causes;
}

function validateMatcher(field: FieldPath, matcher: VirtualMachineSpec['instancetype'], kind: string): StatusCause[] {
  if (!matcher) return [];
  const causes: StatusCause[] = [];
  if (!matcher.name && !matcher.inferFromVolume) {
    causes.push(invalid(field, `Either Name or InferFromVolume should be provided within the ${kind}`));
  }
  if (matcher.inferFromVolume) {
    if (matcher.name) causes.push(invalid(field.child('name'), 'Name already set, should be cleared before setting inferFromVolume'));
    if (matcher.kind) causes.push(invalid(field.child('kind'), 'Kind already set, should be cleared before setting inferFromVolume'));
  }
  const policy = matcher.inferFromVolumeFailurePolicy;
  if (policy !== undefined && !FAILURE_POLICIES.includes(policy)) {
    causes.push(invalid(field.child('inferFromVolumeFailurePolicy'), `Invalid value '${policy}' for InferFromVolumeFailurePolicy`));
  }
  return causes;
}

/** upstream's ValidateVirtualMachineSpec: the template, its data volumes and the run strategy. */
export function validateVmSpec(
  field: FieldPath,
  spec: VirtualMachineSpec | undefined,
  config: ClusterConfig,
  ctx: RequestContext,
): StatusCause[] {
  if (!spec?.template?.spec) return [required(field.child('template'), 'missing virtual machine template.')];
  const template = spec.template.spec;
  const causes = [
    ...validateVmiMetadata(field.child('template', 'metadata'), spec.template.metadata, config, ctx),
    ...(template.domain
      ? validateVmiSpec(field.child('template', 'spec'), template, config)
      : [required(field.child('template', 'spec', 'domain'), `${field.child('template', 'spec', 'domain')} is required`)]),
  ];
  for (const [i, dv] of (spec.dataVolumeTemplates ?? []).entries()) {
    const name = dv.metadata?.name ?? '';
    const f = field.child('dataVolumeTemplate').index(i);
    if (!name) {
      causes.push(required(field.child('name'), `'name' field must not be empty for DataVolumeTemplate entry ${field.child('name')}.`));
      continue;
    }
    const referenced = (template.volumes ?? []).some((v) => v.dataVolume?.name === name || v.persistentVolumeClaim?.claimName === name);
    if (!referenced) causes.push(required(f, `DataVolumeTemplate entry ${f} must be referenced in the VMI template's 'volumes' list`));
    if (!dv.spec.pvc && !dv.spec.storage) causes.push(invalid(field.child('PVC', 'Storage'), 'Missing Data volume PVC or Storage'));
    if (dv.spec.pvc && dv.spec.storage)
      causes.push(invalid(field.child('PVC', 'Storage'), 'Duplicate storage definition, both target storage and target pvc defined'));
  }
  if (spec.running !== undefined && spec.runStrategy !== undefined) {
    causes.push(
      invalid(
        field.child('running'),
        'Running and RunStrategy are mutually exclusive. Note that Running is deprecated, please use RunStrategy instead',
      ),
    );
  } else if (spec.running === undefined && spec.runStrategy === undefined) {
    causes.push(invalid(field.child('running'), 'RunStrategy must be specified'));
  }
  if (spec.runStrategy !== undefined) {
    if (spec.runStrategy === 'WaitAsReceiver') {
      if (!config.isFeatureGateEnabled('DecentralizedLiveMigration')) {
        causes.push(
          invalid(
            field.child('runStrategy'),
            'Invalid RunStrategy (WaitAsReceiver), DecentralizedLiveMigration feature gate is not enabled in kubevirt resource',
          ),
        );
      }
    } else if (!RUN_STRATEGIES.includes(spec.runStrategy)) {
      causes.push(invalid(field.child('runStrategy'), `Invalid RunStrategy (${spec.runStrategy})`));
    }
  }
  causes.push(...validateMatcher(field.child('instancetype'), spec.instancetype, 'InstancetypeMatcher'));
  causes.push(...validateMatcher(field.child('preference'), spec.preference, 'PreferenceMatcher'));
  return causes;
}

/** Fields the template may not set because the referenced instance type sets them (upstream's conflict check). */
export function instancetypeConflicts(
  field: FieldPath,
  spec: VirtualMachineInstanceSpec,
  instancetype: VirtualMachineInstancetypeSpec,
): StatusCause[] {
  const conflicts: FieldPath[] = [];
  const domain = field.child('domain');
  const { requests = {}, limits = {} } = spec.domain?.resources ?? {};
  const cpu = spec.domain?.cpu ?? {};
  const typeCpu = instancetype.cpu ?? {};
  if (requests.cpu !== undefined) conflicts.push(domain.child('resources', 'requests', 'cpu'));
  if (limits.cpu !== undefined) conflicts.push(domain.child('resources', 'limits', 'cpu'));
  for (const key of ['sockets', 'cores', 'threads'] as const) if (cpu[key]) conflicts.push(domain.child('cpu', key));
  if (cpu.model && typeCpu.model !== undefined) conflicts.push(domain.child('cpu', 'model'));
  if (cpu.dedicatedCpuPlacement && typeCpu.dedicatedCPUPlacement !== undefined)
    conflicts.push(domain.child('cpu', 'dedicatedCPUPlacement'));
  if (cpu.isolateEmulatorThread && typeCpu.isolateEmulatorThread !== undefined)
    conflicts.push(domain.child('cpu', 'isolateEmulatorThread'));
  if (cpu.numa && typeCpu.numa) conflicts.push(domain.child('cpu', 'numa'));
  if (cpu.realtime && typeCpu.realtime) conflicts.push(domain.child('cpu', 'realtime'));
  const memory = spec.domain?.memory ?? {};
  const typeMemory = instancetype.memory ?? {};
  // Upstream stops at the first memory conflict.
  const memoryConflict =
    (memory.guest !== undefined && domain.child('memory', 'guest')) ||
    (memory.hugepages && typeMemory.hugepages && domain.child('memory', 'hugepages')) ||
    (memory.maxGuest !== undefined && typeMemory.maxGuest !== undefined && domain.child('memory', 'maxGuest')) ||
    (requests.memory !== undefined && domain.child('resources', 'requests', 'memory')) ||
    (limits.memory !== undefined && domain.child('resources', 'limits', 'memory'));
  if (memoryConflict) conflicts.push(memoryConflict);
  return conflicts.map((f) => invalid(f, `VM field(s) ${f} conflicts with selected instance type`));
}

/**
 * A VM on create or update. `instancetype` is the spec the VM references, when
 * it exists: upstream lets a VM name a missing one and reports that later.
 */
export function validateVm(
  vm: VirtualMachine,
  config: ClusterConfig,
  ctx: RequestContext,
  instancetype?: VirtualMachineInstancetypeSpec,
): StatusCause[] {
  if (vm.metadata.deletionTimestamp) return [];
  if (instancetype && vm.spec?.template?.spec) {
    const conflicts = instancetypeConflicts(path('spec').child('template', 'spec'), vm.spec.template.spec, instancetype);
    if (conflicts.length) return conflicts;
  }
  return validateVmSpec(path('spec'), vm.spec, config, ctx);
}

function validateSelectorMatches(
  field: FieldPath,
  selector: Parameters<typeof selectorMatches>[0],
  labels?: Record<string, string>,
): StatusCause[] {
  const error = selectorError(selector);
  if (error) return [invalid(field.child('selector'), error)];
  if (!selectorMatches(selector, labels)) return [invalid(field.child('selector'), 'selector does not match labels.')];
  return [];
}

export function validateReplicaSet(rs: VirtualMachineInstanceReplicaSet, config: ClusterConfig): StatusCause[] {
  const field = path('spec');
  const template = rs.spec?.template;
  if (!template?.spec) return [required(field.child('template'), 'missing virtual machine template.')];
  return [
    ...validateVmiSpec(field.child('template', 'spec'), template.spec, config),
    ...validateSelectorMatches(field, rs.spec.selector, template.metadata?.labels),
  ];
}

export function validatePool(pool: VirtualMachinePool, config: ClusterConfig, ctx: RequestContext): StatusCause[] {
  const field = path('spec');
  const template = pool.spec?.virtualMachineTemplate;
  if (!template) return [required(field.child('template'), 'missing virtual machine template.')];
  const causes = [
    ...validateVmSpec(field.child('virtualMachineTemplate', 'spec'), template.spec, config, ctx),
    ...validateSelectorMatches(field, pool.spec.selector, template.metadata?.labels),
  ];
  const maxUnavailable = pool.spec.maxUnavailable;
  const f = field.child('maxUnavailable');
  if (typeof maxUnavailable === 'string') {
    if (!maxUnavailable.endsWith('%')) causes.push(invalid(f, 'maxUnavailable percentage must end with %'));
    else {
      const text = maxUnavailable.slice(0, -1);
      const value = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      if (Number.isNaN(value))
        causes.push(invalid(f, `maxUnavailable percentage value "${text}" is invalid: strconv.Atoi: parsing "${text}": invalid syntax`));
      else if (value <= 0 || value > 100) causes.push(invalid(f, `maxUnavailable percentage value ${value} must be between 1 and 100`));
    }
  } else if (typeof maxUnavailable === 'number' && maxUnavailable <= 0) {
    causes.push(invalid(f, 'maxUnavailable must be greater than 0'));
  }
  for (const name of ['updateStrategy', 'scaleInStrategy'] as const) {
    const strategy = pool.spec[name] as Record<string, unknown> | undefined;
    if (strategy && Object.values(strategy).filter((v) => v !== undefined).length > 1) {
      causes.push(invalid(field.child(name), `only one of unmanaged, opportunistic or proactive may be set in ${field.child(name)}`));
    }
  }
  return causes;
}

export function validateMigrationCreate(
  migration: VirtualMachineInstanceMigration,
  config: ClusterConfig,
  ctx: RequestContext,
): StatusCause[] {
  const field = path('spec');
  const spec = migration.spec ?? {};
  const causes: StatusCause[] = [];
  if (!spec.vmiName) causes.push(required(field.child('vmiName'), 'vmiName is missing'));
  if (spec.priority !== undefined && !ctx.isKubeVirtServiceAccount) {
    causes.push(invalid('spec.migrationPriority', 'Migration priority queue, only virt-controller is allowed to set priority field'));
  }
  if ((spec.sendTo || spec.receive) && !config.isFeatureGateEnabled('DecentralizedLiveMigration')) {
    causes.push(notSupported(field, 'DecentralizedLiveMigration feature gate is not enabled in kubevirt resource'));
  }
  if (spec.sendTo && spec.receive && spec.sendTo.migrationID !== spec.receive.migrationID) {
    causes.push(
      invalid(field, `sendTo migrationID ${spec.sendTo.migrationID} does not match receive migrationID ${spec.receive.migrationID}`),
    );
  }
  return causes;
}

/** A migration's spec is fixed once created. */
export function validateMigrationUpdate(
  oldMigration: VirtualMachineInstanceMigration,
  newMigration: VirtualMachineInstanceMigration,
): StatusCause[] {
  if (jsonEqual(oldMigration.spec, newMigration.spec)) return [];
  return [forbidden(path('spec'), "update of Migration object's spec is restricted")];
}

export function validateInstancetype(instancetype: VirtualMachineInstancetype): StatusCause[] {
  const field = path('spec');
  const memory = instancetype.spec?.memory;
  const causes: StatusCause[] = [];
  if (!instancetype.spec?.cpu || instancetype.spec.cpu.guest === undefined)
    causes.push(required(field.child('cpu', 'guest'), `${field.child('cpu', 'guest')} is required`));
  if (!memory || memory.guest === undefined)
    causes.push(required(field.child('memory', 'guest'), `${field.child('memory', 'guest')} is required`));
  const percent = memory?.overcommitPercent ?? 0;
  const f = field.child('memory', 'overcommitPercent');
  if (percent < 0 || percent > 100) causes.push(invalid(f, `${f} '${percent}': must be in range between 0 and 100.`));
  if (percent !== 0 && memory?.hugepages)
    causes.push(invalid(f, `${f} and ${field.child('memory', 'hugepages')} should not be requested together.`));
  return causes;
}

export function validatePreference(preference: VirtualMachinePreference): StatusCause[] {
  const field = path('spec').child('cpu', 'preferredCPUTopology');
  const topology = preference.spec?.cpu?.preferredCPUTopology;
  const valid = [
    'preferSockets',
    'preferCores',
    'preferThreads',
    'preferSpread',
    'preferAny',
    'sockets',
    'cores',
    'threads',
    'spread',
    'any',
  ];
  if (topology !== undefined && !valid.includes(topology)) {
    return [invalid(field, `unknown preferredCPUTopology ${topology}, must be one of: ${valid.join(', ')}`)];
  }
  return [];
}

/** upstream's ValidateVMIPresetSpec: a domain is required, and its disks and firmware are checked as a VMI's. */
export function validatePreset(preset: VirtualMachineInstancePreset): StatusCause[] {
  const field = path('spec');
  const domain = preset.spec?.domain;
  if (!domain) return [required(field.child('domain'), 'missing domain.')];
  return [
    ...validateDisks(field.child('domain', 'devices', 'disks'), domain.devices?.disks ?? []),
    ...validateFirmware(field.child('domain', 'firmware'), { domain }),
  ];
}

export function validateMigrationPolicy(policy: MigrationPolicy): StatusCause[] {
  const field = path('spec');
  const spec = policy.spec ?? { selectors: {} };
  const causes: StatusCause[] = [];
  if ((spec.completionTimeoutPerGiB ?? 0) < 0) causes.push(invalid(field.child('completionTimeoutPerGiB'), 'must not be negative'));
  if (spec.bandwidthPerMigration !== undefined) {
    let negative = false;
    try {
      negative = parseQuantity(spec.bandwidthPerMigration).nanos < 0n;
    } catch (error) {
      causes.push(invalid(field.child('bandwidthPerMigration'), (error as Error).message));
    }
    if (negative) causes.push(invalid(field.child('bandwidthPerMigration'), 'must not be negative'));
  }
  return causes;
}
