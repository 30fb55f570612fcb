// The VM controller's decisions, from seeded objects (sample-controller style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  planVm,
  printableStatus,
  startBackoffSeconds,
  templateHash,
  TEMPLATE_HASH_ANNOTATION,
  VM_FINALIZER,
} from '../../src/controller/vm.ts';
import { example } from '../helpers/fixtures.ts';
import type { VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';

function vm(runStrategy: string, extra: Partial<VirtualMachine['metadata']> = {}): VirtualMachine {
  const v = example<VirtualMachine>('vm-cirros.yaml');
  v.metadata = { ...v.metadata, namespace: 'ns', uid: 'vm-uid', finalizers: [VM_FINALIZER], ...extra };
  v.spec.runStrategy = runStrategy;
  return v;
}
function vmiOf(owner: VirtualMachine, phase: string, extra: Partial<VirtualMachineInstance['metadata']> = {}): VirtualMachineInstance {
  return {
    metadata: {
      name: owner.metadata.name,
      namespace: 'ns',
      uid: 'vmi-uid',
      ownerReferences: [
        { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner.metadata.name!, uid: 'vm-uid', controller: true },
      ],
      ...extra,
    },
    spec: owner.spec.template.spec!,
    status: { phase },
  };
}

test('Always creates the VMI from the template, named and owned as upstream', () => {
  const v = vm('Always');
  const plan = planVm(v, undefined);
  assert.equal(plan.createVmi?.metadata.name, 'vm-cirros');
  assert.deepEqual(plan.createVmi?.metadata.labels, { 'kubevirt.io/vm': 'vm-cirros' });
  assert.deepEqual(plan.createVmi?.metadata.ownerReferences, [
    { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'vm-cirros', uid: 'vm-uid', controller: true, blockOwnerDeletion: true },
  ]);
  assert.deepEqual(plan.createVmi?.spec, v.spec.template.spec);
  assert.equal(plan.status.printableStatus, 'Starting');
  assert.equal(plan.deleteVmi, undefined);
});

test('Always replaces a finished VMI; Halted deletes a running one', () => {
  const v = vm('Always');
  assert.equal(planVm(v, vmiOf(v, 'Succeeded')).deleteVmi, true);
  assert.equal(planVm(v, vmiOf(v, 'Running')).deleteVmi, undefined);
  const halted = vm('Halted');
  assert.equal(planVm(halted, vmiOf(halted, 'Running')).deleteVmi, true);
  assert.equal(planVm(halted, vmiOf(halted, 'Running', { deletionTimestamp: '2026-01-01T00:00:00Z' })).deleteVmi, undefined);
  assert.equal(planVm(halted, undefined).createVmi, undefined);
});

test('the deprecated running field maps to Always or Halted', () => {
  const v = vm('Always');
  delete v.spec.runStrategy;
  v.spec.running = true;
  assert.ok(planVm(v, undefined).createVmi);
  v.spec.running = false;
  assert.equal(planVm(v, undefined).createVmi, undefined);
});

test('a VMI the VM does not own is never taken over', () => {
  const v = vm('Halted');
  const stranger = vmiOf(v, 'Running', { ownerReferences: [] });
  assert.equal(planVm(v, stranger).deleteVmi, undefined);
});

test('the finalizer: added to a new VM, removed once its VMI is gone', () => {
  const fresh = vm('Halted', { finalizers: undefined });
  assert.deepEqual(planVm(fresh, undefined).finalizers, [VM_FINALIZER]);
  const deleting = vm('Always', { deletionTimestamp: '2026-01-01T00:00:00Z' });
  assert.equal(planVm(deleting, vmiOf(deleting, 'Running')).deleteVmi, true);
  assert.deepEqual(planVm(deleting, undefined).finalizers, []);
});

test("printableStatus follows upstream's order for the states seen here", () => {
  const v = vm('Always');
  assert.equal(printableStatus(vm('Always', { deletionTimestamp: 'x' }), vmiOf(v, 'Running')), 'Terminating');
  assert.equal(printableStatus(v, vmiOf(v, 'Running', { deletionTimestamp: 'x' })), 'Stopping');
  const paused = vmiOf(v, 'Running');
  paused.status!.conditions = [{ type: 'Paused', status: 'True' }];
  assert.equal(printableStatus(v, paused), 'Paused');
  assert.equal(printableStatus(v, vmiOf(v, 'Running')), 'Running');
  assert.equal(printableStatus(v, vmiOf(v, 'Scheduling')), 'Starting');
  assert.equal(printableStatus(v, vmiOf(v, 'Failed')), 'Stopped');
  assert.equal(printableStatus(v, undefined), 'Stopped');
});

const clock = (iso = '2026-11-22T10:00:00Z') => ({ now: new Date(iso), jitter: 0 });

test('RerunOnFailure: a failed VMI is replaced after a start request; one that succeeded stays stopped', () => {
  const v = vm('RerunOnFailure');
  v.status = { runStrategy: 'RerunOnFailure', created: true };
  const failed = vmiOf(v, 'Failed', { uid: 'vmi-1' });
  failed.status!.phaseTransitionTimestamps = [{ phase: 'Running', phaseTransitionTimestamp: '2026-11-22T09:00:00Z' }];
  const onFailure = planVm(v, failed, clock());
  assert.equal(onFailure.deleteVmi, true);
  assert.deepEqual(onFailure.status.stateChangeRequests, [{ action: 'Start' }]);
  const afterDelete = planVm({ ...v, status: onFailure.status }, undefined, clock());
  assert.ok(afterDelete.createVmi, 'the start request starts it again');

  const ended = vmiOf(v, 'Succeeded');
  ended.status!.phaseTransitionTimestamps = failed.status!.phaseTransitionTimestamps;
  const succeeded = planVm(v, ended, clock());
  assert.equal(succeeded.deleteVmi, true);
  assert.equal(succeeded.status.stateChangeRequests, undefined);
  assert.equal(planVm({ ...v, status: succeeded.status }, undefined, clock()).createVmi, undefined);
  assert.equal(planVm({ ...v, status: succeeded.status }, undefined, clock()).status.printableStatus, 'Stopped');
  // A fresh VM under RerunOnFailure starts once.
  assert.ok(planVm(vm('RerunOnFailure'), undefined, clock()).createVmi);
});

test('Manual starts and stops only on request; Halted with a start request turns Always', () => {
  const v = vm('Manual');
  assert.equal(planVm(v, undefined, clock()).createVmi, undefined);
  v.status = { stateChangeRequests: [{ action: 'Start', data: { paused: 'true' } }] };
  const started = planVm(v, undefined, clock());
  assert.equal(started.createVmi?.spec.startStrategy, 'Paused');
  const running = vmiOf(v, 'Running');
  assert.equal(planVm(v, running, clock()).status.stateChangeRequests, undefined, 'a start request is dropped once its VMI runs');
  v.status = { stateChangeRequests: [{ action: 'Stop', uid: 'vmi-uid' }] };
  assert.equal(planVm(v, running, clock()).deleteVmi, true);
  assert.equal(planVm(v, undefined, clock()).status.stateChangeRequests, undefined, 'the stop request goes once the VMI is gone');
  const halted = vm('Halted');
  halted.status = { stateChangeRequests: [{ action: 'Start' }] };
  assert.equal(planVm(halted, undefined, clock()).setRunStrategy, 'Always');
});

test('restart under Always: a stop request for the VMI deletes it, then the start request creates the next', () => {
  const v = vm('Always');
  v.status = { runStrategy: 'Always', stateChangeRequests: [{ action: 'Stop', uid: 'vmi-uid' }, { action: 'Start' }] };
  assert.equal(planVm(v, vmiOf(v, 'Running'), clock()).deleteVmi, true);
  const gone = planVm(v, undefined, clock());
  assert.deepEqual(gone.status.stateChangeRequests, [{ action: 'Start' }]);
  assert.ok(gone.createVmi);
});

test('Once starts one VMI and leaves what it ended as', () => {
  const v = vm('Once');
  const first = planVm(v, undefined, clock());
  assert.ok(first.createVmi);
  assert.equal(first.status.runStrategy, 'Once');
  v.status = first.status;
  assert.equal(planVm(v, vmiOf(v, 'Succeeded'), clock()).deleteVmi, undefined);
  assert.equal(planVm(v, undefined, clock()).createVmi, undefined);
});

test('crash-loop backoff: a VMI failing before it ever ran delays the next start, and shows CrashLoopBackOff', () => {
  const v = vm('Always');
  const early = planVm(v, vmiOf(v, 'Failed', { uid: 'vmi-1' }), clock());
  assert.equal(early.status.startFailure?.consecutiveFailCount, 1);
  assert.equal(early.status.startFailure?.retryAfterTimestamp, '2026-11-22T10:00:10Z');
  const waiting = planVm({ ...v, status: early.status }, undefined, clock('2026-11-22T10:00:03Z'));
  assert.equal(waiting.createVmi, undefined);
  assert.equal(waiting.requeueAfterMs, 7000);
  assert.equal(printableStatus({ ...v, status: early.status }, undefined), 'CrashLoopBackOff');
  // While the backoff runs, the VM says so (upstream's "should backoff attempting to create a new VMI"), not Starting.
  assert.equal(waiting.status.printableStatus, 'CrashLoopBackOff');
  assert.ok(planVm({ ...v, status: early.status }, undefined, clock('2026-11-22T10:00:11Z')).createVmi);
  const second = planVm({ ...v, status: early.status }, vmiOf(v, 'Failed', { uid: 'vmi-2' }), clock());
  assert.equal(second.status.startFailure?.consecutiveFailCount, 2);
  assert.deepEqual(
    [1, 2, 3, 5, 10].map((n) => startBackoffSeconds(n, 0)),
    [10, 40, 90, 250, 300],
  );
  const ran = vmiOf(v, 'Running');
  ran.status!.phaseTransitionTimestamps = [{ phase: 'Running', phaseTransitionTimestamp: '2026-11-22T10:00:00Z' }];
  assert.equal(planVm({ ...v, status: early.status }, ran, clock()).status.startFailure, undefined, 'a VMI that ran clears the count');
});

test('RestartRequired appears when the template changes under a running VMI, but not for live-updatable fields', () => {
  const v = vm('Always');
  const vmi = vmiOf(v, 'Running', { annotations: { [TEMPLATE_HASH_ANNOTATION]: templateHash(v) } });
  assert.equal(
    planVm(v, vmi, clock()).status.conditions?.find((c) => c.type === 'RestartRequired'),
    undefined,
  );
  const live = structuredClone(v);
  live.spec.template.spec!.nodeSelector = { disk: 'ssd' };
  assert.equal(
    planVm(live, vmi, clock()).status.conditions?.find((c) => c.type === 'RestartRequired'),
    undefined,
  );
  const changed = structuredClone(v);
  changed.spec.template.spec!.domain.devices.disks = [];
  assert.equal(planVm(changed, vmi, clock()).status.conditions?.find((c) => c.type === 'RestartRequired')?.status, 'True');
});

test('printableStatus mirrors pod trouble from the VMI conditions, in upstream order', () => {
  const v = vm('Always');
  const unschedulable = vmiOf(v, 'Scheduling');
  unschedulable.status!.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }];
  assert.equal(printableStatus(v, unschedulable), 'ErrorUnschedulable');
  for (const reason of ['ErrImagePull', 'ImagePullBackOff']) {
    const pulling = vmiOf(v, 'Scheduling');
    pulling.status!.conditions = [{ type: 'Synchronized', status: 'False', reason }];
    assert.equal(printableStatus(v, pulling), reason);
  }
  assert.equal(printableStatus(vm('Halted'), vmiOf(v, 'Running')), 'Stopping');
  assert.equal(printableStatus(v, undefined, true), 'Starting');
});
