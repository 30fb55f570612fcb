// kubevirt-ts's components share one connection pool per cluster and user for
// their API calls. client-node alone opens (and leaves open) a new TLS
// connection for every call; this counts connections at a local TLS server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createCa, createLeaf } from '../../src/operator/certs.ts';
import { PooledKubeConfig } from '../../src/lib/kube.ts';

test('API calls share one connection; every call without the pool opens its own', async () => {
  const now = new Date();
  const ca = await createCa(now);
  const serving = await createLeaf(ca, { secret: 'x', commonName: 'localhost', dnsNames: ['localhost'], usage: 'server' }, now);
  let connections = 0;
  const server = createServer({ cert: serving.cert, key: serving.key }, (_request, response) => {
    response.setHeader('Content-Type', 'application/json');
    response.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const options = {
    clusters: [
      {
        name: 'c',
        server: `https://localhost:${(server.address() as AddressInfo).port}`,
        caData: Buffer.from(ca.cert).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  };
  const callsWith = async (kc: KubeConfig) => {
    kc.loadFromOptions(options);
    const core = kc.makeApiClient(CoreV1Api);
    connections = 0;
    for (let i = 0; i < 10; i++) await core.listNamespace();
    return connections;
  };
  try {
    assert.equal(await callsWith(new KubeConfig()), 10, 'client-node alone: a connection per call');
    // undici may open a second one when a call follows the first before its connection is idle again.
    const pooled = await callsWith(new PooledKubeConfig());
    assert.ok(pooled <= 2, `pooled: ${pooled} connections for 10 calls`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
