// virt-api's webhooks in the real kube-apiserver: bad objects are refused with
// their field paths, VMIs are defaulted on create, and VMI status belongs to kubevirt-ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { type ApiError, rawRequest } from '../../src/lib/raw-request.ts';
import { kubectl, kubectlResult, deleteNamespace, eventually, KUBECONFIG } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-webhooks';

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

type Edit = (o: any) => void;
const INVALID: [string, string, Edit, string][] = [
  ['vm-cirros.yaml', 'running and runStrategy', (o) => (o.spec.running = true), 'spec.running'],
  ['vm-cirros.yaml', 'no runStrategy', (o) => delete o.spec.runStrategy, 'RunStrategy must be specified'],
  ['vm-cirros.yaml', 'unknown runStrategy', (o) => (o.spec.runStrategy = 'Sometimes'), 'Invalid RunStrategy (Sometimes)'],
  [
    'vm-cirros.yaml',
    'a disk without a volume',
    (o) => o.spec.template.spec.domain.devices.disks.push({ name: 'nope', disk: {} }),
    "spec.template.spec.domain.devices.disks[2].Name 'nope' not found.",
  ],
  ['vm-cirros.yaml', 'the IDE bus', (o) => (o.spec.template.spec.domain.devices.disks[0].disk.bus = 'ide'), 'IDE bus is not supported'],
  [
    'vmi-ephemeral.yaml',
    'two volumes of one name',
    (o) => o.spec.volumes.push({ name: 'containerdisk', emptyDisk: { capacity: '1Gi' } }),
    'spec.volumes[1] and spec.volumes[0] must not have the same Name.',
  ],
  [
    'vmi-ephemeral.yaml',
    'a volume with two sources',
    (o) => (o.spec.volumes[0].emptyDisk = { capacity: '1Gi' }),
    'spec.volumes[0] must have exactly one source type set',
  ],
  [
    'vmi-ephemeral.yaml',
    'no memory',
    (o) => delete o.spec.domain.memory,
    "no memory requested, at least one of 'spec.domain.memory.guest'",
  ],
  [
    'vmi-ephemeral.yaml',
    'an unsupported machine type',
    (o) => (o.spec.domain.machine = { type: 'pc-i440fx-2.5' }),
    'spec.domain.machine.type is not supported: pc-i440fx-2.5',
  ],
  [
    'vmi-nocloud.yaml',
    'oversized user data',
    (o) => (o.spec.volumes[1].cloudInitNoCloud.userData = 'x'.repeat(3000)),
    'spec.volumes[1].cloudInitNoCloud userdata exceeds 2048 byte limit',
  ],
  [
    'vmi-replicaset-cirros.yaml',
    'a selector that does not match',
    (o) => (o.spec.selector.matchLabels = { other: 'x' }),
    'selector does not match labels.',
  ],
];

for (const [file, what, edit, expected] of INVALID) {
  test(`kubectl apply --dry-run=server refuses ${what}, naming the field`, () => {
    const obj = example(file);
    edit(obj);
    const result = kubectlResult(['apply', '--dry-run=server', '-n', NS, '-f', '-'], JSON.stringify(obj));
    assert.notEqual(result.status, 0, 'admitted');
    // kubectl prints each cause as `field: message`, as for upstream's webhooks.
    assert.ok(result.stderr.includes(expected), result.stderr);
    assert.match(result.stderr, /is invalid: /);
  });
}

test('a VMI is defaulted on create by the mutating webhook', () => {
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(example('vmi-ephemeral.yaml')));
  const vmi = JSON.parse(kubectl(['get', 'vmi', 'vmi-ephemeral', '-n', NS, '-o', 'json']));
  assert.equal(vmi.spec.domain.machine.type, 'q35');
  assert.equal(vmi.spec.domain.cpu.model, 'host-model');
  assert.deepEqual(vmi.spec.networks, [{ name: 'default', pod: {} }]);
  assert.deepEqual(vmi.metadata.finalizers, ['kubevirt.io/foregroundDeleteVirtualMachine']);
  // virt-controller may have moved it on already.
  assert.ok(['Pending', 'Scheduling', 'Scheduled', 'Running'].includes(vmi.status.phase), vmi.status.phase);
  assert.match(vmi.spec.domain.firmware.uuid, /^[0-9a-f-]{36}$/);
});

test('a status change by a plain user changes nothing', async () => {
  const patch = kubectlResult([
    'patch',
    'vmi',
    'vmi-ephemeral',
    '-n',
    NS,
    '--type',
    'merge',
    '-p',
    '{"status":{"phase":"Succeeded","nodeName":"elsewhere"}}',
  ]);
  assert.equal(patch.status, 0, patch.stderr);
  const vmi = JSON.parse(kubectl(['get', 'vmi', 'vmi-ephemeral', '-n', NS, '-o', 'json']));
  assert.notEqual(vmi.status.phase, 'Succeeded');
  assert.notEqual(vmi.status.nodeName, 'elsewhere');
});

test('a spec change by a user is refused', () => {
  const r = kubectlResult([
    'patch',
    'vmi',
    'vmi-ephemeral',
    '-n',
    NS,
    '--type',
    'merge',
    '-p',
    '{"spec":{"terminationGracePeriodSeconds":60}}',
  ]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /update of VMI object is restricted/);
});

test("virt-handler may write only the VMIs on its own node: kube-apiserver's policy reads the node from its token", async () => {
  await eventually(
    'the VMI on node01',
    120,
    () => JSON.parse(kubectl(['get', 'vmi', 'vmi-ephemeral', '-n', NS, '-o', 'json'])).status?.nodeName === 'node01',
  );
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  // virt-handler's own token carries its node as an extra; an admin may claim both.
  const asHandlerOn = (node?: string) =>
    rawRequest(kc, 'PATCH', `/apis/kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/vmi-ephemeral`, {
      contentType: 'application/merge-patch+json',
      body: JSON.stringify({ metadata: { annotations: { 'kvts-test/touched-by': node ?? 'nobody' } } }),
      headers: {
        'Impersonate-User': 'system:serviceaccount:kubevirt:kubevirt-handler',
        ...(node ? { 'Impersonate-Extra-authentication.kubernetes.io%2fnode-name': node } : {}),
      },
    }).then(
      () => 200,
      (error: ApiError) => `${error.code} ${error.status}`,
    );
  assert.equal(await asHandlerOn('node01'), 200);
  assert.match(
    String(await asHandlerOn('node02')),
    /^403 .*denied request: Node restriction, virt-handler on node node02 is only allowed to modify VMIs it owns$/,
  );
  assert.match(String(await asHandlerOn()), /^403 .*Node restriction, virt-handler is only allowed to modify VMIs it owns/);
});

test("the KubeVirt CR's configuration reaches virt-api without a restart, and kubectl shows its columns", async () => {
  const cr = ['kubevirt', 'kubevirt', '-n', 'kubevirt'];
  assert.deepEqual(kubectl(['get', 'kubevirt', '-n', 'kubevirt']).split('\n')[0].split(/\s+/).filter(Boolean), ['NAME', 'AGE', 'PHASE']);
  const pods = kubectl(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-api', '-o', 'name']);
  kubectl(['patch', ...cr, '--type', 'merge', '-p', '{"spec":{"configuration":{"network":{"defaultNetworkInterface":"masquerade"}}}}']);
  try {
    const vmi = example<{ metadata: { name: string } }>('vmi-ephemeral.yaml');
    vmi.metadata.name = 'masquerade-by-default';
    const created = await eventually('a VMI defaulted with the new binding', 30, () => {
      const out = JSON.parse(kubectl(['create', '--dry-run=server', '-o', 'json', '-n', NS, '-f', '-'], JSON.stringify(vmi)));
      return out.spec.domain.devices.interfaces[0].masquerade ? out : undefined;
    });
    assert.deepEqual(created.spec.domain.devices.interfaces, [{ name: 'default', masquerade: {} }]);
    assert.equal(
      kubectl(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-api', '-o', 'name']),
      pods,
      'no virt-api pod was replaced',
    );
  } finally {
    kubectl(['patch', ...cr, '--type', 'json', '-p', '[{"op":"remove","path":"/spec/configuration/network"}]']);
  }
});
