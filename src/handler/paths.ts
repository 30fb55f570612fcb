// Paths inside launcher pods, as virt-handler (root, on the host) sees them.
// Everything under a pod is tenant-controlled: a path is followed component
// by component and refused at the first symbolic link, so a link planted in
// an image or a volume can never point virt-handler at a host file.
import type { PodEmptyDir } from '../contract/launcher-pod.ts';
import { constants, fstatSync, lstatSync, openSync, closeSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export const KUBELET_PODS = process.env.KUBELET_PODS_DIR ?? '/var/lib/kubelet/pods';

export function emptyDirOf(podUid: string, volume: PodEmptyDir): string {
  return join(KUBELET_PODS, podUid, 'volumes', 'kubernetes.io~empty-dir', volume);
}

export class UnsafePathError extends Error {}

export type Expected = 'file' | 'socket' | 'directory' | 'any';

const kindOf = (s: Stats) =>
  s.isFile() ? 'file' : s.isSocket() ? 'socket' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symbolic link' : 'special file';

/**
 * `root/relative`, checked: no component may be a symbolic link or `..`, and
 * the last must be of the expected kind. Throws UnsafePathError with the reason.
 */
export function resolveInside(root: string, relative: string, expected: Expected): string {
  const parts = relative.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new UnsafePathError(`${relative}: ".." is not allowed`);
  let path = root;
  for (const [i, part] of parts.entries()) {
    path = join(path, part);
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch {
      throw new UnsafePathError(`/${parts.slice(0, i + 1).join('/')} does not exist`);
    }
    if (stat.isSymbolicLink()) throw new UnsafePathError(`/${parts.slice(0, i + 1).join('/')} is a symbolic link; refusing to follow it`);
    const last = i === parts.length - 1;
    if (!last && !stat.isDirectory()) throw new UnsafePathError(`/${parts.slice(0, i + 1).join('/')} is not a directory`);
    if (last && expected !== 'any' && kindOf(stat) !== expected)
      throw new UnsafePathError(`/${parts.join('/')} is a ${kindOf(stat)}, not a ${expected}`);
  }
  return path;
}

/**
 * Opens a checked file without following a link in its last component, and
 * makes sure it is still the file that was checked. The caller closes the fd.
 */
export function openChecked(root: string, relative: string): { fd: number; path: string } {
  const path = resolveInside(root, relative, 'file');
  const checked = lstatSync(path);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const opened = fstatSync(fd);
  if (opened.ino !== checked.ino || opened.dev !== checked.dev) {
    closeSync(fd);
    throw new UnsafePathError(`${relative} changed while it was being opened`);
  }
  return { fd, path };
}

/**
 * A short path to a socket in a pod directory: unix socket paths are limited
 * to 108 bytes, and the kubelet's are longer. The directory is opened without
 * following links and the socket is reached through that descriptor, so the
 * directory cannot be swapped; `use` runs while the descriptor is open.
 */
export async function viaDirectoryFd<T>(dir: string, socket: string, use: (path: string) => Promise<T>): Promise<T> {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    resolveInside(`/proc/self/fd/${fd}`, socket, 'socket');
    return await use(`/proc/self/fd/${fd}/${socket}`);
  } finally {
    closeSync(fd);
  }
}
