// The migration stream between two handlers, over real sockets and TLS as the
// handlers set it up: QEMU closing its end right after its last byte (as it
// does when a migration completes) must not cut off what is still on its way to
// a target that reads slowly; a failure ends both sides at once. And the source's
// report of a completed migration carries QEMU's settled figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect, createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forwardMigration, listenForMigration, splice } from '../../src/handler/migration-proxy.ts';
import { createCa, createLeaf } from '../../src/lib/pki.ts';
import { createLogger } from '../../src/lib/log.ts';
import { migrateOut } from '../../src/launcher/migration.ts';

const log = createLogger('test', {}, () => undefined);
const ca = await createCa(new Date());
const leaf = await createLeaf(ca, { secret: 'handler', commonName: 'virt-handler', dnsNames: [], usage: 'both' }, new Date());
const tls = { cert: Buffer.from(leaf.cert), key: Buffer.from(leaf.key), ca: Buffer.from(ca.cert) };
const tempDir = () => mkdtempSync(join(tmpdir(), 'kvts-proxy-'));

test('all a source QEMU sent before closing reaches a slow target QEMU through both handlers, then the end', async () => {
  const payload = Buffer.alloc(4 * 1024 * 1024, 7);
  let received = 0;
  const targetDone = Promise.withResolvers<void>();
  // The target QEMU (niced, under TCG) reads slowly, so the stream's tail is still in the handlers when the source closes.
  const targetQemu = createServer((socket) => {
    const reading = setInterval(() => {
      const chunk: Buffer | null = socket.read(4096) ?? socket.read();
      if (chunk) received += chunk.length;
    }, 1);
    socket.on('end', () => {
      clearInterval(reading);
      targetDone.resolve();
    });
  });
  const targetSocket = join(tempDir(), 'migration-in.sock');
  targetQemu.listen(targetSocket);
  await once(targetQemu, 'listening');
  const listener = await listenForMigration('127.0.0.1', tls, async () => connect(targetSocket), log);
  const sourceDir = tempDir();
  const forwarder = await forwardMigration(sourceDir, 'migration-out.sock', { host: '127.0.0.1', port: listener.port }, tls, log);
  const sourceQemu = createConnection(join(sourceDir, 'migration-out.sock'));
  await once(sourceQemu, 'connect');
  sourceQemu.end(payload);
  await once(sourceQemu, 'finish');
  sourceQemu.destroy();
  await targetDone.promise;
  assert.equal(received, payload.length);
  forwarder.close();
  listener.close();
  targetQemu.close();
});

test('a side that fails ends the other at once', async () => {
  const far = Promise.withResolvers<Socket>();
  const near = Promise.withResolvers<Socket>();
  const path = (name: string) => join(tempDir(), name);
  const readerPath = path('reader.sock');
  const reader = createServer((socket) => far.resolve(socket)).listen(readerPath);
  const proxyPath = path('proxy.sock');
  const proxy = createServer((inbound) => {
    inbound.on('error', () => undefined);
    splice(inbound, createConnection(readerPath));
    near.resolve(inbound);
  }).listen(proxyPath);
  await Promise.all([once(reader, 'listening'), once(proxy, 'listening')]);
  const sender = createConnection(proxyPath);
  await once(sender, 'connect');
  const farEnd = await far.promise;
  const closed = once(farEnd, 'close');
  (await near.promise).destroy(new Error('the stream broke'));
  await closed;
  sender.destroy();
  proxy.close();
  reader.close();
});

test("a completed migration's figures are read once QEMU has worked them out, not as the 0s of the moment it flips to completed", async () => {
  const answers = [
    { status: 'completed', 'total-time': 0, downtime: 0 },
    { status: 'completed', 'total-time': 0, downtime: 0 },
    { status: 'completed', 'total-time': 314, downtime: 40 },
  ];
  const qmp = async (command: string) => (command === 'query-migrate' ? answers.shift() : {});
  const options = {
    id: 'm',
    uri: 'unix:/nowhere',
    block: false,
    bandwidthBytesPerSecond: 0,
    completionTimeoutPerGiB: 150,
    progressTimeoutSeconds: 150,
    allowPostCopy: false,
    allowAutoConverge: false,
  };
  const outcome = await migrateOut(
    qmp,
    options,
    createLogger('virt-launcher', {}, () => undefined),
    () => false,
  );
  assert.deepEqual(outcome, { completed: true, mode: 'PreCopy', downtimeMs: 40, totalTimeMs: 314 });

  // A guest paused for the move is down from its pause to the end, whatever QEMU's last pass took.
  answers.push({ status: 'completed', 'total-time': 314, downtime: 40 });
  const lines: string[] = [];
  const paused = await migrateOut(
    qmp,
    options,
    createLogger('virt-launcher', {}, (line) => lines.push(line)),
    () => false,
    Date.now() - 1000,
  );
  assert.ok(paused.downtimeMs! >= 1000 && paused.downtimeMs! < 5000, JSON.stringify(paused));
  assert.equal(paused.totalTimeMs, 314);
  assert.match(lines.find((l) => l.includes('migration completed')) ?? '', /"qemuDowntimeMs":40/);
});
