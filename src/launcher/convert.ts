// VMI → QEMU: a pure function from a defaulted VMI and what this node offers
// to a QEMU command line plus the files to make before QEMU starts. Anything
// this host cannot do is refused with the field it comes from.
import type { Interface, VirtualMachineInstance, Volume } from '../api/types.ts';
import { quantityValue } from '../api/quantity.ts';
import { SERIAL_SOCKET, VNC_SOCKET, type NodeContext } from '../contract/launcher-protocol.ts';

export class ConversionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** What the conversion needs beyond the VMI: virt-handler's view of the node, and the launcher's own. */
export type ConversionContext = Omit<NodeContext, 'dhcp'> & {
  /** The pod's private scratch space: overlays, ISOs, NVRAM. */
  workdir: string;
  /** The clock, for guests whose RTC is offset from UTC. */
  now: Date;
};

export type PrepareStep =
  | { kind: 'overlay'; path: string; backing: string; backingFormat: 'qcow2' | 'raw' }
  | { kind: 'image'; path: string; format: 'qcow2' | 'raw'; sizeBytes: number; keepExisting: boolean }
  | { kind: 'iso'; path: string; label: string; files: Record<string, string>; fromDir?: string }
  | { kind: 'copy'; from: string; to: string; keepExisting: boolean };

export interface QemuPlan {
  binary: string;
  argv: string[];
  env: Record<string, string>;
  prepare: PrepareStep[];
  sockets: { qmp: string; serial?: string; vnc?: string; guestAgent: string };
  serialLog?: string;
}

const MODELS: Record<string, string> = {
  virtio: 'virtio-net-pci', e1000: 'e1000', e1000e: 'e1000e', rtl8139: 'rtl8139', igb: 'igb', ne2k_pci: 'ne2k_pci', pcnet: 'pcnet',
};
const WATCHDOG_ACTIONS: Record<string, string> = { reset: 'reset', poweroff: 'poweroff', shutdown: 'shutdown' };
const VIDEO: Record<string, string> = { vga: 'VGA', cirrus: 'cirrus-vga', virtio: 'virtio-vga', bochs: 'bochs-display', ramfb: 'ramfb' };
const MiB = 1024 * 1024;

/** QEMU's -opt key=value lists escape commas by doubling them. */
const esc = (value: string) => value.replaceAll(',', ',,');
const opts = (first: string, fields: Record<string, string | number | undefined>) =>
  [first, ...Object.entries(fields).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`)].join(',');

export function domainName(vmi: VirtualMachineInstance): string {
  return `${vmi.metadata.namespace ?? 'default'}_${vmi.metadata.name}`;
}

export function convertVmiToQemu(vmi: VirtualMachineInstance, ctx: ConversionContext): QemuPlan {
  const spec = vmi.spec;
  const domain = spec.domain;
  const devices = domain.devices ?? {};
  const argv: string[] = [];
  const prepare: PrepareStep[] = [];
  const env: Record<string, string> = {};
  const add = (...args: string[]) => argv.push(...args);
  const f = (path: string) => `spec.${path}`;

  if (spec.architecture && spec.architecture !== 'amd64') {
    throw new ConversionError(f('architecture'), `this node runs amd64 guests only, not ${spec.architecture}`);
  }
  const sockets = { qmp: `${ctx.socketDir}/qmp.sock`, guestAgent: `${ctx.socketDir}/qga.sock` } as QemuPlan['sockets'];
  add('-name', `guest=${esc(domainName(vmi))},debug-threads=on`);
  add('-no-user-config', '-nodefaults', '-S', '-msg', 'timestamp=on');
  add('-qmp', `unix:${sockets.qmp},server=on,wait=off`);
  add('-display', 'none');

  // Machine, firmware features and accelerator.
  const features = domain.features ?? {};
  const efi = domain.firmware?.bootloader?.efi;
  const secureBoot = efi !== undefined && efi.secureBoot !== false;
  const machineType = domain.machine?.type ?? 'q35';
  const isQ35 = machineType.includes('q35');
  if (!isQ35 && !/^pc($|-i440fx)/.test(machineType)) {
    throw new ConversionError(f('domain.machine.type'), `machine type ${machineType} is not one QEMU offers here (q35 or pc)`);
  }
  const machine: Record<string, string | undefined> = {};
  if (features.acpi?.enabled === false) machine.acpi = 'off';
  if (secureBoot || features.smm?.enabled === true) machine.smm = 'on';
  else if (features.smm?.enabled === false) machine.smm = 'off';
  if (domain.clock?.timer?.hpet?.present === false) machine.hpet = 'off';

  // Memory.
  if (domain.memory?.guest === undefined) throw new ConversionError(f('domain.memory.guest'), 'guest memory is not set');
  const guestBytes = quantityValue(domain.memory.guest);
  const guestMiB = Math.floor(guestBytes / MiB);
  if (guestMiB < 1) throw new ConversionError(f('domain.memory.guest'), 'guest memory must be at least 1Mi');
  const hugepages = domain.memory.hugepages?.pageSize;
  if (hugepages) {
    if (!ctx.hugepageSizes.includes(hugepages)) {
      throw new ConversionError(f('domain.memory.hugepages.pageSize'), `this node has no hugepages of size ${hugepages}`);
    }
    add('-object', opts('memory-backend-file', { id: 'pc.ram', size: `${guestMiB}M`, 'mem-path': `/dev/hugepages${hugepages === '2Mi' ? '' : `-${hugepages}`}`, share: 'on', prealloc: 'on' }));
    machine['memory-backend'] = 'pc.ram';
  }
  add('-machine', opts(machineType, machine));
  // A 32 MiB translation cache keeps TCG's memory overhead down without slowing boot.
  add('-accel', ctx.kvm ? 'kvm' : 'tcg,tb-size=32');
  add('-m', `size=${guestMiB}M`);

  // CPU.
  const cpu = domain.cpu ?? {};
  if (cpu.realtime) throw new ConversionError(f('domain.cpu.realtime'), 'realtime vCPUs need dedicated host CPUs, which this node does not offer');
  if (cpu.numa?.guestMappingPassthrough) throw new ConversionError(f('domain.cpu.numa.guestMappingPassthrough'), 'NUMA passthrough needs dedicated host CPUs, which this node does not offer');
  if (cpu.isolateEmulatorThread) throw new ConversionError(f('domain.cpu.isolateEmulatorThread'), 'an isolated emulator thread needs dedicated host CPUs, which this node does not offer');
  const topology = { sockets: cpu.sockets || 1, cores: cpu.cores || 1, threads: cpu.threads || 1 };
  const vcpus = topology.sockets * topology.cores * topology.threads;
  const maxSockets = Math.max(cpu.maxSockets || topology.sockets, topology.sockets);
  // QEMU's sockets count is the most the guest can ever have; the first vcpus are present at boot.
  add('-smp', opts(String(vcpus), { sockets: maxSockets, cores: topology.cores, threads: topology.threads, maxcpus: maxSockets * topology.cores * topology.threads }));
  const model = cpu.model ?? 'host-model';
  let cpuArg: string;
  if (model === 'host-model' || model === 'host-passthrough') cpuArg = ctx.kvm ? 'host' : 'qemu64';
  else cpuArg = model;
  for (const [i, feature] of (cpu.features ?? []).entries()) {
    const off = feature.policy === 'disable' || feature.policy === 'forbid';
    if (!/^[a-z0-9_.-]+$/i.test(feature.name)) throw new ConversionError(f(`domain.cpu.features[${i}].name`), `${feature.name} is not a CPU feature name`);
    cpuArg += `,${off ? '-' : '+'}${feature.name}`;
  }
  if (features.hyperv) {
    if (!ctx.kvm) throw new ConversionError(f('domain.features.hyperv'), 'Hyper-V enlightenments need KVM, and this node runs guests in software emulation');
    const hv = features.hyperv;
    const flags: [boolean | undefined, string][] = [
      [hv.relaxed?.enabled, 'hv-relaxed'], [hv.vapic?.enabled, 'hv-vapic'], [hv.vpindex?.enabled, 'hv-vpindex'],
      [hv.runtime?.enabled, 'hv-runtime'], [hv.synic?.enabled, 'hv-synic'], [hv.synictimer?.enabled, 'hv-stimer'],
      [hv.reset?.enabled, 'hv-reset'], [hv.frequencies?.enabled, 'hv-frequencies'], [hv.reenlightenment?.enabled, 'hv-reenlightenment'],
      [hv.tlbflush?.enabled, 'hv-tlbflush'], [hv.ipi?.enabled, 'hv-ipi'], [hv.evmcs?.enabled, 'hv-evmcs'],
      [domain.clock?.timer?.hyperv?.present, 'hv-time'],
    ];
    for (const [on, flag] of flags) if (on) cpuArg += `,${flag}=on`;
    if (hv.spinlocks?.enabled) cpuArg += `,hv-spinlocks=0x${(hv.spinlocks.spinlocks ?? 4096).toString(16)}`;
    if (hv.vendorid?.enabled && hv.vendorid.vendorid) cpuArg += `,hv-vendor-id=${esc(hv.vendorid.vendorid)}`;
  }
  if (ctx.kvm) {
    if (features.kvm?.hidden) cpuArg += ',kvm=off';
    if (features.pvspinlock?.enabled === false) cpuArg += ',kvm-pv-unhalt=off';
    if (domain.clock?.timer?.kvm?.present === false) cpuArg += ',kvmclock=off';
  }
  add('-cpu', cpuArg);

  // Firmware, SMBIOS and kernel boot.
  const uuid = domain.firmware?.uuid;
  if (uuid) add('-uuid', uuid);
  const chassis = domain.chassis;
  add('-smbios', opts('type=1', {
    manufacturer: esc(ctx.smbios.manufacturer), product: esc(ctx.smbios.product), family: esc(ctx.smbios.family),
    version: ctx.smbios.version && esc(ctx.smbios.version), sku: ctx.smbios.sku && esc(ctx.smbios.sku),
    serial: domain.firmware?.serial && esc(domain.firmware.serial), uuid,
  }));
  if (chassis) {
    add('-smbios', opts('type=3', {
      manufacturer: chassis.manufacturer && esc(chassis.manufacturer), version: chassis.version && esc(chassis.version),
      serial: chassis.serial && esc(chassis.serial), asset: chassis.asset && esc(chassis.asset), sku: chassis.sku && esc(chassis.sku),
    }));
  }
  if (efi) {
    const vars = `${ctx.workdir}/nvram/${domainName(vmi)}_VARS.fd`;
    prepare.push({ kind: 'copy', from: secureBoot ? ctx.firmware.ovmfSecureVars : ctx.firmware.ovmfVars, to: vars, keepExisting: efi.persistent === true });
    add('-drive', opts('if=pflash', { format: 'raw', unit: 0, readonly: 'on', file: esc(secureBoot ? ctx.firmware.ovmfSecureCode : ctx.firmware.ovmfCode) }));
    add('-drive', opts('if=pflash', { format: 'raw', unit: 1, file: esc(vars) }));
    if (secureBoot) add('-global', 'driver=cfi.pflash01,property=secure,value=on');
  } else if (domain.firmware?.bootloader?.bios?.useSerial) {
    add('-fw_cfg', 'name=etc/sercon-port,string=0x3f8');
  }
  const kernelBoot = domain.firmware?.kernelBoot;
  if (kernelBoot?.container) {
    if (kernelBoot.container.kernelPath) {
      if (!ctx.volumes.kernel) throw new ConversionError(f('domain.firmware.kernelBoot.container.kernelPath'), 'the kernel was not extracted from the kernel boot image');
      add('-kernel', ctx.volumes.kernel);
      if (kernelBoot.kernelArgs) add('-append', kernelBoot.kernelArgs);
    }
    if (kernelBoot.container.initrdPath) {
      if (!ctx.volumes.initrd) throw new ConversionError(f('domain.firmware.kernelBoot.container.initrdPath'), 'the initrd was not extracted from the kernel boot image');
      add('-initrd', ctx.volumes.initrd);
    }
  }

  // Clock.
  const clock = domain.clock;
  const rtc: Record<string, string> = { base: 'utc' };
  if (clock?.timezone) {
    rtc.base = 'localtime';
    env.TZ = clock.timezone;
  } else if (clock?.utc?.offsetSeconds) {
    rtc.base = new Date(ctx.now.getTime() + clock.utc.offsetSeconds * 1000).toISOString().slice(0, 19);
  }
  const rtcTimer = clock?.timer?.rtc;
  if (rtcTimer?.tickPolicy === 'catchup') rtc.driftfix = 'slew';
  if (rtcTimer?.track === 'guest') rtc.clock = 'vm';
  add('-rtc', opts(`base=${rtc.base}`, { clock: rtc.clock, driftfix: rtc.driftfix }));
  if (ctx.kvm && clock?.timer?.pit?.tickPolicy) {
    const policy = { delay: 'delay', catchup: 'slew', discard: 'discard' }[clock.timer.pit.tickPolicy];
    if (policy) add('-global', `kvm-pit.lost_tick_policy=${policy}`);
  }

  // Controllers shared by devices below, added once when first needed.
  const added = new Set<string>();
  const controller = (id: string, device: string) => {
    if (!added.has(id)) {
      added.add(id);
      add('-device', opts(device, { id }));
    }
  };
  const usb = () => controller('usb', 'qemu-xhci');
  let sataPort = 0;
  const sataBus = () => {
    if (!isQ35) controller('ahci0', 'ahci');
    if (sataPort >= 6) throw new ConversionError(f('domain.devices.disks'), 'at most 6 sata disks and cdroms fit on the controller');
    return `${isQ35 ? 'ide' : 'ahci0'}.${sataPort++}`;
  };
  let scsiLun = 0;

  // Disks.
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v] as const));
  for (const [i, disk] of (devices.disks ?? []).entries()) {
    const volume = volumes.get(disk.name);
    const field = `domain.devices.disks[${i}]`;
    if (!volume) throw new ConversionError(f(`${field}.name`), `no volume named ${disk.name}`);
    const backing = diskBacking(volume, ctx, prepare, spec.volumes!.indexOf(volume), vmi);
    const target = disk.disk ?? disk.lun ?? disk.cdrom ?? {};
    const isCdrom = disk.cdrom !== undefined;
    const readonly = backing.readonly || (disk.cdrom ? disk.cdrom.readonly !== false : (target as { readonly?: boolean }).readonly === true);
    const cache = disk.cache ?? (backing.persistent ? 'writethrough' : 'writeback');
    if (disk.io === 'native' && cache !== 'none') {
      throw new ConversionError(f(`${field}.io`), 'native IO needs cache: none');
    }
    const errorPolicy = disk.errorPolicy ?? 'stop';
    const drive = `drive-${disk.name}`;
    add('-drive', opts(`file=${esc(backing.path)}`, {
      if: 'none', id: drive, format: backing.format, cache, aio: disk.io === 'native' ? 'native' : undefined,
      readonly: readonly ? 'on' : undefined,
      werror: isCdrom ? undefined : ({ stop: 'stop', ignore: 'ignore', report: 'report', enospace: 'enospc' } as Record<string, string>)[errorPolicy],
      rerror: ({ stop: 'stop', ignore: 'ignore', report: 'report', enospace: 'report' } as Record<string, string>)[errorPolicy],
      discard: backing.format === 'qcow2' ? 'unmap' : undefined,
    }));
    const common = { drive, id: `ua-${disk.name}`, bootindex: disk.bootOrder, serial: disk.serial && esc(disk.serial) };
    const bus = (target as { bus?: string }).bus ?? 'virtio';
    switch (bus) {
      case 'virtio':
        if (isCdrom) throw new ConversionError(f(`${field}.cdrom.bus`), 'a cdrom cannot sit on the virtio bus');
        add('-device', opts('virtio-blk-pci', { ...common, 'num-queues': devices.blockMultiQueue ? vcpus : undefined }));
        break;
      case 'sata':
        add('-device', opts(isCdrom ? 'ide-cd' : 'ide-hd', { ...common, bus: sataBus() }));
        break;
      case 'scsi':
        controller('scsi0', 'virtio-scsi-pci');
        add('-device', opts(isCdrom ? 'scsi-cd' : 'scsi-hd', { ...common, bus: 'scsi0.0', channel: 0, 'scsi-id': 0, lun: scsiLun++ }));
        break;
      case 'usb':
        usb();
        add('-device', opts('usb-storage', { ...common, removable: isCdrom ? 'on' : undefined }));
        break;
      default:
        throw new ConversionError(f(`${field}.${disk.lun ? 'lun' : isCdrom ? 'cdrom' : 'disk'}.bus`), `bus ${bus} is not supported`);
    }
  }
  for (const [name] of volumes) {
    if (!(devices.disks ?? []).some((d) => d.name === name) && (devices.filesystems ?? []).some((fs) => fs.name === name)) {
      const i = (devices.filesystems ?? []).findIndex((fs) => fs.name === name);
      throw new ConversionError(f(`domain.devices.filesystems[${i}]`), 'virtiofs file systems need virtiofsd, which this node does not run');
    }
  }

  // Network interfaces.
  for (const [i, iface] of (devices.interfaces ?? []).entries()) {
    add(...interfaceArgs(iface, i, ctx, f));
  }

  // Serial console, graphics, inputs.
  if (devices.autoattachSerialConsole !== false) {
    sockets.serial = `${ctx.socketDir}/${SERIAL_SOCKET}`;
    const log = devices.logSerialConsole !== false ? `${ctx.socketDir}/${SERIAL_SOCKET}-log` : undefined;
    add('-chardev', opts('socket', { id: 'charserial0', path: esc(sockets.serial), server: 'on', wait: 'off', logfile: log && esc(log), logappend: log ? 'on' : undefined }));
    add('-serial', 'chardev:charserial0');
  }
  return finish();

  function finish(): QemuPlan {
    if (devices.autoattachGraphicsDevice !== false) {
      sockets.vnc = `${ctx.socketDir}/${VNC_SOCKET}`;
      const video = devices.video?.type ? VIDEO[devices.video.type] : efi ? 'bochs-display' : 'VGA';
      if (!video) throw new ConversionError(f('domain.devices.video.type'), `video type ${devices.video?.type} is not supported`);
      add('-device', opts(video, { id: 'video0' }));
      add('-vnc', `unix:${sockets.vnc}`);
    }
    for (const [i, input] of (devices.inputs ?? []).entries()) {
      if (input.type !== 'tablet') throw new ConversionError(f(`domain.devices.inputs[${i}].type`), `input type ${input.type} is not supported`);
      if (input.bus === 'virtio') add('-device', opts('virtio-tablet-pci', { id: `input-${input.name}` }));
      else {
        usb();
        add('-device', opts('usb-tablet', { id: `input-${input.name}` }));
      }
    }

    // Other devices.
    if (devices.autoattachMemBalloon !== false) add('-device', opts('virtio-balloon-pci', { id: 'balloon0', 'free-page-reporting': 'on' }));
    if (devices.rng) {
      add('-object', 'rng-random,id=rng0,filename=/dev/urandom');
      add('-device', 'virtio-rng-pci,rng=rng0,id=rng');
    }
    if (devices.watchdog) {
      const action = devices.watchdog.i6300esb?.action ?? 'reset';
      if (!devices.watchdog.i6300esb) throw new ConversionError(f('domain.devices.watchdog'), 'only the i6300esb watchdog exists on amd64');
      add('-device', opts('i6300esb', { id: `watchdog-${devices.watchdog.name}` }));
      const mapped = WATCHDOG_ACTIONS[action];
      if (!mapped) throw new ConversionError(f('domain.devices.watchdog.i6300esb.action'), `watchdog action ${action} is not supported`);
      add('-action', `watchdog=${mapped}`);
    }
    for (const [i, panic] of (devices.panicDevices ?? []).entries()) {
      const model = panic.model ?? 'isa';
      if (model === 'isa') add('-device', 'pvpanic');
      else if (model === 'pvpanic') add('-device', 'pvpanic-pci');
      else throw new ConversionError(f(`domain.devices.panicDevices[${i}].model`), `panic device ${model} needs Hyper-V enlightenments`);
    }
    if (devices.sound) {
      add('-audiodev', 'none,id=audio0');
      if (devices.sound.model === 'ac97') add('-device', 'AC97,audiodev=audio0');
      else add('-device', 'ich9-intel-hda,id=sound0', '-device', 'hda-duplex,audiodev=audio0');
    }
    const unsupported: [unknown, string, string][] = [
      [devices.gpus?.length, 'domain.devices.gpus', 'GPU passthrough needs host devices, which this node does not offer'],
      [devices.hostDevices?.length, 'domain.devices.hostDevices', 'this node offers no host devices for passthrough'],
      [devices.tpm && devices.tpm.enabled !== false, 'domain.devices.tpm', 'a TPM needs swtpm, which this node does not run'],
      [devices.downwardMetrics, 'domain.devices.downwardMetrics', 'downward metrics need vhostmd, which this node does not run'],
      [devices.autoattachVSOCK, 'domain.devices.autoattachVSOCK', 'VSOCK needs /dev/vhost-vsock, which this node does not offer'],
      [domain.launchSecurity, 'domain.launchSecurity', 'this node cannot run encrypted (SEV/TDX) guests'],
      [devices.clientPassthrough, 'domain.devices.clientPassthrough', 'USB redirection is not available on this node'],
    ];
    for (const [present, field, message] of unsupported) if (present) throw new ConversionError(f(field), message);

    // The guest-agent channel is always there, so agents that appear later are found.
    add('-device', 'virtio-serial-pci,id=virtio-serial0');
    add('-chardev', opts('socket', { id: 'charchannel0', path: esc(sockets.guestAgent), server: 'on', wait: 'off' }));
    add('-device', 'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0');

    const serialLog = devices.autoattachSerialConsole !== false && devices.logSerialConsole !== false ? `${ctx.socketDir}/${SERIAL_SOCKET}-log` : undefined;
    return { binary: 'qemu-system-x86_64', argv, env, prepare, sockets, serialLog };
  }
}

interface Backing {
  path: string;
  format: 'qcow2' | 'raw';
  readonly: boolean;
  /** Whether what the guest writes must outlive the VMI. */
  persistent: boolean;
}

function diskBacking(volume: Volume, ctx: ConversionContext, prepare: PrepareStep[], index: number, vmi: VirtualMachineInstance): Backing {
  const field = `spec.volumes[${index}]`;
  const scratch = `${ctx.workdir}/disks/${volume.name}`;
  if (volume.containerDisk) {
    const base = ctx.volumes.containerDisks?.[volume.name];
    if (!base) throw new ConversionError(`${field}.containerDisk`, 'the containerDisk image was not found on the node');
    const overlay = `${scratch}.qcow2`;
    prepare.push({ kind: 'overlay', path: overlay, backing: base, backingFormat: base.endsWith('.qcow2') ? 'qcow2' : 'raw' });
    return { path: overlay, format: 'qcow2', readonly: false, persistent: false };
  }
  if (volume.emptyDisk) {
    const path = `${scratch}.qcow2`;
    prepare.push({ kind: 'image', path, format: 'qcow2', sizeBytes: quantityValue(volume.emptyDisk.capacity), keepExisting: false });
    return { path, format: 'qcow2', readonly: false, persistent: false };
  }
  if (volume.ephemeral) {
    const claim = ctx.volumes.claims?.[volume.name];
    if (!claim) throw new ConversionError(`${field}.ephemeral`, 'the claim is not mounted in the pod');
    const base = claim.mode === 'Block' ? claim.path : `${claim.path}/disk.img`;
    const overlay = `${scratch}.qcow2`;
    prepare.push({ kind: 'overlay', path: overlay, backing: base, backingFormat: 'raw' });
    return { path: overlay, format: 'qcow2', readonly: false, persistent: false };
  }
  if (volume.persistentVolumeClaim || volume.dataVolume) {
    const claim = ctx.volumes.claims?.[volume.name];
    const source = volume.persistentVolumeClaim ? 'persistentVolumeClaim' : 'dataVolume';
    if (!claim) throw new ConversionError(`${field}.${source}`, 'the claim is not mounted in the pod');
    if (claim.mode === 'Block') return { path: claim.path, format: 'raw', readonly: volume.persistentVolumeClaim?.readOnly === true, persistent: true };
    const path = `${claim.path}/disk.img`;
    if (claim.capacityBytes) prepare.push({ kind: 'image', path, format: 'raw', sizeBytes: claim.capacityBytes, keepExisting: true });
    return { path, format: 'raw', readonly: volume.persistentVolumeClaim?.readOnly === true, persistent: true };
  }
  if (volume.hostDisk) {
    const { path, type, capacity } = volume.hostDisk;
    if (type === 'DiskOrCreate') {
      if (capacity === undefined) throw new ConversionError(`${field}.hostDisk.capacity`, 'DiskOrCreate needs a capacity');
      prepare.push({ kind: 'image', path, format: 'raw', sizeBytes: quantityValue(capacity), keepExisting: true });
    }
    return { path, format: 'raw', readonly: false, persistent: true };
  }
  if (volume.cloudInitNoCloud || volume.cloudInitConfigDrive) {
    const path = `${scratch}.iso`;
    prepare.push(cloudInitIso(vmi, volume, path, ctx));
    // Made for this VMI alone, so attached writable as upstream's are: a SATA disk (the default bus) cannot be read-only.
    return { path, format: 'raw', readonly: false, persistent: false };
  }
  const tree = volume.configMap ?? volume.secret ?? volume.serviceAccount ?? volume.downwardAPI;
  if (tree) {
    const dir = ctx.volumes.fileTrees?.[volume.name];
    const source = volume.configMap ? 'configMap' : volume.secret ? 'secret' : volume.serviceAccount ? 'serviceAccount' : 'downwardAPI';
    if (!dir) throw new ConversionError(`${field}.${source}`, 'the volume\'s files are not mounted in the pod');
    const label = ('volumeLabel' in tree && tree.volumeLabel) || 'cfgdata';
    const path = `${scratch}.iso`;
    prepare.push({ kind: 'iso', path, label, files: {}, fromDir: dir });
    return { path, format: 'raw', readonly: false, persistent: false };
  }
  const kind = Object.keys(volume).find((k) => k !== 'name') ?? 'source';
  throw new ConversionError(`${field}.${kind}`, `${kind} volumes cannot be attached as disks on this node`);
}

/** The NoCloud (cidata) or ConfigDrive (config-2) ISO for a cloud-init volume. */
export function cloudInitIso(vmi: VirtualMachineInstance, volume: Volume, path: string, ctx: ConversionContext): PrepareStep {
  const source = volume.cloudInitNoCloud ?? volume.cloudInitConfigDrive!;
  const secret = ctx.volumes.cloudInitSecrets?.[volume.name] ?? {};
  const decode = (b64?: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : undefined);
  const userData = source.userData ?? decode(source.userDataBase64) ?? secret.userData;
  const networkData = source.networkData ?? decode(source.networkDataBase64) ?? secret.networkData;
  const name = vmi.metadata.name ?? '';
  const hostname = vmi.spec.hostname || name;
  const instanceId = `${name}.${vmi.metadata.namespace ?? 'default'}`;
  if (volume.cloudInitNoCloud) {
    const files: Record<string, string> = { 'meta-data': `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n` };
    if (userData !== undefined) files['user-data'] = userData;
    if (networkData !== undefined) files['network-config'] = networkData;
    return { kind: 'iso', path, label: 'cidata', files };
  }
  const files: Record<string, string> = {
    'openstack/latest/meta_data.json': JSON.stringify({ uuid: vmi.metadata.uid ?? instanceId, instance_id: instanceId, hostname, name: hostname }),
  };
  if (userData !== undefined) files['openstack/latest/user_data'] = userData;
  if (networkData !== undefined) files['openstack/latest/network_data.json'] = networkData;
  return { kind: 'iso', path, label: 'config-2', files };
}

function interfaceArgs(iface: Interface, i: number, ctx: ConversionContext, f: (p: string) => string): string[] {
  const field = `domain.devices.interfaces[${i}]`;
  if (iface.sriov || iface.binding || iface.passtBinding) {
    const kind = iface.sriov ? 'sriov' : iface.binding ? 'binding' : 'passtBinding';
    throw new ConversionError(f(`${field}.${kind}`), `the ${kind} binding is not available on this node`);
  }
  const attachment = ctx.interfaces[iface.name];
  if (!attachment) throw new ConversionError(f(`${field}.name`), `the network of interface ${iface.name} was not prepared on the node`);
  const model = MODELS[iface.model ?? 'virtio'];
  if (!model) throw new ConversionError(f(`${field}.model`), `model ${iface.model} is not supported`);
  const netdev = `net-${iface.name}`;
  let backend: string;
  if ('tap' in attachment) backend = opts('tap', { id: netdev, ifname: attachment.tap, script: 'no', downscript: 'no', vhost: ctx.kvm ? 'on' : undefined });
  else {
    const forwards = (attachment.user.hostForwards ?? []).map((fw) => `hostfwd=${fw.protocol}:127.0.0.1:${fw.hostPort}-:${fw.guestPort}`);
    backend = [opts('user', { id: netdev }), ...forwards].join(',');
  }
  const mac = iface.macAddress ?? ('tap' in attachment ? attachment.mac : undefined);
  return ['-netdev', backend, '-device', opts(model, { netdev, id: `ua-${iface.name}`, mac, bootindex: iface.bootOrder })];
}
