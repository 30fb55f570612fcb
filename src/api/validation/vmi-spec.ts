// Validation of a VirtualMachineInstance spec, shared by VMIs and by the VMI
// templates of VMs, replica sets and pools (upstream's ValidateVirtualMachineInstanceSpec).
import type { Disk, Probe, VirtualMachineInstanceSpec, Volume } from '../types.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import { type FieldPath, invalid, required, notSupported, type StatusCause } from '../causes.ts';
import { parseQuantity, quantityValue, formatQuantity, type Quantity } from '../quantity.ts';
import { dns1123LabelErrors, dns1123SubdomainErrors, isIP, isPciAddress } from './k8s-names.ts';
import { validateNetworking } from './network.ts';
import { settingsArchitecture } from '../defaults/vmi.ts';

const CLOUD_INIT_MAX_LEN = 2048;
const SERIAL_MAX_LEN = 256;
const SERIAL_CHARS = /^[A-Za-z0-9_.+-]+$/;
const SUPPORTED_DISK_BUSES = ['virtio', 'scsi', 'sata', 'usb'];
const IO_THREADS_POLICIES = ['shared', 'auto', 'supplementalPool'];
const CPU_FEATURE_POLICIES = ['', 'force', 'require', 'optional', 'disable', 'forbid'];
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];
const EVICTION_STRATEGIES = ['None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External'];
const SOUND_MODELS = ['ich9', 'ac97'];
const PANIC_MODELS = ['hyperv', 'isa', 'pvpanic'];
const ONE_MEGABYTE = 1_000_000;

const notFound = (field: FieldPath, name: string) => `${field} '${name}' not found.`;
const mustBePositive = (field: FieldPath, value: string) => `${field} '${value}': must be greater than or equal to 0.`;

/** A quantity from a resource list, or undefined when absent; malformed ones surface as causes. */
function readQuantity(value: string | number | undefined, field: FieldPath, causes: StatusCause[]): Quantity | undefined {
  if (value === undefined) return undefined;
  try {
    return parseQuantity(value);
  } catch {
    causes.push(
      invalid(field, `${field} '${value}': quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`),
    );
    return undefined;
  }
}
const show = (q: Quantity | undefined) => (q ? formatQuantity(q) : '0');
const bytes = (q: Quantity | undefined) => (q ? quantityValue(q) : 0);

export function validateVmiSpec(field: FieldPath, spec: VirtualMachineInstanceSpec, config: ClusterConfig): StatusCause[] {
  const causes: StatusCause[] = [];
  const domain = spec.domain ?? { devices: {} };
  const devices = domain.devices ?? {};

  if (spec.hostname) {
    const errors = dns1123LabelErrors(spec.hostname);
    if (errors.length) {
      causes.push(
        invalid(
          field.child('hostname'),
          `${field.child('hostname')} does not conform to the kubernetes DNS_LABEL rules : ${errors.join(', ')}`,
        ),
      );
    }
  }
  if (spec.subdomain) {
    const errors = dns1123SubdomainErrors(spec.subdomain);
    if (errors.length) {
      causes.push(
        invalid(
          field.child('subdomain'),
          `${field.child('subdomain')} does not conform to the kubernetes DNS_SUBDOMAIN rules : ${errors.join(', ')}`,
        ),
      );
    }
  }
  causes.push(...validateResources(field, spec, config));
  causes.push(...validateMachine(field, spec, config));
  causes.push(...validateFirmwareAcpi(field.child('acpi'), spec));
  causes.push(...validateCpu(field, spec));
  if (spec.startStrategy !== undefined) {
    const f = field.child('startStrategy');
    if (spec.startStrategy !== 'Paused') causes.push(invalid(f, `${f} is set with an unrecognized option: ${spec.startStrategy}`));
    else if (spec.livenessProbe) {
      causes.push(
        invalid(f, `either ${f} or ${field.child('livenessProbe')} should be provided.Pausing VMI with LivenessProbe is not supported`),
      );
    }
  }
  causes.push(...validateNetworking(field, spec, config));
  causes.push(...validateBootOrder(field, spec, config));
  for (const [i, input] of (devices.inputs ?? []).entries()) {
    const f = field.child('domain', 'devices', 'inputs').index(i);
    if (input.bus && input.bus !== 'virtio' && input.bus !== 'usb')
      causes.push(invalid(f.child('bus'), 'Input device can have only virtio or usb bus.'));
    if (input.type && input.type !== 'tablet') causes.push(invalid(f.child('type'), 'Input device can have only tablet type.'));
  }
  if (domain.ioThreadsPolicy !== undefined) {
    const f = field.child('domain', 'ioThreadsPolicy');
    if (!IO_THREADS_POLICIES.includes(domain.ioThreadsPolicy))
      causes.push(invalid(f, `Invalid IOThreadsPolicy (${domain.ioThreadsPolicy})`));
    if (domain.ioThreadsPolicy === 'supplementalPool' && !((domain.ioThreads?.supplementalPoolThreadCount ?? 0) > 0)) {
      causes.push(
        invalid(field.child('domain', 'ioThreads'), 'the number of iothreads needs to be set and positive for the dedicated policy'),
      );
    }
  }
  causes.push(...validateProbe(field.child('readinessProbe'), spec.readinessProbe));
  causes.push(...validateProbe(field.child('livenessProbe'), spec.livenessProbe));
  if (!(spec.networks ?? []).some((n) => n.pod)) {
    for (const name of ['readinessProbe', 'livenessProbe'] as const) {
      const probe = spec[name];
      if (probe?.httpGet || probe?.tcpSocket) {
        const f = field.child(name, probe.httpGet ? 'httpGet' : 'tcpSocket');
        causes.push(invalid(f, `${f} is only allowed if the Pod Network is attached`));
      }
    }
  }
  causes.push(...validateDisks(field.child('domain', 'devices', 'disks'), devices.disks ?? []));
  causes.push(...validateFirmware(field.child('domain', 'firmware'), spec));
  const efi = domain.firmware?.bootloader?.efi;
  const secureBoot = efi !== undefined && efi.secureBoot !== false;
  const smm = domain.features?.smm !== undefined && domain.features.smm.enabled !== false;
  if (secureBoot && !smm && !domain.launchSecurity?.tdx) {
    causes.push(
      invalid(
        field.child('domain'),
        `${field.child('domain')} has EFI SecureBoot enabled. SecureBoot requires SMM, which is currently disabled.`,
      ),
    );
  }
  causes.push(...validateVolumes(field.child('volumes'), spec.volumes ?? [], config));
  for (const [i, volume] of (spec.volumes ?? []).entries()) {
    if (volume.containerDisk?.path)
      causes.push(...validateAbsolutePath(field.child('volumes').index(i).child('containerDisk'), volume.containerDisk.path));
  }
  causes.push(...validateAccessCredentials(field.child('accessCredentials'), spec));
  if (spec.dnsPolicy && !DNS_POLICIES.includes(spec.dnsPolicy)) {
    causes.push(
      notSupported(
        field.child('dnsPolicy'),
        `DNSPolicy: ${spec.dnsPolicy} is not supported, valid values: ${JSON.stringify(DNS_POLICIES).replaceAll(',', ' ').replaceAll('"', '')}`,
      ),
    );
  }
  causes.push(...validateDnsConfig(field.child('dnsConfig'), spec));
  if (spec.evictionStrategy !== undefined && !EVICTION_STRATEGIES.includes(spec.evictionStrategy)) {
    const f = field.child('evictionStrategy');
    causes.push(invalid(f, `${f} is set with an unrecognized option: ${spec.evictionStrategy}`));
  }
  if (devices.hostDevices && !config.isFeatureGateEnabled('HostDevices')) {
    causes.push(invalid(field.child('domain', 'devices', 'hostDevices'), 'Host Devices feature gate is not enabled in kubevirt-config'));
  }
  if (devices.sound) {
    const f = field.child('domain', 'devices', 'sound');
    if (devices.sound.model && !SOUND_MODELS.includes(devices.sound.model)) {
      causes.push(invalid(f, "Sound device type is not supported. Options: 'ich9' or 'ac97'"));
    }
    if (!devices.sound.name) causes.push(invalid(f, 'Sound device requires a name field.'));
  }
  if (devices.autoattachVSOCK && !config.isFeatureGateEnabled('VSOCK')) {
    causes.push(invalid(field.child('domain', 'devices', 'autoattachVSOCK'), 'VSOCK feature gate is not enabled in kubevirt-config'));
  }
  if (devices.disks?.some((d) => d.lun?.reservation) && !config.isFeatureGateEnabled('PersistentReservation')) {
    causes.push(
      invalid(field.child('domain', 'devices', 'disks', 'luns', 'reservation'), 'persistent reservation is not enabled in kubevirt config'),
    );
  }
  if (devices.downwardMetrics && !config.isFeatureGateEnabled('DownwardMetrics')) {
    causes.push(
      invalid(
        field.child('domain', 'devices', 'downwardMetrics'),
        'downwardMetrics virtio serial is not allowed: DownwardMetrics feature gate is not enabled',
      ),
    );
  }
  if (devices.video && devices.autoattachGraphicsDevice === false) {
    causes.push(
      invalid(
        field.child('domain', 'devices', 'video'),
        'Video configuration is not allowed when autoattachGraphicsDevice is set to false',
      ),
    );
  }
  for (const [i, panic] of (devices.panicDevices ?? []).entries()) {
    if (panic.model !== undefined && !PANIC_MODELS.includes(panic.model)) {
      causes.push(
        invalid(field.child('domain', 'devices', 'panicDevices').index(i).child('model'), `invalid PanicDeviceModel(${panic.model})`),
      );
    }
  }
  if (domain.rebootPolicy !== undefined && !config.isFeatureGateEnabled('RebootPolicy')) {
    causes.push(
      invalid(field.child('domain', 'rebootPolicy'), 'RebootPolicy is specified but the RebootPolicy feature gate is not enabled'),
    );
  }
  if (domain.memory?.reservedOverhead?.memLock !== undefined && !config.isFeatureGateEnabled('ReservedOverheadMemlock')) {
    causes.push(
      invalid(
        field.child('domain', 'memory', 'reservedOverhead', 'memLock'),
        'Reserved overhead memlock feature gate is not enabled in kubevirt-config',
      ),
    );
  }
  causes.push(...validateServiceAccount(field, spec));
  return causes;
}

function validateResources(field: FieldPath, spec: VirtualMachineInstanceSpec, config: ClusterConfig): StatusCause[] {
  const causes: StatusCause[] = [];
  const { requests = {}, limits = {} } = spec.domain?.resources ?? {};
  const reqMemField = field.child('domain', 'resources', 'requests', 'memory');
  const limMemField = field.child('domain', 'resources', 'limits', 'memory');
  const reqCpuField = field.child('domain', 'resources', 'requests', 'cpu');
  const limCpuField = field.child('domain', 'resources', 'limits', 'cpu');
  const reqMem = readQuantity(requests.memory, reqMemField, causes);
  const limMem = readQuantity(limits.memory, limMemField, causes);
  const reqCpu = readQuantity(requests.cpu, reqCpuField, causes);
  const limCpu = readQuantity(limits.cpu, limCpuField, causes);
  const memory = spec.domain?.memory;
  const guestField = field.child('domain', 'memory', 'guest');
  const guest = readQuantity(memory?.guest, guestField, causes);

  if (bytes(reqMem) < 0) causes.push(invalid(reqMemField, mustBePositive(reqMemField, show(reqMem))));
  else if (bytes(reqMem) > 0 && bytes(reqMem) < ONE_MEGABYTE) {
    causes.push(invalid(reqMemField, `${reqMemField} '${show(reqMem)}': must be greater than or equal to 1M.`));
  }
  if (bytes(limMem) < 0) causes.push(invalid(limMemField, mustBePositive(limMemField, show(limMem))));
  if (bytes(limMem) > 0 && bytes(reqMem) > bytes(limMem)) {
    causes.push(invalid(reqMemField, `${reqMemField} '${show(reqMem)}' is greater than ${limMemField} '${show(limMem)}'`));
  }
  if (memory?.hugepages) {
    const pageField = field.child('domain', 'memory', 'hugepages', 'pageSize');
    let page: Quantity | undefined;
    try {
      page = parseQuantity(memory.hugepages.pageSize ?? '');
    } catch {
      causes.push(
        invalid(
          pageField,
          `${pageField} '${memory.hugepages.pageSize ?? ''}': quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
        ),
      );
    }
    if (page) {
      const vmMemory = bytes(reqMem) || bytes(guest) || bytes(limMem);
      const pageBytes = quantityValue(page);
      if (vmMemory !== 0 && vmMemory < pageBytes) {
        causes.push(
          invalid(
            reqMemField,
            `${reqMemField} '${show(reqMem)}' must be equal to or larger than page size ${pageField} '${memory.hugepages.pageSize}'`,
          ),
        );
      } else if (pageBytes > 0 && vmMemory % pageBytes !== 0) {
        causes.push(
          invalid(
            reqMemField,
            `${reqMemField} '${show(reqMem)}' is not a multiple of the page size ${pageField} '${memory.hugepages.pageSize}'`,
          ),
        );
      }
    }
  }
  if (!config.isLiveUpdateRollout && guest && bytes(limMem) !== 0 && bytes(limMem) < bytes(guest)) {
    causes.push(
      invalid(guestField, `${guestField} '${show(guest)}' must be equal to or less than the memory limit ${limMemField} '${show(limMem)}'`),
    );
  }
  if (reqCpu && reqCpu.nanos < 0n) causes.push(invalid(reqCpuField, mustBePositive(reqCpuField, show(reqCpu))));
  if (limCpu && limCpu.nanos < 0n) causes.push(invalid(limCpuField, mustBePositive(limCpuField, show(limCpu))));
  if (limCpu && reqCpu && limCpu.nanos > 0n && reqCpu.nanos > limCpu.nanos) {
    causes.push(invalid(reqCpuField, `${reqCpuField} '${show(reqCpu)}' is greater than ${limCpuField} '${show(limCpu)}'`));
  }
  return causes;
}

function validateMachine(field: FieldPath, spec: VirtualMachineInstanceSpec, config: ClusterConfig): StatusCause[] {
  const type = spec.domain?.machine?.type;
  if (!type) return [];
  const allowed = config.emulatedMachines(settingsArchitecture(spec.architecture || config.defaultArchitecture));
  if (allowed.some((pattern) => globMatch(pattern, type))) return [];
  const f = field.child('domain', 'machine', 'type');
  return [invalid(f, `${f} is not supported: ${type} (allowed values: [${allowed.join(' ')}])`)];
}

function globMatch(pattern: string, value: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${regex}$`).test(value);
}

function validateFirmwareAcpi(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const acpi = spec.domain?.firmware?.acpi;
  if (!acpi) return [];
  if (!acpi.slicNameRef && !acpi.msdmNameRef) return [invalid(field, 'ACPI was set but no SLIC nor MSDM volume reference was set')];
  const causes: StatusCause[] = [];
  for (const key of ['slicNameRef', 'msdmNameRef'] as const) {
    const ref = acpi[key];
    if (!ref) continue;
    const volume = spec.volumes?.find((v) => v.name === ref);
    if (!volume) causes.push(invalid(field.child(key), `${field} does not have a matching Volume.`));
    else if (!volume.secret) causes.push(invalid(field.child(key), `${field} refers to Volume of unsupported type.`));
  }
  return causes;
}

function validateCpu(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const causes: StatusCause[] = [];
  const cpu = spec.domain?.cpu;
  if (!cpu) return causes;
  if (cpu.isolateEmulatorThread && !cpu.dedicatedCpuPlacement) {
    causes.push(
      invalid(
        field.child('domain', 'cpu', 'isolateEmulatorThread'),
        'IsolateEmulatorThread should be only set in combination with DedicatedCPUPlacement',
      ),
    );
  }
  for (const [i, feature] of (cpu.features ?? []).entries()) {
    if (!CPU_FEATURE_POLICIES.includes(feature.policy ?? '')) {
      causes.push(
        invalid(
          field.child('domain', 'cpu', 'features').index(i).child('policy'),
          `CPU feature ${feature.name} uses policy ${feature.policy} that is not supported.`,
        ),
      );
    }
  }
  if (cpu.maxSockets && cpu.sockets && cpu.sockets > cpu.maxSockets) {
    causes.push(
      invalid(field.child('domain', 'cpu', 'sockets'), 'Number of sockets in CPU topology is greater than the maximum sockets allowed'),
    );
  }
  if (cpu.realtime) {
    if (!cpu.dedicatedCpuPlacement) {
      causes.push(
        required(
          field.child('domain', 'cpu', 'dedicatedCpuPlacement'),
          `${field.child('domain', 'cpu', 'dedicatedCpuPlacement')} must be set to true when ${field.child('domain', 'cpu', 'realtime')} is used`,
        ),
      );
    }
    if (!spec.domain.memory?.hugepages) {
      causes.push(
        required(
          field.child('domain', 'memory', 'hugepages', 'pageSize'),
          `${field.child('domain', 'memory', 'hugepages', 'pageSize')} must be defined when ${field.child('domain', 'cpu', 'realtime')} is used`,
        ),
      );
    }
  }
  return causes;
}

function validateProbe(field: FieldPath, probe: Probe | undefined): StatusCause[] {
  if (!probe) return [];
  const handlers = [probe.httpGet, probe.tcpSocket, probe.exec, probe.guestAgentPing].filter(Boolean).length;
  if (handlers > 1) return [invalid(field, `${field} must have exactly one probe type set`)];
  if (handlers < 1) {
    return [
      required(
        field,
        `either ${field.child('tcpSocket')}, ${field.child('exec')} or ${field.child('httpGet')} must be set if a ${field} is specified`,
      ),
    ];
  }
  return [];
}

function validateBootOrder(field: FieldPath, spec: VirtualMachineInstanceSpec, config: ClusterConfig): StatusCause[] {
  const causes: StatusCause[] = [];
  const used = new Set<number>();
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v] as const));
  for (const [i, disk] of (spec.domain?.devices?.disks ?? []).entries()) {
    const f = field.child('domain', 'devices', 'disks').index(i);
    const volume = volumes.get(disk.name);
    if (!volume) {
      if (!disk.cdrom) causes.push(invalid(f.child('name'), notFound(f.child('Name'), disk.name)));
      else if (!config.isFeatureGateEnabled('DeclarativeHotplugVolumes')) {
        causes.push(invalid(f.child('name'), 'DeclarativeHotplugVolumes feature gate not enabled, cannot define an empty CD-ROM disk'));
      }
    }
    if (disk.lun && volume && !volume.persistentVolumeClaim && !volume.dataVolume) {
      causes.push(invalid(f.child('lun'), `${f.child('lun')} can only be mapped to a DataVolume or PersistentVolumeClaim volume.`));
    }
    if (volume?.downwardMetrics) {
      if (!disk.disk)
        causes.push(
          required(f.child('disk'), `DownwardMetrics volume must be mapped to a disk, but disk is not set on ${f.child('disk')}.`),
        );
      else if (disk.disk.bus && disk.disk.bus !== 'virtio') {
        causes.push(
          invalid(
            f.child('disk', 'bus'),
            `DownwardMetrics volume must be mapped to virtio bus, but ${f.child('disk', 'bus')} is set to ${disk.disk.bus}`,
          ),
        );
      }
    }
    if (disk.bootOrder !== undefined) {
      if (used.has(disk.bootOrder))
        causes.push(invalid(f.child('bootOrder'), `Boot order for ${f.child('bootOrder')} already set for a different device.`));
      used.add(disk.bootOrder);
    }
  }
  for (const [i, iface] of (spec.domain?.devices?.interfaces ?? []).entries()) {
    if (iface.bootOrder === undefined) continue;
    const f = field.child('domain', 'devices', 'interfaces').index(i);
    if (iface.bootOrder < 1) causes.push(invalid(f.child('bootOrder'), `${f} must have a boot order > 0, if supplied`));
    else {
      if (used.has(iface.bootOrder))
        causes.push(invalid(f.child('bootOrder'), `Boot order for ${f.child('bootOrder')} already set for a different device.`));
      used.add(iface.bootOrder);
    }
  }
  return causes;
}

function diskTarget(disk: Disk): { kind: 'disk' | 'lun' | 'cdrom' | ''; bus: string } {
  if (disk.disk) return { kind: 'disk', bus: disk.disk.bus ?? '' };
  if (disk.lun) return { kind: 'lun', bus: disk.lun.bus ?? '' };
  if (disk.cdrom) return { kind: 'cdrom', bus: disk.cdrom.bus ?? '' };
  return { kind: '', bus: '' };
}

/** storage admitters' ValidateDisks. */
export function validateDisks(field: FieldPath, disks: Disk[]): StatusCause[] {
  const causes: StatusCause[] = [];
  const devicesDisks = (i: number) => field.child('domain', 'devices', 'disks').index(i);
  for (const [i, disk] of disks.entries()) {
    const f = field.index(i);
    const first = disks.findIndex((d) => d.name === disk.name);
    if (first < i) causes.push(invalid(f.child('name'), `${f} and ${field.index(first)} must not have the same Name.`));
    if ([disk.disk, disk.lun, disk.cdrom].filter(Boolean).length > 1)
      causes.push(invalid(f, `${f} can only have a single target type defined`));
    if (disk.disk?.pciAddress) {
      const named = field.child('domain', 'devices', 'disks', 'disk').index(i);
      if (disk.disk.bus !== 'virtio')
        causes.push(
          invalid(named.child('pciAddress'), `disk ${named.child('name')} - setting a PCI address is only possible with bus type virtio.`),
        );
      if (!isPciAddress(disk.disk.pciAddress))
        causes.push(invalid(named.child('pciAddress'), `disk ${named.child('name')} has malformed PCI address (${disk.disk.pciAddress}).`));
    }
    if (disk.bootOrder !== undefined && disk.bootOrder < 1)
      causes.push(invalid(f.child('bootOrder'), `${f} must have a boot order > 0, if supplied`));
    const { kind, bus } = diskTarget(disk);
    if (bus === 'ide') causes.push(invalid(f.child(kind, 'bus'), 'IDE bus is not supported'));
    else if (bus === 'virtio' && kind === 'cdrom')
      causes.push(invalid(f.child('cdrom', 'bus'), `Bus type ${bus} is invalid for CD-ROM device`));
    else if (bus === 'sata' && disk.disk?.readonly)
      causes.push(invalid(f.child('disk', 'bus'), `${bus} hard-disks do not support read-only.`));
    else if (bus && !SUPPORTED_DISK_BUSES.includes(bus)) {
      causes.push(invalid(f.child(kind, 'bus'), `${f} is set with an unrecognized bus ${bus}, must be one of: [virtio scsi sata usb]`));
    }
    if (disk.dedicatedIOThread && bus && bus !== 'virtio') {
      causes.push(notSupported(devicesDisks(i), `IOThreads are not supported for disks on a ${bus} bus`));
    }
    if (disk.serial) {
      if (!SERIAL_CHARS.test(disk.serial))
        causes.push(invalid(f.child('serial'), `${f} must be made up of the following characters [A-Za-z0-9_.+-], if specified`));
      if ([...disk.serial].length > SERIAL_MAX_LEN)
        causes.push(invalid(f.child('serial'), `${f} must be less than or equal to ${SERIAL_MAX_LEN} in length, if specified`));
    }
    if (disk.cache && !['none', 'writethrough', 'writeback'].includes(disk.cache)) {
      causes.push(invalid(f.child('cache'), `${f.child('cache')} has invalid value ${disk.cache}`));
    }
    if (disk.io && !['native', 'threads'].includes(disk.io)) {
      causes.push(
        notSupported(devicesDisks(i).child('io'), `Disk IO mode for ${field} is not supported. Supported modes are: native, threads.`),
      );
    }
    if (disk.errorPolicy !== undefined && !['stop', 'ignore', 'report', 'enospace'].includes(disk.errorPolicy)) {
      causes.push(invalid(f.child('errorPolicy'), `${f.child('errorPolicy')} has invalid value "${disk.errorPolicy}"`));
    }
    for (const error of dns1123LabelErrors(disk.name)) causes.push(invalid(devicesDisks(i).child('name'), error));
    causes.push(...validateBlockSize(f, disk));
  }
  return causes;
}

function validateBlockSize(f: FieldPath, disk: Disk): StatusCause[] {
  const custom = disk.blockSize?.custom;
  if (!custom) return [];
  if (disk.blockSize?.matchVolume && disk.blockSize.matchVolume.enabled !== false) {
    return [invalid(f.child('blockSize'), "Block size matching can't be enabled together with a custom value")];
  }
  const customField = f.child('blockSize', 'custom');
  if (custom.logical > custom.physical) {
    return [
      invalid(
        customField.child('logical'),
        `Logical size ${custom.logical} must be the same or less than the physical size of ${custom.physical}`,
      ),
    ];
  }
  if (diskTarget(disk).bus === 'sata' && custom.logical !== 512) {
    return [invalid(customField.child('logical'), `Logical size ${custom.logical} must be 512 for SATA devices`)];
  }
  if (custom.discardGranularity !== undefined && custom.logical !== 0 && custom.discardGranularity % custom.logical !== 0) {
    return [
      invalid(
        customField.child('discardGranularity'),
        `Discard granularity ${custom.discardGranularity} must be multiples of logical size ${custom.logical}`,
      ),
    ];
  }
  const causes: StatusCause[] = [];
  for (const key of ['logical', 'physical'] as const) {
    const size = custom[key];
    if (size < 512) causes.push(invalid(customField.child(key), `Provided size of ${size} is less than the supported minimum size of 512`));
    else if (size > 2097152)
      causes.push(invalid(customField.child(key), `Provided size of ${size} is greater than the supported maximum size of 2097152`));
    else if ((size & (size - 1)) !== 0) causes.push(invalid(customField.child(key), `Provided size of ${size} is not a power of 2`));
  }
  return causes;
}

function validateAbsolutePath(field: FieldPath, value: string): StatusCause[] {
  if (value === '/') return [invalid(field, `${field} must not point to root`)];
  const cleaned = cleanPath(`/${value}`);
  const provided = value.replace(/\/+$/, '');
  return cleaned === provided ? [] : [invalid(field, `${field} must be an absolute path to a file without relative components`)];
}

/** Go's filepath.Clean for absolute paths. */
function cleanPath(value: string): string {
  const out: string[] = [];
  for (const part of value.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

export function validateFirmware(field: FieldPath, spec: Pick<VirtualMachineInstanceSpec, 'domain'>): StatusCause[] {
  const firmware = spec.domain?.firmware;
  if (!firmware) return [];
  const causes: StatusCause[] = [];
  const bootloader = firmware.bootloader;
  if (bootloader?.efi && bootloader.bios) {
    causes.push(
      invalid(field.child('bootloader'), `${field.child('bootloader')} has both EFI and BIOS configured, but they are mutually exclusive.`),
    );
  }
  const kernelBoot = firmware.kernelBoot;
  if (kernelBoot) {
    const kb = field.child('kernelBoot');
    if (!kernelBoot.container) {
      if (kernelBoot.kernelArgs)
        causes.push(invalid(kb.child('kernelArgs'), 'kernel arguments cannot be provided without an external kernel'));
    } else {
      const c = kb.child('container');
      if (!kernelBoot.container.image) causes.push(required(c.child('image'), `${c} must be defined with an image`));
      if (!kernelBoot.container.kernelPath && !kernelBoot.container.initrdPath) {
        causes.push(required(c, `${c} must be defined with at least one of the following: kernelPath, initrdPath`));
      }
      if (kernelBoot.container.kernelPath) causes.push(...validateAbsolutePath(c.child('kernelPath'), kernelBoot.container.kernelPath));
      if (kernelBoot.container.initrdPath) causes.push(...validateAbsolutePath(c.child('initrdPath'), kernelBoot.container.initrdPath));
    }
  }
  return causes;
}

const VOLUME_SOURCES = [
  'persistentVolumeClaim',
  'sysprep',
  'cloudInitNoCloud',
  'cloudInitConfigDrive',
  'containerDisk',
  'ephemeral',
  'emptyDisk',
  'hostDisk',
  'dataVolume',
  'configMap',
  'secret',
  'downwardAPI',
  'serviceAccount',
  'downwardMetrics',
  'memoryDump',
  'containerPath',
] as const satisfies readonly (keyof Volume)[];

function decodedBase64Length(value: string): number | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  return Buffer.from(value, 'base64').length;
}

export function validateVolumes(field: FieldPath, volumes: Volume[], config: ClusterConfig): StatusCause[] {
  const causes: StatusCause[] = [];
  const firstByName = new Map<string, number>();
  for (const [i, volume] of volumes.entries()) {
    const f = field.index(i);
    const other = firstByName.get(volume.name);
    if (other === undefined) firstByName.set(volume.name, i);
    else causes.push(invalid(f.child('name'), `${f} and ${field.index(other)} must not have the same Name.`));
    if (volume.dataVolume && !volume.dataVolume.name) causes.push(required(f.child('name'), "DataVolume 'name' must be set"));
    if (VOLUME_SOURCES.filter((s) => volume[s] !== undefined).length !== 1) {
      causes.push(invalid(f, `${f} must have exactly one source type set`));
    }
    for (const kind of ['cloudInitNoCloud', 'cloudInitConfigDrive'] as const) {
      const source = volume[kind];
      if (source) {
        causes.push(...validateCloudInit(f, kind, source));
        break;
      }
    }
    if (volume.downwardMetrics && !config.isFeatureGateEnabled('DownwardMetrics')) {
      causes.push(invalid(f, 'downwardMetrics disks are not allowed: DownwardMetrics feature gate is not enabled.'));
    }
    const hostDisk = volume.hostDisk;
    if (hostDisk) {
      if (!config.isFeatureGateEnabled('HostDisk')) causes.push(invalid(f, 'HostDisk feature gate is not enabled'));
      if (!hostDisk.path)
        causes.push(required(f.child('hostDisk', 'path'), `${f.child('hostDisk', 'path')} is required for hostDisk volume`));
      if (hostDisk.type !== 'Disk' && hostDisk.type !== 'DiskOrCreate') {
        causes.push(
          invalid(
            f.child('hostDisk', 'type'),
            `${f.child('hostDisk', 'type')} has invalid value '${hostDisk.type ?? ''}', allowed are 'Disk' or 'DiskOrCreate'`,
          ),
        );
      }
      if (hostDisk.type === 'Disk' && hostDisk.capacity !== undefined && parseQuantitySafe(hostDisk.capacity) !== 0n) {
        causes.push(
          invalid(
            f.child('hostDisk', 'capacity'),
            `${f.child('hostDisk', 'capacity')} is allowed to pass only with ${f.child('hostDisk', 'type')} equal to 'DiskOrCreate'`,
          ),
        );
      }
    }
    if (volume.configMap && !volume.configMap.name) {
      causes.push(required(f.child('configMap', 'name'), `${f.child('configMap', 'name')} is a required field`));
    }
    if (volume.secret && !volume.secret.secretName) {
      causes.push(required(f.child('secret', 'secretName'), `${f.child('secret', 'secretName')} is a required field`));
    }
    if (volume.serviceAccount && !volume.serviceAccount.serviceAccountName) {
      causes.push(
        required(f.child('serviceAccount', 'serviceAccountName'), `${f.child('serviceAccount', 'serviceAccountName')} is a required field`),
      );
    }
    if (volume.emptyDisk) {
      const q = parseQuantitySafe(volume.emptyDisk.capacity);
      if (q === undefined)
        causes.push(
          invalid(
            f.child('emptyDisk', 'capacity'),
            `${f.child('emptyDisk', 'capacity')} '${volume.emptyDisk.capacity}' is not a valid quantity`,
          ),
        );
    }
  }
  const counts = (key: keyof Volume) => volumes.filter((v) => v[key] !== undefined).length;
  if (counts('serviceAccount') > 1) causes.push(invalid(field, `${field} must have max one serviceAccount volume set`));
  if (counts('downwardMetrics') > 1) causes.push(invalid(field, `${field} must have max one downwardMetric volume set`));
  if (counts('memoryDump') > 1) causes.push(invalid(field, `${field} must have max one memory dump volume set`));
  return causes;
}

function parseQuantitySafe(value: string | number): bigint | undefined {
  try {
    return parseQuantity(value).nanos;
  } catch {
    return undefined;
  }
}

type CloudInitSource = NonNullable<Volume['cloudInitNoCloud']>;

/** Counts one kind of cloud-init data (user or network) and measures it, as upstream does. */
function cloudInitData(
  f: FieldPath,
  kind: string,
  base64Field: string,
  secretName: string | undefined,
  base64: string | undefined,
  plain: string | undefined,
  causes: StatusCause[],
): { sources: number; length: number } {
  let sources = 0;
  let length = 0;
  if (secretName) sources++;
  if (base64) {
    sources++;
    const decoded = decodedBase64Length(base64);
    if (decoded === undefined)
      causes.push(invalid(f.child(kind, base64Field), `${f.child(kind, base64Field)}.${kind}.${base64Field} is not a valid base64 value.`));
    length = decoded ?? 0;
  }
  if (plain) {
    sources++;
    length = Buffer.byteLength(plain);
  }
  return { sources, length };
}

function validateCloudInit(f: FieldPath, kind: string, source: CloudInitSource): StatusCause[] {
  const causes: StatusCause[] = [];
  const sf = f.child(kind);
  const user = cloudInitData(f, kind, 'userDataBase64', source.secretRef?.name, source.userDataBase64, source.userData, causes);
  if (user.sources > 1) causes.push(invalid(sf, `${sf} must have only one userdatasource set.`));
  if (user.length > CLOUD_INIT_MAX_LEN)
    causes.push(invalid(sf, `${sf} userdata exceeds ${CLOUD_INIT_MAX_LEN} byte limit. Should use UserDataSecretRef for larger data.`));
  const network = cloudInitData(
    f,
    kind,
    'networkDataBase64',
    source.networkDataSecretRef?.name,
    source.networkDataBase64,
    source.networkData,
    causes,
  );
  if (network.sources > 1) causes.push(invalid(sf, `${sf} must have only one networkdata source set.`));
  if (network.length > CLOUD_INIT_MAX_LEN)
    causes.push(
      invalid(sf, `${sf} networkdata exceeds ${CLOUD_INIT_MAX_LEN} byte limit. Should use NetworkDataSecretRef for larger data.`),
    );
  if (user.sources === 0 && network.sources === 0) {
    causes.push(required(sf, `${sf} must have at least one userdatasource or one networkdatasource set.`));
  }
  return causes;
}

function validateAccessCredentials(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const causes: StatusCause[] = [];
  const hasNoCloud = (spec.volumes ?? []).some((v) => v.cloudInitNoCloud);
  const hasConfigDrive = (spec.volumes ?? []).some((v) => v.cloudInitConfigDrive);
  for (const [i, credential] of (spec.accessCredentials ?? []).entries()) {
    const f = field.index(i);
    const kinds = [credential.sshPublicKey, credential.userPassword].filter(Boolean).length;
    if (kinds !== 1) {
      causes.push(invalid(f, `${f} must have exactly one access credential type set`));
      continue;
    }
    if (credential.sshPublicKey) {
      const { source, propagationMethod: method } = credential.sshPublicKey;
      if (!source?.secret) causes.push(invalid(f, `${f} must have exactly one source set`));
      const methods = [method?.noCloud, method?.configDrive, method?.qemuGuestAgent].filter(Boolean).length;
      if (methods !== 1) causes.push(invalid(f, `${f} must have exactly one propagationMethod set`));
      if (method?.noCloud && !hasNoCloud) {
        causes.push(invalid(f, `${f} requires a noCloud volume to exist when the noCloud propagationMethod is in use.`));
      }
      if (method?.configDrive && !hasConfigDrive) {
        causes.push(invalid(f, `${f} requires a configDrive volume to exist when the configDrive propagationMethod is in use.`));
      }
      if (method?.qemuGuestAgent && !method.qemuGuestAgent.users?.length) {
        causes.push(invalid(f, `${f} requires at least one user to be present in the users list`));
      }
    } else if (credential.userPassword) {
      const { source, propagationMethod: method } = credential.userPassword;
      if (!source?.secret) causes.push(invalid(f, `${f} must have exactly one source set`));
      if (!method?.qemuGuestAgent) causes.push(invalid(f, `${f} must have exactly one propagationMethod set`));
    }
  }
  return causes;
}

function validateDnsConfig(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  const causes: StatusCause[] = [];
  const config = spec.dnsConfig;
  if (spec.dnsPolicy === 'None') {
    if (!config) return [required(field, 'must provide `dnsConfig` when `dnsPolicy` is None')];
    if (!config.nameservers?.length)
      causes.push(required(field.child('nameservers'), 'must provide at least one DNS nameserver when `dnsPolicy` is None'));
  }
  if (!config) return causes;
  const nameservers = config.nameservers ?? [];
  if (nameservers.length > 3) {
    causes.push(invalid(field.child('nameservers'), `must not have more than 3 nameservers: [${nameservers.join(' ')}]`));
  }
  for (const [i, ns] of nameservers.entries()) {
    if (!isIP(ns)) causes.push(invalid(field.child('nameservers').index(i), `must be valid IP address: ${ns}`));
  }
  const searches = config.searches ?? [];
  if (searches.length > 6) causes.push(invalid(field.child('searches'), 'must not have more than 6 search paths'));
  if (searches.join(' ').length > 256)
    causes.push(invalid(field.child('searches'), 'must not have more than 256 characters (including spaces) in the search list'));
  for (const [i, search] of searches.entries()) {
    const name = search.endsWith('.') ? search.slice(0, -1) : search;
    for (const msg of dns1123SubdomainErrors(name)) causes.push(invalid(field.child('searches').index(i), msg));
  }
  for (const [i, option] of (config.options ?? []).entries()) {
    if (!option.name) causes.push(required(field.child('options').index(i), 'Option.Name must not be empty'));
  }
  return causes;
}

function validateServiceAccount(field: FieldPath, spec: VirtualMachineInstanceSpec): StatusCause[] {
  if (!spec.serviceAccountName) return [];
  const f = field.child('serviceAccountName');
  const errors = dns1123SubdomainErrors(spec.serviceAccountName);
  if (errors.length) return [invalid(f, `${f} is not a valid service account name: ${errors.join('; ')}`)];
  const causes: StatusCause[] = [];
  for (const [i, volume] of (spec.volumes ?? []).entries()) {
    const name = volume.serviceAccount?.serviceAccountName;
    if (name && name !== spec.serviceAccountName) {
      causes.push(
        invalid(
          field.child('volumes').index(i).child('serviceAccount', 'serviceAccountName'),
          `spec.serviceAccountName "${spec.serviceAccountName}" and serviceAccount volume "${name}" must reference the same service account`,
        ),
      );
    }
  }
  return causes;
}
