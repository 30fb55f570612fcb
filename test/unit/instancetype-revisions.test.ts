// Instance types and preferences in virt-controller: captured once in a
// ControllerRevision referenced from the VM's status, applied from there to the
// VMI, a new one requiring a restart; the pure plan and the VM controller's wiring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1ControllerRevision, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type {
  DataVolume,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstancetype,
  VirtualMachinePreference,
} from '../../src/api/types.ts';
import {
  controllerRevisionFor,
  inferMatchers,
  syncInstancetypes,
  type InstancetypeLookup,
  type InstancetypeObject,
} from '../../src/controller/instancetype.ts';
import { planVm, vmiFromVm } from '../../src/controller/vm.ts';
import { VmController, type VmControllerApi } from '../../src/controller/vm-controller.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { example } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { capturedEvents, capturedLog } from '../helpers/wiring.ts';

type Vm = Typed<VirtualMachine>;
const NOW = new Date('2026-11-22T10:00:00Z');

function csmall(memory = '128Mi', generation = 1): Typed<VirtualMachineInstancetype> {
  const it = example<Typed<VirtualMachineInstancetype>>('csmall.yaml');
  it.metadata = { ...it.metadata, namespace: 'ns', uid: 'csmall-uid', generation };
  it.spec.memory.guest = memory;
  return it;
}

/** The upstream example VM, without the memory it sets beside its instance type (a conflict upstream rejects). */
function vmNamingCsmall(): Vm {
  const vm = example<Vm>('vm-cirros-csmall.yaml');
  vm.metadata = {
    ...vm.metadata,
    namespace: 'ns',
    uid: 'vm-uid',
    resourceVersion: '3',
    generation: 1,
    finalizers: ['kubevirt.io/virtualMachineControllerFinalize'],
  };
  delete vm.spec.template.spec!.domain.memory;
  vm.spec.runStrategy = 'Always';
  return vm;
}

function lookup(objects: { instancetypes?: InstancetypeObject<never>[]; revisions?: V1ControllerRevision[] } = {}): InstancetypeLookup {
  return {
    instancetype: (ns, name) => objects.instancetypes?.find((o) => o.metadata.name === name && o.metadata.namespace === ns) as never,
    clusterInstancetype: () => undefined,
    preference: () => undefined,
    clusterPreference: (name) =>
      name === 'cirros'
        ? {
            apiVersion: 'instancetype.kubevirt.io/v1beta1',
            kind: 'VirtualMachineClusterPreference',
            metadata: { name, uid: 'p-uid', generation: 2 },
            spec: { devices: { preferredDiskBus: 'virtio' } },
          }
        : undefined,
    revision: (ns, name) => objects.revisions?.find((r) => r.metadata?.name === name && r.metadata?.namespace === ns),
  };
}

test('the first sync captures the instance type in a revision owned by the VM, named and labelled as upstream', () => {
  const vm = vmNamingCsmall();
  const sync = syncInstancetypes(vm, lookup({ instancetypes: [csmall() as never] }));
  assert.equal(sync.failure, undefined);
  assert.equal(sync.applied, undefined, 'nothing applies before the revision is seen');
  const [revision] = sync.create;
  assert.equal(revision.metadata?.name, 'vm-cirros-csmall-csmall-v1beta1-csmall-uid-1');
  assert.deepEqual(revision.metadata?.labels, {
    'instancetype.kubevirt.io/object-generation': '1',
    'instancetype.kubevirt.io/object-kind': 'VirtualMachineInstancetype',
    'instancetype.kubevirt.io/object-name': 'csmall',
    'instancetype.kubevirt.io/object-uid': 'csmall-uid',
    'instancetype.kubevirt.io/object-version': 'v1beta1',
  });
  assert.equal(revision.metadata?.ownerReferences?.[0].uid, 'vm-uid');
  assert.deepEqual((revision.data as { spec: unknown }).spec, { cpu: { guest: 1 }, memory: { guest: '128Mi' } });
  assert.deepEqual(sync.patch, [
    { op: 'add', path: '/status', value: {} },
    {
      op: 'add',
      path: '/status/instancetypeRef',
      value: {
        name: 'csmall',
        kind: 'VirtualMachineInstancetype',
        controllerRevisionRef: { name: 'vm-cirros-csmall-csmall-v1beta1-csmall-uid-1' },
      },
    },
  ]);
});

test('once captured, the revision applies, however the instance type was edited since', () => {
  const vm = vmNamingCsmall();
  const revision = controllerRevisionFor(vm, 'VirtualMachineInstancetype', csmall() as never);
  vm.status = {
    instancetypeRef: { name: 'csmall', kind: 'VirtualMachineInstancetype', controllerRevisionRef: { name: revision.metadata!.name! } },
  };
  const edited = csmall('2Gi', 2);
  const sync = syncInstancetypes(vm, lookup({ instancetypes: [edited as never], revisions: [revision] }));
  assert.deepEqual(sync.create, []);
  assert.equal(sync.patch, undefined);
  assert.equal(sync.applied?.instancetype?.memory.guest, '128Mi');
});

test('the VMI is made from the captured specs, annotated with the instance type name', () => {
  const vm = vmNamingCsmall();
  const revision = controllerRevisionFor(vm, 'VirtualMachineInstancetype', csmall() as never);
  vm.status = {
    instancetypeRef: { name: 'csmall', kind: 'VirtualMachineInstancetype', controllerRevisionRef: { name: revision.metadata!.name! } },
  };
  const plan = planVm(vm, undefined, { now: NOW, jitter: 0 }, undefined, {
    template: {
      ...vm.spec.template,
      spec: {
        ...vm.spec.template.spec!,
        domain: { ...vm.spec.template.spec!.domain, cpu: { sockets: 1, cores: 1, threads: 1 }, memory: { guest: '128Mi' } },
      },
    },
  });
  assert.equal(plan.createVmi?.spec.domain.memory?.guest, '128Mi');
  assert.equal(plan.createVmi?.metadata.annotations?.['kubevirt.io/instancetype-name'], 'csmall');
});

test('pointing the VM at another instance type drops the captured revision; the running VMI then needs a restart', () => {
  const vm = vmNamingCsmall();
  const first = controllerRevisionFor(vm, 'VirtualMachineInstancetype', csmall() as never);
  vm.status = {
    instancetypeRef: { name: 'csmall', kind: 'VirtualMachineInstancetype', controllerRevisionRef: { name: first.metadata!.name! } },
  };
  const vmi: VirtualMachineInstance = {
    ...vmiFromVm(vm),
    metadata: { ...vmiFromVm(vm).metadata, uid: 'vmi-uid' },
    status: { phase: 'Running' },
  };
  const bigger: InstancetypeObject<never> = {
    ...csmall('256Mi'),
    metadata: { name: 'cmedium', namespace: 'ns', uid: 'cmedium-uid', generation: 1 },
  } as never;
  const moved = structuredClone(vm);
  moved.spec.instancetype = { kind: 'VirtualMachineInstancetype', name: 'cmedium' };
  const sync = syncInstancetypes(moved, lookup({ instancetypes: [csmall() as never, bigger], revisions: [first] }));
  assert.equal(sync.create[0].metadata?.name, 'vm-cirros-csmall-cmedium-v1beta1-cmedium-uid-1');
  const ref = sync.patch?.find((p) => p.path === '/status/instancetypeRef')?.value as {
    name: string;
    controllerRevisionRef: { name: string };
  };
  assert.equal(ref.name, 'cmedium');
  // The status now references the new revision: the VMI started from the old one needs a restart.
  moved.status = { instancetypeRef: ref };
  const plan = planVm(moved, vmi, { now: NOW, jitter: 0 });
  assert.equal(plan.status.conditions?.find((c) => c.type === 'RestartRequired')?.status, 'True');
  assert.equal(
    planVm(vm, vmi, { now: NOW, jitter: 0 }).status.conditions?.find((c) => c.type === 'RestartRequired'),
    undefined,
  );
});

test('a missing instance type keeps the VM from starting, with upstream failure reason', () => {
  const vm = vmNamingCsmall();
  const sync = syncInstancetypes(vm, lookup());
  assert.deepEqual(sync.failure, {
    reason: 'FailedFindInstancetype',
    message: 'virtualmachineinstancetype.instancetype.kubevirt.io "csmall" not found',
  });
  const plan = planVm(vm, undefined, { now: NOW, jitter: 0 }, undefined, { failure: sync.failure });
  assert.equal(plan.createVmi, undefined);
  const failure = plan.status.conditions?.find((c) => c.type === 'Failure');
  assert.equal(failure?.reason, 'FailedFindInstancetype');
});

test('a template that sets what the instance type sets is not captured: upstream conflict', () => {
  const vm = example<Vm>('vm-cirros-csmall.yaml');
  vm.metadata = { ...vm.metadata, namespace: 'ns', uid: 'vm-uid' };
  const sync = syncInstancetypes(vm, lookup({ instancetypes: [csmall() as never] }));
  assert.equal(sync.failure?.reason, 'FailedCreate');
  assert.match(sync.failure!.message, /VM field\(s\) spec\.template\.spec\.domain\.memory\.guest conflicts with selected instance type/);
});

test('a cluster preference (the default kind) is captured beside the instance type', () => {
  const vm = vmNamingCsmall();
  vm.spec.preference = { name: 'cirros' };
  const sync = syncInstancetypes(vm, lookup({ instancetypes: [csmall() as never] }));
  assert.deepEqual(
    sync.create.map((r) => r.metadata?.labels?.['instancetype.kubevirt.io/object-kind']),
    ['VirtualMachineInstancetype', 'VirtualMachineClusterPreference'],
  );
  assert.ok(sync.patch?.some((p) => p.path === '/status/preferenceRef'));
});

test('inferFromVolume names the defaults the claim is labelled with; with Ignore, an unlabelled volume clears the matcher', () => {
  const vm = vmNamingCsmall();
  vm.spec.template.spec!.volumes = [{ name: 'root', persistentVolumeClaim: { claimName: 'disk' } }];
  vm.spec.instancetype = { inferFromVolume: 'root' };
  const labelled: V1PersistentVolumeClaim = {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      labels: {
        'instancetype.kubevirt.io/default-instancetype': 'u1.medium',
        'instancetype.kubevirt.io/default-instancetype-kind': 'VirtualMachineClusterInstancetype',
      },
    },
  };
  const patch = inferMatchers(vm, { pvc: () => labelled, dataVolume: () => undefined as DataVolume | undefined });
  assert.deepEqual((patch as JsonPatchOperation[]).slice(1), [
    { op: 'replace', path: '/spec/instancetype', value: { name: 'u1.medium', kind: 'VirtualMachineClusterInstancetype' } },
  ]);
  vm.spec.instancetype = { inferFromVolume: 'root', inferFromVolumeFailurePolicy: 'Ignore' };
  const cleared = inferMatchers(vm, { pvc: () => ({ metadata: { name: 'disk' } }), dataVolume: () => undefined });
  assert.deepEqual((cleared as JsonPatchOperation[]).slice(1), [{ op: 'remove', path: '/spec/instancetype' }]);
  vm.spec.instancetype = { inferFromVolume: 'nowhere' };
  assert.deepEqual(inferMatchers(vm, { pvc: () => undefined, dataVolume: () => undefined }), {
    error: 'unable to find volume nowhere to infer defaults',
  });
});

/** Every API write of the VM controller, recorded. */
class RecordingVmApi implements VmControllerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  called(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }
  #call(method: string, ...args: unknown[]) {
    this.calls.push({ method, args });
  }
  async patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Vm> {
    this.#call('patchVm', namespace, name, patch);
    return { metadata: { name, namespace, resourceVersion: '9' } } as Vm;
  }
  async createDataVolume(namespace: string, dv: DataVolume): Promise<Typed<DataVolume>> {
    this.#call('createDataVolume', namespace, dv);
    return dv as Typed<DataVolume>;
  }
  async patchDataVolume(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchDataVolume', namespace, name, patch);
  }
  async createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>> {
    this.#call('createVmi', namespace, vmi);
    return vmi as Typed<VirtualMachineInstance>;
  }
  async patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    this.#call('patchVmi', namespace, name, patch);
  }
  async deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void> {
    this.#call('deleteVmi', namespace, name, uid);
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
}

function vmSetup(vms: Vm[], instancetypes: Typed<VirtualMachineInstancetype>[], revisions: V1ControllerRevision[] = []) {
  const informers = {
    vms: new SeededInformer<Vm>(vms),
    vmis: new SeededInformer<Typed<VirtualMachineInstance>>(),
    dataVolumes: new SeededInformer<Typed<DataVolume>>(),
    pvcs: new SeededInformer<V1PersistentVolumeClaim>(),
    instancetypes: new SeededInformer<Typed<VirtualMachineInstancetype>>(instancetypes),
    clusterInstancetypes: new SeededInformer<Typed<VirtualMachineInstancetype>>(),
    preferences: new SeededInformer<Typed<VirtualMachinePreference>>(),
    clusterPreferences: new SeededInformer<Typed<VirtualMachinePreference>>(),
    revisions: new SeededInformer<V1ControllerRevision>(revisions),
  };
  const api = new RecordingVmApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const controller = new VmController({ api, informers, queue, now: () => NOW, jitter: () => 0, record, log: capturedLog().log });
  return { informers, api, queue, events, controller };
}

test('wiring: the VM controller captures the instance type first, then, with the revision in its cache, starts the VMI sized by it', async () => {
  const vm = vmNamingCsmall();
  const { informers, api, queue, controller } = vmSetup([vm], [csmall()]);
  await controller.reconcile('ns/vm-cirros-csmall');
  const [[, revision]] = api.called('createControllerRevision') as [string, V1ControllerRevision][];
  assert.equal(api.called('patchVmStatus').length, 1);
  assert.equal(api.called('createVmi').length, 0, 'no VMI before the revision is referenced');
  // The status patch and the revision come back through the caches.
  const [[, , patch]] = api.called('patchVmStatus') as [string, string, JsonPatchOperation[]][];
  const ref = patch.find((p) => p.path === '/status/instancetypeRef')!.value as NonNullable<
    NonNullable<VirtualMachine['status']>['instancetypeRef']
  >;
  informers.vms.upsert({ ...vm, metadata: { ...vm.metadata, resourceVersion: '4' }, status: { instancetypeRef: ref } });
  informers.revisions.upsert({ ...revision, metadata: { ...revision.metadata, uid: 'rev-uid' } });
  assert.equal(await queue.get(), 'ns/vm-cirros-csmall');
  // The instance type is edited meanwhile: the captured one still applies.
  informers.instancetypes.upsert(csmall('1Gi', 2));
  await controller.reconcile('ns/vm-cirros-csmall');
  const [[, vmi]] = api.called('createVmi') as [string, VirtualMachineInstance][];
  assert.equal(vmi.spec.domain.memory?.guest, '128Mi');
  assert.deepEqual(vmi.spec.domain.cpu, { sockets: 1, cores: 1, threads: 1 });
  // The instance type is captured once; the second revision is the VM's spec as started, naming that capture.
  const written = api.called('createControllerRevision') as [string, V1ControllerRevision][];
  assert.deepEqual(
    written.map(([, r]) => r.metadata?.name),
    [revision.metadata?.name, vmi.status?.virtualMachineRevisionName],
  );
  const started = written[1][1].data as { spec: VirtualMachine['spec'] };
  assert.equal(started.spec.instancetype?.revisionName, ref.controllerRevisionRef?.name);
});
