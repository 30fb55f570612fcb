// The source side of a live migration in QEMU: capabilities and parameters
// from the migration options, then `migrate`, watched through query-migrate
// until it ends. When to give up (no progress, over time) or switch to
// post-copy is a pure decision over what the polls saw.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MigrationOptions, MigrationOutcome } from '../contract/migration.ts';
import type { Logger } from '../lib/log.ts';

/** QMP's query-migrate answer, the parts read here. */
export interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  ram?: { remaining?: number; transferred?: number; total?: number };
  disk?: { remaining?: number; transferred?: number; total?: number };
}

export type Qmp = (command: string, args?: Record<string, unknown>) => Promise<unknown>;

/** What the watch has seen so far. */
export interface MigrationWatch {
  startedAt: number;
  /** The least data left to send so far, and when it was first that low. */
  leastRemaining: number;
  progressAt: number;
  postCopy: boolean;
  /** Memory and local disk to move, for the completion timeout. */
  totalBytes: number;
}

export type MigrationStep = { kind: 'wait' } | { kind: 'postCopy' } | { kind: 'cancel'; reason: string };

const GiB = 1024 ** 3;

/**
 * Upstream's limits: a migration that has not shrunk what is left for progressTimeout seconds is
 * stuck; one that runs past completionTimeoutPerGiB per GiB is switched to post-copy when allowed,
 * else cancelled.
 */
export function nextMigrationStep(watch: MigrationWatch, options: MigrationOptions, now: number): MigrationStep {
  if (watch.postCopy) return { kind: 'wait' };
  const stuckSeconds = (now - watch.progressAt) / 1000;
  if (options.progressTimeoutSeconds > 0 && stuckSeconds > options.progressTimeoutSeconds) {
    return { kind: 'cancel', reason: `Live migration stuck for ${Math.round(stuckSeconds)} sec` };
  }
  const limitSeconds = Math.max(1, Math.ceil(watch.totalBytes / GiB)) * options.completionTimeoutPerGiB;
  const elapsedSeconds = (now - watch.startedAt) / 1000;
  if (options.completionTimeoutPerGiB > 0 && elapsedSeconds > limitSeconds) {
    if (options.allowPostCopy) return { kind: 'postCopy' };
    return { kind: 'cancel', reason: `Live migration is not completed after ${limitSeconds} sec and has been aborted` };
  }
  return { kind: 'wait' };
}

/** Folds one poll into the watch: progress is a new low of what is left to send. */
export function observeMigration(watch: MigrationWatch, info: MigrationInfo, now: number): MigrationWatch {
  const remaining = (info.ram?.remaining ?? 0) + (info.disk?.remaining ?? 0);
  const total = (info.ram?.total ?? 0) + (info.disk?.total ?? 0);
  const next = { ...watch, totalBytes: Math.max(watch.totalBytes, total) };
  if (info.status === 'active' && remaining < watch.leastRemaining) return { ...next, leastRemaining: remaining, progressAt: now };
  return next;
}

/** QEMU's unlimited: max-bandwidth is bytes per second in an int64; libvirt uses this much for "no limit". */
const UNLIMITED_BANDWIDTH = 8 * 1024 ** 4;
const POLL_MS = 200;

/**
 * A completed migration's figures. QEMU marks the migration completed a moment before it works
 * out its total and down time, and a query in between reads both as 0: such a reading is taken
 * again, for up to a second.
 */
async function settledFigures(qmp: Qmp, info: MigrationInfo): Promise<MigrationInfo> {
  let latest = info;
  for (let i = 0; i < 50 && !latest['total-time']; i++) {
    await sleep(20);
    latest = (await qmp('query-migrate')) as MigrationInfo;
  }
  return latest;
}

/**
 * Runs one outgoing migration to its end. `cancelled` tells whether a cancel was asked for (by
 * the caller's cancelMigration), so that the outcome says aborted rather than failed. A guest
 * paused for the move at `pausedAt` is down from then on, not only for QEMU's last pass.
 */
export async function migrateOut(
  qmp: Qmp,
  options: MigrationOptions,
  log: Logger,
  cancelled: () => boolean,
  pausedAt?: number,
): Promise<MigrationOutcome> {
  const capabilities = [
    { capability: 'events', state: true },
    { capability: 'block', state: options.block },
    { capability: 'postcopy-ram', state: options.allowPostCopy },
    { capability: 'auto-converge', state: options.allowAutoConverge },
  ];
  await qmp('migrate-set-capabilities', { capabilities });
  await qmp('migrate-set-parameters', {
    'max-bandwidth': options.bandwidthBytesPerSecond > 0 ? options.bandwidthBytesPerSecond : UNLIMITED_BANDWIDTH,
    ...(options.block ? { 'block-incremental': true } : {}),
  });
  log.info('migrating the guest', { uri: options.uri, block: options.block, allowPostCopy: options.allowPostCopy });
  await qmp('migrate', { uri: options.uri });
  const startedAt = Date.now();
  let watch: MigrationWatch = {
    startedAt,
    leastRemaining: Number.POSITIVE_INFINITY,
    progressAt: startedAt,
    postCopy: false,
    totalBytes: 0,
  };
  let cancelReason: string | undefined;
  let lastLogged = 0;
  for (;;) {
    const info = (await qmp('query-migrate')) as MigrationInfo;
    const now = Date.now();
    watch = observeMigration(watch, info, now);
    const mode = watch.postCopy ? 'PostCopy' : 'PreCopy';
    switch (info.status) {
      case 'completed': {
        const downtimeMs = pausedAt === undefined ? undefined : now - pausedAt;
        const final = await settledFigures(qmp, info);
        const figures = { downtimeMs: downtimeMs ?? final.downtime, totalTimeMs: final['total-time'] };
        log.info('migration completed', { ...figures, qemuDowntimeMs: final.downtime, mode });
        return { completed: true, mode, ...figures };
      }
      case 'failed':
        return { completed: false, mode, failureReason: cancelReason ?? info['error-desc'] ?? 'the migration failed' };
      case 'cancelled':
        return cancelled() && !cancelReason
          ? { completed: false, mode, aborted: true, failureReason: 'Live migration aborted by user' }
          : { completed: false, mode, failureReason: cancelReason ?? 'the migration was cancelled' };
    }
    if (now - lastLogged > 5000) {
      lastLogged = now;
      log.info('migration in progress', {
        status: info.status,
        ramRemainingBytes: info.ram?.remaining,
        diskRemainingBytes: info.disk?.remaining,
        elapsedMs: now - startedAt,
      });
    }
    const step = nextMigrationStep(watch, options, now);
    if (step.kind === 'postCopy' && info.status === 'active') {
      log.info('switching the migration to post-copy');
      await qmp('migrate-start-postcopy');
      watch = { ...watch, postCopy: true };
    } else if (step.kind === 'cancel' && !cancelReason) {
      cancelReason = step.reason;
      log.warning('cancelling the migration', { reason: step.reason });
      await qmp('migrate_cancel');
    }
    await sleep(POLL_MS);
  }
}
