// The VirtualMachinePool plan: ordinal names, per-VM volume and secret names,
// scaling out and in (highest ordinals first), updates to the current template,
// and the status; and the pool controller's wiring over seeded informers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1ControllerRevision } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachinePool } from '../../src/api/types.ts';
import { indexedVmSpec, planPool, POOL_REVISION_LABEL, poolStatus } from '../../src/controller/pool.ts';
import { PoolController, type PoolControllerApi } from '../../src/controller/pool-controller.ts';
import { TEMPLATE_HASH_ANNOTATION, templateHash } from '../../src/controller/vm.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { example } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { capturedEvents, capturedLog } from '../helpers/wiring.ts';

type Vm = Typed<VirtualMachine>;
type Pool = Typed<VirtualMachinePool>;
const NOW = '2026-11-22T10:00:00Z';

function pool(replicas: number): Pool {
  const p = example<Pool>('vm-pool-cirros.yaml');
  p.metadata = { ...p.metadata, namespace: 'ns', uid: 'pool-uid', generation: 1 };
  p.spec.replicas = replicas;
  return p;
}

/** A VM as the pool made it, as the cache would show it. */
function made(p: Pool, ordinal: number, ready = true): Vm {
  const [vm] = planPool(
    { ...p, spec: { ...p.spec, replicas: ordinal + 1 } },
    Array.from({ length: ordinal }, (_, i) => ({ metadata: { name: `${p.metadata.name}-${i}` } }) as Vm),
    () => undefined,
    () => p.spec,
  ).create;
  return {
    ...vm,
    metadata: { ...vm.metadata, uid: `vm-uid-${ordinal}`, resourceVersion: '10', creationTimestamp: NOW },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  } as Vm;
}

const none = () => undefined;
/** The revisions the cache holds: the pool's first, recording its first spec. */
const recorded = (p: Pool) => (name: string) => (name === 'vm-pool-cirros-1' ? structuredClone(p.spec) : undefined);

test('scaling out creates VMs named <pool>-<ordinal> in the lowest free ordinals, owned by the pool, with the revision label', () => {
  const p = pool(3);
  const plan = planPool(p, [made(p, 1)], none, none);
  assert.deepEqual(
    plan.create.map((vm) => vm.metadata.name),
    ['vm-pool-cirros-0', 'vm-pool-cirros-2'],
  );
  const [vm] = plan.create;
  assert.equal(vm.metadata.ownerReferences?.[0].kind, 'VirtualMachinePool');
  assert.equal(vm.metadata.ownerReferences?.[0].apiVersion, 'pool.kubevirt.io/v1beta1');
  assert.equal(vm.metadata.labels?.[POOL_REVISION_LABEL], 'vm-pool-cirros-1');
  assert.equal(vm.spec.template.metadata?.labels?.[POOL_REVISION_LABEL], 'vm-pool-cirros-1');
  assert.equal(vm.spec.runStrategy, 'Always');
  assert.equal(plan.createRevision?.metadata?.name, 'vm-pool-cirros-1', 'the revision of the spec is recorded first');
});

test('per-VM names: DataVolume templates and the volumes naming them get the ordinal; secrets and config maps when asked', () => {
  const p = pool(1);
  p.spec.virtualMachineTemplate.spec.dataVolumeTemplates = [{ metadata: { name: 'root' }, spec: { source: { blank: {} } } }];
  p.spec.virtualMachineTemplate.spec.template.spec!.volumes = [
    { name: 'root', dataVolume: { name: 'root' } },
    { name: 'ci', cloudInitNoCloud: { secretRef: { name: 'userdata' }, networkDataSecretRef: { name: 'netdata' } } },
    { name: 'cm', configMap: { name: 'settings' } },
  ];
  const plain = indexedVmSpec(p, 4);
  assert.equal(plain.dataVolumeTemplates?.[0].metadata?.name, 'root-4');
  assert.equal(plain.template.spec?.volumes?.[0].dataVolume?.name, 'root-4');
  assert.equal(plain.template.spec?.volumes?.[1].cloudInitNoCloud?.secretRef?.name, 'userdata');
  p.spec.nameGeneration = { appendIndexToSecretRefs: true, appendIndexToConfigMapRefs: true };
  const suffixed = indexedVmSpec(p, 4);
  assert.equal(suffixed.template.spec?.volumes?.[1].cloudInitNoCloud?.secretRef?.name, 'userdata-4');
  assert.equal(suffixed.template.spec?.volumes?.[1].cloudInitNoCloud?.networkDataSecretRef?.name, 'netdata-4');
  assert.equal(suffixed.template.spec?.volumes?.[2].configMap?.name, 'settings-4');
});

test('scaling in deletes the highest ordinals, counting VMs already going', () => {
  const p = pool(1);
  const vms = [0, 1, 2, 3].map((i) => made(p, i));
  assert.deepEqual(
    planPool(p, vms, none, recorded(p)).delete.map((vm) => vm.metadata.name),
    ['vm-pool-cirros-3', 'vm-pool-cirros-2', 'vm-pool-cirros-1'],
  );
  vms[3].metadata.deletionTimestamp = NOW as never;
  assert.deepEqual(
    planPool(p, vms, none, recorded(p)).delete.map((vm) => vm.metadata.name),
    ['vm-pool-cirros-2', 'vm-pool-cirros-1'],
  );
  p.spec.scaleInStrategy = { proactive: { selectionPolicy: { sortPolicy: 'AscendingOrder' } } };
  assert.deepEqual(
    planPool(p, vms, none, recorded(p)).delete.map((vm) => vm.metadata.name),
    ['vm-pool-cirros-0', 'vm-pool-cirros-1'],
  );
});

test('paused or with expectations pending, nothing changes; VMs of another owner are not counted', () => {
  const p = pool(2);
  p.spec.paused = true;
  assert.equal(planPool(p, [], none, recorded(p)).create.length, 0);
  assert.equal(planPool(pool(2), [], none, recorded(pool(2)), { sync: false }).create.length, 0);
  const foreign = made(pool(2), 0);
  foreign.metadata.ownerReferences = [{ apiVersion: 'x/v1', kind: 'Other', name: 'o', uid: 'o', controller: true }];
  assert.deepEqual(
    planPool(pool(2), [foreign], none, recorded(pool(2))).create.map((vm) => vm.metadata.name),
    ['vm-pool-cirros-1', 'vm-pool-cirros-2'],
    'its name is taken, and it is not the pool s',
  );
});

test('a changed template updates the VMs (a guarded patch with the new revision), then restarts VMIs started from the old one', () => {
  const p = pool(2);
  const vms = [made(p, 0), made(p, 1)];
  const changed = structuredClone(p);
  changed.metadata.generation = 2;
  changed.spec.virtualMachineTemplate.spec.template.spec!.domain.memory = { guest: '256Mi' };
  const plan = planPool(changed, vms, none, recorded(p));
  assert.deepEqual(
    plan.update.map((u) => u.vm.metadata.name),
    ['vm-pool-cirros-0', 'vm-pool-cirros-1'],
  );
  assert.deepEqual(plan.update[0].patch[0], { op: 'test', path: '/metadata/resourceVersion', value: '10' });
  const spec = plan.update[0].patch[1].value as VirtualMachine['spec'];
  assert.equal(spec.template.spec?.domain.memory?.guest, '256Mi');
  assert.equal(spec.template.metadata?.labels?.[POOL_REVISION_LABEL], 'vm-pool-cirros-2');
  assert.equal(plan.createRevision?.metadata?.name, 'vm-pool-cirros-2');
  // Defaults the VM webhook added (its firmware identity) do not make a VM outdated, and its identity is kept.
  const defaulted = structuredClone(vms[0]);
  defaulted.spec.template.spec!.domain.firmware = { uuid: 'u-1', serial: 's-1' };
  defaulted.spec.template.spec!.architecture = 'amd64';
  assert.equal(planPool(p, [defaulted, vms[1]], none, recorded(p)).update.length, 0);
  const kept = planPool(changed, [defaulted, vms[1]], none, recorded(p)).update[0].patch[1].value as VirtualMachine['spec'];
  assert.deepEqual(kept.template.spec?.domain.firmware, { uuid: 'u-1', serial: 's-1' });
  // The VMs updated, their VMIs still run the old template: they are restarted.
  const updated = vms.map(
    (vm, i) => ({ ...vm, spec: plan.update[i].patch[1].value, metadata: { ...vm.metadata, labels: plan.update[i].patch[2].value } }) as Vm,
  );
  const vmiOf = (name: string) => runningVmi(name, templateHash(vms[0]));
  const restart = planPool(changed, updated, vmiOf, (name) => (name === 'vm-pool-cirros-2' ? changed.spec : p.spec));
  assert.equal(restart.update.length, 0);
  assert.deepEqual(
    restart.restart.map((v) => v.metadata.name),
    ['vm-pool-cirros-0', 'vm-pool-cirros-1'],
  );
  changed.spec.maxUnavailable = 1;
  assert.equal(planPool(changed, updated, vmiOf, (name) => (name === 'vm-pool-cirros-2' ? changed.spec : p.spec)).restart.length, 1);
  changed.spec.updateStrategy = { opportunistic: {} };
  assert.equal(planPool(changed, updated, vmiOf, (name) => (name === 'vm-pool-cirros-2' ? changed.spec : p.spec)).restart.length, 0);
});

/** A VMI of a pool VM, Running and Ready, started from the template of this hash. */
function runningVmi(name: string, hash: string): VirtualMachineInstance {
  return {
    metadata: { name, namespace: 'ns', uid: `vmi-${name}`, annotations: { [TEMPLATE_HASH_ANNOTATION]: hash } },
    spec: { domain: { devices: {} } },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

test('a proactive update restarts no more VMIs than maxUnavailable across syncs: those still down count', () => {
  const p = pool(3);
  p.spec.maxUnavailable = 1;
  const changed = structuredClone(p);
  changed.metadata.generation = 2;
  changed.spec.virtualMachineTemplate.spec.template.spec!.domain.memory = { guest: '256Mi' };
  const oldHash = templateHash(made(p, 0));
  // The VMs carry the new template already; their VMIs run the old one.
  const vms = [0, 1, 2].map((i) => made(changed, i));
  const newHash = templateHash(vms[0]);
  const revisions = (name: string) => (name === 'vm-pool-cirros-2' ? changed.spec : p.spec);
  const restartsWith = (vmis: Record<string, VirtualMachineInstance | undefined>) =>
    planPool(changed, vms, (name) => vmis[name], revisions).restart.map((v) => v.metadata.name);
  const old = (name: string) => runningVmi(name, oldHash);

  // First sync: one restart.
  assert.deepEqual(
    restartsWith({
      'vm-pool-cirros-0': old('vm-pool-cirros-0'),
      'vm-pool-cirros-1': old('vm-pool-cirros-1'),
      'vm-pool-cirros-2': old('vm-pool-cirros-2'),
    }),
    ['vm-pool-cirros-0'],
  );
  // While that VMI is being deleted, gone, or back but not yet Ready, no other is restarted.
  const deleting = { ...old('vm-pool-cirros-0'), metadata: { ...old('vm-pool-cirros-0').metadata, deletionTimestamp: NOW as never } };
  const starting = { ...runningVmi('vm-pool-cirros-0', newHash), status: { phase: 'Scheduled' } };
  const notReady = {
    ...runningVmi('vm-pool-cirros-0', newHash),
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] },
  };
  for (const first of [deleting, undefined, starting, notReady]) {
    assert.deepEqual(
      restartsWith({ 'vm-pool-cirros-0': first, 'vm-pool-cirros-1': old('vm-pool-cirros-1'), 'vm-pool-cirros-2': old('vm-pool-cirros-2') }),
      [],
    );
  }
  // Once it is Running and Ready on the new template, the next one goes.
  const restarted = runningVmi('vm-pool-cirros-0', newHash);
  assert.deepEqual(
    restartsWith({
      'vm-pool-cirros-0': restarted,
      'vm-pool-cirros-1': old('vm-pool-cirros-1'),
      'vm-pool-cirros-2': old('vm-pool-cirros-2'),
    }),
    ['vm-pool-cirros-1'],
  );
  // A VM down for another reason (its VMI failed) takes the budget too.
  const failed = { ...old('vm-pool-cirros-2'), status: { phase: 'Failed' } };
  assert.deepEqual(
    restartsWith({ 'vm-pool-cirros-0': restarted, 'vm-pool-cirros-1': old('vm-pool-cirros-1'), 'vm-pool-cirros-2': failed }),
    [],
  );
  changed.spec.maxUnavailable = 2;
  assert.deepEqual(
    restartsWith({ 'vm-pool-cirros-0': restarted, 'vm-pool-cirros-1': old('vm-pool-cirros-1'), 'vm-pool-cirros-2': failed }),
    ['vm-pool-cirros-1'],
  );
});

test('a scale change alone (a new generation) updates no VM', () => {
  const p = pool(2);
  const vms = [made(p, 0), made(p, 1)];
  const scaled = { ...p, metadata: { ...p.metadata, generation: 5 } };
  const plan = planPool(scaled, vms, none, recorded(p));
  assert.equal(plan.update.length, 0);
  assert.equal(plan.createRevision, undefined);
});

test('the status counts the VMs and the ready ones, with the selector, ReplicaFailure and ReplicaPaused as upstream', () => {
  const p = pool(2);
  const status = poolStatus(p, [made(p, 0), made(p, 1, false)], undefined, NOW);
  assert.deepEqual(status, { replicas: 2, readyReplicas: 1, labelSelector: 'kubevirt.io/vmpool=vm-pool-cirros' });
  assert.equal(poolStatus({ ...p, status }, [made(p, 0), made(p, 1, false)], undefined, NOW), undefined);
  p.spec.paused = true;
  const paused = poolStatus(p, [], { reason: 'FailedScaleOut', message: 'error during scale out: 403' }, NOW)!;
  assert.deepEqual(
    paused.conditions?.map((c) => [c.type, c.reason, c.message]),
    [
      ['ReplicaFailure', 'FailedScaleOut', 'error during scale out: 403'],
      ['ReplicaPaused', 'SuccessfulPaused', 'Pool controller is paused'],
    ],
  );
});

class RecordingPoolApi implements PoolControllerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  called(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }
  async createVm(namespace: string, vm: VirtualMachine): Promise<Vm> {
    this.calls.push({ method: 'createVm', args: [namespace, vm] });
    return vm as Vm;
  }
  async deleteVm(namespace: string, name: string, uid: string | undefined): Promise<void> {
    this.calls.push({ method: 'deleteVm', args: [namespace, name, uid] });
  }
  async patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Vm> {
    this.calls.push({ method: 'patchVm', args: [namespace, name, patch] });
    return { metadata: { name, namespace } } as Vm;
  }
  async deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void> {
    this.calls.push({ method: 'deleteVmi', args: [namespace, name, uid] });
  }
  async createControllerRevision(namespace: string, revision: V1ControllerRevision): Promise<void> {
    this.calls.push({ method: 'createControllerRevision', args: [namespace, revision] });
  }
  async replacePoolStatus(namespace: string, name: string, p: VirtualMachinePool): Promise<void> {
    this.calls.push({ method: 'replacePoolStatus', args: [namespace, name, p] });
  }
}

test('wiring: a pool added creates its VMs once until the cache shows them; scaling in deletes the highest once', async () => {
  const informers = {
    pools: new SeededInformer<Pool>(),
    vms: new SeededInformer<Vm>(),
    vmis: new SeededInformer<Typed<VirtualMachineInstance>>(),
    revisions: new SeededInformer<V1ControllerRevision>(),
  };
  const api = new RecordingPoolApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new PoolController({ api, informers, queue, now: () => new Date(NOW), record, log: capturedLog().log });
  const p = pool(3);
  informers.pools.upsert(p);
  assert.equal(await queue.get(), 'ns/vm-pool-cirros');
  await controller.reconcile('ns/vm-pool-cirros');
  assert.deepEqual(
    (api.called('createVm') as [string, VirtualMachine][]).map(([, vm]) => vm.metadata.name),
    ['vm-pool-cirros-0', 'vm-pool-cirros-1', 'vm-pool-cirros-2'],
  );
  assert.equal(api.called('createControllerRevision').length, 1);
  assert.ok(events.some((e) => e.message === 'Created VM ns/vm-pool-cirros-0'));
  await controller.reconcile('ns/vm-pool-cirros');
  assert.equal(api.called('createVm').length, 3, 'not again before the cache shows them');
  for (const i of [0, 1, 2]) informers.vms.upsert(made(p, i));
  informers.pools.upsert({ ...p, spec: { ...p.spec, replicas: 1 }, metadata: { ...p.metadata, generation: 2 } });
  await controller.reconcile('ns/vm-pool-cirros');
  assert.deepEqual(
    (api.called('deleteVm') as string[][]).map((c) => c[1]),
    ['vm-pool-cirros-2', 'vm-pool-cirros-1'],
  );
  await controller.reconcile('ns/vm-pool-cirros');
  assert.equal(api.called('deleteVm').length, 2, 'not again while the cache still shows them');
  const [, , last] = (api.called('replacePoolStatus') as [string, string, VirtualMachinePool][]).at(-1)!;
  assert.equal(last.status?.replicas, 3);
});
