// Predicates on VMs, VMIs and their launcher pods that every component must read the same way.
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance, Volume } from '../api/types.ts';
import { EPHEMERAL_PROVISIONING_ANNOTATION } from './cdi.ts';

/** The longest DNS label, and so the longest hostname and label value. */
export const DNS_LABEL_MAX_LENGTH = 63;

/**
 * The guest's and its pod's hostname, as upstream derives it: `spec.hostname` when set (already
 * validated as a DNS label), else the VMI's name up to its first dot, cut to a DNS label's length.
 */
export function sanitizeHostname(vmi: VirtualMachineInstance): string {
  if (vmi.spec.hostname) return vmi.spec.hostname;
  return (vmi.metadata.name ?? '').split('.')[0].slice(0, DNS_LABEL_MAX_LENGTH);
}

/** The pod readiness gate upstream's launcher pod carries, false while the guest is paused. */
export const UNPAUSED_READINESS_GATE = 'kubevirt.io/virtual-machine-unpaused';

/**
 * The VMI's Ready condition while its guest is paused, as upstream's reads: its pod's Ready, which
 * the kubelet turns false over the unpaused readiness gate, with the kubelet's reason and message.
 */
export const PAUSED_NOT_READY = {
  status: 'False',
  reason: 'ReadinessGatesNotReady',
  message: `the status of pod readiness gate "${UNPAUSED_READINESS_GATE}" is not "True", but False`,
} as const;

/** Whether the VMI reports its guest paused. */
export const vmiIsPaused = (vmi: VirtualMachineInstance) =>
  vmi.status?.conditions?.some((c) => c.type === 'Paused' && c.status === 'True') ?? false;

/** A VM's run strategy, with the deprecated `running` read as upstream reads it. */
export function runStrategyOf(vm: VirtualMachine): string {
  return vm.spec.runStrategy ?? (vm.spec.running ? 'Always' : 'Halted');
}

export const isFinalPhase = (phase: string | undefined) => phase === 'Succeeded' || phase === 'Failed';

/** The VMI a pod belongs to: its controller ownerReference of that kind. Labels alone can be forged by anyone who may create pods. */
export const vmiOwnerOf = (pod: V1Pod) => pod.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'VirtualMachineInstance');

export function ownedPods(vmi: VirtualMachineInstance, pods: readonly V1Pod[]): V1Pod[] {
  return pods.filter((p) => p.metadata?.ownerReferences?.some((o) => o.controller && o.uid === vmi.metadata.uid));
}

export const podCondition = (pod: V1Pod, type: string) => pod.status?.conditions?.find((c) => c.type === type);
export const podIsFinal = (pod: V1Pod) => isFinalPhase(pod.status?.phase);
/** A launcher pod up and running: what moves its VMI to Scheduled. */
export const podIsReady = (pod: V1Pod) => pod.status?.phase === 'Running' && podCondition(pod, 'Ready')?.status === 'True';

/** A timestamp as Kubernetes writes it in metadata and conditions: RFC 3339, whole seconds. */
export const apiTimestamp = (at: Date = new Date()) => at.toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The pod virt-controller runs only so that WaitForFirstConsumer claims get bound where the VMI
 * will run. It carries the launcher's labels and owner, yet it is never the VMI's launcher pod.
 */
export const isEphemeralProvisioningPod = (pod: V1Pod) => pod.metadata?.annotations?.[EPHEMERAL_PROVISIONING_ANNOTATION] === 'true';

/** The VMI's launcher pods: those it controls, less the temporary ones that only bind its claims. */
export const launcherPodsOf = (vmi: VirtualMachineInstance, pods: readonly V1Pod[]) =>
  ownedPods(vmi, pods).filter((p) => !isEphemeralProvisioningPod(p));

/** The PVC a volume's data is on, as upstream names it: a DataVolume's claim has the DataVolume's name. */
export function claimNameOf(volume: Volume): string | undefined {
  return volume.dataVolume?.name ?? volume.persistentVolumeClaim?.claimName ?? volume.memoryDump?.claimName;
}

/** The owner reference of what a VM controls (its VMI, DataVolumes, captured revisions). */
export const vmControllerRef = (vm: VirtualMachine) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  name: vm.metadata.name!,
  uid: vm.metadata.uid!,
  controller: true,
  blockOwnerDeletion: true,
});
