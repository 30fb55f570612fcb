// Component memory on the local cluster, with kubevirt-ts installed (npm start): the working set
// of each component's container (what `kubectl top` shows: the kubelet summary API's
// workingSetBytes) idle, then with N VMIs of which M run a guest, beside the targets and
// upstream's figures.
//   - The N - M others never get a node (a nodeSelector no node has): they stay Scheduling with a
//     Pending launcher pod, which is all virt-api's and virt-controller's memory depends on.
//   - The M running ones are the test guest (./cluster.ts); they are what virt-handler's
//     memory depends on.
// The kubelet refreshes its figures every ~10 s: each phase is read 3 times 10 s apart, after a
// settling time, and the largest reading is reported (per component, its largest pod).
//   KUBECONFIG=... node bench/memory.ts [--vmis 100] [--running 30] [--settle 30]
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { benchKubeConfig, createVmis, deleteNamespace, testGuestVmi, workingSets } from './cluster.ts';

const { values } = parseArgs({
  options: {
    vmis: { type: 'string', default: '100' },
    running: { type: 'string', default: '30' },
    settle: { type: 'string', default: '30' },
    namespace: { type: 'string', default: 'kubevirt' },
  },
});
const VMIS = Number(values.vmis);
const RUNNING = Math.min(Number(values.running), VMIS);
const SETTLE_MS = Number(values.settle) * 1000;
const NS = 'kvts-bench-memory';
const MiB = 1024 * 1024;

/** Targets (MiB, idle / loaded) and upstream KubeVirt's figures, per component container. */
const COMPONENTS: Record<string, { idle: number; loaded: number; upstream: string }> = {
  'virt-api': { idle: 64, loaded: 100, upstream: '144–157 MB' },
  'virt-controller': { idle: 64, loaded: 100, upstream: '66–91 MB' },
  'virt-operator': { idle: 64, loaded: 100, upstream: '—' },
  'virt-handler': { idle: 80, loaded: 100, upstream: '~120 MB' },
  'cdi-controller': { idle: 64, loaded: 100, upstream: '—' },
};

const kc = benchKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The largest of 3 readings 10 s apart, per component (its largest pod), and every pod's last one. */
async function measure(): Promise<Map<string, { max: number; pods: number[] }>> {
  const result = new Map<string, { max: number; pods: number[] }>();
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(10_000);
    for (const [name, pods] of await workingSets(kc, values.namespace, Object.keys(COMPONENTS))) {
      result.set(name, { max: Math.max(result.get(name)?.max ?? 0, ...pods), pods });
    }
  }
  return result;
}

const vmiApi = { group: 'kubevirt.io', version: 'v1', namespace: NS, plural: 'virtualmachineinstances' };

async function phases(): Promise<Map<string, number>> {
  const list = (await custom.listNamespacedCustomObject(vmiApi)) as { items: { status?: { phase?: string } }[] };
  const counts = new Map<string, number>();
  for (const v of list.items) counts.set(v.status?.phase || 'Pending', (counts.get(v.status?.phase || 'Pending') ?? 0) + 1);
  return counts;
}

await deleteNamespace(core, NS);
console.log(`idle: reading the working sets (${SETTLE_MS / 1000} s settling, then 3 readings 10 s apart)`);
await sleep(SETTLE_MS);
const idle = await measure();

await core.createNamespace({ body: { metadata: { name: NS } } });
try {
  console.log(`creating ${VMIS} VMIs, ${RUNNING} of them running a guest`);
  await createVmis(
    custom,
    NS,
    Array.from({ length: VMIS }, (_, i) =>
      testGuestVmi(`mem-${i}`, NS, {
        labels: { 'kvts-bench': 'memory' },
        ...(i < RUNNING ? {} : { nodeSelector: { 'kvts-bench/nowhere': 'true' } }),
      }),
    ),
  );
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const counts = await phases();
    if ((counts.get('Running') ?? 0) >= RUNNING && (counts.get('Scheduling') ?? 0) >= VMIS - RUNNING) break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for the VMIs: ${JSON.stringify(Object.fromEntries(counts))}`);
    await sleep(2000);
  }
  console.log(`loaded: ${RUNNING} Running, ${VMIS - RUNNING} Scheduling; reading the working sets`);
  await sleep(SETTLE_MS);
  const loaded = await measure();

  const mib = (bytes: number | undefined) => (bytes === undefined ? '—' : `${(bytes / MiB).toFixed(1)} MiB`);
  const mark = (bytes: number | undefined, target: number) => (bytes === undefined ? '' : bytes <= target * MiB ? ' ok' : ' OVER');
  console.log(`\ncomponent working sets (kubelet summary API; largest pod of each), idle and with ${VMIS} VMIs (${RUNNING} running)`);
  console.log(
    ['component'.padEnd(16), 'idle'.padEnd(16), 'target', 'loaded'.padEnd(16), 'target', 'upstream'.padEnd(12), 'pods idle / loaded'].join(
      '  ',
    ),
  );
  for (const [name, c] of Object.entries(COMPONENTS)) {
    const i = idle.get(name);
    const l = loaded.get(name);
    if (!i && !l) continue;
    console.log(
      [
        name.padEnd(16),
        `${mib(i?.max)}${mark(i?.max, c.idle)}`.padEnd(16),
        `${c.idle}`.padStart(6),
        `${mib(l?.max)}${mark(l?.max, c.loaded)}`.padEnd(16),
        `${c.loaded}`.padStart(6),
        c.upstream.padEnd(12),
        `${(i?.pods ?? []).map((b) => (b / MiB).toFixed(0)).join(',')} / ${(l?.pods ?? []).map((b) => (b / MiB).toFixed(0)).join(',')}`,
      ].join('  '),
    );
  }
} finally {
  console.log('cleaning up');
  await deleteNamespace(core, NS);
}
