// The command socket between virt-handler and virt-launcher: newline-delimited
// JSON over a unix socket in the pod's shared directory. Both sides import these types.
import type { VirtualMachineInstance } from '../api/types.ts';
import type { DomainStatus } from './domain.ts';
import type { ConversionContext } from './convert.ts';
import type { DhcpLease } from './dhcp.ts';

export const LAUNCHER_SOCKET = 'launcher.sock';
/** QEMU's serial console and VNC sockets, beside the launcher's. */
export const SERIAL_SOCKET = 'virt-serial0';
export const VNC_SOCKET = 'virt-vnc';

/**
 * What virt-handler knows of the node and the pod and the launcher cannot see:
 * the accelerator, where the container disks were put, the taps it made and
 * the DHCP leases to answer on them (DNS servers and search domains are the
 * pod's own, filled in by the launcher).
 */
export type NodeContext = Omit<ConversionContext, 'now' | 'workdir'> & { dhcp?: Omit<DhcpLease, 'dns' | 'searchDomains'>[] };

export type LauncherCommand =
  | { command: 'sync'; vmi: VirtualMachineInstance; context?: NodeContext }
  | { command: 'shutdown'; gracePeriodSeconds?: number }
  | { command: 'kill' }
  | { command: 'pause' }
  | { command: 'unpause' }
  | { command: 'reset' }
  | { command: 'softReboot' }
  | { command: 'guestInfo' }
  | { command: 'ping' }
  /** Keeps the connection open and streams every DomainEvent from now on. */
  | { command: 'watch' };

export type LauncherRequest = LauncherCommand & { id: number };

export interface LauncherError {
  message: string;
  /** The VMI field a conversion error names. */
  field?: string;
}

export type LauncherResponse = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: LauncherError };

export interface DomainEvent {
  type: 'domain';
  domain: DomainStatus;
  /** Milliseconds since the epoch, from the launcher's clock. */
  at: number;
}

export interface GuestInfo {
  os?: { name?: string; 'kernel-release'?: string; 'kernel-version'?: string; machine?: string; id?: string; 'pretty-name'?: string; version?: string; 'version-id'?: string };
  hostname?: string;
  users?: { user: string; domain?: string; 'login-time'?: number }[];
  filesystems?: { name: string; mountpoint: string; type: string; 'used-bytes'?: number; 'total-bytes'?: number }[];
}
