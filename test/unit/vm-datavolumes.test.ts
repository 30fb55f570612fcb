// The VM controller's part in DataVolumes, from seeded objects: the
// DataVolumes of a VM's templates (made, adopted, waited for), when the VMI may
// start, the VM's printableStatus and conditions over its claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DataVolume, VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import {
  ALLOW_CLAIM_ADOPTION_ANNOTATION,
  dataVolumeFromTemplate,
  IMMEDIATE_DATA_VOLUME_CREATION_ANNOTATION,
  lookUpVmVolumes,
  planVm,
  printableStatus,
  VM_FINALIZER,
  withSyncFailure,
  type VmVolumes,
} from '../../src/controller/vm.ts';
import { example } from '../helpers/fixtures.ts';

const clock = { now: new Date('2026-11-22T10:00:00Z'), jitter: 0 };
const NOW = '2026-11-22T10:00:00Z';

/** vm-cirros with its root disk on a DataVolume of its templates, and a data disk on a plain claim. */
function vm(runStrategy = 'Always', annotations?: Record<string, string>): VirtualMachine {
  const v = example<VirtualMachine>('vm-cirros.yaml');
  v.metadata = { ...v.metadata, namespace: 'ns', uid: 'vm-uid', finalizers: [VM_FINALIZER], ...(annotations ? { annotations } : {}) };
  v.spec.runStrategy = runStrategy;
  const spec = v.spec.template.spec!;
  spec.priorityClassName = 'vms';
  spec.volumes = [
    { name: 'rootdisk', dataVolume: { name: 'cirros-root' } },
    { name: 'datadisk', persistentVolumeClaim: { claimName: 'data' } },
    ...(spec.volumes ?? []).filter((vol) => vol.cloudInitNoCloud),
  ];
  v.spec.dataVolumeTemplates = [
    {
      metadata: { name: 'cirros-root', labels: { tier: 'gold' }, annotations: { note: 'kept' } },
      spec: { source: { http: { url: 'http://images/cirros.img' } }, storage: { resources: { requests: { storage: '1Gi' } } } },
    },
  ];
  return v;
}

function dv(
  phase: string | undefined,
  extra: Partial<DataVolume['metadata']> = {},
  conditions: NonNullable<DataVolume['status']>['conditions'] = [],
): DataVolume {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: {
      name: 'cirros-root',
      namespace: 'ns',
      uid: 'dv-uid',
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'vm-cirros', uid: 'vm-uid', controller: true }],
      ...extra,
    },
    spec: {},
    ...(phase === undefined ? {} : { status: { phase, conditions } }),
  };
}

function pvc(name: string, phase: string): V1PersistentVolumeClaim {
  return { metadata: { name, namespace: 'ns' }, spec: {}, status: { phase } };
}

const volumes = (dataVolumes: DataVolume[] = [], pvcs: V1PersistentVolumeClaim[] = []): VmVolumes => ({
  dataVolumes: new Map(dataVolumes.map((d) => [d.metadata.name!, d])),
  pvcs: new Map(pvcs.map((p) => [p.metadata!.name!, p])),
});

function vmiOf(owner: VirtualMachine, phase: string, conditions: NonNullable<VirtualMachineInstance['status']>['conditions'] = []) {
  return {
    metadata: {
      name: owner.metadata.name,
      namespace: 'ns',
      uid: 'vmi-uid',
      ownerReferences: [
        { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner.metadata.name!, uid: 'vm-uid', controller: true },
      ],
    },
    spec: owner.spec.template.spec!,
    status: { phase, conditions },
  } satisfies VirtualMachineInstance;
}

test("a template's DataVolume: the template's name and metadata, the VM's namespace, controlled by the VM, adoption of a claim allowed", () => {
  const v = vm();
  const made = dataVolumeFromTemplate(v, v.spec.dataVolumeTemplates![0]);
  assert.deepEqual(made.metadata, {
    name: 'cirros-root',
    namespace: 'ns',
    labels: { tier: 'gold', 'kubevirt.io/created-by': 'vm-uid' },
    annotations: { note: 'kept', [ALLOW_CLAIM_ADOPTION_ANNOTATION]: 'true' },
    ownerReferences: [
      {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachine',
        name: 'vm-cirros',
        uid: 'vm-uid',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  });
  assert.equal(made.apiVersion, 'cdi.kubevirt.io/v1beta1');
  assert.equal(made.kind, 'DataVolume');
  assert.equal(made.spec.priorityClassName, 'vms', "the VMI template's priority class, as upstream copies it");
  assert.deepEqual(made.spec.source, { http: { url: 'http://images/cirros.img' } });
  assert.equal(v.spec.dataVolumeTemplates![0].metadata?.labels?.['kubevirt.io/created-by'], undefined, 'the template is left as it is');

  const clone = vm();
  clone.spec.dataVolumeTemplates![0].spec = { source: { pvc: { name: 'golden', namespace: '' } }, priorityClassName: 'own' };
  const cloned = dataVolumeFromTemplate(clone, clone.spec.dataVolumeTemplates![0]);
  assert.deepEqual(cloned.spec.source?.pvc, { name: 'golden', namespace: 'ns' }, 'a clone without a namespace clones in the VM’s');
  assert.equal(cloned.spec.priorityClassName, 'own');
});

test('by default the DataVolumes are made on every sync, whatever the run strategy; the VMI waits for them', () => {
  for (const runStrategy of ['Always', 'Halted', 'Manual', 'RerunOnFailure', 'Once']) {
    const plan = planVm(vm(runStrategy), undefined, clock, volumes());
    assert.deepEqual(
      plan.createDataVolumes?.map((d) => d.metadata.name),
      ['cirros-root'],
      runStrategy,
    );
    assert.equal(plan.createVmi, undefined, runStrategy);
  }
  const made = planVm(vm(), undefined, clock, volumes([dv('ImportInProgress')]));
  assert.equal(made.createDataVolumes, undefined, 'a DataVolume the cache holds is not made again');
});

test('with immediate creation off, the DataVolumes are made only when the VM starts', () => {
  const off = { [IMMEDIATE_DATA_VOLUME_CREATION_ANNOTATION]: 'false' };
  assert.equal(planVm(vm('Halted', off), undefined, clock, volumes()).createDataVolumes, undefined);
  assert.equal(planVm(vm('Manual', off), undefined, clock, volumes()).createDataVolumes, undefined);
  const manual = vm('Manual', off);
  manual.status = { stateChangeRequests: [{ action: 'Start' }] };
  const starting = planVm(manual, undefined, clock, volumes());
  assert.deepEqual(
    starting.createDataVolumes?.map((d) => d.metadata.name),
    ['cirros-root'],
  );
  assert.equal(starting.createVmi, undefined, 'the start waits for the DataVolume');
  assert.ok(planVm(vm('Always', off), undefined, clock, volumes([dv('Succeeded')])).createVmi);
});

test('the VMI is created once every DataVolume is Succeeded, WaitForFirstConsumer or PendingPopulation, and for no other phase', () => {
  const cases: [string | undefined, boolean][] = [
    ['Succeeded', true],
    ['WaitForFirstConsumer', true],
    ['PendingPopulation', true],
    [undefined, false],
    ['Pending', false],
    ['ImportScheduled', false],
    ['ImportInProgress', false],
    ['CloneInProgress', false],
    ['UploadReady', false],
    ['Unknown', false],
    ['Failed', false],
  ];
  for (const [phase, starts] of cases) {
    const plan = planVm(vm(), undefined, clock, volumes([dv(phase)]));
    assert.equal(plan.createVmi !== undefined, starts, String(phase));
    assert.equal(plan.createDataVolumes, undefined, String(phase));
  }
  const two = vm();
  two.spec.dataVolumeTemplates!.push({ metadata: { name: 'second' }, spec: { source: { blank: {} } } });
  const oneMissing = planVm(two, undefined, clock, volumes([dv('Succeeded')]));
  assert.equal(oneMissing.createVmi, undefined);
  assert.deepEqual(
    oneMissing.createDataVolumes?.map((d) => d.metadata.name),
    ['second'],
  );
});

test('a DataVolume not ready holds back stop and start alike, except that a Halted VM still stops', () => {
  const v = vm('Always');
  v.status = { stateChangeRequests: [{ action: 'Stop', uid: 'vmi-uid' }] };
  assert.equal(planVm(v, vmiOf(v, 'Running'), clock, volumes([dv('ImportInProgress')])).deleteVmi, undefined);
  assert.equal(planVm(v, vmiOf(v, 'Running'), clock, volumes([dv('Succeeded')])).deleteVmi, true);
  const halted = vm('Halted');
  assert.equal(planVm(halted, vmiOf(halted, 'Running'), clock, volumes([dv('ImportInProgress')])).deleteVmi, true);
});

test('events: a failed import on every sync, and a DataVolume over its quota fails the sync with the reason', () => {
  const failed = planVm(vm(), undefined, clock, volumes([dv('Failed')]));
  assert.deepEqual(failed.events, [
    { type: 'Warning', reason: 'FailedDataVolumeImport', message: 'DataVolume cirros-root failed to import disk image' },
  ]);
  const quota = dv('Pending', {}, [{ type: 'Bound', status: 'False', reason: 'ErrExceededQuota', message: 'exceeded quota: storage' }]);
  const over = planVm(vm(), undefined, clock, volumes([quota]));
  assert.deepEqual(over.events, [
    { type: 'Warning', reason: 'FailedDataVolumeImport', message: 'DataVolume cirros-root exceeds quota limits' },
  ]);
  assert.deepEqual(
    over.status.conditions?.find((c) => c.type === 'Failure'),
    {
      type: 'Failure',
      status: 'True',
      reason: 'FailedCreate',
      message:
        'Error encountered while creating DataVolumes: DataVolume cirros-root importer is not running due to an error: exceeded quota: storage',
      lastTransitionTime: NOW,
    },
  );
  const cleared = planVm({ ...vm(), status: over.status }, undefined, clock, volumes([dv('ImportInProgress')]));
  assert.equal(
    cleared.status.conditions?.find((c) => c.type === 'Failure'),
    undefined,
    'a clean sync clears the Failure',
  );
});

test('a failure met while carrying the plan out goes in as the Failure condition, before Ready', () => {
  const plan = planVm(vm(), undefined, clock, volumes());
  const failed = withSyncFailure(plan.status, { reason: 'FailedCreate', message: 'boom' }, clock.now);
  assert.deepEqual(
    failed.conditions?.map((c) => [c.type, c.reason]),
    [
      ['Failure', 'FailedCreate'],
      ['Ready', 'VMINotExists'],
    ],
  );
  const again = withSyncFailure({ ...failed }, { reason: 'FailedCreate', message: 'boom' }, new Date('2026-11-22T11:00:00Z'));
  assert.equal(again.conditions?.[0].lastTransitionTime, NOW, 'the same failure keeps its transition time');
});

test('an orphaned DataVolume of a template is adopted, with guards; one held by another controller is used as it is', () => {
  const orphan = dv('Succeeded', { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'cm-uid' }] });
  const plan = planVm(vm(), undefined, clock, volumes([orphan]));
  const ref = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    name: 'vm-cirros',
    uid: 'vm-uid',
    controller: true,
    blockOwnerDeletion: true,
  };
  assert.deepEqual(plan.adoptDataVolumes, [
    {
      name: 'cirros-root',
      patch: [
        { op: 'test', path: '/metadata/uid', value: 'dv-uid' },
        { op: 'test', path: '/metadata/ownerReferences', value: orphan.metadata.ownerReferences },
        { op: 'add', path: '/metadata/ownerReferences', value: [...orphan.metadata.ownerReferences!, ref] },
      ],
    },
  ]);
  assert.ok(plan.createVmi, 'its phase counts at once');
  const bare = planVm(vm(), undefined, clock, volumes([dv('Succeeded', { ownerReferences: undefined })]));
  assert.deepEqual(bare.adoptDataVolumes?.[0].patch, [
    { op: 'test', path: '/metadata/uid', value: 'dv-uid' },
    { op: 'add', path: '/metadata/ownerReferences', value: [ref] },
  ]);
  const foreign = dv('Succeeded', {
    ownerReferences: [{ apiVersion: 'x/v1', kind: 'Other', name: 'o', uid: 'other', controller: true }],
  });
  const used = planVm(vm(), undefined, clock, volumes([foreign]));
  assert.equal(used.adoptDataVolumes, undefined);
  assert.ok(used.createVmi);
  assert.equal(
    planVm(vm(), undefined, clock, volumes([dv('Succeeded', { ownerReferences: undefined, deletionTimestamp: NOW })])).adoptDataVolumes,
    undefined,
    'a DataVolume going away is not adopted',
  );
  const deleting = vm();
  deleting.metadata.deletionTimestamp = NOW;
  const gone = planVm(deleting, undefined, clock, volumes([dv('Succeeded', { ownerReferences: undefined })]));
  assert.deepEqual([gone.adoptDataVolumes, gone.createDataVolumes], [undefined, undefined], 'a VM being deleted adopts and makes nothing');
});

test("printableStatus with DataVolumes and claims, in upstream's order", () => {
  const v = vm();
  const st = (vmi: VirtualMachineInstance | undefined, dvs: DataVolume[] = [], pvcs: V1PersistentVolumeClaim[] = [], of = v) =>
    printableStatus(of, vmi, false, volumes(dvs, pvcs));
  const pvcMissing = vmiOf(v, 'Pending', [
    { type: 'Synchronized', status: 'False', reason: 'FailedPvcNotFound', message: 'PVC ns/data does not exist, waiting for it to appear' },
    { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'PVC ns/data does not exist, waiting for it to appear' },
  ]);
  assert.equal(st(pvcMissing, [dv('Failed')]), 'ErrorPvcNotFound', 'before DataVolumeError and ErrorUnschedulable');
  assert.equal(st(vmiOf(v, 'Running'), [dv('Failed')]), 'Running', 'after Running');
  assert.equal(st(undefined, [dv('Failed')]), 'DataVolumeError');
  assert.equal(st(undefined, [dv('ImportInProgress', {}, [{ type: 'Running', status: 'False', reason: 'Error' }])]), 'DataVolumeError');
  assert.equal(
    st(undefined, [dv('ImportScheduled', {}, [{ type: 'Running', status: 'False', reason: 'ImagePullFailed' }])]),
    'DataVolumeError',
  );
  const unschedulable = vmiOf(v, 'Pending', [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }]);
  assert.equal(st(unschedulable, [dv('Failed')]), 'DataVolumeError', 'before ErrorUnschedulable');
  assert.equal(st(unschedulable, [dv('ImportInProgress')]), 'ErrorUnschedulable', 'before Provisioning');
  for (const phase of [undefined, 'Pending', 'ImportScheduled', 'ImportInProgress', 'CloneInProgress'])
    assert.equal(st(undefined, [dv(phase)]), 'Provisioning', String(phase));
  assert.equal(st(undefined, [dv('WaitForFirstConsumer', {}, [{ type: 'Bound', status: 'True' }])]), 'Provisioning', 'a bound WFFC claim');
  const wffc = dv('WaitForFirstConsumer');
  assert.equal(st(undefined, [wffc], [pvc('cirros-root', 'Pending')]), 'WaitingForVolumeBinding', 'waiting for its consumer');
  assert.equal(st(undefined, [wffc], [pvc('cirros-root', 'Pending')], vm('Halted')), 'Stopped', 'a VM not set to start waits for nothing');
  // RerunOnFailure, stopped (its run strategy reported, no start request): upstream's "should remain Stopped after PVC is deleted and recreated".
  const stoppedRerun = { ...vm('RerunOnFailure'), status: { runStrategy: 'RerunOnFailure' } };
  assert.equal(st(undefined, [wffc], [pvc('cirros-root', 'Pending')], stoppedRerun), 'Stopped');
  assert.equal(st(undefined, [dv('Succeeded')], [pvc('cirros-root', 'Bound'), pvc('data', 'Pending')]), 'WaitingForVolumeBinding');
  assert.equal(st(undefined, [dv('Succeeded')], [pvc('cirros-root', 'Bound')]), 'Stopped', 'a missing claim is skipped');
  assert.equal(st(undefined, [dv('PendingPopulation')], [pvc('cirros-root', 'Bound'), pvc('data', 'Bound')]), 'Stopped');
  const pulling = vmiOf(v, 'Scheduling', [{ type: 'Synchronized', status: 'False', reason: 'ErrImagePull' }]);
  assert.equal(st(pulling, [dv('ImportInProgress')]), 'Provisioning', 'before ErrImagePull');
  assert.equal(st(vmiOf(v, 'Scheduling'), [dv('Succeeded')], [pvc('cirros-root', 'Bound'), pvc('data', 'Bound')]), 'Starting');
  assert.equal(
    printableStatus(vm('Always'), undefined, false, volumes([dv('ImportInProgress')])),
    'Provisioning',
    'a DataVolume being imported shows whatever the run strategy',
  );
  assert.equal(printableStatus(vm('Halted'), undefined, false, volumes([dv('ImportInProgress')])), 'Provisioning');
  // What planVm writes: the lookups come from the VM's own templates and volumes.
  assert.equal(planVm(v, undefined, clock, volumes([dv('ImportInProgress')])).status.printableStatus, 'Provisioning');
});

test("the VMI's conditions become the VM's, but for Ready, Failure and RestartRequired; without a VMI the last ones stay", () => {
  const v = vm();
  const vmi = vmiOf(v, 'Pending', [
    { type: 'Provisioning', status: 'True' },
    { type: 'DataVolumesReady', status: 'False', reason: 'NotAllDVsReady', message: "Not all of the VMI's DVs are ready" },
    { type: 'Ready', status: 'False', reason: 'PodNotExists', message: 'virt-launcher pod has not yet been scheduled' },
    { type: 'Failure', status: 'True', reason: 'x' },
  ]);
  v.status = { conditions: [{ type: 'Paused', status: 'True' }] };
  const plan = planVm(v, vmi, clock, volumes([dv('WaitForFirstConsumer')]));
  assert.deepEqual(
    plan.status.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ['Provisioning', 'True', undefined],
      ['DataVolumesReady', 'False', 'NotAllDVsReady'],
      ['Ready', 'False', 'PodNotExists'],
    ],
  );
  const after = planVm({ ...v, status: plan.status }, undefined, clock, volumes([dv('WaitForFirstConsumer')]));
  assert.deepEqual(
    after.status.conditions?.map((c) => c.type),
    ['Provisioning', 'DataVolumesReady', 'Ready'],
  );
});

test('the lookups: every DataVolume of the templates and every claim the volumes name, in the VM’s namespace', () => {
  const asked: string[] = [];
  const looked = lookUpVmVolumes(
    vm(),
    (name) => {
      asked.push(`pvc:${name}`);
      return name === 'data' ? pvc('data', 'Bound') : undefined;
    },
    (name) => {
      asked.push(`dv:${name}`);
      return name === 'cirros-root' ? dv('Succeeded') : undefined;
    },
  );
  assert.deepEqual(asked.sort(), ['dv:cirros-root', 'dv:data', 'pvc:cirros-root', 'pvc:data']);
  assert.deepEqual([...looked.dataVolumes.keys()], ['cirros-root']);
  assert.deepEqual([...looked.pvcs.keys()], ['data']);
});
