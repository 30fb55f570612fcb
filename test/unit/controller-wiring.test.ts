// virt-controller's wiring, as upstream tests its controllers: seeded informers
// in, the work queue and a recording fake of the API out. Informer events
// must queue the right keys, and reconcile must make the right writes, once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { V1ControllerRevision, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { DataVolume, VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import { HEARTBEAT_ANNOTATION } from '../../src/contract/node.ts';
import { NodeController, type NodeControllerApi } from '../../src/controller/node-controller.ts';
import { startRevision, VM_FINALIZER, vmiFromVm } from '../../src/controller/vm.ts';
import { VmController, type VmControllerApi } from '../../src/controller/vm-controller.ts';
import { VmiController, type VmiControllerApi } from '../../src/controller/vmi-controller.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { apiError, capturedEvents, capturedLog } from '../helpers/wiring.ts';

type Vmi = Typed<VirtualMachineInstance>;
type Vm = Typed<VirtualMachine>;
type Dv = Typed<DataVolume>;
const NOW = new Date('2026-11-22T10:00:00Z');
const now = () => NOW;
const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent' };

/** Every API write the controllers make, in order; emits each method's name as it is called. A failure set with failNext is thrown once. */
class RecordingApi extends EventEmitter implements VmiControllerApi, VmControllerApi, NodeControllerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly #failures = new Map<string, Error>();
  #resourceVersion = 100;

  failNext(method: string, error: Error): void {
    this.#failures.set(method, error);
  }

  called(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  #call(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    this.emit(method);
    const failure = this.#failures.get(method);
    this.#failures.delete(method);
    if (failure) throw failure;
  }

  #written<T extends { metadata?: object }>(object: T): T {
    return { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.#resourceVersion) } };
  }

  async createPod(namespace: string, pod: V1Pod): Promise<V1Pod> {
    this.#call('createPod', namespace, pod);
    return this.#written({ ...pod, metadata: { ...pod.metadata, name: `${pod.metadata?.generateName}abcde`, uid: 'pod-uid' } });
  }

  async deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    this.#call('deletePod', namespace, name, gracePeriodSeconds);
  }

  async createDataVolume(namespace: string, dv: DataVolume): Promise<Dv> {
    this.#call('createDataVolume', namespace, dv);
    return this.#written({ ...dv, metadata: { ...dv.metadata, uid: `uid-of-${dv.metadata.name}` } }) as Dv;
  }

  async patchDataVolume(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchDataVolume', namespace, name, patch);
  }

  async replaceVmi(namespace: string, name: string, vmi: VirtualMachineInstance): Promise<Vmi> {
    this.#call('replaceVmi', namespace, name, vmi);
    return this.#written(vmi) as Vmi;
  }

  async createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Vmi> {
    this.#call('createVmi', namespace, vmi);
    return this.#written({ ...vmi, metadata: { ...vmi.metadata, uid: 'vmi-uid' } }) as Vmi;
  }

  async deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void> {
    this.#call('deleteVmi', namespace, name, uid);
  }

  async patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchVmi', namespace, name, patch);
  }

  async patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Vm> {
    this.#call('patchVm', namespace, name, patch);
    return this.#written({ metadata: { name, namespace } }) as Vm;
  }

  async replaceVmStatus(namespace: string, name: string, vm: VirtualMachine): Promise<void> {
    this.#call('replaceVmStatus', namespace, name, vm);
  }

  async patchVmStatus(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchVmStatus', namespace, name, patch);
  }

  async createControllerRevision(namespace: string, revision: V1ControllerRevision): Promise<void> {
    this.#call('createControllerRevision', namespace, revision);
  }
  async deleteControllerRevision(namespace: string, name: string): Promise<void> {
    this.#call('deleteControllerRevision', namespace, name);
  }

  async patchNode(name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchNode', name, patch);
  }
}

function newVmi(): Vmi {
  const source = example<VirtualMachineInstance>('vmi-nocloud.yaml');
  const vmi = defaultNewVmi({ ...source, metadata: { ...source.metadata, namespace: 'ns' } }, config, fixedContext()) as Vmi;
  vmi.metadata.uid = 'vmi-uid';
  vmi.metadata.resourceVersion = '7';
  return vmi;
}

function launcherPod(owner: { name: string; uid: string }, labelledFor = owner.name): V1Pod {
  return {
    metadata: {
      name: `virt-launcher-${labelledFor}-abcde`,
      namespace: 'ns',
      uid: `pod-of-${labelledFor}`,
      labels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': labelledFor },
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', ...owner, controller: true }],
    },
    spec: { nodeName: 'node01', containers: [] },
    status: { phase: 'Running' },
  };
}

function vmiSetup(vmis: Vmi[] = [], pods: V1Pod[] = [], dataVolumes: Dv[] = [], pvcs: V1PersistentVolumeClaim[] = []) {
  const informers = {
    vmis: new SeededInformer<Vmi>(vmis),
    pods: new SeededInformer<V1Pod>(pods),
    dataVolumes: new SeededInformer<Dv>(dataVolumes),
    pvcs: new SeededInformer<V1PersistentVolumeClaim>(pvcs),
  };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new VmiController({ api, informers, queue, params, config: () => config, now, record, log: capturedLog().log });
  return { informers, api, queue, events, controller };
}

test('a VMI added to the informer is queued, and its reconcile creates one launcher pod and writes Scheduling', async () => {
  const { informers, api, queue, events, controller } = vmiSetup();
  informers.vmis.upsert(newVmi());
  assert.equal(queue.length, 1);
  const key = await queue.get();
  assert.equal(key, 'ns/vmi-nocloud');
  await controller.reconcile(key!);
  const [[namespace, pod]] = api.called('createPod') as [string, V1Pod][];
  assert.equal(namespace, 'ns');
  assert.equal(pod.metadata?.generateName, 'virt-launcher-vmi-nocloud-');
  assert.deepEqual(
    pod.metadata?.ownerReferences?.map((o) => o.uid),
    ['vmi-uid'],
  );
  const [[, , written]] = api.called('replaceVmi') as [string, string, VirtualMachineInstance][];
  assert.equal(written.status?.phase, 'Scheduling');
  const message = 'Created virtual machine pod virt-launcher-vmi-nocloud-abcde';
  assert.deepEqual(events, [{ name: 'vmi-nocloud', type: 'Normal', reason: 'SuccessfulCreate', message }]);
});

test('the expectation stops a second pod create until the created pod shows up in the pod informer', async () => {
  const { informers, api, queue, controller } = vmiSetup([newVmi()]);
  // The status write fails, so the cache still shows the VMI as it was when the pod was created.
  api.failNext('replaceVmi', apiError(409, 'the object has been modified'));
  await assert.rejects(controller.reconcile('ns/vmi-nocloud'), /modified/);
  await controller.reconcile('ns/vmi-nocloud');
  assert.equal(api.called('createPod').length, 1);
  informers.pods.upsert(launcherPod({ name: 'vmi-nocloud', uid: 'vmi-uid' }));
  assert.equal(await queue.get(), 'ns/vmi-nocloud', 'the pod event queues its VMI');
  await controller.reconcile('ns/vmi-nocloud');
  assert.equal(api.called('createPod').length, 1);
});

test('a failed pod create is reported, and the next reconcile creates the pod', async () => {
  const { api, events, controller } = vmiSetup([newVmi()]);
  api.failNext('createPod', apiError(403, 'pods "virt-launcher-vmi-nocloud-" is forbidden: exceeded quota'));
  await assert.rejects(controller.reconcile('ns/vmi-nocloud'), /forbidden/);
  assert.deepEqual(
    events.map((e) => [e.type, e.reason, e.message]),
    [['Warning', 'FailedCreate', 'Error creating pod: pods "virt-launcher-vmi-nocloud-" is forbidden: exceeded quota']],
  );
  assert.equal(api.called('replaceVmi').length, 0, 'nothing is written after the failed create');
  await controller.reconcile('ns/vmi-nocloud');
  assert.equal(api.called('createPod').length, 2);
});

test('a VMI gone before its status write (404) is no failure', async () => {
  const { api, controller } = vmiSetup([newVmi()]);
  api.failNext('replaceVmi', apiError(404));
  await controller.reconcile('ns/vmi-nocloud');
  assert.equal(api.called('replaceVmi').length, 1);
});

test('a pod event queues the VMI its ownerReference names, whatever its labels say', async () => {
  const { informers, queue } = vmiSetup();
  informers.pods.upsert(launcherPod({ name: 'owner', uid: 'owner-uid' }, 'impostor'));
  const unowned = launcherPod({ name: 'x', uid: 'x' }, 'labelled-only');
  unowned.metadata!.ownerReferences = [];
  informers.pods.upsert(unowned);
  assert.equal(queue.length, 1);
  assert.equal(await queue.get(), 'ns/owner');
});

test('the VMI worker reconciles what the informers queue, until the queue shuts down', async () => {
  const { informers, api, queue, controller } = vmiSetup();
  const running = controller.run(2);
  const created = once(api, 'createPod');
  informers.vmis.upsert(newVmi());
  await created;
  queue.shutDown();
  await running;
  assert.equal(api.called('createPod').length, 1);
});

function vmAlways(): Vm {
  const vm = example<VirtualMachine>('vm-cirros.yaml') as Vm;
  vm.metadata = { ...vm.metadata, namespace: 'ns', uid: 'vm-uid', resourceVersion: '3', finalizers: [VM_FINALIZER] };
  vm.spec.runStrategy = 'Always';
  return vm;
}

function vmSetup(vms: Vm[] = [], dataVolumes: Dv[] = [], pvcs: V1PersistentVolumeClaim[] = []) {
  const informers = {
    vms: new SeededInformer<Vm>(vms),
    vmis: new SeededInformer<Vmi>(),
    dataVolumes: new SeededInformer<Dv>(dataVolumes),
    pvcs: new SeededInformer<V1PersistentVolumeClaim>(pvcs),
    revisions: new SeededInformer<V1ControllerRevision>(),
  };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new VmController({ api, informers, queue, now, jitter: () => 0, record, log: capturedLog().log });
  return { informers, api, queue, events, controller };
}

test('a VM with runStrategy Always and no VMI is queued and creates its VMI, once until the VMI is seen', async () => {
  const { informers, api, queue, events, controller } = vmSetup();
  informers.vms.upsert(vmAlways());
  assert.equal(await queue.get(), 'ns/vm-cirros');
  queue.done('ns/vm-cirros');
  await controller.reconcile('ns/vm-cirros');
  const [[namespace, vmi]] = api.called('createVmi') as [string, VirtualMachineInstance][];
  assert.equal(namespace, 'ns');
  assert.equal(vmi.metadata.name, 'vm-cirros');
  assert.deepEqual(
    vmi.metadata.ownerReferences?.map((o) => [o.kind, o.uid]),
    [['VirtualMachine', 'vm-uid']],
  );
  assert.deepEqual(
    events.map((e) => e.reason),
    ['SuccessfulCreate'],
  );
  const [[, , status]] = api.called('replaceVmStatus') as [string, string, VirtualMachine][];
  assert.equal(status.status?.printableStatus, 'Starting');
  assert.equal(status.metadata.resourceVersion, '3');
  await controller.reconcile('ns/vm-cirros');
  assert.equal(api.called('createVmi').length, 1, 'the expectation holds the second create back');
});

test('a VMI event queues the VM of the same name', async () => {
  const { informers, queue } = vmSetup([vmAlways()]);
  informers.vmis.upsert({ ...newVmi(), metadata: { ...newVmi().metadata, name: 'vm-cirros' } });
  assert.equal(await queue.get(), 'ns/vm-cirros');
});

test('a VM without the finalizer gets it first, and its status is written at the version that patch returned', async () => {
  const vm = vmAlways();
  vm.metadata.finalizers = [];
  const { api, controller } = vmSetup([vm]);
  await controller.reconcile('ns/vm-cirros');
  assert.deepEqual(api.called('patchVm'), [['ns', 'vm-cirros', [{ op: 'add', path: '/metadata/finalizers', value: [VM_FINALIZER] }]]]);
  const [[, , status]] = api.called('replaceVmStatus') as [string, string, VirtualMachine][];
  assert.equal(status.metadata.resourceVersion, '101');
});

test("a VM's new generation over an unchanged template is patched onto its VMI, guarded by the VMI's resourceVersion", async () => {
  const vm = vmAlways();
  vm.metadata.generation = 1;
  // As upstream's tests annotate theirs: kube-apiserver would never find this value equal to itself in a JSON patch test.
  vm.spec.template.metadata = { annotations: { 'kubevirt.io/created-by-test': 'stops a VM with terminationGracePeriodSeconds>0' } };
  const revision = startRevision(vm);
  const vmi = { ...vmiFromVm(vm), status: { phase: 'Running', virtualMachineRevisionName: revision.metadata!.name } } as Vmi;
  vmi.metadata.uid = 'vmi-uid';
  vmi.metadata.resourceVersion = '41';
  vm.metadata.generation = 2;
  const { informers, api, controller } = vmSetup([vm]);
  informers.vmis.upsert(vmi);
  informers.revisions.upsert(revision);
  await controller.reconcile('ns/vm-cirros');
  const [[namespace, name, patch]] = api.called('patchVmi') as [string, string, JsonPatchOperation[]][];
  assert.deepEqual([namespace, name], ['ns', 'vm-cirros']);
  assert.deepEqual(patch[0], { op: 'test', path: '/metadata/resourceVersion', value: '41' });
  assert.equal((patch[1].value as Record<string, string>)['kubevirt.io/vm-generation'], '2');
  const [[, , written]] = api.called('replaceVmStatus') as [string, string, VirtualMachine][];
  assert.equal(written.status?.observedGeneration, 2);
  assert.equal(written.status?.desiredGeneration, 2);
});

test("a VM's start first deletes its earlier start revision, then writes this generation's, then creates the VMI naming it", async () => {
  const vm = vmAlways();
  vm.metadata.generation = 5;
  const earlier = startRevision({ ...vm, metadata: { ...vm.metadata, generation: 2 } });
  const { informers, api, controller } = vmSetup([vm]);
  informers.revisions.upsert(earlier);
  await controller.reconcile('ns/vm-cirros');
  const order = api.calls.map((c) => c.method).filter((m) => /Revision|createVmi/.test(m));
  assert.deepEqual(order, ['deleteControllerRevision', 'createControllerRevision', 'createVmi']);
  assert.deepEqual(api.called('deleteControllerRevision'), [['ns', 'revision-start-vm-vm-uid-2']]);
  const [[, revision]] = api.called('createControllerRevision') as [string, V1ControllerRevision][];
  assert.equal(revision.metadata?.name, 'revision-start-vm-vm-uid-5');
  assert.equal(revision.revision, 5);
  assert.deepEqual(revision.data, { spec: vm.spec });
  const [[, vmi]] = api.called('createVmi') as [string, VirtualMachineInstance][];
  assert.equal(vmi.status?.virtualMachineRevisionName, 'revision-start-vm-vm-uid-5');
});

test('a VM deleted with propagationPolicy Orphan drops its finalizer over the list it read, and its VMI is not deleted', async () => {
  const vm = vmAlways();
  vm.metadata.deletionTimestamp = '2026-11-22T10:00:00Z' as never;
  vm.metadata.finalizers = ['orphan', VM_FINALIZER];
  const vmi = { ...vmiFromVm(vm), status: { phase: 'Running' } } as Vmi;
  vmi.metadata.uid = 'vmi-uid';
  const { informers, api, controller } = vmSetup([vm]);
  informers.vmis.upsert(vmi);
  await controller.reconcile('ns/vm-cirros');
  assert.deepEqual(api.called('deleteVmi'), []);
  assert.deepEqual(api.called('patchVm'), [
    [
      'ns',
      'vm-cirros',
      [
        { op: 'test', path: '/metadata/finalizers', value: ['orphan', VM_FINALIZER] },
        { op: 'add', path: '/metadata/finalizers', value: ['orphan'] },
      ],
    ],
  ]);
});

function node(heartbeat: Date): V1Node {
  const annotations = { [HEARTBEAT_ANNOTATION]: heartbeat.toISOString() };
  return { metadata: { name: 'node01', labels: { 'kubevirt.io/schedulable': 'true' }, annotations } };
}

function nodeSetup(nodes: V1Node[] = [], vmis: Vmi[] = []) {
  const informers = { nodes: new SeededInformer<V1Node>(nodes), vmis: new SeededInformer<Vmi>(vmis), pods: new SeededInformer<V1Pod>() };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new NodeController({ api, informers, queue, heartbeatTimeoutMs: 5 * 60_000, now, record, log: capturedLog().log });
  return { informers, api, queue, events, controller };
}

test('a node whose heartbeat is stale is queued, marked unschedulable, and its VMI without a running pod fails', async () => {
  const running = newVmi();
  running.status = { ...running.status, phase: 'Running', nodeName: 'node01' };
  const { informers, api, queue, events, controller } = nodeSetup([], [running]);
  informers.nodes.upsert(node(new Date(NOW.getTime() - 10 * 60_000)));
  assert.equal(await queue.get(), 'node01');
  await controller.reconcile('node01');
  const unschedulable = [{ op: 'add', path: '/metadata/labels/kubevirt.io~1schedulable', value: 'false' }];
  assert.deepEqual(api.called('patchNode'), [['node01', unschedulable]]);
  const [[, name, failed]] = api.called('replaceVmi') as [string, string, VirtualMachineInstance][];
  assert.equal(name, 'vmi-nocloud');
  assert.deepEqual([failed.status?.phase, failed.status?.reason], ['Failed', 'NodeUnresponsive']);
  assert.deepEqual(
    events.map((e) => [e.type, e.reason]),
    [['Warning', 'NodeUnresponsive']],
  );
});

test('a node with a fresh heartbeat is left alone and looked at again when the heartbeat runs out', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { api, queue, controller } = nodeSetup([node(new Date(NOW.getTime() - 60_000))]);
  await controller.reconcile('node01');
  assert.equal(api.calls.length, 0);
  t.mock.timers.tick(4 * 60_000 + 1000);
  assert.equal(await queue.get(), 'node01');
});

test('a VMI event queues the node it runs on', async () => {
  const vmi = newVmi();
  vmi.status = { ...vmi.status, nodeName: 'node01' };
  const { informers, queue } = nodeSetup();
  informers.vmis.upsert(vmi);
  assert.equal(await queue.get(), 'node01');
});

// DataVolumes and claims: the VM controller makes its templates' DataVolumes, and the VMI
// controller waits for their claims, binding WaitForFirstConsumer ones with a temporary pod.

function vmWithTemplate(): Vm {
  const vm = vmAlways();
  vm.spec.template.spec!.volumes = [{ name: 'rootdisk', dataVolume: { name: 'root-dv' } }];
  vm.spec.dataVolumeTemplates = [{ metadata: { name: 'root-dv' }, spec: { source: { blank: {} } } }];
  return vm;
}

function templateDv(phase: string | undefined, owners: Dv['metadata']['ownerReferences'] = undefined): Dv {
  const ownerReferences = owners ?? [
    { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'vm-cirros', uid: 'vm-uid', controller: true },
  ];
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: 'root-dv', namespace: 'ns', uid: 'dv-uid', resourceVersion: '5', ownerReferences },
    spec: {},
    ...(phase ? { status: { phase } } : {}),
  };
}

function boundClaim(name: string, owner?: string): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace: 'ns',
      ...(owner
        ? { ownerReferences: [{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: owner, uid: 'dv-uid', controller: true }] }
        : {}),
    },
    spec: { resources: { requests: { storage: '1Gi' } } },
    status: { phase: 'Bound', capacity: { storage: '1Gi' } },
  };
}

test("a VM's template DataVolume is created once until the cache shows it, and its VMI waits until it is filled", async () => {
  const { informers, api, queue, events, controller } = vmSetup([vmWithTemplate()]);
  await controller.reconcile('ns/vm-cirros');
  const [[namespace, dv]] = api.called('createDataVolume') as [string, DataVolume][];
  assert.equal(namespace, 'ns');
  assert.equal(dv.metadata.name, 'root-dv');
  assert.deepEqual(
    dv.metadata.ownerReferences?.map((o) => [o.kind, o.uid, o.controller]),
    [['VirtualMachine', 'vm-uid', true]],
  );
  assert.deepEqual(events, [
    { name: 'vm-cirros', type: 'Normal', reason: 'SuccessfulDataVolumeCreate', message: 'Created DataVolume root-dv' },
  ]);
  assert.equal(api.called('createVmi').length, 0);
  await controller.reconcile('ns/vm-cirros');
  assert.equal(api.called('createDataVolume').length, 1, 'the expectation holds the second create back');
  // The DataVolume shows up: the VM is queued, and its import is waited for.
  while (queue.length) queue.done((await queue.get())!);
  informers.dataVolumes.upsert(templateDv('ImportInProgress'));
  assert.equal(await queue.get(), 'ns/vm-cirros');
  queue.done('ns/vm-cirros');
  await controller.reconcile('ns/vm-cirros');
  assert.equal(api.called('createDataVolume').length, 1);
  assert.equal(api.called('createVmi').length, 0);
  const status = (api.called('replaceVmStatus').at(-1) as [string, string, VirtualMachine])[2];
  assert.equal(status.status?.printableStatus, 'Provisioning');
  informers.dataVolumes.upsert(templateDv('Succeeded'));
  await controller.reconcile((await queue.get())!);
  assert.equal(api.called('createVmi').length, 1);
});

test('a DataVolume that cannot be created is reported in an event and the Failure condition, and tried again', async () => {
  const { api, events, controller } = vmSetup([vmWithTemplate()]);
  api.failNext('createDataVolume', apiError(404, 'the server could not find the requested resource'));
  await assert.rejects(controller.reconcile('ns/vm-cirros'), /could not find/);
  assert.deepEqual(
    events.map((e) => [e.type, e.reason]),
    [['Warning', 'FailedDataVolumeCreate']],
  );
  assert.match(events[0].message, /^Error creating DataVolume root-dv: .*could not find the requested resource/);
  const [[, , written]] = api.called('replaceVmStatus') as [string, string, VirtualMachine][];
  const failure = written.status?.conditions?.find((c) => c.type === 'Failure');
  assert.equal(failure?.reason, 'FailedCreate');
  assert.match(failure?.message ?? '', /^Error encountered while creating DataVolumes: failed to create DataVolume: .*could not find/);
  await controller.reconcile('ns/vm-cirros');
  assert.equal(api.called('createDataVolume').length, 2, 'a failed create holds no expectation');
});

test('an orphaned DataVolume of a template is adopted with a guarded patch; events of DataVolumes and claims queue the VMs naming them', async () => {
  const vm = vmWithTemplate();
  vm.spec.template.spec!.volumes!.push({ name: 'data', persistentVolumeClaim: { claimName: 'data-claim' } });
  const { informers, api, queue, controller } = vmSetup([vm], [templateDv('Succeeded', [])]);
  await controller.reconcile('ns/vm-cirros');
  const [[, name, patch]] = api.called('patchDataVolume') as [string, string, JsonPatchOperation[]][];
  assert.equal(name, 'root-dv');
  assert.deepEqual(patch[0], { op: 'test', path: '/metadata/uid', value: 'dv-uid' });
  assert.deepEqual(
    (patch.at(-1)!.value as { kind: string; uid: string }[]).map((o) => [o.kind, o.uid]),
    [['VirtualMachine', 'vm-uid']],
  );
  assert.equal(api.called('createDataVolume').length, 0);
  while (queue.length) queue.done((await queue.get())!);
  informers.pvcs.upsert(boundClaim('data-claim'));
  assert.equal(await queue.get(), 'ns/vm-cirros', 'a claim the VM names');
  queue.done('ns/vm-cirros');
  informers.pvcs.upsert({ ...boundClaim('unrelated'), metadata: { name: 'unrelated', namespace: 'ns' } });
  const other = templateDv('Succeeded', []);
  informers.dataVolumes.upsert({ ...other, metadata: { ...other.metadata, name: 'other' } });
  assert.equal(queue.length, 0, 'nothing names them');
  informers.dataVolumes.upsert(templateDv('Failed', []));
  assert.equal(await queue.get(), 'ns/vm-cirros', 'an orphan the templates name');
});

function vmiWithDv(): Vmi {
  const vmi = newVmi();
  vmi.spec.domain.devices.disks!.push({ name: 'rootdisk', disk: { bus: 'virtio' } });
  vmi.spec.volumes!.push({ name: 'rootdisk', dataVolume: { name: 'root-dv' } });
  return vmi;
}

test('a VMI waits for its claim, binds a WaitForFirstConsumer claim with a temporary pod, deletes it at once when done, then creates its launcher', async () => {
  const { informers, api, queue, events, controller } = vmiSetup([vmiWithDv()]);
  await controller.reconcile('ns/vmi-nocloud');
  assert.equal(api.called('createPod').length, 0);
  let [[, , written]] = api.called('replaceVmi') as [string, string, VirtualMachineInstance][];
  assert.equal(written.status?.conditions?.find((c) => c.type === 'Synchronized')?.reason, 'FailedPvcNotFound');
  assert.deepEqual(
    events.map((e) => [e.type, e.reason]),
    [['Normal', 'FailedPvcNotFound']],
  );
  informers.vmis.upsert({ ...written, metadata: { ...written.metadata, resourceVersion: '8' } } as Vmi);
  while (queue.length) queue.done((await queue.get())!);

  informers.pvcs.upsert(boundClaim('root-dv', 'root-dv'));
  informers.dataVolumes.upsert(templateDv('WaitForFirstConsumer', []));
  assert.equal(await queue.get(), 'ns/vmi-nocloud', 'the claim queues the VMI naming it');
  queue.done('ns/vmi-nocloud');
  await controller.reconcile('ns/vmi-nocloud');
  const [[, temporary]] = api.called('createPod') as [string, V1Pod][];
  assert.equal(temporary.metadata?.annotations?.['kubevirt.io/ephemeral-provisioning'], 'true');
  written = (api.called('replaceVmi').at(-1) as [string, string, VirtualMachineInstance])[2];
  assert.equal(written.status?.phase, 'Pending');
  informers.vmis.upsert({ ...written, metadata: { ...written.metadata, resourceVersion: '9' } } as Vmi);

  // The temporary pod ran; the DataVolume moved on: the pod goes without a grace period.
  const ran: V1Pod = {
    ...temporary,
    metadata: { ...temporary.metadata, name: 'virt-launcher-vmi-nocloud-tmp', uid: 'tmp-uid' },
    status: { phase: 'Succeeded' },
  };
  informers.pods.upsert(ran);
  informers.dataVolumes.upsert(templateDv('ImportInProgress', []));
  await controller.reconcile('ns/vmi-nocloud');
  assert.deepEqual(api.called('deletePod'), [['ns', 'virt-launcher-vmi-nocloud-tmp', 0]]);
  assert.equal(api.called('createPod').length, 1, 'no launcher while the temporary pod is there');
  assert.ok(
    events.some(
      (e) => e.reason === 'SuccessfulDelete' && e.message === 'Deleted WaitForFirstConsumer temporary pod virt-launcher-vmi-nocloud-tmp',
    ),
  );

  informers.pods.remove(ran);
  informers.dataVolumes.upsert(templateDv('Succeeded', []));
  await controller.reconcile('ns/vmi-nocloud');
  const [, [, launcher]] = api.called('createPod') as [string, V1Pod][];
  assert.equal(launcher.metadata?.annotations?.['kubevirt.io/ephemeral-provisioning'], undefined);
  const last = (api.called('replaceVmi').at(-1) as [string, string, VirtualMachineInstance])[2];
  assert.equal(last.status?.phase, 'Scheduling');
  assert.equal(last.status?.volumeStatus?.find((s) => s.name === 'rootdisk')?.persistentVolumeClaimInfo?.claimName, 'root-dv');
});
