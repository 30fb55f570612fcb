// The local cluster works as a real one: pods from our registry, pod and Service
// networking, cluster DNS, and kube-apiserver calling webhooks and APIServices served by pods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, eventually, getFromPod, kubectl, kubectlResult } from './kube.ts';

const NS = 'kvts-smoke';
const IMAGE = 'registry:5000/kubevirt-ts/e2e-servers:devel';
const GROUP = 'smoke.kubevirt-ts.io';

/** A CA and a serving certificate for the smoke service, made with openssl. */
function makeTls(): { ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kvts-smoke-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=smoke-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=smoke.${NS}.svc`);
  writeFileSync(join(dir, 'ext'), `subjectAltName=DNS:smoke.${NS}.svc,DNS:smoke.${NS}.svc.cluster.local\n`);
  run(
    'x509',
    '-req',
    '-in',
    'tls.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'tls.crt',
    '-days',
    '1',
    '-extfile',
    'ext',
  );
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { ca: read('ca.crt'), cert: read('tls.crt'), key: read('tls.key') };
}

const tls = makeTls();
const b64 = (s: string) => Buffer.from(s).toString('base64');

before(async () => {
  kubectlResult(['delete', 'namespace', NS, '--wait=true', '--timeout=60s']);
  kubectl(['create', 'namespace', NS]);
  apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'smoke-tls', namespace: NS },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(tls.cert), 'tls.key': b64(tls.key) },
  });
  apply({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'smoke', namespace: NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'smoke' } },
      template: {
        metadata: { labels: { app: 'smoke' } },
        spec: {
          containers: [
            {
              name: 'server',
              image: IMAGE,
              command: ['node', 'test/servers/smoke-server.ts'],
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [{ containerPort: 8080 }, { containerPort: 8443 }],
              readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 },
              volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
            },
          ],
          volumes: [{ name: 'tls', secret: { secretName: 'smoke-tls' } }],
        },
      },
    },
  });
  apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'smoke', namespace: NS },
    spec: {
      selector: { app: 'smoke' },
      ports: [
        { name: 'http', port: 80, targetPort: 8080 },
        { name: 'https', port: 443, targetPort: 8443 },
      ],
    },
  });
  kubectl(['rollout', 'status', `deployment/smoke`, '-n', NS, '--timeout=180s']);
});

after(() => {
  kubectlResult(['delete', 'validatingwebhookconfiguration', 'kvts-smoke']);
  kubectlResult(['delete', 'apiservice', `v1.${GROUP}`]);
  kubectlResult(['delete', 'namespace', NS, '--wait=false']);
});

function pods(): { name: string; ip: string }[] {
  const list = JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', 'app=smoke', '-o', 'json']));
  return list.items.map((p: { metadata: { name: string }; status: { podIP: string } }) => ({ name: p.metadata.name, ip: p.status.podIP }));
}

test('the node is Ready and the pods from our registry run', () => {
  const node = JSON.parse(kubectl(['get', 'node', 'node01', '-o', 'json']));
  assert.equal(node.status.conditions.find((c: { type: string }) => c.type === 'Ready').status, 'True');
  assert.equal(pods().length, 2);
});

test('a pod reaches another pod by its IP', () => {
  const [a, b] = pods();
  assert.equal(getFromPod(NS, a.name, `http://${b.ip}:8080/`), `hello from ${b.name}`);
});

test('the host and a pod reach the pods through a ClusterIP Service', async () => {
  const ip = kubectl(['get', 'service', 'smoke', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}']);
  const names = new Set(pods().map((p) => p.name));
  // kube-proxy programs the Service a moment after the endpoints become ready.
  const fromHost = await eventually('the Service to answer the host', 30, () =>
    execFileSync('curl', ['-sf', '--max-time', '2', `http://${ip}/`], { encoding: 'utf8' }).trim(),
  );
  assert.ok(names.has(fromHost.replace('hello from ', '')), fromHost);
  const [a] = pods();
  const fromPod = getFromPod(NS, a.name, `http://${ip}/`);
  assert.ok(names.has(fromPod?.replace('hello from ', '') ?? ''), fromPod);
});

test('pods resolve Services by name through kube-system/kube-dns, the nameserver the kubelet gives them', () => {
  const dns = kubectl(['get', 'service', 'kube-dns', '-n', 'kube-system', '-o', 'jsonpath={.spec.clusterIP}']);
  const [a] = pods();
  const resolvConf = kubectl(['exec', '-n', NS, a.name, '--', 'cat', '/etc/resolv.conf']);
  assert.match(resolvConf, new RegExp(`^nameserver ${dns.replaceAll('.', '\\.')}$`, 'm'));
  assert.match(resolvConf, new RegExp(`^search ${NS}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local`, 'm'));
  const names = new Set(pods().map((p) => p.name));
  for (const url of [`http://smoke.${NS}.svc.cluster.local/`, 'http://smoke/']) {
    const answer = getFromPod(NS, a.name, url);
    assert.ok(names.has(answer?.replace('hello from ', '') ?? ''), `${url}: ${answer}`);
  }
  assert.equal(getFromPod(NS, a.name, 'http://no-such-service/'), undefined);
});

test('kube-apiserver calls a validating webhook served by the pods', async () => {
  apply({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'kvts-smoke' },
    webhooks: [
      {
        name: 'smoke.kubevirt-ts.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
        clientConfig: { caBundle: b64(tls.ca), service: { name: 'smoke', namespace: NS, path: '/validate', port: 443 } },
      },
    ],
  });
  const denied = await eventually('the webhook to deny', 60, () => {
    const r = kubectlResult(['create', 'configmap', `deny-${Date.now()}`, '-n', NS, '--from-literal=deny=1']);
    return r.status !== 0 && r.stderr.includes('denied by smoke webhook') ? r.stderr : undefined;
  });
  assert.match(denied, /admission webhook "smoke.kubevirt-ts.io" denied the request/);
  assert.equal(kubectlResult(['create', 'configmap', 'allowed', '-n', NS, '--from-literal=ok=1']).status, 0);
});

test('kube-apiserver proxies an aggregated API to the pods, with the requesting user', async () => {
  apply({
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: `v1.${GROUP}` },
    spec: {
      group: GROUP,
      version: 'v1',
      groupPriorityMinimum: 1000,
      versionPriority: 100,
      caBundle: b64(tls.ca),
      service: { name: 'smoke', namespace: NS, port: 443 },
    },
  });
  await eventually('the APIService to be Available', 90, () => {
    const svc = JSON.parse(kubectl(['get', 'apiservice', `v1.${GROUP}`, '-o', 'json']));
    return svc.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Available' && c.status === 'True');
  });
  const answer = JSON.parse(kubectl(['get', '--raw', `/apis/${GROUP}/v1/hello`]));
  assert.equal(answer.user, 'kubernetes-admin');
  assert.ok(pods().some((p) => p.name === answer.pod));
});
