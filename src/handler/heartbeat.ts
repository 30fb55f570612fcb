// virt-handler's node heartbeat: the labels that let launcher pods land on
// this node and the timestamp the node controller watches.
import { HEARTBEAT_ANNOTATION } from '../controller/node.ts';
import { NODE_SCHEDULABLE_LABEL } from '../api/constants.ts';

/** The merge patch one heartbeat writes to the node. */
export function heartbeatPatch(now: Date, schedulable: boolean): object {
  return {
    metadata: {
      labels: { [NODE_SCHEDULABLE_LABEL]: String(schedulable) },
      annotations: { [HEARTBEAT_ANNOTATION]: now.toISOString().replace(/\.\d+Z$/, 'Z') },
    },
  };
}
