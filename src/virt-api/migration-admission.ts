// What a new migration's VMI must be, checked at admission as upstream's
// webhook does: there, not ended, not saying it cannot move, and not already
// migrating. Pure: ./server.ts reads the VMI.
import type { VirtualMachineInstance } from '../api/types.ts';
import { migrationInFlight } from '../contract/migration.ts';
import { isFinalPhase } from '../contract/vmi.ts';

export const MIGRATION_CREATE_PATH = '/migration-validate-create';

/** Why the VMI cannot be migrated now, in upstream's words; undefined when it can. */
export function migrationRefusal(namespace: string, vmiName: string, vmi: VirtualMachineInstance | undefined): string | undefined {
  if (!vmi) return `the VMI "${namespace}/${vmiName}" does not exist`;
  if (isFinalPhase(vmi.status?.phase)) return 'Cannot migrate VMI in finalized state.';
  // Only a VMI that says it cannot move is refused: one not running yet has no say, and its migration fails later.
  const migratable = vmi.status?.conditions?.find((c) => c.type === 'LiveMigratable');
  if (migratable?.status === 'False') return `Cannot migrate VMI, Reason: ${migratable.reason ?? ''}, Message: ${migratable.message ?? ''}`;
  const inFlight = migrationInFlight(vmi);
  if (inFlight)
    return `in-flight migration detected. Active migration job (${inFlight.migrationUid}) is currently already in progress for VMI ${vmiName}.`;
  return undefined;
}
