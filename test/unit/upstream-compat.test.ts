// Gaps found by running upstream KubeVirt's functional tests against kubevirt-ts (issue 17),
// each pinned here on the pure plan or render that closes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { KubeVirt, VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import { renderLauncherPod, renderTemporaryPod } from '../../src/controller/launcher-pod.ts';
import { planVm, startRevision, VM_FINALIZER, vmiFromVm, type VmRevisionLookup } from '../../src/controller/vm.ts';
import { planVmi } from '../../src/controller/vmi.ts';
import { withObservedStatus } from '../../src/handler/status.ts';
import { kubevirtStatus } from '../../src/operator/install.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'Always', config };

function vmi(metadata: Partial<VirtualMachineInstance['metadata']> = {}): VirtualMachineInstance {
  const source = example<VirtualMachineInstance>('vmi-nocloud.yaml');
  const v = defaultNewVmi({ ...source, metadata: { ...source.metadata, namespace: 'ns', ...metadata } }, config, fixedContext());
  v.metadata.uid = 'vmi-uid';
  return v;
}

test("the launcher pod carries the VMI's annotations, but not kubectl's nor the observed API versions", () => {
  const v = vmi({
    annotations: {
      'example.com/owner': 'team-a',
      'kubevirt.io/keep-launcher-alive-after-failure': 'true',
      'kubectl.kubernetes.io/last-applied-configuration': '{"big":"json"}',
      'kubevirt.io/storage-observed-api-version': 'v1',
      'kubevirt.io/latest-observed-api-version': 'v1',
    },
  });
  for (const pod of [renderLauncherPod(v, params), renderTemporaryPod(v, params)]) {
    const annotations = pod.metadata!.annotations!;
    assert.equal(annotations['example.com/owner'], 'team-a');
    assert.equal(annotations['kubevirt.io/keep-launcher-alive-after-failure'], 'true');
    assert.equal(annotations['kubectl.kubernetes.io/last-applied-configuration'], undefined);
    assert.equal(annotations['kubevirt.io/storage-observed-api-version'], undefined);
    assert.equal(annotations['kubevirt.io/latest-observed-api-version'], undefined);
    // Ours stay in place whatever the VMI carries.
    assert.equal(annotations['kubevirt.io/domain'], 'vmi-nocloud');
    assert.equal(annotations['kubectl.kubernetes.io/default-container'], 'compute');
  }
});

test('a VMI named past 63 characters gets a pod the API admits: the hostname and the name label cut as upstream', () => {
  const long = `a-very-long-virtual-machine-name-${'x'.repeat(40)}`;
  assert.ok(long.length > 63);
  const pod = renderLauncherPod(vmi({ name: long }), params);
  assert.equal(pod.spec!.hostname, long.slice(0, 63));
  assert.equal(pod.metadata!.labels!['vm.kubevirt.io/name'], long.slice(0, 63));
  // The id is upstream's: a prefix and the name's SHA-1.
  const id = pod.metadata!.labels!['vmi.kubevirt.io/id'];
  assert.equal(id.length, 63);
  assert.match(id, /^a-very-long-virtual-machine-name-x+-[0-9a-f]{8}$/);
  for (const value of Object.values(pod.metadata!.labels!)) assert.ok(value.length <= 63, value);
  // A dotted name is cut at its first dot, and spec.hostname, when set, wins.
  assert.equal(renderLauncherPod(vmi({ name: 'web.example' }), params).spec!.hostname, 'web');
  const named = vmi({ name: long });
  named.spec.hostname = 'guest';
  const withHostname = renderLauncherPod(named, params);
  assert.equal(withHostname.spec!.hostname, 'guest');
  assert.equal(withHostname.metadata!.labels!['vm.kubevirt.io/name'], 'guest');
});

function vmOf(generation: number, runStrategy = 'Always'): VirtualMachine {
  const v = example<VirtualMachine>('vm-cirros.yaml');
  v.metadata = { ...v.metadata, namespace: 'ns', uid: 'vm-uid', generation, finalizers: [VM_FINALIZER] };
  v.spec.runStrategy = runStrategy;
  return v;
}

/** The VMI the VM created, as the cache shows it once it runs, and the revisions holding the start revision. */
function runningVmiOf(vm: VirtualMachine): { vmi: VirtualMachineInstance; revisions: VmRevisionLookup } {
  const created = vmiFromVm(vm);
  const revision = startRevision(vm);
  const revisions = { get: (name: string) => (name === revision.metadata?.name ? revision : undefined), list: () => [revision] };
  const status = { phase: 'Running', virtualMachineRevisionName: revision.metadata?.name };
  return { vmi: { ...created, metadata: { ...created.metadata, uid: 'vmi-uid' }, status }, revisions };
}

const AS_READ = { now: new Date('2026-11-22T10:00:00Z'), jitter: 0 };

test("the VMI is started from a revision of the VM's spec, named as upstream names it, and records the VM's generation", () => {
  const vm = vmOf(2);
  const plan = planVm(vm, undefined);
  assert.equal(plan.createVmi?.metadata.annotations?.['kubevirt.io/vm-generation'], '2');
  assert.equal(plan.createVmi?.status?.virtualMachineRevisionName, 'revision-start-vm-vm-uid-2');
  assert.deepEqual(plan.startRevision?.create?.data, { spec: vm.spec });
  assert.equal(plan.startRevision?.create?.revision, 2);
  assert.deepEqual(plan.startRevision?.delete, []);
  // Started again at generation 5, while generation 2's revision is cached: it goes, and 5's is written.
  const { revisions } = runningVmiOf(vm);
  const again = planVm(vmOf(5), undefined, AS_READ, undefined, undefined, revisions);
  assert.deepEqual(again.startRevision?.delete, ['revision-start-vm-vm-uid-2']);
  assert.equal(again.startRevision?.create?.metadata?.name, 'revision-start-vm-vm-uid-5');
  // One already cached (an earlier start's VMI not seen yet) is not written again.
  const cached = planVm(vm, undefined, AS_READ, undefined, undefined, revisions);
  assert.deepEqual(cached.startRevision, { delete: [] });
});

test("the VM's status reports the VMI's generation as observed, and its own as desired", () => {
  const vm = vmOf(2);
  const { vmi, revisions } = runningVmiOf(vm);
  const plan = planVm(vm, vmi, AS_READ, undefined, undefined, revisions);
  assert.equal(plan.status.observedGeneration, 2);
  assert.equal(plan.status.desiredGeneration, 2);
  assert.equal(plan.patchVmi, undefined);
});

test("a new VM generation that leaves the template alone is the running VMI's too; one that changes it waits for a restart", () => {
  const started = vmOf(2);
  const { vmi, revisions } = runningVmiOf(started);
  // A run strategy change (generation 3): the template the VMI runs is still the VM's.
  const manual = { ...vmOf(3, 'Manual') };
  const bumped = planVm(manual, vmi, AS_READ, undefined, undefined, revisions);
  assert.deepEqual(bumped.patchVmi, [
    { op: 'test', path: '/metadata/resourceVersion', value: vmi.metadata.resourceVersion },
    {
      op: 'replace',
      path: '/metadata/annotations',
      value: { ...vmi.metadata.annotations, 'kubevirt.io/vm-generation': '3' },
    },
  ]);
  assert.equal(bumped.status.observedGeneration, 3);
  assert.equal(bumped.status.desiredGeneration, 3);
  // A template label (generation 3): the VMI stays at 2, as upstream's "should not update the vmi generation annotation".
  const relabelled = vmOf(3);
  relabelled.spec.template.metadata = { ...relabelled.spec.template.metadata, labels: { testkey: 'testvalue' } };
  const held = planVm(relabelled, vmi, AS_READ, undefined, undefined, revisions);
  assert.equal(held.patchVmi, undefined);
  assert.equal(held.status.observedGeneration, 2);
  assert.equal(held.status.desiredGeneration, 3);
  // Without its start revision nothing tells what the VMI runs: it stays at 2, as upstream's.
  assert.equal(planVm(manual, vmi).patchVmi, undefined);
  // Without a VMI the last figures stay.
  const stopped = planVm({ ...vmOf(4, 'Halted'), status: { observedGeneration: 2, desiredGeneration: 3 } }, undefined);
  assert.equal(stopped.status.observedGeneration, 2);
  assert.equal(stopped.status.desiredGeneration, 3);
});

const PAUSED_READY = {
  status: 'False',
  reason: 'ReadinessGatesNotReady',
  message: 'the status of pod readiness gate "kubevirt.io/virtual-machine-unpaused" is not "True", but False',
};
const conditionOf = (v: { status?: { conditions?: { type: string }[] } } | undefined, type: string) =>
  v?.status?.conditions?.find((c) => c.type === type) as Record<string, string> | undefined;

test("a paused VMI is not Ready, with the reason upstream's readiness gate gives; the VM takes both conditions", () => {
  const running = vmi();
  running.status = {
    phase: 'Running',
    nodeName: 'node01',
    conditions: [
      { type: 'Ready', status: 'True', lastTransitionTime: '2026-11-22T09:00:00Z' },
      {
        type: 'Paused',
        status: 'True',
        reason: 'PausedByUser',
        message: 'VMI was paused by user',
        lastTransitionTime: '2026-11-22T09:30:00Z',
      },
    ],
  };
  const pod = renderLauncherPod(running, params);
  pod.metadata = { ...pod.metadata, name: 'virt-launcher-vmi-nocloud-abcde', uid: 'pod-uid' };
  pod.spec!.nodeName = 'node01';
  pod.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  const paused = planVmi(running, [pod], params, '2026-11-22T10:00:00Z').update;
  assert.deepEqual(
    { ...conditionOf(paused, 'Ready'), lastTransitionTime: undefined },
    { type: 'Ready', ...PAUSED_READY, lastTransitionTime: undefined },
  );
  // Unpaused, it is Ready again.
  const unpaused = {
    ...paused!,
    status: { ...paused!.status, conditions: paused!.status!.conditions!.filter((c) => c.type !== 'Paused') },
  };
  assert.equal(conditionOf(planVmi(unpaused, [pod], params, '2026-11-22T10:01:00Z').update, 'Ready')?.status, 'True');

  // The VM mirrors Paused, and its Ready follows the VMI's.
  const vm = vmOf(1);
  const vmPlan = planVm(vm, { ...paused!, metadata: { ...paused!.metadata, ownerReferences: vmiFromVm(vm).metadata.ownerReferences } });
  assert.equal(conditionOf(vmPlan, 'Paused')?.status, 'True');
  assert.equal(conditionOf(vmPlan, 'Paused')?.reason, 'PausedByUser');
  assert.equal(conditionOf(vmPlan, 'Ready')?.reason, 'ReadinessGatesNotReady');
  assert.equal(vmPlan.status.ready, false);
});

test('a guest started paused is written Running but not Ready by virt-handler', () => {
  const scheduled = vmi();
  scheduled.status = { phase: 'Scheduled', conditions: [] };
  const next = withObservedStatus(scheduled, { domain: { state: 'Paused', reason: 'User' }, podReady: 'True' }, 'T');
  assert.equal(next.status?.phase, 'Running');
  assert.deepEqual(conditionOf(next, 'Ready'), { type: 'Ready', ...PAUSED_READY, lastTransitionTime: 'T' });
  const booted = withObservedStatus(scheduled, { domain: { state: 'Running', reason: 'Booted' }, podReady: 'True' }, 'T');
  assert.deepEqual(conditionOf(booted, 'Ready'), { type: 'Ready', status: 'True', lastTransitionTime: 'T' });
});

test("the KubeVirt CR's status is upstream's: Created, the target and observed deployment, the generations", () => {
  const kv = { metadata: { name: 'kubevirt', namespace: 'kubevirt', generation: 3 }, spec: {} } as KubeVirt;
  const images = { image: 'registry:5000/kubevirt-ts/virt-ts:devel', launcherImage: 'x', imagePullPolicy: 'IfNotPresent' };
  const generations = [{ group: 'apps', resource: 'daemonsets', namespace: 'kubevirt', name: 'virt-handler', lastGeneration: 1 }];
  const at = '2026-11-22T10:00:00Z';
  const conditions = (s: KubeVirt['status']) =>
    Object.fromEntries((s?.conditions ?? []).map((c) => [c.type, [c.status, c.reason, c.message]]));

  const deploying = kubevirtStatus(kv, { waiting: ['DaemonSet virt-handler 0/1 ready'], generations }, images, at);
  assert.equal(deploying.phase, 'Deploying');
  const message = 'Deploying version devel with registry registry:5000';
  assert.deepEqual(conditions(deploying), {
    Available: ['False', 'DeploymentInProgress', message],
    Progressing: ['True', 'DeploymentInProgress', message],
    Degraded: ['False', 'DeploymentInProgress', message],
    Created: ['True', 'AllResourcesCreated', 'All resources were created.'],
  });
  assert.equal(deploying.targetKubeVirtVersion, 'devel');
  assert.equal(deploying.targetKubeVirtRegistry, 'registry:5000');
  assert.match(deploying.targetDeploymentID ?? '', /^[0-9a-f]{40}$/);
  assert.equal(JSON.parse(deploying.targetDeploymentConfig ?? '{}').id, deploying.targetDeploymentID);
  assert.equal(deploying.observedDeploymentID, undefined);
  assert.equal(deploying.observedGeneration, undefined, 'observed only once deployed');
  assert.equal(deploying.operatorVersion, 'v1.7.0-kubevirt-ts');
  assert.deepEqual(deploying.generations, generations);

  const deployed = kubevirtStatus({ ...kv, status: deploying }, { waiting: [], generations }, images, at);
  assert.equal(deployed.phase, 'Deployed');
  assert.deepEqual(conditions(deployed), {
    Available: ['True', 'AllComponentsReady', 'All components are ready.'],
    Progressing: ['False', 'AllComponentsReady', 'All components are ready.'],
    Degraded: ['False', 'AllComponentsReady', 'All components are ready.'],
    Created: ['True', 'AllResourcesCreated', 'All resources were created.'],
  });
  assert.equal(deployed.observedKubeVirtVersion, 'devel');
  assert.equal(deployed.observedKubeVirtRegistry, 'registry:5000');
  assert.equal(deployed.observedDeploymentID, deployed.targetDeploymentID);
  assert.equal(deployed.observedGeneration, 3);

  // A new tag over a deployed install is an update: still Available, Degraded while it rolls.
  const retagged = { ...images, image: 'registry:5000/kubevirt-ts/virt-ts:v2' };
  const updating = kubevirtStatus({ ...kv, status: deployed }, { waiting: ['Deployment virt-api 0/2 ready'] }, retagged, at);
  assert.notEqual(updating.targetDeploymentID, deployed.observedDeploymentID);
  assert.deepEqual(conditions(updating).Available, [
    'True',
    'UpdateInProgress',
    'Transitioning from previous version devel with registry registry:5000 to target version v2 using registry registry:5000',
  ]);
  assert.equal(conditions(updating).Degraded[0], 'True');
  assert.equal(updating.observedKubeVirtVersion, 'devel');
});

test('a VM deleted with propagationPolicy Orphan leaves its VMI running and only lets go of its finalizer', () => {
  const vm = vmOf(2);
  const { vmi } = runningVmiOf(vm);
  const deleting = { ...vm, metadata: { ...vm.metadata, deletionTimestamp: '2026-11-22T10:00:00Z', finalizers: ['orphan', VM_FINALIZER] } };
  const orphaned = planVm(deleting, vmi);
  assert.equal(orphaned.deleteVmi, undefined);
  assert.deepEqual(orphaned.finalizers, ['orphan']);
  // Deleted in the foreground or background, the VMI goes first, and the finalizer stays until it is gone.
  const background = { ...vm, metadata: { ...vm.metadata, deletionTimestamp: '2026-11-22T10:00:00Z' } };
  const stopped = planVm(background, vmi);
  assert.equal(stopped.deleteVmi, true);
  assert.equal(stopped.finalizers, undefined);
});
