// Fleets and sizes (issue 18) on the cluster: a VirtualMachineInstanceReplicaSet
// scaled with kubectl (the scale subresource), replacing a VMI whose launcher pod
// goes; a VirtualMachinePool of ordinal-named VMs scaled up and down; a VM sized
// by an instance type captured at first use, untouched by later edits, and
// resized only by a restart after it is pointed at another one. The guests run
// under TCG on a small machine: few replicas, generous deadlines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-fleets';
type Obj = {
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec: Record<string, any>;
  status?: Record<string, any>;
};
const get = (kind: string, name: string): Obj | undefined => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const list = (kind: string, selector?: string): Obj[] =>
  JSON.parse(kubectl(['get', kind, '-n', NS, '-o', 'json', ...(selector ? ['-l', selector] : [])])).items;
const running = (vmis: Obj[]) => vmis.filter((v) => v.status?.phase === 'Running' && !('deletionTimestamp' in v.metadata));
const vmisOwnedBy = (kind: string, name: string) =>
  list('vmi').filter((v) => v.metadata.ownerReferences?.some((o) => o.kind === kind && o.name === name));
const condition = (o: Obj | undefined, type: string) => o?.status?.conditions?.find((c: { type: string }) => c.type === type);

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

const RS = 'vmi-replicaset-cirros';
const RS_SELECTOR = `kubevirt.io/vmReplicaSet=${RS}`;

test('the upstream replica set example applies unchanged; kubectl scale to 3 gives 3 Running VMIs', async () => {
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('vmi-replicaset-cirros.yaml')));
  kubectl(['scale', 'vmirs', RS, '-n', NS, '--replicas=3']);
  const vmis = await eventually('3 Running VMIs of the replica set', 360, () => {
    const r = running(vmisOwnedBy('VirtualMachineInstanceReplicaSet', RS));
    return r.length === 3 ? r : undefined;
  });
  for (const vmi of vmis) {
    assert.ok(vmi.metadata.name.startsWith(RS), vmi.metadata.name);
    assert.equal(vmi.metadata.labels?.['kubevirt.io/vmReplicaSet'], RS);
  }
  const rs = await eventually('the replica set status', 120, () => {
    const r = get('vmirs', RS);
    return r?.status?.replicas === 3 && r.status.readyReplicas === 3 ? r : undefined;
  });
  assert.equal(rs.status?.labelSelector, RS_SELECTOR);
  // The scale subresource reads what an HPA reads.
  const scale = JSON.parse(
    kubectl(['get', '--raw', `/apis/kubevirt.io/v1/namespaces/${NS}/virtualmachineinstancereplicasets/${RS}/scale`]),
  );
  assert.equal(scale.spec.replicas, 3);
  assert.equal(scale.status.replicas, 3);
  assert.equal(scale.status.selector, RS_SELECTOR);
});

test('kubectl get vmirs prints upstream columns: Desired, Current, Ready, Age', () => {
  const [header, row] = kubectl(['get', 'vmirs', RS, '-n', NS]).trim().split('\n');
  assert.deepEqual(header.split(/\s+/), ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
  assert.deepEqual(row.split(/\s+/).slice(0, 4), [RS, '3', '3', '3']);
});

test('deleting the launcher pod of one VMI brings a replacement', async () => {
  const before = running(vmisOwnedBy('VirtualMachineInstanceReplicaSet', RS));
  const victim = before[0];
  kubectl(['delete', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${victim.metadata.uid}`, '--wait=false']);
  await eventually('a replacement VMI, 3 Running again', 360, () => {
    const now = running(vmisOwnedBy('VirtualMachineInstanceReplicaSet', RS));
    return now.length === 3 && !now.some((v) => v.metadata.uid === victim.metadata.uid) ? now : undefined;
  });
});

test('scaling the replica set to 0 removes every VMI', async () => {
  kubectl(['scale', 'vmirs', RS, '-n', NS, '--replicas=0']);
  await eventually('no VMI of the replica set left', 240, () => vmisOwnedBy('VirtualMachineInstanceReplicaSet', RS).length === 0);
  const rs = await eventually('the status to say 0', 60, () => {
    const r = get('vmirs', RS);
    return r?.status?.replicas === 0 ? r : undefined;
  });
  assert.equal(rs.status?.readyReplicas, 0);
  kubectl(['delete', 'vmirs', RS, '-n', NS]);
});

const POOL = 'vm-pool-cirros';
const poolVms = () =>
  list('vm')
    .filter((vm) => vm.metadata.ownerReferences?.some((o) => o.kind === 'VirtualMachinePool' && o.name === POOL))
    .map((vm) => vm.metadata.name)
    .sort();

test('the upstream pool example runs its VMs, named by ordinal', async () => {
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('vm-pool-cirros.yaml')));
  await eventually('three pool VMs', 60, () => poolVms().length === 3);
  assert.deepEqual(poolVms(), [`${POOL}-0`, `${POOL}-1`, `${POOL}-2`]);
  await eventually(
    'three Running VMIs of the pool',
    360,
    () => running(list('vmi').filter((v) => v.metadata.name.startsWith(`${POOL}-`))).length === 3,
  );
  const pool = await eventually('the pool to report 3 ready', 180, () => {
    const p = get('vmpool', POOL);
    return p?.status?.readyReplicas === 3 ? p : undefined;
  });
  assert.equal(pool.status?.replicas, 3);
  assert.equal(pool.status?.labelSelector, `kubevirt.io/vmpool=${POOL}`);
  const vm = get('vm', `${POOL}-0`)!;
  assert.ok(vm.metadata.labels?.['kubevirt.io/vm-pool-revision-name'], 'the VM names the pool revision it was made from');
});

test('scaling the pool down removes the highest ordinals; scaling up brings them back', async () => {
  kubectl(['scale', 'vmpool', POOL, '-n', NS, '--replicas=1']);
  await eventually('one pool VM left', 180, () => {
    const names = poolVms();
    return names.length === 1 && names[0] === `${POOL}-0`;
  });
  await eventually(
    'the VMIs of the removed VMs to go',
    180,
    () => list('vmi').filter((v) => v.metadata.name.startsWith(`${POOL}-`)).length === 1,
  );
  kubectl(['scale', 'vmpool', POOL, '-n', NS, '--replicas=2']);
  await eventually('two pool VMs', 60, () => poolVms().join() === `${POOL}-0,${POOL}-1`);
  await eventually(
    'two Running VMIs of the pool',
    300,
    () => running(list('vmi').filter((v) => v.metadata.name.startsWith(`${POOL}-`))).length === 2,
  );
  kubectl(['delete', 'vmpool', POOL, '-n', NS]);
  await eventually('the pool VMs to go with the pool', 180, () => poolVms().length === 0);
});

const VM = 'vm-cirros-csmall';

test('a VM naming the csmall instance type, without memory of its own, runs with its size and references the captured revision', async () => {
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('csmall.yaml')));
  const vm = example<Obj>('vm-cirros-csmall.yaml');
  delete vm.spec.template.spec.domain.memory;
  vm.spec.runStrategy = 'Always';
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(vm));
  const vmi = await eventually('the VMI Running', 300, () => {
    const v = get('vmi', VM);
    return v?.status?.phase === 'Running' ? v : undefined;
  });
  assert.equal(vmi.spec.domain.memory.guest, '128Mi');
  assert.equal(vmi.spec.domain.cpu.sockets * vmi.spec.domain.cpu.cores * vmi.spec.domain.cpu.threads, 1);
  assert.equal(vmi.metadata.annotations?.['kubevirt.io/instancetype-name'], 'csmall');
  const ref = get('vm', VM)!.status!.instancetypeRef;
  assert.equal(ref.name, 'csmall');
  assert.equal(ref.kind, 'VirtualMachineInstancetype');
  const revision = get('controllerrevision', ref.controllerRevisionRef.name)!;
  assert.equal(revision.metadata.labels?.['instancetype.kubevirt.io/object-name'], 'csmall');
  assert.equal(revision.metadata.labels?.['instancetype.kubevirt.io/object-kind'], 'VirtualMachineInstancetype');
  assert.deepEqual(
    revision.metadata.ownerReferences?.map((o) => [o.kind, o.name]),
    [['VirtualMachine', VM]],
  );
});

test('a template setting memory beside the instance type is refused with upstream cause', () => {
  const vm = example<Obj>('vm-cirros-csmall.yaml');
  vm.metadata.name = 'conflicting';
  const r = kubectlResult(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /spec\.template\.spec\.domain\.memory\.guest conflicts with selected instance type/);
});

test('editing the instance type afterwards changes nothing for the VM', async () => {
  const before = get('vm', VM)!;
  kubectl([
    'patch',
    'virtualmachineinstancetype',
    'csmall',
    '-n',
    NS,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { memory: { guest: '256Mi' } } }),
  ]);
  await new Promise((r) => setTimeout(r, 5000));
  const after = get('vm', VM)!;
  assert.deepEqual(after.status?.instancetypeRef, before.status?.instancetypeRef);
  assert.equal(condition(after, 'RestartRequired'), undefined);
  assert.equal(get('vmi', VM)!.spec.domain.memory.guest, '128Mi');
});

test('pointing the VM at another instance type sets RestartRequired; the next start uses the new size', async () => {
  const cmedium = { ...example<Obj>('csmall.yaml'), metadata: { name: 'cmedium' } } as Obj;
  cmedium.spec = { cpu: { guest: 1 }, memory: { guest: '192Mi' } };
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(cmedium));
  const oldVmi = get('vmi', VM)!;
  kubectl(['patch', 'vm', VM, '-n', NS, '--type', 'merge', '-p', JSON.stringify({ spec: { instancetype: { name: 'cmedium' } } })]);
  const vm = await eventually('RestartRequired', 60, () => {
    const v = get('vm', VM);
    return condition(v, 'RestartRequired')?.status === 'True' ? v : undefined;
  });
  assert.equal(vm.status?.instancetypeRef.name, 'cmedium');
  assert.equal(get('vmi', VM)!.spec.domain.memory.guest, '128Mi', 'the running VMI keeps its size');
  // A restart: the VMI goes, and runStrategy Always starts the next one.
  kubectl(['delete', 'vmi', VM, '-n', NS, '--wait=false']);
  const vmi = await eventually('the restarted VMI Running', 300, () => {
    const v = get('vmi', VM);
    return v && v.metadata.uid !== oldVmi.metadata.uid && v.status?.phase === 'Running' ? v : undefined;
  });
  assert.equal(vmi.spec.domain.memory.guest, '192Mi');
  await eventually('RestartRequired to clear', 60, () => condition(get('vm', VM), 'RestartRequired') === undefined);
});

test('the common instance types and preferences are installed cluster-wide', () => {
  const medium = JSON.parse(kubectl(['get', 'virtualmachineclusterinstancetype', 'u1.medium', '-o', 'json']));
  assert.equal(medium.spec.cpu.guest, 1);
  assert.equal(medium.spec.memory.guest, '4Gi');
  const fedora = JSON.parse(kubectl(['get', 'virtualmachineclusterpreference', 'fedora', '-o', 'json']));
  assert.equal(fedora.spec.devices.preferredDiskBus, 'virtio');
});
