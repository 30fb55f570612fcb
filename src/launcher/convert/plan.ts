// What every concern of the VMI → QEMU conversion shares: what goes in (the VMI
// and the node), what comes out (the QEMU plan), and the part of it each concern adds.
import type { VirtualMachineInstance } from '../../api/types.ts';
import type { NodeContext } from '../../contract/launcher-protocol.ts';

export class ConversionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** What the conversion needs beyond the VMI: virt-handler's view of the node, and the launcher's own. */
export type ConversionContext = Omit<NodeContext, 'dhcp'> & {
  /** The pod's private scratch space: overlays, ISOs, NVRAM. */
  workdir: string;
  /** The pod's space for disks made for the guest, where upstream's launcher keeps its cloud-init ISOs. */
  ephemeralDisks: string;
  /** The clock, for guests whose RTC is offset from UTC. */
  now: Date;
  /**
   * A migration target: QEMU waits for the guest's state (the launcher says where, with
   * migrate-incoming) instead of booting it, and runs it on as the source left it.
   */
  incomingMigration?: boolean;
};

export type PrepareStep =
  | { kind: 'overlay'; path: string; backing: string; backingFormat: 'qcow2' | 'raw' }
  /**
   * An overlay on a containerDisk's image, whose format is read from the image (qemu-img info,
   * under upstream's disk-verification limits), not from its name, and which is checked first.
   */
  | { kind: 'containerDiskOverlay'; volume: string; path: string; backing: string; memoryLimitBytes?: number }
  | { kind: 'image'; path: string; format: 'qcow2' | 'raw'; sizeBytes: number; keepExisting: boolean }
  | { kind: 'iso'; path: string; label: string; files: Record<string, string>; fromDir?: string }
  | { kind: 'copy'; from: string; to: string; keepExisting: boolean };

export interface QemuPlan {
  binary: string;
  argv: string[];
  env: Record<string, string>;
  prepare: PrepareStep[];
  sockets: { qmp: string; serial?: string; vnc?: string; guestAgent: string };
  serialLog?: string;
}

/** What one concern adds to the plan; its argv follows the argv of the concerns before it. */
export interface PlanPart {
  argv: string[];
  prepare?: PrepareStep[];
  /** Fields of the one -machine option, for the machine concern (which comes later) to write beside its own. */
  machine?: Record<string, string>;
  env?: Record<string, string>;
  sockets?: Partial<QemuPlan['sockets']>;
  serialLog?: string;
}

/** The plan as the concerns before one left it: what that one may refer to (a memory backend, a shared controller). */
export interface PlanSoFar {
  readonly argv: readonly string[];
  readonly prepare: readonly PrepareStep[];
  readonly machine: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly sockets: Readonly<QemuPlan['sockets']>;
  readonly serialLog?: string;
}

/** One concern of the conversion: a pure function of the VMI, the node and the plan so far. */
export type Concern = (vmi: VirtualMachineInstance, ctx: ConversionContext, plan: PlanSoFar) => PlanPart;

/** The plan before any concern: no arguments yet, and the QMP and guest-agent sockets every guest has. */
export function emptyPlan(ctx: ConversionContext): PlanSoFar {
  return {
    argv: [],
    prepare: [],
    machine: {},
    env: {},
    sockets: { qmp: `${ctx.socketDir}/qmp.sock`, guestAgent: `${ctx.socketDir}/qga.sock` },
  };
}

export function addPart(plan: PlanSoFar, part: PlanPart): PlanSoFar {
  return {
    argv: [...plan.argv, ...part.argv],
    prepare: [...plan.prepare, ...(part.prepare ?? [])],
    machine: { ...plan.machine, ...part.machine },
    env: { ...plan.env, ...part.env },
    sockets: { ...plan.sockets, ...part.sockets },
    serialLog: part.serialLog ?? plan.serialLog,
  };
}

export function domainName(vmi: VirtualMachineInstance): string {
  return `${vmi.metadata.namespace ?? 'default'}_${vmi.metadata.name}`;
}

/** A refusal: whether the VMI asks for it, the field that does, and why this node cannot. */
export type Refusal = readonly [asked: unknown, field: string, message: string];

/** Refuses with the first of these the VMI asks for. */
export function refuseAny(refusals: readonly Refusal[]): void {
  for (const [asked, field, message] of refusals) if (asked) throw new ConversionError(field, message);
}
