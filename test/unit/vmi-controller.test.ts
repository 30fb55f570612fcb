// The VMI controller's decisions and the launcher pod it renders, from seeded
// objects (sample-controller style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { DataVolume, VirtualMachineInstance } from '../../src/api/types.ts';
import { isEphemeralProvisioningPod } from '../../src/contract/vmi.ts';
import { guestMemoryBytes, memoryOverheadBytes, renderLauncherPod, renderTemporaryPod } from '../../src/controller/launcher-pod.ts';
import { claimInfo, lookUpVolumes, planVmi, type VmiVolumes } from '../../src/controller/vmi.ts';
import { heartbeatExpired, planNode } from '../../src/controller/node.ts';
import { NodeLease } from '../../src/handler/node-lease.ts';
import { createLogger } from '../../src/lib/log.ts';
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

test('on a node whose virt-handler stopped heartbeating, an ended pod is left to the node controller (NodeUnresponsive), a pod gone is not', () => {
  const v = vmi('vmi-nocloud.yaml', 'Running');
  v.status!.nodeName = 'node01';
  const ended = planVmi(v, [podOf(v, { phase: 'Failed' })], params, NOW, false, undefined, true);
  assert.equal(ended.update?.status?.phase ?? 'Running', 'Running');
  assert.equal(ended.events.length, 0);
  assert.equal(planVmi(v, [], params, NOW, false, undefined, true).update?.status?.phase, 'Failed');
  const node = { metadata: { name: 'node01', annotations: { 'kubevirt.io/heartbeat': '2026-11-22T09:50:00Z' } } };
  const unresponsive = planNode(node, [v], [podOf(v, { phase: 'Failed' })], Date.parse(NOW));
  assert.deepEqual(
    unresponsive.failVmis.map((f) => f.metadata.name),
    ['vmi-nocloud'],
  );
  assert.equal(heartbeatExpired(node, Date.parse(NOW)), true);
  assert.equal(heartbeatExpired(node, Date.parse('2026-11-22T09:54:00Z')), false);
  assert.equal(heartbeatExpired({ metadata: { name: 'never' } }, Date.parse(NOW)), false);
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
  // A node no virt-handler ever heartbeat on (a simulated one) is left alone, as upstream: its
  // schedulable label stays and its VMIs, with or without a running pod, do not fail.
  const simulated = { metadata: { name: 'node01', labels: { 'kubevirt.io/schedulable': 'true' } } };
  assert.deepEqual(planNode(simulated, [stranded, alive], [alivePod], Date.now()), { markUnschedulable: false, failVmis: [] });
  // A virt-handler that took the node's lease but died before its first heartbeat: looked at again when fencing is due.
  const leased = Date.parse('2026-11-22T10:01:00Z');
  assert.equal(planNode(simulated, [], [], leased + 1000, undefined, leased).recheckAfterMs, 60_000);
  // Self-fencing: once the node's lease is older than its 40 s and a 20 s margin, its launchers
  // have stopped their guests: every VMI there fails, a running pod or not, well before the heartbeat times out.
  const renewed = Date.parse('2026-11-22T10:01:00Z');
  const held = planNode(node, [stranded, alive], [alivePod], renewed + 59_000, undefined, renewed);
  assert.deepEqual([held.markUnschedulable, held.failVmis.length, held.recheckAfterMs], [false, 0, 2000]);
  const fenced = planNode(node, [stranded, alive], [alivePod], renewed + 61_000, undefined, renewed);
  assert.equal(fenced.markUnschedulable, true);
  assert.deepEqual(fenced.failVmis.map((v) => v.metadata.name).sort(), ['vmi-fedora', 'vmi-nocloud']);
  // No kubelet there will confirm the end of their pods: they are deleted at once.
  assert.deepEqual(
    fenced.forceDeletePods?.map((p) => p.metadata?.name),
    [alivePod.metadata?.name],
  );
});

test('node lease: each renewal tells the launchers it is held for 40 s from when it was asked; a failed one tells nothing', async () => {
  const told: number[] = [];
  let fail = false;
  const lease = new NodeLease({
    node: 'node01',
    renew: async () => {
      if (fail) throw new Error('apiserver unreachable');
    },
    renewed: (until) => told.push(until),
    log: createLogger('test', {}, () => undefined),
    now: () => 1_000,
  });
  await lease.renewNow();
  fail = true;
  await lease.renewNow();
  assert.deepEqual(told, [41_000]);
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

// Claims and DataVolumes: vmi-pvc with its root disk on a DataVolume's claim besides its own claim.
function vmiWithClaims(phase = ''): VirtualMachineInstance {
  const v = vmi('vmi-pvc.yaml', phase);
  v.spec.domain.devices.disks = [
    { name: 'rootdisk', disk: { bus: 'virtio' } },
    { name: 'pvcdisk', disk: { bus: 'virtio' } },
  ];
  v.spec.volumes = [
    { name: 'rootdisk', dataVolume: { name: 'root-dv' } },
    { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'disk-alpine' } },
  ];
  return v;
}

function claim(name: string, extra: { owner?: string; mode?: string; annotations?: Record<string, string> } = {}): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace: 'ns',
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      ...(extra.owner
        ? {
            ownerReferences: [
              { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: extra.owner, uid: `uid-${extra.owner}`, controller: true },
            ],
          }
        : {}),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...(extra.mode ? { volumeMode: extra.mode } : {}),
    },
    status: { phase: 'Bound', capacity: { storage: '2Gi' } },
  };
}

function dataVolume(name: string, phase: string | undefined, ready?: string): DataVolume {
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}` },
    spec: {},
    status: { ...(phase ? { phase } : {}), ...(ready ? { conditions: [{ type: 'Ready', status: ready }] } : {}) },
  };
}

const claims = (pvcs: V1PersistentVolumeClaim[], dvs: DataVolume[] = []): VmiVolumes => ({
  pvcs: new Map(pvcs.map((p) => [p.metadata!.name!, p])),
  dataVolumes: new Map(dvs.map((d) => [d.metadata.name!, d])),
});
const condition = (v: VirtualMachineInstance | undefined, type: string) => v?.status?.conditions?.find((c) => c.type === type);
/** Both claims bound, the root disk's DataVolume in the phase given. */
const withRoot = (phase: string | undefined, ready?: string) =>
  claims([claim('root-dv', { owner: 'root-dv' }), claim('disk-alpine')], [dataVolume('root-dv', phase, ready)]);

test('a claim that does not exist holds the pod back: Synchronized and PodScheduled say so, and a Normal event, until it appears', () => {
  const message = 'PVC ns/root-dv does not exist, waiting for it to appear';
  const waiting = planVmi(vmiWithClaims(), [], params, NOW, false, claims([claim('disk-alpine')]));
  assert.equal(waiting.createPod, undefined);
  assert.equal(waiting.update?.status?.phase, 'Pending');
  assert.deepEqual(condition(waiting.update, 'Synchronized'), {
    type: 'Synchronized',
    status: 'False',
    reason: 'FailedPvcNotFound',
    message,
    lastTransitionTime: NOW,
  });
  assert.deepEqual(condition(waiting.update, 'PodScheduled'), {
    type: 'PodScheduled',
    status: 'False',
    reason: 'Unschedulable',
    message,
    lastTransitionTime: NOW,
  });
  assert.deepEqual(waiting.events, [{ type: 'Normal', reason: 'FailedPvcNotFound', message }]);
  const plain = planVmi(vmiWithClaims(), [], params, NOW, false, claims([claim('root-dv')]));
  assert.equal(condition(plain.update, 'Synchronized')?.message, 'PVC ns/disk-alpine does not exist, waiting for it to appear');
  // The claims appear (neither of a DataVolume): the pod is made, and the conditions go.
  const appeared = planVmi(waiting.update!, [], params, NOW, false, claims([claim('root-dv'), claim('disk-alpine')]));
  assert.ok(appeared.createPod);
  assert.equal(appeared.update?.status?.phase, 'Scheduling');
  assert.equal(condition(appeared.update, 'Synchronized'), undefined);
  assert.equal(condition(appeared.update, 'PodScheduled'), undefined);
  assert.deepEqual(appeared.events, []);
});

test('a claim of a DataVolume is as ready as its DataVolume, for every phase', () => {
  const cases: [string | undefined, 'launcher' | 'temporary' | 'none', string][] = [
    ['Succeeded', 'launcher', 'Scheduling'],
    ['PendingPopulation', 'launcher', 'Scheduling'],
    ['WaitForFirstConsumer', 'temporary', 'Pending'],
    [undefined, 'none', 'Pending'],
    ['Pending', 'none', 'Pending'],
    ['ImportScheduled', 'none', 'Pending'],
    ['ImportInProgress', 'none', 'Pending'],
    ['CloneInProgress', 'none', 'Pending'],
    ['UploadReady', 'none', 'Pending'],
    ['Failed', 'none', 'Failed'],
  ];
  for (const [phase, pod, next] of cases) {
    const plan = planVmi(vmiWithClaims(), [], params, NOW, false, withRoot(phase));
    const made = !plan.createPod ? 'none' : isEphemeralProvisioningPod(plan.createPod) ? 'temporary' : 'launcher';
    assert.equal(made, pod, String(phase));
    assert.equal(plan.update?.status?.phase, next, String(phase));
  }
  const failed = planVmi(vmiWithClaims(), [], params, NOW, false, withRoot('Failed'));
  assert.deepEqual(failed.events, [
    { type: 'Warning', reason: 'Stopped', message: 'The VirtualMachineInstance failed: its DataVolume root-dv failed' },
  ]);
  assert.equal(failed.update?.status?.reason, undefined, "a failed import is the DataVolume's to tell");
  // A claim of a DataVolume the cache does not hold: an error, the pod waits.
  const orphan = planVmi(vmiWithClaims(), [], params, NOW, false, claims([claim('root-dv', { owner: 'root-dv' }), claim('disk-alpine')]));
  assert.equal(orphan.createPod, undefined);
  assert.equal(condition(orphan.update, 'Synchronized')?.reason, 'FailedDataVolumeImport');
  assert.equal(
    condition(orphan.update, 'Synchronized')?.message,
    'Error determining if volume is ready DataVolume ns/root-dv of PVC root-dv not found',
  );
  assert.deepEqual(
    orphan.events.map((e) => [e.type, e.reason]),
    [['Warning', 'FailedPvcNotFound']],
  );
  // A persistentVolumeClaim volume on a DataVolume's claim waits for that DataVolume too.
  const byClaim = vmiWithClaims();
  byClaim.spec.volumes![1] = { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'imported' } };
  const importing = claims([claim('root-dv'), claim('imported', { owner: 'import-dv' })], [dataVolume('import-dv', 'ImportInProgress')]);
  assert.equal(planVmi(byClaim, [], params, NOW, false, importing).createPod, undefined);
  // A hotplugged claim is attached later, by its own pod: it holds nothing back.
  const hotplug = vmiWithClaims();
  hotplug.spec.volumes![1] = { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'later', hotpluggable: true } };
  assert.ok(planVmi(hotplug, [], params, NOW, false, claims([claim('root-dv')])).createPod);
});

test('the temporary pod: the launcher pod as it will be scheduled, with one container that exits at once', () => {
  const v = vmi('vmi-nocloud.yaml');
  v.spec.volumes!.push({ name: 'rootdisk', dataVolume: { name: 'root-dv' } });
  v.spec.nodeSelector = { disk: 'ssd' };
  v.spec.tolerations = [{ key: 'dedicated', operator: 'Exists' }];
  v.spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [] }] } } };
  const lookup = new Map([['root-dv', claim('root-dv', { owner: 'root-dv' })]]);
  const launcher = renderLauncherPod(v, params, lookup);
  const temporary = renderTemporaryPod(v, params, lookup);
  assert.equal(temporary.metadata?.annotations?.['kubevirt.io/ephemeral-provisioning'], 'true');
  assert.ok(isEphemeralProvisioningPod(temporary));
  assert.ok(!isEphemeralProvisioningPod(launcher));
  assert.deepEqual(temporary.metadata?.labels, launcher.metadata?.labels);
  assert.deepEqual(temporary.metadata?.ownerReferences, launcher.metadata?.ownerReferences);
  assert.equal(temporary.metadata?.generateName, 'virt-launcher-vmi-nocloud-');
  assert.equal(temporary.spec?.restartPolicy, 'Never');
  assert.deepEqual(
    temporary.spec!.containers.map((c) => c.name),
    ['compute'],
    'no image holders, no console log',
  );
  assert.equal(temporary.spec?.initContainers, undefined);
  const [compute] = temporary.spec!.containers;
  assert.deepEqual(compute.command, ['/bin/true']);
  assert.equal(compute.args, undefined);
  assert.equal(compute.lifecycle, undefined);
  assert.deepEqual(compute.resources, launcher.spec!.containers[0].resources);
  assert.ok(compute.volumeMounts!.some((m) => m.name === 'rootdisk'));
  assert.ok(!compute.volumeMounts!.some((m) => m.name === 'virt-bin-share-dir'));
  assert.deepEqual(
    temporary.spec!.volumes!.find((vol) => vol.name === 'rootdisk'),
    { name: 'rootdisk', persistentVolumeClaim: { claimName: 'root-dv' } },
  );
  assert.ok(!temporary.spec!.volumes!.some((vol) => vol.name === 'virt-bin-share-dir'));
  for (const field of ['nodeSelector', 'affinity', 'tolerations', 'securityContext'] as const)
    assert.deepEqual(temporary.spec?.[field], launcher.spec?.[field], field);
});

test('WaitForFirstConsumer: a temporary pod binds the claims; it is never the launcher; it goes once the DataVolume moves on; then the launcher comes', () => {
  const v = vmiWithClaims();
  const first = planVmi(v, [], params, NOW, false, withRoot('WaitForFirstConsumer', 'False'));
  assert.ok(first.createPod && isEphemeralProvisioningPod(first.createPod));
  const pending = first.update!;
  assert.equal(pending.status?.phase, 'Pending', 'a temporary pod moves the VMI nowhere');
  assert.deepEqual(condition(pending, 'Provisioning'), { type: 'Provisioning', status: 'True', lastTransitionTime: NOW });
  assert.equal(condition(pending, 'Ready')?.reason, 'PodNotExists');
  assert.equal(pending.status?.volumeStatus, undefined, 'written with the launcher pod, not this one');
  // The created pod shows up, and the scheduler cannot place it yet: the VMI says why.
  const temporary = (patch: Partial<V1Pod['status']>, meta: Partial<NonNullable<V1Pod['metadata']>> = {}) => {
    const pod = renderTemporaryPod(v, params);
    pod.metadata = { ...pod.metadata, name: 'virt-launcher-vmi-pvc-tmp', uid: 'tmp-uid', ...meta };
    pod.status = { phase: 'Pending', ...patch };
    return pod;
  };
  const unplaced = temporary({ conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes' }] });
  const waiting = planVmi(pending, [unplaced], params, NOW, false, withRoot('WaitForFirstConsumer', 'False'));
  assert.equal(waiting.createPod, undefined);
  assert.equal(waiting.deletePods, undefined);
  assert.deepEqual(
    [condition(waiting.update, 'PodScheduled')?.reason, condition(waiting.update, 'PodScheduled')?.message],
    ['Unschedulable', '0/1 nodes'],
  );
  assert.equal(waiting.update?.status?.phase, 'Pending');
  // Placed and done: the claim is bound and the import starts; while it is still WFFC the pod stays.
  const done = temporary({ phase: 'Succeeded', conditions: [{ type: 'PodScheduled', status: 'True' }] });
  const bound = planVmi(waiting.update!, [done], params, NOW, false, withRoot('WaitForFirstConsumer', 'False'));
  assert.equal(bound.deletePods, undefined);
  assert.equal(condition(bound.update, 'PodScheduled'), undefined);
  for (const podPhase of ['Running', 'Succeeded', 'Failed']) {
    const importing = planVmi(pending, [temporary({ phase: podPhase })], params, NOW, false, withRoot('ImportInProgress', 'False'));
    assert.deepEqual(
      importing.deletePods?.map((p) => p.metadata?.name),
      ['virt-launcher-vmi-pvc-tmp'],
      podPhase,
    );
    assert.deepEqual(importing.events, [
      { type: 'Normal', reason: 'SuccessfulDelete', message: 'Deleted WaitForFirstConsumer temporary pod virt-launcher-vmi-pvc-tmp' },
    ]);
    assert.equal(importing.createPod, undefined, 'not while the temporary pod is still there');
    assert.equal(importing.update?.status?.phase ?? pending.status?.phase, 'Pending');
  }
  const stillPending = planVmi(pending, [temporary({ phase: 'Pending' })], params, NOW, false, withRoot('ImportInProgress', 'False'));
  assert.equal(stillPending.deletePods, undefined, 'a pending temporary pod may still be about to bind');
  const going = planVmi(
    pending,
    [temporary({ phase: 'Succeeded' }, { deletionTimestamp: new Date(NOW) })],
    params,
    NOW,
    false,
    withRoot('Succeeded'),
  );
  assert.equal(going.deletePods, undefined, 'never deleted twice');
  assert.equal(going.createPod, undefined, 'the launcher waits until it is gone');
  // Gone, and the DataVolume filled: the launcher pod, and the VMI on its way.
  const started = planVmi(pending, [], params, NOW, false, withRoot('Succeeded', 'True'));
  assert.ok(started.createPod && !isEphemeralProvisioningPod(started.createPod));
  assert.equal(started.update?.status?.phase, 'Scheduling');
  assert.equal(condition(started.update, 'Provisioning'), undefined);
  assert.equal(condition(started.update, 'DataVolumesReady')?.reason, 'AllDVsReady');
  // A temporary pod left behind once the VMI runs on is still cleaned up, and never counted as its pod.
  const scheduling = started.update!;
  const launcher = podOf(scheduling, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
  const leftover = temporary({ phase: 'Succeeded' });
  const on = planVmi(scheduling, [leftover, launcher], params, NOW, false, withRoot('Succeeded', 'True'));
  assert.equal(on.update?.status?.phase, 'Scheduled');
  assert.deepEqual(on.update?.status?.activePods, { 'pod-uid': 'node01' });
  assert.deepEqual(
    on.deletePods?.map((p) => p.metadata?.name),
    ['virt-launcher-vmi-pvc-tmp'],
  );
  const alone = planVmi(
    { ...scheduling, status: { ...scheduling.status, phase: 'Running' } },
    [temporary({ phase: 'Running' })],
    params,
    NOW,
  );
  assert.equal(alone.update?.status?.phase, 'Failed', 'a temporary pod is no launcher for a running VMI');
});

test('a temporary pod that fails or is deleted while its claims wait fails the VMI', () => {
  const v = vmiWithClaims('Pending');
  const pod = renderTemporaryPod(v, params);
  pod.metadata = { ...pod.metadata, name: 'tmp', uid: 'tmp-uid' };
  pod.status = { phase: 'Failed' };
  const failed = planVmi(v, [pod], params, NOW, false, withRoot('WaitForFirstConsumer'));
  assert.equal(failed.update?.status?.phase, 'Failed');
  assert.equal(failed.update?.status?.reason, 'PodTerminating');
  assert.match(failed.events[0].message, /the temporary pod tmp that binds its claims failed/);
  pod.status = { phase: 'Pending' };
  pod.metadata.deletionTimestamp = new Date(NOW);
  assert.equal(planVmi(v, [pod], params, NOW, false, withRoot('WaitForFirstConsumer')).update?.status?.phase, 'Failed');
  pod.status = { phase: 'Succeeded' };
  delete pod.metadata.deletionTimestamp;
  assert.equal(planVmi(v, [pod], params, NOW, false, withRoot('WaitForFirstConsumer')).update?.status?.phase, 'Pending');
  // Deleting the VMI takes its temporary pod along.
  const deleting = { ...v, metadata: { ...v.metadata, deletionTimestamp: NOW } };
  pod.status = { phase: 'Running' };
  assert.deepEqual(
    planVmi(deleting, [pod], params, NOW, false, withRoot('WaitForFirstConsumer')).deletePods?.map((p) => p.metadata?.name),
    ['tmp'],
  );
});

test("DataVolumesReady aggregates the DataVolumes' Ready conditions, in every phase", () => {
  const ready = (...states: (string | undefined)[]) => {
    const v = vmiWithClaims('Running');
    const pvcs = [claim('root-dv', { owner: 'root-dv' }), claim('disk-alpine', { owner: 'data-dv' })];
    const dvs = [dataVolume('root-dv', 'Succeeded', states[0]), dataVolume('data-dv', 'Succeeded', states[1])];
    return condition(planVmi(v, [podOf(v, { phase: 'Running' })], params, NOW, false, claims(pvcs, dvs)).update, 'DataVolumesReady');
  };
  assert.deepEqual(ready('True', 'True'), {
    type: 'DataVolumesReady',
    status: 'True',
    reason: 'AllDVsReady',
    message: "All of the VMI's DVs are bound and ready",
    lastTransitionTime: NOW,
  });
  assert.deepEqual(
    [ready('True', 'False')?.status, ready('True', 'False')?.reason, ready('True', 'False')?.message],
    ['False', 'NotAllDVsReady', "Not all of the VMI's DVs are ready"],
  );
  assert.equal(ready('True', undefined)?.status, 'Unknown', 'a missing condition is Unknown');
  assert.equal(ready(undefined, 'False')?.status, 'False', 'False wins over Unknown');
  const none = planVmi(vmi('vmi-nocloud.yaml', 'Running'), [], params, NOW);
  assert.equal(condition(none.update, 'DataVolumesReady'), undefined, 'a VMI without DataVolumes gets none');
});

test("volumeStatus: each volume sorted by name, with the claim's mode, size and overhead, written with the launcher pod and kept current", () => {
  const v = vmiWithClaims();
  v.spec.volumes!.push({ name: 'a-first', emptyDisk: { capacity: '1Gi' } });
  const pvcs = [
    claim('root-dv', { owner: 'root-dv', annotations: { 'cdi.kubevirt.io/storage.preallocation': 'true' } }),
    claim('disk-alpine', { mode: 'Block' }),
  ];
  const plan = planVmi(v, [], params, NOW, false, claims(pvcs, [dataVolume('root-dv', 'Succeeded')]));
  assert.deepEqual(plan.update?.status?.volumeStatus, [
    { name: 'a-first', target: '' },
    {
      name: 'pvcdisk',
      target: '',
      persistentVolumeClaimInfo: {
        claimName: 'disk-alpine',
        accessModes: ['ReadWriteOnce'],
        volumeMode: 'Block',
        capacity: { storage: '2Gi' },
        requests: { storage: '1Gi' },
        filesystemOverhead: '0',
      },
    },
    {
      name: 'rootdisk',
      target: '',
      persistentVolumeClaimInfo: {
        claimName: 'root-dv',
        accessModes: ['ReadWriteOnce'],
        capacity: { storage: '2Gi' },
        requests: { storage: '1Gi' },
        preallocated: true,
        // No CDIConfig: CDI's default.
        filesystemOverhead: '0.06',
      },
    },
  ]);
  // What others wrote in an entry stays; a grown claim is seen; a claim the cache lost keeps its last info.
  const running = structuredClone(plan.update!);
  running.status!.phase = 'Running';
  running.status!.volumeStatus![2].target = 'vda';
  const grown = structuredClone(pvcs);
  grown[0].status!.capacity = { storage: '4Gi' };
  const later = planVmi(
    running,
    [podOf(running, { phase: 'Running' })],
    params,
    NOW,
    false,
    claims([grown[0]], [dataVolume('root-dv', 'Succeeded')]),
  );
  const root = later.update?.status?.volumeStatus?.find((s) => s.name === 'rootdisk');
  assert.equal(root?.target, 'vda');
  assert.deepEqual(root?.persistentVolumeClaimInfo?.capacity, { storage: '4Gi' });
  assert.equal(later.update?.status?.volumeStatus?.find((s) => s.name === 'pvcdisk')?.persistentVolumeClaimInfo?.volumeMode, 'Block');
});

test("volumeStatus: the filesystem overhead is the CDIConfig's for the claim's StorageClass, else its global one; none on a block device", () => {
  const overheads = { global: '0.08', storageClass: { fast: '0.02' } };
  const fast = claim('root-dv');
  fast.spec!.storageClassName = 'fast';
  assert.equal(claimInfo(fast, overheads).filesystemOverhead, '0.02');
  const other = claim('root-dv');
  other.spec!.storageClassName = 'slow';
  assert.equal(claimInfo(other, overheads).filesystemOverhead, '0.08');
  assert.equal(claimInfo(claim('root-dv'), overheads).filesystemOverhead, '0.08', 'a claim naming no class: the global share');
  assert.equal(claimInfo(claim('disk-alpine', { mode: 'Block' }), overheads).filesystemOverhead, '0');
  assert.equal(claimInfo(fast).filesystemOverhead, '0.06', "no CDIConfig status: CDI's default");
  // Through the plan, as the controller hands it the CDIConfig's status from its cache.
  const v = vmiWithClaims();
  const owned = claim('root-dv', { owner: 'root-dv' });
  owned.spec!.storageClassName = 'fast';
  const looked = {
    ...claims([owned, claim('disk-alpine', { mode: 'Block' })], [dataVolume('root-dv', 'Succeeded')]),
    filesystemOverhead: overheads,
  };
  const plan = planVmi(v, [], params, NOW, false, looked);
  const root = plan.update?.status?.volumeStatus?.find((s) => s.name === 'rootdisk');
  assert.equal(root?.persistentVolumeClaimInfo?.filesystemOverhead, '0.02');
});

test('the launcher pod: a dataVolume volume mounts its claim; a Block claim is a device at /dev/<volume>; fsGroup is qemu', () => {
  const v = vmiWithClaims();
  const pod = renderLauncherPod(v, params, new Map([['disk-alpine', claim('disk-alpine', { mode: 'Block' })]]));
  const compute = pod.spec!.containers[0];
  assert.deepEqual(
    pod.spec!.volumes!.filter((vol) => vol.persistentVolumeClaim),
    [
      { name: 'rootdisk', persistentVolumeClaim: { claimName: 'root-dv' } },
      { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'disk-alpine', readOnly: false } },
    ],
  );
  assert.ok(compute.volumeMounts!.some((m) => m.name === 'rootdisk' && m.mountPath === '/var/run/kubevirt-private/vmi-disks/rootdisk'));
  assert.ok(!compute.volumeMounts!.some((m) => m.name === 'pvcdisk'), 'a block device is not mounted');
  assert.deepEqual(compute.volumeDevices, [{ name: 'pvcdisk', devicePath: '/dev/pvcdisk' }]);
  assert.equal(pod.spec?.securityContext?.fsGroup, 107);
  assert.equal(renderLauncherPod(v, params).spec!.containers[0].volumeDevices, undefined, 'a claim not known is mounted');
});

test('the lookups: each volume’s claim, and the DataVolumes its dataVolume volumes name or its claims belong to', () => {
  const v = vmiWithClaims();
  v.spec.volumes![1] = { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'imported' } };
  const pvcs = new Map([
    ['root-dv', claim('root-dv', { owner: 'root-dv' })],
    ['imported', claim('imported', { owner: 'import-dv' })],
  ]);
  const dvs = new Map([
    ['root-dv', dataVolume('root-dv', 'Succeeded')],
    ['import-dv', dataVolume('import-dv', 'Succeeded')],
  ]);
  const looked = lookUpVolumes(
    v,
    (n) => pvcs.get(n),
    (n) => dvs.get(n),
  );
  assert.deepEqual([...looked.pvcs.keys()].sort(), ['imported', 'root-dv']);
  assert.deepEqual([...looked.dataVolumes.keys()].sort(), ['import-dv', 'root-dv']);
});
