// Benchmark: DataVolume import and upload on the `npm start` cluster, each
// beside its floor measured in the same run.
//   node bench/import.ts [--runs 3] [--virtual-gib 2] [--data-mib 300]
// Import: a qcow2 of 2 GiB virtual size holding ~300 MiB of data, served by an
// HTTP server pod (range reads), imported by a DataVolume (created → Succeeded),
// against `qemu-img convert` of the same URL straight to a file on this host.
// Upload: `virtctl image-upload dv` of the same file (the whole command), against
// `curl --data-binary` of it to the same proxy, into a ready upload DataVolume,
// with a token (the POST of the synchronous upload, which answers once the disk is written).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply, eventually, KUBECONFIG, kubectl, kubectlResult } from '../test/e2e/kube.ts';

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

function seconds(run: () => void): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e9;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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
apply({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'image-server', namespace: NS, labels: { app: 'image-server' } },
  spec: {
    containers: [
      {
        name: 'server',
        image: 'registry:5000/kubevirt-ts/e2e-servers:devel',
        command: ['node', '/app/test/servers/image-server.ts', '/bench'],
        volumeMounts: [{ name: 'bench', mountPath: '/bench', readOnly: true }],
      },
    ],
    volumes: [{ name: 'bench', hostPath: { path: DIR, type: 'Directory' } }],
  },
});
apply({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'image-server', namespace: NS },
  spec: { selector: { app: 'image-server' }, ports: [{ port: 8080 }] },
});
kubectl(['wait', '--for=condition=Ready', 'pod/image-server', '-n', NS, '--timeout=120s']);
const url = `http://${kubectl(['get', 'service', 'image-server', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])}:8080/bench.qcow2`;
await eventually('the image server behind its Service', 60, () => spawnSync('curl', ['-sfI', url]).status === 0);

const dataVolume = (name: string, source: object) => ({
  apiVersion: 'cdi.kubevirt.io/v1beta1',
  kind: 'DataVolume',
  metadata: { name, namespace: NS, annotations: { 'cdi.kubevirt.io/storage.bind.immediate.requested': '' } },
  spec: { source, storage: { resources: { requests: { storage: `${values['virtual-gib']}Gi` } } } },
});
const phase = (name: string) => kubectlResult(['get', 'dv', name, '-n', NS, '-o', 'jsonpath={.status.phase}']).stdout;

const imports: number[] = [];
const floors: number[] = [];
for (let run = 0; run < RUNS; run++) {
  // Alternating, so a host that slows down does not favour either.
  floors.push(seconds(() => execFileSync('qemu-img', ['convert', '-O', 'raw', url, join(DIR, 'floor.img')])));
  rmSync(join(DIR, 'floor.img'));
  const name = `import-${run}`;
  const started = process.hrtime.bigint();
  apply(dataVolume(name, { http: { url } }));
  await eventually(`DataVolume ${name} to succeed`, 900, () => {
    const p = phase(name);
    if (p === 'Failed') throw new Error(`DataVolume ${name} failed`);
    return p === 'Succeeded';
  });
  imports.push(Number(process.hrtime.bigint() - started) / 1e9);
  kubectl(['delete', 'dv', name, '-n', NS, '--wait=true']);
  console.error(`run ${run + 1}: floor ${floors.at(-1)!.toFixed(2)} s, DataVolume ${imports.at(-1)!.toFixed(2)} s`);
}

const proxy = kubectl(['get', 'cdiconfig', 'config', '-o', 'jsonpath={.status.uploadProxyURL}']);
const uploads: number[] = [];
const curls: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const viaVirtctl = `upload-${run}`;
  const env = { ...process.env, KUBECONFIG };
  const args = ['-n', NS, 'image-upload', 'dv', viaVirtctl, '--size', `${values['virtual-gib']}Gi`, '--image-path', IMAGE, '--insecure'];
  uploads.push(seconds(() => execFileSync(VIRTCTL, args, { env, stdio: 'ignore' })));
  const viaCurl = `curl-${run}`;
  apply(dataVolume(viaCurl, { upload: {} }));
  await eventually(`DataVolume ${viaCurl} to be ready for an upload`, 300, () => phase(viaCurl) === 'UploadReady');
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
  curls.push(
    seconds(() =>
      execFileSync(
        'curl',
        ['-skf', '-H', `Authorization: Bearer ${token}`, '--data-binary', `@${IMAGE}`, `https://${proxy}/v1beta1/upload`],
        {
          stdio: 'ignore',
        },
      ),
    ),
  );
  kubectl(['delete', 'dv', viaVirtctl, viaCurl, '-n', NS, '--wait=true']);
  console.error(`run ${run + 1}: curl ${curls.at(-1)!.toFixed(2)} s, virtctl image-upload ${uploads.at(-1)!.toFixed(2)} s`);
}
kubectlResult(['delete', 'namespace', NS, '--wait=false']);
rmSync(DIR, { recursive: true, force: true });

const row = (what: string, ours: number[], floor: number[], target: number) =>
  `| ${what} | ${median(ours).toFixed(2)} s | ${median(floor).toFixed(2)} s | ${(median(ours) / median(floor)).toFixed(2)}× | ≤ ${target}× |`;
console.log(`import and upload, medians of ${RUNS} (${values['virtual-gib']} GiB virtual, ${dataMiB} MiB of data):`);
console.log('| what | ours | floor | ratio | target |');
console.log('|---|---|---|---|---|');
console.log(row('DataVolume import (created → Succeeded) vs qemu-img convert of the URL on the host', imports, floors, TARGET.import));
console.log(row('virtctl image-upload (whole command) vs curl --data-binary to the proxy', uploads, curls, TARGET.upload));
