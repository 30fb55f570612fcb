// Simulated nodes (hack/cluster/kwok.ts, which bench/scale.ts runs its VMIs on): virt-handler
// stays off them; a VMI that tolerates and selects one is Scheduled there once KWOK makes its
// launcher pod Running; virt-controller's node controller leaves the node alone, since no
// virt-handler ever heartbeat there (as upstream); `remove` takes the nodes and KWOK away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addFakeNodes, FAKE_NODE_SELECTOR, FAKE_NODE_TOLERATION, removeFakeNodes } from '../../hack/cluster/kwok.ts';
import { kubectl, kubectlResult, deleteNamespace, eventually, apply } from './kube.ts';

const NS = 'kvts-kwok';
const json = (args: string[]) => JSON.parse(kubectl([...args, '-o', 'json']));
const isFake = (node: { metadata: { annotations?: Record<string, string> } }) =>
  node.metadata.annotations?.['kwok.x-k8s.io/node'] === 'fake';
let fakeNode = '';

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  [fakeNode] = addFakeNodes(1);
});
after(() => {
  deleteNamespace(NS, true);
  removeFakeNodes();
});

test('virt-handler stays off a simulated node', () => {
  const realNodes = json(['get', 'nodes']).items.filter((n: Parameters<typeof isFake>[0]) => !isFake(n)).length;
  assert.equal(json(['get', 'daemonset', 'virt-handler', '-n', 'kubevirt']).status.desiredNumberScheduled, realNodes);
  const handlers = json(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler']).items;
  assert.ok(handlers.every((p: { spec: { nodeName?: string } }) => p.spec.nodeName !== fakeNode));
});

test('a VMI that tolerates and selects the simulated node is Scheduled there, and the node controller leaves both alone', async () => {
  apply({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'simulated', namespace: NS },
    spec: {
      nodeSelector: FAKE_NODE_SELECTOR,
      tolerations: [FAKE_NODE_TOLERATION],
      domain: { devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' } },
      volumes: [{ name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt-ts/test-guest-container-disk:devel' } }],
    },
  });
  const vmi = await eventually('the VMI Scheduled', 60, () => {
    const v = json(['get', 'vmi', 'simulated', '-n', NS]);
    return v.status?.phase === 'Scheduled' && v;
  });
  assert.equal(vmi.status.nodeName, fakeNode);
  const pod = json(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${vmi.metadata.uid}`]).items[0];
  assert.deepEqual([pod.spec.nodeName, pod.status.phase], [fakeNode, 'Running']);
  // The node controller looks at the node whenever a VMI on it changes: give it a few rounds.
  await new Promise((resolve) => setTimeout(resolve, 5000));
  assert.equal(json(['get', 'node', fakeNode]).metadata.labels['kubevirt.io/schedulable'], 'true');
  assert.equal(json(['get', 'vmi', 'simulated', '-n', NS]).status.phase, 'Scheduled');
});

test('remove takes the simulated nodes and KWOK away', () => {
  kubectl(['delete', 'vmi', 'simulated', '-n', NS, '--ignore-not-found', '--wait=true', '--timeout=60s']);
  removeFakeNodes();
  assert.ok(!json(['get', 'nodes']).items.some(isFake));
  assert.notEqual(kubectlResult(['get', 'deployment', 'kwok-controller', '-n', 'kube-system']).status, 0);
});
