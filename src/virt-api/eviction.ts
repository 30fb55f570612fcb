// The pods/eviction webhook on launcher pods, as upstream's: a VMI whose
// effective evictionStrategy (its own, else the cluster's) asks to be moved
// rather than killed is marked for evacuation (status.evacuationNodeName) and
// the eviction is refused with 429, so the evicter retries while virt-controller
// migrates the VMI away (External: while someone else takes care of it);
// every other eviction is let through. Pure: ./server.ts reads the pod and the
// VMI and writes the mark.
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterConfig } from '../api/cluster-config.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { DOMAIN_ANNOTATION, LAUNCHER_LABEL_VALUE } from '../contract/launcher-pod.ts';

export const EVICTION_WEBHOOK_PATH = '/pod-eviction-validate';

export type EvictionDecision = { allow: true } | { deny: string } | { mark: { nodeName: string; message: string } };

/** The annotation descheduler sets on its eviction requests, and the VMI annotation that records it (upstream's). */
const REQUESTED_BY = 'requested-by';
const DESCHEDULER = 'sigs.k8s.io/descheduler';
export const EVICTION_SOURCE_ANNOTATION = 'kubevirt.io/eviction-source';

/** The VMI a pod's eviction is about: undefined for anything but a live launcher pod of a VMI. */
export function launcherVmiName(pod: V1Pod): string | undefined {
  if (pod.metadata?.labels?.['kubevirt.io'] !== LAUNCHER_LABEL_VALUE) return undefined;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return undefined;
  return pod.metadata?.annotations?.[DOMAIN_ANNOTATION];
}

export function decideEviction(pod: V1Pod, vmi: VirtualMachineInstance, config: ClusterConfig): EvictionDecision {
  const strategy = vmi.spec.evictionStrategy ?? config.evictionStrategy;
  const migratable = vmi.status?.conditions?.find((c) => c.type === 'LiveMigratable');
  switch (strategy) {
    case 'External':
      break;
    case 'LiveMigrate':
      // Never killed: one that cannot move holds the drain until someone deals with it, as upstream's.
      if (migratable?.status !== 'True')
        return {
          deny: `VMI ${vmi.metadata.namespace}/${vmi.metadata.name} is configured with an eviction strategy but is not live-migratable`,
        };
      break;
    case 'LiveMigrateIfPossible':
      if (migratable?.status !== 'True') return { allow: true };
      break;
    default:
      // None, or no strategy at all: the VMI goes with its pod.
      return { allow: true };
  }
  // This message format is what descheduler expects.
  const triggered = `Eviction triggered evacuation of VMI "${vmi.metadata.namespace}/${vmi.metadata.name}"`;
  if (vmi.status?.evacuationNodeName) return { deny: `Evacuation in progress: ${triggered}` };
  if (vmi.status?.nodeName !== pod.spec?.nodeName) return { deny: 'Eviction request for target Pod' };
  return { mark: { nodeName: pod.spec!.nodeName!, message: triggered } };
}

/** The JSON patch that marks a VMI for evacuation from the node (and, for descheduler's evictions, says who asked). */
export function evacuationPatch(vmi: VirtualMachineInstance, nodeName: string, eviction: unknown) {
  const fromDescheduler =
    (eviction as { metadata?: { annotations?: Record<string, string> } } | undefined)?.metadata?.annotations?.[REQUESTED_BY] ===
    DESCHEDULER;
  const ops: { op: 'add' | 'replace'; path: string; value: unknown }[] = [
    { op: 'add', path: '/status/evacuationNodeName', value: nodeName },
  ];
  if (fromDescheduler) {
    if (!vmi.metadata.annotations || Object.keys(vmi.metadata.annotations).length === 0)
      ops.push({ op: 'add', path: '/metadata/annotations', value: { [EVICTION_SOURCE_ANNOTATION]: 'descheduler' } });
    else
      ops.push({
        op: 'add',
        path: `/metadata/annotations/${EVICTION_SOURCE_ANNOTATION.replace('~', '~0').replace('/', '~1')}`,
        value: 'descheduler',
      });
  }
  return ops;
}

/** Whether the eviction is a dry run: the review says so, or the Eviction's deleteOptions do. */
export function evictionDryRun(reviewDryRun: boolean | undefined, eviction: unknown): boolean {
  if (reviewDryRun) return true;
  const dryRun = (eviction as { deleteOptions?: { dryRun?: string[] } } | undefined)?.deleteOptions?.dryRun;
  return dryRun?.[0] === 'All';
}
