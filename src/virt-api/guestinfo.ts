// guestosinfo, userlist and filesystemlist: what the guest agent told the
// launcher, in upstream's shapes. Pure.
import type { VirtualMachineInstance } from '../api/types.ts';
import type { GuestInfo } from '../contract/launcher-protocol.ts';
import { vmiConflict as conflict, type LifecycleError } from './lifecycle.ts';

export type GuestInfoKind = 'guestosinfo' | 'userlist' | 'filesystemlist';

export function checkGuestInfo(vmi: VirtualMachineInstance): LifecycleError | undefined {
  if (vmi.status?.phase !== 'Running') return conflict(vmi.metadata.name!, 'VMI is not running');
  if (!vmi.status.conditions?.some((c) => c.type === 'AgentConnected' && c.status === 'True'))
    return conflict(vmi.metadata.name!, 'VMI does not have guest agent connected');
  return undefined;
}

const users = (info: GuestInfo) =>
  (info.users ?? []).map((u) => ({
    userName: u.user,
    ...(u.domain ? { domain: u.domain } : {}),
    ...(u['login-time'] !== undefined ? { loginTime: u['login-time'] } : {}),
  }));
const disks = (info: GuestInfo) =>
  (info.filesystems ?? []).map((f) => ({
    diskName: f.name,
    mountPoint: f.mountpoint,
    fileSystemType: f.type,
    usedBytes: f['used-bytes'] ?? 0,
    totalBytes: f['total-bytes'] ?? 0,
  }));

export function guestInfoAnswer(kind: GuestInfoKind, info: GuestInfo): object {
  switch (kind) {
    case 'userlist':
      return { kind: 'VirtualMachineInstanceGuestOSUserList', apiVersion: 'kubevirt.io/v1', metadata: {}, items: users(info) };
    case 'filesystemlist':
      return { kind: 'VirtualMachineInstanceFileSystemList', apiVersion: 'kubevirt.io/v1', metadata: {}, items: disks(info) };
    case 'guestosinfo': {
      const os = info.os ?? {};
      return {
        kind: 'VirtualMachineInstanceGuestAgentInfo',
        apiVersion: 'kubevirt.io/v1',
        ...(info.hostname ? { hostname: info.hostname } : {}),
        os: {
          name: os.name,
          kernelRelease: os['kernel-release'],
          version: os.version,
          prettyName: os['pretty-name'],
          versionId: os['version-id'],
          kernelVersion: os['kernel-version'],
          machine: os.machine,
          id: os.id,
        },
        userList: users(info),
        fsInfo: { disks: disks(info) },
      };
    }
  }
}
