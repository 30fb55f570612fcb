// The launcher's answer to `stats`: one snapshot of the domain's figures for
// virt-handler's metrics, read from QMP (block devices, balloon, vCPU threads,
// memory size), the guest agent (filesystems, load) and /proc (QEMU's CPU time
// and resident set, each vCPU thread's CPU time, the taps' counters). Each
// source is asked with a deadline and left out when it fails; the parsers are
// pure and tested on their own.
import type { DomainStats, InterfaceCounters } from '../contract/launcher-protocol.ts';
import { QmpError } from './qmp.ts';

/** Linux's USER_HZ: /proc times are in these ticks on every architecture Kubernetes runs on. */
const TICKS_PER_SECOND = 100;

/** The state letter and user/system CPU seconds of a /proc/<pid>/stat or task stat line. */
export function parseProcStat(text: string): { state: string; userSeconds: number; systemSeconds: number } | undefined {
  // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last one.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system)) return undefined;
  return { state: fields[0], userSeconds: user / TICKS_PER_SECOND, systemSeconds: system / TICKS_PER_SECOND };
}

/** VmRSS of a /proc/<pid>/status, in bytes. */
export function parseResidentBytes(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The counters of each device in /proc/net/dev, as the host side of the device sees them. */
export function parseNetDev(text: string): Map<string, InterfaceCounters> {
  const devices = new Map<string, InterfaceCounters>();
  for (const line of text.split('\n')) {
    const match = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!match) continue;
    const n = match[2].trim().split(/\s+/).map(Number);
    if (n.length < 16 || n.some((v) => !Number.isFinite(v))) continue;
    devices.set(match[1], {
      rxBytes: n[0],
      rxPackets: n[1],
      rxErrors: n[2],
      rxDropped: n[3],
      txBytes: n[8],
      txPackets: n[9],
      txErrors: n[10],
      txDropped: n[11],
    });
  }
  return devices;
}

/**
 * A tap's counters as the guest sees its interface: what the tap transmitted the guest
 * received, and the other way round (as libvirt reports a tap-backed interface).
 */
export function guestView(iface: string, tap: InterfaceCounters): NonNullable<DomainStats['networks']>[number] {
  return {
    interface: iface,
    rxBytes: tap.txBytes,
    rxPackets: tap.txPackets,
    rxErrors: tap.txErrors,
    rxDropped: tap.txDropped,
    txBytes: tap.rxBytes,
    txPackets: tap.rxPackets,
    txErrors: tap.rxErrors,
    txDropped: tap.rxDropped,
  };
}

interface QmpBlockStats {
  device?: string;
  qdev?: string;
  stats?: Record<string, number>;
}

/** query-blockstats' answer per VMI disk: the launcher names each drive `drive-<disk name>`. */
export function blockStats(answer: readonly QmpBlockStats[]): NonNullable<DomainStats['blocks']> {
  const ns = (v: number | undefined) => (v ?? 0) / 1e9;
  return answer
    .filter((b) => b.device?.startsWith('drive-') && b.stats)
    .map((b) => {
      const s = b.stats!;
      return {
        drive: b.device!.slice('drive-'.length),
        readBytes: s.rd_bytes ?? 0,
        writeBytes: s.wr_bytes ?? 0,
        readOps: s.rd_operations ?? 0,
        writeOps: s.wr_operations ?? 0,
        flushOps: s.flush_operations ?? 0,
        readSeconds: ns(s.rd_total_time_ns),
        writeSeconds: ns(s.wr_total_time_ns),
        flushSeconds: ns(s.flush_total_time_ns),
      };
    });
}

/**
 * The balloon's figures: its actual size (query-balloon) and the guest's own statistics
 * (the balloon device's guest-stats; QEMU reports -1 for one the guest did not send), named
 * as libvirt names them: available is the guest's total, usable its available, unused its free.
 */
export function balloonMemory(
  actual: number | undefined,
  guestStats: { stats?: Record<string, number> } | undefined,
): NonNullable<DomainStats['memory']> {
  const stat = (name: string) => {
    const value = guestStats?.stats?.[name];
    return value !== undefined && value >= 0 ? value : undefined;
  };
  return {
    actualBalloonBytes: actual,
    availableBytes: stat('stat-total-memory'),
    usableBytes: stat('stat-available-memory'),
    unusedBytes: stat('stat-free-memory'),
  };
}

interface FsInfo {
  name: string;
  mountpoint: string;
  type: string;
  'used-bytes'?: number;
  'total-bytes'?: number;
}

/** The guest agent's guest-get-fsinfo, the filesystems it sizes. */
export function filesystemStats(answer: readonly FsInfo[]): NonNullable<DomainStats['filesystems']> {
  return answer
    .filter((fs) => fs['total-bytes'] !== undefined)
    .map((fs) => ({
      diskName: fs.name,
      mountPoint: fs.mountpoint,
      type: fs.type,
      capacityBytes: fs['total-bytes'] ?? 0,
      usedBytes: fs['used-bytes'] ?? 0,
    }));
}

/** Where the launcher reads each part of a snapshot from. */
export interface StatsSources {
  qmp(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** The guest agent's figures as last read (collectGuestAgentFigures), not asked again here. */
  agent: GuestAgentFigures;
  readFile(path: string): Promise<string>;
  /** QEMU's process id. */
  pid: number;
  /** Each VMI interface's tap, for those on one. */
  taps: Record<string, string>;
  /** Whether the domain runs (its vCPUs are then running, else blocked). */
  running: boolean;
}

/** Each part's deadline: a snapshot never waits longer than this on one source. */
const PART_TIMEOUT_MS = 1500;

function within<T>(promise: Promise<T>, ms = PART_TIMEOUT_MS): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

/** What the guest agent tells of the guest's filesystems and load. */
export type GuestAgentFigures = Pick<DomainStats, 'filesystems' | 'load'>;

/** One guest-agent command, with its arguments. */
export type GuestAgent = (command: string, args?: Record<string, unknown>) => Promise<unknown>;

type Load = NonNullable<DomainStats['load']>;

/** The 1, 5 and 15 minute load averages of a /proc/loadavg. */
export function parseLoadavg(text: string): Load | undefined {
  const [load1m, load5m, load15m] = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (![load1m, load5m, load15m].every(Number.isFinite)) return undefined;
  return { load1m, load5m, load15m };
}

/** Whether the agent answered that it has no such command (or has it disabled, which qemu-ga answers alike). */
const commandNotFound = (error: unknown) => error instanceof QmpError && error.errorClass === 'CommandNotFound';

/** A small guest file, read whole through the agent; the handle is closed whatever happens. */
async function readGuestFile(agent: GuestAgent, path: string): Promise<string> {
  const handle = (await agent('guest-file-open', { path, mode: 'r' })) as number;
  try {
    // One read: the files read this way (/proc/loadavg) are far smaller than the count asked.
    const chunk = (await agent('guest-file-read', { handle, count: 4096 })) as { 'buf-b64': string };
    return Buffer.from(chunk['buf-b64'], 'base64').toString('utf8');
  } finally {
    await agent('guest-file-close', { handle }).catch(() => undefined);
  }
}

/**
 * The guest's load, by whichever way its agent offers: guest-get-load (qemu-ga 10.0 and later),
 * else /proc/loadavg read through the agent's file commands. The way that works is kept, so an
 * agent is not asked again for a command it has answered it lacks.
 */
export class GuestLoad {
  private way: 'guest-get-load' | 'proc-loadavg' | 'none' = 'guest-get-load';

  async read(agent: GuestAgent): Promise<Load | undefined> {
    if (this.way === 'guest-get-load') {
      try {
        const load = await agent('guest-get-load');
        return load && typeof load === 'object' ? (load as Load) : undefined;
      } catch (error) {
        if (!commandNotFound(error)) throw error;
        this.way = 'proc-loadavg';
      }
    }
    if (this.way === 'proc-loadavg') {
      try {
        return parseLoadavg(await readGuestFile(agent, '/proc/loadavg'));
      } catch (error) {
        if (commandNotFound(error)) this.way = 'none';
        throw error;
      }
    }
    return undefined;
  }
}

/** The guest agent's figures, each within its deadline; those it does not give are absent. */
export async function collectGuestAgentFigures(agent: GuestAgent, load: GuestLoad): Promise<GuestAgentFigures> {
  const [fsinfo, loadavg] = await Promise.all([within(agent('guest-get-fsinfo') as Promise<FsInfo[]>), within(load.read(agent))]);
  return {
    ...(Array.isArray(fsinfo) ? { filesystems: filesystemStats(fsinfo) } : {}),
    ...(loadavg ? { load: loadavg } : {}),
  };
}

/** One snapshot: every source asked at once, each within its deadline. */
export async function collectDomainStats(src: StatsSources): Promise<DomainStats> {
  const proc = `/proc/${src.pid}`;
  const [procStat, procStatus, netDev, blocks, balloon, guestStats, memorySize, cpus] = await Promise.all([
    within(src.readFile(`${proc}/stat`)),
    within(src.readFile(`${proc}/status`)),
    within(src.readFile('/proc/net/dev')),
    within(src.qmp('query-blockstats') as Promise<QmpBlockStats[]>),
    within(src.qmp('query-balloon') as Promise<{ actual?: number }>),
    within(
      src.qmp('qom-get', { path: '/machine/peripheral/balloon0', property: 'guest-stats' }) as Promise<{ stats?: Record<string, number> }>,
    ),
    within(src.qmp('query-memory-size-summary') as Promise<{ 'base-memory'?: number }>),
    within(src.qmp('query-cpus-fast') as Promise<{ 'cpu-index': number; 'thread-id': number }[]>),
  ]);
  const stats: DomainStats = { ...src.agent };
  const qemu = procStat ? parseProcStat(procStat) : undefined;
  if (qemu) stats.cpu = { userSeconds: qemu.userSeconds, systemSeconds: qemu.systemSeconds };
  if (cpus) {
    const vcpus = await Promise.all(
      cpus.map(async (cpu) => {
        const text = await within(src.readFile(`${proc}/task/${cpu['thread-id']}/stat`));
        const thread = text ? parseProcStat(text) : undefined;
        if (!thread) return undefined;
        return {
          id: cpu['cpu-index'],
          state: src.running ? ('running' as const) : ('blocked' as const),
          seconds: thread.userSeconds + thread.systemSeconds,
        };
      }),
    );
    stats.vcpus = vcpus.filter((v) => v !== undefined).sort((a, b) => a.id - b.id);
  }
  stats.memory = {
    domainBytes: memorySize?.['base-memory'],
    residentBytes: procStatus ? parseResidentBytes(procStatus) : undefined,
    ...(balloon ? balloonMemory(balloon.actual, guestStats) : {}),
  };
  if (blocks) stats.blocks = blockStats(blocks);
  if (netDev) {
    const devices = parseNetDev(netDev);
    stats.networks = Object.entries(src.taps)
      .filter(([, tap]) => devices.has(tap))
      .map(([iface, tap]) => guestView(iface, devices.get(tap)!));
  }
  return stats;
}
