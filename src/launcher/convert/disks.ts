// Disks: each disk's drive (its volume's backing, cache, IO and error policy) and
// the device on its bus, with the controllers the buses need and the boot order.
import type { Disk, VirtualMachineInstance } from '../../api/types.ts';
import { type Concern, ConversionError, type PrepareStep } from './plan.ts';
import { controllerOnce, esc, escOptional, opts } from './qemu-options.ts';
import { diskBacking } from './volumes.ts';
import { isQ35 } from './machine.ts';
import { vcpuCount } from './cpu.ts';

const WRITE_ERROR_POLICIES: Record<string, string> = { stop: 'stop', ignore: 'ignore', report: 'report', enospace: 'enospc' };
// QEMU has no read-side "out of space": reads report it.
const READ_ERROR_POLICIES: Record<string, string> = { ...WRITE_ERROR_POLICIES, enospace: 'report' };
const SATA_PORTS = 6;

/** The disk, lun or cdrom a disk is. */
const target = (disk: Disk): { bus?: string; readonly?: boolean } => disk.disk ?? disk.lun ?? disk.cdrom ?? {};

export const disks: Concern = (vmi, ctx, plan) => {
  const { volumes = [], domain } = vmi.spec;
  const devices = domain.devices ?? {};
  const argv: string[] = [];
  const prepare: PrepareStep[] = [];
  const controller = (device: string, id: string) => argv.push(...controllerOnce(device, id, plan.argv, argv));
  // q35 has its own AHCI controller (ide.N); pc needs one added.
  const q35 = isQ35(vmi);
  let sataPort = 0;
  const sataBus = () => {
    if (!q35) controller('ahci', 'ahci0');
    if (sataPort >= SATA_PORTS) {
      throw new ConversionError('spec.domain.devices.disks', `at most ${SATA_PORTS} sata disks and cdroms fit on the controller`);
    }
    return `${q35 ? 'ide' : 'ahci0'}.${sataPort++}`;
  };
  let scsiLun = 0;

  for (const [i, disk] of (devices.disks ?? []).entries()) {
    const field = `spec.domain.devices.disks[${i}]`;
    const volume = volumes.find((v) => v.name === disk.name);
    if (!volume) throw new ConversionError(`${field}.name`, `no volume named ${disk.name}`);
    const backing = diskBacking(vmi, volume, ctx);
    if (backing.prepare) prepare.push(backing.prepare);
    const isCdrom = disk.cdrom !== undefined;
    const readonly = backing.readonly || (disk.cdrom ? disk.cdrom.readonly !== false : target(disk).readonly === true);
    const cache = disk.cache ?? (backing.persistent ? 'writethrough' : 'writeback');
    if (disk.io === 'native' && cache !== 'none') throw new ConversionError(`${field}.io`, 'native IO needs cache: none');
    const errorPolicy = disk.errorPolicy ?? 'stop';
    const drive = `drive-${disk.name}`;
    argv.push(
      '-drive',
      opts(`file=${esc(backing.path)}`, {
        if: 'none',
        id: drive,
        format: backing.format,
        cache,
        aio: disk.io === 'native' ? 'native' : undefined,
        readonly: readonly ? 'on' : undefined,
        werror: isCdrom ? undefined : WRITE_ERROR_POLICIES[errorPolicy],
        rerror: READ_ERROR_POLICIES[errorPolicy],
        discard: backing.format === 'qcow2' ? 'unmap' : undefined,
      }),
    );
    const common = { drive, id: `ua-${disk.name}`, bootindex: disk.bootOrder, serial: escOptional(disk.serial) };
    const bus = target(disk).bus ?? 'virtio';
    switch (bus) {
      case 'virtio':
        if (isCdrom) throw new ConversionError(`${field}.cdrom.bus`, 'a cdrom cannot sit on the virtio bus');
        argv.push('-device', opts('virtio-blk-pci', { ...common, 'num-queues': devices.blockMultiQueue ? vcpuCount(vmi) : undefined }));
        break;
      case 'sata':
        argv.push('-device', opts(isCdrom ? 'ide-cd' : 'ide-hd', { ...common, bus: sataBus() }));
        break;
      case 'scsi':
        controller('virtio-scsi-pci', 'scsi0');
        argv.push(
          '-device',
          opts(isCdrom ? 'scsi-cd' : 'scsi-hd', {
            ...common,
            bus: 'scsi0.0',
            channel: 0,
            'scsi-id': 0,
            lun: scsiLun++,
          }),
        );
        break;
      case 'usb':
        controller('qemu-xhci', 'usb');
        argv.push('-device', opts('usb-storage', { ...common, removable: isCdrom ? 'on' : undefined }));
        break;
      default:
        throw new ConversionError(`${field}.${disk.lun ? 'lun' : isCdrom ? 'cdrom' : 'disk'}.bus`, `bus ${bus} is not supported`);
    }
  }
  refuseFilesystems(vmi);
  return { argv, prepare };
};

function refuseFilesystems(vmi: VirtualMachineInstance) {
  const disks = vmi.spec.domain.devices?.disks ?? [];
  for (const [i, fs] of (vmi.spec.domain.devices?.filesystems ?? []).entries()) {
    const hasVolume = (vmi.spec.volumes ?? []).some((v) => v.name === fs.name);
    if (hasVolume && !disks.some((d) => d.name === fs.name)) {
      throw new ConversionError(
        `spec.domain.devices.filesystems[${i}]`,
        'virtiofs file systems need virtiofsd, which this node does not run',
      );
    }
  }
}
