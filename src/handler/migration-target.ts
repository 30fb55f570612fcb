// virt-handler's decisions as a migration target, a pure function as
// planLauncher is: when virt-controller has named this node and a target pod
// on it in the VMI's migration state, start the target QEMU waiting for the
// guest, open this node's end of the stream and say where it is; once the
// source says the guest has arrived, take the VMI over (its node moves here).
import type { V1Pod } from '@kubernetes/client-node';
import { MIGRATION_TARGET_NODE_LABEL, NODE_NAME_LABEL } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { isFinal, type DomainStatus } from '../contract/launcher-protocol.ts';
import { migrationSucceeded } from '../contract/migration.ts';
import { apiTimestamp, podIsFinal } from '../contract/vmi.ts';
import type { NetworkPlan } from './network.ts';

/** What virt-handler did for one VMI's migration target pod on its node. */
export interface TargetRecord {
  podUid: string;
  connected: boolean;
  domain?: DomainStatus;
  network?: NetworkPlan;
  emulated?: boolean;
  /** The target QEMU runs, waiting for the guest. */
  prepared: boolean;
  prepareError?: string;
  retryPrepareAt?: number;
  /** This node's TLS port for the stream. */
  port?: number;
}

export interface TargetSituation {
  node: string;
  /** This virt-handler's address, where the source sends the stream. */
  address: string;
  vmi?: VirtualMachineInstance;
  /** The pod the VMI's migration state names as target, when it is on this node and has not ended. */
  pod?: V1Pod;
  record?: TargetRecord;
  now: number;
}

export type TargetAction =
  | { type: 'releaseTarget' }
  | { type: 'trackTarget'; podUid: string }
  | { type: 'connectTarget' }
  | { type: 'prepareTarget' }
  | { type: 'listen' }
  | { type: 'writeStatus'; vmi: VirtualMachineInstance }
  /** The guest runs here now: the VMI is written over to this node and the target becomes its launcher. */
  | { type: 'takeOver'; vmi: VirtualMachineInstance };

export function planMigrationTarget(s: TargetSituation): TargetAction[] {
  const { vmi, pod, record } = s;
  const state = vmi?.status?.migrationState;
  const ours =
    vmi &&
    pod &&
    state?.migrationUid &&
    state.targetNode === s.node &&
    !state.failed &&
    !vmi.metadata.deletionTimestamp &&
    !pod.metadata?.deletionTimestamp &&
    !podIsFinal(pod);
  // Taken over already: the VMI is this node's, and its pod is this handler's like any other.
  const arrived = migrationSucceeded(state) && state?.targetNodeDomainDetected && vmi?.status?.nodeName === s.node;
  if (!ours || arrived) return record ? [{ type: 'releaseTarget' }] : [];
  if (record && record.podUid !== pod.metadata?.uid) return [{ type: 'releaseTarget' }];
  if (!record) return [{ type: 'trackTarget', podUid: pod.metadata!.uid! }];
  if (record.domain && isFinal(record.domain)) return [];
  if (!record.connected) return [{ type: 'connectTarget' }];
  if (migrationSucceeded(state)) return [{ type: 'takeOver', vmi: takenOver(vmi, s.node, s.now) }];
  if (!record.prepared) return s.now >= (record.retryPrepareAt ?? 0) ? [{ type: 'prepareTarget' }] : [];
  if (record.port === undefined) return [{ type: 'listen' }];
  const port = String(record.port);
  if (state.targetNodeAddress === s.address && state.targetDirectMigrationNodePorts?.[port] !== undefined) return [];
  const next = structuredClone(vmi);
  Object.assign(next.status!.migrationState!, { targetNodeAddress: s.address, targetDirectMigrationNodePorts: { [port]: 0 } });
  return [{ type: 'writeStatus', vmi: next }];
}

/** The VMI as the target writes it when the guest has arrived, as upstream's target handler does. */
function takenOver(vmi: VirtualMachineInstance, node: string, now: number): VirtualMachineInstance {
  const next = structuredClone(vmi);
  const labels: Record<string, string> = { ...next.metadata.labels, [NODE_NAME_LABEL]: node };
  delete labels[MIGRATION_TARGET_NODE_LABEL];
  next.metadata.labels = labels;
  const status = next.status!;
  status.nodeName = node;
  // Moved off the node it was evacuated from.
  if (status.evacuationNodeName !== node) delete status.evacuationNodeName;
  Object.assign(status.migrationState!, { targetNodeDomainDetected: true, targetNodeDomainReadyTimestamp: apiTimestamp(new Date(now)) });
  return next;
}
