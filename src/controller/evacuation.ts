// Evacuation, as upstream's: a VMI marked for evacuation from its node (the
// eviction webhook marks it when a drain evicts its launcher pod) gets a
// migration, one at a time, until it runs elsewhere; the migration
// controller's parallel limits pace a whole node's worth. Pure.
import { VMI_NAME_LABEL } from '../api/constants.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceMigration } from '../api/types.ts';
import { isFinalPhase } from '../contract/vmi.ts';

export const EVACUATION_ANNOTATION = 'kubevirt.io/evacuationMigration';
/** After a failed evacuation migration, the next one waits this long. */
export const EVACUATION_RETRY_MS = 20_000;

export type EvacuationPlan = { create?: VirtualMachineInstanceMigration; retryAfterMs?: number };

export function planEvacuation(
  vmi: VirtualMachineInstance,
  migrations: readonly VirtualMachineInstanceMigration[],
  now: Date,
): EvacuationPlan {
  const node = vmi.status?.evacuationNodeName;
  if (!node || vmi.status?.nodeName !== node || vmi.status.phase !== 'Running' || vmi.metadata.deletionTimestamp) return {};
  const own = migrations.filter((m) => m.spec.vmiName === vmi.metadata.name);
  if (own.some((m) => !isFinalPhase(m.status?.phase))) return {};
  const lastFailure = own
    .filter((m) => m.status?.phase === 'Failed')
    .map((m) => Date.parse(m.status?.phaseTransitionTimestamps?.at(-1)?.phaseTransitionTimestamp ?? '') || 0)
    .reduce((a, b) => Math.max(a, b), 0);
  const wait = lastFailure + EVACUATION_RETRY_MS - now.getTime();
  if (wait > 0) return { retryAfterMs: wait };
  return {
    create: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      metadata: {
        generateName: 'kubevirt-evacuation-',
        namespace: vmi.metadata.namespace,
        labels: { [VMI_NAME_LABEL]: vmi.metadata.name! },
        annotations: { [EVACUATION_ANNOTATION]: node },
      },
      spec: { vmiName: vmi.metadata.name },
    },
  };
}
