// Where each volume's data is for QEMU: an overlay on a read-only base, a fresh
// image, the claim itself, or an ISO made for the guest (cloud-init, file trees).
import type { VirtualMachineInstance, Volume } from '../../api/types.ts';
import { quantityValue } from '../../api/quantity.ts';
import { CLUSTER_INSTANCETYPE_ANNOTATION, INSTANCETYPE_ANNOTATION } from '../../api/constants.ts';
import { type ConversionContext, ConversionError, type PrepareStep } from './plan.ts';
import { sanitizeHostname } from '../../contract/vmi.ts';

export interface Backing {
  path: string;
  format: 'qcow2' | 'raw';
  readonly: boolean;
  /** Whether what the guest writes must outlive the VMI. */
  persistent: boolean;
  /** What to make before QEMU starts. */
  prepare?: PrepareStep;
}

/** Where the writable layer over a volume's read-only base lives: upstream's place for it, which its tests look at. */
const writableLayerPath = (ctx: ConversionContext, volume: Volume) => `${ctx.ephemeralDisks}/disk-data/${volume.name}/disk.qcow2`;

/** A qcow2 overlay, so the guest never writes its base. */
function overlay(path: string, base: string, backingFormat: 'qcow2' | 'raw'): Backing {
  return { path, format: 'qcow2', readonly: false, persistent: false, prepare: { kind: 'overlay', path, backing: base, backingFormat } };
}

/** An ISO made for this VMI alone. */
function madeIso(path: string, prepare: PrepareStep): Backing {
  // Attached writable as upstream's are: a SATA disk (the default bus) cannot be read-only.
  return { path, format: 'raw', readonly: false, persistent: false, prepare };
}

export function diskBacking(vmi: VirtualMachineInstance, volume: Volume, ctx: ConversionContext): Backing {
  const field = `spec.volumes[${(vmi.spec.volumes ?? []).indexOf(volume)}]`;
  const scratch = `${ctx.workdir}/disks/${volume.name}`;
  const claimOf = (source: string) => {
    const claim = ctx.volumes.claims?.[volume.name];
    if (!claim) throw new ConversionError(`${field}.${source}`, 'the claim is not mounted in the pod');
    return claim;
  };
  if (volume.containerDisk) {
    const base = ctx.volumes.containerDisks?.[volume.name];
    if (!base) throw new ConversionError(`${field}.containerDisk`, 'the containerDisk image was not found on the node');
    const path = writableLayerPath(ctx, volume);
    const limit = ctx.diskVerificationMemoryLimitBytes;
    const prepare: PrepareStep = {
      kind: 'containerDiskOverlay',
      volume: volume.name,
      path,
      backing: base,
      ...(limit ? { memoryLimitBytes: limit } : {}),
    };
    return { path, format: 'qcow2', readonly: false, persistent: false, prepare };
  }
  if (volume.emptyDisk) {
    const path = `${scratch}.qcow2`;
    const sizeBytes = quantityValue(volume.emptyDisk.capacity);
    const prepare: PrepareStep = { kind: 'image', path, format: 'qcow2', sizeBytes, keepExisting: false };
    return { path, format: 'qcow2', readonly: false, persistent: false, prepare };
  }
  if (volume.ephemeral) {
    const claim = claimOf('ephemeral');
    return overlay(writableLayerPath(ctx, volume), claim.mode === 'Block' ? claim.path : `${claim.path}/disk.img`, 'raw');
  }
  if (volume.persistentVolumeClaim || volume.dataVolume) {
    const claim = claimOf(volume.persistentVolumeClaim ? 'persistentVolumeClaim' : 'dataVolume');
    const readonly = volume.persistentVolumeClaim?.readOnly === true;
    if (claim.mode === 'Block') return { path: claim.path, format: 'raw', readonly, persistent: true };
    const path = `${claim.path}/disk.img`;
    const prepare: PrepareStep | undefined = claim.capacityBytes
      ? { kind: 'image', path, format: 'raw', sizeBytes: claim.capacityBytes, keepExisting: true }
      : undefined;
    return { path, format: 'raw', readonly, persistent: true, prepare };
  }
  if (volume.hostDisk) {
    const { path, type, capacity } = volume.hostDisk;
    let prepare: PrepareStep | undefined;
    if (type === 'DiskOrCreate') {
      if (capacity === undefined) throw new ConversionError(`${field}.hostDisk.capacity`, 'DiskOrCreate needs a capacity');
      prepare = { kind: 'image', path, format: 'raw', sizeBytes: quantityValue(capacity), keepExisting: true };
    }
    return { path, format: 'raw', readonly: false, persistent: true, prepare };
  }
  if (volume.cloudInitNoCloud || volume.cloudInitConfigDrive) {
    // Where upstream's launcher writes it, which its tests check the size of.
    const file = volume.cloudInitNoCloud ? 'noCloud.iso' : 'configdrive.iso';
    const path = `${ctx.ephemeralDisks}/cloud-init-data/${vmi.metadata.namespace}/${vmi.metadata.name}/${file}`;
    return madeIso(path, cloudInitIso(vmi, volume, path, ctx));
  }
  const tree = volume.configMap ?? volume.secret ?? volume.serviceAccount ?? volume.downwardAPI;
  if (tree) {
    const dir = ctx.volumes.fileTrees?.[volume.name];
    const source = volume.configMap ? 'configMap' : volume.secret ? 'secret' : volume.serviceAccount ? 'serviceAccount' : 'downwardAPI';
    if (!dir) throw new ConversionError(`${field}.${source}`, "the volume's files are not mounted in the pod");
    const label = ('volumeLabel' in tree && tree.volumeLabel) || 'cfgdata';
    const path = `${scratch}.iso`;
    return madeIso(path, { kind: 'iso', path, label, files: {}, fromDir: dir });
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
  const hostname = sanitizeHostname(vmi);
  const instanceId = `${name}.${vmi.metadata.namespace ?? 'default'}`;
  if (volume.cloudInitNoCloud) {
    const files: Record<string, string> = { 'meta-data': `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n` };
    if (userData !== undefined) files['user-data'] = userData;
    if (networkData !== undefined) files['network-config'] = networkData;
    return { kind: 'iso', path, label: 'cidata', files };
  }
  // Upstream's fields, in its order (tools compare the file as text): the instance type a cluster
  // one before a namespaced one, the firmware UUID, and each tagged interface the guest can find by its address.
  const annotations = vmi.metadata.annotations ?? {};
  const instanceType = annotations[CLUSTER_INSTANCETYPE_ANNOTATION] || annotations[INSTANCETYPE_ANNOTATION];
  const devices = (vmi.spec.domain.devices.interfaces ?? [])
    .filter((i) => i.tag && i.pciAddress)
    .map((i) => ({ type: 'nic', bus: 'pci', address: i.pciAddress, ...(i.macAddress ? { mac: i.macAddress } : {}), tags: [i.tag] }));
  const uuid = vmi.spec.domain.firmware?.uuid;
  const metaData = {
    ...(instanceType ? { instance_type: instanceType } : {}),
    instance_id: instanceId,
    hostname,
    ...(uuid ? { uuid } : {}),
    ...(devices.length ? { devices } : {}),
  };
  const files: Record<string, string> = { 'openstack/latest/meta_data.json': JSON.stringify(metaData) };
  if (userData !== undefined) files['openstack/latest/user_data'] = userData;
  if (networkData !== undefined) files['openstack/latest/network_data.json'] = networkData;
  return { kind: 'iso', path, label: 'config-2', files };
}
