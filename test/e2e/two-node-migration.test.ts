// Live migration, drain and self-fencing across two nodes (npm start -- --nodes 2;
// every test skips on one node): a guest moves to the other node and keeps
// counting; draining a node moves its LiveMigrate VMs (within the per-node
// limit) and shuts down a None one; a node cut off (its kubelet, virt-handler
// and containerd stopped, its guests left running) stops its guests itself, its
// VMIs fail, and an Always VM runs on the other node, never twice at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TEST_GUEST_IMAGE } from '../../bench/cluster.ts';
import { consoleCounts, countingGuestVm } from '../helpers/counting-guest.ts';
import { deleteNamespace, eventually, KUBECONFIG, kubectl, kubectlResult } from './kube.ts';

const NS = 'kvts-two-node-migration';
const REPO = join(import.meta.dirname, '..', '..');
const VIRTCTL = join(REPO, 'bin', 'virtctl');
const nodeNames = (JSON.parse(kubectl(['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string } }[] }).items.map(
  (n) => n.metadata.name,
);
const skip = nodeNames.length < 2 && `needs a cluster of two nodes (npm start -- --nodes 2); this one has ${nodeNames.length}`;

const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const virtctl = (args: string[]) =>
  spawnSync(VIRTCTL, ['-n', NS, ...args], { encoding: 'utf8', env: { ...process.env, KUBECONFIG }, timeout: 60_000 });
const consoleOf = (pod: string) => kubectlResult(['logs', '-n', NS, pod, '-c', 'guest-console-log']).stdout;

/** The QEMU processes of a guest on this host, with the node whose pods' cgroups hold each. */
function qemusOf(vmi: string): { pid: number; node: string }[] {
  const lines = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n');
  return lines
    .filter((l) => l.includes('qemu-system') && l.includes(`guest=${NS}_${vmi},`))
    .map((l) => {
      const pid = Number(l.trim().split(/\s+/)[0]);
      let cgroup = '';
      try {
        cgroup = execFileSync('cat', [`/proc/${pid}/cgroup`], { encoding: 'utf8' });
      } catch {}
      const node = nodeNames.find((n) => n !== 'node01' && cgroup.includes(`/${n}/`)) ?? 'node01';
      return { pid, node };
    });
}

function vm(name: string, evictionStrategy: string, node?: string) {
  const made = countingGuestVm(name, NS, TEST_GUEST_IMAGE);
  const spec = made.spec.template.spec;
  Object.assign(spec, { evictionStrategy, terminationGracePeriodSeconds: 0, ...(node ? { affinity: preferNode(node) } : {}) });
  spec.domain.resources = { requests: { cpu: '25m' } };
  return made;
}
/** Placed on `node` first, yet free to move off it. */
const preferNode = (node: string) => ({
  nodeAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 100, preference: { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] } },
    ],
  },
});

async function running(name: string) {
  return eventually(`${name} running`, 240, () => {
    const v = get('vmi', name);
    return v?.status?.phase === 'Running' ? v : undefined;
  });
}
const activePod = (vmi: {
  status: { migrationState?: { completed?: boolean; failed?: boolean; targetPod?: string } };
  metadata: { uid: string };
}) => {
  const pods = JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${vmi.metadata.uid}`, '-o', 'json'])).items as {
    metadata: { name: string };
    status: { phase: string };
  }[];
  return pods.find((p) => p.status.phase === 'Running')!.metadata.name;
};

before(() => {
  if (skip) return;
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => {
  if (skip) return;
  deleteNamespace(NS, true);
  for (const node of nodeNames) kubectlResult(['uncordon', node]);
});

test('virtctl migrate moves a guest to the other node: its counter never restarts, its disk comes along', { skip }, async () => {
  kubectl(['apply', '-f', '-'], JSON.stringify(vm('traveller', 'LiveMigrate', 'node01')));
  const vmi = await running('traveller');
  const from = vmi.status.nodeName;
  const source = activePod(vmi);
  await eventually('counting', 120, () => consoleCounts(consoleOf(source)).length >= 3);
  const r = virtctl(['migrate', 'traveller']);
  assert.equal(r.status, 0, r.stderr);
  // The source pod goes once the guest has left it: its console is read while it is there.
  let sourceLog = '';
  const moved = await eventually('the VMI on the other node', 240, () => {
    sourceLog = consoleOf(source) || sourceLog;
    const v = get('vmi', 'traveller');
    if (v?.status?.migrationState?.failed) throw new Error(`migration failed: ${v.status.migrationState.failureReason}`);
    return v?.status?.nodeName !== from && v?.status?.migrationState?.completed ? v : undefined;
  });
  assert.equal(moved.status.migrationState.sourceNode, from);
  assert.equal(moved.status.migrationState.targetNode, moved.status.nodeName);
  assert.equal(moved.metadata.labels['kubevirt.io/nodeName'], moved.status.nodeName);
  const last = Math.max(...consoleCounts(sourceLog).map((c) => c.n));
  const target = moved.status.migrationState.targetPod;
  await eventually('the counter on the target', 60, () => consoleCounts(consoleOf(target)).some((c) => c.n >= last + 3));
  assert.ok(consoleCounts(consoleOf(target)).every((c) => c.n >= last - 1 && c.marker === 'written-before-migration'));
  await eventually('one QEMU, on the new node', 60, () => {
    const q = qemusOf('traveller');
    return q.length === 1 && q[0].node === moved.status.nodeName;
  });
});

test('kubectl drain moves LiveMigrate VMs off the node within the per-node limit and shuts a None VM down', { skip }, async () => {
  const node = 'node02';
  for (const name of ['lm-a', 'lm-b']) kubectl(['apply', '-f', '-'], JSON.stringify(vm(name, 'LiveMigrate', node)));
  kubectl(['apply', '-f', '-'], JSON.stringify(vm('stays', 'None', node)));
  for (const name of ['lm-a', 'lm-b', 'stays']) {
    const v = await running(name);
    assert.equal(v.status.nodeName, node, `${name} was placed on ${v.status.nodeName}`);
  }
  const staysUid = get('vmi', 'stays').metadata.uid;
  let mostAtOnce = 0;
  const watch = setInterval(() => {
    const active = (
      JSON.parse(kubectlResult(['get', 'vmim', '-n', NS, '-o', 'json']).stdout || '{"items":[]}').items as { status?: { phase?: string } }[]
    ).filter((m) => ['Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running'].includes(m.status?.phase ?? '')).length;
    mostAtOnce = Math.max(mostAtOnce, active);
  }, 500);
  const uids = Object.fromEntries(['lm-a', 'lm-b'].map((name) => [name, get('vmi', name).metadata.uid]));
  try {
    const drain = spawnSync(
      'kubectl',
      ['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--pod-selector=kubevirt.io=virt-launcher', '--timeout=400s'],
      { encoding: 'utf8', env: { ...process.env, KUBECONFIG }, timeout: 420_000 },
    );
    assert.equal(drain.status, 0, drain.stderr);
    for (const name of ['lm-a', 'lm-b']) {
      const v = get('vmi', name);
      const seen = JSON.stringify({ phase: v.status.phase, node: v.status.nodeName, migrationState: v.status.migrationState });
      assert.equal(v.metadata.uid, uids[name], `${name} was not moved but replaced: ${seen}`);
      assert.notEqual(v.status.nodeName, node, `${name} still on ${node}: ${seen}`);
      assert.equal(v.status.phase, 'Running', seen);
    }
    assert.ok(mostAtOnce <= 2, `${mostAtOnce} migrations ran at once (limit 2 per node)`);
    // The None VM's guest went with its pod; its VM starts it again, elsewhere.
    await eventually('the None VMI replaced', 180, () => get('vmi', 'stays')?.metadata.uid !== staysUid);
  } finally {
    clearInterval(watch);
    kubectl(['uncordon', node]);
  }
});

test('a node cut off stops its guests itself; its VMIs fail and an Always VM runs on the other node, never twice', { skip }, async () => {
  kubectl(['apply', '-f', '-'], JSON.stringify(vm('survivor', 'None', 'node02')));
  const vmi = await running('survivor');
  assert.equal(vmi.status.nodeName, 'node02');
  let twice = 0;
  const watch = setInterval(() => {
    if (qemusOf('survivor').length > 1) twice++;
  }, 250);
  const stoppedAt = Date.now();
  try {
    execFileSync('npm', ['run', '--silent', 'cluster:node', '--', 'stop', 'node02'], { cwd: REPO, stdio: 'ignore' });
    // Self-fencing: no QEMU of it left on node02 within the lease (40 s) and a little.
    await eventually('the guest stopped on node02', 90, () => qemusOf('survivor').every((q) => q.node !== 'node02'));
    const fencedAfter = (Date.now() - stoppedAt) / 1000;
    assert.ok(fencedAfter <= 60, `fenced after ${fencedAfter} s`);
    const replaced = await eventually('a new VMI on node01', 240, () => {
      const v = get('vmi', 'survivor');
      return v && v.metadata.uid !== vmi.metadata.uid && v.status?.phase === 'Running' ? v : undefined;
    });
    assert.equal(replaced.status.nodeName, 'node01');
    assert.equal(twice, 0, 'two QEMUs of the VM ran at once');
  } finally {
    clearInterval(watch);
    execFileSync('npm', ['run', '--silent', 'cluster:node', '--', 'start', 'node02'], { cwd: REPO, stdio: 'ignore' });
  }
});
