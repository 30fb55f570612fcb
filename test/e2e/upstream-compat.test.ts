// Behaviour upstream KubeVirt's functional tests check, found missing by running them against
// kubevirt-ts (issue 17): the VMI's annotations on its launcher pod, a VMI named past 63
// characters, the VM's generations, a paused VMI not Ready and its VM Paused, and a VM deleted
// with propagationPolicy Orphan leaving its VMI. Guests are the small cirros demo disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apply, deleteNamespace, eventually, kubectl, kubectlResult } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-upstream-compat';
const IMAGE = 'registry:5000/kubevirt/cirros-container-disk-demo:devel';

type Condition = { type: string; status: string; reason?: string; message?: string };
type Obj = {
  metadata: {
    name: string;
    uid: string;
    generation?: number;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: { uid: string }[];
    deletionTimestamp?: string;
  };
  spec: Record<string, unknown> & { hostname?: string };
  status?: Record<string, unknown> & { phase?: string; conditions?: Condition[] };
};

const get = (kind: string, name: string): Obj | undefined => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const condition = (o: Obj | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type);
/** The VMI's launcher pods that are not on their way out (a temporary claim binder is none). */
const launcherPods = (vmiUid: string): Obj[] =>
  (JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${vmiUid}`, '-o', 'json'])).items as Obj[]).filter(
    (p) => !p.metadata.deletionTimestamp,
  );
const vmiRunning = (name: string, seconds = 180) =>
  eventually(`the VMI ${name} Running`, seconds, () => {
    const vmi = get('vmi', name);
    return vmi?.status?.phase === 'Running' ? vmi : undefined;
  });
const subresource = (kind: 'virtualmachines' | 'virtualmachineinstances', name: string, action: string, body: object = {}) =>
  kubectlResult(
    ['replace', '--raw', `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/${kind}/${name}/${action}`, '-f', '-'],
    JSON.stringify(body),
  );

/** A VMI of the cirros demo disk, small, stopped at once when deleted. */
function cirrosVmi(name: string, annotations: Record<string, string> = {}) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: NS, annotations },
    spec: {
      terminationGracePeriodSeconds: 0,
      domain: { devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' } },
      volumes: [{ name: 'containerdisk', containerDisk: { image: IMAGE } }],
    },
  };
}

/** vm-cirros under another name (Halted; 128Mi), its template labels following the name. */
function cirrosVm(name: string) {
  const vm = example<{
    metadata: { name: string; labels?: Record<string, string> };
    spec: { runStrategy?: string; template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } } };
  }>('vm-cirros.yaml');
  vm.metadata = { ...vm.metadata, name, labels: { 'kubevirt.io/vm': name } };
  vm.spec.template.metadata = { labels: { 'kubevirt.io/vm': name } };
  return vm;
}

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test("the launcher pod carries the VMI's annotations, but not kubectl's last-applied-configuration", async () => {
  // kubectl apply writes last-applied-configuration onto the VMI, which upstream keeps off the pod.
  apply(cirrosVmi('annotated', { 'example.com/owner': 'team-a', 'kubevirt.io/keep-launcher-alive-after-failure': 'false' }));
  const vmi = await eventually('the VMI', 30, () => get('vmi', 'annotated'));
  assert.ok(vmi.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], 'kubectl apply annotated the VMI');
  const pod = await eventually('its launcher pod', 60, () => launcherPods(vmi.metadata.uid)[0]);
  const annotations = pod.metadata.annotations ?? {};
  assert.equal(annotations['example.com/owner'], 'team-a');
  assert.equal(annotations['kubevirt.io/keep-launcher-alive-after-failure'], 'false');
  assert.equal(annotations['kubectl.kubernetes.io/last-applied-configuration'], undefined);
  assert.equal(annotations['kubevirt.io/domain'], 'annotated');
  assert.equal(annotations['kubectl.kubernetes.io/default-container'], 'compute');
  kubectl(['delete', 'vmi', 'annotated', '-n', NS, '--wait=false']);
});

test('a VMI named past 63 characters gets its pod (hostname and labels cut as upstream) and runs', async () => {
  const name = `long-${'a'.repeat(70)}`;
  assert.ok(name.length > 63);
  kubectl(['create', '-f', '-'], JSON.stringify(cirrosVmi(name)));
  const vmi = await vmiRunning(name);
  const [pod] = launcherPods(vmi.metadata.uid);
  assert.ok(pod, 'a launcher pod');
  assert.equal(pod.spec.hostname, name.slice(0, 63));
  assert.equal(pod.metadata.labels?.['vm.kubevirt.io/name'], name.slice(0, 63));
  assert.match(pod.metadata.labels?.['vmi.kubevirt.io/id'] ?? '', /^long-a+-[0-9a-f]{8}$/);
  for (const value of Object.values(pod.metadata.labels ?? {})) assert.ok(value.length <= 63, value);
  kubectl(['delete', 'vmi', name, '-n', NS, '--wait=false']);
});

const generationState = (name: string) => {
  const vm = get('vm', name);
  const vmi = get('vmi', name);
  return {
    generation: vm?.metadata.generation,
    desired: vm?.status?.desiredGeneration,
    observed: vm?.status?.observedGeneration,
    annotation: vmi?.metadata.annotations?.['kubevirt.io/vm-generation'],
  };
};
const expectGenerations = (name: string, expected: ReturnType<typeof generationState>) =>
  eventually(`generations ${JSON.stringify(expected)}`, 30, () => {
    const state = generationState(name);
    return JSON.stringify(state) === JSON.stringify(expected) ? state : undefined;
  }).catch((error: Error) => assert.fail(`${error.message}; last seen ${JSON.stringify(generationState(name))}`));

test("the VM's generation is recorded on its VMI and reported as observed and desired, as upstream", async () => {
  const vm = cirrosVm('generations');
  // Upstream's tests annotate each VMI with the test's name; Go's JSON escapes its `>`.
  vm.spec.template.metadata = { ...vm.spec.template.metadata, annotations: { 'kubevirt.io/created-by-test': 'grace>0 & <more>' } };
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
  // start turns runStrategy Halted into Always: generation 2, the VMI's generation too.
  const started = subresource('virtualmachines', 'generations', 'start');
  assert.equal(started.status, 0, started.stderr);
  await vmiRunning('generations');
  await expectGenerations('generations', { generation: 2, desired: 2, observed: 2, annotation: '2' });
  // The VMI names the revision of the VM's spec it was started from, as upstream's "should always have updated vm revision".
  const startedVm = get('vm', 'generations')!;
  const revisionName = String(get('vmi', 'generations')?.status?.virtualMachineRevisionName);
  assert.equal(revisionName, `revision-start-vm-${startedVm.metadata.uid}-2`);
  const revision = JSON.parse(kubectl(['get', 'controllerrevision', revisionName, '-n', NS, '-o', 'json']));
  assert.equal(revision.revision, 2);
  assert.deepEqual(revision.data.spec, startedVm.spec);
  // A change outside the template (the run strategy) is the running VMI's generation too.
  kubectl(['patch', 'vm', 'generations', '-n', NS, '--type', 'merge', '-p', '{"spec":{"runStrategy":"Manual"}}']);
  await expectGenerations('generations', { generation: 3, desired: 3, observed: 3, annotation: '3' });
  // A template change waits for a restart (upstream's "should not update the vmi generation annotation").
  kubectl([
    'patch',
    'vm',
    'generations',
    '-n',
    NS,
    '--type',
    'json',
    '-p',
    '[{"op":"add","path":"/spec/template/metadata/labels/testkey","value":"testvalue"}]',
  ]);
  await expectGenerations('generations', { generation: 4, desired: 4, observed: 3, annotation: '3' });
});

test('a paused VMI is not Ready (ReadinessGatesNotReady) and its VM shows Paused; unpaused, both are Ready again', async () => {
  // The VM of the test before, running under Manual.
  await vmiRunning('generations');
  await eventually('the VM Ready', 120, () => get('vm', 'generations')?.status?.ready === true);
  const paused = subresource('virtualmachineinstances', 'generations', 'pause');
  assert.equal(paused.status, 0, paused.stderr);
  const vm = await eventually('the VM Paused condition', 60, () => {
    const v = get('vm', 'generations');
    return condition(v, 'Paused')?.status === 'True' && condition(v, 'Ready')?.status === 'False' ? v : undefined;
  });
  assert.equal(condition(vm, 'Ready')?.reason, 'ReadinessGatesNotReady');
  assert.equal(vm.status?.ready, false);
  assert.equal(vm.status?.printableStatus, 'Paused');
  const vmi = get('vmi', 'generations');
  assert.equal(condition(vmi, 'Paused')?.status, 'True');
  assert.deepEqual(
    { status: condition(vmi, 'Ready')?.status, reason: condition(vmi, 'Ready')?.reason },
    { status: 'False', reason: 'ReadinessGatesNotReady' },
  );
  const unpaused = subresource('virtualmachineinstances', 'generations', 'unpause');
  assert.equal(unpaused.status, 0, unpaused.stderr);
  await eventually('the VM Ready and not Paused', 60, () => {
    const v = get('vm', 'generations');
    return condition(v, 'Paused')?.status !== 'True' && condition(v, 'Ready')?.status === 'True';
  });
  assert.equal(condition(get('vmi', 'generations'), 'Ready')?.status, 'True');
});

test('a VM deleted with propagationPolicy Orphan leaves its VMI running, no longer owned', async () => {
  const vm = cirrosVm('orphaned');
  vm.spec.runStrategy = 'Always';
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
  const vmi = await vmiRunning('orphaned');
  const deleted = kubectlResult(['delete', 'vm', 'orphaned', '-n', NS, '--cascade=orphan', '--timeout=60s']);
  assert.equal(deleted.status, 0, deleted.stderr);
  await eventually('the VM gone', 60, () => get('vm', 'orphaned') === undefined);
  const left = await eventually('the VMI without its owner', 60, () => {
    const v = get('vmi', 'orphaned');
    return v && !v.metadata.ownerReferences?.length ? v : undefined;
  });
  assert.equal(left.metadata.uid, vmi.metadata.uid);
  assert.equal(left.metadata.deletionTimestamp, undefined);
  // Still running some seconds on: nothing comes back for it.
  await new Promise((r) => setTimeout(r, 5000));
  const later = get('vmi', 'orphaned');
  assert.equal(later?.metadata.uid, vmi.metadata.uid);
  assert.equal(later?.metadata.deletionTimestamp, undefined);
  assert.equal(later?.status?.phase, 'Running');
  assert.equal(launcherPods(vmi.metadata.uid).length, 1);
  kubectl(['delete', 'vmi', 'orphaned', '-n', NS, '--wait=false']);
});
