// Benchmark: DataVolume import and upload on the `npm start` cluster, each
// beside its floor measured in the same run.
//   node bench/import.ts [--runs 3] [--virtual-gib 2] [--data-mib 300]
// Import: a qcow2 of 2 GiB virtual size holding ~300 MiB of data, served by an
// HTTP server pod (range reads), imported by a DataVolume (created → Succeeded),
// against `qemu-img convert` of the same URL straight to a file on this host.
// Upload: `virtctl image-upload dv` of the same file against `curl --data-binary`
// of it to the same proxy (the synchronous upload, answered once the disk is
// written), both into a DataVolume already UploadReady; and the whole command
// that also creates the DataVolume.
// Each DataVolume's way is followed by watches, so the figures split into the
// provisioner's share (claim Bound), the fill pod's start, the fill itself and
// its completion being noticed.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { DataVolume } from '../src/api/types.ts';
import { apply, eventually, KUBECONFIG, kubectl, kubectlResult, startImageServer } from '../test/e2e/kube.ts';
import { benchKubeConfig, followWatch } from './cluster.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'virtual-gib': { type: 'string', default: '2' },
    'data-mib': { type: 'string', default: '300' },
  },
});
const RUNS = Number(values.runs);
const NS = 'kvts-bench-import';
const DIR = '/var/tmp/kvts-bench-import';
const IMAGE = join(DIR, 'bench.qcow2');
const VIRTCTL = join(import.meta.dirname, '..', 'bin', 'virtctl');
const TARGET = { import: 1.3, upload: 1.2 };
const SIZE = `${values['virtual-gib']}Gi`;

const run = promisify(execFile);
const now = () => Number(process.hrtime.bigint()) / 1e9;
function seconds(run: () => void): number {
  const started = now();
  run();
  return now() - started;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** When each DataVolume (by name) first reached each mark, in seconds on this process's clock. */
type Mark = 'claimBound' | 'fillRunning' | 'fillExited' | 'uploadReady' | 'succeeded' | 'failed';
const marks = new Map<string, Partial<Record<Mark, number>>>();
function mark(name: string, what: Mark) {
  const seen = marks.get(name) ?? {};
  seen[what] ??= now();
  marks.set(name, seen);
}

const kc = benchKubeConfig();

async function until(name: string, what: Mark, seconds = 900): Promise<number> {
  return eventually(`DataVolume ${name} to reach ${what}`, seconds, () => {
    if (marks.get(name)?.failed) throw new Error(`DataVolume ${name} failed`);
    return marks.get(name)?.[what];
  });
}

rmSync(DIR, { recursive: true, force: true });
mkdirSync(DIR, { recursive: true });
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', IMAGE, `${values['virtual-gib']}G`]);
// Data spread over the disk in 10 MiB runs, as a used filesystem's would be (not one block at the start).
const dataMiB = Number(values['data-mib']);
const stride = Math.floor((Number(values['virtual-gib']) * 1024) / (dataMiB / 10));
const writes = Array.from({ length: dataMiB / 10 }, (_, i) => ['-c', `write -P ${(i % 250) + 1} ${i * stride}M 10M`]).flat();
execFileSync('qemu-io', ['-f', 'qcow2', ...writes, IMAGE], { stdio: 'ignore' });
console.error(`bench image: ${values['virtual-gib']} GiB virtual, ${dataMiB} MiB of data`);

kubectlResult(['delete', 'namespace', NS, '--wait=true']);
kubectl(['create', 'namespace', NS]);
const watches = await Promise.all([
  followWatch(kc, `/apis/cdi.kubevirt.io/v1beta1/namespaces/${NS}/datavolumes`, (_type, dv: DataVolume) => {
    const phase = dv.status?.phase;
    if (phase === 'Succeeded') mark(dv.metadata.name!, 'succeeded');
    if (phase === 'Failed') mark(dv.metadata.name!, 'failed');
    if (phase === 'UploadReady') mark(dv.metadata.name!, 'uploadReady');
  }),
  followWatch(kc, `/api/v1/namespaces/${NS}/persistentvolumeclaims`, (_type, claim: V1PersistentVolumeClaim) => {
    if (claim.status?.phase === 'Bound') mark(claim.metadata!.name!, 'claimBound');
  }),
  followWatch(kc, `/api/v1/namespaces/${NS}/pods`, (_type, pod: V1Pod) => {
    const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'DataVolume')?.name;
    const state = pod.status?.containerStatuses?.[0]?.state;
    if (!owner || !state) return;
    if (state.running || state.terminated) mark(owner, 'fillRunning');
    if (state.terminated) mark(owner, 'fillExited');
  }),
]);
const url = `${startImageServer(NS, DIR)}/bench.qcow2`;
await eventually('the image server behind its Service', 60, () => spawnSync('curl', ['-sfI', url]).status === 0);

const dataVolume = (name: string, source: object) => ({
  apiVersion: 'cdi.kubevirt.io/v1beta1',
  kind: 'DataVolume',
  metadata: { name, namespace: NS, annotations: { 'cdi.kubevirt.io/storage.bind.immediate.requested': '' } },
  spec: { source, storage: { resources: { requests: { storage: SIZE } } } },
});

/**
 * The floor: qemu-img convert of the URL to a file here. QEMU 7.2's curl driver now and then
 * stops polling its connections and never ends (the importer reads through nbdkit for that
 * reason), so a run that takes over FLOOR_HANG_S is counted as a hang and run again.
 */
const FLOOR_HANG_S = 60;
let floorHangs = 0;
function floorConvert(): number {
  for (;;) {
    try {
      return seconds(() =>
        execFileSync('qemu-img', ['convert', '-O', 'raw', url, join(DIR, 'floor.img')], { timeout: FLOOR_HANG_S * 1000 }),
      );
    } catch (error) {
      if ((error as { signal?: string }).signal !== 'SIGTERM') throw error;
      floorHangs++;
      console.error(`the floor's qemu-img convert hung (over ${FLOOR_HANG_S} s); running it again`);
    }
  }
}

interface ImportRun {
  floor: number;
  total: number;
  provisioning: number;
  podStart: number;
  fill: number;
  noticed: number;
}
const imports: ImportRun[] = [];
for (let run = 0; run < RUNS; run++) {
  // Alternating, so a host that slows down does not favour either.
  const floor = floorConvert();
  rmSync(join(DIR, 'floor.img'), { force: true });
  const name = `import-${run}`;
  const created = now();
  apply(dataVolume(name, { http: { url } }));
  const succeeded = await until(name, 'succeeded');
  const m = marks.get(name)!;
  // The importer says it is done before it exits, and is removed then: its exit may never be seen.
  const fillDone = Math.min(m.fillExited ?? succeeded, succeeded);
  imports.push({
    floor,
    total: succeeded - created,
    provisioning: m.claimBound! - created,
    podStart: m.fillRunning! - m.claimBound!,
    fill: fillDone - m.fillRunning!,
    noticed: succeeded - fillDone,
  });
  kubectl(['delete', 'dv', name, '-n', NS, '--wait=true']);
  const r = imports.at(-1)!;
  console.error(
    `import run ${run + 1}: floor ${r.floor.toFixed(2)} s, DataVolume ${r.total.toFixed(2)} s ` +
      `(claim bound ${r.provisioning.toFixed(2)}, fill pod start ${r.podStart.toFixed(2)}, fill ${r.fill.toFixed(2)}, noticed ${r.noticed.toFixed(2)})`,
  );
}

const env = { ...process.env, KUBECONFIG };
const proxy = kubectl(['get', 'cdiconfig', 'config', '-o', 'jsonpath={.status.uploadProxyURL}']);
/** Run without blocking this process, so the watches time the DataVolume's way while virtctl runs. */
async function virtctlUpload(name: string, extra: string[] = []): Promise<number> {
  const started = now();
  await run(VIRTCTL, ['-n', NS, 'image-upload', 'dv', name, '--size', SIZE, '--image-path', IMAGE, '--insecure', ...extra], { env });
  return now() - started;
}
async function readyUploadVolume(name: string): Promise<void> {
  apply(dataVolume(name, { upload: {} }));
  await until(name, 'uploadReady', 300);
}

interface UploadRun {
  curl: number;
  virtctlReady: number;
  whole: number;
  whileReady: number;
}
const uploads: UploadRun[] = [];
for (let run = 0; run < RUNS; run++) {
  const viaCurl = `curl-${run}`;
  await readyUploadVolume(viaCurl);
  const request = {
    apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
    kind: 'UploadTokenRequest',
    metadata: { name: viaCurl },
    spec: { pvcName: viaCurl },
  };
  const answer = kubectl(
    ['create', '--raw', `/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/${NS}/uploadtokenrequests`, '-f', '-'],
    JSON.stringify(request),
  );
  const token = (JSON.parse(answer) as { status: { token: string } }).status.token;
  const curl = seconds(() =>
    execFileSync(
      'curl',
      ['-skf', '-H', `Authorization: Bearer ${token}`, '--data-binary', `@${IMAGE}`, `https://${proxy}/v1beta1/upload`],
      { stdio: 'ignore' },
    ),
  );
  const intoReady = `ready-${run}`;
  await readyUploadVolume(intoReady);
  const virtctlReady = await virtctlUpload(intoReady, ['--no-create']);
  const whole = `whole-${run}`;
  const wholeStarted = now();
  const wholeTime = await virtctlUpload(whole);
  uploads.push({ curl, virtctlReady, whole: wholeTime, whileReady: marks.get(whole)!.uploadReady! - wholeStarted });
  kubectl(['delete', 'dv', viaCurl, intoReady, whole, '-n', NS, '--wait=true']);
  const r = uploads.at(-1)!;
  console.error(
    `upload run ${run + 1}: curl ${r.curl.toFixed(2)} s, virtctl image-upload --no-create ${r.virtctlReady.toFixed(2)} s, ` +
      `whole command ${r.whole.toFixed(2)} s (UploadReady after ${r.whileReady.toFixed(2)})`,
  );
}
for (const watch of watches) watch.stop();
kubectlResult(['delete', 'namespace', NS, '--wait=false']);
rmSync(DIR, { recursive: true, force: true });

const of = <T>(runs: T[], key: keyof T) => median(runs.map((r) => r[key] as number));
const s = (x: number) => `${x.toFixed(2)} s`;
const ratio = (ours: number, floor: number) => `${(ours / floor).toFixed(2)}×`;
const floor = of(imports, 'floor');
const total = of(imports, 'total');
const curl = of(uploads, 'curl');
console.log(`import and upload, medians of ${RUNS} (${values['virtual-gib']} GiB virtual, ${dataMiB} MiB of data):`);
console.log('| what | ours | floor | ratio | target |');
console.log('|---|---|---|---|---|');
console.log(
  `| DataVolume import (created → Succeeded) vs qemu-img convert of the URL on the host | ${s(total)} | ${s(floor)} | ${ratio(total, floor)} | ≤ ${TARGET.import}× |`,
);
const afterBound = median(imports.map((r) => r.total - r.provisioning));
console.log(
  `| … of it after the provisioner bound the claim (fill pod start + fill + completion) | ${s(afterBound)} | ${s(floor)} | ${ratio(afterBound, floor)} | |`,
);
const fill = of(imports, 'fill');
console.log(
  `| … the fill alone (importer container start → its exit or its word that it is done) | ${s(fill)} | ${s(floor)} | ${ratio(fill, floor)} | |`,
);
const ready = of(uploads, 'virtctlReady');
console.log(
  `| virtctl image-upload --no-create vs curl --data-binary, both into an UploadReady DataVolume | ${s(ready)} | ${s(curl)} | ${ratio(ready, curl)} | ≤ ${TARGET.upload}× |`,
);
const whole = of(uploads, 'whole');
console.log(
  `| virtctl image-upload, the whole command (creates the DataVolume) vs the same curl | ${s(whole)} | ${s(curl)} | ${ratio(whole, curl)} | |`,
);
console.log('');
console.log(
  'import stages (medians): claim Bound (the provisioner: local-path runs a helper pod per volume) ' +
    `${s(of(imports, 'provisioning'))}; fill pod start ${s(of(imports, 'podStart'))}; fill ${s(fill)}; ` +
    `completion noticed ${s(of(imports, 'noticed'))}. Whole upload command: UploadReady after ${s(of(uploads, 'whileReady'))}.` +
    (floorHangs ? ` The floor's qemu-img hung ${floorHangs} time(s) and was run again.` : ''),
);
process.exit(0);
