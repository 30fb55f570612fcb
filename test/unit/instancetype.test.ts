// expand-spec: an instance type and a preference written into a VM's template.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachine, VirtualMachineInstancetype, VirtualMachinePreference } from '../../src/api/types.ts';
import { cpuTopology, expandVm } from '../../src/api/instancetype.ts';
import { example } from '../helpers/fixtures.ts';

test('vCPUs are laid out as the preference prefers: sockets by default, cores, threads or spread', () => {
  assert.deepEqual(cpuTopology(1), { sockets: 1, cores: 1, threads: 1 });
  assert.deepEqual(cpuTopology(4), { sockets: 4, cores: 1, threads: 1 });
  assert.deepEqual(cpuTopology(4, { cpu: { preferredCPUTopology: 'preferCores' } }), { sockets: 1, cores: 4, threads: 1 });
  assert.deepEqual(cpuTopology(4, { cpu: { preferredCPUTopology: 'threads' } }), { sockets: 1, cores: 1, threads: 4 });
  assert.deepEqual(cpuTopology(8, { cpu: { preferredCPUTopology: 'spread' } }), { sockets: 4, cores: 2, threads: 1 });
  assert.deepEqual(
    cpuTopology(8, { cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCoresThreads', ratio: 2 } } }),
    { sockets: 2, cores: 2, threads: 2 },
  );
});

test('the instance type sets CPU and memory, the preference fills unset buses and models, the matchers go', () => {
  const vm = example<VirtualMachine>('vm-cirros-csmall.yaml');
  delete vm.spec.template!.spec!.domain.memory;
  vm.spec.preference = { name: 'virtio', kind: 'VirtualMachinePreference' };
  const csmall = example<VirtualMachineInstancetype>('csmall.yaml');
  const virtio = example<VirtualMachinePreference>('virtio.yaml');
  const result = expandVm(vm, { ...csmall.spec, cpu: { guest: 2 } }, virtio.spec);
  assert.ok('vm' in result);
  const spec = result.vm.spec.template!.spec!;
  assert.deepEqual(spec.domain.cpu, { sockets: 2, cores: 1, threads: 1 });
  assert.deepEqual(spec.domain.memory, { guest: '128Mi' });
  assert.deepEqual(
    spec.domain.devices?.disks?.map((d) => d.disk?.bus),
    ['virtio', 'virtio'],
  );
  assert.equal(result.vm.spec.instancetype, undefined);
  assert.equal(result.vm.spec.preference, undefined);
  assert.ok(vm.spec.instancetype, 'the input is left as it was');
});

test("a template that sets what the instance type sets conflicts, with upstream's message; a VM without matchers is unchanged", () => {
  const vm = example<VirtualMachine>('vm-cirros-csmall.yaml');
  const result = expandVm(vm, example<VirtualMachineInstancetype>('csmall.yaml').spec);
  assert.ok('causes' in result);
  assert.equal(result.causes[0].message, 'VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type');
  const plain = example<VirtualMachine>('vm-cirros.yaml');
  assert.deepEqual(expandVm(plain), { vm: plain });
});
