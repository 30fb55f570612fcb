// Benchmark: how fast virtctl starts, against the floor of its runtime. Each command runs N times
// (default 7), alternating with `node -e 0` on the same pinned Node.js, so both see the same
// machine; it prints the median wall time and the median peak RSS (from /usr/bin/time) of each:
//   virtctl --help                 no cluster
//   virtctl version                client and server (virt-api) versions; `version --client` when
//                                  no server answers
//   virtctl start VM               a Halted VM in a scratch namespace, stopped again (untimed)
//                                  between runs, 5 s after its VMI is gone; skipped when no
//                                  server answers
// Every command runs once untimed first, so Node's compile cache is warm, as after a first use.
//   KUBECONFIG=... node bench/cli.ts [--runs 7]        (kubectl on PATH for the start row)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply, deleteNamespace, eventually, KUBECONFIG, kubectl, kubectlResult } from '../test/e2e/kube.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const RUNS = Number(values.runs);
const ROOT = join(import.meta.dirname, '..');
const VIRTCTL = join(ROOT, 'bin', 'virtctl');
const PINNED = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const NODE = existsSync(PINNED) ? PINNED : 'node';
const TIME = '/usr/bin/time';
const NS = 'kvts-bench-cli';
const VM = 'bench-cli';
const env = { ...process.env, KUBECONFIG };
const SETTLE_MS = 5000;

interface Run {
  seconds: number;
  mib: number;
  status: number;
  stderr: string;
}

/** One run: wall time around the whole process, and its peak RSS as /usr/bin/time reports it. */
function run(command: string[]): Run {
  const timed = existsSync(TIME);
  const started = process.hrtime.bigint();
  const r = spawnSync(timed ? TIME : command[0], timed ? ['-f', 'kvts-peak-kib %M', ...command] : command.slice(1), {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const kib = /kvts-peak-kib (\d+)/.exec(r.stderr)?.[1];
  return {
    seconds,
    mib: kib ? Number(kib) / 1024 : Number.NaN,
    status: r.status ?? -1,
    stderr: r.stderr.replace(/kvts-peak-kib \d+\n?/, ''),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  command: string;
  ours: Run[];
  floor: Run[];
  wallTarget: number;
  mibTarget?: number;
  anchor: string;
}

/** N alternating pairs (ours first on even runs, the floor first on odd ones); `between` runs untimed after each of ours. */
async function pairs(args: string[], between: () => unknown = () => undefined): Promise<{ ours: Run[]; floor: Run[] }> {
  const ours: Run[] = [];
  const floor: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (i % 2) floor.push(run([NODE, '-e', '0']));
    const r = run([VIRTCTL, ...args]);
    if (r.status !== 0) throw new Error(`virtctl ${args.join(' ')} failed: ${r.stderr.trim()}`);
    ours.push(r);
    if (i % 2 === 0) floor.push(run([NODE, '-e', '0']));
    await between();
  }
  const list = (runs: Run[]) => runs.map((r) => r.seconds.toFixed(3)).join(' ');
  console.error(`virtctl ${args.join(' ')}: ${list(ours)} s; floor: ${list(floor)} s`);
  return { ours, floor };
}

const rows: Row[] = [];
const notes: string[] = [];

// Untimed: builds the bundle if it is stale and fills the compile cache.
run([VIRTCTL, '--help']);
rows.push({ command: 'virtctl --help', ...(await pairs(['--help'])), wallTarget: 0.1, anchor: '' });

const UPSTREAM = 'Go virtctl `version`: 0.041 s, 43 MiB';
const serverAnswers = run([VIRTCTL, 'version']).status === 0;
if (serverAnswers) {
  rows.push({ command: 'virtctl version', ...(await pairs(['version'])), wallTarget: 0.15, mibTarget: 60, anchor: UPSTREAM });
} else {
  notes.push(`\`virtctl version\` got no server version (KUBECONFIG=${KUBECONFIG}): \`version --client\` was timed instead.`);
  run([VIRTCTL, 'version', '--client']);
  rows.push({
    command: 'virtctl version --client',
    ...(await pairs(['version', '--client'])),
    wallTarget: 0.15,
    mibTarget: 60,
    anchor: UPSTREAM,
  });
}

if (serverAnswers && kubectlResult(['version']).status === 0) {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  try {
    apply({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: VM, namespace: NS },
      spec: {
        runStrategy: 'Halted',
        template: {
          spec: {
            domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, resources: { requests: { memory: '128Mi' } } },
            volumes: [{ name: 'root', containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel' } }],
          },
        },
      },
    });
    const vmiGone = () => kubectlResult(['get', 'vmi', VM, '-n', NS, '-o', 'name']).stderr.includes('NotFound');
    /** Stops the VM again and waits until its VMI is gone, so that the next start is accepted. */
    const stopped = async () => {
      const stop = run([VIRTCTL, '-n', NS, 'stop', VM]);
      if (stop.status !== 0) throw new Error(`virtctl stop: ${stop.stderr.trim()}`);
      await eventually(`VMI ${NS}/${VM} to be gone`, 180, vmiGone);
      // The launcher pod's teardown goes on for a moment: the next start runs on a quiet node.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    };
    // The untimed first run is a dry run: the same code and request, and the VM stays Halted.
    run([VIRTCTL, '-n', NS, 'start', '--dry-run', VM]);
    rows.push({
      command: 'virtctl start VM',
      ...(await pairs(['-n', NS, 'start', VM], stopped)),
      wallTarget: 0.15,
      mibTarget: 60,
      anchor: '',
    });
  } finally {
    deleteNamespace(NS);
  }
} else {
  notes.push('`virtctl start` was not timed: it needs the cluster with kubevirt-ts installed, and kubectl on PATH.');
}

const s = (x: number) => `${x.toFixed(3)} s`;
const mib = (x: number) => `${x.toFixed(0)} MiB`;
console.log(
  `\nvirtctl start-up: ${RUNS} runs of each, alternating with the floor (\`node -e 0\`, Node ${process.versions.node}); medians\n`,
);
console.log('| command | ours median wall | floor median wall | ours peak MiB | floor peak MiB | target | upstream anchor |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) {
  const wall = median(row.ours.map((r) => r.seconds));
  const peak = median(row.ours.map((r) => r.mib));
  const met = wall <= row.wallTarget && (row.mibTarget === undefined || peak <= row.mibTarget);
  const target = `≤ ${row.wallTarget * 1000} ms${row.mibTarget ? `, ≤ ${row.mibTarget} MiB` : ''}: ${met ? 'met' : 'NOT met'}`;
  const floorWall = median(row.floor.map((r) => r.seconds));
  const floorPeak = median(row.floor.map((r) => r.mib));
  console.log(`| \`${row.command}\` | ${s(wall)} | ${s(floorWall)} | ${mib(peak)} | ${mib(floorPeak)} | ${target} | ${row.anchor} |`);
}
for (const note of notes) console.log(`\n${note}`);
