// containerDisk and kernel-boot artefacts for the launcher. Each image's files
// live in a holder container of the launcher pod; virt-handler finds that
// container's root through its process, checks the file (no symbolic link
// anywhere on the way, a regular file at the end), and bind-mounts exactly
// the file it opened, read-only, into the pod's container-disks volume. A pod
// that has the image as an image volume (ImageVolume) needs no mount: the file
// is checked the same way where the compute container has it.
import { closeSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { parseQuantity, quantityValue } from '../api/quantity.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceStatus, Volume } from '../api/types.ts';
import { DISK_IMAGE } from '../contract/cdi.ts';
import {
  CONTAINER_DISK_DIR,
  claimDevicePath,
  claimMountPath,
  containerDiskFileIn,
  holderContainerName,
  imageVolumeMountPath,
  KERNEL_BOOT_CONTAINER,
  KERNEL_BOOT_IMAGE_VOLUME,
  KERNEL_BOOT_MOUNT_PATH,
  POD_PATHS,
} from '../contract/launcher-pod.ts';
import type { VolumePaths } from '../contract/launcher-protocol.ts';
import { emptyDirOf, openChecked, resolveInside, UnsafePathError } from './paths.ts';
import { containerIdOf, containerPid, parentPid, PROC } from './proc.ts';

export type Runner = (argv: string[]) => Promise<string>;

/**
 * A holder container's root file system as the host mounts it (containerd
 * mounts each container's rootfs at <state>/<id>/rootfs), reached through the
 * container runtime's shim, the container's parent, which lives in the
 * host's mount namespace. Bind mounts must come from that namespace, not the
 * container's. (PID 1 would do as well where it may be inspected.)
 */
interface HostView {
  root: string;
  hostPid: number;
}

function holderRoot(pod: V1Pod, container: string): HostView {
  const id = containerIdOf(pod.status?.containerStatuses?.find((c) => c.name === container)?.containerID);
  const pid = id ? containerPid(id) : undefined;
  if (!id || !pid) throw new Error(`container ${container} of pod ${pod.metadata?.name} is not running yet`);
  const hostPid = parentPid(pid);
  const mountPoint = rootfsOnHost(hostPid, pid, id);
  if (!mountPoint)
    throw new Error(`the root file system of container ${container} (${id}) is not mounted on the host; only containerd is supported`);
  return { root: `${PROC}/${hostPid}/root${mountPoint}`, hostPid };
}

const sameFile = (a: string, b: string) => {
  const [x, y] = [statSync(a, { bigint: true, throwIfNoEntry: false }), statSync(b, { bigint: true })];
  return x !== undefined && x.dev === y.dev && x.ino === y.ino;
};

/**
 * Where the host mounts the root file system of container `id`, whose init is `pid`.
 * containerd's shim works in the bundle directory of its pod's first container, and each
 * container of the pod has its own beside it, with the root file system in it: taken when it is
 * the very directory the container has as its root. Otherwise the host's mount table says,
 * which is slow to read on a node with many containers.
 */
export function rootfsOnHost(hostPid: number, pid: number, id: string): string | undefined {
  const bundle = `${dirname(readlinkSync(`${PROC}/${hostPid}/cwd`))}/${id}/rootfs`;
  if (sameFile(`${PROC}/${hostPid}/root${bundle}`, `${PROC}/${pid}/root`)) return bundle;
  return readFileSync(`${PROC}/${hostPid}/mountinfo`, 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .find((m) => m?.endsWith(`/${id}/rootfs`));
}

/** virt-handler's own busybox, as a process in another mount namespace reaches it. */
const BUSYBOX = `/proc/${process.pid}/root/bin/busybox`;

/** Runs a command in the host's mount namespace (that of `hostPid`), with virt-handler's own busybox. */
const onHost = (run: Runner, hostPid: number, argv: string[]) => run(['nsenter', '-t', String(hostPid), '-m', '--', BUSYBOX, ...argv]);

/** The pod's image volume of that name, if the pod has the image so. */
const hasImageVolume = (pod: V1Pod, name: string) => pod.spec?.volumes?.some((v) => v.name === name && v.image) === true;

/** A file of an image volume mounted at `mountPath` in the compute container (whose root is `computeRoot`), checked; as the launcher sees it. */
function imageVolumeFile(computeRoot: string, mountPath: string, relative: string): string {
  const inImage = relative.replace(/^\/+/, '');
  resolveInside(`${computeRoot}${mountPath}`, inImage, 'file');
  return `${mountPath}/${inImage}`;
}

/** The image file a containerDisk names, or the one file under /disk. */
function containerDiskFile(root: string, path: string | undefined): string {
  if (path) return path;
  const dir = resolveInside(root, CONTAINER_DISK_DIR, 'directory');
  try {
    return `${CONTAINER_DISK_DIR}/${containerDiskFileIn(readdirSync(dir))}`;
  } catch (error) {
    throw new UnsafePathError((error as Error).message);
  }
}

async function bindReadOnly(run: Runner, host: HostView, relative: string, target: string): Promise<void> {
  const { fd } = openChecked(host.root, relative);
  try {
    if (!existsSync(target)) writeFileSync(target, '', { mode: 0o444 });
    // The fd's magic link is exactly the checked file: nothing is looked up again by name.
    // One process for both steps: under load each spawn costs more than the mount.
    await onHost(run, host.hostPid, [
      'sh',
      '-ec',
      `${BUSYBOX} mount -o bind "$1" "$2"; ${BUSYBOX} mount -o remount,bind,ro "$2"`,
      'sh',
      `/proc/${process.pid}/fd/${fd}`,
      target,
    ]);
  } finally {
    closeSync(fd);
  }
}

/** Whether a file is already mounted at `target` (a re-sync after a handler restart). */
function mounted(target: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === target);
}

/**
 * Makes every containerDisk and the kernel-boot files visible to the launcher;
 * returns their paths as the launcher sees them. `computeRoot` is the compute
 * container's root as this process reaches it.
 */
export async function prepareImageVolumes(
  vmi: VirtualMachineInstance,
  pod: V1Pod,
  run: Runner,
  computeRoot: string,
): Promise<Pick<VolumePaths, 'containerDisks' | 'kernel' | 'initrd'>> {
  const dir = emptyDirOf(pod.metadata!.uid!, 'container-disks');
  const result: Pick<VolumePaths, 'containerDisks' | 'kernel' | 'initrd'> = { containerDisks: {} };
  /** What `find` gives; a path it refuses names `what` (the container or volume) in its message. */
  const checked = async <T>(what: string, find: () => T | Promise<T>): Promise<T> => {
    try {
      return await find();
    } catch (error) {
      if (error instanceof UnsafePathError) throw new UnsafePathError(`${what}: ${error.message}`);
      throw error;
    }
  };
  const place = async (container: string, host: HostView, relative: string, name: string) => {
    const target = join(dir, name);
    if (!mounted(target)) await checked(container, () => bindReadOnly(run, host, relative, target));
    return `${POD_PATHS.containerDisks}/${name}`;
  };
  for (const [index, volume] of (vmi.spec.volumes ?? []).entries()) {
    if (!volume.containerDisk) continue;
    if (hasImageVolume(pod, volume.name)) {
      const mountPath = imageVolumeMountPath(index);
      const image = `${computeRoot}${mountPath}`;
      result.containerDisks![volume.name] = await checked(`volume ${volume.name}`, () =>
        imageVolumeFile(computeRoot, mountPath, containerDiskFile(image, volume.containerDisk!.path)),
      );
      continue;
    }
    const container = holderContainerName(volume.name);
    const host = holderRoot(pod, container);
    const file = containerDiskFile(host.root, volume.containerDisk.path);
    // Upstream's name, by the volume's place in the spec (the launcher reads the format from the file itself).
    result.containerDisks![volume.name] = await place(container, host, file, `disk_${index}.img`);
  }
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernelBoot?.kernelPath || kernelBoot?.initrdPath) {
    const holder = hasImageVolume(pod, KERNEL_BOOT_IMAGE_VOLUME) ? undefined : holderRoot(pod, KERNEL_BOOT_CONTAINER);
    const file = (path: string, name: string) =>
      holder
        ? place(KERNEL_BOOT_CONTAINER, holder, path, name)
        : checked(KERNEL_BOOT_CONTAINER, () => imageVolumeFile(computeRoot, KERNEL_BOOT_MOUNT_PATH, path));
    if (kernelBoot.kernelPath) result.kernel = await file(kernelBoot.kernelPath, 'kernel-boot-kernel');
    if (kernelBoot.initrdPath) result.initrd = await file(kernelBoot.initrdPath, 'kernel-boot-initrd');
  }
  return result;
}

type ClaimInfo = NonNullable<NonNullable<VirtualMachineInstanceStatus['volumeStatus']>[number]['persistentVolumeClaimInfo']>;
export type ClaimLayout = NonNullable<VolumePaths['claims']>[string];

const MiB = 1024 * 1024;

/**
 * The size of the disk.img made on a claim that has none (upstream's host-disk capacity): the
 * request when it is the smaller (a claim may be given more than it asked for), else the
 * capacity, aligned down to 1 MiB.
 */
export function claimImageBytes(volumeName: string, info: ClaimInfo): number {
  const bytes = (q: string | number | undefined) => (q === undefined ? undefined : quantityValue(parseQuantity(q)));
  const requested = bytes(info.requests?.storage);
  const capacity = bytes(info.capacity?.storage);
  const size = requested !== undefined && (capacity === undefined || requested < capacity) ? requested : capacity;
  if (size === undefined)
    throw new Error(`volume ${volumeName}: unable to size its disk image: its PVC provides no storage capacity or requests`);
  const aligned = Math.floor(size / MiB) * MiB;
  if (aligned === 0)
    throw new Error(`volume ${volumeName}: its PVC's storage (${size} bytes) is less than 1 MiB, too small for a disk image`);
  return aligned;
}

/**
 * Where a claim-backed volume is in the compute container, and how the launcher uses it: as the
 * VMI's volume status tells the claim's mode and size (virt-controller wrote it from the PVC).
 * A Block claim is its device; a Filesystem one holds disk.img, made at its size when absent.
 * Without the claim's info the image must be there already, as upstream leaves such a volume be.
 */
export function claimLayout(vmi: VirtualMachineInstance, volume: Volume): ClaimLayout | undefined {
  const mounted = { path: claimMountPath(volume.name), mode: 'Filesystem' as const };
  // An ephemeral volume's claim is only read, under an overlay: there is nothing to make.
  if (volume.ephemeral) return mounted;
  if (!volume.persistentVolumeClaim && !volume.dataVolume) return undefined;
  const info = vmi.status?.volumeStatus?.find((s) => s.name === volume.name)?.persistentVolumeClaimInfo;
  if (info?.volumeMode === 'Block') return { path: claimDevicePath(volume.name), mode: 'Block' };
  return info ? { ...mounted, capacityBytes: claimImageBytes(volume.name, info) } : mounted;
}

/**
 * Checks each claim as the launcher would open it: a disk.img may be missing (the launcher
 * creates it) but never a symbolic link or a special file; a device must be a block device.
 */
export function checkClaimImages(vmi: VirtualMachineInstance, computeRoot: string): void {
  for (const volume of vmi.spec.volumes ?? []) {
    const layout = claimLayout(vmi, volume);
    if (!layout) continue;
    if (layout.mode === 'Block') {
      const device = lstatSync(join(computeRoot, layout.path), { throwIfNoEntry: false });
      // Missing: the kubelet has not handed it over, and QEMU says so when it opens it.
      if (device && !device.isBlockDevice())
        throw new UnsafePathError(
          `volume ${volume.name}: ${layout.path} is ${device.isSymbolicLink() ? 'a symbolic link' : 'not a block device'}`,
        );
      continue;
    }
    const dir = layout.path.slice(1);
    const image = join(computeRoot, dir, DISK_IMAGE);
    try {
      lstatSync(image);
    } catch {
      continue; // not there yet: the launcher creates it
    }
    try {
      resolveInside(computeRoot, `${dir}/${DISK_IMAGE}`, 'file');
    } catch (error) {
      throw new UnsafePathError(`volume ${volume.name}: ${(error as Error).message}`);
    }
  }
}

/**
 * Detaches every image mount of a launcher pod (lazily: QEMU may still hold
 * the file). Unmounting here reaches the host: virt-handler's view of the
 * pods directory is a shared mount.
 */
export async function releaseImageVolumes(podUid: string, run: Runner): Promise<void> {
  const dir = emptyDirOf(podUid, 'container-disks');
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) if (mounted(join(dir, name))) await run(['umount', '-l', join(dir, name)]).catch(() => undefined);
}
