// A cluster of two nodes (npm start -- --nodes 2): both Ready with their own
// addresses, pods on one reach pods and Services on the other, and a VMI runs on
// node02, where its console answers. On a one-node cluster every test skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apply, deleteNamespace, eventually, getFromPod, kubectl, kubectlResult } from './kube.ts';
import { Session } from './session.ts';

const NS = 'kvts-two-nodes';
const SERVERS = 'registry:5000/kubevirt-ts/e2e-servers:devel';
type Node = {
  metadata: { name: string };
  status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string }[] };
};
const nodes = (JSON.parse(kubectl(['get', 'nodes', '-o', 'json'])) as { items: Node[] }).items;
const skip = nodes.length < 2 && `needs a cluster of two nodes (npm start -- --nodes 2); this one has ${nodes.length}`;
// Whatever taints a node carries (one kept free of other work), the test's pods go where they are sent.
const anywhere = [{ operator: 'Exists' }];

/** An HTTP server on node that answers with its node's name, behind a Service of its own name. */
function server(name: string, node: string) {
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node },
      tolerations: anywhere,
      containers: [
        {
          name: 'server',
          image: SERVERS,
          command: ['node', '-e', `require('http').createServer((q, s) => s.end('hello from ' + process.env.NODE)).listen(8080)`],
          env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
      terminationGracePeriodSeconds: 0,
    },
  });
  apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  });
}
const pod = (name: string) => JSON.parse(kubectl(['get', 'pod', name, '-n', NS, '-o', 'json']));

before(() => {
  if (skip) return;
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  server('on-node01', 'node01');
  server('on-node02', 'node02');
});
after(() => {
  if (!skip) deleteNamespace(NS);
});

test('two Ready nodes, node01 and node02, with distinct InternalIPs', { skip }, () => {
  assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), ['node01', 'node02']);
  for (const n of nodes) {
    assert.equal(n.status.conditions.find((c) => c.type === 'Ready')?.status, 'True', `${n.metadata.name} is Ready`);
  }
  const ips = nodes.map((n) => n.status.addresses.find((a) => a.type === 'InternalIP')?.address);
  assert.ok(ips.every(Boolean), `every node has an InternalIP: ${ips}`);
  assert.notEqual(ips[0], ips[1]);
});

test('a pod on node01 reaches a pod on node02 by IP and by its Service, and back by Service name', { skip }, async () => {
  kubectl(['wait', '--for=condition=Ready', 'pod/on-node01', 'pod/on-node02', '-n', NS, '--timeout=180s']);
  assert.equal(pod('on-node01').spec.nodeName, 'node01');
  assert.equal(pod('on-node02').spec.nodeName, 'node02');
  const ip = pod('on-node02').status.podIP;
  const serviceIp = kubectl(['get', 'service', 'on-node02', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}']);
  assert.equal(getFromPod(NS, 'on-node01', `http://${ip}:8080`), 'hello from node02');
  // kube-proxy may take a moment to program a new Service.
  await eventually('node02 by its Service', 30, () => getFromPod(NS, 'on-node01', `http://${serviceIp}`) === 'hello from node02');
  // The name resolves through CoreDNS, which runs on node01.
  await eventually(
    'node01 by its Service name',
    30,
    () => getFromPod(NS, 'on-node02', `http://on-node01.${NS}.svc.cluster.local`) === 'hello from node01',
  );
});

test('a VMI bound to node02 runs there, and its console answers', { skip }, async () => {
  apply({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'guest', namespace: NS },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': 'node02' },
      tolerations: anywhere,
      terminationGracePeriodSeconds: 0,
      domain: { memory: { guest: '128Mi' }, devices: { disks: [{ name: 'disk', disk: { bus: 'virtio' } }] } },
      volumes: [{ name: 'disk', containerDisk: { image: 'registry:5000/kubevirt-ts/test-guest-container-disk:devel' } }],
    },
  });
  const vmi = await eventually('the VMI Running', 240, () => {
    const r = kubectlResult(['get', 'vmi', 'guest', '-n', NS, '-o', 'json']);
    const v = r.status === 0 ? JSON.parse(r.stdout) : undefined;
    return v?.status?.phase === 'Running' ? v : undefined;
  });
  assert.equal(vmi.status.nodeName, 'node02');
  const console = Session.onPty(NS, ['console', 'guest']);
  try {
    await console.waitFor(/Successfully connected to guest console/, 60);
    await eventually('the login prompt', 180, async () => {
      console.write('\r');
      await new Promise((r) => setTimeout(r, 2000));
      return /login: $/m.test(console.output);
    });
    console.write('cirros\r');
    await console.waitFor(/Password: $/m, 30);
    console.write('gocubsgo\r');
    await console.waitFor(/~ \$ /, 30);
    console.write('echo "node02 says $((6*7))"\r');
    await console.waitFor(/node02 says 42/, 30);
  } finally {
    console.child.kill();
  }
});
