// A test server for the cluster smoke test, run in a pod from the e2e-servers image.
// Plain HTTP on :8080 says which pod answered; HTTPS on :8443 (certificate from
// /tls) serves a validating webhook and an aggregated API group.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

const POD = process.env.POD_NAME ?? 'unknown';
const GROUP = 'smoke.kubevirt-ts.io';

function json(res: ServerResponse, code: number, body: unknown) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

createServer((req, res) => {
  if (req.url === '/healthz') return json(res, 200, { ok: true });
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${POD}\n`);
}).listen(8080);

createTlsServer({ cert: readFileSync('/tls/tls.crt'), key: readFileSync('/tls/tls.key') }, async (req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/validate') && req.method === 'POST') {
    const review = JSON.parse(await body(req));
    const data = review.request?.object?.data ?? {};
    const allowed = !('deny' in data);
    return json(res, 200, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: review.request.uid,
        allowed,
        ...(allowed ? {} : { status: { code: 403, message: `denied by smoke webhook in ${POD}` } }),
      },
    });
  }
  if (url === `/apis/${GROUP}/v1`) {
    return json(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${GROUP}/v1`, resources: [] });
  }
  if (url === `/apis/${GROUP}/v1/hello`) {
    return json(res, 200, { pod: POD, user: req.headers['x-remote-user'] ?? null });
  }
  if (url === '/apis' || url === `/apis/${GROUP}`) {
    return json(res, 200, {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: GROUP,
      versions: [{ groupVersion: `${GROUP}/v1`, version: 'v1' }],
      preferredVersion: { groupVersion: `${GROUP}/v1`, version: 'v1' },
    });
  }
  json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, message: `no ${url}` });
}).listen(8443);

console.log(JSON.stringify({ component: 'smoke-server', level: 'info', msg: 'listening on 8080 and 8443', pod: POD }));
