// virt-handler's part of the VMI status, from what the launcher observed:
// the phase from the domain state, the Paused, LiveMigratable and
// AgentConnected conditions, interfaces, guest OS info and whether the guest's
// filesystems are frozen. Pure.
import { comparableConditions, setCondition, withoutCondition } from '../api/conditions.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceStatus } from '../api/types.ts';
import type { DomainStatus, GuestInfo } from '../contract/launcher-protocol.ts';
import { isFinalPhase, PAUSED_NOT_READY } from '../contract/vmi.ts';
import { migratability } from '../contract/migration.ts';
import { jsonEqual } from '../api/json-equal.ts';

type Condition = NonNullable<VirtualMachineInstanceStatus['conditions']>[number];
type Interfaces = NonNullable<VirtualMachineInstanceStatus['interfaces']>;

export interface Observed {
  domain?: DomainStatus;
  guest?: GuestInfo;
  /** The interfaces virt-handler wired, as planned. */
  interfaces?: Interfaces;
  /** Why the last sync failed, if it did. */
  syncError?: string;
  /** The launcher container's exit code, once it has ended (its socket is gone with it). */
  launcherExitCode?: number;
  /** The launcher's pod runs but its command socket never answered (../handler/plan.ts). */
  launcherUnresponsive?: boolean;
  /** The launcher pod's Ready condition status. */
  podReady?: string;
}

/** The phase a domain state stands for; undefined while nothing has started. */
export function phaseOf(domain: DomainStatus | undefined): string | undefined {
  if (!domain) return undefined;
  switch (domain.state) {
    case 'Running':
    case 'Paused':
    case 'Shutdown':
      return domain.reason === 'StartingUp' ? undefined : 'Running';
    case 'Shutoff':
      // A guest that powered off, or one we stopped on request, ended well; anything else did not.
      return domain.reason === 'Shutdown' || (domain.reason === 'Destroyed' && domain.gracefulShutdownRequested) ? 'Succeeded' : 'Failed';
    case 'Crashed':
      return 'Failed';
    default:
      return undefined;
  }
}

/** Sets the condition of `type` to `next`, or removes it. */
const put = (conditions: Condition[], next: Condition | undefined, type: string) =>
  next ? setCondition(conditions, next) : withoutCondition(conditions, type);

export function withObservedStatus(vmi: VirtualMachineInstance, observed: Observed, now: string): VirtualMachineInstance {
  const next = structuredClone(vmi);
  const status = (next.status ??= {});
  const phase = status.phase ?? '';
  // A launcher that ended took its domain with it: exit 0 is a clean shutdown, anything else a failure.
  const target = observed.launcherUnresponsive
    ? 'Failed'
    : observed.launcherExitCode !== undefined && !isFinalPhase(phaseOf(observed.domain))
      ? observed.launcherExitCode === 0
        ? 'Succeeded'
        : 'Failed'
      : phaseOf(observed.domain);
  if (target && phase !== target && !isFinalPhase(phase)) {
    status.phase = target;
    status.phaseTransitionTimestamps = [...(status.phaseTransitionTimestamps ?? []), { phase: target, phaseTransitionTimestamp: now }];
    if (target === 'Failed') status.reason = observed.domain?.reason === 'Panicked' ? 'GuestPanicked' : 'VirtualMachineCrashed';
  }
  let conditions = status.conditions ?? [];
  const running = status.phase === 'Running';
  // A guest stopped for the last pass of its migration is not paused by anyone.
  const paused = running && observed.domain?.state === 'Paused' && observed.domain.reason !== 'Migration';
  // Ready as virt-controller derives it (a running, unpaused guest in a ready pod), written with the phase to save a write.
  if (running && phase !== 'Running' && observed.podReady) {
    const ready = paused && observed.podReady === 'True' ? PAUSED_NOT_READY : { status: observed.podReady };
    conditions = put(conditions, { type: 'Ready', ...ready, lastTransitionTime: now }, 'Ready');
  }
  conditions = put(
    conditions,
    paused
      ? {
          type: 'Paused',
          status: 'True',
          reason: observed.domain?.reason === 'IOError' ? 'PausedIOError' : 'PausedByUser',
          message: 'VMI was paused by user',
          lastProbeTime: now,
          lastTransitionTime: now,
        }
      : undefined,
    'Paused',
  );
  const migratable = running ? migratability(next) : undefined;
  conditions = put(
    conditions,
    migratable
      ? {
          type: 'LiveMigratable',
          status: migratable.migratable ? 'True' : 'False',
          ...(migratable.reason ? { reason: migratable.reason, message: migratable.message } : {}),
          lastTransitionTime: now,
        }
      : undefined,
    'LiveMigratable',
  );
  const agent = running && observed.guest !== undefined;
  conditions = put(
    conditions,
    agent ? { type: 'AgentConnected', status: 'True', lastProbeTime: now, lastTransitionTime: now } : undefined,
    'AgentConnected',
  );
  conditions = put(
    conditions,
    observed.syncError && !running
      ? {
          type: 'Synchronized',
          status: 'False',
          reason: 'SyncFailed',
          message: observed.syncError,
          lastProbeTime: now,
          lastTransitionTime: now,
        }
      : undefined,
    'Synchronized',
  );
  status.conditions = conditions;
  if (running && observed.interfaces?.length) {
    const fromAgent = observed.guest?.hostname !== undefined;
    status.interfaces = observed.interfaces.map((i) => ({ ...i, infoSource: fromAgent ? 'domain, guest-agent' : 'domain' }));
  }
  const os = observed.guest?.os;
  if (running && os) {
    status.guestOSInfo = {
      ...(os.id ? { id: os.id } : {}),
      ...(os.name ? { name: os.name } : {}),
      ...(os['pretty-name'] ? { prettyName: os['pretty-name'] } : {}),
      ...(os.version ? { version: os.version } : {}),
      ...(os['version-id'] ? { versionId: os['version-id'] } : {}),
      ...(os['kernel-release'] ? { kernelRelease: os['kernel-release'] } : {}),
      ...(os['kernel-version'] ? { kernelVersion: os['kernel-version'] } : {}),
      ...(os.machine ? { machine: os.machine } : {}),
    };
  }
  // Kept while the agent does not answer, as upstream's handler keeps the last status it had.
  const freeze = observed.guest?.fsFreezeStatus;
  if (running && freeze === 'frozen') status.fsFreezeStatus = 'frozen';
  else if (freeze === 'thawed' || !running) delete status.fsFreezeStatus;
  if (running && vmi.spec.domain.machine?.type) status.machine = { type: vmi.spec.domain.machine.type };
  return next;
}

/** Whether writing `next` would change anything, ignoring probe and transition times. */
export function statusChanged(before: VirtualMachineInstance, after: VirtualMachineInstance): boolean {
  const strip = (v: VirtualMachineInstance) => ({ ...v.status, conditions: comparableConditions(v.status?.conditions) });
  return !jsonEqual(strip(before), strip(after));
}
