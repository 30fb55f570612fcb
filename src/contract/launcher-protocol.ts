// The command socket between virt-handler and virt-launcher: newline-delimited
// JSON over a unix socket in the pod's shared directory, and every type that
// crosses it. Both sides import these; neither imports the other.
import type { VirtualMachineInstance } from '../api/types.ts';
import type { MigrationOptions } from './migration.ts';

export const LAUNCHER_SOCKET = 'launcher.sock';
/** QEMU's serial console and VNC sockets, beside the launcher's. */
export const SERIAL_SOCKET = 'virt-serial0';
export const VNC_SOCKET = 'virt-vnc';

export type DomainState = 'NoState' | 'Running' | 'Paused' | 'Shutdown' | 'Shutoff' | 'Crashed';

export type DomainReason =
  | 'Unknown'
  | 'Booted'
  | 'Unpaused'
  | 'Reset'
  | 'Migrated' // Running (a migration target), Shutoff (a migration source)
  | 'User'
  | 'IOError'
  | 'StartingUp'
  | 'Migration'
  | 'Watchdog' // Paused
  | 'GuestShutdown'
  | 'HostShutdown' // Shutdown (in progress)
  | 'Shutdown'
  | 'Destroyed'
  | 'Failed' // Shutoff
  | 'Panicked'; // Crashed

/** The domain state the launcher reports, named as libvirt names them, as upstream's handler expects. */
export interface DomainStatus {
  state: DomainState;
  reason: DomainReason;
  /** Set once a graceful shutdown was asked for: a kill after it means the grace period ran out. */
  gracefulShutdownRequested?: boolean;
}

/**
 * A domain status in upstream's words (libvirt's, as its launcher translates them): the state
 * ShuttingDown for Shutdown, and the reason Unknown for a running domain, which upstream never
 * refines. For the log lines upstream's tests read.
 */
export function upstreamDomainStatus(status: DomainStatus): { state: string; reason: string } {
  switch (status.state) {
    case 'Running':
      return { state: 'Running', reason: 'Unknown' };
    case 'Shutdown':
      return { state: 'ShuttingDown', reason: 'User' };
    case 'Crashed':
      return { state: 'Crashed', reason: status.reason === 'Panicked' ? 'Panicked' : 'Unknown' };
    default:
      return { state: status.state, reason: status.reason };
  }
}

/** Whether a status is final: QEMU is gone. */
export const isFinal = (status: DomainStatus) => status.state === 'Shutoff' || (status.state === 'Crashed' && status.reason === 'Failed');

/** Where each volume's data is on this node, as the handler (or standalone mode) resolved it. */
export interface VolumePaths {
  /** The read-only base image of each containerDisk volume. */
  containerDisks?: Record<string, string>;
  /** Each persistentVolumeClaim / dataVolume / ephemeral volume: its mount directory or block device. */
  claims?: Record<string, { path: string; mode: 'Filesystem' | 'Block'; capacityBytes?: number }>;
  /** Directories holding the files of configMap, secret, serviceAccount and downwardAPI volumes. */
  fileTrees?: Record<string, string>;
  /** Cloud-init data read from referenced Secrets, by volume name. */
  cloudInitSecrets?: Record<string, { userData?: string; networkData?: string }>;
  kernel?: string;
  initrd?: string;
}

/** How an interface reaches its network: a tap virt-handler made (with the MAC it leased), or QEMU's user-mode stack. */
export type NetworkAttachment =
  | { tap: string; mac?: string }
  | { user: { hostForwards?: { protocol: 'tcp' | 'udp'; hostPort: number; guestPort: number }[] } };

/** UEFI firmware files as the launcher image holds them. */
export interface Firmware {
  ovmfCode: string;
  ovmfSecureCode: string;
  ovmfVars: string;
  ovmfSecureVars: string;
}

/** A guest interface's DHCP lease as virt-handler decides it; the launcher adds the pod's DNS servers and search domains. */
export interface NodeDhcpLease {
  /** The guest NIC's MAC, lower case with colons. */
  mac: string;
  ip: string;
  prefixLength: number;
  router?: string;
  /** The address the server answers from (the bridge's). */
  serverIp: string;
  hostname?: string;
  mtu?: number;
}

/**
 * What virt-handler knows of the node and the pod and the launcher cannot see:
 * the accelerator, the node's hugepage sizes, where the container disks were
 * put, the taps it made and the DHCP leases to answer on them.
 */
export interface NodeContext {
  /** The directory shared with virt-handler: QMP, serial console, VNC and guest-agent sockets. */
  socketDir: string;
  kvm: boolean;
  /** Hugepage sizes the node offers, e.g. ['2Mi']. */
  hugepageSizes: string[];
  firmware: Firmware;
  interfaces: Record<string, NetworkAttachment>;
  volumes: VolumePaths;
  smbios: { manufacturer: string; product: string; family: string; version?: string; sku?: string };
  dhcp?: NodeDhcpLease[];
  /** The address space qemu-img may use to read a containerDisk's image (the KubeVirt CR's diskVerification); upstream's default when absent. */
  diskVerificationMemoryLimitBytes?: number;
  /** Until when (ms since the epoch) virt-handler holds its node's lease: the guest is stopped once that passes unrenewed. */
  leaseValidUntil?: number;
}

export type LauncherCommand =
  | { command: 'sync'; vmi: VirtualMachineInstance; context?: NodeContext }
  /** Starts QEMU waiting for the guest's state on the pod's MIGRATION_IN_SOCKET, instead of booting it. */
  | { command: 'prepareMigrationTarget'; vmi: VirtualMachineInstance; context: NodeContext; allowPostCopy: boolean }
  /** Sends the guest to a target; answers with the MigrationOutcome once it has ended. Asked again, it answers for the same migration. */
  | { command: 'migrate'; options: MigrationOptions }
  | { command: 'cancelMigration' }
  /** virt-handler renewed its node's lease: the guest may run until then (self-fencing, see contract/node.ts). */
  | { command: 'lease'; validUntil: number }
  | { command: 'shutdown'; gracePeriodSeconds?: number }
  | { command: 'kill' }
  | { command: 'pause' }
  | { command: 'unpause' }
  | { command: 'reset' }
  | { command: 'softReboot' }
  | { command: 'guestInfo' }
  /** Freezes the guest's filesystems through its agent; thawed again after unfreezeTimeoutSeconds when above 0. */
  | { command: 'freeze'; unfreezeTimeoutSeconds?: number }
  | { command: 'unfreeze' }
  | { command: 'ping' }
  /** A snapshot of the domain's figures for virt-handler's metrics (DomainStats). */
  | { command: 'stats' }
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
  os?: {
    name?: string;
    'kernel-release'?: string;
    'kernel-version'?: string;
    machine?: string;
    id?: string;
    'pretty-name'?: string;
    version?: string;
    'version-id'?: string;
  };
  hostname?: string;
  users?: { user: string; domain?: string; 'login-time'?: number }[];
  filesystems?: { name: string; mountpoint: string; type: string; 'used-bytes'?: number; 'total-bytes'?: number }[];
  /** The agent's guest-fsfreeze-status; the one question it still answers while the filesystems are frozen. */
  fsFreezeStatus?: 'frozen' | 'thawed';
}

/** One network device's traffic counters. */
export interface InterfaceCounters {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/**
 * One snapshot of a running domain's figures, as the launcher reads them from QEMU (QMP),
 * the guest agent and /proc. Units are seconds, bytes and counts; each part is absent
 * when it could not be read (no balloon, no agent, QEMU gone).
 */
export interface DomainStats {
  /** The QEMU process's CPU time, all its threads. */
  cpu?: { userSeconds: number; systemSeconds: number };
  /** Each vCPU thread's CPU time; state as upstream labels it. */
  vcpus?: { id: number; state: 'running' | 'blocked' | 'offline'; seconds: number }[];
  memory?: {
    /** The guest's memory as configured (the domain's memory). */
    domainBytes?: number;
    /** The QEMU process's resident set. */
    residentBytes?: number;
    /** From the balloon: the balloon's actual size, and the guest's own figures when it reports them. */
    actualBalloonBytes?: number;
    availableBytes?: number;
    usableBytes?: number;
    unusedBytes?: number;
  };
  /** Per disk (the VMI's disk name): QMP query-blockstats. */
  blocks?: {
    drive: string;
    readBytes: number;
    writeBytes: number;
    readOps: number;
    writeOps: number;
    flushOps: number;
    readSeconds: number;
    writeSeconds: number;
    flushSeconds: number;
  }[];
  /** Per interface (the VMI's interface name), as the guest sees it: what it received and sent. */
  networks?: ({ interface: string } & InterfaceCounters)[];
  /** From the guest agent. */
  filesystems?: { diskName: string; mountPoint: string; type: string; capacityBytes: number; usedBytes: number }[];
  load?: { load1m?: number; load5m?: number; load15m?: number };
}
