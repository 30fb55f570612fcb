// virt-controller's /healthz and /leader, as upstream's test suite calls them: HTTPS on the
// component's port through a port-forward, any certificate accepted, a JSON body read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { healthEndpoints, serveHealth } from '../../src/lib/health.ts';
import { createCa, createLeaf } from '../../src/operator/certs.ts';
import { capturedLog } from '../helpers/wiring.ts';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('/healthz answers 200 over TLS with the API server version and the config resourceVersion; /leader tells leadership', async () => {
  const now = new Date();
  const ca = await createCa(now);
  const leaf = await createLeaf(ca, { secret: 's', commonName: 'virt-controller.kubevirt.svc', dnsNames: [], usage: 'server' }, now);
  let leading = false;
  let asked = 0;
  const server = serveHealth({
    port: 0,
    tls: () => leaf,
    state: {
      apiserverVersion: async () => {
        asked++;
        return { major: '1', minor: '34', gitVersion: 'v1.34.4' };
      },
      configResourceVersion: () => '4242',
      leader: () => leading,
    },
    log: capturedLog().log,
  });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const health = await get(port, '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), {
      apiserver: { connectivity: 'ok', version: { major: '1', minor: '34', gitVersion: 'v1.34.4' } },
      'config-resource-version': '4242',
    });
    await get(port, '/healthz/');
    // Upstream's suite asks for //healthz (its URL joins a base ending in / with the path).
    assert.equal(JSON.parse((await get(port, '//healthz')).body)['config-resource-version'], '4242');
    assert.equal(asked, 1, 'the version is asked for once, then kept');
    assert.deepEqual(JSON.parse((await get(port, '/leader')).body), { apiserver: { leader: 'false' } });
    leading = true;
    assert.deepEqual(JSON.parse((await get(port, '/leader')).body), { apiserver: { leader: 'true' } });
    assert.equal((await get(port, '/elsewhere')).status, 404);
  } finally {
    server.close();
  }
});

test('/healthz is 500 with the error while the API server cannot be reached, and recovers', async () => {
  let up = false;
  const answer = healthEndpoints({
    apiserverVersion: async () => {
      if (!up) throw new Error('connect ECONNREFUSED 10.96.0.1:443');
      return { gitVersion: 'v1.34.4' };
    },
    configResourceVersion: () => '',
  });
  assert.deepEqual(await answer('/healthz'), {
    status: 500,
    body: { apiserver: { connectivity: 'failed', error: 'connect ECONNREFUSED 10.96.0.1:443' }, 'config-resource-version': '' },
  });
  up = true;
  assert.equal((await answer('/healthz'))?.status, 200);
  assert.equal(await answer('/leader'), undefined, 'no /leader where nothing is elected');
});

test('/healthz keeps an answer of the API server for a while, then asks again: a component cut off from it turns unhealthy, also when the ask hangs', async () => {
  let clock = 0;
  let reach: 'up' | 'refused' | 'hangs' = 'up';
  let asked = 0;
  const answer = healthEndpoints(
    {
      apiserverVersion: () => {
        asked++;
        if (reach === 'hangs') return new Promise(() => undefined);
        return reach === 'up' ? Promise.resolve({ gitVersion: 'v1.34.4' }) : Promise.reject(new Error('connect EINVAL'));
      },
      configResourceVersion: () => '',
    },
    () => clock,
    { keptMs: 10_000, timeoutMs: 50 },
  );
  assert.equal((await answer('/healthz'))?.status, 200);
  reach = 'refused';
  clock = 10_000;
  assert.equal((await answer('/healthz'))?.status, 200, 'still within the time an answer is kept');
  assert.equal(asked, 1);
  clock = 10_001;
  assert.equal((await answer('/healthz'))?.status, 500);
  reach = 'hangs';
  const hung = await answer('/healthz');
  assert.equal(hung?.status, 500);
  assert.match(JSON.stringify(hung?.body), /did not answer within 0.05 s/);
  reach = 'up';
  assert.equal((await answer('/healthz'))?.status, 200);
  assert.equal(asked, 4);
});
