// Invalid objects, each rejected with the field path upstream's webhooks name.
// Each goes through the admission pipeline as kube-apiserver runs it: mutate, then validate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { example, fixedContext } from '../helpers/fixtures.ts';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import { defaultVm } from '../../src/api/defaults/vm.ts';
import {
  validateVmiCreate,
  validateVm,
  validateReplicaSet,
  validatePool,
  validateInstancetype,
  validateMigrationCreate,
  validateMigrationPolicy,
  validateVmiUpdate,
} from '../../src/api/validation/objects.ts';
import type { StatusCause } from '../../src/api/causes.ts';
import { validateSchema } from '../../src/api/validation/schema.ts';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceReplicaSet,
  VirtualMachinePool,
  VirtualMachineInstanceSpec,
} from '../../src/api/types.ts';

const user = { isKubeVirtServiceAccount: false };
const config = new ClusterConfig();

function vmiCauses(edit: (vmi: VirtualMachineInstance) => void, cfg = config): StatusCause[] {
  const vmi = example<VirtualMachineInstance>('vmi-nocloud.yaml');
  edit(vmi);
  return validateVmiCreate(defaultNewVmi(vmi, cfg, fixedContext()), cfg, user);
}
const spec = (edit: (spec: VirtualMachineInstanceSpec) => void) => vmiCauses((vmi) => edit(vmi.spec));

function vmCauses(edit: (vm: VirtualMachine) => void): StatusCause[] {
  const vm = example<VirtualMachine>('vm-cirros.yaml');
  edit(vm);
  return validateVm(defaultVm(vm, config, fixedContext(), 'CREATE'), config, user);
}

interface Case {
  name: string;
  causes: () => StatusCause[];
  field: string;
  message: string | RegExp;
}

const CASES: Case[] = [
  {
    name: 'a rebootPolicy other than Reboot or Terminate (the CRD enum)',
    causes: () => {
      const vmi = example<VirtualMachineInstance>('vmi-nocloud.yaml');
      (vmi.spec.domain as { rebootPolicy?: string }).rebootPolicy = 'Restart';
      return validateSchema('VirtualMachineInstance', vmi);
    },
    field: 'spec.domain.rebootPolicy',
    message: 'spec.domain.rebootPolicy in body should be one of [Reboot Terminate]',
  },
  {
    name: 'a disk without a volume',
    causes: () => spec((s) => s.domain.devices.disks!.push({ name: 'testdisk', disk: { bus: 'virtio' } })),
    field: 'spec.domain.devices.disks[3].name',
    message: "spec.domain.devices.disks[3].Name 'testdisk' not found.",
  },
  {
    name: 'two disks with the same name',
    causes: () => spec((s) => s.domain.devices.disks!.push({ name: 'containerdisk', disk: {} })),
    field: 'spec.domain.devices.disks[3].name',
    message: 'spec.domain.devices.disks[3] and spec.domain.devices.disks[0] must not have the same Name.',
  },
  {
    name: 'a disk with two targets',
    causes: () => spec((s) => (s.domain.devices.disks![0].cdrom = {})),
    field: 'spec.domain.devices.disks[0]',
    message: 'spec.domain.devices.disks[0] can only have a single target type defined',
  },
  {
    name: 'the IDE bus',
    causes: () => spec((s) => (s.domain.devices.disks![0].disk!.bus = 'ide')),
    field: 'spec.domain.devices.disks[0].disk.bus',
    message: 'IDE bus is not supported',
  },
  {
    name: 'an unknown bus',
    causes: () => spec((s) => (s.domain.devices.disks![0].disk!.bus = 'floppy')),
    field: 'spec.domain.devices.disks[0].disk.bus',
    message: 'spec.domain.devices.disks[0] is set with an unrecognized bus floppy, must be one of: [virtio scsi sata usb]',
  },
  {
    name: 'a virtio CD-ROM',
    causes: () => spec((s) => (s.domain.devices.disks![1] = { name: 'cloudinitdisk', cdrom: { bus: 'virtio' } })),
    field: 'spec.domain.devices.disks[1].cdrom.bus',
    message: 'Bus type virtio is invalid for CD-ROM device',
  },
  {
    name: 'a read-only sata disk',
    causes: () => spec((s) => (s.domain.devices.disks![0].disk = { bus: 'sata', readonly: true })),
    field: 'spec.domain.devices.disks[0].disk.bus',
    message: 'sata hard-disks do not support read-only.',
  },
  {
    name: 'boot order 0',
    causes: () => spec((s) => (s.domain.devices.disks![0].bootOrder = 0)),
    field: 'spec.domain.devices.disks[0].bootOrder',
    message: 'spec.domain.devices.disks[0] must have a boot order > 0, if supplied',
  },
  {
    name: 'a boot order used twice',
    causes: () =>
      spec((s) => {
        s.domain.devices.disks![0].bootOrder = 1;
        s.domain.devices.disks![1].bootOrder = 1;
      }),
    field: 'spec.domain.devices.disks[1].bootOrder',
    message: 'Boot order for spec.domain.devices.disks[1].bootOrder already set for a different device.',
  },
  {
    name: 'a bad disk serial',
    causes: () => spec((s) => (s.domain.devices.disks![0].serial = 'has space')),
    field: 'spec.domain.devices.disks[0].serial',
    message: 'spec.domain.devices.disks[0] must be made up of the following characters [A-Za-z0-9_.+-], if specified',
  },
  {
    name: 'an unknown cache mode',
    causes: () => spec((s) => (s.domain.devices.disks![0].cache = 'unsafe')),
    field: 'spec.domain.devices.disks[0].cache',
    message: 'spec.domain.devices.disks[0].cache has invalid value unsafe',
  },
  {
    name: 'an unknown io mode',
    causes: () => spec((s) => (s.domain.devices.disks![0].io = 'uring')),
    // Upstream builds this path from the disks path again; clients may match on it, so it stays.
    field: 'spec.domain.devices.disks.domain.devices.disks[0].io',
    message: 'Disk IO mode for spec.domain.devices.disks is not supported. Supported modes are: native, threads.',
  },
  {
    name: 'a dedicated IO thread on sata',
    causes: () => spec((s) => (s.domain.devices.disks![0] = { name: 'containerdisk', disk: { bus: 'sata' }, dedicatedIOThread: true })),
    field: 'spec.domain.devices.disks.domain.devices.disks[0]',
    message: 'IOThreads are not supported for disks on a sata bus',
  },
  {
    name: 'a disk name that is not a DNS label',
    causes: () =>
      spec((s) => {
        s.domain.devices.disks![0].name = 'Container_Disk';
        s.volumes![0].name = 'Container_Disk';
      }),
    field: 'spec.domain.devices.disks.domain.devices.disks[0].name',
    message: /a lowercase RFC 1123 label must consist of/,
  },
  {
    name: 'a lun on a containerDisk',
    causes: () => spec((s) => (s.domain.devices.disks![0] = { name: 'containerdisk', lun: {} })),
    field: 'spec.domain.devices.disks[0].lun',
    message: 'spec.domain.devices.disks[0].lun can only be mapped to a DataVolume or PersistentVolumeClaim volume.',
  },
  {
    name: 'two volumes with the same name',
    causes: () => spec((s) => s.volumes!.push({ name: 'containerdisk', emptyDisk: { capacity: '1Gi' } })),
    field: 'spec.volumes[3].name',
    message: 'spec.volumes[3] and spec.volumes[0] must not have the same Name.',
  },
  {
    name: 'a volume with two sources',
    causes: () => spec((s) => (s.volumes![2] = { name: 'emptydisk', emptyDisk: { capacity: '1Gi' }, containerDisk: { image: 'x:1' } })),
    field: 'spec.volumes[2]',
    message: 'spec.volumes[2] must have exactly one source type set',
  },
  {
    name: 'a volume with no source',
    causes: () => spec((s) => (s.volumes![2] = { name: 'emptydisk' })),
    field: 'spec.volumes[2]',
    message: 'spec.volumes[2] must have exactly one source type set',
  },
  {
    name: 'a volume no disk uses (the VMI is not defaulted: upstream adds disks only on create)',
    causes: () => {
      const vmi = example<VirtualMachineInstance>('vmi-nocloud.yaml');
      vmi.spec.volumes!.push({ name: 'extra', emptyDisk: { capacity: '1Gi' } });
      return validateVmiCreate(vmi, config, user);
    },
    field: 'spec.domain.volumes[3].name',
    message: "spec.domain.volumes[3].name 'extra' not found.",
  },
  {
    name: 'cloud-init user data over 2048 bytes',
    causes: () => spec((s) => (s.volumes![1].cloudInitNoCloud!.userData = 'x'.repeat(2049))),
    field: 'spec.volumes[1].cloudInitNoCloud',
    message: 'spec.volumes[1].cloudInitNoCloud userdata exceeds 2048 byte limit. Should use UserDataSecretRef for larger data.',
  },
  {
    name: 'cloud-init with two user-data sources',
    causes: () => spec((s) => (s.volumes![1].cloudInitNoCloud!.userDataBase64 = 'ZWNobyBoaQ==')),
    field: 'spec.volumes[1].cloudInitNoCloud',
    message: 'spec.volumes[1].cloudInitNoCloud must have only one userdatasource set.',
  },
  {
    name: 'cloud-init with bad base64',
    causes: () => spec((s) => (s.volumes![1].cloudInitNoCloud = { userDataBase64: '!!!' })),
    field: 'spec.volumes[1].cloudInitNoCloud.userDataBase64',
    message: 'spec.volumes[1].cloudInitNoCloud.userDataBase64.cloudInitNoCloud.userDataBase64 is not a valid base64 value.',
  },
  {
    name: 'empty cloud-init',
    causes: () => spec((s) => (s.volumes![1].cloudInitNoCloud = {})),
    field: 'spec.volumes[1].cloudInitNoCloud',
    message: 'spec.volumes[1].cloudInitNoCloud must have at least one userdatasource or one networkdatasource set.',
  },
  {
    name: 'a hostDisk with an unknown type',
    causes: () =>
      vmiCauses(
        (vmi) => (vmi.spec.volumes![2] = { name: 'emptydisk', hostDisk: { path: '/data/disk.img', type: 'Sometimes' } }),
        new ClusterConfig({ developerConfiguration: { featureGates: ['HostDisk'] } }),
      ),
    field: 'spec.volumes[2].hostDisk.type',
    message: "spec.volumes[2].hostDisk.type has invalid value 'Sometimes', allowed are 'Disk' or 'DiskOrCreate'",
  },
  {
    name: 'a configMap volume without a name',
    causes: () => spec((s) => (s.volumes![2] = { name: 'emptydisk', configMap: {} })),
    field: 'spec.volumes[2].configMap.name',
    message: 'spec.volumes[2].configMap.name is a required field',
  },
  {
    name: 'two serviceAccount volumes',
    causes: () =>
      spec((s) => {
        s.volumes![2] = { name: 'emptydisk', serviceAccount: { serviceAccountName: 'a' } };
        s.volumes!.push({ name: 'sa2', serviceAccount: { serviceAccountName: 'a' } });
        s.domain.devices.disks!.push({ name: 'sa2', disk: {} });
      }),
    field: 'spec.volumes',
    message: 'spec.volumes must have max one serviceAccount volume set',
  },
  {
    name: 'no memory at all',
    causes: () => spec((s) => delete s.domain.memory),
    field: '',
    message:
      "no memory requested, at least one of 'spec.domain.memory.guest', 'spec.domain.memory.hugepages.pageSize' or 'spec.domain.resources.requests.memory' must be set",
  },
  {
    name: 'a negative memory request',
    causes: () => spec((s) => (s.domain.resources = { requests: { memory: '-128Mi' } })),
    field: 'spec.domain.resources.requests.memory',
    message: "spec.domain.resources.requests.memory '-128Mi': must be greater than or equal to 0.",
  },
  {
    name: 'a memory request under 1M',
    causes: () => spec((s) => (s.domain.resources = { requests: { memory: '512k' } })),
    field: 'spec.domain.resources.requests.memory',
    message: "spec.domain.resources.requests.memory '512k': must be greater than or equal to 1M.",
  },
  {
    name: 'memory requests above limits',
    causes: () => spec((s) => (s.domain.resources = { requests: { memory: '256Mi' }, limits: { memory: '128Mi' } })),
    field: 'spec.domain.resources.requests.memory',
    message: "spec.domain.resources.requests.memory '256Mi' is greater than spec.domain.resources.limits.memory '128Mi'",
  },
  {
    name: 'CPU requests above limits',
    causes: () => spec((s) => (s.domain.resources = { requests: { cpu: '2' }, limits: { cpu: '1' } })),
    field: 'spec.domain.resources.requests.cpu',
    message: "spec.domain.resources.requests.cpu '2' is greater than spec.domain.resources.limits.cpu '1'",
  },
  {
    name: 'a hugepage size larger than memory',
    causes: () => spec((s) => (s.domain.memory = { guest: '64Mi', hugepages: { pageSize: '1Gi' } })),
    field: 'spec.domain.resources.requests.memory',
    message:
      "spec.domain.resources.requests.memory '0' must be equal to or larger than page size spec.domain.memory.hugepages.pageSize '1Gi'",
  },
  {
    name: 'an unsupported machine type',
    causes: () => spec((s) => (s.domain.machine = { type: 'pc-i440fx-2.5' })),
    field: 'spec.domain.machine.type',
    message: 'spec.domain.machine.type is not supported: pc-i440fx-2.5 (allowed values: [q35* pc-q35*])',
  },
  {
    name: 'an unknown CPU feature policy',
    causes: () => spec((s) => (s.domain.cpu = { features: [{ name: 'pcid', policy: 'sometimes' }] })),
    field: 'spec.domain.cpu.features[0].policy',
    message: 'CPU feature pcid uses policy sometimes that is not supported.',
  },
  {
    name: 'isolateEmulatorThread without dedicated CPUs',
    causes: () => spec((s) => (s.domain.cpu = { isolateEmulatorThread: true })),
    field: 'spec.domain.cpu.isolateEmulatorThread',
    message: 'IsolateEmulatorThread should be only set in combination with DedicatedCPUPlacement',
  },
  {
    name: 'more sockets than maxSockets',
    causes: () => spec((s) => (s.domain.cpu = { sockets: 4, maxSockets: 2 })),
    field: 'spec.domain.cpu.sockets',
    message: 'Number of sockets in CPU topology is greater than the maximum sockets allowed',
  },
  {
    name: 'an unknown start strategy',
    causes: () => spec((s) => (s.startStrategy = 'Later')),
    field: 'spec.startStrategy',
    message: 'spec.startStrategy is set with an unrecognized option: Later',
  },
  {
    name: 'a hostname that is not a DNS label',
    causes: () => spec((s) => (s.hostname = 'My_Host')),
    field: 'spec.hostname',
    message: /^spec.hostname does not conform to the kubernetes DNS_LABEL rules : /,
  },
  {
    name: 'an unknown eviction strategy',
    causes: () => spec((s) => (s.evictionStrategy = 'Sometimes')),
    field: 'spec.evictionStrategy',
    message: 'spec.evictionStrategy is set with an unrecognized option: Sometimes',
  },
  {
    name: 'a probe with two handlers',
    causes: () => spec((s) => (s.readinessProbe = { tcpSocket: { port: 22 }, exec: { command: ['true'] } })),
    field: 'spec.readinessProbe',
    message: 'spec.readinessProbe must have exactly one probe type set',
  },
  {
    name: 'a probe with no handler',
    causes: () => spec((s) => (s.livenessProbe = { periodSeconds: 5 })),
    field: 'spec.livenessProbe',
    message:
      'either spec.livenessProbe.tcpSocket, spec.livenessProbe.exec or spec.livenessProbe.httpGet must be set if a spec.livenessProbe is specified',
  },
  {
    name: 'an interface without a network',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [
          { name: 'default', masquerade: {} },
          { name: 'other', bridge: {} },
        ];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[1].name',
    message: "spec.domain.devices.interfaces[1].name 'other' not found.",
  },
  {
    name: 'a network without an interface',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
        s.networks = [
          { name: 'default', pod: {} },
          { name: 'extra', multus: { networkName: 'net' } },
        ];
      }),
    field: 'spec.networks[1].name',
    message: "spec.networks[1].name 'extra' not found.",
  },
  {
    name: 'two pod networks',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [
          { name: 'a', masquerade: {} },
          { name: 'b', masquerade: {} },
        ];
        s.networks = [
          { name: 'a', pod: {} },
          { name: 'b', pod: {} },
        ];
      }),
    field: 'spec.interfaces',
    message: 'more than one interface is connected to a pod network in spec.interfaces',
  },
  {
    name: 'an interface with two bindings',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, bridge: {} }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0]',
    message: 'logical default interface must have exactly one binding method or binding plugin',
  },
  {
    name: 'masquerade on a multus network',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'net', masquerade: {} }];
        s.networks = [{ name: 'net', multus: { networkName: 'n' } }];
      }),
    field: 'spec.domain.devices.interfaces[0].name',
    message: 'Masquerade interface only implemented with pod network',
  },
  {
    name: 'slirp, discontinued',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', slirp: {} }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0].slirp',
    message: 'Slirp interface support has been discontinued since v1.3',
  },
  {
    name: 'an unknown NIC model',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, model: 'tulip' }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0].model',
    message: 'interface spec.domain.devices.interfaces[0].name uses model tulip that is not supported.',
  },
  {
    name: 'a malformed MAC address',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, macAddress: '02:00:00:00:00' }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0].macAddress',
    message: 'interface spec.domain.devices.interfaces[0].name has malformed MAC address (02:00:00:00:00).',
  },
  {
    name: 'a forwarded port out of range',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, ports: [{ port: 70000 }] }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0].ports[0].port',
    message: 'Port field must be in range 0 < x < 65536.',
  },
  {
    name: 'a forwarded port with an unknown protocol',
    causes: () =>
      spec((s) => {
        s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, ports: [{ port: 80, protocol: 'SCTP' }] }];
        s.networks = [{ name: 'default', pod: {} }];
      }),
    field: 'spec.domain.devices.interfaces[0].ports[0].protocol',
    message: 'Unknown protocol, only TCP or UDP allowed',
  },
  {
    name: 'EFI and BIOS together',
    causes: () => spec((s) => (s.domain.firmware = { bootloader: { bios: {}, efi: { secureBoot: false } } })),
    field: 'spec.domain.firmware.bootloader',
    message: 'spec.domain.firmware.bootloader has both EFI and BIOS configured, but they are mutually exclusive.',
  },
  {
    name: 'secure boot without SMM',
    causes: () => spec((s) => (s.domain.firmware = { bootloader: { efi: {} } })),
    field: 'spec.domain',
    message: 'spec.domain has EFI SecureBoot enabled. SecureBoot requires SMM, which is currently disabled.',
  },
  {
    name: 'kernel arguments without a kernel',
    causes: () => spec((s) => (s.domain.firmware = { kernelBoot: { kernelArgs: 'console=ttyS0' } })),
    field: 'spec.domain.firmware.kernelBoot.kernelArgs',
    message: 'kernel arguments cannot be provided without an external kernel',
  },
  {
    name: 'a relative kernel path',
    causes: () => spec((s) => (s.domain.firmware = { kernelBoot: { container: { image: 'k:1', kernelPath: '/boot/../etc/vmlinuz' } } })),
    field: 'spec.domain.firmware.kernelBoot.container.kernelPath',
    message: 'spec.domain.firmware.kernelBoot.container.kernelPath must be an absolute path to a file without relative components',
  },
  {
    name: 'dnsPolicy None without dnsConfig',
    causes: () => spec((s) => (s.dnsPolicy = 'None')),
    field: 'spec.dnsConfig',
    message: 'must provide `dnsConfig` when `dnsPolicy` is None',
  },
  {
    name: 'a reserved kubevirt.io label set by a user',
    causes: () => vmiCauses((vmi) => (vmi.metadata.labels = { 'kubevirt.io/nodeName': 'node01' })),
    field: 'metadata.labels',
    message: 'creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited',
  },
  {
    name: 'an input device on the PS/2 bus',
    causes: () => spec((s) => (s.domain.devices.inputs = [{ name: 'tablet', type: 'tablet', bus: 'ps2' }])),
    field: 'spec.domain.devices.inputs[0].bus',
    message: 'Input device can have only virtio or usb bus.',
  },
  {
    name: 'a VM with both running and runStrategy',
    causes: () => vmCauses((vm) => (vm.spec.running = true)),
    field: 'spec.running',
    message: 'Running and RunStrategy are mutually exclusive. Note that Running is deprecated, please use RunStrategy instead',
  },
  {
    name: 'a VM with neither running nor runStrategy',
    causes: () => vmCauses((vm) => delete vm.spec.runStrategy),
    field: 'spec.running',
    message: 'RunStrategy must be specified',
  },
  {
    name: 'a VM with an unknown runStrategy',
    causes: () => vmCauses((vm) => (vm.spec.runStrategy = 'Sometimes')),
    field: 'spec.runStrategy',
    message: 'Invalid RunStrategy (Sometimes)',
  },
  {
    name: 'a VM template disk without a volume',
    causes: () => vmCauses((vm) => vm.spec.template.spec!.domain.devices.disks!.push({ name: 'nope', disk: {} })),
    field: 'spec.template.spec.domain.devices.disks[2].name',
    message: "spec.template.spec.domain.devices.disks[2].Name 'nope' not found.",
  },
  {
    name: 'a VM dataVolumeTemplate nothing uses',
    causes: () => vmCauses((vm) => (vm.spec.dataVolumeTemplates = [{ metadata: { name: 'dv' }, spec: { storage: {} } }])),
    field: 'spec.dataVolumeTemplate[0]',
    message: "DataVolumeTemplate entry spec.dataVolumeTemplate[0] must be referenced in the VMI template's 'volumes' list",
  },
  {
    name: 'a replica set whose selector does not match its template',
    causes: () => {
      const rs = example<VirtualMachineInstanceReplicaSet>('vmi-replicaset-cirros.yaml');
      rs.spec.selector = { matchLabels: { other: 'x' } };
      return validateReplicaSet(rs, config);
    },
    field: 'spec.selector',
    message: 'selector does not match labels.',
  },
  {
    name: 'a replica set template disk without a volume',
    causes: () => {
      const rs = example<VirtualMachineInstanceReplicaSet>('vmi-replicaset-cirros.yaml');
      rs.spec.template.spec!.domain.devices.disks![0].name = 'other';
      return validateReplicaSet(rs, config);
    },
    field: 'spec.template.spec.domain.devices.disks[0].name',
    message: "spec.template.spec.domain.devices.disks[0].Name 'other' not found.",
  },
  {
    name: 'a pool with maxUnavailable 0',
    causes: () => {
      const pool = example<VirtualMachinePool>('vm-pool-cirros.yaml');
      pool.spec.maxUnavailable = 0;
      return validatePool(pool, config, user);
    },
    field: 'spec.maxUnavailable',
    message: 'maxUnavailable must be greater than 0',
  },
  {
    name: 'a pool VM template without a runStrategy',
    causes: () => {
      const pool = example<VirtualMachinePool>('vm-pool-cirros.yaml');
      delete pool.spec.virtualMachineTemplate.spec.runStrategy;
      return validatePool(pool, config, user);
    },
    field: 'spec.virtualMachineTemplate.spec.running',
    message: 'RunStrategy must be specified',
  },
  {
    name: 'an instance type with overcommit over 100%',
    causes: () => validateInstancetype({ metadata: {}, spec: { cpu: { guest: 1 }, memory: { guest: '1Gi', overcommitPercent: 150 } } }),
    field: 'spec.memory.overcommitPercent',
    message: "spec.memory.overcommitPercent '150': must be in range between 0 and 100.",
  },
  {
    name: 'a migration without a VMI name',
    causes: () => validateMigrationCreate({ metadata: {}, spec: {} }, config, user),
    field: 'spec.vmiName',
    message: 'vmiName is missing',
  },
  {
    name: 'a migration policy with a negative timeout',
    causes: () => validateMigrationPolicy({ metadata: {}, spec: { selectors: {}, completionTimeoutPerGiB: -1 } }),
    field: 'spec.completionTimeoutPerGiB',
    message: 'must not be negative',
  },
  {
    name: 'a VMI spec update by a user',
    causes: () => {
      const old = defaultNewVmi(example<VirtualMachineInstance>('vmi-ephemeral.yaml'), config, fixedContext());
      const updated = structuredClone(old);
      updated.spec.domain.memory!.guest = '256Mi';
      return validateVmiUpdate(old, updated, user);
    },
    field: 'spec',
    message: 'update of VMI object is restricted',
  },
];

test('there are at least 40 invalid specs', () => assert.ok(CASES.length >= 40, `${CASES.length} cases`));

for (const c of CASES) {
  test(`rejects ${c.name}`, () => {
    const causes = c.causes();
    const match = causes.find(
      (cause) => cause.field === c.field && (typeof c.message === 'string' ? cause.message === c.message : c.message.test(cause.message)),
    );
    assert.ok(match, `expected ${c.field}: ${c.message}\ngot ${JSON.stringify(causes, null, 1)}`);
  });
}

test('the base objects used above are themselves valid', () => {
  assert.deepEqual(
    spec(() => {}),
    [],
  );
  assert.deepEqual(
    vmCauses(() => {}),
    [],
  );
});
