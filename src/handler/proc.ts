// Finding a container's processes from the host (virt-handler runs in the
// host PID namespace): the container ID from the pod's status appears in
// the cgroup path of every process of that container.
import { readdirSync, readFileSync } from 'node:fs';

export const PROC = process.env.HOST_PROC ?? '/proc';

/** `containerd://<id>` (or any runtime) → `<id>`. */
export const containerIdOf = (statusId: string | undefined) => statusId?.replace(/^[a-z]+:\/\//, '');

/** The container IDs (64 hex digits, the last part of a cgroup path) a process's cgroups name. */
const CONTAINER_ID = /[0-9a-f]{64}/g;

/** Init processes found by the last scan of /proc, by container ID. */
const initPids = new Map<string, number>();

const cgroupOf = (pid: number) => {
  try {
    return readFileSync(`${PROC}/${pid}/cgroup`, 'utf8');
  } catch {
    return ''; // gone meanwhile
  }
};

/**
 * A container's init process, if it runs: the one of its processes whose
 * parent is outside the container (the runtime's shim). Not the lowest PID:
 * PIDs wrap (pid_max is often 32768), and a child may then have a lower one.
 * One scan of /proc finds every container's init at once, and they stay
 * known while those processes live: a burst of starts would otherwise read
 * every process's cgroups several times per VMI.
 */
export function containerPid(containerId: string): number | undefined {
  const known = initPids.get(containerId);
  if (known !== undefined && cgroupOf(known).includes(containerId)) return known;
  initPids.clear();
  const members = new Map<string, number[]>();
  for (const entry of readdirSync(PROC)) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    for (const id of new Set(cgroupOf(pid).match(CONTAINER_ID))) {
      const pids = members.get(id);
      if (pids) pids.push(pid);
      else members.set(id, [pid]);
    }
  }
  for (const [id, pids] of members) {
    const init =
      pids.length === 1
        ? pids[0]
        : pids.find((pid) => {
            const parent = parentIfAlive(pid);
            return parent !== undefined && !pids.includes(parent);
          });
    if (init !== undefined) initPids.set(id, init);
  }
  return initPids.get(containerId);
}

const parentIfAlive = (pid: number) => {
  try {
    return parentPid(pid);
  } catch {
    return undefined; // gone meanwhile: not a running init
  }
};

/** A process's parent: for a container's init, the runtime's shim, which lives in the host's mount namespace. */
export const parentPid = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`${PROC}/${pid}/status`, 'utf8'))?.[1]);
