// CPU priority of guests in software emulation. A TCG guest's vCPUs are
// busy translation loops that take their pod's whole CPU weight whenever
// they can, so on a small node a few booting guests starve everything that
// asks for little CPU: launcher pods starting up, virt-handler and the
// control plane's pods. Once its QEMU runs, an emulated guest's pod cgroup is
// made idle-class (cpu.idle): guests then get the CPU nobody else wants, and
// share it among themselves by weight as before.
import { readFileSync, writeFileSync } from 'node:fs';
import { PROC } from './proc.ts';

/** The CPU controller's cgroup of a process, from /proc/<pid>/cgroup (v1 or v2). */
export function cpuCgroupOf(procCgroup: string): { path: string; v2: boolean } | undefined {
  for (const line of procCgroup.split('\n')) {
    const [hierarchy, controllers, path] = line.split(/:(.*?):/);
    if (path === undefined) continue;
    if (controllers.split(',').includes('cpu')) return { path, v2: false };
    if (hierarchy === '0' && controllers === '') return { path, v2: true };
  }
  return undefined;
}

/** Where the CPU controller's hierarchy is mounted, from a mountinfo. */
export function cpuMountOf(mountinfo: string, v2: boolean): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!after) continue;
    const [fsType, , superOptions = ''] = after.split(' ');
    const mountPoint = before.split(' ')[4];
    if (v2 ? fsType === 'cgroup2' : fsType === 'cgroup' && superOptions.split(',').includes('cpu')) return mountPoint;
  }
  return undefined;
}

/**
 * Makes the pod cgroup of container process `pid` idle-class. `hostPid` is a
 * process in the host's mount namespace (the container's shim), through
 * whose root the host's cgroup file system is reached.
 */
export function makePodCpuIdle(pid: number, hostPid: number): void {
  const cgroup = cpuCgroupOf(readFileSync(`${PROC}/${pid}/cgroup`, 'utf8'));
  if (!cgroup) throw new Error(`process ${pid} has no CPU cgroup`);
  const mount = cpuMountOf(readFileSync(`${PROC}/${hostPid}/mountinfo`, 'utf8'), cgroup.v2);
  if (!mount) throw new Error('the CPU cgroup hierarchy is not mounted on the host');
  // The process sits in its container's cgroup; the pod's is the parent.
  const pod = cgroup.path.slice(0, cgroup.path.lastIndexOf('/'));
  writeFileSync(`${PROC}/${hostPid}/root${mount}${pod}/cpu.idle`, '1');
}
