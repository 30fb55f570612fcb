// The VM lifecycle subresources (start, stop, restart), as upstream answers
// them: each obeys the VM's runStrategy, refusing with 409 and upstream's
// message what it does not allow, and otherwise turns into a patch of the
// VM's spec (runStrategy) or of its status (stateChangeRequests) that
// virt-controller then carries out. Pure: ./server.ts fetches and patches.
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api/types.ts';
import { isFinalPhase, runStrategyOf, vmiIsPaused } from '../contract/vmi.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';

type StateChangeRequest = NonNullable<VirtualMachineStatus['stateChangeRequests']>[number];

export const VM_NOT_RUNNING = 'VM is not running';

export interface LifecycleError {
  code: number;
  reason: 'Conflict' | 'BadRequest' | 'NotFound' | 'InternalError';
  message: string;
}

export interface LifecyclePlan {
  /** JSON patch of the VM (its spec). */
  vm?: JsonPatchOperation[];
  /** JSON patch of the VM's status subresource. */
  vmStatus?: JsonPatchOperation[];
  /** JSON patch of the VMI (its grace period). */
  vmi?: JsonPatchOperation[];
  /** Delete the launcher pods of the VMI of this UID at once (grace period 0), after the patches: a forced restart. */
  forceDeletePodsOf?: string;
}

export type LifecycleResult = { plan: LifecyclePlan } | { error: LifecycleError };

/** kube-apiserver's wording for a conflict on a named object (errors.NewConflict). */
export function conflict(name: string, cause: string): { error: LifecycleError } {
  return {
    error: { code: 409, reason: 'Conflict', message: `Operation cannot be fulfilled on virtualmachine.kubevirt.io "${name}": ${cause}` },
  };
}

const badRequest = (message: string): { error: LifecycleError } => ({ error: { code: 400, reason: 'BadRequest', message } });

/** A status patch adding requests, guarded by a test of the ones there now (upstream's getChangeRequestJson). */
function changeRequests(vm: VirtualMachine, changes: StateChangeRequest[]): JsonPatchOperation[] | { error: LifecycleError } {
  const status = vm.status ?? {};
  const ops: JsonPatchOperation[] = [];
  if (Object.keys(status).length === 0) {
    ops.push({ op: 'add', path: '/status', value: { stateChangeRequests: changes } });
  } else {
    const current = status.stateChangeRequests ?? [];
    ops.push({ op: 'test', path: '/status/stateChangeRequests', value: status.stateChangeRequests ?? null });
    if (current.length === 0) ops.push({ op: 'add', path: '/status/stateChangeRequests', value: changes });
    else if (changes.length === 1 && changes[0].action === 'Stop')
      ops.push({ op: 'replace', path: '/status/stateChangeRequests', value: changes });
    else return { error: { code: 500, reason: 'InternalError', message: 'unable to complete request: stop/start already underway' } };
  }
  if (status.startFailure) ops.push({ op: 'remove', path: '/status/startFailure' });
  return ops;
}

const withStatusPatch = (ops: JsonPatchOperation[] | { error: LifecycleError }, plan: LifecyclePlan = {}): LifecycleResult =>
  Array.isArray(ops) ? { plan: { ...plan, vmStatus: ops } } : ops;

/** Sets runStrategy (or the deprecated `running`, if that is what the VM uses). */
function runningPatch(vm: VirtualMachine, running: boolean): JsonPatchOperation[] {
  if (vm.spec.runStrategy !== undefined) {
    return [
      { op: 'test', path: '/spec/runStrategy', value: vm.spec.runStrategy },
      { op: 'replace', path: '/spec/runStrategy', value: running ? 'Always' : 'Halted' },
    ];
  }
  return [
    { op: 'test', path: '/spec/running', value: vm.spec.running ?? null },
    { op: vm.spec.running === undefined ? 'add' : 'replace', path: '/spec/running', value: running },
  ];
}

const active = (vmi: VirtualMachineInstance | undefined) =>
  vmi !== undefined && !isFinalPhase(vmi.status?.phase) && (vmi.status?.phase ?? '') !== '' && vmi.status?.phase !== 'Unknown';

export function planStart(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, options: { paused?: boolean }): LifecycleResult {
  const name = vm.metadata.name!;
  if (active(vmi)) return conflict(name, 'VM is already running');
  const data = options.paused ? { paused: 'true' } : undefined;
  const start: StateChangeRequest = { action: 'Start', ...(data ? { data } : {}) };
  const strategy = runStrategyOf(vm);
  switch (strategy) {
    case 'Halted':
      // A paused start goes through a request, which virt-controller honours by turning the VM Always.
      if (options.paused && vm.spec.template.spec?.startStrategy !== 'Paused') return withStatusPatch(changeRequests(vm, [start]));
      return { plan: { vm: runningPatch(vm, true) } };
    case 'RerunOnFailure':
    case 'Manual': {
      if (strategy === 'RerunOnFailure' && vmi?.status?.phase === 'Failed')
        return conflict(name, 'RerunOnFailure does not support starting VM from failed state');
      const restart =
        vmi !== undefined && (strategy === 'RerunOnFailure' ? vmi.status?.phase === 'Succeeded' : isFinalPhase(vmi.status?.phase));
      return withStatusPatch(changeRequests(vm, restart ? [{ action: 'Stop', uid: vmi!.metadata.uid }, start] : [start]));
    }
    default:
      return conflict(name, `${strategy} does not support manual start requests`);
  }
}

export function planStop(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, options: { gracePeriod?: number }): LifecycleResult {
  const name = vm.metadata.name!;
  const strategy = runStrategyOf(vm);
  const running = vmi !== undefined && !isFinalPhase(vmi.status?.phase);
  const plan: LifecyclePlan = {};
  const oldGrace = vmi?.spec.terminationGracePeriodSeconds;
  if (running && options.gracePeriod !== undefined) {
    plan.vmi = [
      { op: oldGrace === undefined ? 'add' : 'replace', path: '/spec/terminationGracePeriodSeconds', value: options.gracePeriod },
    ];
  }
  switch (strategy) {
    case 'Halted':
      if (!running) return conflict(name, VM_NOT_RUNNING);
      if (options.gracePeriod === undefined || (oldGrace !== undefined && options.gracePeriod >= oldGrace)) {
        return conflict(name, 'Halted only supports manual stop requests with a shorter graceperiod');
      }
      return withStatusPatch(changeRequests(vm, [{ action: 'Stop', uid: vmi!.metadata.uid }]), plan);
    case 'RerunOnFailure':
    case 'Manual':
      if (!running) return conflict(name, VM_NOT_RUNNING);
      return withStatusPatch(changeRequests(vm, [{ action: 'Stop', uid: vmi!.metadata.uid }]), plan);
    default:
      return { plan: { ...plan, vm: runningPatch(vm, false) } };
  }
}

export function planRestart(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  options: { gracePeriodSeconds?: number },
): LifecycleResult {
  const name = vm.metadata.name!;
  if (options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds > 0)
    return badRequest('For force restart, only gracePeriod=0 is supported for now');
  if (options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds < 0)
    return badRequest('gracePeriod has to be greater or equal to 0');
  const strategy = runStrategyOf(vm);
  if (strategy === 'Halted' || strategy === 'Once')
    return conflict(name, `RunStategy ${strategy} does not support manual restart requests`);
  if (!vmi) return conflict(name, `${VM_NOT_RUNNING}: Halted`);
  const plan: LifecyclePlan = {};
  // A forced restart shortens the guest's grace to the shortest safe one first.
  if (options.gracePeriodSeconds === 0) {
    plan.vmi = [
      {
        op: vmi.spec.terminationGracePeriodSeconds === undefined ? 'add' : 'replace',
        path: '/spec/terminationGracePeriodSeconds',
        value: 1,
      },
    ];
    // And, as upstream's force restart, its launcher pod goes at once: the old guest is not waited for.
    if (vmi.metadata.uid) plan.forceDeletePodsOf = vmi.metadata.uid;
  }
  return withStatusPatch(changeRequests(vm, [{ action: 'Stop', uid: vmi.metadata.uid }, { action: 'Start' }]), plan);
}

export type VmiAction = 'pause' | 'unpause' | 'softreboot' | 'reset' | 'freeze' | 'unfreeze';

export const vmiConflict = (name: string, cause: string): LifecycleError => ({
  code: 409,
  reason: 'Conflict',
  message: `Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "${name}": ${cause}`,
});

/** Whether a VMI action may go to its node, upstream's checks and messages; undefined when it may. */
export function checkVmiAction(vmi: VirtualMachineInstance, action: VmiAction): LifecycleError | undefined {
  const name = vmi.metadata.name!;
  const running = vmi.status?.phase === 'Running';
  const paused = vmiIsPaused(vmi);
  switch (action) {
    case 'pause':
      if (!running) return vmiConflict(name, VM_NOT_RUNNING);
      if (paused) return vmiConflict(name, 'VMI is already paused');
      return undefined;
    case 'unpause':
      if (!running) return vmiConflict(name, 'VMI is not running');
      if (!paused) return vmiConflict(name, 'VMI is not paused');
      return undefined;
    case 'softreboot': {
      if (!running) return vmiConflict(name, VM_NOT_RUNNING);
      if (paused) return vmiConflict(name, 'VMI is paused');
      const agent = vmi.status?.conditions?.some((c) => c.type === 'AgentConnected' && c.status === 'True');
      if (!agent && vmi.spec.domain.features?.acpi?.enabled === false)
        return vmiConflict(name, 'VMI neither have the agent connected nor the ACPI feature enabled');
      return undefined;
    }
    // Whether the guest has an agent to freeze with is the launcher's to find out, as upstream's.
    case 'freeze':
      return running ? undefined : vmiConflict(name, VM_NOT_RUNNING);
    case 'unfreeze':
      return running ? undefined : vmiConflict(name, 'VMI is not running');
    case 'reset':
      if (!running)
        return { code: 500, reason: 'InternalError', message: `Failed to reset non-running VMI with phase ${vmi.status?.phase ?? ''}` };
      return undefined;
  }
}

/**
 * What virt-api answers when virt-handler refused a relayed action: upstream's
 * InternalError around its handler client's "unexpected return code" error.
 */
export function handlerRefusal(status: number, statusText: string, body: string): LifecycleError {
  return {
    code: 500,
    reason: 'InternalError',
    message: `Internal error occurred: unexpected return code ${status} (${status} ${statusText}), message: ${body}`,
  };
}

/**
 * migrate: the VM's VMI must run and be live-migratable; one that cannot move gets a 409 carrying
 * its LiveMigratable condition's reason, as upstream answers.
 */
export function checkMigrate(name: string, vmi: VirtualMachineInstance): LifecycleError | undefined {
  if (vmi.status?.phase !== 'Running') return conflict(name, VM_NOT_RUNNING).error;
  const migratable = vmi.status.conditions?.find((c) => c.type === 'LiveMigratable');
  if (migratable?.status !== 'True') {
    return conflict(
      name,
      `Cannot migrate VMI, Reason: ${migratable?.reason ?? 'NotMigratable'}, Message: ${migratable?.message ?? 'the VMI does not report that it can be migrated'}`,
    ).error;
  }
  return undefined;
}
