// The web console's server, on a real TLS port: the page's files with their
// security headers, nothing else of the file system, and the answers it gives
// itself before anything reaches kube-apiserver (no token, a path that is not
// the API's, a stream that is not a console or VNC). Nothing here reaches a
// kube-apiserver: test/e2e/console-web.test.ts drives the forwarding.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { ConsoleServer } from '../../src/console/server.ts';
import { createCa, createLeaf } from '../../src/lib/pki.ts';
import { createLogger } from '../../src/lib/log.ts';

const ca = await createCa(new Date());
const leaf = await createLeaf(ca, { secret: 'certs', commonName: 'virt-console', dnsNames: ['localhost'], usage: 'server' }, new Date());
const dir = mkdtempSync(join(tmpdir(), 'console-web-'));
writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
writeFileSync(join(dir, 'app.js'), 'export {};');
writeFileSync(join(dir, 'notes.md'), 'not served');
let metricsAsked = 0;
const server = new ConsoleServer({
  // Nothing listens there: a request that got past the server's own checks would fail with 502.
  apiServer: 'https://127.0.0.1:1',
  apiServerCa: () => Buffer.from(ca.cert),
  servingCertificate: () => ({ cert: Buffer.from(leaf.cert), key: Buffer.from(leaf.key) }),
  staticDir: dir,
  metrics: {
    vmi: async () => {
      metricsAsked++;
      throw new Error('not to be asked');
    },
    usage: async () => {
      metricsAsked++;
      throw new Error('not to be asked');
    },
  },
  log: createLogger('test', {}, () => {}),
});
const { port } = await server.start(0, '127.0.0.1');
const tls = { ca: ca.cert, servername: 'localhost' } as const;
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, ca: ca.cert, servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the page and its bundle are served with a content security policy; other files are not', async () => {
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
  assert.equal((await get('/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
  for (const path of ['/notes.md', '/app.css', '/../package.json', '/etc/passwd']) assert.equal((await get(path)).status, 404, path);
});

test('an API request without a bearer token is answered 401 by the server itself; with one it goes to kube-apiserver', async () => {
  const refused = await get('/api/v1/namespaces');
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).kind, 'Status');
  const forwarded = await get('/api/v1/namespaces', { authorization: 'Bearer abc' });
  assert.equal(forwarded.status, 502);
  assert.match(JSON.parse(forwarded.body).message, /^kube-apiserver: /);
});

test('metrics are asked of their source only after kube-apiserver let the token read the VMI; no token is a 401', async () => {
  const vmi = '/console/v1/namespaces/ns/virtualmachineinstances/vm-1/metrics?minutes=60';
  const usage = '/console/v1/namespaces/ns/usage';
  for (const path of [vmi, usage]) {
    assert.equal((await get(path)).status, 401, path);
    const unread = await get(path, { authorization: 'Bearer abc' });
    assert.equal(unread.status, 502, path);
    assert.match(JSON.parse(unread.body).message, /^kube-apiserver: /);
  }
  assert.equal(metricsAsked, 0);
  // Not a DNS name: not a metrics path at all.
  assert.equal((await get('/console/v1/namespaces/NS%22/usage', { authorization: 'Bearer abc' })).status, 404);
});

function upgrade(path: string, protocols: string[]) {
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, protocols, tls);
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
    ws.once('open', () => resolve(101));
  });
}

test('streams: only console and vnc, only with a token; an unreachable kube-apiserver is a refusal the page can read', async () => {
  const console = '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm/console';
  assert.equal(await upgrade(console, ['plain.kubevirt.io']), 401);
  assert.equal(
    await upgrade('/api/v1/namespaces/ns/pods/p/exec', ['plain.kubevirt.io', 'base64url.bearer.authorization.k8s.io.YWJj']),
    404,
  );
  const ws = new WebSocket(`wss://127.0.0.1:${port}${console}`, ['plain.kubevirt.io', 'base64url.bearer.authorization.k8s.io.YWJj'], tls);
  const messages: string[] = [];
  ws.on('message', (data, isBinary) => !isBinary && messages.push(data.toString()));
  const [code] = await new Promise<[number, string]>((resolve) => ws.once('close', (c, r) => resolve([c, r.toString()])));
  assert.equal(ws.protocol, 'plain.kubevirt.io', 'the token protocol is never answered');
  assert.equal(code, 4502);
  assert.match(JSON.parse(messages[0]).message, /^kube-apiserver: /);
});
