// What the informers keep of each object (lib/kube.ts makeInformer's transform, as client-go's
// SetTransform): bookkeeping is dropped, and each component's read paths still work on what is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { computeStatus, launcherPodAsRead } from '../../src/contract/launcher-pod.ts';
import { renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { planNode } from '../../src/controller/node.ts';
import { nodeAsRead } from '../../src/controller/node-controller.ts';
import { planVmi } from '../../src/controller/vmi.ts';
import { chain, compact, makeInformer, stripManagedFields, withoutLastApplied } from '../../src/lib/kube.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'Always', config };
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const managedFields = [{ manager: 'kubelet', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': {} } }];

function vmi(phase: string): VirtualMachineInstance {
  const base = example<VirtualMachineInstance>('vmi-nocloud.yaml');
  const v = defaultNewVmi({ ...base, metadata: { ...base.metadata, namespace: 'ns' } }, config, fixedContext());
  v.metadata.uid = 'vmi-uid';
  v.metadata.resourceVersion = '7';
  v.status = { ...v.status, phase };
  return v;
}

/** A launcher pod as kube-apiserver sends it: scheduled, running, with managedFields and kubectl's annotation. */
function launcherPod(owner: VirtualMachineInstance): V1Pod {
  const pod = renderLauncherPod(owner, params);
  pod.metadata = {
    ...pod.metadata,
    name: 'virt-launcher-x-abcde',
    uid: 'pod-uid',
    resourceVersion: '9',
    managedFields,
    annotations: { ...pod.metadata?.annotations, [LAST_APPLIED]: '{"big":"copy"}' },
  };
  pod.spec!.nodeName = 'node01';
  pod.status = {
    phase: 'Running',
    conditions: [
      { type: 'Ready', status: 'True' },
      { type: 'PodScheduled', status: 'True' },
    ],
    containerStatuses: [
      { name: 'compute', containerID: 'containerd://abc', ready: true, restartCount: 0, image: 'x', imageID: 'y', started: true },
    ],
  };
  return pod;
}

test('every informer drops managedFields and undefined fields; last-applied goes only where asked', () => {
  const typed = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1', managedFields, labels: undefined }, spec: undefined };
  assert.deepEqual(stripManagedFields(typed), { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' } });
  const when = new Date('2026-11-22T10:00:00Z');
  assert.equal(compact({ t: when }).t, when, 'Dates stay Dates');
  const annotated = { metadata: { name: 'a', annotations: { [LAST_APPLIED]: '{}', keep: 'me' } } };
  assert.deepEqual(stripManagedFields(structuredClone(annotated)).metadata.annotations, annotated.metadata.annotations);
  assert.deepEqual(withoutLastApplied(structuredClone(annotated)).metadata.annotations, { keep: 'me' });
  assert.deepEqual(withoutLastApplied({ metadata: { name: 'a', annotations: { [LAST_APPLIED]: '{}' } } }).metadata, { name: 'a' });
});

test('launcher pods as virt-controller keeps them: Scheduling → Scheduled still reads the node, the conditions and the compute image', () => {
  const v = vmi('Scheduling');
  const full = launcherPod(v);
  const kept = chain(withoutLastApplied, launcherPodAsRead)(stripManagedFields(structuredClone(full)));
  assert.equal(kept.metadata?.managedFields, undefined);
  assert.equal(kept.metadata?.annotations?.[LAST_APPLIED], undefined);
  assert.deepEqual(Object.keys(kept.spec!), ['nodeName', 'containers']);
  assert.ok(JSON.stringify(kept).length < JSON.stringify(full).length / 2, 'well under half the size');
  const fromFull = planVmi(v, [full], params, '2026-11-22T10:00:00Z').update;
  const fromKept = planVmi(v, [kept], params, '2026-11-22T10:00:00Z').update;
  assert.equal(fromKept?.status?.phase, 'Scheduled');
  assert.equal(fromKept?.status?.nodeName, 'node01');
  assert.equal(fromKept?.status?.launcherContainerImageVersion, params.launcherImage);
  assert.deepEqual(fromKept, fromFull, 'the same update from either');
});

test("launcher pods as virt-handler keeps them: its node, its owner, the compute container's ID", () => {
  const kept = launcherPodAsRead(stripManagedFields(launcherPod(vmi('Scheduled'))));
  assert.equal(kept.spec?.nodeName, 'node01');
  assert.equal(kept.metadata?.ownerReferences?.[0]?.uid, 'vmi-uid');
  assert.equal(kept.metadata?.uid, 'pod-uid');
  assert.equal(computeStatus(kept)?.containerID, 'containerd://abc');
});

test('nodes as virt-controller keeps them: metadata only, and the node plan is the same', () => {
  const node: V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'node01',
      managedFields,
      labels: { 'kubevirt.io/schedulable': 'true' },
      annotations: { 'kubevirt.io/heartbeat': '2026-11-22T10:00:00Z' },
    },
    spec: { podCIDR: '10.244.0.0/24' },
    status: { images: [{ names: ['registry:5000/a@sha256:1'], sizeBytes: 1 }], conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const kept = nodeAsRead(stripManagedFields(structuredClone(node)));
  assert.deepEqual(Object.keys(kept), ['apiVersion', 'kind', 'metadata']);
  assert.equal(kept.metadata?.managedFields, undefined);
  for (const now of ['2026-11-22T10:01:00Z', '2026-11-22T10:09:00Z'])
    assert.deepEqual(planNode(kept, [], [], Date.parse(now)), planNode(node, [], [], Date.parse(now)));
});

test('makeInformer applies the transform to listed items and to watched objects, before handlers and the cache see them', async () => {
  const watched = {
    type: 'MODIFIED',
    object: { metadata: { name: 'b', namespace: 'ns', resourceVersion: '3', managedFields }, spec: { x: 1 } },
  };
  const server = createServer((req, res) => {
    assert.match(req.url ?? '', /watch=true/);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write(`${JSON.stringify(watched)}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  type Obj = {
    metadata: { name: string; namespace: string; resourceVersion: string; managedFields?: typeof managedFields };
    spec: { x: number; seen?: true };
  };
  const informer = makeInformer<Obj>(
    kc,
    '/api/v1/things',
    async () => ({
      metadata: { resourceVersion: '2' },
      items: [{ metadata: { name: 'a', namespace: 'ns', resourceVersion: '2', managedFields }, spec: { x: 0 } }],
    }),
    undefined,
    (o) => ({ ...o, spec: { ...o.spec, seen: true } }),
  );
  const updated = new Promise<Obj>((resolve) => informer.on('add', (o) => o.metadata.name === 'b' && resolve(o)));
  try {
    await informer.start();
    assert.deepEqual(informer.get('a', 'ns'), {
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '2' },
      spec: { x: 0, seen: true },
    });
    assert.deepEqual(await updated, { metadata: { name: 'b', namespace: 'ns', resourceVersion: '3' }, spec: { x: 1, seen: true } });
    assert.deepEqual(informer.get('b', 'ns'), await updated);
  } finally {
    await informer.stop();
    server.closeAllConnections();
    server.close();
  }
});
