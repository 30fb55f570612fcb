// Defaults a VirtualMachineInstance on create, as upstream's VMI mutating webhook does.
import type { VirtualMachineInstance, VirtualMachineInstanceSpec } from '../types.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import { guestMemoryOf } from '../guest-memory.ts';
import { DEFAULT_CPU_MODEL, DEFAULT_CPU_REQUEST } from '../cluster-config.ts';
import { binaryQuantity, compareQuantities, isZeroQuantity, quantityValue } from '../quantity.ts';
import { NON_ROOT_UID, PCI_TOPOLOGY_VERSION, PCI_TOPOLOGY_VERSION_ANNOTATION, VMI_FINALIZER } from '../constants.ts';
import { VirtualMachineInstanceSpec as SpecSchema } from '../schema/vmi.ts';
import { canonicalizeQuantities } from './quantities.ts';

/** Side inputs that make defaulting deterministic in tests. */
export interface DefaultingContext {
  newUUID: () => string;
  now: () => string;
}

export class DefaultingError extends Error {}

const MAX_VCPUS = 512;
const HOTPLUG_ALIGNMENT = 2n * 1024n * 1024n;
const HOTPLUG_ALIGNMENT_1G_PAGES = 1024n * 1024n * 1024n;
const HOTPLUG_MIN_GUEST = 1024n * 1024n * 1024n;

/**
 * The architecture whose cluster settings (machine type, emulated machines) a
 * spec gets. Upstream's ClusterConfig answers with amd64's for one it does not
 * know, which validation then refuses; looking any name up as given could land
 * on Object.prototype ("toString").
 */
export const settingsArchitecture = (arch: string) => (['amd64', 'arm64', 's390x'].includes(arch) ? arch : 'amd64');

/** The spec defaults shared by VMIs and the VMIs that VMs create (SetDefaultVirtualMachineInstanceSpec). */
export function defaultVmiSpec(spec: VirtualMachineInstanceSpec, config: ClusterConfig): void {
  spec.architecture ||= config.defaultArchitecture;
  spec.domain.machine ??= {};
  spec.domain.machine.type ||= config.machineType(settingsArchitecture(spec.architecture));
  defaultResourceRequests(spec, config);
  defaultGuestMemory(spec);
  defaultCpuTopology(spec);
  for (const volume of spec.volumes ?? []) {
    const disk = volume.containerDisk;
    if (disk && !disk.imagePullPolicy) {
      const floating = disk.image.endsWith(':latest') || !/[:@]/.test(disk.image);
      disk.imagePullPolicy = floating ? 'Always' : 'IfNotPresent';
    }
  }
  if (spec.evictionStrategy === undefined && config.evictionStrategy) spec.evictionStrategy = config.evictionStrategy;
  defaultPodNetwork(spec, config);
  addDisksForVolumes(spec);
}

function defaultResourceRequests(spec: VirtualMachineInstanceSpec, config: ClusterConfig) {
  const resources = (spec.domain.resources ??= {});
  const limitCpu = resources.limits?.cpu;
  if (!isZeroQuantity(limitCpu) && isZeroQuantity(resources.requests?.cpu)) {
    resources.requests = { ...resources.requests, cpu: limitCpu! };
  }
  if (compareQuantities(config.cpuRequest, DEFAULT_CPU_REQUEST) !== 0 && resources.requests?.cpu === undefined) {
    if (spec.domain.cpu?.dedicatedCpuPlacement) return;
    resources.requests = { ...resources.requests, cpu: config.cpuRequest };
  }
}

function defaultGuestMemory(spec: VirtualMachineInstanceSpec) {
  const guest = guestMemoryOf(spec);
  const memory = (spec.domain.memory ??= {});
  if (guest !== undefined) memory.guest = guest;
}

function defaultCpuTopology(spec: VirtualMachineInstanceSpec) {
  const cpu = (spec.domain.cpu ??= {});
  if (cpu.cores || cpu.sockets || cpu.threads) return;
  const { limits, requests } = spec.domain.resources ?? {};
  let sockets = 1;
  if (limits?.cpu !== undefined) sockets = quantityValue(limits.cpu);
  else if (requests?.cpu !== undefined) sockets = quantityValue(requests.cpu);
  cpu.sockets = sockets;
  cpu.cores = 1;
  cpu.threads = 1;
}

function defaultPodNetwork(spec: VirtualMachineInstanceSpec, config: ClusterConfig) {
  const devices = spec.domain.devices;
  if (devices.autoattachPodInterface === false) return;
  if ((spec.networks?.length ?? 0) > 0 || (devices.interfaces?.length ?? 0) > 0) return;
  switch (config.defaultNetworkInterface) {
    case 'bridge':
      if (!config.permitBridgeInterfaceOnPodNetwork) throw new DefaultingError('bridge interface is not enabled in kubevirt-config');
      devices.interfaces = [{ name: 'default', bridge: {} }];
      break;
    case 'masquerade':
      devices.interfaces = [{ name: 'default', masquerade: {} }];
      break;
    case 'slirp':
      throw new DefaultingError('slirp interface is deprecated as of v1.3');
  }
  spec.networks = [{ name: 'default', pod: {} }];
}

function addDisksForVolumes(spec: VirtualMachineInstanceSpec) {
  const devices = spec.domain.devices;
  const taken = new Set([...(devices.disks ?? []), ...(devices.filesystems ?? [])].map((d) => d.name));
  for (const volume of spec.volumes ?? []) {
    if (!taken.has(volume.name)) (devices.disks ??= []).push({ name: volume.name });
  }
}

const enable = (feature: { enabled?: boolean } | undefined) => {
  if (feature && feature.enabled === undefined) feature.enabled = true;
};

/** The defaults that upstream's generated SetObjectDefaults applies to the object. */
function defaultObject(spec: VirtualMachineInstanceSpec, ctx: DefaultingContext) {
  const domain = spec.domain;
  domain.firmware ??= {};
  domain.firmware.uuid ||= ctx.newUUID();
  domain.features ??= {};
  const features = domain.features;
  features.acpi ??= {};
  enable(features.acpi);
  enable(features.apic);
  enable(features.smm);
  enable(features.pvspinlock);
  const hyperv = features.hyperv;
  if (hyperv) {
    for (const key of [
      'relaxed',
      'vapic',
      'vpindex',
      'runtime',
      'synic',
      'reset',
      'frequencies',
      'reenlightenment',
      'ipi',
      'evmcs',
    ] as const) {
      enable(hyperv[key]);
    }
    if (hyperv.spinlocks) {
      enable(hyperv.spinlocks);
      if (hyperv.spinlocks.enabled && hyperv.spinlocks.spinlocks === undefined) hyperv.spinlocks.spinlocks = 4096;
    }
    if (hyperv.synictimer) {
      enable(hyperv.synictimer);
      enable(hyperv.synictimer.direct);
    }
    enable(hyperv.vendorid);
    if (hyperv.tlbflush) {
      enable(hyperv.tlbflush);
      enable(hyperv.tlbflush.direct);
      enable(hyperv.tlbflush.extended);
    }
  }
  const timer = domain.clock?.timer;
  if (timer)
    for (const t of [timer.hpet, timer.kvm, timer.pit, timer.rtc, timer.hyperv]) if (t && t.present === undefined) t.present = true;
  for (const disk of domain.devices.disks ?? []) {
    if (!disk.disk && !disk.cdrom && !disk.lun) disk.disk = {};
    if (disk.cdrom) {
      disk.cdrom.readonly ??= true;
      disk.cdrom.tray ||= 'closed';
    }
    enable(disk.blockSize?.matchVolume);
  }
  for (const gpu of domain.devices.gpus ?? []) enable(gpu.virtualGPUOptions?.display?.ramFB);
  for (const input of domain.devices.inputs ?? []) {
    input.bus ||= 'usb';
    input.type ||= 'tablet';
  }
  for (const probe of [spec.readinessProbe, spec.livenessProbe]) {
    if (!probe) continue;
    if (!(probe.timeoutSeconds! >= 1)) probe.timeoutSeconds = 1;
    if (!(probe.periodSeconds! >= 1)) probe.periodSeconds = 10;
    if (!(probe.successThreshold! >= 1)) probe.successThreshold = 1;
    if (!(probe.failureThreshold! >= 1)) probe.failureThreshold = 3;
  }
}

function defaultArchSpecific(spec: VirtualMachineInstanceSpec, config: ClusterConfig) {
  const devices = spec.domain.devices;
  switch (spec.architecture) {
    case 'arm64': {
      for (const disk of devices.disks ?? []) for (const target of [disk.disk, disk.cdrom, disk.lun]) if (target) target.bus ||= 'virtio';
      const firmware = (spec.domain.firmware ??= {});
      if (!firmware.bootloader) firmware.bootloader = { efi: { secureBoot: false } };
      else if (firmware.bootloader.efi) firmware.bootloader.efi.secureBoot ??= false;
      break;
    }
    case 's390x':
      for (const disk of devices.disks ?? []) for (const target of [disk.disk, disk.cdrom, disk.lun]) if (target) target.bus ||= 'virtio';
      if (devices.watchdog) {
        devices.watchdog.diag288 ??= {};
        devices.watchdog.diag288.action ||= 'reset';
      }
      break;
    default:
      for (const disk of devices.disks ?? []) for (const target of [disk.disk, disk.cdrom, disk.lun]) if (target) target.bus ||= 'sata';
      if (devices.watchdog) {
        devices.watchdog.i6300esb ??= {};
        devices.watchdog.i6300esb.action ||= 'reset';
      }
  }
  const cpu = (spec.domain.cpu ??= {});
  if (!cpu.model) cpu.model = config.cpuModel || (spec.architecture === 'arm64' ? 'host-passthrough' : DEFAULT_CPU_MODEL);
}

function defaultHotplug(spec: VirtualMachineInstanceSpec, config: ClusterConfig) {
  if (!config.isLiveUpdateRollout || spec.architecture === 'arm64') return;
  const cpu = spec.domain.cpu!;
  if (!cpu.maxSockets) {
    const sockets = cpu.sockets ?? 0;
    let maxSockets = config.maxCpuSockets;
    if (maxSockets !== 0 && sockets > maxSockets) maxSockets = sockets;
    if (maxSockets === 0) {
      const perSocket = (cpu.cores ?? 0) * (cpu.threads ?? 0);
      maxSockets = sockets * config.maxHotplugRatio;
      if (maxSockets * perSocket > MAX_VCPUS) maxSockets = Math.max(Math.floor(MAX_VCPUS / perSocket), sockets);
    }
    cpu.maxSockets = maxSockets;
  }
  const memory = spec.domain.memory!;
  if (memory.maxGuest !== undefined) return;
  let maxGuest: string | number | undefined = config.maxGuest;
  if (maxGuest === undefined && memory.guest !== undefined) {
    const bytes = BigInt(quantityValue(memory.guest)) * BigInt(config.maxHotplugRatio);
    // Beyond an int64 the maximum is no quantity (upstream's product overflows): hotplug stays off.
    if (BigInt.asIntN(64, bytes) === bytes) maxGuest = binaryQuantity(bytes);
  }
  if (maxGuest !== undefined && memoryHotplugPossible(spec, maxGuest)) memory.maxGuest = maxGuest;
}

function memoryHotplugPossible(spec: VirtualMachineInstanceSpec, maxGuest: string | number): boolean {
  const { cpu, memory, launchSecurity } = spec.domain;
  if (cpu?.realtime || cpu?.numa?.guestMappingPassthrough || launchSecurity) return false;
  if (memory?.guest === undefined) return false;
  const alignment = memory.hugepages?.pageSize === '1Gi' ? HOTPLUG_ALIGNMENT_1G_PAGES : HOTPLUG_ALIGNMENT;
  const guest = BigInt(quantityValue(memory.guest));
  const max = BigInt(quantityValue(maxGuest));
  return guest <= max && guest % alignment === 0n && max % alignment === 0n && spec.architecture === 'amd64' && guest >= HOTPLUG_MIN_GUEST;
}

function supportsPcieHotplug(spec: VirtualMachineInstanceSpec): boolean {
  if (!['amd64', 'arm64', '', undefined].includes(spec.architecture)) return false;
  const type = spec.domain.machine?.type;
  return !type || type.includes('q35') || type.startsWith('virt');
}

/** Everything upstream's VMI mutator sets on create: spec defaults, metadata and the initial status. */
export function defaultNewVmi(vmi: VirtualMachineInstance, config: ClusterConfig, ctx: DefaultingContext): VirtualMachineInstance {
  const out = structuredClone(vmi);
  const spec = out.spec;
  spec.domain ??= { devices: {} };
  spec.domain.devices ??= {};
  defaultVmiSpec(spec, config);
  defaultObject(spec, ctx);
  defaultArchSpecific(spec, config);
  const status = (out.status ??= {});
  const guest = spec.domain.memory?.guest;
  if (guest !== undefined) status.memory = { guestAtBoot: guest, guestCurrent: guest, guestRequested: guest };
  const cpu = spec.domain.cpu!;
  status.currentCPUTopology ??= { sockets: cpu.sockets, cores: cpu.cores, threads: cpu.threads };
  defaultHotplug(spec, config);
  out.spec = canonicalizeQuantities(SpecSchema(), spec);
  if (status.memory) {
    const canonical = out.spec.domain.memory!.guest!;
    status.memory = { guestAtBoot: canonical, guestCurrent: canonical, guestRequested: canonical };
  }
  if (supportsPcieHotplug(spec)) {
    out.metadata.annotations ??= {};
    out.metadata.annotations[PCI_TOPOLOGY_VERSION_ANNOTATION] ??= PCI_TOPOLOGY_VERSION;
  }
  if (!config.rootEnabled) status.runtimeUser = NON_ROOT_UID;
  out.metadata.finalizers = [...(out.metadata.finalizers ?? []), VMI_FINALIZER];
  status.phase = 'Pending';
  status.phaseTransitionTimestamps = [
    ...(status.phaseTransitionTimestamps ?? []),
    { phase: 'Pending', phaseTransitionTimestamp: ctx.now() },
  ];
  return out;
}
