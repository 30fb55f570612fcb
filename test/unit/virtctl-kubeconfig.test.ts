// virtctl's own kubeconfig reader: files merged as kubectl merges them, the flags that override
// them, and what a request then carries (CA, client certificate, token, basic auth, an exec
// plugin's credential, impersonation), sent through a local server; its YAML reader, against
// the yaml package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { Cluster } from '../../src/virtctl/client.ts';
import { parseKubeconfigYaml } from '../../src/virtctl/kubeconfig-yaml.ts';
import { Connection, kubeconfigFiles, loadKubeconfig, mergeKubeconfig, type KubeconfigData } from '../../src/virtctl/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvts-kubeconfig-'));
const b64 = (text: string) => Buffer.from(text).toString('base64');
const empty = (): KubeconfigData => ({ clusters: new Map(), users: new Map(), contexts: new Map() });

const first = {
  'current-context': 'one',
  clusters: [{ name: 'a', cluster: { server: 'https://a.example:6443/', 'certificate-authority': 'ca.crt' } }],
  users: [{ name: 'alice', user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } }],
  contexts: [{ name: 'one', context: { cluster: 'a', user: 'alice', namespace: 'ns1' } }],
};
const second = {
  'current-context': 'two',
  clusters: [
    { name: 'a', cluster: { server: 'https://ignored.example' } },
    { name: 'b', cluster: { server: 'https://b.example', 'certificate-authority-data': b64('CA-B'), 'tls-server-name': 'api.b' } },
  ],
  users: [{ name: 'bob', user: { token: 'bob-token', as: 'someone', 'as-groups': ['g1'] } }],
  contexts: [
    { name: 'one', context: { cluster: 'b', user: 'bob' } },
    { name: 'two', context: { cluster: 'b', user: 'bob' } },
  ],
};

async function optionsOf(connection: Connection): Promise<RequestOptions & { headers: Record<string, string> }> {
  const options: RequestOptions = {};
  await connection.applyToHTTPSOptions(options);
  return options as RequestOptions & { headers: Record<string, string> };
}

test('files merge as kubectl merges them: the first to name an entry or a current context wins; paths are relative to the file', () => {
  const data = empty();
  mergeKubeconfig(data, first, '/etc/kube/first');
  mergeKubeconfig(data, second, '/home/u/second');
  assert.equal(data.currentContext, 'one');
  assert.equal(data.clusters.get('a')?.server, 'https://a.example:6443/');
  assert.equal(data.clusters.get('a')?.['certificate-authority'], '/etc/kube/ca.crt');
  assert.equal(data.contexts.get('one')?.user, 'alice');
  assert.equal(data.contexts.get('two')?.cluster, 'b');
  assert.deepEqual(kubeconfigFiles('/x', { KUBECONFIG: '/y' }, '/home/u'), ['/x']);
  const file = join(dir, 'exists');
  writeFileSync(file, '{}');
  assert.deepEqual(kubeconfigFiles(undefined, { KUBECONFIG: `/nonexistent::${file}` }, '/home/u'), [file]);
});

test('the current context, or --context, --cluster, --user, --server, --token, --insecure-skip-tls-verify', async () => {
  const data = empty();
  mergeKubeconfig(data, first, '/etc/kube/first');
  mergeKubeconfig(data, second, '/home/u/second');
  const current = new Connection(data);
  assert.equal(current.server, 'https://a.example:6443');
  assert.equal(current.namespace, 'ns1');
  await assert.rejects(new Connection(data).applyToHTTPSOptions({}), /ENOENT.*\/etc\/kube\/ca\.crt/);

  const two = await optionsOf(new Connection(data, { context: 'two' }));
  assert.equal(String(two.ca), 'CA-B');
  assert.equal(two.servername, 'api.b');
  assert.equal(two.headers.Authorization, 'Bearer bob-token');
  assert.deepEqual(new Connection(data, { context: 'two' }).impersonation, { user: 'someone', groups: ['g1'] });

  const overridden = new Connection(data, { context: 'two', user: 'alice', server: 'https://other:6443', token: 'flag-token' });
  assert.equal(overridden.server, 'https://other:6443');
  const withFlags = await optionsOf(overridden);
  assert.equal(String(withFlags.cert), 'CERT');
  assert.equal(String(withFlags.key), 'KEY');
  assert.equal(withFlags.headers.Authorization, 'Bearer flag-token');

  const insecure = await optionsOf(new Connection(data, { context: 'two', insecureSkipTlsVerify: true }));
  assert.equal(insecure.rejectUnauthorized, false);
  assert.equal(insecure.ca, undefined);

  assert.throws(() => new Connection(data, { context: 'nope' }), /context was not found for specified context: nope/);
  assert.throws(() => new Connection(empty()), /no cluster is configured/);
});

test('basic auth, a token file, and an exec plugin (client.authentication.k8s.io) with its env and KUBERNETES_EXEC_INFO', async () => {
  writeFileSync(join(dir, 'token'), 'file-token\n');
  const plugin = join(dir, 'plugin.sh');
  writeFileSync(
    plugin,
    '#!/bin/sh\ncase "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3 ;; esac\n' +
      'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s-%s"}}\' "$PREFIX" "$1"\n',
  );
  chmodSync(plugin, 0o755);
  const data = empty();
  mergeKubeconfig(
    data,
    {
      clusters: [{ name: 'c', cluster: { server: 'https://c' } }],
      users: [
        { name: 'basic', user: { username: 'u', password: 'p' } },
        { name: 'file', user: { 'token-file': 'token' } },
        { name: 'exec', user: { exec: { command: './plugin.sh', args: ['x'], env: [{ name: 'PREFIX', value: 'exec' }] } } },
      ],
      contexts: ['basic', 'file', 'exec'].map((user) => ({ name: user, context: { cluster: 'c', user } })),
    },
    join(dir, 'config'),
  );
  assert.equal((await optionsOf(new Connection(data, { context: 'basic' }))).auth, 'u:p');
  assert.equal((await optionsOf(new Connection(data, { context: 'file' }))).headers.Authorization, 'Bearer file-token');
  const exec = new Connection(data, { context: 'exec' });
  assert.equal((await optionsOf(exec)).headers.Authorization, 'Bearer exec-x');
  assert.equal((await optionsOf(exec)).headers.Authorization, 'Bearer exec-x', 'the credential is kept for the next request');
});

test('YAML and JSON files load; with none, kubectl’s localhost:8080', async () => {
  const yamlFile = join(dir, 'yaml-config');
  writeFileSync(
    yamlFile,
    'apiVersion: v1\nkind: Config\ncurrent-context: y\nclusters:\n- name: y\n  cluster:\n    server: https://y:6443\ncontexts:\n- name: y\n  context: {cluster: y, namespace: yns}\n',
  );
  const jsonFile = join(dir, 'json-config');
  writeFileSync(jsonFile, JSON.stringify(second));
  const data = await loadKubeconfig([yamlFile, jsonFile], {});
  assert.equal(new Connection(data).server, 'https://y:6443');
  assert.equal(new Connection(data).namespace, 'yns');
  assert.equal(new Connection(data, { context: 'two' }).server, 'https://b.example');
  assert.equal(new Connection(await loadKubeconfig([], {})).server, 'http://localhost:8080');
});

test('Cluster sends the kubeconfig’s credentials and --as, --as-group, and throws the Status message of a refusal', async () => {
  const seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.url?.endsWith('/missing')) {
        res
          .writeHead(404, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ kind: 'Status', message: 'vm "missing" not found' }));
      } else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const config = join(dir, 'local-config');
    writeFileSync(
      config,
      JSON.stringify({
        'current-context': 'local',
        clusters: [{ name: 'local', cluster: { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } }],
        users: [{ name: 'me', user: { token: 'secret' } }],
        contexts: [{ name: 'local', context: { cluster: 'local', user: 'me', namespace: 'from-config' } }],
      }),
    );
    const cluster = await Cluster.connect({ kubeconfig: config, as: 'alice', asGroup: ['devs', 'ops'] }, {});
    assert.equal(cluster.namespace, 'from-config');
    assert.deepEqual(await cluster.request('PUT', '/apis/x/start', { paused: false }), { ok: true });
    assert.equal(seen[0].method, 'PUT');
    assert.equal(seen[0].headers.authorization, 'Bearer secret');
    assert.equal(seen[0].headers['impersonate-user'], 'alice');
    assert.equal(seen[0].headers['impersonate-group'], 'devs, ops');
    assert.equal(seen[0].headers['content-type'], 'application/json');
    assert.equal(seen[0].body, '{"paused":false}');
    await assert.rejects(cluster.request('GET', '/apis/x/missing'), (error: Error & { status?: string; code?: number }) => {
      assert.equal(error.code, 404);
      assert.equal(error.status, 'vm "missing" not found');
      return true;
    });
    assert.equal((await Cluster.connect({ kubeconfig: config, namespace: 'flag' }, {})).namespace, 'flag');
  } finally {
    server.close();
  }
});

/** kubectl's own style: block sequences at their key's indentation, `{}` for an empty map. */
const KUBECTL_WRITTEN = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64('CA')}
    server: https://192.0.2.2:6443
  name: kubevirt-ts
contexts:
- context:
    cluster: kubevirt-ts
    namespace: "default"
    user: admin
  name: admin@kubevirt-ts
current-context: admin@kubevirt-ts # the one in use
kind: Config
preferences: {}
users:
- name: admin
  user:
    client-certificate-data: ${b64('CERT')}
    client-key-data: ${b64('KEY')}
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - 'eu-west-1'
      - eks
      - get-token
      command: aws
      env: null
      interactiveMode: IfAvailable
      provideClusterInfo: false
`;

test("kubectl's YAML is read without the yaml package, to the same data", () => {
  assert.deepEqual(parseKubeconfigYaml(KUBECTL_WRITTEN), parseYaml(KUBECTL_WRITTEN));
  assert.deepEqual(parseKubeconfigYaml('users:\n  - name: a\n    user: {token: "t,1", as-groups: [a, "b c"]}\n'), {
    users: [{ name: 'a', user: { token: 't,1', 'as-groups': ['a', 'b c'] } }],
  });
  // What it leaves to the yaml package: block scalars, anchors, tags, numbers, plain scalars over lines.
  for (const text of ['a: |\n  x\n', 'a: &x b\nc: *x\n', 'a: !!str b\n', 'a: 1\n', 'a: b\n  c\n', 'a: b\n---\nc: d\n'])
    assert.equal(parseKubeconfigYaml(text), undefined, text);
});

test('the YAML reader leaves a document with white space other than spaces and tabs to the package', () => {
  // fast-check found it: a value of one no-break space, which YAML reads as a string.
  assert.equal(parseKubeconfigYaml('"": \u00a0\n'), undefined);
  assert.deepEqual(parseYaml('"": \u00a0\n'), { '': '\u00a0' });
});

test('the YAML reader reads what the yaml package reads, or leaves it to the package', () => {
  const key = fc.oneof(
    fc.constantFrom('name', 'server', 'user', 'as-groups', 'a b', '-x', 'k:v', "it's", '#c'),
    fc.string({ maxLength: 6, unit: 'binary' }),
  );
  const scalar = fc.oneof(
    fc.string({ maxLength: 12, unit: 'binary' }),
    fc.constantFrom('https://a:6443', '--region', 'a # b', 'a:b', 'true', 'null', '~', '-', '"q"', "'", ' lead', 'trail ', 'x\ny'),
    fc.boolean(),
    fc.constant(null),
    fc.integer(),
  );
  const value = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      scalar,
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(key, tie('value'), { maxKeys: 3 }),
    ),
  })).value;
  fc.assert(
    fc.property(value, fc.constantFrom(false, true), fc.constantFrom(0, 20, 80), (data, indentSeq, lineWidth) => {
      const text = stringifyYaml(data, { indentSeq, lineWidth });
      const ours = parseKubeconfigYaml(text);
      if (ours !== undefined) assert.deepEqual(ours, parseYaml(text), text);
    }),
    { numRuns: 2000 },
  );
});
