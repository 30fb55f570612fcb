// virt-handler's plan, table-driven: for each situation a VMI and its launcher
// can be in on the node, the actions the handler takes.
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import type { DomainStatus } from '../../src/contract/launcher-protocol.ts';
import {
  GUEST_INFO_INTERVAL_MS,
  LAUNCHER_INIT_TIMEOUT_MS,
  newLauncherRecord,
  planLauncher,
  type LauncherAction,
  type LauncherRecord,
  type LauncherSituation,
} from '../../src/handler/plan.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const NODE = 'node01';

function vmiIn(phase: string, change: (vmi: VirtualMachineInstance) => void = () => undefined): VirtualMachineInstance {
  const vmi: VirtualMachineInstance = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-1', resourceVersion: '7' },
    spec: { domain: { devices: {} } },
    status: { phase, nodeName: NODE, conditions: [] },
  } as VirtualMachineInstance;
  change(vmi);
  return vmi;
}

function launcherPod(change: (pod: V1Pod) => void = () => undefined): V1Pod {
  const pod: V1Pod = {
    metadata: {
      name: 'virt-launcher-vm1-abcde',
      namespace: 'ns',
      uid: 'pod-1',
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1', uid: 'vmi-1', controller: true }],
    },
    spec: { nodeName: NODE, containers: [] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'compute', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
  change(pod);
  return pod;
}

const domain = (state: DomainStatus['state'], reason: DomainStatus['reason']): DomainStatus => ({ state, reason });
const record = (fields: Partial<LauncherRecord> = {}): LauncherRecord => ({ ...newLauncherRecord('pod-1'), connected: true, ...fields });
const exited = (code: number) => (pod: V1Pod) => {
  pod.status!.containerStatuses![0].state = { terminated: { exitCode: code } };
};

function situation(fields: Partial<LauncherSituation>): LauncherSituation {
  return {
    node: NODE,
    vmi: vmiIn('Scheduled'),
    early: false,
    stale: false,
    pod: launcherPod(),
    emulation: true,
    migrations: new ClusterConfig().migrations,
    now: NOW,
    ...fields,
  };
}

const types = (actions: LauncherAction[]) => actions.map((a) => a.type);
const writeOf = (actions: LauncherAction[]) =>
  actions.find((a): a is Extract<LauncherAction, { type: 'writeStatus' }> => a.type === 'writeStatus');

/** A VMI whose status already says what the launcher reports, as after the handler's own write. */
function steady(s: LauncherSituation): VirtualMachineInstance {
  const write = writeOf(planLauncher(s));
  assert.ok(write, 'the first plan writes the status');
  return { ...write.vmi, metadata: { ...write.vmi.metadata, resourceVersion: '8' } };
}

const running = record({ domain: domain('Running', 'Booted'), guestAskedAt: NOW - 1000, cpuIdle: true });

const table: [string, Partial<LauncherSituation>, string[]][] = [
  ['no VMI and nothing known of it: nothing to do', { vmi: undefined, pod: undefined }, []],
  ['the VMI is gone: its launcher is released', { vmi: undefined, record: record() }, ['release']],
  [
    'the VMI moved to another node: released here',
    { vmi: vmiIn('Running', (v) => (v.status!.nodeName = 'node02')), record: record() },
    ['release'],
  ],
  ['the VMI Succeeded: released', { vmi: vmiIn('Succeeded'), record: running }, ['release']],
  ['the VMI Failed and nothing known of it: nothing to do', { vmi: vmiIn('Failed') }, []],
  ['the cache holds a VMI the handler already wrote over: wait for the newer one', { stale: true, record: running }, []],
  ['the launcher pod is gone: virt-controller fails the VMI', { pod: undefined, record: running }, []],
  ['a Scheduled VMI with a Ready pod, first seen: track and connect', {}, ['track', 'connect']],
  [
    'a second VMI under the same name (a new pod): the old launcher is released first',
    { record: record({ podUid: 'pod-0' }) },
    ['release', 'track', 'connect'],
  ],
  ['connected, domain not defined: sync', { record: record({ domain: domain('NoState', 'Unknown') }) }, ['sync']],
  ['synced, the domain not reported yet: no second sync', { record: record({ domain: domain('NoState', 'Unknown'), synced: true }) }, []],
  ['connected, no domain reported yet: sync', { record: record() }, ['sync']],
  [
    'early (pod Ready before Scheduled arrived): sync',
    { vmi: vmiIn('Scheduling', (v) => delete v.status!.nodeName), early: true, record: record() },
    ['sync'],
  ],
  [
    'early with the guest running: no status write before Scheduled',
    { vmi: vmiIn('Scheduling', (v) => delete v.status!.nodeName), early: true, record: running },
    [],
  ],
  [
    'the last sync failed a moment ago: no sync yet, the failure in the status',
    { record: record({ syncError: 'boom', retrySyncAt: NOW + 1000 }) },
    ['writeStatus'],
  ],
  ['the last sync failed and its wait is over: sync again', { record: record({ syncError: 'boom', retrySyncAt: NOW - 1 }) }, ['sync']],
  [
    'the guest is running on an emulating node: lower its CPU class, ask the agent, report Running',
    { record: record({ domain: domain('Running', 'Booted') }) },
    ['lowerCpuPriority', 'askGuestInfo', 'writeStatus'],
  ],
  [
    'a KVM guest on an emulating node keeps its CPU class',
    { record: record({ domain: domain('Running', 'Booted'), emulated: false, guestAskedAt: NOW }) },
    ['writeStatus'],
  ],
  [
    'before the KVM probe, the CPU class is left as it is',
    { emulation: undefined, record: record({ domain: domain('Running', 'Booted'), guestAskedAt: NOW }) },
    ['writeStatus'],
  ],
  [
    'the agent question is still open: not asked again',
    { record: record({ domain: domain('Running', 'Booted'), cpuIdle: true, guestPending: true }) },
    ['writeStatus'],
  ],
  [
    'QEMU crashed: images released, the VMI Failed',
    { record: record({ domain: domain('Crashed', 'Failed'), cpuIdle: true }) },
    ['releaseImages', 'writeStatus'],
  ],
  [
    'the guest powered off: images released, the VMI Succeeded',
    { vmi: vmiIn('Running'), record: record({ domain: domain('Shutoff', 'Shutdown'), cpuIdle: true }) },
    ['releaseImages', 'writeStatus'],
  ],
  [
    'images already released after QEMU exited: not again',
    { vmi: vmiIn('Running'), record: record({ domain: domain('Shutoff', 'Shutdown'), imagesReleased: true }) },
    ['writeStatus'],
  ],
  [
    'the launcher container ended with 1 and its socket went with it: no connect, the VMI Failed',
    { pod: launcherPod(exited(1)), record: record({ connected: false }) },
    ['releaseImages', 'writeStatus'],
  ],
  [
    'the launcher container ended with 0: the VMI Succeeded',
    { vmi: vmiIn('Running'), pod: launcherPod(exited(0)), record: record({ connected: false }) },
    ['releaseImages', 'writeStatus'],
  ],
  [
    'the VMI deleted while its guest starts: no sync, nothing to shut down',
    {
      vmi: vmiIn('Scheduled', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')),
      record: record({ domain: domain('NoState', 'Unknown') }),
    },
    [],
  ],
  [
    'the VMI deleted and its launcher not connected: connect, quietly',
    { vmi: vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')) },
    ['track', 'connect'],
  ],
  [
    'the VMI deleted while running: graceful shutdown',
    { vmi: vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')), record: running },
    ['shutdown', 'writeStatus'],
  ],
  [
    'the shutdown was already sent: not again',
    { vmi: vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')), record: { ...running, shutdownSent: true } },
    ['writeStatus'],
  ],
  [
    'the launcher pod terminating under a running guest: graceful shutdown',
    { vmi: vmiIn('Running'), pod: launcherPod((p) => (p.metadata!.deletionTimestamp = new Date(NOW))), record: running },
    ['shutdown', 'writeStatus'],
  ],
  [
    'a paused guest being deleted is shut down too',
    {
      vmi: vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')),
      record: { ...running, domain: domain('Paused', 'User') },
    },
    ['shutdown', 'writeStatus'],
  ],
  ['virt-handler restarted under a running guest: track and connect, no sync', { vmi: vmiIn('Running') }, ['track', 'connect']],
  ['the launcher closed its connection: connect again', { vmi: vmiIn('Running'), record: { ...running, connected: false } }, ['connect']],
];

for (const [name, fields, expected] of table) {
  test(`plan: ${name}`, () => assert.deepEqual(types(planLauncher(situation(fields))), expected));
}

test('plan: the agent is asked again once its interval is over, more often while it has not answered', () => {
  const answered = { ...running, guest: { hostname: 'g' } };
  const base = situation({ vmi: vmiIn('Running'), record: answered });
  const vmi = steady(base);
  const at = (record: LauncherRecord, now: number) => types(planLauncher({ ...base, vmi, record, now }));
  assert.deepEqual(at(answered, NOW + GUEST_INFO_INTERVAL_MS.waiting + 1), []);
  assert.deepEqual(at(answered, NOW + GUEST_INFO_INTERVAL_MS.answering), ['askGuestInfo']);
  assert.deepEqual(at({ ...answered, guest: undefined }, NOW + GUEST_INFO_INTERVAL_MS.waiting), ['askGuestInfo', 'writeStatus']);
});

test('plan: while the guest says its filesystems are frozen, its agent is asked as often as one that has not answered', () => {
  const frozen = { ...running, guest: { hostname: 'g', fsFreezeStatus: 'frozen' as const } };
  const base = situation({ vmi: vmiIn('Running'), record: frozen });
  const vmi = steady(base);
  assert.deepEqual(types(planLauncher({ ...base, vmi, now: NOW + GUEST_INFO_INTERVAL_MS.waiting + 1 })), ['askGuestInfo']);
});

test('plan: a running guest whose status is written already needs nothing more', () => {
  const base = situation({ vmi: vmiIn('Scheduled'), record: running });
  assert.deepEqual(types(planLauncher({ ...base, vmi: steady(base) })), []);
});

test('plan: virt-handler restarted under a running guest writes nothing once reconnected, and lowers the CPU class again', () => {
  const before = situation({ vmi: vmiIn('Scheduled'), record: running });
  const fresh = record({ domain: domain('Running', 'Booted') });
  assert.deepEqual(types(planLauncher({ ...before, vmi: steady(before), record: fresh })), ['lowerCpuPriority', 'askGuestInfo']);
});

test("plan: Running is written with the Started event and the pod's Ready", () => {
  const write = writeOf(planLauncher(situation({ record: running })))!;
  assert.deepEqual(write.phase, { from: 'Scheduled', to: 'Running' });
  assert.deepEqual(write.events, [{ type: 'Normal', reason: 'Started', message: 'VirtualMachineInstance started.' }]);
  assert.equal(write.vmi.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  assert.equal(write.vmi.status?.phaseTransitionTimestamps?.at(-1)?.phaseTransitionTimestamp, '2026-12-03T12:00:00Z');
});

test('plan: a crash is written as Failed with its reason and a warning naming the domain state; a guest panic has its own', () => {
  const write = writeOf(planLauncher(situation({ vmi: vmiIn('Running'), record: { ...running, domain: domain('Crashed', 'Panicked') } })))!;
  assert.equal(write.vmi.status?.phase, 'Failed');
  assert.equal(write.vmi.status?.reason, 'GuestPanicked');
  assert.deepEqual(write.events, [
    { type: 'Warning', reason: 'Stopped', message: 'The VirtualMachineInstance crashed (Crashed/Panicked).' },
    { type: 'Warning', reason: 'GuestPanicked', message: 'GuestPanicked (details unavailable)' },
  ]);
  const other = writeOf(planLauncher(situation({ vmi: vmiIn('Running'), record: { ...running, domain: domain('Crashed', 'Unknown') } })))!;
  assert.deepEqual(
    other.events.map((e) => e.reason),
    ['Stopped'],
  );
});

test("plan: a deleted VMI's guest that shut down ends Succeeded with upstream's Stopped and Deleted events", () => {
  const deleted = vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z'));
  const write = writeOf(planLauncher(situation({ vmi: deleted, record: { ...running, domain: domain('Shutoff', 'Shutdown') } })))!;
  assert.equal(write.vmi.status?.phase, 'Succeeded');
  assert.deepEqual(
    write.events.map((e) => [e.reason, e.message]),
    [
      ['Stopped', 'The VirtualMachineInstance was shut down.'],
      ['Deleted', 'Signaled Deletion'],
    ],
  );
});

test('plan: a paused guest gets the Paused condition, without a phase change or event', () => {
  const base = situation({ vmi: vmiIn('Scheduled'), record: running });
  const write = writeOf(planLauncher({ ...base, vmi: steady(base), record: { ...running, domain: domain('Paused', 'User') } }))!;
  assert.equal(write.phase, undefined);
  assert.deepEqual(write.events, []);
  assert.equal(write.vmi.status?.conditions?.find((c) => c.type === 'Paused')?.reason, 'PausedByUser');
});

test('plan: a failed sync is reported as Synchronized False with its message', () => {
  const write = writeOf(
    planLauncher(situation({ record: record({ syncError: 'spec.domain.memory.hugepages.pageSize: no', retrySyncAt: NOW + 1000 }) })),
  )!;
  const condition = write.vmi.status?.conditions?.find((c) => c.type === 'Synchronized');
  assert.equal(condition?.status, 'False');
  assert.equal(condition?.message, 'spec.domain.memory.hugepages.pageSize: no');
});

test("plan: the shutdown carries the VMI's grace period, or the default of 30 s, and upstream's event: none is a stop at once", () => {
  const deleting = (grace?: number) =>
    vmiIn('Running', (v) => {
      v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z';
      if (grace !== undefined) v.spec.terminationGracePeriodSeconds = grace;
    });
  const shutdown = (vmi: VirtualMachineInstance) => planLauncher(situation({ vmi, record: running })).find((a) => a.type === 'shutdown');
  const graceful = (seconds: number) => ({
    type: 'shutdown',
    gracePeriodSeconds: seconds,
    event: { type: 'Normal', reason: 'ShuttingDown', message: `Signaled Graceful Shutdown (grace period ${seconds}s)` },
  });
  assert.deepEqual(shutdown(deleting(60)), graceful(60));
  assert.deepEqual(shutdown(deleting()), graceful(30));
  assert.deepEqual(shutdown(deleting(0)), {
    type: 'shutdown',
    gracePeriodSeconds: 0,
    event: { type: 'Normal', reason: 'Deleted', message: 'VirtualMachineInstance stopping' },
  });
});

test('plan: a launcher whose socket never answered fails its Scheduled VMI after the timeout, as upstream; one that answered once is retried', () => {
  const since = NOW - LAUNCHER_INIT_TIMEOUT_MS;
  const never = (fields: Partial<LauncherSituation>, unreachableSince = since) =>
    planLauncher(situation({ record: record({ connected: false, unreachableSince }), ...fields }));
  assert.deepEqual(types(never({}, since + 1)), ['connect'], 'still within the timeout');
  const failed = writeOf(never({}));
  assert.equal(failed?.vmi.status?.phase, 'Failed');
  assert.deepEqual(failed?.phase, { from: 'Scheduled', to: 'Failed' });
  assert.match(failed?.events[0].message ?? '', /did not answer within 3 minutes/);
  assert.deepEqual(types(never({ vmi: vmiIn('Running') })), ['connect'], 'a Running VMI had a launcher that answered');
  assert.deepEqual(types(never({ vmi: vmiIn('Scheduled', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z')) })), ['connect']);
  assert.deepEqual(types(planLauncher(situation({ record: record({ connected: false }) }))), ['connect'], 'no failed connect yet');
});

test('plan: connecting to a launcher being deleted is quiet, otherwise its failure is retried', () => {
  const connect = (vmi: VirtualMachineInstance) => planLauncher(situation({ vmi })).find((a) => a.type === 'connect');
  assert.deepEqual(connect(vmiIn('Scheduled')), { type: 'connect', quiet: false });
  assert.deepEqual(connect(vmiIn('Running', (v) => (v.metadata.deletionTimestamp = '2026-12-03T11:59:00Z'))), {
    type: 'connect',
    quiet: true,
  });
});
