// The fill pods' serving certificates: issued by cdi-controller's CA for a
// name derived from the pod, accepted by a client that trusts that CA and
// checks that name while dialling an IP, refused for another pod's name or
// another CA.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import * as x509 from '@peculiar/x509';
import type { V1Pod } from '@kubernetes/client-node';
import {
  FILL_POD_CERT_LIFETIME_MS,
  fillPodClientTls,
  fillPodServerName,
  fillPodTls,
  issueFillPodCert,
  withFillPodTls,
} from '../../src/cdi/fill-pod-tls.ts';
import { FILL_POD_TLS_ENV } from '../../src/contract/cdi.ts';
import { createCa, type KeyPair } from '../../src/lib/pki.ts';

const NOW = new Date();

async function handshake(server: KeyPair, client: ReturnType<typeof fillPodClientTls>): Promise<string | undefined> {
  const listener = createServer({ cert: server.cert, key: server.key }, (socket) => socket.end('ok'));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as AddressInfo;
  try {
    return await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...client }, () => {
        socket.end();
        resolve(undefined);
      });
      socket.on('error', (error: Error) => resolve(error.message));
    });
  } finally {
    listener.close();
  }
}

test('a fill pod certificate names the pod, serves only, and lives a week at most', async () => {
  const ca = await createCa(NOW);
  const leaf = await issueFillPodCert(ca, 'ns', 'cdi-upload-up', NOW);
  const cert = new x509.X509Certificate(leaf.cert);
  assert.equal(cert.subject, `CN=${fillPodServerName('ns', 'cdi-upload-up')}`);
  assert.equal(fillPodServerName('ns', 'cdi-upload-up'), 'cdi-upload-up.ns.fill-pod.cdi.kubevirt.io');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  assert.deepEqual(
    san?.names.items.map((n) => n.value),
    ['cdi-upload-up.ns.fill-pod.cdi.kubevirt.io'],
  );
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  assert.deepEqual([...(eku?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);
  assert.ok(cert.notAfter.getTime() <= NOW.getTime() + FILL_POD_CERT_LIFETIME_MS);
  assert.equal(cert.issuer, new x509.X509Certificate(ca.cert).subject);
});

test("a client trusting the CA reaches the pod by IP; another pod's name or another CA is refused", async () => {
  const ca = await createCa(NOW);
  const leaf = await issueFillPodCert(ca, 'ns', 'cdi-upload-up', NOW);
  assert.equal(await handshake(leaf, fillPodClientTls(ca.cert, 'ns', 'cdi-upload-up')), undefined);
  assert.match((await handshake(leaf, fillPodClientTls(ca.cert, 'ns', 'importer-other'))) ?? '', /altnames|Hostname/i);
  assert.match((await handshake(leaf, fillPodClientTls(ca.cert, 'other', 'cdi-upload-up'))) ?? '', /altnames|Hostname/i);
  const stranger = await createCa(NOW);
  assert.match((await handshake(leaf, fillPodClientTls(stranger.cert, 'ns', 'cdi-upload-up'))) ?? '', /certificate|issuer|verify/i);
});

test('a bundle of two CAs (after a rotation) accepts pods of either; the mounted CA is read again after a minute', async () => {
  const old = await createCa(NOW);
  const current = await createCa(NOW);
  const bundle = current.cert + old.cert;
  const oldPod = await issueFillPodCert(old, 'ns', 'importer-a', NOW);
  const newPod = await issueFillPodCert(current, 'ns', 'importer-b', NOW);
  assert.equal(await handshake(oldPod, fillPodClientTls(bundle, 'ns', 'importer-a')), undefined);
  assert.equal(await handshake(newPod, fillPodClientTls(bundle, 'ns', 'importer-b')), undefined);

  let clock = NOW.getTime();
  let reads = 0;
  let held = { signer: old, bundle: old.cert };
  const tls = fillPodTls(
    () => {
      reads++;
      return held;
    },
    () => new Date(clock),
  );
  const issuer = (pem: string) => new x509.X509Certificate(pem).issuer;
  assert.equal(issuer((await tls.issue('ns', 'p')).cert), new x509.X509Certificate(old.cert).subject);
  held = { signer: current, bundle };
  clock += 30_000;
  assert.equal(tls.bundle(), old.cert, 'read at most every minute');
  clock += 31_000;
  assert.equal(tls.bundle(), bundle);
  assert.equal(issuer((await tls.issue('ns', 'p')).cert), new x509.X509Certificate(current.cert).subject);
  assert.equal(reads, 2);
});

test("withFillPodTls adds the pod's certificate and key, and the CA bundle only when asked, replacing earlier ones", () => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'ns' },
    spec: {
      containers: [
        {
          name: 'c',
          env: [
            { name: 'CDI_TASK', value: '{}' },
            { name: FILL_POD_TLS_ENV.cert, value: 'stale' },
          ],
        },
      ],
    },
  };
  const served = withFillPodTls(pod, { cert: 'C', key: 'K' });
  assert.deepEqual(served.spec!.containers[0].env, [
    { name: 'CDI_TASK', value: '{}' },
    { name: 'TLS_CERT', value: 'C' },
    { name: 'TLS_KEY', value: 'K' },
  ]);
  const client = withFillPodTls(pod, { cert: 'C', key: 'K', caBundle: 'B' });
  assert.deepEqual(client.spec!.containers[0].env?.at(-1), { name: 'CDI_FILL_POD_CA', value: 'B' });
  assert.equal(pod.spec!.containers[0].env!.length, 2, 'the plan’s pod is left as it was');
});
