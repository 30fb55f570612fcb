// Every upstream example is parsed, defaulted and validated as upstream's webhooks would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { example, exampleNames, fixedContext, defaultConfig, REJECTED_BY_UPSTREAM } from '../helpers/fixtures.ts';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import { defaultVm } from '../../src/api/defaults/vm.ts';
import {
  validateVmiCreate,
  validateVm,
  validateReplicaSet,
  validatePool,
  validateInstancetype,
  validatePreference,
  validateMigrationCreate,
  validateMigrationPolicy,
} from '../../src/api/validation/objects.ts';
import type { StatusCause } from '../../src/api/causes.ts';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceReplicaSet,
  VirtualMachinePool,
  VirtualMachineInstancetype,
} from '../../src/api/types.ts';

const user = { isKubeVirtServiceAccount: false };

/** Defaults and validates one example, whatever its kind. */
function admit(name: string, config = defaultConfig()): { causes: StatusCause[]; defaulted: unknown } {
  const obj = example<{ kind: string }>(name);
  switch (obj.kind) {
    case 'VirtualMachineInstance': {
      const defaulted = defaultNewVmi(obj as unknown as VirtualMachineInstance, config, fixedContext());
      return { defaulted, causes: validateVmiCreate(defaulted, config, user) };
    }
    case 'VirtualMachine': {
      const defaulted = defaultVm(obj as unknown as VirtualMachine, config, fixedContext(), 'CREATE');
      const ref = defaulted.spec.instancetype;
      const instancetype = ref?.name ? instancetypeNamed(ref.name) : undefined;
      return { defaulted, causes: validateVm(defaulted, config, user, instancetype) };
    }
    case 'VirtualMachineInstanceReplicaSet':
      return { defaulted: obj, causes: validateReplicaSet(obj as unknown as VirtualMachineInstanceReplicaSet, config) };
    case 'VirtualMachinePool':
      return { defaulted: obj, causes: validatePool(obj as unknown as VirtualMachinePool, config, user) };
    case 'VirtualMachineInstancetype':
    case 'VirtualMachineClusterInstancetype':
      return { defaulted: obj, causes: validateInstancetype(obj as never) };
    case 'VirtualMachinePreference':
    case 'VirtualMachineClusterPreference':
      return { defaulted: obj, causes: validatePreference(obj as never) };
    case 'VirtualMachineInstanceMigration':
      return { defaulted: obj, causes: validateMigrationCreate(obj as never, config, user) };
    case 'MigrationPolicy':
      return { defaulted: obj, causes: validateMigrationPolicy(obj as never) };
    default:
      throw new Error(`no admission for kind ${obj.kind} (${name})`);
  }
}

function instancetypeNamed(name: string) {
  const file = exampleNames().find((f) => example<{ metadata: { name: string } }>(f).metadata.name === name);
  return file ? example<VirtualMachineInstancetype>(file).spec : undefined;
}

test('there are upstream examples to check', () => {
  assert.ok(exampleNames().length >= 20, `found ${exampleNames().length}`);
});

for (const name of exampleNames()) {
  test(`example ${name} is admitted as upstream admits it`, () => {
    const { causes } = admit(name);
    const expected = REJECTED_BY_UPSTREAM[name];
    if (expected)
      assert.deepEqual(
        causes.map((c) => ({ field: c.field, message: c.message })),
        [expected],
      );
    else assert.deepEqual(causes, []);
  });
}

test('vmi-host-disk is admitted once the HostDisk gate is on', () => {
  const config = new ClusterConfig({ developerConfiguration: { featureGates: ['HostDisk'] } });
  assert.deepEqual(admit('vmi-host-disk.yaml', config).causes, []);
});

test('vmi-ephemeral gets exactly upstream defaults', () => {
  const { defaulted } = admit('vmi-ephemeral.yaml');
  assert.deepEqual(defaulted, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      labels: { special: 'vmi-ephemeral' },
      name: 'vmi-ephemeral',
      annotations: { 'kubevirt.io/pci-topology-version': 'v3' },
      finalizers: ['kubevirt.io/foregroundDeleteVirtualMachine'],
    },
    spec: {
      architecture: 'amd64',
      domain: {
        cpu: { cores: 1, maxSockets: 4, model: 'host-model', sockets: 1, threads: 1 },
        devices: {
          disks: [{ disk: { bus: 'virtio' }, name: 'containerdisk' }],
          interfaces: [{ name: 'default', bridge: {} }],
        },
        features: { acpi: { enabled: true } },
        firmware: { uuid: '00000000-0000-4000-8000-000000000001' },
        machine: { type: 'q35' },
        memory: { guest: '128Mi' },
        resources: {},
      },
      networks: [{ name: 'default', pod: {} }],
      terminationGracePeriodSeconds: 0,
      volumes: [
        {
          containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel', imagePullPolicy: 'IfNotPresent' },
          name: 'containerdisk',
        },
      ],
    },
    status: {
      currentCPUTopology: { cores: 1, sockets: 1, threads: 1 },
      memory: { guestAtBoot: '128Mi', guestCurrent: '128Mi', guestRequested: '128Mi' },
      phase: 'Pending',
      phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' }],
      runtimeUser: 107,
    },
  });
});

test('vmi-sata: a volume without a disk gets a sata disk', () => {
  const vmi = admit('vmi-sata.yaml').defaulted as VirtualMachineInstance;
  assert.deepEqual(vmi.spec.domain.devices.disks, [{ name: 'containerdisk', disk: { bus: 'sata' } }]);
});

test('vmi-fedora: 1024M keeps its decimal form, is not hotplug-aligned, and masquerade stays as given', () => {
  const vmi = admit('vmi-fedora.yaml').defaulted as VirtualMachineInstance;
  assert.equal(vmi.spec.domain.memory?.guest, '1024M');
  assert.equal(vmi.spec.domain.memory?.maxGuest, undefined);
  assert.deepEqual(vmi.spec.domain.devices.interfaces, [{ masquerade: {}, name: 'default' }]);
  assert.deepEqual(vmi.spec.domain.devices.rng, {});
});

test('vmi-kernel-boot: 1Gi guest memory gets maxGuest 4Gi for hotplug', () => {
  const vmi = admit('vmi-kernel-boot.yaml').defaulted as VirtualMachineInstance;
  assert.equal(vmi.spec.domain.memory?.maxGuest, '4Gi');
  assert.equal(vmi.spec.domain.devices.disks, undefined);
});

test('vmi-masquerade: the declared ports stay, the cloud-init disk keeps its bus', () => {
  const vmi = admit('vmi-masquerade.yaml').defaulted as VirtualMachineInstance;
  assert.deepEqual(vmi.spec.domain.devices.interfaces?.[0].ports, [{ name: 'http', port: 80, protocol: 'TCP' }]);
  assert.equal(vmi.spec.domain.devices.disks?.[1].disk?.bus, 'virtio');
});

test('vm-cirros: the VM gets a firmware UUID and serial, the machine type and the PCI topology annotation', () => {
  const vm = admit('vm-cirros.yaml').defaulted as VirtualMachine;
  const spec = vm.spec.template.spec!;
  assert.deepEqual(spec.domain.firmware, {
    uuid: '00000000-0000-4000-8000-000000000001',
    serial: '00000000-0000-4000-8000-000000000002',
  });
  assert.equal(spec.architecture, 'amd64');
  assert.deepEqual(spec.domain.machine, { type: 'q35' });
  assert.equal(vm.spec.template.metadata?.annotations?.['kubevirt.io/pci-topology-version'], 'v3');
  assert.equal(vm.spec.runStrategy, 'Halted');
});

test('the cluster default interface binding comes from the KubeVirt CR', () => {
  const config = new ClusterConfig({ network: { defaultNetworkInterface: 'masquerade' } });
  const vmi = admit('vmi-ephemeral.yaml', config).defaulted as VirtualMachineInstance;
  assert.deepEqual(vmi.spec.domain.devices.interfaces, [{ name: 'default', masquerade: {} }]);
});

test('a cluster CPU model and a non-default cpuRequest are applied', () => {
  const config = new ClusterConfig({ cpuModel: 'Haswell', cpuRequest: '200m' });
  const vmi = admit('vmi-ephemeral.yaml', config).defaulted as VirtualMachineInstance;
  assert.equal(vmi.spec.domain.cpu?.model, 'Haswell');
  assert.deepEqual(vmi.spec.domain.resources?.requests, { cpu: '200m' });
});
