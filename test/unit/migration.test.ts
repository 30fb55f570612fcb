// Live migration's pure parts: which VMIs can move (upstream's reasons), the
// migration controller's phases, virt-handler as source and as target, and
// when the source launcher gives up or switches to post-copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { MIGRATION_FINALIZER, MIGRATION_JOB_LABEL, MIGRATION_TARGET_NODE_LABEL } from '../../src/api/constants.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceMigration } from '../../src/api/types.ts';
import { isPendingMigrationTarget, matchingPolicy, migratability, type MigrationOptions } from '../../src/contract/migration.ts';
import { planMigration, type MigrationInput } from '../../src/controller/migration.ts';
import { planVmi } from '../../src/controller/vmi.ts';
import { planMigrationTarget, type TargetSituation } from '../../src/handler/migration-target.ts';
import { migrationOptions, newLauncherRecord, planLauncher, type LauncherSituation } from '../../src/handler/plan.ts';
import { migrationRefusal } from '../../src/virt-api/migration-admission.ts';
import { nextMigrationStep, observeMigration, type MigrationWatch } from '../../src/launcher/migration.ts';

const NOW = new Date('2026-12-04T12:00:00Z');

function runningVmi(change: (vmi: VirtualMachineInstance) => void = () => undefined): VirtualMachineInstance {
  const vmi = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-1', resourceVersion: '7', labels: { 'kubevirt.io/nodeName': 'node01' } },
    spec: {
      domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'disk0', containerDisk: { image: 'registry:5000/kubevirt/alpine-container-disk-demo:devel' } }],
    },
    status: {
      phase: 'Running',
      nodeName: 'node01',
      conditions: [{ type: 'LiveMigratable', status: 'True' }],
    },
  } as VirtualMachineInstance;
  change(vmi);
  return vmi;
}

function launcherPod(name: string, node: string | undefined, uid: string, change: (pod: V1Pod) => void = () => undefined): V1Pod {
  const pod: V1Pod = {
    metadata: {
      name,
      namespace: 'ns',
      uid,
      creationTimestamp: new Date(NOW.getTime() - 10_000),
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1', uid: 'vmi-1', controller: true }],
    },
    spec: { nodeName: node, containers: [] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'compute', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
  change(pod);
  return pod;
}

const migrationObject = (phase?: string, change: (m: VirtualMachineInstanceMigration) => void = () => undefined) => {
  const m = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name: 'mig1', namespace: 'ns', uid: 'mig-1', finalizers: [MIGRATION_FINALIZER] },
    spec: { vmiName: 'vm1' },
    ...(phase ? { status: { phase } } : {}),
  } as VirtualMachineInstanceMigration;
  change(m);
  return m;
};

const node = (name: string): V1Node => ({
  metadata: { name, labels: { 'kubevirt.io/schedulable': 'true' }, annotations: { 'kubevirt.io/heartbeat': '2026-12-05T00:00:00Z' } },
});

function input(fields: Partial<MigrationInput>): MigrationInput {
  const config = new ClusterConfig();
  return {
    migration: migrationObject(),
    vmi: runningVmi(),
    pods: [launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src')],
    migrations: [],
    sourceNodeOf: () => undefined,
    nodes: [node('node01'), node('node02')],
    settings: config.migrations,
    policies: [],
    params: { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent', config },
    targetPodName: 'virt-launcher-vm1-bbbbb',
    now: NOW,
    ...fields,
  };
}

test('migratability: RWO claims, host disks and bridged pod networks cannot move, with upstream reasons; masquerade on containerDisks can', () => {
  assert.deepEqual(migratability(runningVmi()), { migratable: true });
  const rwo = runningVmi((v) => {
    v.spec.volumes!.push({ name: 'data', persistentVolumeClaim: { claimName: 'data' } });
    v.status!.volumeStatus = [{ name: 'data', target: '', persistentVolumeClaimInfo: { accessModes: ['ReadWriteOnce'] } }];
  });
  assert.equal(migratability(rwo).reason, 'DisksNotLiveMigratable');
  assert.match(migratability(rwo).message!, /PVC data is not shared/);
  const rwx = structuredClone(rwo);
  rwx.status!.volumeStatus![0].persistentVolumeClaimInfo!.accessModes = ['ReadWriteMany'];
  assert.equal(migratability(rwx).migratable, true);
  const bridged = runningVmi((v) => {
    v.spec.domain.devices.interfaces = [{ name: 'default', bridge: {} }];
  });
  assert.equal(migratability(bridged).reason, 'InterfaceNotLiveMigratable');
  bridged.metadata.annotations = { 'kubevirt.io/allow-pod-bridge-network-live-migration': 'true' };
  assert.equal(migratability(bridged).migratable, true);
});

test('controller: Pending writes the migration state on the VMI, then makes the target pod, with anti-affinity when another node exists', () => {
  const plan = planMigration(input({}));
  const { migrationConfiguration, ...state } = plan.vmi!.status!.migrationState!;
  assert.deepEqual(state, {
    migrationUid: 'mig-1',
    sourceNode: 'node01',
    sourcePod: 'virt-launcher-vm1-aaaaa',
    targetPod: 'virt-launcher-vm1-bbbbb',
  });
  assert.equal(migrationConfiguration?.completionTimeoutPerGiB, 150);
  assert.equal(plan.vmi?.status?.migrationMethod, 'BlockMigration');
  assert.equal(plan.createPod?.metadata?.name, 'virt-launcher-vm1-bbbbb');
  assert.equal(plan.createPod?.metadata?.labels?.[MIGRATION_JOB_LABEL], 'mig-1');
  const anti = plan.createPod?.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  assert.deepEqual(anti?.[0].labelSelector?.matchLabels, { 'kubevirt.io/created-by': 'vmi-1' });
  assert.equal(plan.status?.phase, 'Scheduling');
  assert.deepEqual(
    plan.status?.phaseTransitionTimestamps?.map((t) => t.phase),
    ['Pending', 'Scheduling'],
  );
  // A second migration on the node, just after a first: the pod the first left is still running down,
  // and the guest's pod is the one the first moved it to.
  const again = planMigration(
    input({
      vmi: runningVmi((v) => {
        v.status!.migrationState = { sourcePod: 'virt-launcher-vm1-aaaaa', targetPod: 'virt-launcher-vm1-ccccc', completed: true };
      }),
      pods: [launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src'), launcherPod('virt-launcher-vm1-ccccc', 'node01', 'pod-cur')],
    }),
  );
  assert.equal(again.vmi?.status?.migrationState?.sourcePod, 'virt-launcher-vm1-ccccc');
  // One node only: the guest moves to a new pod on the same node.
  const single = planMigration(input({ nodes: [node('node01')] }));
  assert.equal(single.createPod?.spec?.affinity, undefined);
  // A simulated node (the schedulable label, no virt-handler heartbeat) is not a second node to move to.
  const simulated: V1Node = { metadata: { name: 'kwok-node-0', labels: { 'kubevirt.io/schedulable': 'true' } } };
  assert.equal(planMigration(input({ nodes: [node('node01'), simulated] })).createPod?.spec?.affinity, undefined);
  // Not running yet, or not yet known to be migratable (as a cache that trails the migrations' shows it): it waits, as upstream.
  for (const early of [runningVmi((v) => (v.status!.phase = 'Scheduled')), runningVmi((v) => (v.status!.conditions = []))]) {
    const waiting = planMigration(input({ vmi: early }));
    assert.equal(waiting.status?.phase, 'Pending');
    assert.equal(waiting.createPod, undefined);
    assert.equal(waiting.vmi, undefined);
    assert.ok(!waiting.removeFinalizer);
  }
  // One that says it cannot move: Failed at once, with the reason.
  const stuck = planMigration(
    input({ vmi: runningVmi((v) => (v.status!.conditions = [{ type: 'LiveMigratable', status: 'False', message: 'no way' }])) }),
  );
  assert.equal(stuck.status?.phase, 'Failed');
  assert.deepEqual(
    stuck.status?.phaseTransitionTimestamps?.map((t) => t.phase),
    ['Pending', 'Failed'],
  );
  assert.equal(stuck.createPod, undefined);
  assert.ok(stuck.removeFinalizer);
});

test('controller: parallel limits keep a migration Pending; one per VMI at a time', () => {
  const busy = (i: number, vmiName = `other${i}`) =>
    migrationObject('Running', (m) => {
      m.metadata.uid = `m${i}`;
      m.metadata.name = `m${i}`;
      m.spec.vmiName = vmiName;
    });
  const perNode = planMigration(input({ migrations: [busy(1), busy(2)], sourceNodeOf: () => 'node01' }));
  assert.equal(perNode.status?.phase, 'Pending');
  assert.equal(perNode.createPod, undefined);
  const elsewhere = planMigration(input({ migrations: [busy(1), busy(2)], sourceNodeOf: () => 'node02' }));
  assert.equal(elsewhere.status?.phase, 'Scheduling');
  const cluster = planMigration(input({ migrations: [1, 2, 3, 4, 5].map((i) => busy(i)), sourceNodeOf: () => 'node09' }));
  assert.equal(cluster.status?.phase, 'Pending');
  const sameVmi = planMigration(input({ migrations: [busy(1, 'vm1')] }));
  assert.equal(sameVmi.status?.phase, 'Pending');
});

test('controller: phases follow what the handlers write; success and failure end it, a failure removes the target pod', () => {
  const state = { migrationUid: 'mig-1', sourceNode: 'node01', sourcePod: 'virt-launcher-vm1-aaaaa', targetPod: 'virt-launcher-vm1-bbbbb' };
  const target = (change?: (p: V1Pod) => void) => launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt', change);
  const pods = [launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src'), target()];
  const withState = (extra: object) => runningVmi((v) => (v.status!.migrationState = { ...state, ...extra }));

  const scheduled = planMigration(input({ migration: migrationObject('Scheduling'), vmi: withState({}), pods }));
  assert.equal(scheduled.status?.phase, 'PreparingTarget');
  assert.deepEqual(
    scheduled.status?.phaseTransitionTimestamps?.map((t) => t.phase),
    ['Scheduled', 'PreparingTarget'],
  );
  assert.equal(scheduled.vmi?.status?.migrationState?.targetNode, 'node02');
  assert.equal(scheduled.vmi?.metadata.labels?.[MIGRATION_TARGET_NODE_LABEL], 'node02');

  const ready = planMigration(
    input({
      migration: migrationObject('PreparingTarget'),
      vmi: withState({ targetNode: 'node02', targetNodeAddress: '10.244.1.5' }),
      pods,
    }),
  );
  assert.equal(ready.status?.phase, 'TargetReady');
  const running = planMigration(
    input({ migration: migrationObject('TargetReady'), vmi: withState({ targetNodeAddress: '10.244.1.5', startTimestamp: 'T' }), pods }),
  );
  assert.equal(running.status?.phase, 'Running');
  const done = runningVmi((v) => {
    v.status!.nodeName = 'node02';
    v.status!.migrationState = { ...state, targetNode: 'node02', completed: true, targetNodeDomainDetected: true };
  });
  const succeeded = planMigration(input({ migration: migrationObject('Running'), vmi: done, pods }));
  assert.equal(succeeded.status?.phase, 'Succeeded');
  assert.ok(succeeded.removeFinalizer);
  assert.equal(succeeded.deletePods, undefined);

  const failed = planMigration(
    input({ migration: migrationObject('Running'), vmi: withState({ completed: true, failed: true, failureReason: 'boom' }), pods }),
  );
  assert.equal(failed.status?.phase, 'Failed');
  assert.deepEqual(
    failed.deletePods?.map((p) => p.metadata?.name),
    ['virt-launcher-vm1-bbbbb'],
  );
  const crashed = planMigration(
    input({
      migration: migrationObject('PreparingTarget'),
      vmi: withState({}),
      pods: [pods[0], target((p) => (p.status!.phase = 'Failed'))],
    }),
  );
  assert.equal(crashed.status?.phase, 'Failed');
  assert.equal(crashed.vmi?.status?.migrationState?.failed, true);
});

test('controller: deleting a running migration asks the source to abort; one not started yet just fails', () => {
  const deleting = (phase: string) => migrationObject(phase, (m) => (m.metadata.deletionTimestamp = NOW.toISOString()));
  const state = {
    migrationUid: 'mig-1',
    sourceNode: 'node01',
    targetPod: 'virt-launcher-vm1-bbbbb',
    targetNodeAddress: 'a',
    startTimestamp: 'T',
  };
  const pods = [launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src'), launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt')];
  const abort = planMigration(input({ migration: deleting('Running'), vmi: runningVmi((v) => (v.status!.migrationState = state)), pods }));
  assert.equal(abort.vmi?.status?.migrationState?.abortRequested, true);
  assert.equal(abort.status?.phase, 'Running');
  assert.equal(abort.removeFinalizer, false);
  const early = planMigration(
    input({
      migration: deleting('Scheduling'),
      vmi: runningVmi((v) => (v.status!.migrationState = { ...state, startTimestamp: undefined })),
      pods,
    }),
  );
  assert.equal(early.status?.phase, 'Failed');
  assert.equal(early.vmi?.status?.migrationState?.abortStatus, 'Succeeded');
  assert.ok(early.removeFinalizer);
});

test('the target pod is not the VMI pod until the migration succeeded', () => {
  const target = launcherPod('virt-launcher-vm1-bbbbb', 'node01', 'pod-tgt');
  const vmi = runningVmi((v) => (v.status!.migrationState = { migrationUid: 'm', targetPod: 'virt-launcher-vm1-bbbbb' }));
  assert.equal(isPendingMigrationTarget(vmi, target), true);
  vmi.status!.migrationState!.completed = true;
  assert.equal(isPendingMigrationTarget(vmi, target), false);
  vmi.status!.migrationState!.failed = true;
  assert.equal(isPendingMigrationTarget(vmi, target), true);
});

const settings = new ClusterConfig().migrations;
function sourceSituation(fields: Partial<LauncherSituation>): LauncherSituation {
  return {
    node: 'node01',
    vmi: runningVmi(),
    early: false,
    stale: false,
    pod: launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src'),
    record: { ...newLauncherRecord('pod-src'), connected: true, synced: true, domain: { state: 'Running', reason: 'Booted' } },
    emulation: false,
    migrations: settings,
    now: NOW.getTime(),
    ...fields,
  };
}

test('source: migrates once the target has said where; cancels on abort; writes start and outcome; never ends the VMI for the guest leaving', () => {
  const state = { migrationUid: 'mig-1', sourceNode: 'node01', sourcePod: 'virt-launcher-vm1-aaaaa', targetNode: 'node02' };
  const waiting = planLauncher(sourceSituation({ vmi: runningVmi((v) => (v.status!.migrationState = state)) }));
  assert.ok(!waiting.some((a) => a.type === 'migrate'));
  const ready = runningVmi((v) => {
    v.status!.migrationState = { ...state, targetNodeAddress: '10.244.1.5', targetDirectMigrationNodePorts: { '40000': 0 } };
  });
  const go = planLauncher(sourceSituation({ vmi: ready })).find((a) => a.type === 'migrate');
  assert.ok(go && go.type === 'migrate');
  assert.equal(go.options.id, 'mig-1');
  assert.equal(go.options.block, true);
  assert.equal(go.options.completionTimeoutPerGiB, 150);

  const migration = { id: 'mig-1', startedAt: '2026-12-04T11:59:00Z', cancelSent: false };
  const started = planLauncher(sourceSituation({ vmi: ready, record: { ...sourceSituation({}).record!, migration } }));
  const write = started.find((a) => a.type === 'writeStatus');
  assert.ok(write && write.type === 'writeStatus');
  assert.equal(write.vmi.status?.migrationState?.startTimestamp, '2026-12-04T11:59:00Z');
  const aborting = runningVmi((v) => (v.status!.migrationState = { ...ready.status!.migrationState!, abortRequested: true }));
  const cancel = planLauncher(sourceSituation({ vmi: aborting, record: { ...sourceSituation({}).record!, migration } }));
  assert.ok(cancel.some((a) => a.type === 'cancelMigration'));

  const left = planLauncher(
    sourceSituation({
      vmi: ready,
      record: {
        ...sourceSituation({}).record!,
        domain: { state: 'Shutoff', reason: 'Migrated' },
        migration: { ...migration, outcome: { completed: true, mode: 'PreCopy', downtimeMs: 40 } },
      },
    }),
  );
  const outcome = left.find((a) => a.type === 'writeStatus');
  assert.ok(outcome && outcome.type === 'writeStatus');
  assert.equal(outcome.vmi.status?.phase, 'Running');
  assert.equal(outcome.vmi.status?.migrationState?.completed, true);
  assert.equal(outcome.vmi.status?.migrationState?.failed, undefined);
});

test('target: track, connect, prepare, listen, then say where; take the VMI over once the source says the guest arrived', () => {
  const state = { migrationUid: 'mig-1', sourceNode: 'node01', targetNode: 'node02', targetPod: 'virt-launcher-vm1-bbbbb' };
  const pod = launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt');
  const situation = (record?: TargetSituation['record'], extra: object = {}): TargetSituation => ({
    node: 'node02',
    address: '10.244.1.5',
    vmi: runningVmi((v) => (v.status!.migrationState = { ...state, ...extra })),
    pod,
    record,
    now: NOW.getTime(),
  });
  const types = (s: TargetSituation) => planMigrationTarget(s).map((a) => a.type);
  assert.deepEqual(types(situation()), ['trackTarget']);
  const base = { podUid: 'pod-tgt', connected: false, prepared: false };
  assert.deepEqual(types(situation(base)), ['connectTarget']);
  assert.deepEqual(types(situation({ ...base, connected: true })), ['prepareTarget']);
  assert.deepEqual(types(situation({ ...base, connected: true, prepared: true })), ['listen']);
  const say = planMigrationTarget(situation({ ...base, connected: true, prepared: true, port: 40000 }));
  assert.equal(say[0].type, 'writeStatus');
  assert.deepEqual(say[0].type === 'writeStatus' && say[0].vmi.status?.migrationState?.targetDirectMigrationNodePorts, { '40000': 0 });
  const arrived = planMigrationTarget(
    situation(
      { ...base, connected: true, prepared: true, port: 40000, domain: { state: 'Running', reason: 'Migrated' } },
      { completed: true },
    ),
  );
  assert.equal(arrived[0].type, 'takeOver');
  const taken = arrived[0].type === 'takeOver' ? arrived[0].vmi : undefined;
  assert.equal(taken?.status?.nodeName, 'node02');
  assert.equal(taken?.metadata.labels?.['kubevirt.io/nodeName'], 'node02');
  assert.equal(taken?.status?.migrationState?.targetNodeDomainDetected, true);
  // Once written, the VMI is this node's: nothing more to do as target, however often it is looked at.
  const after = situation({ ...base, connected: true, prepared: true, port: 40000, domain: { state: 'Running', reason: 'Migrated' } });
  after.vmi = taken;
  assert.deepEqual(types(after), ['releaseTarget']);
  assert.deepEqual(types({ ...after, record: undefined }), []);
  // A failed migration, or one for another node, releases what the target held.
  assert.deepEqual(types(situation({ ...base, connected: true }, { failed: true })), ['releaseTarget']);
});

test('source launcher: a migration with no progress is cancelled, a long one switches to post-copy when allowed', () => {
  const options: MigrationOptions = {
    id: 'm',
    uri: 'unix:/x',
    block: false,
    bandwidthBytesPerSecond: 0,
    completionTimeoutPerGiB: 10,
    progressTimeoutSeconds: 5,
    allowPostCopy: false,
    allowAutoConverge: false,
  };
  const start = 1_000_000;
  let watch: MigrationWatch = {
    startedAt: start,
    leastRemaining: Number.POSITIVE_INFINITY,
    progressAt: start,
    postCopy: false,
    totalBytes: 0,
  };
  watch = observeMigration(watch, { status: 'active', ram: { remaining: 100, total: 2 ** 29 } }, start + 1000);
  assert.deepEqual(nextMigrationStep(watch, options, start + 3000), { kind: 'wait' });
  // Remaining data does not shrink: stuck after progressTimeout.
  watch = observeMigration(watch, { status: 'active', ram: { remaining: 100 } }, start + 5000);
  assert.equal(nextMigrationStep(watch, options, start + 7000).kind, 'cancel');
  watch = observeMigration(watch, { status: 'active', ram: { remaining: 50 } }, start + 9000);
  // 0.5 GiB rounds up to 1 GiB: 10 s in all.
  assert.deepEqual(nextMigrationStep(watch, options, start + 11_000), {
    kind: 'cancel',
    reason: 'Live migration is not completed after 10 sec and has been aborted',
  });
  assert.deepEqual(nextMigrationStep(watch, { ...options, allowPostCopy: true }, start + 11_000), { kind: 'postCopy' });
});

test('admission: a migration needs its VMI there, not ended, not saying it cannot move, and not migrating already', () => {
  assert.equal(migrationRefusal('ns', 'vm1', undefined), 'the VMI "ns/vm1" does not exist');
  assert.equal(
    migrationRefusal(
      'ns',
      'vm1',
      runningVmi((v) => (v.status!.phase = 'Succeeded')),
    ),
    'Cannot migrate VMI in finalized state.',
  );
  // Not running yet: admitted, as upstream's webhook admits it (the migration fails later).
  assert.equal(
    migrationRefusal(
      'ns',
      'vm1',
      runningVmi((v) => {
        v.status!.phase = 'Scheduling';
        v.status!.conditions = [];
      }),
    ),
    undefined,
  );
  assert.equal(
    migrationRefusal(
      'ns',
      'vm1',
      runningVmi((v) => (v.status!.migrationState = { migrationUid: 'm0' })),
    ),
    'in-flight migration detected. Active migration job (m0) is currently already in progress for VMI vm1.',
  );
  assert.equal(
    migrationRefusal(
      'ns',
      'vm1',
      runningVmi((v) => (v.status!.migrationState = { migrationUid: 'm0', completed: true })),
    ),
    undefined,
  );
  assert.match(
    migrationRefusal(
      'ns',
      'vm1',
      runningVmi((v) => (v.status!.conditions = [{ type: 'LiveMigratable', status: 'False', reason: 'X', message: 'y' }])),
    )!,
    /Cannot migrate VMI, Reason: X, Message: y/,
  );
});

test('MigrationPolicy: the matching policy with the most labels sets the migration configuration; the handler migrates by it', () => {
  const policy = (name: string, vmiSelector: Record<string, string>, spec: object) => ({
    apiVersion: 'migrations.kubevirt.io/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name },
    spec: { selectors: { virtualMachineInstanceSelector: vmiSelector }, ...spec },
  });
  const vmi = runningVmi((v) => (v.metadata.labels = { ...v.metadata.labels, tier: 'gold', app: 'db' }));
  const policies = [
    policy('broad', { tier: 'gold' }, { bandwidthPerMigration: '64Mi' }),
    policy('narrow', { tier: 'gold', app: 'db' }, { allowPostCopy: true, completionTimeoutPerGiB: 30 }),
    policy('other', { tier: 'silver' }, { allowAutoConverge: true }),
  ];
  assert.equal(matchingPolicy(policies, vmi, {})?.metadata.name, 'narrow');
  assert.equal(matchingPolicy(policies, runningVmi(), {}), undefined);
  const plan = planMigration(input({ vmi, policies }));
  const state = plan.vmi!.status!.migrationState!;
  assert.equal(state.migrationPolicyName, 'narrow');
  assert.equal(state.migrationConfiguration?.allowPostCopy, true);
  assert.equal(state.migrationConfiguration?.completionTimeoutPerGiB, 30);
  const options = migrationOptions(state, settings, true);
  assert.deepEqual(
    [options.allowPostCopy, options.completionTimeoutPerGiB, options.bandwidthBytesPerSecond, options.progressTimeoutSeconds],
    [true, 30, 0, 150],
  );
  const broad = planMigration(input({ vmi: runningVmi((v) => (v.metadata.labels = { tier: 'gold' })), policies }));
  assert.equal(migrationOptions(broad.vmi!.status!.migrationState!, settings, true).bandwidthBytesPerSecond, 64 * 1024 * 1024);
});

test('VMI controller: the target pod is not the VMI pod mid-migration; the source pod is deleted once the guest has left it', () => {
  const config = new ClusterConfig();
  const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent', config };
  const source = launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src');
  const target = launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt', (p) => {
    p.status!.phase = 'Pending';
    p.status!.conditions = [];
  });
  const state = { migrationUid: 'm', sourceNode: 'node01', sourcePod: 'virt-launcher-vm1-aaaaa', targetPod: 'virt-launcher-vm1-bbbbb' };
  const migrating = runningVmi((v) => {
    v.status!.migrationState = state;
    v.status!.conditions = [{ type: 'Ready', status: 'True' }];
  });
  const during = planVmi(migrating, [target, source], params, NOW.toISOString());
  // The Ready condition still follows the source pod, which runs the guest.
  const ready = (during.update ?? migrating).status?.conditions?.find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'True');
  assert.equal(during.deletePods, undefined);
  const moved = runningVmi((v) => {
    v.status!.nodeName = 'node02';
    v.status!.migrationState = { ...state, completed: true, targetNodeDomainDetected: true };
  });
  const after = planVmi(moved, [source, launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt')], params, NOW.toISOString());
  assert.deepEqual(
    after.deletePods?.map((p) => p.metadata?.name),
    ['virt-launcher-vm1-aaaaa'],
  );
  // While the pod the guest left runs down (listed first, no longer ready), the VMI follows the pod it runs in now.
  const runningDown = launcherPod('virt-launcher-vm1-aaaaa', 'node01', 'pod-src', (p) => {
    p.metadata!.deletionTimestamp = NOW;
    p.status!.conditions = [{ type: 'Ready', status: 'False' }];
  });
  const movedReady = runningVmi((v) => {
    v.status!.nodeName = 'node02';
    v.status!.migrationState = { ...state, completed: true, targetNodeDomainDetected: true };
    v.status!.conditions = [{ type: 'Ready', status: 'True' }];
  });
  const settled = planVmi(
    movedReady,
    [runningDown, launcherPod('virt-launcher-vm1-bbbbb', 'node02', 'pod-tgt')],
    params,
    NOW.toISOString(),
  );
  assert.equal((settled.update ?? movedReady).status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
});

test('controller: a finished migration leaves alone the target label of the VMI next migration', () => {
  const next = runningVmi((v) => {
    v.metadata.labels = { ...v.metadata.labels, [MIGRATION_TARGET_NODE_LABEL]: 'node02' };
    v.status!.migrationState = { migrationUid: 'mig-2', sourceNode: 'node01', targetNode: 'node02', targetPod: 'virt-launcher-vm1-ccccc' };
  });
  for (const phase of ['Succeeded', 'Failed']) {
    const plan = planMigration(input({ migration: migrationObject(phase), vmi: next }));
    assert.equal(plan.vmi, undefined, `a ${phase} migration wrote the VMI`);
  }
});
