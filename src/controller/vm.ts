// The VM controller's decisions, as pure functions: from a VM and its VMI (if
// any) to the changes to make. ./vm-controller.ts carries them out.
import { createHash } from 'node:crypto';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api/types.ts';
import { apiTimestamp, isFinalPhase, runStrategyOf } from '../contract/vmi.ts';
import type { RecordedEvent } from './vmi.ts';

export const VM_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize';
/** The hash of the template a VMI was started from, to tell when a restart is required. */
export const TEMPLATE_HASH_ANNOTATION = 'kubevirt-ts.io/template-hash';
export const VM_GENERATION_ANNOTATION = 'kubevirt.io/vm-generation';
/** Upstream's ceiling on the crash-loop backoff. */
export const MAX_START_BACKOFF_SECONDS = 300;

type Condition = NonNullable<VirtualMachineStatus['conditions']>[number];
type StateChangeRequest = NonNullable<VirtualMachineStatus['stateChangeRequests']>[number];

export interface VmPlan {
  finalizers?: string[];
  createVmi?: VirtualMachineInstance;
  deleteVmi?: boolean;
  /** A Halted VM asked to start becomes Always (upstream's start on Halted). */
  setRunStrategy?: string;
  status: VirtualMachineStatus;
  events: RecordedEvent[];
  /** Reconcile again after this long (a crash-loop backoff running out). */
  requeueAfterMs?: number;
}

export interface VmClock {
  now: Date;
  /** 0 ≤ jitter < 1, to spread VMs failing together (upstream randomises too). */
  jitter: number;
}

const isFinal = (vmi: VirtualMachineInstance) => isFinalPhase(vmi.status?.phase);
const conditionTrue = (vmi: VirtualMachineInstance | undefined, type: string) =>
  vmi?.status?.conditions?.find((c) => c.type === type)?.status === 'True';
const vmiCondition = (vmi: VirtualMachineInstance | undefined, type: string) => vmi?.status?.conditions?.find((c) => c.type === type);

/**
 * The template with its live-updatable parts (CPU sockets, guest memory,
 * placement) left out: a change there needs no restart.
 */
export function templateHash(vm: VirtualMachine): string {
  const spec = structuredClone(vm.spec.template.spec ?? {}) as NonNullable<VirtualMachine['spec']['template']['spec']>;
  if (spec.domain?.cpu) delete spec.domain.cpu.sockets;
  if (spec.domain?.memory) delete spec.domain.memory.guest;
  delete spec.nodeSelector;
  delete spec.affinity;
  delete spec.tolerations;
  return createHash('sha256')
    .update(JSON.stringify({ spec, labels: vm.spec.template.metadata?.labels }))
    .digest('hex')
    .slice(0, 16);
}

/** The VMI a VM runs: its template, named after it and owned by it (upstream's SetupVMIFromVM). */
export function vmiFromVm(vm: VirtualMachine, startPaused = false): VirtualMachineInstance {
  const template = vm.spec.template;
  const spec = structuredClone(template.spec!);
  if (startPaused) spec.startStrategy = 'Paused';
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: vm.metadata.name,
      namespace: vm.metadata.namespace,
      ...(template.metadata?.labels ? { labels: template.metadata.labels } : {}),
      annotations: {
        ...template.metadata?.annotations,
        [TEMPLATE_HASH_ANNOTATION]: templateHash(vm),
        ...(vm.metadata.generation !== undefined ? { [VM_GENERATION_ANNOTATION]: String(vm.metadata.generation) } : {}),
      },
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachine',
          name: vm.metadata.name!,
          uid: vm.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec,
  };
}

const firstRequest = (vm: VirtualMachine): StateChangeRequest | undefined => vm.status?.stateChangeRequests?.[0];
const hasStartRequest = (vm: VirtualMachine) => firstRequest(vm)?.action === 'Start';
const hasStopRequestFor = (vm: VirtualMachine, vmi: VirtualMachineInstance) => {
  const request = firstRequest(vm);
  return request?.action === 'Stop' && request.uid === vmi.metadata.uid;
};
const startPausedRequested = (vm: VirtualMachine) => hasStartRequest(vm) && firstRequest(vm)?.data?.paused === 'true';

/** Whether the first state change request has been carried out and can go (upstream's trim rule). */
function firstRequestDone(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): boolean {
  const request = firstRequest(vm);
  if (!request) return false;
  if (request.action === 'Stop') return !vmi || !request.uid || request.uid !== vmi.metadata.uid;
  if (request.action === 'Start') return vmi !== undefined && !vmi.metadata.deletionTimestamp && !isFinal(vmi);
  return false;
}

const ranOnce = (vmi: VirtualMachineInstance) => vmi.status?.phaseTransitionTimestamps?.some((t) => t.phase === 'Running') ?? false;

/** Upstream's crash-loop delay: grows with the square of the failures, jittered, capped at 5 minutes. */
export function startBackoffSeconds(failures: number, jitter: number): number {
  const interval = Math.max(10, Math.floor(MAX_START_BACKOFF_SECONDS / 30));
  const delay = interval * Math.max(1, failures) ** 2;
  return Math.min(MAX_START_BACKOFF_SECONDS, delay + Math.floor(jitter * (Math.floor(delay / 2) + 1)));
}

const RESTARTING_STRATEGIES = new Set(['Always', 'RerunOnFailure', 'Once']);

function startFailure(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  runStrategy: string,
  clock: VmClock,
): VirtualMachineStatus['startFailure'] {
  if ((vmi && ranOnce(vmi)) || !RESTARTING_STRATEGIES.has(runStrategy)) return undefined;
  const current = vm.status?.startFailure;
  if (!vmi || !isFinal(vmi) || current?.lastFailedVMIUID === vmi.metadata.uid) return current;
  const count = (current?.consecutiveFailCount ?? 0) + 1;
  const retryAfter = new Date(clock.now.getTime() + startBackoffSeconds(count, clock.jitter) * 1000);
  return { consecutiveFailCount: count, lastFailedVMIUID: vmi.metadata.uid, retryAfterTimestamp: apiTimestamp(retryAfter) };
}

/** upstream's printableStatus, first match wins, over the states kubevirt-ts can be in. */
export function printableStatus(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, startExpected = false): string {
  const stopExpected = vmi !== undefined && (runStrategyOf(vm) === 'Halted' || hasStopRequestFor(vm, vmi));
  if (vm.metadata.deletionTimestamp) return 'Terminating';
  if (vmi && !isFinal(vmi) && (vmi.metadata.deletionTimestamp || stopExpected)) return 'Stopping';
  if (vmi?.status?.migrationState && !vmi.status.migrationState.completed) return 'Migrating';
  if (vmi?.status?.phase === 'Running') return conditionTrue(vmi, 'Paused') ? 'Paused' : 'Running';
  const scheduled = vmiCondition(vmi, 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') return 'ErrorUnschedulable';
  const sync = vmiCondition(vmi, 'Synchronized');
  if (sync?.status === 'False' && sync.reason === 'ErrImagePull') return 'ErrImagePull';
  if (sync?.status === 'False' && sync.reason === 'ImagePullBackOff') return 'ImagePullBackOff';
  if (vmi ? ['', 'Pending', 'Scheduling', 'Scheduled'].includes(vmi.status?.phase ?? '') : startExpected) return 'Starting';
  if (
    (!vmi || isFinal(vmi)) &&
    !startExpected &&
    (vm.status?.startFailure?.consecutiveFailCount ?? 0) > 0 &&
    RESTARTING_STRATEGIES.has(runStrategyOf(vm))
  ) {
    return 'CrashLoopBackOff';
  }
  if (vmi ? isFinal(vmi) : !startExpected) return 'Stopped';
  return 'Unknown';
}

function readyCondition(vmi: VirtualMachineInstance | undefined, now: string, previous: Condition[] | undefined): Condition {
  const source = vmiCondition(vmi, 'Ready');
  const next: Condition = !vmi
    ? { type: 'Ready', status: 'False', reason: 'VMINotExists', message: 'VMI does not exist', lastTransitionTime: now }
    : source
      ? {
          type: 'Ready',
          status: source.status,
          ...(source.reason ? { reason: source.reason } : {}),
          ...(source.message ? { message: source.message } : {}),
          lastTransitionTime: source.lastTransitionTime ?? now,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'VMIConditionMissing',
          message: 'VMI is missing the Ready condition',
          lastTransitionTime: now,
        };
  const old = previous?.find((c) => c.type === 'Ready');
  if (old && old.status === next.status && old.reason === next.reason && old.message === next.message) return old;
  return next;
}

function restartRequired(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  now: string,
  previous: Condition[] | undefined,
): Condition | undefined {
  const hash = vmi?.metadata.annotations?.[TEMPLATE_HASH_ANNOTATION];
  if (!vmi || isFinal(vmi) || !hash || hash === templateHash(vm)) return undefined;
  return (
    previous?.find((c) => c.type === 'RestartRequired') ?? {
      type: 'RestartRequired',
      status: 'True',
      message: 'a non-live-updatable field was changed in the template spec',
      lastTransitionTime: now,
    }
  );
}

/** What to do for a VM, given its VMI (if one exists) and the time. */
export function planVm(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  clock: VmClock = { now: new Date(), jitter: 0 },
): VmPlan {
  const now = apiTimestamp(clock.now);
  const runStrategy = runStrategyOf(vm);
  const owned = vmi?.metadata.ownerReferences?.some((o) => o.controller && o.uid === vm.metadata.uid);
  const ours = owned ? vmi : undefined;
  const plan: VmPlan = { status: { ...vm.status }, events: [] };
  const finalizers = vm.metadata.finalizers ?? [];

  const stop = () => {
    if (!ours || ours.metadata.deletionTimestamp) return;
    plan.deleteVmi = true;
    plan.events.push({
      type: 'Normal',
      reason: 'SuccessfulDelete',
      message: `Stopped the virtual machine by deleting the virtual machine instance ${ours.metadata.uid}`,
    });
  };
  const start = (failure: VirtualMachineStatus['startFailure']) => {
    const retryAt = failure?.retryAfterTimestamp ? Date.parse(failure.retryAfterTimestamp) : 0;
    if (retryAt > clock.now.getTime()) {
      plan.requeueAfterMs = retryAt - clock.now.getTime();
      return;
    }
    plan.createVmi = vmiFromVm(vm, startPausedRequested(vm));
    plan.events.push({
      type: 'Normal',
      reason: 'SuccessfulCreate',
      message: `Started the virtual machine by creating the new virtual machine instance ${vm.metadata.name}`,
    });
  };

  const failure = startFailure(vm, ours, runStrategy, clock);
  if (vm.metadata.deletionTimestamp) {
    if (ours) stop();
    else if (finalizers.includes(VM_FINALIZER)) plan.finalizers = finalizers.filter((f) => f !== VM_FINALIZER);
  } else {
    if (!finalizers.includes(VM_FINALIZER)) plan.finalizers = [...finalizers, VM_FINALIZER];
    // A VMI of the same name that this VM does not own is left alone, and nothing is created over it.
    if (!vmi || owned) {
      switch (runStrategy) {
        case 'Always':
          if (!ours) start(failure);
          else if (hasStopRequestFor(vm, ours) || isFinal(ours)) stop();
          break;
        case 'RerunOnFailure':
          if (ours) {
            if (hasStopRequestFor(vm, ours) || isFinal(ours)) stop();
            // A failed VMI comes back; one that ended of its own accord stays stopped.
            if (ours.status?.phase === 'Failed' && !ours.metadata.deletionTimestamp && !hasStartRequest(vm)) {
              plan.status.stateChangeRequests = [...(plan.status.stateChangeRequests ?? []), { action: 'Start' }];
            }
          } else if (hasStartRequest(vm) || vm.status?.runStrategy !== runStrategy) {
            start(failure);
          }
          break;
        case 'Manual':
          if (ours && hasStopRequestFor(vm, ours)) stop();
          else if (!ours && hasStartRequest(vm)) start(undefined);
          break;
        case 'Halted':
          if (ours) stop();
          else if (hasStartRequest(vm)) plan.setRunStrategy = 'Always';
          break;
        case 'Once':
          // Started once, the first time the VM is seen under Once; what it ends as stays.
          if (!ours && vm.status?.runStrategy !== 'Once') start(failure);
          break;
      }
    }
  }

  const previous = vm.status?.conditions;
  const conditions: Condition[] = (previous ?? []).filter((c) => c.type !== 'Ready' && c.type !== 'RestartRequired');
  conditions.push(readyCondition(ours, now, previous));
  const restart = restartRequired(vm, ours, now, previous);
  if (restart) conditions.push(restart);
  const startExpected = plan.createVmi !== undefined || plan.requeueAfterMs !== undefined;
  plan.status = {
    ...plan.status,
    created: ours !== undefined,
    ready: conditionTrue(ours, 'Ready'),
    conditions,
    printableStatus: printableStatus({ ...vm, status: { ...vm.status, startFailure: failure } }, ours, startExpected),
    // Reported from the first start on, so that RerunOnFailure can tell a fresh VM from a stopped one.
    ...(vm.status?.runStrategy || ours || plan.createVmi ? { runStrategy } : {}),
  };
  if (failure) plan.status.startFailure = failure;
  else delete plan.status.startFailure;
  if (firstRequestDone(vm, ours)) plan.status.stateChangeRequests = plan.status.stateChangeRequests?.slice(1);
  if (plan.status.stateChangeRequests?.length === 0) delete plan.status.stateChangeRequests;
  return plan;
}
