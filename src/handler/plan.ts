// virt-handler's decisions for one VMI on its node, as a pure function: from
// the VMI, its launcher pod, what the launcher last reported and what the
// handler last did, to the actions to take now. The executor (virt-handler.ts)
// carries them out and records their outcome; a step whose outcome later
// steps depend on (connect, sync) ends the plan, and the executor plans again
// from what it found.
import type { V1Pod } from '@kubernetes/client-node';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import type { MigrationSettings } from '../api/cluster-config.ts';
import { quantityValue } from '../api/quantity.ts';
import { computeStatus } from '../contract/launcher-pod.ts';
import { isFinal, type DomainStatus, type GuestInfo } from '../contract/launcher-protocol.ts';
import { apiTimestamp, isFinalPhase, podCondition } from '../contract/vmi.ts';
import type { NetworkPlan } from './network.ts';
import { statusChanged, withObservedStatus } from './status.ts';
import {
  hasLocalDisks,
  migrationInFlight,
  isMigratedAwaySource,
  type MigrationOptions,
  type MigrationOutcome,
  type MigrationState,
} from '../contract/migration.ts';

/** What virt-handler did and saw of one VMI's launcher pod, kept between reconciles; only the executor changes it. */
export interface LauncherRecord {
  podUid: string;
  /** A connection to the launcher's command socket is open and watching its domain. */
  connected: boolean;
  /** When a connection to a launcher never reached first failed (ms since the epoch). */
  unreachableSince?: number;
  domain?: DomainStatus;
  guest?: GuestInfo;
  /** When the guest agent was last asked (ms since the epoch), and whether that question is still open. */
  guestAskedAt?: number;
  guestPending: boolean;
  network?: NetworkPlan;
  /** The launcher accepted a sync: it defines and starts the guest, and reports its domain as it goes. */
  synced: boolean;
  /** Why the last sync failed; after a failure, no new sync before retrySyncAt, the wait doubling up to 30 s. */
  syncError?: string;
  retrySyncAt?: number;
  syncBackoffMs?: number;
  shutdownSent: boolean;
  /** Whether the guest runs in software emulation, as its last sync said. */
  emulated?: boolean;
  cpuIdle: boolean;
  imagesReleased: boolean;
  /** The outgoing migration the launcher was asked for: when, and how it ended once it has. */
  migration?: { id: string; startedAt: string; outcome?: MigrationOutcome; cancelSent: boolean };
}

export const newLauncherRecord = (podUid: string): LauncherRecord => ({
  podUid,
  connected: false,
  synced: false,
  guestPending: false,
  shutdownSent: false,
  cpuIdle: false,
  imagesReleased: false,
});

export interface LauncherSituation {
  node: string;
  /**
   * The VMI: from the node's cache, or (`early`) read from kube-apiserver because its launcher
   * pod is Ready on this node while virt-controller's Scheduled is still on its way.
   */
  vmi?: VirtualMachineInstance;
  early: boolean;
  /** The cached VMI is one the handler has already written over; its own write's event will come. */
  stale: boolean;
  /** The VMI's newest launcher pod on this node that has not ended. */
  pod?: V1Pod;
  record?: LauncherRecord;
  /** Whether this node runs guests in software emulation; undefined until the KVM probe has run. */
  emulation?: boolean;
  /** How VMIs migrate, from the cluster's configuration. */
  migrations: MigrationSettings;
  now: number;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export type LauncherAction =
  /** Forget the launcher: close its connection and unmount its images. */
  | { type: 'release' }
  | { type: 'track'; podUid: string }
  | { type: 'releaseImages' }
  /** A launcher that does not answer while being deleted is left to end (`quiet`); otherwise the failure is retried. */
  | { type: 'connect'; quiet: boolean }
  | { type: 'shutdown'; gracePeriodSeconds: number; event: PlannedEvent }
  | { type: 'sync' }
  | { type: 'lowerCpuPriority' }
  | { type: 'askGuestInfo' }
  /** Sends the guest to the target the VMI's migration state names, through this node's end of the stream. */
  | { type: 'migrate'; state: MigrationState; options: Omit<MigrationOptions, 'uri'> }
  | { type: 'cancelMigration' }
  | { type: 'writeStatus'; vmi: VirtualMachineInstance; phase?: { from?: string; to: string }; events: PlannedEvent[] };

/** How often the guest agent is asked: rarely once it answers, more often while it has not yet. */
export const GUEST_INFO_INTERVAL_MS = { answering: 60_000, waiting: 5_000 };

/**
 * When to ask the agent again after `guest` was its last answer. Frozen filesystems thaw when the
 * launcher's unfreeze timer runs out, or from inside the guest: often, until then.
 */
export const guestInfoIntervalMs = (guest: GuestInfo | undefined) =>
  guest && guest.fsFreezeStatus !== 'frozen' ? GUEST_INFO_INTERVAL_MS.answering : GUEST_INFO_INTERVAL_MS.waiting;

export function planLauncher(s: LauncherSituation): LauncherAction[] {
  const { vmi, pod } = s;
  if (!vmi || (!s.early && vmi.status?.nodeName !== s.node) || isFinalPhase(vmi.status?.phase))
    return s.record ? [{ type: 'release' }] : [];
  if (s.stale) return [];
  // virt-controller fails a VMI whose pod is gone.
  if (!pod) return [];
  const actions: LauncherAction[] = [];
  let record = s.record;
  // A new pod: the VMI was recreated under the same name, or its first pod is gone.
  if (record && record.podUid !== pod.metadata?.uid) {
    actions.push({ type: 'release' });
    record = undefined;
  }
  if (!record) {
    record = newLauncherRecord(pod.metadata!.uid!);
    actions.push({ type: 'track', podUid: record.podUid });
  }
  const launcherExitCode = computeStatus(pod)?.state?.terminated?.exitCode;
  // Once QEMU has exited nothing opens the images again, and their mounts would make the kubelet's
  // tear-down of the pod's volumes fail and back off, holding up the pod's deletion.
  if ((launcherExitCode !== undefined || (record.domain && isFinal(record.domain))) && !record.imagesReleased)
    actions.push({ type: 'releaseImages' });
  const deleting = Boolean(vmi.metadata.deletionTimestamp || pod.metadata?.deletionTimestamp);
  if (!record.connected && launcherExitCode === undefined) {
    if (!launcherUnresponsive(s, record, deleting)) return [...actions, { type: 'connect', quiet: deleting }];
    const failed = withObservedStatus(vmi, { launcherUnresponsive: true }, apiTimestamp(new Date(s.now)));
    return [
      ...actions,
      { type: 'writeStatus', vmi: failed, phase: { from: 'Scheduled', to: 'Failed' }, events: [LAUNCHER_UNRESPONSIVE_EVENT] },
    ];
  }

  const domain = record.domain;
  if (deleting) {
    if ((domain?.state === 'Running' || domain?.state === 'Paused') && !record.shutdownSent) {
      const gracePeriodSeconds = vmi.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
      actions.push({ type: 'shutdown', gracePeriodSeconds, event: shutdownEvent(gracePeriodSeconds) });
    }
  } else if (
    record.connected &&
    !record.synced &&
    (s.early || vmi.status?.phase === 'Scheduled') &&
    (!domain || domain.state === 'NoState') &&
    s.now >= (record.retrySyncAt ?? 0)
  ) {
    return [...actions, { type: 'sync' }];
  }

  const running = domain?.state === 'Running';
  // A launcher found again after a restart was synced under the node's current mode.
  if (running && !record.cpuIdle && (record.emulated ?? s.emulation)) actions.push({ type: 'lowerCpuPriority' });
  if (record.connected && running && !record.guestPending && s.now - (record.guestAskedAt ?? 0) > guestInfoIntervalMs(record.guest))
    actions.push({ type: 'askGuestInfo' });

  const inFlight = migrationInFlight(vmi);
  const source = inFlight?.sourceNode === s.node && inFlight.sourcePod === pod.metadata?.name ? inFlight : undefined;
  if (source && record.connected && !deleting) {
    const asked = record.migration?.id === source.migrationUid;
    if (!asked && !source.abortRequested && source.targetNodeAddress && running) {
      actions.push({
        type: 'migrate',
        state: source,
        options: migrationOptions(source, s.migrations, hasLocalDisks(vmi)),
      });
    } else if (asked && source.abortRequested && !record.migration!.outcome && !record.migration!.cancelSent) {
      actions.push({ type: 'cancelMigration' });
    }
  }

  // Before virt-controller's Scheduled, the VMI is not this node's to write (and kube-apiserver would refuse).
  if (s.early) return actions;
  const now = apiTimestamp(new Date(s.now));
  // The guest left for its target: what remains here says nothing about the VMI, but how the migration went.
  const migratedAway = (record.domain?.state === 'Shutoff' && record.domain.reason === 'Migrated') || isMigratedAwaySource(vmi, pod);
  if (migratedAway) {
    const next = withMigrationProgress(vmi, record.migration, now);
    return statusChanged(vmi, next) ? [...actions, { type: 'writeStatus', vmi: next, events: [] }] : actions;
  }
  const observed = {
    domain,
    guest: record.guest,
    interfaces: record.network?.interfaces,
    syncError: record.syncError,
    launcherExitCode,
    podReady: podCondition(pod, 'Ready')?.status,
  };
  const next = withMigrationProgress(withObservedStatus(vmi, observed, now), record.migration, now);
  if (statusChanged(vmi, next)) actions.push(statusWrite(vmi, next, domain));
  return actions;
}

/** How long a launcher pod may run without its command socket answering before its VMI fails, as upstream's. */
export const LAUNCHER_INIT_TIMEOUT_MS = 3 * 60 * 1000;

const LAUNCHER_UNRESPONSIVE_EVENT: PlannedEvent = {
  type: 'Warning',
  reason: 'Stopped',
  message: `The VirtualMachineInstance failed: its virt-launcher did not answer within ${LAUNCHER_INIT_TIMEOUT_MS / 60_000} minutes of its pod running`,
};

/**
 * The launcher's pod runs, yet its command socket has not answered once since the timeout: the
 * launcher failed before serving it (and its container was kept alive, or hangs). A VMI already
 * Running had a launcher that answered; one that stops answering is retried, not failed.
 */
const launcherUnresponsive = (s: LauncherSituation, record: LauncherRecord, deleting: boolean) =>
  !deleting &&
  !s.early &&
  s.vmi?.status?.phase === 'Scheduled' &&
  record.unreachableSince !== undefined &&
  s.now - record.unreachableSince >= LAUNCHER_INIT_TIMEOUT_MS;

/** How the source launcher migrates: as virt-controller settled it in the migration state (a MigrationPolicy's say included), else as the cluster says. */
export function migrationOptions(state: MigrationState, settings: MigrationSettings, block: boolean): Omit<MigrationOptions, 'uri'> {
  const c = state.migrationConfiguration ?? {};
  return {
    id: state.migrationUid!,
    block,
    bandwidthBytesPerSecond:
      c.bandwidthPerMigration === undefined ? settings.bandwidthBytesPerSecond : quantityValue(c.bandwidthPerMigration),
    completionTimeoutPerGiB: c.completionTimeoutPerGiB ?? settings.completionTimeoutPerGiB,
    progressTimeoutSeconds: c.progressTimeout ?? settings.progressTimeoutSeconds,
    allowPostCopy: c.allowPostCopy ?? settings.allowPostCopy,
    allowAutoConverge: c.allowAutoConverge ?? settings.allowAutoConverge,
  };
}

/** The source's part of the VMI's migration state: when it started, and how it ended. */
export function withMigrationProgress(
  vmi: VirtualMachineInstance,
  migration: LauncherRecord['migration'],
  now: string,
): VirtualMachineInstance {
  const state = vmi.status?.migrationState;
  if (!migration || !state || state.migrationUid !== migration.id || state.completed) return vmi;
  const next = structuredClone(vmi);
  const written = next.status!.migrationState!;
  written.startTimestamp ??= migration.startedAt;
  written.mode ??= 'PreCopy';
  const outcome = migration.outcome;
  if (outcome) {
    written.mode = outcome.mode;
    written.completed = true;
    written.endTimestamp = now;
    if (!outcome.completed) {
      written.failed = true;
      written.failureReason = outcome.failureReason;
    }
    if (outcome.aborted) written.abortStatus = 'Succeeded';
  }
  return next;
}

/** Upstream's event for a deleted VMI's guest: asked to shut down within its grace period, or, with none, stopped at once. */
function shutdownEvent(gracePeriodSeconds: number): PlannedEvent {
  return gracePeriodSeconds > 0
    ? { type: 'Normal', reason: 'ShuttingDown', message: `Signaled Graceful Shutdown (grace period ${gracePeriodSeconds}s)` }
    : { type: 'Normal', reason: 'Deleted', message: 'VirtualMachineInstance stopping' };
}

function statusWrite(vmi: VirtualMachineInstance, next: VirtualMachineInstance, domain: DomainStatus | undefined): LauncherAction {
  const [from, to] = [vmi.status?.phase, next.status?.phase];
  if (to === undefined || to === from) return { type: 'writeStatus', vmi: next, events: [] };
  const events: PlannedEvent[] = [];
  if (to === 'Running') events.push({ type: 'Normal', reason: 'Started', message: 'VirtualMachineInstance started.' });
  if (to === 'Failed') {
    events.push({
      type: 'Warning',
      reason: 'Stopped',
      message: `The VirtualMachineInstance crashed (${domain?.state}/${domain?.reason}).`,
    });
    // Upstream's launcher reports a guest panic as an event of its own; QEMU gives a Linux guest's no details.
    if (domain?.reason === 'Panicked')
      events.push({ type: 'Warning', reason: 'GuestPanicked', message: 'GuestPanicked (details unavailable)' });
  }
  if (to === 'Succeeded') events.push({ type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' });
  // A deleted VMI's guest is gone: upstream's virt-handler tells so as it lets go of the domain.
  if (isFinalPhase(to) && vmi.metadata.deletionTimestamp) events.push({ type: 'Normal', reason: 'Deleted', message: 'Signaled Deletion' });
  return { type: 'writeStatus', vmi: next, phase: { from, to }, events };
}
