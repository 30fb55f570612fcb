// A VM with its instance type and preference written into its template, as
// upstream's expand-spec returns it: the instance type's CPU, memory and
// placement replace the template's (a template that sets them conflicts), the
// preference fills only what the template leaves unset, and the matchers go.
// Pure. Covers the instance type's CPU, memory, scheduling and I/O threads and
// the preference's CPU topology, buses, models, machine type and grace period.
import type { VirtualMachine, VirtualMachineInstancetypeSpec, VirtualMachinePreferenceSpec } from './types.ts';
import { path, type StatusCause } from './causes.ts';
import { instancetypeConflicts } from './validation/objects.ts';

type Topology = { sockets: number; cores: number; threads: number };

/** How `vcpus` are laid out under a preference (upstream's preferred topology; sockets by default). */
export function cpuTopology(vcpus: number, preference?: VirtualMachinePreferenceSpec): Topology {
  const one = { sockets: 1, cores: 1, threads: 1 };
  if (vcpus === 1) return one;
  const preferred = (preference?.cpu?.preferredCPUTopology ?? 'sockets').replace(/^prefer/, '').toLowerCase();
  switch (preferred) {
    case 'cores':
      return { ...one, cores: vcpus };
    case 'threads':
      return { ...one, threads: vcpus };
    case 'spread': {
      const ratio = preference?.cpu?.spreadOptions?.ratio ?? 2;
      const across = preference?.cpu?.spreadOptions?.across ?? 'SocketsCores';
      if (across === 'CoresThreads') return { sockets: 1, cores: vcpus / ratio, threads: ratio };
      if (across === 'SocketsCoresThreads') return { sockets: vcpus / 2 / ratio, cores: ratio, threads: 2 };
      return { sockets: vcpus / ratio, cores: ratio, threads: 1 };
    }
    default:
      return { ...one, sockets: vcpus };
  }
}

export type Expansion = { vm: VirtualMachine } | { causes: StatusCause[] };

export function expandVm(
  vm: VirtualMachine,
  instancetype?: VirtualMachineInstancetypeSpec,
  preference?: VirtualMachinePreferenceSpec,
): Expansion {
  if (!vm.spec?.instancetype && !vm.spec?.preference) return { vm };
  const expanded = structuredClone(vm);
  const template = expanded.spec.template!;
  const spec = template.spec!;
  const domain = spec.domain;
  if (instancetype) {
    const causes = instancetypeConflicts(path('spec').child('template', 'spec'), spec, instancetype);
    if (causes.length) return { causes };
    const { guest, model, dedicatedCPUPlacement, isolateEmulatorThread, numa, realtime, maxSockets } = instancetype.cpu;
    domain.cpu = {
      ...domain.cpu,
      ...cpuTopology(guest, preference),
      ...(model !== undefined && { model }),
      ...(dedicatedCPUPlacement !== undefined && { dedicatedCpuPlacement: dedicatedCPUPlacement }),
      ...(isolateEmulatorThread !== undefined && { isolateEmulatorThread }),
      ...(numa && { numa }),
      ...(realtime && { realtime }),
      ...(maxSockets !== undefined && { maxSockets }),
    };
    const { guest: memory, hugepages, maxGuest } = instancetype.memory;
    domain.memory = { ...domain.memory, guest: memory, ...(hugepages && { hugepages }), ...(maxGuest && { maxGuest }) };
    if (instancetype.nodeSelector) spec.nodeSelector = { ...instancetype.nodeSelector };
    if (instancetype.schedulerName) spec.schedulerName = instancetype.schedulerName;
    if (instancetype.ioThreadsPolicy) domain.ioThreadsPolicy = instancetype.ioThreadsPolicy;
    if (instancetype.annotations)
      template.metadata = { ...template.metadata, annotations: { ...instancetype.annotations, ...template.metadata?.annotations } };
  }
  if (preference) applyPreference(spec, preference);
  delete expanded.spec.instancetype;
  delete expanded.spec.preference;
  return { vm: expanded };
}

type TemplateSpec = NonNullable<NonNullable<VirtualMachine['spec']['template']>['spec']>;

function applyPreference(spec: TemplateSpec, preference: VirtualMachinePreferenceSpec) {
  const domain = spec.domain;
  const devices = preference.devices ?? {};
  for (const disk of domain.devices?.disks ?? []) {
    if (disk.disk && !disk.disk.bus && devices.preferredDiskBus) disk.disk.bus = devices.preferredDiskBus;
    if (disk.cdrom && !disk.cdrom.bus && devices.preferredCdromBus) disk.cdrom.bus = devices.preferredCdromBus;
    if (disk.lun && !disk.lun.bus && devices.preferredLunBus) disk.lun.bus = devices.preferredLunBus;
  }
  for (const iface of domain.devices?.interfaces ?? []) {
    if (!iface.model && devices.preferredInterfaceModel) iface.model = devices.preferredInterfaceModel;
  }
  if (!domain.machine?.type && preference.machine?.preferredMachineType)
    domain.machine = { ...domain.machine, type: preference.machine.preferredMachineType };
  if (spec.terminationGracePeriodSeconds === undefined && preference.preferredTerminationGracePeriodSeconds !== undefined) {
    spec.terminationGracePeriodSeconds = preference.preferredTerminationGracePeriodSeconds;
  }
}
