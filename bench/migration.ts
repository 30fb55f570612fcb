// Live migration on the local cluster with kubevirt-ts installed (npm start): a test guest of
// 512 MiB, idle and then dirtying memory at a steady rate (it copies a 64 MiB buffer over and
// over), migrated --runs times each. Reports the total time (migration created → Succeeded, as a
// user waits for it), QEMU's own total, the guest's downtime and QEMU's (its last pass), read from
// the source launcher's log, and whether the busy guest converged. Under TCG the guest is paused for
// the whole move, and its downtime is the migration's. Targets for the idle guest: downtime ≤ 300 ms (QEMU's default
// bound; upstream's is 900 ms, and it measured 244 ms for an idle VM on real hardware), total ≤ 10 s
// under TCG. On a one-node cluster the guest moves to a new launcher pod on the same node.
//   KUBECONFIG=... node bench/migration.ts [--runs 3] [--memory 512Mi] [--busy true]
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { benchKubeConfig, deleteNamespace, percentile, testGuestVmi } from './cluster.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    memory: { type: 'string', default: '512Mi' },
    busy: { type: 'string', default: 'true' },
  },
});
const RUNS = Number(values.runs);
const NS = 'kvts-bench-migration';
const TARGET = { downtimeMs: 300, totalS: 10 };

const kc = benchKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const api = (plural: string) => ({ group: 'kubevirt.io', version: 'v1', namespace: NS, plural });

type Vmi = { metadata: { uid: string }; status?: { phase?: string; migrationState?: { sourcePod?: string; mode?: string } } };
type Migration = { status?: { phase?: string; migrationState?: { failureReason?: string } } };

async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await sleep(200);
  }
}

const readVmi = (name: string) => custom.getNamespacedCustomObject({ ...api('virtualmachineinstances'), name }) as Promise<Vmi>;

/** The guest: booted when its console says so; a busy one copies a 64 MiB buffer in a loop from then on. */
function guest(name: string, busy: boolean) {
  const vmi = testGuestVmi(name, NS) as ReturnType<typeof testGuestVmi> & { spec: { volumes: object[] } };
  vmi.spec.domain.memory.guest = values.memory!;
  const script = busy
    ? '#!/bin/sh\nhead -c 64M /dev/urandom > /dev/shm/a\n(while true; do cp /dev/shm/a /dev/shm/b; done) &\necho bench-ready\n'
    : '#!/bin/sh\necho bench-ready\n';
  vmi.spec.domain.devices.disks.push({ name: 'cloudinitdisk', disk: { bus: 'virtio' } });
  vmi.spec.volumes.push({ name: 'cloudinitdisk', cloudInitNoCloud: { userData: script } });
  return vmi;
}

async function consoleSays(pod: string, text: string): Promise<boolean> {
  const log = await core.readNamespacedPodLog({ name: pod, namespace: NS, container: 'guest-console-log' });
  return String(log).includes(text);
}

/** QEMU's figures for the migration, from the source launcher's log line. */
async function qemuFigures(pod: string): Promise<{ downtimeMs?: number; qemuDowntimeMs?: number; totalTimeMs?: number; mode?: string }> {
  const log = String(await core.readNamespacedPodLog({ name: pod, namespace: NS, container: 'compute' }));
  const line = log.split('\n').find((l) => l.includes('"msg":"migration completed"'));
  return line ? JSON.parse(line) : {};
}

interface Run {
  totalS: number;
  qemuTotalMs?: number;
  downtimeMs?: number;
  qemuDowntimeMs?: number;
  mode?: string;
  converged: boolean;
  failure?: string;
}

async function migrateOnce(name: string, i: number): Promise<Run> {
  const started = performance.now();
  await custom.createNamespacedCustomObject({
    ...api('virtualmachineinstancemigrations'),
    body: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      metadata: { name: `${name}-${i}` },
      spec: { vmiName: name },
    },
  });
  const migration = await until('the migration to end', 600, async () => {
    const m = (await custom.getNamespacedCustomObject({ ...api('virtualmachineinstancemigrations'), name: `${name}-${i}` })) as Migration;
    return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
  });
  const totalS = (performance.now() - started) / 1000;
  const after = await readVmi(name);
  const source = after.status?.migrationState?.sourcePod;
  if (migration.status?.phase !== 'Succeeded')
    return { totalS, converged: false, failure: migration.status?.migrationState?.failureReason ?? 'failed' };
  const figures = source ? await qemuFigures(source) : {};
  const { totalTimeMs: qemuTotalMs, downtimeMs, qemuDowntimeMs, mode } = figures;
  return { totalS, qemuTotalMs, downtimeMs, qemuDowntimeMs, mode, converged: true };
}

async function scenario(busy: boolean) {
  const name = busy ? 'busy' : 'idle';
  await custom.createNamespacedCustomObject({ ...api('virtualmachineinstances'), body: guest(name, busy) });
  const vmi = await until(`${name} running`, 300, async () => {
    const v = await readVmi(name);
    return v.status?.phase === 'Running' ? v : undefined;
  });
  const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `kubevirt.io/created-by=${vmi.metadata.uid}` });
  await until(`${name} booted`, 300, async () => ((await consoleSays(pods.items[0].metadata!.name!, 'bench-ready')) ? true : undefined));
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await migrateOnce(name, i);
    console.error(`${name} #${i + 1}: ${JSON.stringify(run)}`);
    runs.push(run);
  }
  const ok = runs.filter((r) => r.converged);
  const stat = (xs: number[]) => (xs.length ? { p50: percentile(xs, 50), max: Math.max(...xs) } : undefined);
  return {
    guest: `${name}, ${values.memory}`,
    runs: runs.length,
    converged: `${ok.length}/${runs.length}`,
    totalS: stat(ok.map((r) => Number(r.totalS.toFixed(2)))),
    qemuTotalMs: stat(ok.flatMap((r) => (r.qemuTotalMs === undefined ? [] : [r.qemuTotalMs]))),
    downtimeMs: stat(ok.flatMap((r) => (r.downtimeMs === undefined ? [] : [r.downtimeMs]))),
    qemuDowntimeMs: stat(ok.flatMap((r) => (r.qemuDowntimeMs === undefined ? [] : [r.qemuDowntimeMs]))),
    modes: [...new Set(ok.map((r) => r.mode))],
    failures: runs.flatMap((r) => (r.failure ? [r.failure] : [])),
  };
}

await deleteNamespace(core, NS);
await core.createNamespace({ body: { metadata: { name: NS } } });
try {
  const idle = await scenario(false);
  const busy = values.busy === 'true' ? await scenario(true) : undefined;
  console.log(
    JSON.stringify(
      {
        idle,
        idleTargets: { downtime: `≤ ${TARGET.downtimeMs} ms`, total: `≤ ${TARGET.totalS} s (TCG)` },
        idleRatios: {
          downtime: idle.downtimeMs ? (idle.downtimeMs.p50 / TARGET.downtimeMs).toFixed(2) : 'n/a',
          total: idle.totalS ? (idle.totalS.p50 / TARGET.totalS).toFixed(2) : 'n/a',
        },
        busy,
        upstream: 'downtime 244 ms for an idle VM on real hardware (its bound: 900 ms)',
      },
      null,
      2,
    ),
  );
} finally {
  await deleteNamespace(core, NS);
}
