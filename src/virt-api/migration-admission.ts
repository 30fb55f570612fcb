// What a new migration's VMI must be, checked at admission as upstream's
// webhook does: there, not ended, running, migratable, and not already
// migrating. Pure: ./server.ts reads the VMI.
import type { VirtualMachineInstance } from '../api/types.ts';
import { migrationInFlight } from '../contract/migration.ts';
import { isFinalPhase } from '../contract/vmi.ts';

export const MIGRATION_CREATE_PATH = '/migration-validate-create';

/** Why the VMI cannot be migrated now, in upstream's words; undefined when it can. */
export function migrationRefusal(vmiName: string, vmi: VirtualMachineInstance | undefined): string | undefined {
  if (!vmi) return `the VMI "${vmiName}" does not exist`;
  if (isFinalPhase(vmi.status?.phase)) return 'Cannot migrate VMI in finalized state.';
  if (vmi.status?.phase !== 'Running') return 'Cannot migrate VMI which is not running.';
  const inFlight = migrationInFlight(vmi);
  if (inFlight)
    return `in-flight migration detected. Active migration job (${inFlight.migrationUid}) is currently already in progress for VMI ${vmiName}.`;
  const migratable = vmi.status.conditions?.find((c) => c.type === 'LiveMigratable');
  if (migratable?.status !== 'True')
    return `Cannot migrate VMI, Reason: ${migratable?.reason ?? ''}, Message: ${migratable?.message ?? ''}`;
  return undefined;
}
