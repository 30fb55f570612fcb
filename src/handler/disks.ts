// containerDisk and kernel-boot artefacts for the launcher. Each image's files
// live in a holder container of the launcher pod; virt-handler finds that
// container's root through its process, checks the file (no symbolic link
// anywhere on the way, a regular file at the end), and bind-mounts exactly
// the file it opened, read-only, into the pod's container-disks volume.
import { closeSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../api/types.ts';
import { claimMountPath, POD_PATHS } from '../contract/launcher-pod.ts';
import type { VolumePaths } from '../contract/launcher-protocol.ts';
import { emptyDirOf, openChecked, resolveInside, UnsafePathError } from './paths.ts';
import { containerIdOf, containerPid, parentPid, PROC } from './proc.ts';

export type Runner = (argv: string[]) => Promise<string>;

const DISK_EXTENSIONS = ['.qcow2', '.img', '.raw'];

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

/** The image file a containerDisk names, or the one disk file under /disk. */
function containerDiskFile(root: string, path: string | undefined): string {
  if (path) return path;
  const dir = resolveInside(root, 'disk', 'directory');
  const files = readdirSync(dir).filter((f) => DISK_EXTENSIONS.includes(extname(f)));
  if (files.length !== 1) throw new UnsafePathError(`expected one disk image under /disk, found ${files.length}`);
  return `disk/${files[0]}`;
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
 * returns their paths as the launcher sees them.
 */
export async function prepareImageVolumes(
  vmi: VirtualMachineInstance,
  pod: V1Pod,
  run: Runner,
): Promise<Pick<VolumePaths, 'containerDisks' | 'kernel' | 'initrd'>> {
  const dir = emptyDirOf(pod.metadata!.uid!, 'container-disks');
  const result: Pick<VolumePaths, 'containerDisks' | 'kernel' | 'initrd'> = { containerDisks: {} };
  const place = async (container: string, host: HostView, relative: string, name: string) => {
    const target = join(dir, name);
    if (!mounted(target)) {
      try {
        await bindReadOnly(run, host, relative, target);
      } catch (error) {
        if (error instanceof UnsafePathError) throw new UnsafePathError(`${container}: ${error.message}`);
        throw error;
      }
    }
    return `${POD_PATHS.containerDisks}/${name}`;
  };
  for (const volume of vmi.spec.volumes ?? []) {
    if (!volume.containerDisk) continue;
    const container = `volume${volume.name}`;
    const host = holderRoot(pod, container);
    const file = containerDiskFile(host.root, volume.containerDisk.path);
    const ext = extname(file) === '.qcow2' ? '.qcow2' : '.img';
    result.containerDisks![volume.name] = await place(container, host, file, `${volume.name}${ext}`);
  }
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernelBoot?.kernelPath || kernelBoot?.initrdPath) {
    const host = holderRoot(pod, 'kernel-boot');
    if (kernelBoot.kernelPath) result.kernel = await place('kernel-boot', host, kernelBoot.kernelPath, 'kernel-boot-kernel');
    if (kernelBoot.initrdPath) result.initrd = await place('kernel-boot', host, kernelBoot.initrdPath, 'kernel-boot-initrd');
  }
  return result;
}

/**
 * Checks each claim's disk.img as the launcher would open it: it may be
 * missing (the launcher creates it) but never a symbolic link or a special file.
 */
export function checkClaimImages(vmi: VirtualMachineInstance, computeRoot: string): void {
  for (const volume of vmi.spec.volumes ?? []) {
    if (!volume.persistentVolumeClaim && !volume.ephemeral) continue;
    const dir = claimMountPath(volume.name).slice(1);
    const image = join(computeRoot, dir, 'disk.img');
    try {
      lstatSync(image);
    } catch {
      continue; // not there yet: a block volume, or the launcher creates it
    }
    try {
      resolveInside(computeRoot, `${dir}/disk.img`, 'file');
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
