// Control-plane scale on simulated nodes, on the local cluster with kubevirt-ts installed (npm
// start): M fake nodes run by KWOK (hack/cluster/kwok.ts), then N VMIs created ten requests at a
// time, as a user's automation would, with a toleration and a node selector that send their
// launcher pods there (`--batch 1 --every 100` creates them at upstream's KWOK job's pace: one
// every 100 ms). No virt-handler runs on a fake node, so this measures what upstream's KWOK
// job measures up to where a real node would take over. It reports:
//   1. per VMI, from its create request, p50/p95/p99 of each stage as the watches first see it:
//      launcher pod created (virt-controller), pod Running on its fake node (kube-scheduler, then
//      KWOK's pod-ready stage), VMI Scheduled (virt-controller), and the steps between them;
//   2. kube-apiserver writes per VMI by verb and resource, by virt-controller and by everyone,
//      from the audit log (hack/cluster/audit-policy.yaml: writes of kubevirt.io objects and pods
//      only), from the first create until every VMI is Scheduled;
//   3. virt-controller's CPU seconds, peak RSS and working-set growth per VMI, from the kubelet's
//      summary API (polled every 5 s; the kubelet refreshes it every ~10 s).
// Each figure is printed beside its target and upstream's figure. Everything it made goes at the
// end: the namespace with its VMIs, the fake nodes and KWOK.
//   KUBECONFIG=... node bench/scale.ts [--vmis 1000] [--nodes 20] [--batch 10] [--every MS]
//     [--audit AUDIT_LOG] [--kubevirt-namespace kubevirt]
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { addFakeNodes, FAKE_NODE_SELECTOR, FAKE_NODE_TOLERATION, removeFakeNodes } from '../hack/cluster/kwok.ts';
import {
  AUDIT_LOG,
  auditEventsBetween,
  auditMark,
  benchKubeConfig,
  type ContainerStats,
  containerStats,
  createVmis,
  deleteNamespace,
  followWatch,
  percentile,
  testGuestVmi,
} from './cluster.ts';

const { values } = parseArgs({
  options: {
    vmis: { type: 'string', default: '1000' },
    nodes: { type: 'string', default: '20' },
    batch: { type: 'string', default: '10' },
    every: { type: 'string', default: '0' },
    audit: { type: 'string', default: AUDIT_LOG },
    'kubevirt-namespace': { type: 'string', default: 'kubevirt' },
  },
});
for (const flag of ['vmis', 'nodes', 'batch'] as const)
  if (!/^[1-9]\d*$/.test(values[flag])) throw new Error(`--${flag}: must be a positive integer, got ${values[flag]}`);
if (!/^\d+$/.test(values.every)) throw new Error(`--every: must be a whole number of milliseconds, got ${values.every}`);
const PACE = { batch: Number(values.batch), everyMs: Number(values.every) };
const VMIS = Number(values.vmis);
const NODES = Number(values.nodes);
/** Each fake node's pod limit (hack/cluster/kwok.ts). */
const PODS_PER_NODE = 110;
if (VMIS > NODES * PODS_PER_NODE)
  throw new Error(
    `--nodes: ${NODES} fake nodes hold at most ${NODES * PODS_PER_NODE} launcher pods (${PODS_PER_NODE} each); --vmis is ${VMIS}`,
  );
const NS = 'kvts-bench-scale';
const CONTROLLER = 'virt-controller';
const CONTROLLER_USER = `system:serviceaccount:${values['kubevirt-namespace']}:kubevirt-controller`;
const TARGET = { scheduledP50Ms: 300, scheduledP95Ms: 700, writesPerVmi: 3, growthPerVmiBytes: 50 * 1024 };
const UPSTREAM = "upstream's KWOK job: creation → Running p50 0.62 s, p95 1.4 s at 8,000 VMIs";

const kc = benchKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
const KiB = 1024;
const MiB = 1024 * KiB;

/** When the watches first saw each VMI (by name) reach each stage. */
const seen = { podCreated: new Map<string, number>(), podRunning: new Map<string, number>(), scheduled: new Map<string, number>() };
const failed = new Set<string>();
const firstTime = (stage: Map<string, number>, name: string) => {
  if (!stage.has(name)) stage.set(name, Date.now());
};

/** virt-controller's figures per pod: the first and last reading, and the largest RSS and working set between. */
interface ControllerPod {
  first: ContainerStats;
  last: ContainerStats;
  peakRssBytes: number;
  peakWorkingSetBytes: number;
}
const controllerPods = new Map<string, ControllerPod>();
async function readController(): Promise<void> {
  for (const c of await containerStats(kc, values['kubevirt-namespace'], [CONTROLLER])) {
    const known = controllerPods.get(c.pod);
    controllerPods.set(c.pod, {
      first: known?.first ?? c,
      last: c,
      peakRssBytes: Math.max(known?.peakRssBytes ?? 0, c.memory?.rssBytes ?? 0),
      peakWorkingSetBytes: Math.max(known?.peakWorkingSetBytes ?? 0, c.memory?.workingSetBytes ?? 0),
    });
  }
}

/** Per-VMI times (ms) from one stage to a later one, over the VMIs that reached both. */
const between = (from: Map<string, number>, to: Map<string, number>) =>
  [...to].flatMap(([name, at]) => (from.has(name) ? [at - from.get(name)!] : []));
const distribution = (times: number[]) => ({
  vmis: times.length,
  p50: s(percentile(times, 50)),
  p95: s(percentile(times, 95)),
  p99: s(percentile(times, 99)),
});
const stage = (from: Map<string, number>, to: Map<string, number>) => distribution(between(from, to));

/** Successful writes in the namespace, per VMI, by `verb resource[/subresource]`. */
function writesPerVmi(events: ReturnType<typeof auditEventsBetween>) {
  const count = new Map<string, number>();
  for (const e of events) {
    if (e.objectRef?.namespace !== NS || (e.responseStatus?.code ?? 0) >= 300) continue;
    const key = `${e.verb} ${e.objectRef.resource}${e.objectRef.subresource ? `/${e.objectRef.subresource}` : ''}`;
    count.set(key, (count.get(key) ?? 0) + 1);
  }
  const perVmi = Object.fromEntries([...count].sort().map(([key, n]) => [key, Number((n / VMIS).toFixed(2))]));
  return { total: Number(([...count.values()].reduce((a, b) => a + b, 0) / VMIS).toFixed(2)), ...perVmi };
}

await deleteNamespace(core, NS);
await core.createNamespace({ body: { metadata: { name: NS } } });
const watches: { stop(): void }[] = [];
/** Everything the run made goes, whatever ended it; a failure here is reported, not thrown over the run's own. */
async function cleanUp(): Promise<void> {
  for (const watch of watches) watch.stop();
  console.error('cleaning up: the VMIs, the fake nodes, KWOK');
  await deleteNamespace(core, NS).catch((error: Error) => console.error(`deleting namespace ${NS}: ${error.message}`));
  try {
    removeFakeNodes();
  } catch (error) {
    console.error(`removing the fake nodes: ${(error as Error).message}`);
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });
try {
  console.error(`adding ${NODES} fake nodes`);
  addFakeNodes(NODES);
  await readController();

  watches.push(
    await followWatch(kc, `/api/v1/namespaces/${NS}/pods`, (type, pod: V1Pod) => {
      const vmi = pod.metadata?.ownerReferences?.find((o) => o.kind === 'VirtualMachineInstance')?.name;
      if (!vmi || type === 'DELETED') return;
      firstTime(seen.podCreated, vmi);
      if (pod.status?.phase === 'Running' && pod.spec?.nodeName) firstTime(seen.podRunning, vmi);
    }),
    await followWatch(
      kc,
      `/apis/kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances`,
      (_type, vmi: { metadata: { name: string }; status?: { phase?: string } }) => {
        const phase = vmi.status?.phase;
        if (phase === 'Scheduled' || phase === 'Running') firstTime(seen.scheduled, vmi.metadata.name);
        if (phase === 'Failed') failed.add(vmi.metadata.name);
      },
    ),
  );

  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await readController().catch((error: Error) => console.error(`summary API: ${error.message}`));
      await sleep(5000);
    }
  })();

  const auditStart = auditMark(values.audit);
  console.error(`creating ${VMIS} VMIs on the fake nodes`);
  const names = Array.from({ length: VMIS }, (_, i) => `scale-${i}`);
  const started = Date.now();
  const sent = await createVmis(
    custom,
    NS,
    names.map((name) => testGuestVmi(name, NS, { nodeSelector: FAKE_NODE_SELECTOR, tolerations: [FAKE_NODE_TOLERATION] })),
    PACE,
  );
  const createdAt = new Map(names.map((name, i) => [name, sent[i]]));
  const createSeconds = (Date.now() - started) / 1000;
  console.error(`created in ${createSeconds.toFixed(1)} s; waiting for every VMI to be Scheduled`);
  const deadline = Date.now() + 5 * 60_000 + VMIS * 200;
  const settled = () => new Set([...seen.scheduled.keys(), ...failed]).size;
  for (let i = 0; settled() < VMIS; i++) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out: ${seen.scheduled.size} of ${VMIS} VMIs Scheduled, ${failed.size} Failed, ${seen.podRunning.size} pods Running`,
      );
    if (i % 50 === 0)
      console.error(`${seen.podCreated.size} pods created, ${seen.podRunning.size} Running, ${seen.scheduled.size} VMIs Scheduled`);
    await sleep(100);
  }
  const allScheduledSeconds = (Date.now() - started) / 1000;
  // The writes that follow the last Scheduled one (conditions settling) belong to the VMIs too.
  await sleep(5000);
  const auditEnd = auditMark(values.audit);
  // The kubelet's next refresh of the summary API, so the last reading shows the loaded controller.
  await sleep(15_000);
  sampling = false;
  await sampler;
  await readController();

  const events = auditEventsBetween(auditStart, auditEnd);
  const byController = writesPerVmi(events.filter((e) => e.user.username === CONTROLLER_USER));
  const writers = new Map<string, number>();
  for (const e of events)
    if (e.objectRef?.namespace === NS && (e.responseStatus?.code ?? 0) < 300)
      writers.set(e.user.username, (writers.get(e.user.username) ?? 0) + 1);

  // The leader does the work; the other replica only watches.
  const cpuSeconds = (p: ControllerPod) => ((p.last.cpu?.usageCoreNanoSeconds ?? 0) - (p.first.cpu?.usageCoreNanoSeconds ?? 0)) / 1e9;
  const pods = [...controllerPods].sort(([, a], [, b]) => cpuSeconds(b) - cpuSeconds(a));
  const [leaderName, leader] = pods[0] ?? [];
  const growth = leader ? (leader.last.memory?.workingSetBytes ?? 0) - (leader.first.memory?.workingSetBytes ?? 0) : Number.NaN;
  const toScheduled = between(createdAt, seen.scheduled);
  const ok = (good: boolean) => (good ? 'ok' : 'MISSED');
  console.log(
    JSON.stringify(
      {
        vmis: VMIS,
        fakeNodes: NODES,
        createdIn: `${createSeconds.toFixed(1)} s (${PACE.batch} requests at a time${PACE.everyMs ? `, a batch every ${PACE.everyMs} ms at most` : ''})`,
        allScheduledAfter: `${allScheduledSeconds.toFixed(1)} s`,
        failed: failed.size,
        fromCreateRequest: {
          podCreated: stage(createdAt, seen.podCreated),
          podRunning: stage(createdAt, seen.podRunning),
          scheduled: {
            ...distribution(toScheduled),
            target: `p50 ≤ ${s(TARGET.scheduledP50Ms)}, p95 ≤ ${s(TARGET.scheduledP95Ms)} at 1,000 VMIs`,
            p50Result: ok(percentile(toScheduled, 50) <= TARGET.scheduledP50Ms),
            p95Result: ok(percentile(toScheduled, 95) <= TARGET.scheduledP95Ms),
            upstream: UPSTREAM,
          },
        },
        steps: {
          'podCreated → podRunning (kube-scheduler, KWOK)': stage(seen.podCreated, seen.podRunning),
          'podRunning → scheduled (virt-controller)': stage(seen.podRunning, seen.scheduled),
        },
        writesPerVmi: {
          virtController: { ...byController, target: `≤ ${TARGET.writesPerVmi}`, result: ok(byController.total <= TARGET.writesPerVmi) },
          everyone: writesPerVmi(events),
          byUser: Object.fromEntries([...writers].map(([user, n]) => [user, Number((n / VMIS).toFixed(2))])),
          note: 'successful writes of kubevirt.io objects and pods in the namespace (the audit policy records no reads and no events)',
        },
        virtController: {
          pod: leaderName,
          cpuSeconds: leader ? Number(cpuSeconds(leader).toFixed(1)) : Number.NaN,
          over: leader?.first.cpu && leader.last.cpu ? s(Date.parse(leader.last.cpu.time) - Date.parse(leader.first.cpu.time)) : '—',
          peakRss: leader ? `${(leader.peakRssBytes / MiB).toFixed(1)} MiB` : '—',
          peakWorkingSet: leader ? `${(leader.peakWorkingSetBytes / MiB).toFixed(1)} MiB` : '—',
          workingSetGrowthPerVmi: `${(growth / VMIS / KiB).toFixed(1)} KiB`,
          target: `≤ ${TARGET.growthPerVmiBytes / KiB} KiB per VMI`,
          result: ok(growth / VMIS <= TARGET.growthPerVmiBytes),
          otherReplicas: Object.fromEntries(pods.slice(1).map(([name, p]) => [name, `${cpuSeconds(p).toFixed(1)} CPU s`])),
        },
      },
      null,
      2,
    ),
  );
  if (failed.size > 0) {
    console.error(`${failed.size} of ${VMIS} VMIs Failed`);
    process.exitCode = 1;
  }
} finally {
  await cleanUp();
}
