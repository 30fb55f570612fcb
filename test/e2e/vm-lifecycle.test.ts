// virt-controller in the cluster: a VM's runStrategy decides whether its VMI
// exists; the VMI gets a launcher pod named, labelled and owned as upstream,
// and goes Pending → Scheduling → Scheduled (then virt-handler runs it); pod
// trouble shows on the VMI and the VM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-vm';
const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const launcherPods = (vmiUid: string) =>
  JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${vmiUid}`, '-o', 'json'])).items as {
    metadata: { name: string; labels: Record<string, string>; ownerReferences: unknown[]; deletionTimestamp?: string };
    spec: Record<string, unknown> & { containers: { name: string; securityContext: Record<string, unknown> }[] };
  }[];
const runStrategy = (value: string) =>
  kubectl(['patch', 'vm', 'vm-cirros', '-n', NS, '--type', 'merge', '-p', JSON.stringify({ spec: { runStrategy: value } })]);
const events = (name: string) =>
  kubectl([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.name=${name}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
  ])
    .split('\n')
    .filter(Boolean);

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test('a Halted VM gets the finalizer and reports Stopped', async () => {
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(example('vm-cirros.yaml')));
  const vm = await eventually('the VM status', 30, () => {
    const v = get('vm', 'vm-cirros');
    return v?.status?.printableStatus === 'Stopped' ? v : undefined;
  });
  assert.deepEqual(vm.metadata.finalizers, ['kubevirt.io/virtualMachineControllerFinalize']);
  assert.equal(vm.status.created, false);
  assert.equal(get('vmi', 'vm-cirros'), undefined);
});

let firstUid = '';
test('Halted → Always: a VMI owned by the VM, a launcher pod owned by the VMI, and the VMI Scheduled on the node', async () => {
  runStrategy('Always');
  const vmi = await eventually('the VMI', 30, () => get('vmi', 'vm-cirros'));
  const vm = get('vm', 'vm-cirros');
  assert.deepEqual(vmi.metadata.ownerReferences, [
    {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      name: 'vm-cirros',
      uid: vm.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(vmi.metadata.labels['kubevirt.io/vm'], 'vm-cirros');
  assert.equal(vmi.spec.domain.firmware.uuid, vm.spec.template.spec.domain.firmware.uuid);
  firstUid = vmi.metadata.uid;
  const scheduled = await eventually('the VMI to be Scheduled', 60, () => {
    const v = get('vmi', 'vm-cirros');
    return ['Scheduled', 'Running'].includes(v?.status?.phase) ? v : undefined;
  });
  assert.equal(scheduled.status.nodeName, 'node01');
  assert.equal(scheduled.metadata.labels['kubevirt.io/nodeName'], 'node01');
  assert.deepEqual(scheduled.status.phaseTransitionTimestamps.map((t: { phase: string }) => t.phase).slice(0, 3), [
    'Pending',
    'Scheduling',
    'Scheduled',
  ]);
  const [pod, ...more] = launcherPods(firstUid);
  assert.equal(more.length, 0, 'exactly one launcher pod');
  assert.match(pod.metadata.name, /^virt-launcher-vm-cirros-[a-z0-9]{5}$/);
  assert.equal(pod.metadata.labels['kubevirt.io'], 'virt-launcher');
  assert.equal(pod.metadata.labels['vm.kubevirt.io/name'], 'vm-cirros');
  assert.deepEqual(pod.metadata.ownerReferences, [
    {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      name: 'vm-cirros',
      uid: firstUid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(pod.spec.automountServiceAccountToken, false);
  assert.equal((pod.spec.securityContext as { runAsUser: number }).runAsUser, 107);
  assert.deepEqual(
    pod.spec.containers.map((c) => c.name),
    ['compute', 'volumecontainerdisk', 'guest-console-log'],
  );
  await eventually('the VM to report Running', 60, () => get('vm', 'vm-cirros')?.status?.printableStatus === 'Running');
  assert.deepEqual(
    events('vm-cirros')
      .filter((r) => ['SuccessfulCreate', 'Scheduled'].includes(r))
      .sort(),
    ['SuccessfulCreate', 'SuccessfulCreate'],
    'the VMI and its pod created; no Scheduled event on them, as upstream',
  );
  assert.match(kubectl(['describe', 'vmi', 'vm-cirros', '-n', NS]), /Created virtual machine pod virt-launcher-vm-cirros-/);
});

test("a pod that merely carries the launcher labels is not taken for the VMI's pod", async () => {
  const vmi = get('vmi', 'vm-cirros');
  kubectl(
    ['create', '-n', NS, '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'impostor',
        labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': vmi.metadata.uid, 'vm.kubevirt.io/name': 'vm-cirros' },
      },
      spec: { containers: [{ name: 'c', image: 'registry:5000/kubevirt-ts/pause:devel' }], nodeName: 'node01' },
    }),
  );
  await new Promise((r) => setTimeout(r, 3000));
  const after = get('vmi', 'vm-cirros');
  assert.deepEqual(Object.keys(after.status.activePods ?? {}).length, 1);
  const real = launcherPods(vmi.metadata.uid).find((p) => p.metadata.name !== 'impostor')!;
  assert.equal(
    Object.keys(after.status.activePods)[0],
    JSON.parse(kubectl(['get', 'pod', real.metadata.name, '-n', NS, '-o', 'json'])).metadata.uid,
  );
  kubectl(['delete', 'pod', 'impostor', '-n', NS, '--wait=false', '--grace-period=0', '--force']);
});

test('deleting the launcher pod ends the VMI (Succeeded or Failed, as upstream), and the Always VM starts a new VMI with a new UID', async () => {
  const [pod] = launcherPods(firstUid).filter((p) => p.metadata.name !== 'impostor');
  kubectl(['delete', 'pod', pod.metadata.name, '-n', NS, '--wait=false']);
  await eventually('a new VMI', 90, () => {
    const v = get('vmi', 'vm-cirros');
    return v && v.metadata.uid !== firstUid ? v : undefined;
  });
  assert.ok(events('vm-cirros').includes('Stopped'), 'the failure is an event on the VMI');
  const next = await eventually(
    'the new VMI to run',
    90,
    () => get('vmi', 'vm-cirros')?.status?.phase === 'Running' && get('vmi', 'vm-cirros'),
  );
  firstUid = next.metadata.uid;
});

test('Always → Halted removes the VMI and its pod; Always again makes a new one', async () => {
  runStrategy('Halted');
  await eventually(
    'the VMI and its pod to be gone',
    90,
    () => get('vmi', 'vm-cirros') === undefined && launcherPods(firstUid).length === 0,
  );
  await eventually('the VM to report Stopped', 30, () => get('vm', 'vm-cirros')?.status?.printableStatus === 'Stopped');
  runStrategy('Always');
  const vmi = await eventually('a new VMI', 30, () => get('vmi', 'vm-cirros'));
  assert.notEqual(vmi.metadata.uid, firstUid);
});

test('deleting the VM removes its VMI, then the VM', async () => {
  kubectl(['delete', 'vm', 'vm-cirros', '-n', NS, '--wait=false']);
  await eventually('the VMI and VM to be gone', 90, () => get('vmi', 'vm-cirros') === undefined && get('vm', 'vm-cirros') === undefined);
});

function vmiWith(name: string, patch: (spec: Record<string, any>) => void) {
  const vmi = example<{ metadata: { name: string }; spec: Record<string, any> }>('vmi-nocloud.yaml');
  vmi.metadata.name = name;
  patch(vmi.spec);
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vmi));
}

test('an impossible request shows ErrorUnschedulable on the VM; a missing image ErrImagePull/ImagePullBackOff', async () => {
  const vm = example<{
    metadata: { name: string };
    spec: { runStrategy?: string; running?: boolean; template: { spec: Record<string, any> } };
  }>('vm-cirros.yaml');
  vm.metadata.name = 'too-big';
  vm.spec.runStrategy = 'Always';
  vm.spec.template.spec.domain.resources = { requests: { cpu: '100', memory: '128Mi' } };
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
  const unschedulable = await eventually(
    'ErrorUnschedulable',
    60,
    () => get('vm', 'too-big')?.status?.printableStatus === 'ErrorUnschedulable' && get('vmi', 'too-big'),
  );
  const condition = unschedulable.status.conditions.find((c: { type: string }) => c.type === 'PodScheduled');
  assert.equal(condition.reason, 'Unschedulable');
  assert.match(condition.message, /Insufficient cpu/);
  assert.match(kubectl(['get', 'vm', 'too-big', '-n', NS]), /ErrorUnschedulable/);

  vmiWith('no-image', (spec) => {
    spec.volumes[0].containerDisk.image = 'registry:5000/kubevirt-ts/no-such-image:devel';
  });
  const pulling = await eventually('an image pull failure', 90, () => {
    const sync = get('vmi', 'no-image')?.status?.conditions?.find((c: { type: string }) => c.type === 'Synchronized');
    return sync && ['ErrImagePull', 'ImagePullBackOff'].includes(sync.reason) ? sync : undefined;
  });
  assert.equal(pulling.status, 'False');
  assert.equal(get('vmi', 'no-image').status.phase, 'Scheduling');
});

test('rebootPolicy Terminate: a guest reboot ends the VMI Succeeded (as libvirt on_reboot=destroy does upstream), and the Always VM starts a new one', async () => {
  const vm = example<{ metadata: { name: string }; spec: { runStrategy?: string; template: { spec: Record<string, any> } } }>(
    'vm-cirros.yaml',
  );
  vm.metadata.name = 'reboot-terminate';
  vm.spec.runStrategy = 'Always';
  vm.spec.template.spec.domain.rebootPolicy = 'Terminate';
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
  // A VMI no VM owns keeps its final phase for us to read; the VM's is replaced at once.
  vmiWith('reboot-terminate-vmi', (spec) => (spec.domain.rebootPolicy = 'Terminate'));
  const softReboot = (name: string) => {
    const r = kubectlResult(
      ['replace', '--raw', `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/${name}/softreboot`, '-f', '-'],
      '{}',
    );
    assert.equal(r.status, 0, r.stderr);
  };
  const agentConnected = (name: string) =>
    get('vmi', name)?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'AgentConnected' && c.status === 'True');
  for (const name of ['reboot-terminate', 'reboot-terminate-vmi']) {
    await eventually(`${name}: the guest agent connected`, 240, () => agentConnected(name));
  }
  const uid = get('vmi', 'reboot-terminate').metadata.uid;
  softReboot('reboot-terminate-vmi');
  softReboot('reboot-terminate');

  const ended = await eventually('the VMI to end', 120, () => {
    const v = get('vmi', 'reboot-terminate-vmi');
    return ['Succeeded', 'Failed'].includes(v?.status?.phase) ? v : undefined;
  });
  assert.equal(ended.status.phase, 'Succeeded', 'a guest reboot under Terminate is a clean end');
  const next = await eventually('a new running VMI for the VM', 180, () => {
    const v = get('vmi', 'reboot-terminate');
    return v && v.metadata.uid !== uid && v.status?.phase === 'Running' ? v : undefined;
  });
  assert.equal(next.spec.domain.rebootPolicy, 'Terminate');
  const bad = structuredClone(vm);
  bad.metadata.name = 'bad-policy';
  bad.spec.template.spec.domain.rebootPolicy = 'Restart';
  const refused = kubectlResult(['create', '-n', NS, '-f', '-'], JSON.stringify(bad));
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /spec\.template\.spec\.domain\.rebootPolicy.*(Reboot.*Terminate)/);
});
