// Live migration across components: what virt-controller writes on the VMI and
// the target pod, what each virt-handler reads there, the sockets in the
// launcher pods the migration stream passes through, and the launcher's
// migrate command.
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../api/types.ts';

/** The target pod's annotation naming its migration object. */
export const MIGRATION_JOB_NAME_ANNOTATION = 'kubevirt.io/migrationJobName';

/** In the target pod's socket directory: the target QEMU's incoming listener, which the target virt-handler feeds. */
export const MIGRATION_IN_SOCKET = 'migration-in.sock';
/** In the source pod's socket directory: the source virt-handler's listener, which the source QEMU sends to. */
export const MIGRATION_OUT_SOCKET = 'migration-out.sock';

export type MigrationState = NonNullable<NonNullable<VirtualMachineInstance['status']>['migrationState']>;

/** The VMI's migration that has started and not ended, if any. */
export function migrationInFlight(vmi: VirtualMachineInstance): MigrationState | undefined {
  const state = vmi.status?.migrationState;
  return state?.migrationUid && !state.completed && !state.failed ? state : undefined;
}

/** The migration moved the guest: its target pod is the VMI's pod from now on. */
export const migrationSucceeded = (state: MigrationState | undefined) => Boolean(state?.completed && !state.failed);

/**
 * A migration's target pod is not the VMI's pod until the migration has succeeded (and then the
 * source pod ends). Named on the VMI before it is created, so no one takes it for the VMI's pod.
 */
export function isPendingMigrationTarget(vmi: VirtualMachineInstance, pod: V1Pod): boolean {
  const state = vmi.status?.migrationState;
  return state?.targetPod !== undefined && state.targetPod === pod.metadata?.name && !migrationSucceeded(state);
}

/** How the source launcher migrates, from the cluster's migration configuration (and a MigrationPolicy). */
export interface MigrationOptions {
  /** The migration's UID: asked again for the same one, the launcher answers for the one under way. */
  id: string;
  /** Where the source QEMU sends the stream: the source handler's listener, `unix:<path>`. */
  uri: string;
  /** Local disks (containerDisk overlays, emptyDisks) travel in the stream, their top layer only. */
  block: boolean;
  /** Bytes per second; 0 for no limit. */
  bandwidthBytesPerSecond: number;
  /** The whole migration may take this many seconds per GiB of memory and local disk before it is cancelled (or switched to post-copy). */
  completionTimeoutPerGiB: number;
  /** Cancelled when the remaining data has not shrunk for this many seconds. */
  progressTimeoutSeconds: number;
  allowPostCopy: boolean;
  allowAutoConverge: boolean;
}

/** How a migration ended, as the source launcher saw it. */
export interface MigrationOutcome {
  completed: boolean;
  mode: 'PreCopy' | 'PostCopy';
  /** QEMU's own figures: the guest's downtime and the whole migration, in milliseconds. */
  downtimeMs?: number;
  totalTimeMs?: number;
  failureReason?: string;
  /** The migration was cancelled on request (migrate_cancel). */
  aborted?: boolean;
}
