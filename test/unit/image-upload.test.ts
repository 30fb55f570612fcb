// virtctl image-upload: upstream's argument checks and messages, the
// DataVolume and claim it creates for each flag, the predicates its waits use,
// the proxy URLs, the progress lines, and whole runs against a fake API server
// and a local upload proxy (the API calls in upstream's order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  claimProcessingDone,
  claimUploadReady,
  configuredProxyUrl,
  dataSourceFor,
  dataVolumeUploadReady,
  eventFailure,
  existingClaimProblem,
  goTrue,
  type ImageUploadFlags,
  imageUpload,
  parseImageUploadArgs,
  retriesExhausted,
  uploadClaim,
  uploadDataVolume,
  uploadTokenRequest,
  uploadUrl,
  withScheme,
} from '../../src/virtctl/image-upload.ts';
import {
  bar,
  formatBytes,
  formatDuration,
  nextMilestone,
  progress,
  progressBarLine,
  progressPlainLine,
} from '../../src/virtctl/progress.ts';
import { ApiError } from '../../src/lib/raw-request.ts';
import { createCa, createLeaf } from '../../src/operator/certs.ts';

const plan = (args: string[], flags: ImageUploadFlags = {}) => parseImageUploadArgs(args, { imagePath: '/images/disk.qcow2', ...flags });

test("arguments are checked in upstream's order with upstream's messages", () => {
  const cases: [string[], ImageUploadFlags, string][] = [
    [[], {}, 'either image-path or archive-path must be provided'],
    [['targetName'], { size: '500Mi', imagePath: '/dev/null' }, 'expecting two args'],
    [[], { size: '500Mi', imagePath: '/dev/null' }, 'expecting two args'],
    [['dv', 'x'], { size: '500Mi' }, 'either image-path or archive-path must be provided'],
    [
      ['dv', 'x'],
      { imagePath: '/dev/null', archivePath: '/dev/null.tar' },
      'cannot handle both image-path and archive-path, provide only one',
    ],
    [['dv', 'x'], { archivePath: '/dev/null.tar', blockVolume: true }, 'In archive upload the volume mode should always be filesystem'],
    [['dv', 'x'], { archivePath: '/dev/null.tar', volumeMode: 'block' }, 'In archive upload the volume mode should always be filesystem'],
    [
      ['dv', 'x'],
      { archivePath: '/a.tar', blockVolume: true, volumeMode: 'filesystem' },
      "incompatible --volume-mode 'filesystem' and --block-volume",
    ],
    [['dv', 'x'], { archivePath: '/a.tar', volumeMode: 'foo' }, "Invalid volume mode 'foo'. Valid values are 'block' and 'filesystem'."],
    [['dv', 'x'], { imagePath: '/i', volumeMode: 'Block' }, "Invalid volume mode 'Block'. Valid values are 'block' and 'filesystem'."],
    [['foo'], { pvcName: 'x', imagePath: '/dev/null' }, 'cannot use --pvc-name and args'],
    [['foo', 'x'], { imagePath: '/dev/null' }, 'invalid resource type foo'],
    [['dv', 'x'], { size: '500G', pvcSize: '50G', imagePath: '/dev/null' }, '--pvc-size and --size can not be specified at the same time'],
    [
      ['pvc', 'x'],
      { imagePath: '/i', defaultInstancetypeKind: 'foo' },
      '--default-instancetype must be provided with --default-instancetype-kind',
    ],
    [
      ['pvc', 'x'],
      { imagePath: '/i', defaultPreferenceKind: 'foo' },
      '--default-preference must be provided with --default-preference-kind',
    ],
    [
      ['pvc', 'x'],
      { imagePath: '/i', defaultInstancetype: 'foo', noCreate: true },
      '--default-instancetype and --default-preference cannot be used with --no-create',
    ],
    [
      ['pvc', 'x'],
      { imagePath: '/i', defaultPreference: 'foo', noCreate: true },
      '--default-instancetype and --default-preference cannot be used with --no-create',
    ],
  ];
  for (const [args, flags, message] of cases)
    assert.throws(
      () => parseImageUploadArgs(args, flags),
      (error: Error) => error.message === message,
      `${args.join(' ')} ${JSON.stringify(flags)}`,
    );
});

test('a valid invocation becomes a plan; the deprecated flags map to the new ones', () => {
  assert.deepEqual(plan(['DV', 'fedora'], { size: '10Gi' }), {
    kind: 'dv',
    name: 'fedora',
    file: '/images/disk.qcow2',
    archive: false,
    size: '10Gi',
    noCreate: false,
    forceBind: false,
    insecure: false,
    waitSecs: 300,
    retries: 5,
    dataSource: false,
    labels: {},
  });
  const deprecated = parseImageUploadArgs([], { pvcName: 'old', pvcSize: '1Gi', imagePath: '/i', blockVolume: true });
  assert.equal(deprecated.kind, 'pvc');
  assert.equal(deprecated.name, 'old');
  assert.equal(deprecated.size, '1Gi');
  assert.equal(deprecated.volumeMode, 'block');
  // The same size twice is no conflict.
  assert.equal(plan(['pvc', 'x'], { size: '1Gi', pvcSize: '1Gi' }).size, '1Gi');
  const archive = parseImageUploadArgs(['dv', 'a'], { archivePath: '/a.tar', volumeMode: 'filesystem' });
  assert.equal(archive.archive, true);
  assert.equal(archive.file, '/a.tar');
  const full = plan(['pvc', 'x'], {
    uploadproxyUrl: 'https://proxy',
    insecure: true,
    forceBind: true,
    noCreate: true,
    waitSecs: 10,
    retry: 2,
    storageClass: 'local',
    accessMode: 'ReadWriteMany',
  });
  assert.equal(full.uploadProxyUrl, 'https://proxy');
  assert.deepEqual([full.insecure, full.forceBind, full.noCreate, full.waitSecs, full.retries], [true, true, true, 10, 2]);
  assert.deepEqual(plan(['dv', 'x'], { defaultInstancetype: 'u1.small', defaultPreferenceKind: 'k', defaultPreference: 'fedora' }).labels, {
    'instancetype.kubevirt.io/default-instancetype': 'u1.small',
    'instancetype.kubevirt.io/default-preference': 'fedora',
    'instancetype.kubevirt.io/default-preference-kind': 'k',
  });
});

test("the DataVolume: an upload source and spec.storage with only what was given, upstream's annotations", () => {
  assert.deepEqual(uploadDataVolume(plan(['dv', 'fedora'], { size: '10Gi' }), 'ns1'), {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: 'fedora', namespace: 'ns1' },
    spec: { source: { upload: {} }, contentType: 'kubevirt', storage: { resources: { requests: { storage: '10Gi' } } } },
  });
  const everything = uploadDataVolume(
    plan(['dv', 'fedora'], {
      size: '1.5Gi',
      storageClass: 'fast',
      accessMode: 'ReadWriteMany',
      volumeMode: 'block',
      forceBind: true,
      defaultInstancetype: 'u1.medium',
    }),
    'default',
  );
  assert.deepEqual(everything, {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: {
      name: 'fedora',
      namespace: 'default',
      annotations: { 'cdi.kubevirt.io/storage.bind.immediate.requested': '' },
      labels: { 'instancetype.kubevirt.io/default-instancetype': 'u1.medium' },
    },
    spec: {
      source: { upload: {} },
      contentType: 'kubevirt',
      storage: {
        accessModes: ['ReadWriteMany'],
        // The canonical form, as the API server stores it.
        resources: { requests: { storage: '1536Mi' } },
        storageClassName: 'fast',
        volumeMode: 'Block',
      },
    },
  });
  const archive = uploadDataVolume(
    parseImageUploadArgs(['dv', 'a'], { archivePath: '/a.tar', size: '1Gi', volumeMode: 'filesystem' }),
    'ns',
  );
  assert.equal(archive.spec?.contentType, 'archive');
  assert.deepEqual((archive.spec?.storage as { volumeMode?: string } | undefined)?.volumeMode, 'Filesystem');
  assert.throws(
    () => uploadDataVolume(plan(['dv', 'x'], { size: '500Zb' }), 'ns'),
    (error: Error) =>
      error.message ===
      "validation failed for size=500Zb: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
  );
  assert.throws(
    () => uploadDataVolume(plan(['dv', 'x'], { size: '1Gi', accessMode: 'ReadOnlyMany' }), 'ns'),
    /^Error: cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany if supported$/,
  );
});

test('the claim: upload target and content type annotations, ReadWriteOnce by default, the storage-profile label', () => {
  assert.deepEqual(uploadClaim(plan(['pvc', 'disk'], { size: '500Mi' }), 'ns1'), {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: 'disk',
      namespace: 'ns1',
      annotations: { 'cdi.kubevirt.io/storage.upload.target': '', 'cdi.kubevirt.io/storage.contentType': 'kubevirt' },
      labels: { 'cdi.kubevirt.io/applyStorageProfile': 'true' },
    },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '500Mi' } } },
  });
  const archive = uploadClaim(
    parseImageUploadArgs(['pvc', 'disk'], {
      archivePath: '/a.tar',
      size: '1G',
      forceBind: true,
      storageClass: 'local',
      accessMode: 'ReadWriteMany',
      volumeMode: 'filesystem',
      defaultPreference: 'fedora',
    }),
    'ns1',
  );
  assert.deepEqual(archive.metadata.annotations, {
    'cdi.kubevirt.io/storage.upload.target': '',
    'cdi.kubevirt.io/storage.contentType': 'archive',
    'cdi.kubevirt.io/storage.bind.immediate.requested': '',
  });
  assert.deepEqual(archive.metadata.labels, {
    'cdi.kubevirt.io/applyStorageProfile': 'true',
    'instancetype.kubevirt.io/default-preference': 'fedora',
  });
  assert.deepEqual(archive.spec, {
    accessModes: ['ReadWriteMany'],
    resources: { requests: { storage: '1G' } },
    storageClassName: 'local',
    volumeMode: 'Filesystem',
  });
  assert.equal(uploadClaim(plan(['pvc', 'b'], { size: '1Gi', volumeMode: 'block' }), 'ns').spec?.volumeMode, 'Block');
  assert.throws(() => uploadClaim(plan(['pvc', 'x'], { size: '1Gi', accessMode: 'ReadOnlyMany' }), 'ns'), /readonly volume/);
  assert.throws(() => uploadClaim(plan(['pvc', 'x'], { size: 'big' }), 'ns'), /^Error: validation failed for size=big: /);
});

test('the token request and the DataSource are the objects upstream sends', () => {
  assert.deepEqual(uploadTokenRequest('disk'), {
    apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
    kind: 'UploadTokenRequest',
    metadata: { generateName: 'token-for-virtctl-' },
    spec: { pvcName: 'disk' },
  });
  const p = plan(['dv', 'img'], { size: '1Gi', defaultInstancetype: 'u1.small' });
  assert.deepEqual(dataSourceFor(p, 'ns'), {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataSource',
    metadata: { name: 'img', namespace: 'ns', labels: { 'instancetype.kubevirt.io/default-instancetype': 'u1.small' } },
    spec: { source: { pvc: { name: 'img', namespace: 'ns' } } },
  });
  const updated = dataSourceFor(p, 'ns', {
    metadata: { name: 'img', namespace: 'ns', resourceVersion: '7', labels: { keep: 'me' } },
    spec: { source: { pvc: { name: 'old', namespace: 'other' } } },
  });
  assert.deepEqual(updated, {
    metadata: {
      name: 'img',
      namespace: 'ns',
      resourceVersion: '7',
      labels: { keep: 'me', 'instancetype.kubevirt.io/default-instancetype': 'u1.small' },
    },
    spec: { source: { pvc: { name: 'img', namespace: 'ns' } } },
  });
});

const claimWith = (annotations: Record<string, string>, phase?: string) => ({
  metadata: { name: 'disk', namespace: 'ns', annotations },
  ...(phase && { status: { phase } }),
});

test("readiness: a claim's upload pod is ready by the annotation (Go's ParseBool), a DataVolume by UploadReady", () => {
  assert.equal(goTrue('true'), true);
  assert.equal(goTrue('1'), true);
  assert.equal(goTrue('True'), true);
  assert.equal(goTrue('yes'), false);
  assert.equal(goTrue(undefined), false);
  assert.equal(
    claimUploadReady(claimWith({ 'cdi.kubevirt.io/storage.pod.ready': 'true', 'cdi.kubevirt.io/storage.pod.phase': 'Running' })),
    true,
  );
  assert.equal(claimUploadReady(claimWith({ 'cdi.kubevirt.io/storage.pod.ready': 'false' })), false);
  assert.equal(claimUploadReady(claimWith({})), false);
  assert.equal(claimProcessingDone(claimWith({ 'cdi.kubevirt.io/storage.pod.phase': 'Succeeded' })), true);
  assert.equal(claimProcessingDone(claimWith({ 'cdi.kubevirt.io/storage.pod.phase': 'Running' })), false);

  const dv = (phase?: string) => ({ metadata: { name: 'disk' }, ...(phase && { status: { phase } }) });
  assert.equal(dataVolumeUploadReady(dv('UploadReady'), false), true);
  assert.equal(dataVolumeUploadReady(dv('UploadScheduled'), false), false);
  assert.equal(dataVolumeUploadReady(dv(), false), false);
  for (const phase of ['WaitForFirstConsumer', 'PendingPopulation']) {
    assert.throws(
      () => dataVolumeUploadReady(dv(phase), false),
      (error: Error) =>
        error.message === `cannot upload to DataVolume in ${phase} phase, make sure the PVC is Bound, or use force-bind flag`,
    );
    assert.equal(dataVolumeUploadReady(dv(phase), true), false);
  }
});

test('an existing claim is refused when it is done, not an upload target (without --no-create), or not an archive target', () => {
  const target = { 'cdi.kubevirt.io/storage.upload.target': '' };
  assert.equal(existingClaimProblem(claimWith(target), plan(['pvc', 'disk'])), undefined);
  assert.equal(
    existingClaimProblem(claimWith({ ...target, 'cdi.kubevirt.io/storage.pod.phase': 'Succeeded' }), plan(['pvc', 'disk'])),
    'PVC disk already successfully imported/cloned/updated',
  );
  assert.match(existingClaimProblem(claimWith({}), plan(['pvc', 'disk'])) ?? '', /^PVC disk not available for upload: .*--no-create/);
  assert.equal(existingClaimProblem(claimWith({}), plan(['pvc', 'disk'], { noCreate: true })), undefined);
  const archive = parseImageUploadArgs(['pvc', 'disk'], { archivePath: '/a.tar' });
  assert.match(existingClaimProblem(claimWith(target), archive) ?? '', /^PVC disk doesn't have archive contentType annotation/);
  assert.equal(existingClaimProblem(claimWith({ ...target, 'cdi.kubevirt.io/storage.contentType': 'archive' }), archive), undefined);
});

test('events: ProvisioningFailed on the claim and ErrClaimNotValid on the DataVolume end the wait', () => {
  const events = [
    { involvedObject: { kind: 'PersistentVolumeClaim', uid: 'other' }, reason: 'ProvisioningFailed', message: 'not mine' },
    {
      involvedObject: { kind: 'PersistentVolumeClaim', uid: 'c1' },
      reason: 'ProvisioningFailed',
      message: 'the object has been modified; please apply your changes to the latest version and try again',
    },
    { involvedObject: { kind: 'PersistentVolumeClaim', uid: 'c1' }, reason: 'Provisioning', message: 'waiting' },
  ];
  assert.equal(eventFailure(events, 'c1', 'd1'), undefined);
  assert.equal(
    eventFailure(
      [...events, { involvedObject: { kind: 'PersistentVolumeClaim', uid: 'c1' }, reason: 'ProvisioningFailed', message: 'no space' }],
      'c1',
      'd1',
    ),
    'Provisioning failed: no space',
  );
  assert.equal(
    eventFailure([{ involvedObject: { kind: 'DataVolume', uid: 'd1' }, reason: 'ErrClaimNotValid', message: 'bad spec' }], 'c1', 'd1'),
    'Claim not valid: bad spec',
  );
  assert.equal(
    eventFailure([{ involvedObject: { kind: 'DataVolume' }, reason: 'ErrClaimNotValid', message: 'x' }], undefined, undefined),
    undefined,
  );
});

test("URLs: the override before CDI's own, https when no scheme, the upload path joined unless present", () => {
  assert.equal(
    configuredProxyUrl({ spec: { uploadProxyURLOverride: 'https://mine' }, status: { uploadProxyURL: 'cdi.example' } }),
    'https://mine',
  );
  assert.equal(configuredProxyUrl({ status: { uploadProxyURL: 'cdi.example' } }), 'cdi.example');
  assert.equal(configuredProxyUrl({ spec: {}, status: {} }), undefined);
  assert.equal(withScheme('cdi-uploadproxy.example.com'), 'https://cdi-uploadproxy.example.com');
  assert.equal(withScheme('cdi-uploadproxy.example.com:8443'), 'https://cdi-uploadproxy.example.com:8443');
  assert.equal(withScheme('127.0.0.1:8443'), 'https://127.0.0.1:8443');
  assert.equal(withScheme('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  const server = 'http://localhost:12345';
  assert.equal(uploadUrl(`${server}/`, false), `${server}/v1beta1/upload`);
  assert.equal(uploadUrl(`${server}/v1beta1/upload`, false), `${server}/v1beta1/upload`);
  assert.equal(uploadUrl(server, false), `${server}/v1beta1/upload`);
  assert.equal(uploadUrl(server, true), `${server}/v1beta1/upload-async`);
  assert.equal(uploadUrl('https://proxy.example/cdi/', true), 'https://proxy.example/cdi/v1beta1/upload-async');
  assert.throws(() => uploadUrl('https://', false), /invalid upload proxy URL.*--uploadproxy-url/);
  assert.equal(
    retriesExhausted(5, 'unexpected return value 400, bad'),
    'error uploading image after 5 retries: unexpected return value 400, bad',
  );
});

test("progress: pb's units and bar on a terminal, a plain line at every 10% otherwise", () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(10 * 2 ** 20), '10.00 MiB');
  assert.equal(formatBytes(3 * 2 ** 30), '3.00 GiB');
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(185), '3m5s');
  assert.equal(formatDuration(3607), '1h0m7s');
  assert.equal(bar(0, 100, 10), '[__________]');
  assert.equal(bar(50, 100, 10), '[---->_____]');
  assert.equal(bar(100, 100, 10), '[----------]');
  assert.equal(bar(0, 0, 4), '[----]');
  assert.equal(progressBarLine(2 ** 20, 10 * 2 ** 20, 500, 10), '1.00 MiB / 10.00 MiB [>_________] 10.00% 2.00 MiB p/s ETA 5s');
  assert.equal(progressPlainLine(5 * 2 ** 20, 10 * 2 ** 20, 1000), 'Uploaded 5.00 MiB / 10.00 MiB (50%), 5.00 MiB/s');
  assert.equal(nextMilestone(-1, 0, 100), 0);
  assert.equal(nextMilestone(0, 9, 100), undefined);
  assert.equal(nextMilestone(0, 10, 100), 10);
  assert.equal(nextMilestone(10, 35, 100), 30);
  assert.equal(nextMilestone(90, 100, 100), 100);
  assert.equal(nextMilestone(100, 100, 100), undefined);

  const lines: string[] = [];
  let clock = 0;
  const shown = progress({ write: (text: string) => lines.push(text), isTTY: false }, () => clock);
  shown.start(1000);
  for (let i = 0; i < 20; i++) {
    clock += 100;
    shown.add(50);
  }
  shown.stop();
  assert.deepEqual(
    lines.map((l) => /\((\d+)%\)/.exec(l)?.[1]),
    ['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100'],
  );
  assert.equal(lines.at(-1), 'Uploaded 1000 B / 1000 B (100%), 500 B/s\n');
  lines.length = 0;
  shown.restart('retrying');
  assert.deepEqual(lines, ['retrying\n', 'Uploaded 0 B / 1000 B (0%), 0 B/s\n']);
});

// ---------------------------------------------------------------------------------------------
// Whole runs against a fake API server and a local upload proxy.

type Reply = unknown | ((body: unknown) => unknown);

/** Answers API calls from a script of [method path, reply] in any order; a reply list is used up one by one. */
function fakeCluster(routes: Record<string, Reply | Reply[]>, namespace = 'ns') {
  const calls: { method: string; path: string; body?: unknown }[] = [];
  const queues = new Map(Object.entries(routes).map(([key, reply]) => [key, Array.isArray(reply) ? [...reply] : [reply]]));
  return {
    namespace,
    calls,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      calls.push({ method, path, ...(body !== undefined && { body }) });
      const key = `${method} ${path}`;
      const queue = queues.get(key);
      if (!queue) throw new ApiError(404, JSON.stringify({ kind: 'Status', message: `no route ${key}` }), key);
      const reply = queue.length > 1 ? queue.shift() : queue[0];
      const value = typeof reply === 'function' ? (reply as (b: unknown) => unknown)(body) : reply;
      if (value instanceof ApiError) throw value;
      return value as T;
    },
  };
}

const notFound = (what: string) => new ApiError(404, JSON.stringify({ kind: 'Status', message: `${what} not found` }), 'GET');

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A local upload proxy: answers HEAD on the async path with `asyncCode`, each POST with the next code of `codes`. */
async function fakeProxy(o: { asyncCode?: number; codes?: number[]; tls?: { cert: string; key: string } } = {}) {
  const received: Received[] = [];
  const codes = [...(o.codes ?? [200])];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      if (req.method === 'HEAD') {
        res.writeHead(req.url === '/v1beta1/upload-async' ? (o.asyncCode ?? 200) : 404);
        return res.end();
      }
      const code = codes.length > 1 ? codes.shift()! : codes[0];
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code === 200 ? '' : `refused with ${code}`);
    });
  };
  const server: Server = o.tls ? createHttpsServer(o.tls, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function imageFile(bytes = 4096): string {
  const file = join(mkdtempSync(join(tmpdir(), 'image-upload-')), 'disk.img');
  writeFileSync(file, Buffer.from(Array.from({ length: bytes }, (_, i) => i % 251)));
  return file;
}

function io() {
  const out: string[] = [];
  const progressLines: string[] = [];
  return {
    out,
    progressLines,
    io: {
      out: (line: string) => out.push(line),
      progressOutput: { write: (text: string) => progressLines.push(text), isTTY: false },
      pollMs: 5,
      processingTimeoutMs: 2000,
      retryDelayMs: () => 0,
    },
  };
}

const A = {
  target: 'cdi.kubevirt.io/storage.upload.target',
  phase: 'cdi.kubevirt.io/storage.pod.phase',
  ready: 'cdi.kubevirt.io/storage.pod.ready',
};
const claimPath = '/api/v1/namespaces/ns/persistentvolumeclaims/disk';
const dvPath = '/apis/cdi.kubevirt.io/v1beta1/namespaces/ns/datavolumes/disk';
const tokenPath = '/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/ns/uploadtokenrequests';
const eventsPath = '/api/v1/namespaces/ns/events';

test('image-upload dv: creates the DataVolume, waits for UploadReady, finds the proxy in CDIConfig, uploads async, waits for processing', async () => {
  const proxy = await fakeProxy();
  const file = imageFile(5000);
  const claim = (annotations: Record<string, string>) => ({ metadata: { name: 'disk', namespace: 'ns', uid: 'c1', annotations } });
  const cluster = fakeCluster({
    [`GET ${claimPath}`]: [
      notFound('persistentvolumeclaims "disk"'),
      claim({ [A.target]: '' }),
      claim({ [A.target]: '', [A.phase]: 'Running', [A.ready]: 'true' }),
      claim({ [A.target]: '', [A.phase]: 'Succeeded' }),
    ],
    'GET /apis/storage.k8s.io/v1/storageclasses/fast': { metadata: { name: 'fast' } },
    'POST /apis/cdi.kubevirt.io/v1beta1/namespaces/ns/datavolumes': (body: unknown) => body,
    [`GET ${dvPath}`]: [
      notFound('datavolumes.cdi.kubevirt.io "disk"'),
      { metadata: { name: 'disk', uid: 'd1' }, status: { phase: 'UploadScheduled', claimName: 'disk' } },
      { metadata: { name: 'disk', uid: 'd1' }, status: { phase: 'UploadScheduled', claimName: 'disk' } },
      { metadata: { name: 'disk', uid: 'd1' }, status: { phase: 'UploadReady', claimName: 'disk' } },
    ],
    [`GET ${eventsPath}`]: { items: [] },
    'GET /apis/cdi.kubevirt.io/v1beta1/cdiconfigs/config': {
      spec: { uploadProxyURLOverride: proxy.url },
      status: { uploadProxyURL: 'ignored' },
    },
    [`POST ${tokenPath}`]: (body: unknown) => ({ ...(body as object), status: { token: 'tok-1' } }),
  });
  const run = io();
  try {
    await imageUpload(cluster, plan(['dv', 'disk'], { size: '1Gi', storageClass: 'fast', imagePath: file }), run.io);
  } finally {
    await proxy.close();
  }
  assert.deepEqual(
    cluster.calls.map((c) => `${c.method} ${c.path}`),
    [
      `GET ${claimPath}`,
      'GET /apis/storage.k8s.io/v1/storageclasses/fast',
      'POST /apis/cdi.kubevirt.io/v1beta1/namespaces/ns/datavolumes',
      `GET ${dvPath}`, // not yet there
      `GET ${dvPath}`, // UploadScheduled: events checked
      `GET ${eventsPath}`,
      `GET ${claimPath}`,
      `GET ${dvPath}`,
      `GET ${dvPath}`, // UploadReady
      'GET /apis/cdi.kubevirt.io/v1beta1/cdiconfigs/config',
      `POST ${tokenPath}`,
      `GET ${claimPath}`, // processing: Running
      `GET ${claimPath}`, // Succeeded
    ],
  );
  assert.deepEqual(cluster.calls[2].body, uploadDataVolume(plan(['dv', 'disk'], { size: '1Gi', storageClass: 'fast' }), 'ns'));
  assert.deepEqual(cluster.calls[10].body, uploadTokenRequest('disk'));
  assert.deepEqual(
    proxy.received.map((r) => `${r.method} ${r.url}`),
    ['HEAD /v1beta1/upload-async', 'POST /v1beta1/upload-async'],
  );
  const post = proxy.received[1];
  assert.equal(post.headers.authorization, 'Bearer tok-1');
  assert.equal(proxy.received[0].headers.authorization, 'Bearer tok-1');
  assert.equal(post.headers['content-type'], 'application/octet-stream');
  assert.equal(post.headers['content-length'], '5000');
  assert.equal(post.headers['transfer-encoding'], undefined);
  assert.equal(post.body.length, 5000);
  assert.equal(post.body[260], 260 % 251);
  assert.deepEqual(run.out, [
    'PVC ns/disk not found ',
    'DataVolume ns/disk created',
    'DV disk not found... ',
    'Waiting for PVC disk upload pod to be ready...',
    'Pod now ready',
    `Uploading data to ${proxy.url}`,
    '',
    '',
    'Uploading data completed successfully, waiting for processing to complete, you can hit ctrl-c without interrupting the progress',
    'Processing completed successfully',
    `Uploading ${file} completed successfully`,
  ]);
  assert.match(run.progressLines.at(-1) ?? '', /^Uploaded 4\.88 KiB \/ 4\.88 KiB \(100%\)/);
});

test('image-upload pvc: creates the claim, waits for its upload pod, uses the sync path without async support, retries a 503', async () => {
  const proxy = await fakeProxy({ asyncCode: 404, codes: [503, 200] });
  const file = imageFile(100);
  const cluster = fakeCluster({
    [`GET ${claimPath}`]: [
      notFound('persistentvolumeclaims "disk"'),
      { metadata: { name: 'disk', annotations: { [A.target]: '', [A.ready]: 'true' } } },
      { metadata: { name: 'disk', annotations: { [A.target]: '', [A.phase]: 'Succeeded' } } },
    ],
    'POST /api/v1/namespaces/ns/persistentvolumeclaims': (body: unknown) => body,
    [`POST ${tokenPath}`]: { status: { token: 'tok' } },
  });
  const run = io();
  try {
    await imageUpload(cluster, plan(['pvc', 'disk'], { size: '1Gi', uploadproxyUrl: proxy.url, forceBind: true, imagePath: file }), run.io);
  } finally {
    await proxy.close();
  }
  assert.deepEqual(
    cluster.calls.map((c) => `${c.method} ${c.path}`),
    [`GET ${claimPath}`, 'POST /api/v1/namespaces/ns/persistentvolumeclaims', `GET ${claimPath}`, `POST ${tokenPath}`, `GET ${claimPath}`],
  );
  assert.equal(
    (cluster.calls[1].body as { metadata: { annotations: Record<string, string> } }).metadata.annotations[
      'cdi.kubevirt.io/storage.bind.immediate.requested'
    ],
    '',
  );
  assert.deepEqual(
    proxy.received.map((r) => `${r.method} ${r.url}`),
    ['HEAD /v1beta1/upload-async', 'POST /v1beta1/upload', 'HEAD /v1beta1/upload-async', 'POST /v1beta1/upload'],
  );
  assert.equal(proxy.received[3].body.length, 100);
  assert.ok(run.out.includes('PersistentVolumeClaim ns/disk created'));
  assert.ok(!run.out.includes('Waiting for PVC disk upload pod to be ready...'), 'ready at the first look: nothing to say');
  assert.ok(
    run.progressLines.some((l) => l.startsWith('Upload failed (unexpected return value 503, refused with 503), retrying (attempt 2 of 5)')),
  );
});

test('a 401 on the first attempt is fatal; a later one gets a new token', async () => {
  const file = imageFile(10);
  const ready = { metadata: { name: 'disk', annotations: { [A.target]: '', [A.ready]: 'true', [A.phase]: 'Running' } } };
  const done = { metadata: { name: 'disk', annotations: { [A.target]: '', [A.phase]: 'Succeeded' } } };

  const refused = await fakeProxy({ codes: [401] });
  const first = fakeCluster({ [`GET ${claimPath}`]: ready, [`POST ${tokenPath}`]: { status: { token: 't' } } });
  await assert.rejects(
    imageUpload(first, plan(['pvc', 'disk'], { uploadproxyUrl: refused.url, imagePath: file }), io().io),
    /^Error: authentication failed: unexpected return value 401, refused with 401/,
  );
  await refused.close();

  const expiring = await fakeProxy({ codes: [500, 401, 200] });
  const tokens = ['t1', 't2'];
  const later = fakeCluster({
    [`GET ${claimPath}`]: [ready, ready, done],
    [`POST ${tokenPath}`]: () => ({ status: { token: tokens.shift() } }),
  });
  await imageUpload(later, plan(['pvc', 'disk'], { uploadproxyUrl: expiring.url, imagePath: file }), io().io);
  await expiring.close();
  const posts = expiring.received.filter((r) => r.method === 'POST');
  assert.deepEqual(
    posts.map((r) => r.headers.authorization),
    ['Bearer t1', 'Bearer t1', 'Bearer t2'],
  );
  assert.equal(later.calls.filter((c) => c.path === tokenPath).length, 2);

  const failing = await fakeProxy({ codes: [400] });
  const exhausted = fakeCluster({ [`GET ${claimPath}`]: ready, [`POST ${tokenPath}`]: { status: { token: 't' } } });
  await assert.rejects(
    imageUpload(exhausted, plan(['pvc', 'disk'], { uploadproxyUrl: failing.url, imagePath: file, retry: 3 }), io().io),
    /^Error: error uploading image after 3 retries: unexpected return value 400, refused with 400$/,
  );
  assert.equal(failing.received.filter((r) => r.method === 'POST').length, 3);
  await failing.close();
});

test('existing claims: --no-create needs one, an upload target is used as it is, others get the annotation with --no-create', async () => {
  const file = imageFile(10);
  await assert.rejects(
    imageUpload(
      fakeCluster({ [`GET ${claimPath}`]: notFound('persistentvolumeclaims "disk"') }),
      plan(['pvc', 'disk'], { noCreate: true, imagePath: file }),
      io().io,
    ),
    /^Error: persistentvolumeclaims "disk" not found: nothing to upload to: create the PVC first, or drop --no-create/,
  );
  await assert.rejects(
    imageUpload(fakeCluster({ [`GET ${claimPath}`]: notFound('x') }), plan(['dv', 'disk'], { imagePath: file }), io().io),
    /^Error: when creating a resource, the size must be specified$/,
  );
  await assert.rejects(
    imageUpload(fakeCluster({}), plan(['pvc', 'disk'], { imagePath: '/does/not/exist' }), io().io),
    /^Error: open \/does\/not\/exist: no such file or directory$/,
  );
  await assert.rejects(
    imageUpload(
      fakeCluster({ [`GET ${claimPath}`]: { metadata: { name: 'disk', annotations: {} } } }),
      plan(['pvc', 'disk'], { imagePath: file }),
      io().io,
    ),
    /^Error: PVC disk not available for upload/,
  );
  await assert.rejects(
    imageUpload(
      fakeCluster({
        [`GET ${claimPath}`]: { metadata: { name: 'disk', annotations: { [A.target]: '' } } },
        [`GET ${dvPath}`]: notFound('dv'),
      }),
      plan(['dv', 'disk'], { imagePath: file }),
      io().io,
    ),
    /^Error: No DataVolume is associated with the existing PVC ns\/disk/,
  );

  // --no-create on a claim that is no upload target: upstream adds the annotation (PUT), then waits as usual.
  const run = io();
  const cluster = fakeCluster({
    [`GET ${claimPath}`]: [{ metadata: { name: 'disk', namespace: 'ns', resourceVersion: '3' } }, notFound('x')],
    [`PUT ${claimPath}`]: (body: unknown) => body,
  });
  await assert.rejects(
    imageUpload(cluster, plan(['pvc', 'disk'], { noCreate: true, imagePath: file, waitSecs: 0 }), run.io),
    /^Error: timed out after 0s waiting for the upload pod of PVC ns\/disk to be ready: .*--wait-secs/,
  );
  assert.deepEqual(cluster.calls[1], {
    method: 'PUT',
    path: claimPath,
    body: { metadata: { name: 'disk', namespace: 'ns', resourceVersion: '3', annotations: { [A.target]: '' } } },
  });
  assert.deepEqual(run.out, ['Using existing PVC ns/disk']);
});

test("a DataVolume's populator claim takes the upload; a bound one is already done", async () => {
  const file = imageFile(10);
  const primePath = '/api/v1/namespaces/ns/persistentvolumeclaims/prime-123';
  const populated = {
    metadata: { name: 'disk', namespace: 'ns', annotations: { 'cdi.kubevirt.io/storage.populator.pvcPrime': 'prime-123' } },
  };
  const cluster = fakeCluster({
    [`GET ${claimPath}`]: populated,
    [`GET ${dvPath}`]: {
      metadata: { name: 'disk', annotations: { 'cdi.kubevirt.io/storage.usePopulator': 'true' } },
      status: { phase: 'WaitForFirstConsumer' },
    },
    [`GET ${primePath}`]: { metadata: { name: 'prime-123', namespace: 'ns', annotations: { [A.target]: '' } } },
  });
  const run = io();
  await assert.rejects(
    imageUpload(cluster, plan(['dv', 'disk'], { noCreate: true, imagePath: file }), run.io),
    /^Error: cannot upload to DataVolume in WaitForFirstConsumer phase, make sure the PVC is Bound, or use force-bind flag$/,
  );
  assert.deepEqual(
    cluster.calls.map((c) => `${c.method} ${c.path}`),
    [`GET ${claimPath}`, `GET ${dvPath}`, `GET ${primePath}`, `GET ${dvPath}`],
  );
  assert.deepEqual(run.out, ['Using existing PVC ns/prime-123']);

  const bound = fakeCluster({
    [`GET ${claimPath}`]: { ...populated, status: { phase: 'Bound' } },
    [`GET ${dvPath}`]: { metadata: { name: 'disk', annotations: { 'cdi.kubevirt.io/storage.usePopulator': 'true' } } },
  });
  await assert.rejects(
    imageUpload(bound, plan(['dv', 'disk'], { imagePath: file }), io().io),
    /^Error: PVC disk already successfully populated$/,
  );
});

test('waits end early on a failure event; without a proxy address the error says where to get one', async () => {
  const file = imageFile(10);
  const pending = { metadata: { name: 'disk', uid: 'c1', annotations: { [A.target]: '' } } };
  const failing = fakeCluster({
    [`GET ${claimPath}`]: pending,
    [`GET ${eventsPath}`]: {
      items: [
        {
          involvedObject: { kind: 'PersistentVolumeClaim', uid: 'c1' },
          reason: 'ProvisioningFailed',
          message: 'storageclass "x" not found',
        },
      ],
    },
  });
  await assert.rejects(
    imageUpload(failing, plan(['pvc', 'disk'], { imagePath: file }), io().io),
    /^Error: Provisioning failed: storageclass "x" not found: fix the storage request/,
  );

  const ready = { metadata: { name: 'disk', annotations: { [A.target]: '', [A.ready]: 'true' } } };
  const unconfigured = fakeCluster({
    [`GET ${claimPath}`]: ready,
    'GET /apis/cdi.kubevirt.io/v1beta1/cdiconfigs/config': { spec: {}, status: {} },
  });
  await assert.rejects(
    imageUpload(unconfigured, plan(['pvc', 'disk'], { imagePath: file }), io().io),
    /^Error: uploadproxy URL not found: pass --uploadproxy-url/,
  );
  const noConfig = fakeCluster({ [`GET ${claimPath}`]: ready });
  await assert.rejects(
    imageUpload(noConfig, plan(['pvc', 'disk'], { imagePath: file }), io().io),
    /no CDIConfig named config: pass the upload proxy with --uploadproxy-url/,
  );

  const missingClass = fakeCluster({
    [`GET ${claimPath}`]: notFound('x'),
    'GET /apis/storage.k8s.io/v1/storageclasses/no-sc': notFound('storageclasses.storage.k8s.io "no-sc"'),
  });
  await assert.rejects(
    imageUpload(missingClass, plan(['pvc', 'disk'], { imagePath: file, size: '1Gi', storageClass: 'no-sc' }), io().io),
    /^Error: storageclasses.storage.k8s.io "no-sc" not found: list the storage classes with kubectl get storageclass$/,
  );
});

test("TLS: --insecure takes the proxy's self-signed certificate; without it the error names the fix", async () => {
  const now = new Date();
  const ca = await createCa(now);
  const tls = await createLeaf(ca, { secret: 'proxy', commonName: 'cdi-uploadproxy', dnsNames: ['localhost'], usage: 'server' }, now);
  const proxy = await fakeProxy({ tls });
  const file = imageFile(64);
  const ready = { metadata: { name: 'disk', annotations: { [A.target]: '', [A.ready]: 'true' } } };
  const done = { metadata: { name: 'disk', annotations: { [A.target]: '', [A.phase]: 'Succeeded' } } };
  try {
    const trusting = fakeCluster({ [`GET ${claimPath}`]: [ready, ready, done], [`POST ${tokenPath}`]: { status: { token: 't' } } });
    await imageUpload(trusting, plan(['pvc', 'disk'], { uploadproxyUrl: proxy.url, insecure: true, imagePath: file }), io().io);
    assert.equal(proxy.received.find((r) => r.method === 'POST')?.body.length, 64);

    const strict = fakeCluster({ [`GET ${claimPath}`]: ready, [`POST ${tokenPath}`]: { status: { token: 't' } } });
    await assert.rejects(
      imageUpload(strict, plan(['pvc', 'disk'], { uploadproxyUrl: proxy.url, imagePath: file, retry: 1 }), io().io),
      /error uploading image after 1 retries: POST https:\/\/127\.0\.0\.1:\d+\/v1beta1\/upload: .*or pass --insecure/,
    );
  } finally {
    await proxy.close();
  }
});
