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
import { fillPodClientTls, fillPodServerName, issueFillPodCert, FILL_POD_CERT_LIFETIME_MS } from '../../src/cdi/fill-pod-tls.ts';
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
