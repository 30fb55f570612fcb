// The VM controller's decisions, as pure functions: from a VM and its VMI (if
// any) to the changes to make. The controller in ./main.ts carries them out.
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api/types.ts';
import { VMI_FINALIZER } from '../api/constants.ts';

export const VM_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize';

export interface VmPlan {
  finalizers?: string[];
  createVmi?: VirtualMachineInstance;
  deleteVmi?: boolean;
  status: VirtualMachineStatus;
}

const isFinal = (vmi: VirtualMachineInstance) => vmi.status?.phase === 'Succeeded' || vmi.status?.phase === 'Failed';
const condition = (vmi: VirtualMachineInstance | undefined, type: string) => vmi?.status?.conditions?.find((c) => c.type === type)?.status === 'True';

export function runStrategyOf(vm: VirtualMachine): string {
  return vm.spec.runStrategy ?? (vm.spec.running ? 'Always' : 'Halted');
}

/** The VMI a VM runs: its template, named after it and owned by it (upstream's SetupVMIFromVM). */
export function vmiFromVm(vm: VirtualMachine): VirtualMachineInstance {
  const template = vm.spec.template;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: vm.metadata.name,
      namespace: vm.metadata.namespace,
      ...(template.metadata?.labels ? { labels: template.metadata.labels } : {}),
      ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
      ownerReferences: [{
        apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: vm.metadata.name!, uid: vm.metadata.uid!, controller: true, blockOwnerDeletion: true,
      }],
    },
    spec: structuredClone(template.spec!),
  };
}

/** Upstream's printableStatus, for the states this controller can observe. */
export function printableStatus(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): string {
  if (vm.metadata.deletionTimestamp) return 'Terminating';
  if (vmi?.metadata.deletionTimestamp) return 'Stopping';
  if (vmi && vmi.status?.phase === 'Running') return condition(vmi, 'Paused') ? 'Paused' : 'Running';
  if (vmi && !isFinal(vmi)) return 'Starting';
  return 'Stopped';
}

/**
 * What to do for a VM. Always and Halted (and the deprecated `running`) are
 * carried out; the other run strategies are reported but not yet acted on.
 */
export function planVm(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): VmPlan {
  const plan: VmPlan = {
    status: {
      ...vm.status,
      created: vmi !== undefined,
      ready: condition(vmi, 'Ready'),
      printableStatus: printableStatus(vm, vmi),
      runStrategy: runStrategyOf(vm),
    },
  };
  const finalizers = vm.metadata.finalizers ?? [];
  const owned = vmi && vmi.metadata.ownerReferences?.some((o) => o.controller && o.uid === vm.metadata.uid);
  if (vm.metadata.deletionTimestamp) {
    if (vmi && owned) plan.deleteVmi = !vmi.metadata.deletionTimestamp;
    else if (finalizers.includes(VM_FINALIZER)) plan.finalizers = finalizers.filter((f) => f !== VM_FINALIZER);
    return plan;
  }
  if (!finalizers.includes(VM_FINALIZER)) plan.finalizers = [...finalizers, VM_FINALIZER];
  if (vmi && !owned) return plan; // a VMI of the same name that this VM does not own is left alone
  switch (plan.status.runStrategy) {
    case 'Always':
      if (!vmi) plan.createVmi = vmiFromVm(vm);
      else if (isFinal(vmi) && !vmi.metadata.deletionTimestamp) plan.deleteVmi = true;
      break;
    case 'Halted':
      if (vmi && !vmi.metadata.deletionTimestamp) plan.deleteVmi = true;
      break;
  }
  return plan;
}

/**
 * The VMI's finalizer comes off once no launcher pod of it is left. Until
 * launcher pods exist (the VMI → pod controller), none ever is.
 */
export function vmiFinalizersAfterDeletion(vmi: VirtualMachineInstance, launcherPods: number): string[] | undefined {
  if (!vmi.metadata.deletionTimestamp || launcherPods > 0) return undefined;
  const finalizers = vmi.metadata.finalizers ?? [];
  return finalizers.includes(VMI_FINALIZER) ? finalizers.filter((f) => f !== VMI_FINALIZER) : undefined;
}
