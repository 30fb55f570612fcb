// What virt-controller writes on the kinds kubevirt-ts serves but does not
// carry out yet (snapshots, restores, exports, clones, backups): a status that
// says so in the fields each kind's users and upstream's tools read, its phase
// where the kind has one, so that nothing waits on an object that will never
// progress. Pure: the object and the time in, the status to write (or none).
import { NOT_SUPPORTED_REASON, notSupportedMessage, type NotSupportedKind } from '../contract/not-supported.ts';

export interface NotSupportedObject {
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number; deletionTimestamp?: unknown };
  status?: Record<string, unknown> | null;
}

type Cond = { type: string; status: string; reason?: string; message?: string };

/** Whether the status already says "not supported", as this plan writes it. */
function marked(kind: NotSupportedKind, status: Record<string, unknown> | null | undefined): boolean {
  if (!status) return false;
  if (kind.kind === 'VirtualMachineSnapshotContent') {
    return (status.error as { message?: string } | undefined)?.message === notSupportedMessage(kind) && status.readyToUse === false;
  }
  const conditions = (status.conditions as Cond[] | undefined) ?? [];
  return conditions.some((c) => c.reason === NOT_SUPPORTED_REASON && c.message === notSupportedMessage(kind));
}

/**
 * The status to write on an object of a kind kubevirt-ts does not carry out,
 * or undefined when it already says so (or the object is being deleted).
 */
export function planNotSupported(kind: NotSupportedKind, object: NotSupportedObject, now: string): Record<string, unknown> | undefined {
  if (object.metadata.deletionTimestamp || marked(kind, object.status)) return undefined;
  const message = notSupportedMessage(kind);
  const condition = (type: string, status: 'True' | 'False') => ({
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: now,
    reason: NOT_SUPPORTED_REASON,
    message,
  });
  switch (kind.kind) {
    case 'VirtualMachineSnapshot':
      // As upstream's snapshot controller marks a snapshot that failed: Failed, not ready, with the error.
      return {
        phase: 'Failed',
        readyToUse: false,
        error: { time: now, message },
        conditions: [condition('Progressing', 'False'), condition('Ready', 'False'), condition('Failure', 'True')],
      };
    case 'VirtualMachineSnapshotContent':
      return { readyToUse: false, error: { time: now, message } };
    case 'VirtualMachineRestore':
      return { complete: false, conditions: [condition('Progressing', 'False'), condition('Ready', 'False')] };
    case 'VirtualMachineExport':
      // Skipped: upstream's phase for an export whose server is not started.
      return { phase: 'Skipped', conditions: [condition('Ready', 'False')] };
    case 'VirtualMachineClone':
      return { phase: 'Failed', conditions: [condition('Progressing', 'False'), condition('Ready', 'False')] };
    case 'VirtualMachineBackup': {
      // Backups carry metav1.Conditions: no probe time, the generation observed.
      const meta = (type: string, status: 'True' | 'False') => ({
        type,
        status,
        ...(object.metadata.generation !== undefined ? { observedGeneration: object.metadata.generation } : {}),
        lastTransitionTime: now,
        reason: NOT_SUPPORTED_REASON,
        message,
      });
      return { conditions: [meta('Progressing', 'False'), meta('Failed', 'True')] };
    }
    default:
      return undefined;
  }
}
