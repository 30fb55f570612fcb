// virt-controller in the cluster: a VM's runStrategy decides whether its VMI
// exists; the VMI is named and owned as upstream; the VM's status says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-vm';
const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const runStrategy = (value: string) => kubectl(['patch', 'vm', 'vm-cirros', '-n', NS, '--type', 'merge', '-p', JSON.stringify({ spec: { runStrategy: value } })]);

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test('a Halted VM gets the finalizer and reports Stopped', async () => {
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(example('vm-cirros.yaml')));
  const vm = await eventually('the VM status', 30, () => {
    const v = get('vm', 'vm-cirros');
    return v?.status?.printableStatus === 'Stopped' ? v : undefined;
  });
  assert.deepEqual(vm.metadata.finalizers, ['kubevirt.io/virtualMachineControllerFinalize']);
  assert.equal(vm.status.created, false);
  assert.equal(get('vmi', 'vm-cirros'), undefined);
});

let firstUid = '';
test('Halted → Always yields a VMI named after the VM and owned by it', async () => {
  runStrategy('Always');
  const vmi = await eventually('the VMI', 30, () => get('vmi', 'vm-cirros'));
  const vm = get('vm', 'vm-cirros');
  assert.deepEqual(vmi.metadata.ownerReferences, [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'vm-cirros', uid: vm.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.equal(vmi.metadata.labels['kubevirt.io/vm'], 'vm-cirros');
  assert.equal(vmi.spec.domain.firmware.uuid, vm.spec.template.spec.domain.firmware.uuid);
  firstUid = vmi.metadata.uid;
  await eventually('the VM to report Starting', 30, () => get('vm', 'vm-cirros')?.status?.printableStatus === 'Starting');
});

test('Always → Halted removes the VMI; Always again makes a new one', async () => {
  runStrategy('Halted');
  await eventually('the VMI to be gone', 30, () => get('vmi', 'vm-cirros') === undefined);
  await eventually('the VM to report Stopped', 30, () => get('vm', 'vm-cirros')?.status?.printableStatus === 'Stopped');
  runStrategy('Always');
  const vmi = await eventually('a new VMI', 30, () => get('vmi', 'vm-cirros'));
  assert.notEqual(vmi.metadata.uid, firstUid);
});

test('deleting the VM removes its VMI, then the VM', async () => {
  kubectl(['delete', 'vm', 'vm-cirros', '-n', NS, '--wait=false']);
  await eventually('the VMI and VM to be gone', 60, () => get('vmi', 'vm-cirros') === undefined && get('vm', 'vm-cirros') === undefined);
});
