// The VMI controller's decisions, as pure functions: from a VMI and the
// launcher pods it owns to the pod to create or delete and the VMI's next
// status. Only pods controller-owned by the VMI's UID count: labels alone can
// be forged by anyone who may create pods.
import type { V1Pod } from '@kubernetes/client-node';
import { comparableConditions, setCondition, withoutCondition } from '../api/conditions.ts';
import { NODE_NAME_LABEL, VMI_FINALIZER } from '../api/constants.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceStatus } from '../api/types.ts';
import { COMPUTE_CONTAINER, computeStatus } from '../contract/launcher-pod.ts';
import { isFinalPhase, ownedPods, podCondition, podIsFinal, podIsReady } from '../contract/vmi.ts';
import { renderLauncherPod, type LauncherPodParams } from './launcher-pod.ts';
import { jsonEqual } from '../api/json-equal.ts';

type Condition = NonNullable<VirtualMachineInstanceStatus['conditions']>[number];

export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface VmiPlan {
  createPod?: V1Pod;
  deletePods?: V1Pod[];
  /** The VMI as it should be written back, when anything about it changes. */
  update?: VirtualMachineInstance;
  events: RecordedEvent[];
}

const podIsDownOrGoingDown = (pod: V1Pod) => podIsFinal(pod) || pod.metadata?.deletionTimestamp !== undefined;

const launcherExitedCleanly = (pod: V1Pod) => computeStatus(pod)?.state?.terminated?.exitCode === 0;

/** The reason a container of the pod cannot get its image, if one cannot. */
export function imagePullTrouble(pod: V1Pod): { reason: string; message: string } | undefined {
  for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason === 'ErrImagePull' || waiting?.reason === 'ImagePullBackOff') {
      return { reason: waiting.reason, message: waiting.message ?? `${status.name}: ${waiting.reason}` };
    }
  }
  return undefined;
}

/** The Ready condition as upstream derives it from the launcher pod. */
function readyCondition(vmi: VirtualMachineInstance, pod: V1Pod | undefined, now: string): Condition {
  const base = { type: 'Ready', status: 'False', lastTransitionTime: now };
  if (!pod) return { ...base, reason: 'PodNotExists', message: 'virt-launcher pod has not yet been scheduled' };
  if (podIsDownOrGoingDown(pod)) return { ...base, reason: 'PodTerminating', message: 'virt-launcher pod is terminating' };
  if (vmi.status?.phase !== 'Running') return { ...base, reason: 'GuestNotRunning', message: 'Guest VM is not reported as running' };
  const ready = podCondition(pod, 'Ready');
  if (!ready) return { ...base, reason: 'PodConditionMissing', message: 'virt-launcher pod is missing the Ready condition' };
  return {
    ...base,
    status: ready.status,
    ...(ready.reason ? { reason: ready.reason } : {}),
    ...(ready.message ? { message: ready.message } : {}),
  };
}

/**
 * What to do for one VMI. `candidatePods` are launcher pods of its namespace, of which only those it owns count; `podCreationPending`
 * says a pod was created and the cache has not shown it yet (expectations).
 */
export function planVmi(
  vmi: VirtualMachineInstance,
  candidatePods: readonly V1Pod[],
  params: LauncherPodParams,
  now: string,
  podCreationPending = false,
): VmiPlan {
  const plan: VmiPlan = { events: [] };
  const pods = ownedPods(vmi, candidatePods);
  const live = pods.filter((p) => !podIsFinal(p));
  const pod = live[0] ?? pods[0];
  const phase = vmi.status?.phase ?? '';
  const next: VirtualMachineInstance = structuredClone(vmi);
  next.status ??= {};
  let conditions: Condition[] = next.status.conditions ?? [];

  if (vmi.metadata.deletionTimestamp) {
    const deletable = pods.filter((p) => !p.metadata?.deletionTimestamp && !podIsFinal(p));
    if (deletable.length) {
      plan.deletePods = deletable;
      for (const p of deletable)
        plan.events.push({ type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted virtual machine pod ${p.metadata?.name}` });
    }
  } else if (phase === '' || phase === 'Pending') {
    if (!pod && !podCreationPending) {
      plan.createPod = renderLauncherPod(vmi, params);
    }
  } else if (isFinalPhase(phase)) {
    // The guest has ended; its pod's other containers (image holders, console log) would run on.
    const lingering = pods.filter((p) => !p.metadata?.deletionTimestamp && !podIsFinal(p));
    if (lingering.length) plan.deletePods = lingering;
  }

  let nextPhase = phase;
  switch (phase) {
    case '':
    case 'Pending':
      // The pod is created before the status is written, so one write records both steps.
      if (pod || plan.createPod) nextPhase = 'Scheduling';
      else if (vmi.metadata.deletionTimestamp) nextPhase = 'Failed';
      else nextPhase = 'Pending';
      break;
    case 'Scheduling': {
      // Scheduling is written with the pod's creation, so the cache may not show that pod yet.
      if (!pod && podCreationPending && !vmi.metadata.deletionTimestamp) return plan;
      if (!pod) {
        nextPhase = 'Failed';
        break;
      }
      const scheduled = podCondition(pod, 'PodScheduled');
      if (scheduled?.status === 'False') {
        conditions = setCondition(conditions, {
          type: 'PodScheduled',
          status: 'False',
          reason: scheduled.reason,
          message: scheduled.message,
          lastTransitionTime: now,
        });
      } else {
        conditions = withoutCondition(conditions, 'PodScheduled');
      }
      const pull = imagePullTrouble(pod);
      if (pull) {
        conditions = setCondition(conditions, {
          type: 'Synchronized',
          status: 'False',
          reason: pull.reason,
          message: pull.message,
          lastTransitionTime: now,
        });
      } else {
        conditions = withoutCondition(conditions, 'Synchronized');
      }
      if (podIsReady(pod) && !vmi.metadata.deletionTimestamp) {
        nextPhase = 'Scheduled';
        next.status.nodeName = pod.spec?.nodeName;
        next.metadata.labels = { ...next.metadata.labels, [NODE_NAME_LABEL]: pod.spec!.nodeName! };
        next.status.qosClass = pod.status?.qosClass;
        next.status.launcherContainerImageVersion = pod.spec?.containers.find((c) => c.name === COMPUTE_CONTAINER)?.image;
      } else if (podIsDownOrGoingDown(pod)) {
        nextPhase = 'Failed';
      }
      break;
    }
    case 'Scheduled':
    case 'Running':
      // The pod is how the guest runs: without it the guest is gone. A pod that ended tells how:
      // the launcher exits 0 only after a clean shutdown.
      if (!pods.length) nextPhase = 'Failed';
      else if (pods.every(podIsFinal)) nextPhase = phase === 'Running' && launcherExitedCleanly(pods[0]) ? 'Succeeded' : 'Failed';
      break;
  }
  // Once the VMI has ended and no pod of it is left, nothing holds it any more.
  if (isFinalPhase(nextPhase) && pods.length === 0 && next.metadata.finalizers?.includes(VMI_FINALIZER)) {
    next.metadata.finalizers = next.metadata.finalizers.filter((f) => f !== VMI_FINALIZER);
  }
  if (nextPhase === 'Succeeded' && !isFinalPhase(phase)) {
    plan.events.push({ type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' });
  }
  if (nextPhase === 'Failed' && !isFinalPhase(phase)) {
    const why = !pod
      ? 'its virt-launcher pod is gone'
      : `its virt-launcher pod ${pod.metadata?.name} ${podIsFinal(pod) ? `ended (${pod.status?.phase})` : 'is being deleted'}`;
    plan.events.push({ type: 'Warning', reason: 'Stopped', message: `The VirtualMachineInstance failed: ${why}` });
    next.status.reason ??= pod ? 'PodTerminating' : 'PodNotExists';
  }

  // A pod created now counts as existing, so the next look at it finds nothing new to write.
  conditions = setCondition(
    conditions,
    readyCondition({ ...vmi, status: { ...vmi.status, phase: nextPhase } }, live[0] ?? plan.createPod, now),
  );
  next.status.conditions = conditions;
  next.status.phase = nextPhase;
  if (nextPhase !== phase) {
    const seen = next.status.phaseTransitionTimestamps ?? [];
    const passed = nextPhase === 'Scheduling' && !seen.some((t) => t.phase === 'Pending') ? ['Pending', 'Scheduling'] : [nextPhase];
    next.status.phaseTransitionTimestamps = [...seen, ...passed.map((p) => ({ phase: p, phaseTransitionTimestamp: now }))];
  }
  // Pods map to their nodes once the VMI is on one: written with Scheduled, not as a write of its own.
  if (pod && (nextPhase === 'Scheduled' || nextPhase === 'Running')) {
    next.status.activePods = Object.fromEntries(live.map((p) => [p.metadata!.uid!, p.spec?.nodeName ?? '']));
  }

  if (!jsonEqual(stripProbe(next), stripProbe(vmi))) plan.update = next;
  return plan;
}

/** Comparing VMIs: a condition's recomputed times alone are no change. */
function stripProbe(vmi: VirtualMachineInstance) {
  return {
    labels: vmi.metadata.labels,
    finalizers: vmi.metadata.finalizers,
    status: { ...vmi.status, conditions: comparableConditions(vmi.status?.conditions) },
  };
}
