// virt-handler's /metrics with N running VMIs (default 30), on the local cluster with kubevirt-ts
// installed (npm start); the benchmark runs on the node, beside virt-handler's process:
//   - the scrape's wall time, p50 / p95 / max over R scrapes, beside the target (≤ 1 s at 30 VMIs);
//   - virt-handler's CPU per scrape: its process's CPU time during the scrapes, less what it spends
//     in as long a time without them (heartbeats, syncs, the guests' reports);
//   - virt-handler's memory: its container's working set (what `kubectl top` shows) idle, before
//     the VMIs, and after the scrapes.
// Upstream publishes no figure for its collection; its virt-handler collects per scrape too.
//   KUBECONFIG=... node bench/metrics-scrape.ts [--vmis 30] [--scrapes 20]
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { benchKubeConfig, createVmis, deleteNamespace, percentile, testGuestVmi, workingSets } from './cluster.ts';

const { values } = parseArgs({
  options: { vmis: { type: 'string', default: '30' }, scrapes: { type: 'string', default: '20' } },
});
const VMIS = Number(values.vmis);
const SCRAPES = Number(values.scrapes);
const NS = 'kvts-bench-metrics';
const TARGET_MS = 1000;
/** virt-handler's metrics port, as upstream's (every component serves /metrics on 8443). */
const METRICS_PORT = 8443;
const MiB = 1024 * 1024;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

const kc = benchKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** virt-handler's process on this node: the one whose command runs the handler's entry point. */
function handlerPid(): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0] === 'virt-handler' && argv.some((a) => a.endsWith('/src/handler/main.js'))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error('no virt-handler process on this node: run the benchmark on the node of the local cluster');
}
const pid = handlerPid();
/** The process's CPU time so far, in seconds (user and system). */
const cpuSeconds = () => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
};
/** virt-handler's working set now (its largest pod's). */
const handlerWorkingSet = async () =>
  Math.max(...((await workingSets(kc, 'kubevirt', ['virt-handler'])).get('virt-handler') ?? [Number.NaN]));

const handlerPod = (await core.listNamespacedPod({ namespace: 'kubevirt', labelSelector: 'kubevirt.io=virt-handler' })).items[0];
const url = `https://${handlerPod.status!.podIP}:${METRICS_PORT}/metrics`;

/** One scrape: its wall time and its text. The serving certificate is not checked, as Prometheus' scrape of it does not. */
function scrape(): Promise<{ ms: number; text: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    request(url, { rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode}`));
        else resolve({ ms: performance.now() - started, text: Buffer.concat(chunks).toString('utf8') });
      });
    })
      .on('error', reject)
      .end();
  });
}
/** The VMIs of the namespace that a scrape reports. */
const vmisIn = (text: string) =>
  new Set(
    [...text.matchAll(new RegExp(`^kubevirt_vmi_memory_domain_bytes\\{[^}]*namespace="${NS}",name="([^"]+)"`, 'gm'))].map((m) => m[1]),
  );

await deleteNamespace(core, NS);
const idleWorkingSet = await handlerWorkingSet();
await core.createNamespace({ body: { metadata: { name: NS } } });
try {
  console.error(`starting ${VMIS} VMIs`);
  await createVmis(
    custom,
    NS,
    Array.from({ length: VMIS }, (_, i) => testGuestVmi(`scrape-${i}`, NS)),
  );
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const seen = vmisIn((await scrape()).text).size;
    if (seen >= VMIS) break;
    if (Date.now() > deadline) throw new Error(`after 10 minutes virt-handler reports ${seen} of ${VMIS} VMIs`);
    await sleep(2000);
  }
  // Each scrape is followed by as long a pause, so the guests' own reports fall evenly on both.
  const withoutScrapes = async (ms: number) => {
    const cpu = cpuSeconds();
    await sleep(ms);
    return cpuSeconds() - cpu;
  };
  console.error(`${VMIS} VMIs reported; ${SCRAPES} scrapes`);
  const times: number[] = [];
  let scrapeCpu = 0;
  let pauseCpu = 0;
  let size = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const cpu = cpuSeconds();
    const { ms, text } = await scrape();
    const spent = cpuSeconds() - cpu;
    times.push(ms);
    size = text.length;
    pauseCpu += await withoutScrapes(ms);
    scrapeCpu += spent;
  }
  const perScrapeMs = (1000 * Math.max(0, scrapeCpu - pauseCpu)) / SCRAPES;
  const loadedWorkingSet = await handlerWorkingSet();
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log(
    JSON.stringify(
      {
        vmis: VMIS,
        scrapes: SCRAPES,
        scrapeWall: {
          p50: ms(percentile(times, 50)),
          p95: ms(percentile(times, 95)),
          max: ms(Math.max(...times)),
          target: `≤ ${TARGET_MS} ms at 30 VMIs`,
          ratio: (percentile(times, 95) / TARGET_MS).toFixed(2),
        },
        handlerCpuPerScrape: ms(perScrapeMs),
        scrapeBytes: size,
        handlerWorkingSet: {
          idle: `${(idleWorkingSet / MiB).toFixed(1)} MiB`,
          withVmis: `${(loadedWorkingSet / MiB).toFixed(1)} MiB`,
          target: '≤ 100 MiB working set with 30 running VMIs (bench/memory.ts)',
        },
        upstream: 'no published figure',
      },
      null,
      2,
    ),
  );
} finally {
  console.error('cleaning up');
  await deleteNamespace(core, NS);
}
