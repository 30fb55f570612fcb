// The VM controller's decisions, from seeded objects (sample-controller style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planVm, printableStatus, vmiFinalizersAfterDeletion, VM_FINALIZER } from '../../src/controller/vm.ts';
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
    metadata: { name: owner.metadata.name, namespace: 'ns', uid: 'vmi-uid', ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner.metadata.name!, uid: 'vm-uid', controller: true }], ...extra },
    spec: owner.spec.template.spec!,
    status: { phase },
  };
}

test('Always creates the VMI from the template, named and owned as upstream', () => {
  const v = vm('Always');
  const plan = planVm(v, undefined);
  assert.equal(plan.createVmi?.metadata.name, 'vm-cirros');
  assert.deepEqual(plan.createVmi?.metadata.labels, { 'kubevirt.io/vm': 'vm-cirros' });
  assert.deepEqual(plan.createVmi?.metadata.ownerReferences, [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'vm-cirros', uid: 'vm-uid', controller: true, blockOwnerDeletion: true }]);
  assert.deepEqual(plan.createVmi?.spec, v.spec.template.spec);
  assert.equal(plan.status.printableStatus, 'Stopped');
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

test('printableStatus follows upstream\'s order for the states seen here', () => {
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

test('the VMI finalizer comes off only when the VMI is deleted and no launcher pod is left', () => {
  const v = vm('Always');
  const vmi = vmiOf(v, 'Running', { finalizers: ['kubevirt.io/foregroundDeleteVirtualMachine', 'other'] });
  assert.equal(vmiFinalizersAfterDeletion(vmi, 0), undefined);
  vmi.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
  assert.equal(vmiFinalizersAfterDeletion(vmi, 1), undefined);
  assert.deepEqual(vmiFinalizersAfterDeletion(vmi, 0), ['other']);
});
