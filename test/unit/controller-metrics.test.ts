// virt-controller's metrics: kubevirt_vmi_info and kubevirt_vm_info from the caches at
// each scrape (gone with their objects), the phase transition histograms from the VMI
// informer's updates, and the migration gauges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import { controllerMetrics, phaseTransitions, vmInfoLabels, vmiInfoLabels } from '../../src/controller/metrics.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';

const vmi = (phase: string, stamps: Record<string, string> = {}): VirtualMachineInstance =>
  ({
    metadata: {
      name: 'vm1',
      namespace: 'ns',
      uid: 'u1',
      creationTimestamp: '2025-01-01T00:00:00Z',
      annotations: { 'vm.kubevirt.io/os': 'linux', 'kubevirt.io/cluster-instancetype-name': 'u1.small' },
    },
    spec: { domain: { devices: {} }, evictionStrategy: 'None' },
    status: {
      phase,
      nodeName: 'node01',
      guestOSInfo: { name: 'Debian', kernelRelease: '6.1', machine: 'x86_64', versionId: '12' },
      machine: { type: 'q35' },
      phaseTransitionTimestamps: Object.entries(stamps).map(([p, at]) => ({ phase: p, phaseTransitionTimestamp: at })),
    },
  }) as unknown as VirtualMachineInstance;

const pod = {
  metadata: { name: 'virt-launcher-vm1-abcde', namespace: 'ns', labels: { 'kubevirt.io/created-by': 'u1' } },
  spec: { nodeName: 'node01', containers: [] },
  status: { phase: 'Running' },
} as V1Pod;

test('kubevirt_vmi_info labels as upstream: lower-case phase, annotations, guest OS, the running launcher pod', () => {
  assert.deepEqual(vmiInfoLabels(vmi('Running'), [pod]), {
    node: 'node01',
    namespace: 'ns',
    name: 'vm1',
    phase: 'running',
    os: 'linux',
    workload: '',
    flavor: '',
    instance_type: 'u1.small',
    preference: '',
    guest_os_kernel_release: '6.1',
    guest_os_machine: 'q35',
    guest_os_arch: 'x86_64',
    guest_os_name: 'Debian',
    guest_os_version_id: '12',
    evictable: 'false',
    outdated: 'false',
    vmi_pod: 'virt-launcher-vm1-abcde',
  });
});

test('kubevirt_vm_info labels: status lower-cased and its group', () => {
  const vm = {
    metadata: { name: 'vm1', namespace: 'ns' },
    spec: { instancetype: { name: 'u1.small' }, template: { spec: { domain: { machine: { type: 'q35' } } } } },
    status: { printableStatus: 'ErrorUnschedulable' },
  } as unknown as VirtualMachine;
  const labels = vmInfoLabels(vm);
  assert.equal(labels.status, 'errorunschedulable');
  assert.equal(labels.status_group, 'error');
  assert.equal(labels.machine_type, 'q35');
  assert.equal(labels.instance_type, 'u1.small');
});

test('phase transitions: between phases and from creation, only on a change with timestamps', () => {
  const running = vmi('Running', { Scheduled: '2025-01-01T00:00:10Z', Running: '2025-01-01T00:00:14Z' });
  assert.deepEqual(phaseTransitions('Scheduled', running), {
    between: { phase: 'Running', last_phase: 'Scheduled', seconds: 4 },
    fromCreation: { phase: 'Running', seconds: 14 },
  });
  assert.deepEqual(phaseTransitions('Running', running), {});
  assert.deepEqual(phaseTransitions(undefined, running), {});
});

test('a scrape serves every cached VMI and VM afresh; a deleted VMI has no series; transitions are observed', async () => {
  const registry = new Registry();
  const vmis = new SeededInformer<VirtualMachineInstance>();
  const vms = new SeededInformer<VirtualMachine>([
    { metadata: { name: 'vm1', namespace: 'ns' }, spec: {}, status: { printableStatus: 'Running' } } as unknown as VirtualMachine,
  ]);
  controllerMetrics(registry, { vms, vmis, pods: new SeededInformer<V1Pod>([pod]) });
  vmis.upsert(vmi('Scheduled', { Scheduled: '2025-01-01T00:00:10Z' }));
  vmis.upsert(vmi('Running', { Scheduled: '2025-01-01T00:00:10Z', Running: '2025-01-01T00:00:13Z' }));
  let text = await registry.metrics();
  assert.match(text, /kubevirt_vmi_info\{node="node01",namespace="ns",name="vm1",phase="running"[^}]*\} 1/);
  assert.match(text, /kubevirt_vm_info\{name="vm1",namespace="ns",[^}]*status="running",status_group="running"\} 1/);
  assert.match(text, /kubevirt_vmi_phase_transition_time_seconds_bucket\{le="5",phase="Running",last_phase="Scheduled"\} 1/);
  assert.match(text, /kubevirt_vmi_phase_transition_time_from_creation_seconds_count\{phase="Running"\} 1/);
  for (const phase of ['pending', 'scheduling', 'running', 'unset'])
    assert.match(text, new RegExp(`kubevirt_vmi_migrations_in_${phase}_phase 0`));
  vmis.remove(vmi('Running'));
  text = await registry.metrics();
  assert.doesNotMatch(text, /kubevirt_vmi_info\{/);
});
