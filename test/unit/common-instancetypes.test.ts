// The catalogue virt-operator installs: a sample of upstream's published
// values (kubevirt/common-instancetypes v1.7.0), pinned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonClusterInstancetypes, commonClusterPreferences } from '../../src/operator/common-instancetypes.ts';

type Spec = Record<string, any>;
const instancetypes = new Map(
  commonClusterInstancetypes().map((o) => [o.metadata.name, o as unknown as { metadata: { labels: Record<string, string> }; spec: Spec }]),
);
const preferences = new Map(
  commonClusterPreferences().map((o) => [o.metadata.name, o as unknown as { metadata: { labels: Record<string, string> }; spec: Spec }]),
);

test('the instance type series and their sizes, as upstream publishes them', () => {
  const size = (name: string) => {
    const spec = instancetypes.get(name)?.spec;
    return spec && [spec.cpu.guest, spec.memory.guest];
  };
  assert.deepEqual(size('u1.nano'), [1, '512Mi']);
  assert.deepEqual(size('u1.medium'), [1, '4Gi']);
  assert.deepEqual(size('u1.2xmedium'), [2, '4Gi']);
  assert.deepEqual(size('u1.8xlarge'), [32, '128Gi']);
  assert.deepEqual(size('o1.large'), [2, '8Gi']);
  assert.equal(instancetypes.get('o1.large')?.spec.memory.overcommitPercent, 50);
  assert.deepEqual(size('cx1.large'), [2, '4Gi']);
  assert.deepEqual(size('m1.xlarge'), [4, '32Gi']);
  assert.deepEqual(size('n1.medium'), [4, '4Gi']);
  assert.equal(instancetypes.has('o1.2xmedium'), false);
  assert.equal(instancetypes.size, 65);
});

test('series traits: dedicated CPUs, NUMA and hugepages where upstream has them, with 1Gi variants', () => {
  assert.deepEqual(instancetypes.get('cx1.large')?.spec, {
    cpu: { guest: 2, dedicatedCPUPlacement: true, isolateEmulatorThread: true, maxSockets: 2, numa: { guestMappingPassthrough: {} } },
    memory: { guest: '4Gi', hugepages: { pageSize: '2Mi' } },
    ioThreadsPolicy: 'auto',
  });
  assert.equal(instancetypes.get('cx1.large1gi')?.spec.memory.hugepages.pageSize, '1Gi');
  assert.equal(instancetypes.get('m1.large1gi')?.spec.memory.hugepages.pageSize, '1Gi');
  assert.deepEqual(instancetypes.get('n1.large')?.spec.annotations, {
    'cpu-load-balancing.crio.io': 'disable',
    'cpu-quota.crio.io': 'disable',
    'irq-load-balancing.crio.io': 'disable',
  });
  assert.deepEqual(instancetypes.get('u1.medium')?.metadata.labels, {
    'instancetype.kubevirt.io/class': 'universal',
    'instancetype.kubevirt.io/cpu': '1',
    'instancetype.kubevirt.io/memory': '4Gi',
    'instancetype.kubevirt.io/size': 'medium',
    'instancetype.kubevirt.io/version': '1',
    'instancetype.kubevirt.io/vendor': 'kubevirt.io',
    'instancetype.kubevirt.io/common-instancetypes-version': 'v1.7.0',
  });
});

test('preferences for common guests', () => {
  for (const name of [
    'alpine',
    'cirros',
    'fedora',
    'ubuntu',
    'centos.stream9',
    'centos.stream10',
    'rhel.9',
    'rhel.10',
    'windows.11',
    'windows.2k22.virtio',
    'debian',
    'linux',
  ]) {
    assert.ok(preferences.has(name), name);
  }
  assert.deepEqual(preferences.get('cirros')?.spec, {
    annotations: { 'vm.kubevirt.io/os': 'linux' },
    devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredRng: {} },
    requirements: { cpu: { guest: 1 }, memory: { guest: '256Mi' } },
  });
  const fedora = preferences.get('fedora')!.spec;
  assert.deepEqual(fedora.firmware, { preferredEfi: { secureBoot: true } });
  assert.deepEqual(fedora.requirements, { cpu: { guest: 1 }, memory: { guest: '2Gi' }, architecture: 'amd64' });
  const windows = preferences.get('windows.11')!.spec;
  assert.equal(windows.devices.preferredDiskBus, 'sata');
  assert.deepEqual(windows.devices.preferredTPM, { persistent: true });
  assert.equal(windows.preferredTerminationGracePeriodSeconds, 3600);
  assert.deepEqual(windows.requirements, { cpu: { guest: 2 }, memory: { guest: '4Gi' } });
  assert.equal(preferences.get('windows.11.virtio')!.spec.devices.preferredDiskBus, 'virtio');
  assert.equal(preferences.get('rhel.9.dpdk')!.spec.cpu.spreadOptions.ratio, 4);
});
