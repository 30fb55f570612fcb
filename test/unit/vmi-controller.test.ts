// The VMI controller's decisions and the launcher pod it renders, from seeded
// objects (sample-controller style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { guestMemoryBytes, memoryOverheadBytes, renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { planVmi } from '../../src/controller/vmi.ts';
import { planNode } from '../../src/controller/node.ts';
import { Expectations, UpdateExpectations } from '../../src/lib/expectations.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'Always', config };
const NOW = '2026-11-22T10:00:00Z';

function vmi(name = 'vmi-nocloud.yaml', phase = ''): VirtualMachineInstance {
  const v = defaultNewVmi(
    { ...example<VirtualMachineInstance>(name), metadata: { ...example<VirtualMachineInstance>(name).metadata, namespace: 'ns' } },
    config,
    fixedContext(),
  );
  v.metadata.uid = 'vmi-uid';
  v.metadata.resourceVersion = '7';
  v.status = { ...v.status, phase };
  return v;
}

function podOf(
  owner: VirtualMachineInstance,
  patch: Partial<V1Pod['status']> = {},
  meta: Partial<NonNullable<V1Pod['metadata']>> = {},
): V1Pod {
  const pod = renderLauncherPod(owner, params);
  pod.metadata = { ...pod.metadata, name: 'virt-launcher-x-abcde', uid: 'pod-uid', ...meta };
  pod.spec!.nodeName = 'node01';
  pod.status = { phase: 'Pending', ...patch };
  return pod;
}

test('the launcher pod is named, labelled and owned as upstream, and runs unprivileged without a token', () => {
  const v = vmi();
  const pod = renderLauncherPod(v, params);
  assert.equal(pod.metadata?.generateName, 'virt-launcher-vmi-nocloud-');
  assert.equal(pod.metadata?.labels?.['kubevirt.io'], 'virt-launcher');
  assert.equal(pod.metadata?.labels?.['kubevirt.io/created-by'], 'vmi-uid');
  assert.equal(pod.metadata?.labels?.['vm.kubevirt.io/name'], 'vmi-nocloud');
  assert.deepEqual(pod.metadata?.ownerReferences, [
    {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      name: 'vmi-nocloud',
      uid: 'vmi-uid',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(pod.spec?.automountServiceAccountToken, false);
  assert.equal(pod.spec?.securityContext?.runAsUser, 107);
  assert.equal(pod.spec?.nodeSelector?.['kubevirt.io/schedulable'], 'true');
  for (const c of pod.spec!.containers) {
    assert.equal(c.securityContext?.runAsNonRoot, true, c.name);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
  }
  assert.deepEqual(
    pod.spec!.containers.map((c) => c.name),
    ['compute', 'volumecontainerdisk', 'guest-console-log'],
  );
  assert.equal(pod.spec!.containers[1].image, 'registry:5000/kubevirt/cirros-container-disk-demo:devel');
  // No init container: compute's postStart hook hands the holders their binary before the kubelet starts them.
  assert.equal(pod.spec!.initContainers, undefined);
  assert.deepEqual(pod.spec!.containers[0].lifecycle?.postStart?.exec?.command, [
    '/bin/cp',
    '/usr/bin/container-disk',
    '/init/usr/bin/container-disk',
  ]);
  assert.deepEqual(pod.spec!.containers[1].command, ['/init/usr/bin/container-disk']);
  assert.equal(pod.spec!.terminationGracePeriodSeconds, 0 + 15);
});

test("the helper containers' resources: ours by default, each request and limit of the KubeVirt CR's supportContainerResources in place", () => {
  const helpers = (pod: V1Pod) => Object.fromEntries(pod.spec!.containers.slice(1).map((c) => [c.name, c.resources]));
  assert.deepEqual(helpers(renderLauncherPod(vmi(), params)), {
    volumecontainerdisk: { requests: { cpu: '1m', memory: '1Mi' }, limits: { cpu: '100m', memory: '8Mi' } },
    'guest-console-log': { requests: { cpu: '5m', memory: '4Mi' }, limits: { cpu: '100m', memory: '16Mi' } },
  });
  const custom = new ClusterConfig({
    developerConfiguration: { useEmulation: true },
    supportContainerResources: [
      { type: 'container-disk', resources: { limits: { cpu: '10m', memory: '40M' } } },
      { type: 'guest-console-log', resources: { requests: { cpu: 2 } } },
    ],
  });
  assert.deepEqual(helpers(renderLauncherPod(vmi(), { ...params, config: custom })), {
    volumecontainerdisk: { requests: { cpu: '1m', memory: '1Mi' }, limits: { cpu: '10m', memory: '40M' } },
    'guest-console-log': { requests: { cpu: '2', memory: '4Mi' }, limits: { cpu: '100m', memory: '16Mi' } },
  });
});

test("the compute container asks for the guest's memory plus the measured overhead, and 100m per vCPU", () => {
  const v = vmi('vmi-fedora.yaml');
  const pod = renderLauncherPod(v, params);
  const compute = pod.spec!.containers[0];
  const Mi = 1024 * 1024;
  assert.equal(guestMemoryBytes(v), 1024 * 1000 * 1000);
  assert.equal(memoryOverheadBytes(v), (150 + 8 + 16) * Mi);
  assert.equal(compute.resources?.requests?.memory, `${(1024 * 1000 * 1000 + memoryOverheadBytes(v)) / 1024}Ki`);
  assert.equal(compute.resources?.requests?.cpu, '100m');
  const big = vmi('vmi-fedora.yaml');
  big.spec.domain.resources = { requests: { cpu: '100', memory: '64Mi' } };
  assert.equal(renderLauncherPod(big, params).spec!.containers[0].resources?.requests?.cpu, '100');
});

test('kernel boot, PVCs and cloud-init secrets are carried into the pod', () => {
  const kb = renderLauncherPod(vmi('vmi-kernel-boot.yaml'), params);
  assert.ok(kb.spec!.containers.some((c) => c.name === 'kernel-boot'));
  const pvc = renderLauncherPod(vmi('vmi-pvc.yaml'), params);
  const claim = pvc.spec!.volumes!.find((v) => v.persistentVolumeClaim);
  assert.ok(claim);
  assert.ok(
    pvc.spec!.containers[0].volumeMounts!.some(
      (m) => m.name === claim.name && m.mountPath.startsWith('/var/run/kubevirt-private/vmi-disks/'),
    ),
  );
});

test('Pending: a pod is created once; expectations and an existing pod prevent a second, and keep Scheduling until the cache shows it', () => {
  const v = vmi();
  const plan = planVmi(v, [], params, NOW);
  assert.ok(plan.createPod);
  assert.equal(plan.update?.status?.phase, 'Scheduling', 'created pod and phase in one write');
  assert.deepEqual(
    plan.update?.status?.phaseTransitionTimestamps?.map((t) => t.phase),
    ['Pending', 'Scheduling'],
  );
  assert.equal(planVmi(v, [], params, NOW, true).createPod, undefined, 'a created pod the cache has not shown yet');
  const withPod = planVmi(v, [podOf(v)], params, NOW);
  assert.equal(withPod.createPod, undefined);
  assert.equal(withPod.update?.status?.phase, 'Scheduling');
  // The created pod showing up in the cache, bound but not ready, is nothing new to write.
  const written = plan.update!;
  assert.equal(written.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'GuestNotRunning');
  // Scheduling is written before the cache shows the created pod: that is not a pod gone.
  assert.deepEqual(planVmi(written, [], params, NOW, true), { events: [] }, 'waits for the created pod');
  assert.equal(planVmi(written, [], params, NOW).update?.status?.phase, 'Failed', 'a pod seen and gone fails the VMI');
  assert.equal(planVmi(written, [podOf(written)], params, NOW).update, undefined);
  const scheduled = planVmi(
    written,
    [podOf(written, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] })],
    params,
    NOW,
  ).update;
  assert.deepEqual(scheduled?.status?.activePods, { 'pod-uid': 'node01' }, "the pod's node is written with Scheduled");
});

test("a pod that merely carries launcher labels is not the VMI's pod", () => {
  const v = vmi('vmi-nocloud.yaml', 'Scheduling');
  const impostor = podOf(v, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }, { ownerReferences: [] });
  const plan = planVmi(v, [impostor], params, NOW);
  assert.equal(plan.update?.status?.phase, 'Failed', 'no pod of its own: the scheduling VMI failed');
  assert.equal(plan.update?.status?.nodeName, undefined);
  const pending = planVmi(vmi(), [impostor], params, NOW);
  assert.ok(pending.createPod, 'a pending VMI still gets its own pod');
});

test("Scheduling → Scheduled when the pod is ready: nodeName and label, and no event (the pod's own events say it, as upstream)", () => {
  const v = vmi('vmi-nocloud.yaml', 'Scheduling');
  const plan = planVmi(
    v,
    [
      podOf(v, {
        phase: 'Running',
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'PodScheduled', status: 'True' },
        ],
      }),
    ],
    params,
    NOW,
  );
  assert.equal(plan.update?.status?.phase, 'Scheduled');
  assert.equal(plan.update?.status?.nodeName, 'node01');
  assert.equal(plan.update?.metadata.labels?.['kubevirt.io/nodeName'], 'node01');
  assert.deepEqual(plan.update?.status?.activePods, { 'pod-uid': 'node01' });
  assert.equal(plan.update?.status?.phaseTransitionTimestamps?.at(-1)?.phase, 'Scheduled');
  assert.deepEqual(plan.events, []);
});

test('pod trouble is mirrored: Unschedulable and image pull failures', () => {
  const v = vmi('vmi-nocloud.yaml', 'Scheduling');
  const unschedulable = planVmi(
    v,
    [
      podOf(v, {
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' },
        ],
      }),
    ],
    params,
    NOW,
  );
  assert.deepEqual(
    unschedulable.update?.status?.conditions?.find((c) => c.type === 'PodScheduled'),
    {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message: '0/1 nodes are available: 1 Insufficient cpu.',
      lastTransitionTime: NOW,
    },
  );
  for (const reason of ['ErrImagePull', 'ImagePullBackOff']) {
    const pulling = planVmi(
      v,
      [
        podOf(v, {
          containerStatuses: [
            {
              name: 'volumecontainerdisk',
              image: 'x',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { waiting: { reason, message: 'not found' } },
            },
          ],
        }),
      ],
      params,
      NOW,
    );
    const sync = pulling.update?.status?.conditions?.find((c) => c.type === 'Synchronized');
    assert.equal(sync?.reason, reason);
    assert.equal(sync?.status, 'False');
  }
  // Unchanged trouble is not written again.
  const again = planVmi(
    unschedulable.update!,
    [
      podOf(v, {
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' },
        ],
      }),
    ],
    params,
    '2026-11-22T10:05:00Z',
  );
  assert.equal(again.update, undefined);
});

test('a deleted or failed pod fails the VMI; the finalizer comes off once no pod is left', () => {
  const v = vmi('vmi-nocloud.yaml', 'Scheduled');
  v.metadata.finalizers = ['kubevirt.io/foregroundDeleteVirtualMachine'];
  const gone = planVmi(v, [], params, NOW);
  assert.equal(gone.update?.status?.phase, 'Failed');
  assert.deepEqual(gone.update?.metadata.finalizers, []);
  assert.ok(gone.events.some((e) => e.type === 'Warning'));
  const ended = planVmi(v, [podOf(v, { phase: 'Failed' })], params, NOW);
  assert.equal(ended.update?.status?.phase, 'Failed');
  assert.deepEqual(ended.update?.metadata.finalizers, ['kubevirt.io/foregroundDeleteVirtualMachine'], 'kept while the pod object exists');
});

test('deleting a VMI deletes its pod (gracefully), never twice', () => {
  const v = vmi('vmi-nocloud.yaml', 'Scheduled');
  v.metadata.deletionTimestamp = NOW;
  const pod = podOf(v, { phase: 'Running' });
  assert.deepEqual(
    planVmi(v, [pod], params, NOW).deletePods?.map((p) => p.metadata?.name),
    ['virt-launcher-x-abcde'],
  );
  pod.metadata!.deletionTimestamp = new Date(NOW);
  assert.equal(planVmi(v, [pod], params, NOW).deletePods, undefined);
});

test('node controller: a stale heartbeat makes the node unschedulable and fails its VMIs without a running pod', () => {
  const node = {
    metadata: {
      name: 'node01',
      labels: { 'kubevirt.io/schedulable': 'true' },
      annotations: { 'kubevirt.io/heartbeat': '2026-11-22T10:00:00Z' },
    },
  };
  const stranded = vmi('vmi-nocloud.yaml', 'Running');
  stranded.status!.nodeName = 'node01';
  const alive = { ...vmi('vmi-fedora.yaml', 'Running'), metadata: { ...vmi('vmi-fedora.yaml').metadata, uid: 'other' } };
  alive.status!.nodeName = 'node01';
  const alivePod = podOf(alive, { phase: 'Running' });
  alivePod.metadata!.ownerReferences![0].uid = 'other';
  const fresh = planNode(node, [stranded, alive], [alivePod], Date.parse('2026-11-22T10:04:00Z'));
  assert.deepEqual([fresh.markUnschedulable, fresh.failVmis.length], [false, 0]);
  assert.equal(fresh.recheckAfterMs, 61_000);
  const stale = planNode(node, [stranded, alive], [alivePod], Date.parse('2026-11-22T10:05:01Z'));
  assert.equal(stale.markUnschedulable, true);
  assert.deepEqual(
    stale.failVmis.map((v) => v.metadata.name),
    ['vmi-nocloud'],
  );
  assert.deepEqual(planNode({ metadata: { name: 'fresh-node' } }, [], [], Date.now()), { markUnschedulable: false, failVmis: [] });
});

test('expectations hold a key until the creation is observed, and expire', () => {
  let t = 0;
  const e = new Expectations(() => t);
  assert.equal(e.satisfied('ns/a'), true);
  e.expectCreations('ns/a', 1);
  assert.equal(e.satisfied('ns/a'), false);
  e.creationObserved('ns/a');
  assert.equal(e.satisfied('ns/a'), true);
  e.expectCreations('ns/b', 1);
  t = 6 * 60 * 1000;
  assert.equal(e.satisfied('ns/b'), true);
});

test('after an update the cached copy it wrote over is skipped until the cache moves on; a no-op write, a vanished object or an old entry holds nothing', () => {
  let t = 0;
  const e = new UpdateExpectations(() => t);
  assert.equal(e.stale('ns/a', '10'), false);
  e.wrote('ns/a', '10', '11');
  assert.equal(e.stale('ns/a', '10'), true, 'the cache still shows the version written over');
  assert.equal(e.stale('ns/a', '11'), false, 'the cache shows the write');
  assert.equal(e.stale('ns/a', '10'), false, 'the expectation is gone once met');
  e.wrote('ns/b', '20', '20');
  assert.equal(e.stale('ns/b', '20'), false, 'kube-apiserver wrote nothing: no watch event will come');
  e.wrote('ns/c', '30', '31');
  t = 11_000;
  assert.equal(e.stale('ns/c', '30'), false, 'a lost watch event cannot hold the key for ever');
  e.wrote('ns/d', '40', undefined);
  assert.equal(e.stale('ns/d', '40'), false, 'the object was gone: nothing was written');
  e.wrote('ns/e', '50', '51');
  e.forget('ns/e');
  assert.equal(e.stale('ns/e', '50'), false, 'a key whose object is gone is forgotten');
});
