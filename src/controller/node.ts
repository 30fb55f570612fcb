// The node controller's decisions: a node whose virt-handler stopped
// heartbeating loses `kubevirt.io/schedulable`, and once the heartbeat is
// older than the timeout, its VMIs without a running launcher pod fail. A node
// that never had a heartbeat is not judged. A node whose lease ran out past the
// fencing bound has stopped its guests itself: all its VMIs fail at once.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { NODE_SCHEDULABLE_LABEL } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { FENCING, HEARTBEAT_ANNOTATION } from '../contract/node.ts';
import { isFinalPhase, launcherPodsOf } from '../contract/vmi.ts';

/** Upstream's default: five missed heartbeats of one minute each. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5 * 60 * 1000;

/** When virt-handler last heartbeat on the node (ms since the epoch); NaN if it never did. */
const heartbeatOf = (node: V1Node) => Date.parse(node.metadata?.annotations?.[HEARTBEAT_ANNOTATION] ?? '');

/**
 * The node's virt-handler has heartbeat, and not within the timeout: the node controller judges
 * its VMIs (NodeUnresponsive). A node that never had a heartbeat is not judged.
 */
export function heartbeatExpired(node: V1Node, now: number, timeoutMs = DEFAULT_HEARTBEAT_TIMEOUT_MS): boolean {
  const heartbeat = heartbeatOf(node);
  return !Number.isNaN(heartbeat) && now - heartbeat > timeoutMs;
}

export interface NodePlan {
  /** Set the node's schedulable label to "false". */
  markUnschedulable: boolean;
  failVmis: VirtualMachineInstance[];
  /** Launcher pods on a fenced node: their guests are gone, and no kubelet will confirm it. */
  forceDeletePods?: V1Pod[];
  /** When to look again: the moment the current heartbeat runs out. */
  recheckAfterMs?: number;
}

export function planNode(
  node: V1Node,
  vmis: readonly VirtualMachineInstance[],
  pods: readonly V1Pod[],
  now: number,
  timeoutMs = DEFAULT_HEARTBEAT_TIMEOUT_MS,
  /** When virt-handler last renewed the node's lease (ms since the epoch), if it keeps one. */
  leaseRenewedAt?: number,
): NodePlan {
  const name = node.metadata?.name;
  const heartbeat = heartbeatOf(node);
  const onNode = vmis.filter((v) => v.status?.nodeName === name && !isFinalPhase(v.status?.phase));
  // The launchers there have stopped their guests by now (self-fencing): the VMIs are free to run elsewhere.
  const fencedAt = leaseRenewedAt === undefined ? undefined : leaseRenewedAt + FENCING.leaseDurationMs + FENCING.marginMs;
  if (fencedAt !== undefined && now > fencedAt) {
    const stranded = vmis
      .flatMap((v) => launcherPodsOf(v, pods))
      .filter((p) => p.spec?.nodeName === name && p.metadata?.deletionGracePeriodSeconds !== 0);
    return {
      markUnschedulable: node.metadata?.labels?.[NODE_SCHEDULABLE_LABEL] !== 'false',
      failVmis: onNode,
      ...(stranded.length ? { forceDeletePods: stranded } : {}),
    };
  }
  const recheckFencing = fencedAt === undefined ? Number.POSITIVE_INFINITY : fencedAt - now + 1000;
  if (!Number.isNaN(heartbeat) && !heartbeatExpired(node, now, timeoutMs)) {
    return { markUnschedulable: false, failVmis: [], recheckAfterMs: Math.min(heartbeat + timeoutMs - now + 1000, recheckFencing) };
  }
  // No virt-handler ever heartbeat here: as upstream, nothing to judge the node by, so it is left
  // alone whatever its labels say or whatever runs there (simulated nodes, e.g. KWOK's, carry the
  // schedulable label and launcher pods but never a heartbeat).
  // A virt-handler that took the lease and died before its first heartbeat is still fenced in time.
  if (Number.isNaN(heartbeat)) {
    return { markUnschedulable: false, failVmis: [], ...(Number.isFinite(recheckFencing) ? { recheckAfterMs: recheckFencing } : {}) };
  }
  const runningHere = (vmi: VirtualMachineInstance) =>
    launcherPodsOf(vmi, pods).some((p) => p.spec?.nodeName === name && p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  return {
    markUnschedulable: node.metadata?.labels?.[NODE_SCHEDULABLE_LABEL] !== 'false',
    failVmis: onNode.filter((v) => !runningHere(v)),
  };
}
