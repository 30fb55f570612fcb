// The fill pods' program on the host, as the DataVolume controller runs it:
// CDI_TASK in its environment, temporary directories for the claim and the
// scratch space, a local web server as the import source. Images are made
// with qemu-img and qemu-io; each result is compared with qemu-img compare.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillPodClientTls, fillPodServerName, issueFillPodCert } from '../../src/cdi/fill-pod-tls.ts';
import type { CdiTask, TaskTarget } from '../../src/contract/cdi.ts';
import { createCa, type KeyPair } from '../../src/lib/pki.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cdi', 'importer', 'main.ts');
const MiB = 1024 * 1024;
const IMAGE_BYTES = 64 * MiB;
const POD_TOKEN = 'pod-token-for-tests';
const root = mkdtempSync(join(tmpdir(), 'kvts-importer-'));
const images = join(root, 'images');

// --- the images ----------------------------------------------------------

before(() => {
  mkdirSync(images);
  const qcow2 = join(images, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, String(IMAGE_BYTES)]);
  // Data at the start and in the middle, zeros elsewhere: a correct copy is sparse.
  execFileSync('qemu-io', ['-c', 'write -P 0xab 0 1M', '-c', 'write -P 0xcd 40M 1M', qcow2], { stdio: 'ignore' });
  execFileSync('qemu-img', ['convert', '-O', 'raw', qcow2, join(images, 'disk.raw')]);
  writeFileSync(join(images, 'disk.qcow2.gz'), execFileSync('gzip', ['-c', qcow2], { maxBuffer: 128 * MiB }));
  writeFileSync(join(images, 'disk.raw.xz'), execFileSync('xz', ['-c', '-1', join(images, 'disk.raw')], { maxBuffer: 128 * MiB }));
  // Header and tables intact, data clusters cut off: qemu-img info still reads it.
  writeFileSync(join(images, 'truncated.qcow2'), readFileSync(qcow2).subarray(0, 300_000));
});

// --- the web server the images come from ----------------------------------

const BASIC_USER = 'importer';
const BASIC_PASSWORD = 'p@ss,word';
let releaseHeld: () => void = () => undefined;
const stalled: (() => void)[] = [];
const releaseStalled = () => {
  for (const release of stalled.splice(0)) release();
};
const requests: { method: string; path: string; range?: string }[] = [];

/**
 * /files/* with ranges (as nbdkit's curl plugin needs), /plain/* without,
 * /auth/* with ranges behind basic auth, /header/* behind an X-Image-Token
 * header, /held/* sends half, then waits for releaseHeld(), /stall/* with
 * ranges, but any range longer than 256 KiB (qemu-img convert reading data,
 * not metadata) waits for releaseStalled(), /nohead/* with ranges but 405 to
 * HEAD.
 */
function serveImages(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  const [, kind, name] = url.pathname.split('/');
  requests.push({ method: req.method ?? '', path: url.pathname, range: req.headers.range });
  let data: Buffer;
  try {
    data = readFileSync(join(images, name ?? ''));
  } catch {
    res.writeHead(404).end('no such image');
    return;
  }
  if (kind === 'auth' && req.headers.authorization !== `Basic ${Buffer.from(`${BASIC_USER}:${BASIC_PASSWORD}`).toString('base64')}`) {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="images"' }).end();
    return;
  }
  if (kind === 'header' && req.headers['x-image-token'] !== 'letmein') {
    res.writeHead(403).end();
    return;
  }
  if (kind === 'held') {
    res.writeHead(200, { 'Content-Length': data.length });
    const half = Math.floor(data.length / 2);
    res.write(data.subarray(0, half));
    new Promise<void>((resolve) => (releaseHeld = resolve)).then(() => res.end(data.subarray(half)));
    return;
  }
  if (kind === 'nohead' && req.method === 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  const ranges = kind === 'files' || kind === 'auth' || kind === 'header' || kind === 'stall' || kind === 'nohead';
  const match = ranges ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '') : null;
  const headers: Record<string, string | number> = ranges ? { 'Accept-Ranges': 'bytes' } : {};
  if (match) {
    const start = Number(match[1]);
    const end = Math.min(match[2] ? Number(match[2]) : data.length - 1, data.length - 1);
    if (kind === 'stall' && end - start + 1 > 256 * 1024) {
      stalled.push(() => res.destroy());
      return;
    }
    res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` });
    res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': data.length });
  res.end(req.method === 'HEAD' ? undefined : data);
}

let server: Server;
let base = '';
let tlsServer: Server;
let tlsBase = '';
/** The https server's self-signed certificate: what a certConfigMap would hold. */
let caCertificate = '';
before(async () => {
  server = createServer(serveImages);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const keyFile = join(root, 'tls.key');
  const certFile = join(root, 'tls.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1'].concat([
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]),
    { stdio: 'ignore' },
  );
  caCertificate = readFileSync(certFile, 'utf8');
  tlsServer = createHttpsServer({ key: readFileSync(keyFile), cert: caCertificate }, serveImages);
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  tlsBase = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
});
after(() => {
  releaseHeld();
  releaseStalled();
  for (const s of [server, tlsServer]) {
    s.closeAllConnections();
    s.close();
  }
});

// --- running the program ---------------------------------------------------

interface Pod {
  dir: string;
  data: string;
  scratch: string;
  termination: string;
  /** The program's TMPDIR, where nbdkit's socket directory goes. */
  tmp: string;
  env: Record<string, string>;
}

function podDirs(extra: Record<string, string> = {}): Pod {
  const dir = mkdtempSync(join(root, 'pod-'));
  const pod = {
    dir,
    data: join(dir, 'data'),
    scratch: join(dir, 'scratch'),
    termination: join(dir, 'termination-log'),
    tmp: join(dir, 'tmp'),
  };
  mkdirSync(pod.data);
  mkdirSync(pod.scratch);
  mkdirSync(pod.tmp);
  mkdirSync(join(pod.scratch, 'registry'));
  return {
    ...pod,
    env: {
      CDI_DATA_DIR: pod.data,
      CDI_SCRATCH_DIR: pod.scratch,
      CDI_REGISTRY_DIR: join(pod.scratch, 'registry'),
      CDI_BLOCK_DEVICE: join(dir, 'block-device'),
      CDI_TERMINATION_LOG: pod.termination,
      CDI_POD_PORT: '0',
      CDI_POD_TOKEN: POD_TOKEN,
      TMPDIR: pod.tmp,
      ...extra,
    },
  };
}

const target = (sizeBytes: number, availableBytes = sizeBytes, volumeMode: TaskTarget['volumeMode'] = 'Filesystem'): TaskTarget => ({
  volumeMode,
  sizeBytes,
  availableBytes,
  contentType: 'kubevirt',
});

interface Running {
  port: Promise<number>;
  exit: Promise<number | null>;
  logs: () => { msg: string; [key: string]: unknown }[];
  kill: () => void;
  stop: () => void;
}

const started = new Set<Running>();
after(async () => {
  for (const run of started) run.kill();
  await Promise.all([...started].map((run) => run.exit));
  rmSync(root, { recursive: true, force: true });
});

function start(task: CdiTask, pod: Pod): Running {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...pod.env, CDI_TASK: JSON.stringify(task) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: { msg: string }[] = [];
  let pending = '';
  let gotPort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (gotPort = resolve));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    const complete = pending.split('\n');
    pending = complete.pop()!;
    for (const line of complete) {
      let record: { msg: string; port?: number };
      try {
        record = JSON.parse(line);
      } catch {
        // Node's own warnings are not JSON; every line of the program's is.
        record = { msg: `not JSON: ${line}` };
      }
      lines.push(record);
      if (record.msg === 'serving' && record.port) gotPort(record.port);
    }
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const run: Running = { port, exit, logs: () => lines, kill: () => child.kill('SIGKILL'), stop: () => child.kill('SIGTERM') };
  started.add(run);
  exit.then(() => started.delete(run));
  return run;
}

/** `promise`, or a failure naming `what` after `seconds`: a hung child must fail its test, not stall the run. */
function within<T>(seconds: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${seconds} s`)), seconds * 1000)),
  );
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function logged(run: Running, msg: string): Promise<void> {
  await within(
    15,
    `log "${msg}"`,
    (async () => {
      while (!run.logs().some((l) => l.msg === msg)) await new Promise((r) => setTimeout(r, 20));
    })(),
  );
}

const exited = (run: Running) => within(30, 'exit', run.exit);

async function runToEnd(task: CdiTask, pod: Pod) {
  const run = start(task, pod);
  const code = await exited(run);
  let message = '';
  try {
    message = readFileSync(pod.termination, 'utf8');
  } catch {}
  return { code, message: message.trim(), logs: run.logs() };
}

const sameDisk = (disk: string, image: string) =>
  // Sizes may differ: the grown part must be zeros.
  assert.doesNotThrow(
    () => execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', disk, image]),
    `${disk} differs from ${image}`,
  );

function assertSparse(path: string, sizeBytes: number) {
  const info = statSync(path);
  assert.equal(info.size, sizeBytes, 'disk.img has the target size');
  assert.ok(info.blocks * 512 < 8 * MiB, `disk.img is sparse: ${info.blocks * 512} bytes allocated`);
}

function httpCall(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const importTask = (source: Extract<CdiTask, { kind: 'import' }>['source'], t: TaskTarget): CdiTask => ({
  kind: 'import',
  source,
  target: t,
});

// --- imports -------------------------------------------------------------

test('a qcow2 served with ranges is converted in place by qemu-img through nbdkit: no scratch copy, a sparse disk.img of the target size', async () => {
  const pod = podDirs();
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/disk.qcow2` }, target(100 * MiB, 120 * MiB)), pod);
  assert.equal(result.code, 0, result.message);
  assert.equal(result.message, 'Import Complete');
  assert.ok(result.logs.some((l) => l.msg === 'converting'));
  assert.ok(!result.logs.some((l) => l.msg === 'streaming'), 'not streamed');
  assert.ok(
    requests.some((r) => r.method === 'HEAD' && r.path === '/files/disk.qcow2'),
    "nbdkit's curl plugin asked for the length",
  );
  assert.deepEqual(readdirSync(pod.tmp), [], "nbdkit's socket directory is gone");
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(pod.data, 'disk.img'), 100 * MiB);
  assert.ok(result.logs.some((l) => l.msg === 'progress' && l.percent === 100));
});

test('a raw image served with ranges is read in place too', async () => {
  const pod = podDirs();
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/disk.raw` }, target(IMAGE_BYTES)), pod);
  assert.equal(result.code, 0, result.message);
  assert.ok(result.logs.some((l) => l.msg === 'converting' && l.format === 'raw'));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(pod.data, 'disk.img'), IMAGE_BYTES);
});

test('basic auth reaches both the probe and nbdkit (the password through a file), and stays out of the logs', async () => {
  const pod = podDirs({ IMPORTER_ACCESS_KEY_ID: BASIC_USER, IMPORTER_SECRET_KEY: BASIC_PASSWORD });
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/auth/disk.qcow2`, basicAuth: true }, target(IMAGE_BYTES)), pod);
  assert.equal(result.code, 0, result.message);
  assert.ok(!result.logs.some((l) => l.msg === 'streaming'), 'qemu-img read it in place');
  assert.ok(!JSON.stringify(result.logs).includes(BASIC_PASSWORD));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assert.deepEqual(readdirSync(pod.tmp), [], 'the password file is gone');

  const refused = await runToEnd(importTask({ type: 'http', url: `${base}/auth/disk.qcow2` }, target(IMAGE_BYTES)), podDirs());
  assert.equal(refused.code, 1);
  assert.equal(refused.message, 'Unable to connect to http data source: expected status code 200, got 401. Status: 401 Unauthorized');
});

test("an https source signed by the certConfigMap's CA is trusted (and read in place: nbdkit takes the CA); without it, refused", async () => {
  const pod = podDirs();
  const certs = join(pod.dir, 'certs');
  mkdirSync(certs);
  writeFileSync(join(certs, 'ca.pem'), caCertificate);
  const url = `${tlsBase}/files/disk.qcow2`;
  const result = await runToEnd(importTask({ type: 'http', url, certs: true }, target(IMAGE_BYTES)), {
    ...pod,
    env: { ...pod.env, CDI_CERTS_DIR: certs },
  });
  assert.equal(result.code, 0, result.message);
  assert.ok(result.logs.some((l) => l.msg === 'converting'));
  assert.ok(!result.logs.some((l) => l.msg === 'streaming' || l.msg.startsWith('qemu-img cannot')), JSON.stringify(result.logs));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));

  const untrusted = await runToEnd(importTask({ type: 'http', url }, target(IMAGE_BYTES)), podDirs());
  assert.equal(untrusted.code, 1);
  assert.equal(
    untrusted.message,
    `Unable to connect to http data source: HTTP request errored: Get "${url}": tls: failed to verify certificate: self-signed certificate`,
  );
});

test('extra headers are sent on every request (read in place: nbdkit sends them too)', async () => {
  const pod = podDirs();
  const result = await runToEnd(
    importTask({ type: 'http', url: `${base}/header/disk.qcow2`, extraHeaders: ['X-Image-Token: letmein'] }, target(IMAGE_BYTES)),
    pod,
  );
  assert.equal(result.code, 0, result.message);
  assert.ok(result.logs.some((l) => l.msg === 'converting'));
  assert.ok(!result.logs.some((l) => l.msg === 'streaming' || l.msg.startsWith('qemu-img cannot')), JSON.stringify(result.logs));
  assert.ok(requests.some((r) => r.method === 'HEAD' && r.path === '/header/disk.qcow2'));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
});

test("a server that refuses HEAD defeats nbdkit's curl plugin: streamed instead, nbdkit's reason logged without the URL's credentials", async () => {
  const pod = podDirs();
  const url = `${base.replace('://', '://someone:s3cret@')}/nohead/disk.qcow2`;
  const result = await runToEnd(importTask({ type: 'http', url }, target(IMAGE_BYTES)), pod);
  assert.equal(result.code, 0, result.message);
  const warning = result.logs.find((l) => l.msg === 'qemu-img cannot read the source in place, streaming it instead');
  assert.match(String(warning?.error), /\(nbdkit: .*HEAD.*405/, JSON.stringify(warning));
  assert.ok(result.logs.some((l) => l.msg === 'streaming' && l.to === 'scratch'));
  assert.ok(!JSON.stringify(result.logs).includes('s3cret'), 'no credentials in the logs');
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assert.deepEqual(readdirSync(pod.tmp), []);
});

test('a qcow2.gz is streamed through scratch space and converted; the scratch copy is removed', async () => {
  const pod = podDirs();
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/disk.qcow2.gz` }, target(80 * MiB)), pod);
  assert.equal(result.code, 0, result.message);
  assert.ok(result.logs.some((l) => l.msg === 'streaming' && l.format === 'qcow2' && l.to === 'scratch'));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(pod.data, 'disk.img'), 80 * MiB);
  assert.ok(!existsSync(join(pod.scratch, 'image.qcow2')), 'the scratch copy is gone');
});

test('a raw.xz is decompressed by xz and written straight to disk.img, skipping zeros', async () => {
  const pod = podDirs();
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/plain/disk.raw.xz` }, target(IMAGE_BYTES)), pod);
  assert.equal(result.code, 0, result.message);
  assert.ok(result.logs.some((l) => l.msg === 'streaming' && l.format === 'raw'));
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(pod.data, 'disk.img'), IMAGE_BYTES);
});

test('GET /progress answers bytes read over Content-Length while a stream is under way', async () => {
  const pod = podDirs();
  const run = start(importTask({ type: 'http', url: `${base}/held/disk.qcow2.gz` }, target(IMAGE_BYTES)), pod);
  const port = await within(15, 'port', run.port);
  let progress = 0;
  for (let i = 0; i < 100 && progress < 40; i++) {
    const res = await httpCall(port, 'GET', '/progress');
    assert.equal(res.status, 200);
    progress = (JSON.parse(res.body.toString()) as { progress: number }).progress;
    if (progress < 40) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(progress >= 40 && progress <= 60, `half the body was sent: ${progress}`);
  releaseHeld();
  assert.equal(await exited(run), 0);
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
});

test('a 404 names the status, in CDI words', async () => {
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/missing.qcow2` }, target(IMAGE_BYTES)), podDirs());
  assert.equal(result.code, 1);
  assert.equal(result.message, 'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found');
});

test('a refused connection says so', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const url = `http://127.0.0.1:${port}/disk.qcow2`;
  const result = await runToEnd(importTask({ type: 'http', url }, target(IMAGE_BYTES)), podDirs());
  assert.equal(result.code, 1);
  assert.equal(
    result.message,
    `Unable to connect to http data source: HTTP request errored: Get "${url}": dial tcp 127.0.0.1:${port}: connect: connection refused`,
  );
});

for (const kind of ['files', 'plain']) {
  test(`a truncated qcow2 fails with qemu-img's finding (${kind === 'files' ? 'read in place' : 'through scratch'})`, async () => {
    const result = await runToEnd(importTask({ type: 'http', url: `${base}/${kind}/truncated.qcow2` }, target(IMAGE_BYTES)), podDirs());
    assert.equal(result.code, 1);
    assert.match(
      result.message,
      /^Unable to process data: Unable to convert source data to target format: qemu-img check found \d+ errors, the image is truncated or corrupt: ERROR: .*exceeding the end of the file/,
    );
    assert.doesNotMatch(result.message, /\n/);
  });
}

test('a qcow2 larger than the claim fails before anything is written', async () => {
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/disk.qcow2` }, target(32 * MiB)), podDirs());
  assert.equal(result.code, 1);
  assert.equal(
    result.message,
    `Unable to process data: Unable to convert source data to target format: virtual image size ${IMAGE_BYTES} is larger than the reported available storage ${32 * MiB}. A larger PVC is required`,
  );
});

test('a raw stream larger than the claim fails naming its whole size', async () => {
  const result = await runToEnd(importTask({ type: 'http', url: `${base}/files/disk.raw.xz` }, target(16 * MiB)), podDirs());
  assert.equal(result.code, 1);
  assert.equal(
    result.message,
    `Unable to process data: Unable to transfer source data to target file: virtual image size ${IMAGE_BYTES} is larger than the reported available storage ${16 * MiB}. A larger PVC is required`,
  );
});

test('blank: a sparse disk.img of the target size; nothing for a block device', async () => {
  const pod = podDirs();
  const result = await runToEnd(importTask({ type: 'blank' }, target(50 * MiB)), pod);
  assert.equal(result.code, 0, result.message);
  assert.equal(statSync(join(pod.data, 'disk.img')).size, 50 * MiB);
  assert.equal(statSync(join(pod.data, 'disk.img')).blocks, 0);
  const block = podDirs();
  writeFileSync(block.env.CDI_BLOCK_DEVICE, 'old data');
  assert.equal((await runToEnd(importTask({ type: 'blank' }, target(50 * MiB, 50 * MiB, 'Block')), block)).code, 0);
  assert.equal(readFileSync(block.env.CDI_BLOCK_DEVICE, 'utf8'), 'old data');
});

/** A stand-in for a block device: old data everywhere the image has zeros too, which an import must overwrite. */
function oldDevice(path: string, bytes: number) {
  const fd = openSync(path, 'w');
  const junk = Buffer.alloc(MiB, 0x5a);
  for (let at = 0; at < bytes; at += MiB) writeSync(fd, junk, 0, MiB, at);
  closeSync(fd);
}

test('Block: a raw stream overwrites the device, zeros included; qemu-img converts onto it with -n', async () => {
  for (const url of [`${base}/plain/disk.raw.xz`, `${base}/files/disk.qcow2`]) {
    const pod = podDirs();
    oldDevice(pod.env.CDI_BLOCK_DEVICE, IMAGE_BYTES);
    const result = await runToEnd(importTask({ type: 'http', url }, target(IMAGE_BYTES, IMAGE_BYTES, 'Block')), pod);
    assert.equal(result.code, 0, result.message);
    sameDisk(pod.env.CDI_BLOCK_DEVICE, join(images, 'disk.raw'));
  }
});

test("registry: the init container's disk (qcow2) is checked and converted", async () => {
  const pod = podDirs();
  copyFileSync(join(images, 'disk.qcow2'), join(pod.scratch, 'registry', 'disk.img'));
  const result = await runToEnd(importTask({ type: 'registry', file: 'disk.img' }, target(IMAGE_BYTES)), pod);
  assert.equal(result.code, 0, result.message);
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
});

// --- upload ----------------------------------------------------------------

test('upload: 401 without the token, a failed upload is answered and can be retried, a good one ends the pod', async () => {
  const pod = podDirs();
  const run = start({ kind: 'upload', target: target(IMAGE_BYTES), contentType: 'kubevirt' }, pod);
  const port = await within(15, 'port', run.port);
  const auth = { Authorization: `Bearer ${POD_TOKEN}` };
  assert.equal((await httpCall(port, 'GET', '/healthz')).status, 200);
  assert.deepEqual(JSON.parse((await httpCall(port, 'GET', '/progress')).body.toString()), { progress: 0, complete: false });
  assert.equal((await httpCall(port, 'HEAD', '/v1beta1/upload-async', auth)).status, 200, 'virtctl finds the async path');

  const qcow2 = readFileSync(join(images, 'disk.qcow2'));
  assert.equal((await httpCall(port, 'POST', '/v1beta1/upload', {}, qcow2)).status, 401);
  assert.equal((await httpCall(port, 'POST', '/v1beta1/upload', { Authorization: 'Bearer wrong' }, qcow2)).status, 401);

  const broken = await httpCall(port, 'POST', '/v1beta1/upload', auth, readFileSync(join(images, 'truncated.qcow2')));
  assert.equal(broken.status, 500);
  assert.match(broken.body.toString(), /^Saving stream failed: Unable to convert source data to target format: qemu-img check found/);

  // The controller's held progress request is answered as soon as the upload is complete, not at its 5 s.
  const held = httpCall(port, 'GET', '/progress?wait=5000');
  const asked = Date.now();
  const good = await httpCall(port, 'POST', '/v1beta1/upload', auth, qcow2);
  assert.equal(good.status, 200, good.body.toString());
  assert.deepEqual(JSON.parse((await held).body.toString()), { progress: 100, complete: true });
  assert.ok(Date.now() - asked < 4500, `answered at the end of the upload, ${Date.now() - asked} ms after the ask`);
  assert.equal(await exited(run), 0);
  assert.equal(readFileSync(pod.termination, 'utf8').trim(), 'Upload Complete');
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(pod.data, 'disk.img'), IMAGE_BYTES);
});

test('upload: an image larger than the claim is a 400 in CDI words', async () => {
  const pod = podDirs();
  const run = start({ kind: 'upload', target: target(16 * MiB), contentType: 'kubevirt' }, pod);
  const port = await within(15, 'port', run.port);
  const res = await httpCall(
    port,
    'PUT',
    '/v1beta1/upload',
    { Authorization: `Bearer ${POD_TOKEN}` },
    readFileSync(join(images, 'disk.raw.xz')),
  );
  assert.equal(res.status, 400);
  assert.equal(
    res.body.toString(),
    `Saving stream failed: effective image size is larger than the reported available storage: Unable to transfer source data to target file: virtual image size ${IMAGE_BYTES} is larger than the reported available storage ${16 * MiB}. A larger PVC is required`,
  );
  run.kill();
});

test('upload: a second upload while one is under way gets 503; archives are refused with 400', async () => {
  const pod = podDirs();
  const run = start({ kind: 'upload', target: target(IMAGE_BYTES), contentType: 'kubevirt' }, pod);
  const port = await within(15, 'port', run.port);
  const auth = { Authorization: `Bearer ${POD_TOKEN}` };
  const raw = readFileSync(join(images, 'disk.raw'));
  let firstAnswer: (status: number) => void = () => undefined;
  const first = new Promise<number>((resolve) => (firstAnswer = resolve));
  const slow = request(
    { host: '127.0.0.1', port, method: 'POST', path: '/v1beta1/upload-async', headers: { ...auth, 'Content-Length': raw.length } },
    (res) => {
      res.resume();
      firstAnswer(res.statusCode ?? 0);
    },
  );
  slow.write(raw.subarray(0, MiB));
  await logged(run, 'upload started');
  assert.equal((await httpCall(port, 'POST', '/v1beta1/upload', auth, Buffer.from('x'))).status, 503);
  slow.end(raw.subarray(MiB));
  assert.equal(await first, 200);
  assert.equal(await exited(run), 0);
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));

  const archivePod = podDirs();
  const archive = start({ kind: 'upload', target: { ...target(IMAGE_BYTES), contentType: 'archive' }, contentType: 'archive' }, archivePod);
  const refused = await httpCall(await within(15, 'port', archive.port), 'POST', '/v1beta1/upload', auth, Buffer.from('tar'));
  assert.equal(refused.status, 400);
  assert.equal(refused.body.toString(), 'Saving stream failed: archive uploads are not supported; upload a disk image');
  archive.kill();
});

test('a stopped importer does not exit 0 (the pod would count as Succeeded)', async () => {
  const pod = podDirs();
  const run = start(importTask({ type: 'http', url: `${base}/held/disk.qcow2.gz` }, target(IMAGE_BYTES)), pod);
  await within(15, 'port', run.port);
  await logged(run, 'decompressing');
  run.stop();
  assert.equal(await exited(run), 143);
  assert.equal(readFileSync(pod.termination, 'utf8').trim(), 'Stopped by SIGTERM before the import completed');
  releaseHeld();
});

/** The processes whose command line names `text`. */
function processesNaming(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {}
  }
  return found;
}

test('a stopped importer takes nbdkit and qemu-img with it', async () => {
  const pod = podDirs();
  const run = start(importTask({ type: 'http', url: `${base}/stall/disk.qcow2` }, target(IMAGE_BYTES)), pod);
  await within(15, 'port', run.port);
  await logged(run, 'converting');
  await within(
    15,
    'a stalled read',
    (async () => {
      while (stalled.length === 0) await new Promise((r) => setTimeout(r, 20));
    })(),
  );
  assert.equal(processesNaming(pod.tmp).length, 2, "nbdkit and qemu-img, both on the socket in the pod's TMPDIR");
  run.stop();
  assert.equal(await exited(run), 143);
  await within(
    10,
    'nbdkit and qemu-img gone',
    (async () => {
      while (processesNaming(pod.tmp).length) await new Promise((r) => setTimeout(r, 50));
    })(),
  );
  releaseStalled();
});

// --- clone -----------------------------------------------------------------

test('clone: the source serves its disk with ranges to the token; the target imports it sparsely', async () => {
  const source = podDirs();
  copyFileSync(join(images, 'disk.raw'), join(source.data, 'disk.img'));
  const served = start({ kind: 'clone-source', volumeMode: 'Filesystem' }, source);
  const port = await within(15, 'port', served.port);
  const auth = { Authorization: `Bearer ${POD_TOKEN}` };

  assert.equal((await httpCall(port, 'GET', '/disk.img')).status, 401);
  const head = await httpCall(port, 'HEAD', '/disk.img', auth);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(IMAGE_BYTES));
  assert.equal(head.headers['accept-ranges'], 'bytes');
  const part = await httpCall(port, 'GET', '/disk.img', { ...auth, Range: `bytes=${MiB - 2}-${MiB + 1}` });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes ${MiB - 2}-${MiB + 1}/${IMAGE_BYTES}`);
  assert.deepEqual([...part.body], [0xab, 0xab, 0, 0]);
  assert.equal((await httpCall(port, 'GET', '/disk.img', { ...auth, Range: `bytes=${IMAGE_BYTES}-` })).status, 416);

  const targetPod = podDirs();
  const url = `http://127.0.0.1:${port}/disk.img`;
  const result = await runToEnd(importTask({ type: 'clone', url }, target(96 * MiB)), targetPod);
  assert.equal(result.code, 0, result.message);
  sameDisk(join(targetPod.data, 'disk.img'), join(images, 'disk.raw'));
  assertSparse(join(targetPod.data, 'disk.img'), 96 * MiB);

  const unauthorized = podDirs({ CDI_POD_TOKEN: 'another' });
  const refused = await runToEnd(importTask({ type: 'clone', url }, target(96 * MiB)), unauthorized);
  assert.equal(refused.code, 1);
  assert.equal(refused.message, 'Unable to connect to clone source: expected status code 200, got 401. Status: 401 Unauthorized');
  served.kill();
});

// --- TLS, as in a cluster ---------------------------------------------------

/** A pod's environment with the TLS material cdi-controller gives it. */
async function tlsPod(ca: KeyPair, name: string, extra: Record<string, string> = {}): Promise<Pod> {
  const leaf = await issueFillPodCert(ca, 'ns', name, new Date());
  return podDirs({ TLS_CERT: leaf.cert, TLS_KEY: leaf.key, ...extra });
}

function httpsCall(
  port: number,
  tls: ReturnType<typeof fillPodClientTls>,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
) {
  return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, headers, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('upload over TLS: a client checking the pod name against the fill-pod CA gets through; another name, another CA or plain HTTP does not', async () => {
  const ca = await createCa(new Date());
  const pod = await tlsPod(ca, 'cdi-upload-disk');
  const run = start({ kind: 'upload', target: target(IMAGE_BYTES), contentType: 'kubevirt' }, pod);
  const port = await within(15, 'port', run.port);
  assert.ok(run.logs().some((l) => l.msg === 'serving' && l.tls === true));
  const tls = fillPodClientTls(ca.cert, 'ns', 'cdi-upload-disk');
  assert.equal((await httpsCall(port, tls, 'GET', '/healthz')).status, 200);
  await assert.rejects(httpsCall(port, fillPodClientTls(ca.cert, 'ns', 'cdi-upload-other'), 'GET', '/healthz'), /altnames|Hostname/i);
  const stranger = await createCa(new Date());
  await assert.rejects(
    httpsCall(port, fillPodClientTls(stranger.cert, 'ns', 'cdi-upload-disk'), 'GET', '/healthz'),
    /certificate|verify|issuer/i,
  );
  await assert.rejects(httpCall(port, 'GET', '/healthz'), 'plain HTTP is not served');

  const good = await httpsCall(
    port,
    tls,
    'POST',
    '/v1beta1/upload',
    { Authorization: `Bearer ${POD_TOKEN}` },
    readFileSync(join(images, 'disk.qcow2')),
  );
  assert.equal(good.status, 200, good.body.toString());
  assert.equal(await exited(run), 0);
  sameDisk(join(pod.data, 'disk.img'), join(images, 'disk.raw'));
});

test('clone over TLS: the importer checks the source pod against the CA bundle and its server name, and refuses another name', async () => {
  const ca = await createCa(new Date());
  const source = await tlsPod(ca, 'dv-uid-source-pod');
  copyFileSync(join(images, 'disk.raw'), join(source.data, 'disk.img'));
  const served = start({ kind: 'clone-source', volumeMode: 'Filesystem' }, source);
  const port = await within(15, 'port', served.port);
  const url = `https://127.0.0.1:${port}/disk.img`;
  // After a rotation the bundle holds the new CA and the one that signed the source.
  const bundle = (await createCa(new Date())).cert + ca.cert;

  const targetPod = await tlsPod(ca, 'importer-disk', { CDI_FILL_POD_CA: bundle });
  const serverName = fillPodServerName('ns', 'dv-uid-source-pod');
  const result = await runToEnd(importTask({ type: 'clone', url, serverName }, target(96 * MiB)), targetPod);
  assert.equal(result.code, 0, result.message);
  sameDisk(join(targetPod.data, 'disk.img'), join(images, 'disk.raw'));

  const wrongName = await tlsPod(ca, 'importer-disk', { CDI_FILL_POD_CA: bundle });
  const refused = await runToEnd(
    importTask({ type: 'clone', url, serverName: fillPodServerName('ns', 'other') }, target(96 * MiB)),
    wrongName,
  );
  assert.equal(refused.code, 1);
  assert.match(refused.message, /^Unable to connect to clone source: .*(altnames|Hostname)/i);

  const noCa = await tlsPod(ca, 'importer-disk');
  const missing = await runToEnd(importTask({ type: 'clone', url, serverName }, target(96 * MiB)), noCa);
  assert.equal(missing.code, 1);
  assert.match(missing.message, /fill-pod CA or the source's server name is missing/);
  served.kill();
});
