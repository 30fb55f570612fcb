// Live migration on the local cluster: `virtctl migrate` moves a running guest
// to a new launcher pod (on the same node when it is the only one: beyond
// upstream), its console counter never restarts and what it wrote to its
// disk arrives; migrate-cancel mid-flight leaves it running at the source;
// a VMI that cannot move says why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TEST_GUEST_IMAGE } from '../../bench/cluster.ts';
import { deleteNamespace, eventually, KUBECONFIG, kubectl, kubectlResult } from './kube.ts';
import { consoleCounts, countingGuestVm } from '../helpers/counting-guest.ts';

const NS = 'kvts-migration';
const VIRTCTL = join(import.meta.dirname, '..', '..', 'bin', 'virtctl');

function virtctl(args: string[]) {
  const r = spawnSync(VIRTCTL, ['-n', NS, ...args], { encoding: 'utf8', env: { ...process.env, KUBECONFIG }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
type Pod = { metadata: { name: string; labels?: Record<string, string> }; spec: { nodeName?: string }; status: { phase: string } };
const podsOf = (uid: string): Pod[] =>
  JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${uid}`, '-o', 'json'])).items;
const consoleOf = (pod: string) => kubectlResult(['logs', '-n', NS, pod, '-c', 'guest-console-log']).stdout;

const vm = (name: string) => countingGuestVm(name, NS, TEST_GUEST_IMAGE);

async function runningWithCount(name: string, atLeast: number) {
  const vmi = await eventually(`${name} running`, 180, () => {
    const v = get('vmi', name);
    return v?.status?.phase === 'Running' ? v : undefined;
  });
  const pod = podsOf(vmi.metadata.uid).find((p) => p.status.phase === 'Running')!;
  await eventually(`${name} counting`, 120, () => consoleCounts(consoleOf(pod.metadata.name)).some((c) => c.n >= atLeast));
  return { vmi, pod };
}

const migrations = (vmiName: string) =>
  JSON.parse(kubectl(['get', 'vmim', '-n', NS, '-l', `kubevirt.io/vmi-name=${vmiName}`, '-o', 'json'])).items as {
    metadata: { name: string };
    status?: { phase?: string; phaseTransitionTimestamps?: { phase: string }[] };
  }[];

/** What a failed migration left to read: its events, and the VMI's phase and migration state. */
function whyFailed(migration: string, vmiName: string): string {
  const events = kubectlResult([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.name=${migration}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
  ]).stdout;
  const vmi = get('vmi', vmiName);
  return `the migration failed; its events: ${events.trim() || 'none'}; the VMI: ${vmi ? JSON.stringify({ phase: vmi.status?.phase, migrationState: vmi.status?.migrationState }) : 'gone'}`;
}

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
// Waited for: a VM still being deleted holds its CRD, which the operator test removes next.
after(() => deleteNamespace(NS, true));

test('virtctl migrate moves the guest to a new launcher pod: the counter goes on, the disk arrives, the status says so', async () => {
  kubectl(['apply', '-f', '-'], JSON.stringify(vm('mover')));
  const { vmi, pod: source } = await runningWithCount('mover', 3);
  assert.equal(vmi.status.conditions.find((c: { type: string }) => c.type === 'LiveMigratable')?.status, 'True');
  const migrate = virtctl(['migrate', 'mover']);
  assert.equal(migrate.status, 0, migrate.stderr);
  assert.match(migrate.stdout, /VM mover was scheduled to migrate/);
  // The source pod goes once the guest has left it: its console is read while it is there.
  let sourceLog = '';
  const done = await eventually('the migration to end', 240, () => {
    sourceLog = consoleOf(source.metadata.name) || sourceLog;
    const [m] = migrations('mover');
    return m?.status?.phase === 'Succeeded' || m?.status?.phase === 'Failed' ? m : undefined;
  });
  assert.equal(done.status?.phase, 'Succeeded', whyFailed(done.metadata.name, 'mover'));
  assert.deepEqual(
    done.status!.phaseTransitionTimestamps!.map((t) => t.phase),
    ['Pending', 'Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running', 'Succeeded'],
  );
  const moved = get('vmi', 'mover');
  const state = moved.status.migrationState;
  assert.equal(state.sourcePod, source.metadata.name);
  assert.notEqual(state.targetPod, source.metadata.name);
  assert.equal(state.completed, true);
  assert.equal(state.failed, undefined);
  assert.equal(state.mode, 'PreCopy');
  assert.equal(state.targetNode, moved.status.nodeName);
  assert.ok(state.startTimestamp && state.endTimestamp && state.targetNodeDomainReadyTimestamp, JSON.stringify(state));
  assert.equal(moved.status.migrationMethod, 'BlockMigration');
  assert.equal(moved.metadata.labels['kubevirt.io/migrationTargetNodeName'], undefined);
  assert.equal(moved.metadata.uid, vmi.metadata.uid, 'the same VMI');
  // The target pod runs the guest, whose counter goes on from where it was; the source pod goes.
  const lastAtSource = Math.max(...consoleCounts(sourceLog).map((c) => c.n));
  await eventually('the source pod to end', 60, () => {
    const left = podsOf(vmi.metadata.uid).find((p) => p.metadata.name === source.metadata.name);
    return !left || left.status.phase === 'Succeeded';
  });
  await eventually('the counter on the target', 60, () =>
    consoleCounts(consoleOf(state.targetPod)).some((c) => c.n >= lastAtSource + 3),
  ).catch((error: Error) => {
    const now = get('vmi', 'mover')?.status;
    throw new Error(
      `${error.message} (last at the source: ${lastAtSource}; VMI ${now?.phase} on ${now?.nodeName}, conditions ${JSON.stringify(now?.conditions)}; the target's console ends: ${JSON.stringify(consoleOf(state.targetPod).slice(-400))})`,
    );
  });
  const atTarget = consoleCounts(consoleOf(state.targetPod));
  assert.ok(
    atTarget.every((c) => c.n >= lastAtSource - 1 && c.marker === 'written-before-migration'),
    JSON.stringify({ lastAtSource, atTarget: atTarget.slice(0, 5) }),
  );
  assert.equal(get('vm', 'mover').status.printableStatus, 'Running');
  // The console reconnects to the guest where it runs now.
  const console = spawnSync(VIRTCTL, ['-n', NS, 'console', 'mover', '--timeout', '1'], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG },
    input: '\n',
    timeout: 15_000,
  });
  assert.match(console.stdout + console.stderr, /Successfully connected to mover console/);
});

test('migrate-cancel mid-flight leaves the guest running at the source', async () => {
  // A slow link keeps the migration in flight long enough to cancel it.
  const kv = JSON.parse(kubectl(['get', 'kubevirt', '-A', '-o', 'json'])).items[0];
  const patch = (migrations: object | null) =>
    kubectl([
      'patch',
      'kubevirt',
      kv.metadata.name,
      '-n',
      kv.metadata.namespace,
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { configuration: { migrations } } }),
    ]);
  patch({ bandwidthPerMigration: '1Mi' });
  try {
    kubectl(['apply', '-f', '-'], JSON.stringify(vm('stayer')));
    const { vmi, pod: source } = await runningWithCount('stayer', 2);
    assert.equal(virtctl(['migrate', 'stayer']).status, 0);
    await eventually('the migration running', 180, () => migrations('stayer')[0]?.status?.phase === 'Running');
    const cancel = virtctl(['migrate-cancel', 'stayer']);
    assert.equal(cancel.status, 0, cancel.stderr);
    await eventually('the migration gone', 120, () => migrations('stayer').length === 0);
    const after = get('vmi', 'stayer');
    assert.equal(after.status.phase, 'Running');
    assert.equal(after.status.nodeName, vmi.status.nodeName);
    assert.equal(after.status.migrationState.failed, true);
    assert.equal(after.status.migrationState.abortStatus, 'Succeeded');
    assert.equal(after.metadata.labels['kubevirt.io/migrationTargetNodeName'], undefined);
    const before = Math.max(...consoleCounts(consoleOf(source.metadata.name)).map((c) => c.n));
    await eventually('the counter going on at the source', 60, () =>
      consoleCounts(consoleOf(source.metadata.name)).some((c) => c.n >= before + 3),
    );
    await eventually('the target pod gone', 120, () =>
      podsOf(vmi.metadata.uid).every((p) => p.metadata.name === source.metadata.name || p.status.phase !== 'Running'),
    );
  } finally {
    patch(null);
  }
});

test('a VMI on a ReadWriteOnce claim cannot migrate, and says why', async () => {
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'rwo', namespace: NS },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    }),
  );
  const pinned = vm('pinned');
  const spec = pinned.spec.template.spec;
  spec.domain.devices.disks.push({ name: 'data', disk: { bus: 'virtio' } });
  (spec.volumes as object[]).push({ name: 'data', persistentVolumeClaim: { claimName: 'rwo' } });
  kubectl(['apply', '-f', '-'], JSON.stringify(pinned));
  const condition = await eventually('LiveMigratable', 180, () =>
    get('vmi', 'pinned')?.status?.conditions?.find((c: { type: string }) => c.type === 'LiveMigratable'),
  );
  assert.equal(condition.status, 'False');
  assert.equal(condition.reason, 'DisksNotLiveMigratable');
  const refused = virtctl(['migrate', 'pinned']);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: cannot migrate VMI: PVC rwo is not shared/);
});
