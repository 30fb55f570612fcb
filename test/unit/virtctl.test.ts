// virtctl's argument syntax (upstream's), the manifests it prints and the
// Services it creates, and the next step it suggests after common errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../../src/api/types.ts';
import { createVm, exposeService, parsePort, parseScpArgs, parseSshTarget, parseTarget, withHint } from '../../src/virtctl/args.ts';
import { vmiId } from '../../src/api/vmi-id.ts';
import { example } from '../helpers/fixtures.ts';

test("targets are type/name[/namespace] with upstream's kind aliases and errors", () => {
  assert.deepEqual(parseTarget('vmi/testvmi'), { kind: 'vmi', name: 'testvmi' });
  assert.deepEqual(parseTarget('VirtualMachines/testvm/ns1'), { kind: 'vm', name: 'testvm', namespace: 'ns1' });
  assert.throws(() => parseTarget('testvmi'), /target must contain type and name separated by '\/'/);
  assert.throws(() => parseTarget('pod/x'), /unsupported resource type 'pod'/);
  assert.throws(() => parseTarget('vm/'), /name cannot be empty/);
  assert.throws(() => parseTarget('vm/x/'), /namespace cannot be empty/);
  assert.throws(() => parseTarget('vm/x/y/z'), /more than two '\/'/);
});

test('ports are [protocol/]local[:remote]', () => {
  assert.deepEqual(parsePort('8080'), { protocol: 'tcp', local: 8080, remote: 8080 });
  assert.deepEqual(parsePort('8080:80'), { protocol: 'tcp', local: 8080, remote: 80 });
  assert.deepEqual(parsePort('UDP/53:5353'), { protocol: 'udp', local: 53, remote: 5353 });
  assert.deepEqual(parsePort('0:22'), { protocol: 'tcp', local: 0, remote: 22 });
  assert.throws(() => parsePort('http'), /invalid port "http"/);
  assert.throws(() => parsePort(':'), /missing local/);
});

test('ssh and scp targets carry an optional user; exactly one scp side is remote', () => {
  assert.deepEqual(parseSshTarget('cirros@vmi/testvmi/ns'), { kind: 'vmi', name: 'testvmi', namespace: 'ns', user: 'cirros' });
  assert.deepEqual(parseSshTarget('vm/testvm'), { kind: 'vm', name: 'testvm' });
  assert.throws(() => parseSshTarget('@vm/x'), /expected username/);
  assert.deepEqual(parseScpArgs('./local.txt', 'root@vmi/guest:/tmp/x'), {
    local: './local.txt',
    toRemote: true,
    remote: { kind: 'vmi', name: 'guest', user: 'root', path: '/tmp/x' },
  });
  assert.deepEqual(parseScpArgs('vm/guest/ns:/etc/hostname', '/tmp/out'), {
    local: '/tmp/out',
    toRemote: false,
    remote: { kind: 'vm', name: 'guest', namespace: 'ns', path: '/etc/hostname' },
  });
  assert.throws(() => parseScpArgs('a.txt', 'b.txt'), /none of the two provided locations/);
  assert.throws(() => parseScpArgs('vm/a:/x', 'vm/b:/y'), /remote location to another remote location/);
});

test("create vm builds upstream's manifest from flags", () => {
  const vm = createVm({
    name: 'my-vm',
    runStrategy: 'Always',
    terminationGracePeriod: 180,
    memory: '512Mi',
    instancetype: 'virtualmachineinstancetype/csmall',
    preference: 'virtio',
    containerdisks: ['src:registry:5000/kubevirt/cirros-container-disk-demo:devel,bootorder:1'],
    pvcs: [],
    cloudInitUserData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
  });
  assert.deepEqual(vm, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'my-vm' },
    spec: {
      runStrategy: 'Always',
      instancetype: { name: 'csmall', kind: 'virtualmachineinstancetype' },
      preference: { name: 'virtio' },
      template: {
        spec: {
          terminationGracePeriodSeconds: 180,
          domain: { devices: { disks: [{ name: 'my-vm-containerdisk-0', bootOrder: 1 }] } },
          volumes: [
            { name: 'my-vm-containerdisk-0', containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel' } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userDataBase64: 'IyEvYmluL3NoCmVjaG8gaGkK' } },
          ],
        },
      },
    },
  });
  const plain = createVm({ name: 'v', runStrategy: 'Halted', terminationGracePeriod: 0, memory: '1Gi', containerdisks: [], pvcs: [] });
  assert.equal(plain.spec.template?.spec?.domain.memory?.guest, '1Gi');
  assert.equal(plain.spec.template?.spec?.volumes, undefined);
  assert.throws(() => createVm({ ...plainOptions(), containerdisks: ['name:x'] }), /src must be specified/);
  assert.throws(
    () => createVm({ ...plainOptions(), containerdisks: ['src:a,bootorder:1', 'src:b,bootorder:1'] }),
    /bootorder 1 was specified multiple times/,
  );
  assert.throws(() => createVm({ ...plainOptions(), containerdisks: ['src:a,size:1Gi'] }), /unknown param\(s\): size:1Gi/);
  assert.throws(() => createVm({ ...plainOptions(), instancetype: 'pod/x' }), /invalid instancetype kind "pod", supported values are/);
  assert.deepEqual(createVm({ ...plainOptions(), instancetype: 'VirtualMachineClusterInstancetype/u1.medium' }).spec.instancetype, {
    name: 'u1.medium',
    kind: 'virtualmachineclusterinstancetype',
  });
});

test('create vm infers the instance type and preference from the boot claim, as upstream', () => {
  // Implicitly: the cluster is to ignore a volume without defaults, and the memory stays as the fallback.
  const implicit = createVm({ ...plainOptions(), pvcs: ['src:disk-a', 'src:disk-b,bootorder:1'] });
  assert.deepEqual(implicit.spec.instancetype, { inferFromVolume: 'disk-b', inferFromVolumeFailurePolicy: 'Ignore' });
  assert.deepEqual(implicit.spec.preference, { inferFromVolume: 'disk-b', inferFromVolumeFailurePolicy: 'Ignore' });
  assert.equal(implicit.spec.template?.spec?.domain.memory?.guest, '512Mi');
  // A containerDisk has no labels to infer from: implicit inference just does not happen.
  const containerDisk = createVm({ ...plainOptions(), containerdisks: ['src:registry:5000/x:y'] });
  assert.equal(containerDisk.spec.instancetype, undefined);
  // Explicitly: the memory goes, and a volume that cannot be inferred from is an error.
  const explicit = createVm({ ...plainOptions(), pvcs: ['src:disk'], inferInstancetypeFrom: 'disk', explicitInstancetypeInference: true });
  assert.deepEqual(explicit.spec.instancetype, { inferFromVolume: 'disk' });
  assert.equal(explicit.spec.template?.spec?.domain.memory, undefined);
  assert.throws(
    () => createVm({ ...plainOptions(), containerdisks: ['src:x:y'], inferInstancetype: true, explicitInstancetypeInference: true }),
    /works only with datasources, datavolumes or pvcs/,
  );
  // Memory given, or --infer-instancetype=false: no instance type inference.
  assert.equal(createVm({ ...plainOptions(), pvcs: ['src:disk'], memoryGiven: true }).spec.instancetype, undefined);
  assert.equal(createVm({ ...plainOptions(), pvcs: ['src:disk'], inferInstancetype: false }).spec.instancetype, undefined);
});
const plainOptions = () => ({
  name: 'v',
  runStrategy: 'Always',
  terminationGracePeriod: 180,
  memory: '512Mi',
  containerdisks: [],
  pvcs: [],
});

test('expose: a VMI or VM by its vmi.kubevirt.io/id label, a replica set by its selector; ports from --port or the pod interface; owned by the object', () => {
  const options = { serviceName: 'svc', protocol: 'tcp', type: 'clusterip' };
  const vmi = example<VirtualMachineInstance>('vmi-masquerade.yaml');
  vmi.metadata = { ...vmi.metadata, namespace: 'ns', uid: 'u1' };
  assert.deepEqual(exposeService({ kind: 'vmi', object: vmi }, { ...options, port: 8080, targetPort: '80' }), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'svc',
      namespace: 'ns',
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachineInstance',
          name: 'vmi-masquerade',
          uid: 'u1',
          controller: true,
          blockOwnerDeletion: false,
        },
      ],
    },
    spec: {
      type: 'ClusterIP',
      selector: { 'vmi.kubevirt.io/id': 'vmi-masquerade' },
      ports: [{ protocol: 'TCP', port: 8080, targetPort: 80 }],
    },
  });
  assert.deepEqual(
    exposeService({ kind: 'vmi', object: vmi }, options).spec.ports,
    [{ name: 'http', protocol: 'TCP', port: 80 }],
    'the masquerade interface declares port 80',
  );
  const vm = example<VirtualMachine>('vm-cirros.yaml');
  assert.throws(() => exposeService({ kind: 'vm', object: vm }, options), /couldn't find port via --port flag or introspection/);
  assert.deepEqual(exposeService({ kind: 'vm', object: vm }, { ...options, port: 22 }).spec.selector, {
    'vmi.kubevirt.io/id': 'vm-cirros',
  });
  const rs = example<VirtualMachineInstanceReplicaSet>('vmi-replicaset-cirros.yaml');
  assert.deepEqual(exposeService({ kind: 'vmirs', object: rs }, { ...options, port: 22 }).spec.selector, rs.spec.selector?.matchLabels);
  assert.throws(
    () => exposeService({ kind: 'vm', object: vm }, { ...options, port: 22, type: 'ExternalName' }),
    /type: ExternalName not supported/,
  );
  assert.throws(() => exposeService({ kind: 'vm', object: vm }, { ...options, port: 22, protocol: 'sctp' }), /unknown protocol: sctp/);
});

test('a long VMI name is cut and hashed into a label value, as upstream does', () => {
  const long = 'a'.repeat(70);
  assert.equal(vmiId('short'), 'short');
  assert.equal(vmiId(long).length, 63);
  assert.match(vmiId(long), /^a{54}-[0-9a-f]{8}$/);
});

test('common errors say what to do next', () => {
  assert.equal(
    withHint('Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "x": VMI is not running', 'x', 'default'),
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "x": VMI is not running: start it with virtctl start x',
  );
  assert.match(withHint('virtualmachineinstance.kubevirt.io "x" not found', 'x', 'ns'), /start it with virtctl start x -n ns$/);
  assert.match(
    withHint('virtualmachineinstances.subresources.kubevirt.io "x" is forbidden: User "viewer" cannot get resource', 'x', 'ns'),
    /ask an administrator for the kubevirt.io:edit role in namespace ns$/,
  );
  assert.equal(withHint('something else', 'x', 'ns'), 'something else');
});
