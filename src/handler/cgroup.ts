// What virt-handler changes in a launcher pod's cgroups.
//
// CPU priority of guests in software emulation. A TCG guest's vCPUs are
// busy translation loops that take their pod's whole CPU weight whenever
// they can, so on a small node a few booting guests starve everything that
// asks for little CPU: launcher pods starting up, virt-handler and the
// control plane's pods. Once its QEMU runs, an emulated guest's pod cgroup is
// made idle-class (cpu.idle): guests then get the CPU nobody else wants, and
// share it among themselves by weight as before.
//
// Device access: the compute container may open the tun and KVM devices
// virt-handler creates in it.
import { readFileSync, writeFileSync } from 'node:fs';
import { PROC } from './proc.ts';

/** A controller's cgroup of a process, from /proc/<pid>/cgroup (v1, or v2's single hierarchy). */
export function cgroupOf(procCgroup: string, controller: string): { path: string; v2: boolean } | undefined {
  for (const line of procCgroup.split('\n')) {
    const [hierarchy, controllers, path] = line.split(/:(.*?):/);
    if (path === undefined) continue;
    if (controllers.split(',').includes(controller)) return { path, v2: false };
    if (hierarchy === '0' && controllers === '') return { path, v2: true };
  }
  return undefined;
}

/** Where a controller's hierarchy is mounted, from a mountinfo. */
export function controllerMountOf(mountinfo: string, controller: string, v2: boolean): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!after) continue;
    const [fsType, , superOptions = ''] = after.split(' ');
    const mountPoint = before.split(' ')[4];
    if (v2 ? fsType === 'cgroup2' : fsType === 'cgroup' && superOptions.split(',').includes(controller)) return mountPoint;
  }
  return undefined;
}

/** Where the host mounts each hierarchy, once looked up: a host's mount table is long, and read under load. */
const hostMounts = new Map<string, string>();

/**
 * The host path of container process `pid`'s cgroup for `controller`.
 * `hostPid` is a process in the host's mount namespace (the container's
 * shim), through whose root the host's cgroup file system is reached.
 */
function hostCgroupDir(pid: number, hostPid: number, controller: string): { dir: string; v2: boolean } {
  const cgroup = cgroupOf(readFileSync(`${PROC}/${pid}/cgroup`, 'utf8'), controller);
  if (!cgroup) throw new Error(`process ${pid} has no ${controller} cgroup`);
  const key = `${controller}:${cgroup.v2}`;
  let mount = hostMounts.get(key);
  if (!mount) {
    mount = controllerMountOf(readFileSync(`${PROC}/${hostPid}/mountinfo`, 'utf8'), controller, cgroup.v2);
    if (!mount) throw new Error(`the ${controller} cgroup hierarchy is not mounted on the host`);
    hostMounts.set(key, mount);
  }
  return { dir: `${PROC}/${hostPid}/root${mount}${cgroup.path}`, v2: cgroup.v2 };
}

/** Makes the pod cgroup of container process `pid` idle-class. */
export function makePodCpuIdle(pid: number, hostPid: number): void {
  const { dir } = hostCgroupDir(pid, hostPid, 'cpu');
  // The process sits in its container's cgroup; the pod's is the parent.
  writeFileSync(`${dir.slice(0, dir.lastIndexOf('/'))}/cpu.idle`, '1');
}

export interface CharDevice {
  path: string;
  major: number;
  minor: number;
}

/**
 * Lets container process `pid` open the character devices `devices`, as
 * upstream's device plugins do for /dev/net/tun and /dev/kvm.
 * Only OCI runtimes that allow no more than the spec names (crun; runc from
 * 1.2) need this. cgroup v2 has no file to write: there the runtime's
 * own device filter decides.
 */
export function allowCharDevices(pid: number, hostPid: number, devices: CharDevice[]): void {
  const { dir, v2 } = hostCgroupDir(pid, hostPid, 'devices');
  if (v2) return;
  for (const { major, minor } of devices) writeFileSync(`${dir}/devices.allow`, `c ${major}:${minor} rwm`);
}
