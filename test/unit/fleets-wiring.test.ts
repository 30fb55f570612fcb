// The wiring of virt-controller's fleet controllers (replica sets, pools), as
// controller-wiring.test.ts does for VMs and VMIs: seeded informers in, the
// work queue and a recording fake of the API out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../../src/api/types.ts';
import { ReplicaSetController, type ReplicaSetControllerApi } from '../../src/controller/replicaset-controller.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { example } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { apiError, capturedEvents, capturedLog } from '../helpers/wiring.ts';

type Vmi = Typed<VirtualMachineInstance>;
type Rs = Typed<VirtualMachineInstanceReplicaSet>;
const NOW = new Date('2026-11-22T10:00:00Z');
const now = () => NOW;

/** Records every call; a failure set with failNext is thrown once. */
class RecordingApi implements ReplicaSetControllerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly #failures = new Map<string, Error>();
  #serial = 0;

  failNext(method: string, error: Error): void {
    this.#failures.set(method, error);
  }

  called(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  protected call(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.#failures.get(method);
    this.#failures.delete(method);
    if (failure) throw failure;
  }

  async createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Vmi> {
    this.call('createVmi', namespace, vmi);
    const n = ++this.#serial;
    return { ...vmi, metadata: { ...vmi.metadata, name: `${vmi.metadata.generateName}${n}`, uid: `created-${n}` } } as Vmi;
  }

  async deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void> {
    this.call('deleteVmi', namespace, name, uid);
  }

  async patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.call('patchVmi', namespace, name, patch);
  }

  async replaceReplicaSetStatus(namespace: string, name: string, rs: VirtualMachineInstanceReplicaSet): Promise<void> {
    this.call('replaceReplicaSetStatus', namespace, name, rs);
  }
}

function replicaSet(replicas: number): Rs {
  const rs = example<Rs>('vmi-replicaset-cirros.yaml');
  rs.metadata = { ...rs.metadata, namespace: 'ns', uid: 'rs-uid', resourceVersion: '5' };
  rs.spec.replicas = replicas;
  return rs;
}

function ownedVmi(name: string, phase = 'Running', owner = 'rs-uid'): Vmi {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name,
      namespace: 'ns',
      uid: `uid-${name}`,
      labels: { 'kubevirt.io/vmReplicaSet': 'vmi-replicaset-cirros' },
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachineInstanceReplicaSet',
          name: 'vmi-replicaset-cirros',
          uid: owner,
          controller: true,
        },
      ],
    },
    spec: { domain: { devices: {} } },
    status: { phase, conditions: [{ type: 'Ready', status: phase === 'Running' ? 'True' : 'False' }] },
  };
}

function rsSetup(replicaSets: Rs[] = [], vmis: Vmi[] = []) {
  const informers = { replicaSets: new SeededInformer<Rs>(replicaSets), vmis: new SeededInformer<Vmi>(vmis) };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new ReplicaSetController({ api, informers, queue, now, record, log: capturedLog().log });
  return { informers, api, queue, events, controller };
}

test('a replica set added is queued; its reconcile creates the replicas once, until the cache shows them', async () => {
  const { informers, api, queue, events, controller } = rsSetup();
  informers.replicaSets.upsert(replicaSet(3));
  assert.equal(await queue.get(), 'ns/vmi-replicaset-cirros');
  await controller.reconcile('ns/vmi-replicaset-cirros');
  const created = api.called('createVmi') as [string, VirtualMachineInstance][];
  assert.equal(created.length, 3);
  assert.equal(created[0][1].metadata.generateName, 'vmi-replicaset-cirros');
  assert.equal(events.filter((e) => e.reason === 'SuccessfulCreate').length, 3);
  const [[, , written]] = api.called('replaceReplicaSetStatus') as [string, string, VirtualMachineInstanceReplicaSet][];
  assert.deepEqual(written.status, { replicas: 0, readyReplicas: 0, labelSelector: 'kubevirt.io/vmReplicaSet=vmi-replicaset-cirros' });
  // The cache has not seen them yet: no second round of creates.
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('createVmi').length, 3);
  for (const name of ['a', 'b', 'c']) informers.vmis.upsert(ownedVmi(name));
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('createVmi').length, 3, 'three seen, none missing');
});

test('an owned VMI that fails is cleaned up and replaced; its events queue the replica set', async () => {
  const { informers, api, queue, events, controller } = rsSetup([replicaSet(2)], [ownedVmi('a'), ownedVmi('b')]);
  informers.vmis.upsert(ownedVmi('b', 'Failed'));
  assert.equal(await queue.get(), 'ns/vmi-replicaset-cirros');
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('createVmi').length, 1);
  assert.deepEqual(api.called('deleteVmi'), [['ns', 'b', 'uid-b']]);
  assert.ok(events.some((e) => e.message === 'Deleted finished virtual machine: uid-b'));
});

test('scaling down deletes the excess once, until the deletions are seen', async () => {
  const running = ['a', 'b', 'c'].map((n) => ownedVmi(n));
  const { informers, api, controller } = rsSetup([replicaSet(1)], [...running, ownedVmi('d', 'Scheduling')]);
  await controller.reconcile('ns/vmi-replicaset-cirros');
  const deleted = (api.called('deleteVmi') as string[][]).map((c) => c[1]);
  assert.equal(deleted.length, 3);
  assert.equal(deleted[0], 'd', 'the VMI not yet running goes first');
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('deleteVmi').length, 3, 'not deleted again while the cache still shows them');
  for (const name of deleted) informers.vmis.remove(informers.vmis.get(name, 'ns')!);
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('deleteVmi').length, 3);
  assert.equal(api.called('createVmi').length, 0);
});

test('a failed create is reported as ReplicaFailure and an event, and retried', async () => {
  const { api, events, controller } = rsSetup([replicaSet(1)]);
  api.failNext('createVmi', apiError(403, 'virtualmachineinstances is forbidden: exceeded quota'));
  await assert.rejects(controller.reconcile('ns/vmi-replicaset-cirros'), /forbidden/);
  const [[, , written]] = api.called('replaceReplicaSetStatus') as [string, string, VirtualMachineInstanceReplicaSet][];
  assert.equal(written.status?.conditions?.[0].type, 'ReplicaFailure');
  assert.equal(written.status?.conditions?.[0].reason, 'FailedCreate');
  assert.ok(events.some((e) => e.reason === 'FailedCreate'));
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('createVmi').length, 2, 'the failed create is not waited for');
});

test('a paused replica set creates nothing and says so once', async () => {
  const rs = replicaSet(2);
  rs.spec.paused = true;
  const { api, events, controller } = rsSetup([rs]);
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.equal(api.called('createVmi').length, 0);
  const [[, , written]] = api.called('replaceReplicaSetStatus') as [string, string, VirtualMachineInstanceReplicaSet][];
  assert.equal(written.status?.conditions?.[0].type, 'ReplicaPaused');
  assert.deepEqual(
    events.map((e) => [e.reason, e.message]),
    [['SuccessfulPaused', 'Paused']],
  );
});

test('an orphan VMI the selector matches queues the replica set, which adopts it; VMIs of another owner are left alone', async () => {
  const { informers, api, queue, controller } = rsSetup([replicaSet(1)]);
  const orphan = ownedVmi('orphan');
  orphan.metadata.ownerReferences = undefined;
  informers.vmis.upsert(orphan);
  assert.equal(await queue.get(), 'ns/vmi-replicaset-cirros');
  informers.vmis.upsert(ownedVmi('foreign', 'Running', 'someone-else'));
  assert.equal(queue.length, 0, 'a VMI another controller owns queues nothing');
  await controller.reconcile('ns/vmi-replicaset-cirros');
  assert.deepEqual(
    (api.called('patchVmi') as string[][]).map((c) => c[1]),
    ['orphan'],
  );
  assert.equal(api.called('createVmi').length, 0);
});
