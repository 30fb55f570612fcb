// The migration controller's decisions, as pure functions: from a
// VirtualMachineInstanceMigration, its VMI, the launcher pods and the other
// migrations, to the target pod to create or delete and what to write on
// the VMI (its migrationState, which the two virt-handlers read and fill) and
// on the migration (its phase). Phases as upstream's: Pending, Scheduling,
// Scheduled, PreparingTarget, TargetReady, Running, Succeeded, Failed.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { MigrationSettings } from '../api/cluster-config.ts';
import {
  CREATED_BY_LABEL,
  MIGRATION_FINALIZER,
  MIGRATION_JOB_LABEL,
  MIGRATION_TARGET_NODE_LABEL,
  NODE_SCHEDULABLE_LABEL,
} from '../api/constants.ts';
import type { MigrationPolicy, VirtualMachineInstance, VirtualMachineInstanceMigration } from '../api/types.ts';

type MigrationStatus = NonNullable<VirtualMachineInstanceMigration['status']>;
import {
  effectiveMigrationConfiguration,
  hasLocalDisks,
  isPendingMigrationTarget,
  matchingPolicy,
  MIGRATION_JOB_NAME_ANNOTATION,
  type MigrationState,
  isMigratedAwaySource,
} from '../contract/migration.ts';
import { apiTimestamp, isFinalPhase, launcherPodsOf, podCondition, podIsFinal } from '../contract/vmi.ts';
import { renderLauncherPod, type ClaimLookup, type LauncherPodParams } from './launcher-pod.ts';
import { HEARTBEAT_ANNOTATION } from '../contract/node.ts';
import { EVACUATION_ANNOTATION } from './evacuation.ts';

export const ACTIVE_PHASES = ['Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running'];
/** How long a target pod may stay unschedulable before the migration gives up, as upstream's default. */
export const UNSCHEDULABLE_TIMEOUT_MS = 300_000;
/** How long a target pod may stay pending for any other reason. */
export const PENDING_TIMEOUT_MS = 900_000;

export interface MigrationInput {
  migration: VirtualMachineInstanceMigration;
  vmi?: VirtualMachineInstance;
  /** Launcher pods of the migration's namespace. */
  pods: readonly V1Pod[];
  /** Every migration in the cluster (for the parallel limits). */
  migrations: readonly VirtualMachineInstanceMigration[];
  /** VMIs of the other active migrations, by migration UID: their source nodes count against the per-node limit. */
  sourceNodeOf: (migration: VirtualMachineInstanceMigration) => string | undefined;
  nodes: readonly V1Node[];
  settings: MigrationSettings;
  policies: readonly MigrationPolicy[];
  /** The labels of the VMI's namespace, for the policies' namespace selectors. */
  namespaceLabels?: Record<string, string>;
  params: LauncherPodParams;
  claims?: ClaimLookup;
  /** The name the target pod gets when one is made now. */
  targetPodName: string;
  now: Date;
}

export interface MigrationPlan {
  /** Written before the pod is created, so nobody takes the target pod for the VMI's own. */
  vmi?: VirtualMachineInstance;
  createPod?: V1Pod;
  deletePods?: V1Pod[];
  /** The migration's next status, when it changes. */
  status?: MigrationStatus;
  /** The migration has ended: its finalizer (the webhook put it there) holds nothing any more. */
  removeFinalizer: boolean;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

export function planMigration(input: MigrationInput): MigrationPlan {
  const { migration, vmi, now } = input;
  const plan: MigrationPlan = { events: [], removeFinalizer: false };
  const phase = migration.status?.phase ?? 'Pending';
  const uid = migration.metadata.uid!;
  const state = vmi?.status?.migrationState?.migrationUid === uid ? vmi.status.migrationState : undefined;
  const targetPod = state?.targetPod ? input.pods.find((p) => p.metadata?.name === state.targetPod) : undefined;
  let next = phase;
  let failure: string | undefined;
  let nextVmi: VirtualMachineInstance | undefined;
  const vmiUpdate = () => (nextVmi ??= structuredClone(vmi!));
  const deleting = migration.metadata.deletionTimestamp !== undefined;

  if (!isFinalPhase(phase)) {
    if (!vmi) failure = `Migration failed because vmi ${migration.spec.vmiName} does not exist.`;
    else if (isFinalPhase(vmi.status?.phase) || vmi.metadata.deletionTimestamp) failure = 'Migration failed because the vmi has ended.';
    else if (state?.failed) failure = state.failureReason ?? 'the migration failed';
    else if (state?.completed && vmi.status?.nodeName === state.targetNode && state.targetNodeDomainDetected) next = 'Succeeded';
    else if (deleting && !state?.startTimestamp) failure = 'Migration aborted before it started.';
    else if (deleting && state && !state.abortRequested) {
      Object.assign(vmiUpdate().status!.migrationState!, { abortRequested: true });
      plan.events.push({ type: 'Normal', reason: 'MigrationAbortRequested', message: `Aborting the migration of ${vmi.metadata.name}` });
    } else if (phase === 'Pending') next = startOrWait(input, vmi, plan, vmiUpdate, (why) => (failure = why));
    else if (!state) failure = 'the VMI no longer records this migration';
    else {
      const trouble = targetPod ? targetPodTrouble(targetPod, migration, now) : undefined;
      if (trouble) failure = trouble;
      else if (!targetPod && phase !== 'Scheduling') failure = `target pod ${state.targetPod} is gone`;
      else if (!targetPod) plan.createPod = targetPodFor(input, vmi);
      else next = progress(phase, state, targetPod, vmi, vmiUpdate);
    }
  }

  if (failure) {
    next = 'Failed';
    plan.events.push({ type: 'Warning', reason: 'FailedMigration', message: failure });
    if (vmi && state && !state.failed) {
      const written = vmiUpdate();
      Object.assign(written.status!.migrationState!, {
        completed: true,
        failed: true,
        failureReason: failure,
        endTimestamp: apiTimestamp(now),
        ...(deleting ? { abortRequested: true, abortStatus: 'Succeeded' } : {}),
      });
    }
  }
  if (next === 'Succeeded' && phase !== 'Succeeded')
    plan.events.push({ type: 'Normal', reason: 'SuccessfulMigration', message: `Source node reported migration succeeded` });
  // A failed migration leaves no target behind, and the VMI no longer names this node as its target.
  if (next === 'Failed') {
    if (targetPod && !podIsFinal(targetPod) && !targetPod.metadata?.deletionTimestamp) plan.deletePods = [targetPod];
  }
  // Only while the VMI's migration state is this migration's: a later migration's label is that one's.
  if (isFinalPhase(next) && state && vmi?.metadata.labels?.[MIGRATION_TARGET_NODE_LABEL])
    delete vmiUpdate().metadata.labels![MIGRATION_TARGET_NODE_LABEL];
  plan.vmi = nextVmi;
  plan.status = statusOf(migration, next, phase, state && nextVmi ? nextVmi.status!.migrationState : state, now);
  plan.removeFinalizer = isFinalPhase(next) && (migration.metadata.finalizers?.includes(MIGRATION_FINALIZER) ?? false);
  return plan;
}

/** Pending: the VMI must run and be migratable, and the limits must leave room; then the target pod is made. */
function startOrWait(
  input: MigrationInput,
  vmi: VirtualMachineInstance,
  plan: MigrationPlan,
  vmiUpdate: () => VirtualMachineInstance,
  fail: (why: string) => void,
): string {
  // As upstream: a VMI not running yet (or not yet seen running: the cache of VMIs may trail that
  // of migrations) is waited for; only one that says it cannot move fails its migration.
  const migratable = vmi.status?.conditions?.find((c) => c.type === 'LiveMigratable');
  if (migratable?.status === 'False') {
    fail(`Migration failed: ${migratable.message ?? 'the VMI is not live migratable'}`);
    return 'Failed';
  }
  if (vmi.status?.phase !== 'Running' || migratable?.status !== 'True') return 'Pending';
  const { settings, migration } = input;
  const others = input.migrations.filter((m) => m.metadata.uid !== migration.metadata.uid && ACTIVE_PHASES.includes(m.status?.phase ?? ''));
  // One migration of a VMI at a time: the webhook refuses a second, and one created meanwhile waits.
  if (others.some((m) => m.spec.vmiName === vmi.metadata.name && m.metadata.namespace === vmi.metadata.namespace)) return 'Pending';
  if (others.length >= settings.parallelMigrationsPerCluster) return 'Pending';
  const sourceNode = vmi.status.nodeName;
  if (others.filter((m) => input.sourceNodeOf(m) === sourceNode).length >= settings.parallelOutboundMigrationsPerNode) return 'Pending';
  // The guest's pod: not one an earlier migration of the VMI left (it may still be running down, on
  // this very node when it moved within it), nor one an earlier migration that failed was to move to.
  const sourcePod = launcherPodsOf(vmi, input.pods).find(
    (p) =>
      p.spec?.nodeName === sourceNode &&
      !podIsFinal(p) &&
      !p.metadata?.deletionTimestamp &&
      !isMigratedAwaySource(vmi, p) &&
      !isPendingMigrationTarget(vmi, p),
  );
  const policy = matchingPolicy(input.policies, vmi, input.namespaceLabels);
  const state: MigrationState = {
    migrationUid: migration.metadata.uid,
    sourceNode,
    sourcePod: sourcePod?.metadata?.name,
    targetPod: input.targetPodName,
    migrationConfiguration: effectiveMigrationConfiguration(settings, policy),
    ...(policy ? { migrationPolicyName: policy.metadata.name } : {}),
  };
  const written = vmiUpdate();
  written.status!.migrationState = state;
  written.status!.migrationMethod = hasLocalDisks(vmi) ? 'BlockMigration' : 'LiveMigration';
  written.status!.migrationTransport = 'Unix';
  plan.createPod = targetPodFor(input, written);
  plan.events.push({ type: 'Normal', reason: 'SuccessfulCreate', message: `Created migration target pod ${input.targetPodName}` });
  return 'Scheduling';
}

/** Scheduling onwards: each phase ends when the party it waits for has written its part. */
function progress(
  phase: string,
  state: MigrationState,
  targetPod: V1Pod,
  vmi: VirtualMachineInstance,
  vmiUpdate: () => VirtualMachineInstance,
): string {
  let next = phase;
  if (next === 'Scheduling' && targetPod.spec?.nodeName) next = 'Scheduled';
  if (next === 'Scheduled' && targetPod.status?.phase === 'Running') {
    const node = targetPod.spec!.nodeName!;
    if (state.targetNode !== node || vmi.metadata.labels?.[MIGRATION_TARGET_NODE_LABEL] !== node) {
      const written = vmiUpdate();
      written.status!.migrationState!.targetNode = node;
      written.metadata.labels = { ...written.metadata.labels, [MIGRATION_TARGET_NODE_LABEL]: node };
    }
    next = 'PreparingTarget';
  }
  if (next === 'PreparingTarget' && state.targetNodeAddress) next = 'TargetReady';
  if (next === 'TargetReady' && state.startTimestamp) next = 'Running';
  return next;
}

/** Why the target pod will not do: it ended, or could not be placed for too long. */
function targetPodTrouble(pod: V1Pod, migration: VirtualMachineInstanceMigration, now: Date): string | undefined {
  if (podIsFinal(pod) || pod.metadata?.deletionTimestamp) return `target pod ${pod.metadata?.name} ended or is being deleted`;
  if (pod.status?.phase !== 'Pending') return undefined;
  const since = now.getTime() - Date.parse(pod.metadata?.creationTimestamp as unknown as string);
  const scheduled = podCondition(pod, 'PodScheduled');
  if (scheduled?.status === 'False' && since > UNSCHEDULABLE_TIMEOUT_MS)
    return `target pod ${pod.metadata?.name} of migration ${migration.metadata.name} could not be scheduled: ${scheduled.message ?? scheduled.reason}`;
  if (since > PENDING_TIMEOUT_MS) return `target pod ${pod.metadata?.name} stayed pending for ${PENDING_TIMEOUT_MS / 1000}s`;
  return undefined;
}

/**
 * The target pod: the VMI's launcher pod, named ahead, labelled with the migration, placed on
 * another node as upstream does, or on the source node when it is the only one the VMI can use
 * (or the migration's addedNodeSelector names it): kubevirt-ts moves a guest within a node too.
 */
function targetPodFor(input: MigrationInput, vmi: VirtualMachineInstance): V1Pod {
  const { migration } = input;
  const pod = renderLauncherPod(vmi, input.params, input.claims);
  const meta = pod.metadata!;
  delete meta.generateName;
  meta.name = input.targetPodName;
  meta.labels = { ...meta.labels, [MIGRATION_JOB_LABEL]: migration.metadata.uid! };
  meta.annotations = { ...meta.annotations, [MIGRATION_JOB_NAME_ANNOTATION]: migration.metadata.name! };
  const spec = pod.spec!;
  spec.nodeSelector = { ...spec.nodeSelector, ...migration.spec.addedNodeSelector };
  if (!sameNodeAllowed(input, vmi)) {
    const antiAffinity = {
      labelSelector: { matchLabels: { [CREATED_BY_LABEL]: vmi.metadata.uid! } },
      topologyKey: 'kubernetes.io/hostname',
    };
    const affinity = spec.affinity ?? {};
    const required = affinity.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    spec.affinity = {
      ...affinity,
      podAntiAffinity: { ...affinity.podAntiAffinity, requiredDuringSchedulingIgnoredDuringExecution: [...required, antiAffinity] },
    };
  }
  return pod;
}

function sameNodeAllowed(input: MigrationInput, vmi: VirtualMachineInstance): boolean {
  const source = vmi.status?.nodeName;
  // An evacuation is for leaving the node.
  if (input.migration.metadata.annotations?.[EVACUATION_ANNOTATION]) return false;
  if (input.migration.spec.addedNodeSelector?.['kubernetes.io/hostname'] === source) return true;
  // Nodes a virt-handler has run on (it heartbeats there): a simulated node carries the label alone.
  const schedulable = input.nodes.filter(
    (n) =>
      n.metadata?.labels?.[NODE_SCHEDULABLE_LABEL] === 'true' && n.metadata?.annotations?.[HEARTBEAT_ANNOTATION] && !n.spec?.unschedulable,
  );
  return schedulable.every((n) => n.metadata?.name === source);
}

function statusOf(
  migration: VirtualMachineInstanceMigration,
  next: string,
  phase: string,
  state: MigrationState | undefined,
  now: Date,
): MigrationStatus | undefined {
  const status: MigrationStatus = structuredClone(migration.status ?? {});
  if (next !== phase || !status.phase) {
    const order = ['Pending', ...ACTIVE_PHASES, 'Succeeded', 'Failed'];
    // Phases passed within one look (Scheduled on the way to PreparingTarget) are recorded too.
    // A new migration is Pending first, though its first status may already say more.
    const between = isFinalPhase(next)
      ? [...(status.phase ? [] : ['Pending']), next]
      : order.slice(status.phase ? order.indexOf(phase) + 1 : 0, order.indexOf(next) + 1);
    status.phaseTransitionTimestamps = [
      ...(status.phaseTransitionTimestamps ?? []),
      ...between.map((p) => ({ phase: p, phaseTransitionTimestamp: apiTimestamp(now) })),
    ];
    status.phase = next;
  }
  if (state) status.migrationState = state;
  return JSON.stringify(status) === JSON.stringify(migration.status ?? {}) ? undefined : status;
}
