// Finding a container's processes from the host (virt-handler runs in the
// host PID namespace): the container ID from the pod's status appears in
// the cgroup path of every process of that container.
import { readdirSync, readFileSync } from 'node:fs';

export const PROC = process.env.HOST_PROC ?? '/proc';

/** `containerd://<id>` (or any runtime) → `<id>`. */
export const containerIdOf = (statusId: string | undefined) => statusId?.replace(/^[a-z]+:\/\//, '');

/** The oldest process of a container (its init), if it runs. */
export function containerPid(containerId: string): number | undefined {
  let found: number | undefined;
  for (const entry of readdirSync(PROC)) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (found !== undefined && pid > found) continue;
    let cgroup: string;
    try {
      cgroup = readFileSync(`${PROC}/${entry}/cgroup`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cgroup.includes(containerId)) found = pid;
  }
  return found;
}

/** A process's parent: for a container's init, the runtime's shim, which lives in the host's mount namespace. */
export const parentPid = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`${PROC}/${pid}/status`, 'utf8'))?.[1]);
