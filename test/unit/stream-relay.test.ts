// The byte relays of console, VNC and port-forward, over real local sockets:
// bytes go both ways in binary messages, text messages are ignored, the first
// bytes the far end sends are not lost, and closing either end closes all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { IncomingMessage } from 'node:http';
import { isWebSocketHandshake, PLAIN_STREAM_PROTOCOL, relaySockets, relayStream, type Relay } from '../../src/lib/stream-relay.ts';

const port = (server: { address(): AddressInfo | string | null }) => (server.address() as AddressInfo).port;
const listening = <T extends { once(e: 'listening', f: () => void): unknown }>(server: T) =>
  new Promise<T>((resolve) => server.once('listening', () => resolve(server)));
const opened = (ws: WebSocket) => new Promise<WebSocket>((resolve, reject) => ws.once('open', () => resolve(ws)).once('error', reject));
const nextMessage = (ws: WebSocket) => new Promise<Buffer>((resolve) => ws.once('message', (data: Buffer) => resolve(data)));

/** A TCP server that greets, then echoes; and a WebSocket server relaying each client to it. */
async function relayToTcp() {
  const tcpSockets: Socket[] = [];
  const tcp = await listening(
    createServer((socket) => {
      tcpSockets.push(socket);
      socket.write('greeting\n');
      socket.pipe(socket);
    }).listen(0, '127.0.0.1'),
  );
  const relays: Relay[] = [];
  const wss = await listening(new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => PLAIN_STREAM_PROTOCOL }));
  wss.on('connection', (ws) => {
    ws.pause();
    const socket = connect(port(tcp), '127.0.0.1');
    // The greeting may arrive before the relay exists: it must still reach the client.
    socket.once('connect', () => setTimeout(() => relays.push(relayStream(ws, socket)), 50));
  });
  const close = () => new Promise<void>((resolve) => wss.close(() => tcp.close(() => resolve())));
  return { wss, tcpSockets, relays, close };
}

test('relayStream carries bytes both ways, keeps the first bytes, ignores text, and a closed client closes the TCP side', async () => {
  const { wss, tcpSockets, relays, close } = await relayToTcp();
  const client = new WebSocket(`ws://127.0.0.1:${port(wss)}`, [PLAIN_STREAM_PROTOCOL]);
  const first = nextMessage(client);
  await opened(client);
  assert.equal(client.protocol, PLAIN_STREAM_PROTOCOL);
  assert.equal((await first).toString(), 'greeting\n');
  client.send('ignored text');
  const echo = nextMessage(client);
  client.send(Buffer.from('bytes'), { binary: true });
  assert.equal((await echo).toString(), 'bytes');
  client.close();
  await relays[0].done;
  assert.ok(tcpSockets[0].destroyed, 'the TCP connection is closed');
  await close();
});

test('relayStream: the far end closing closes the client', async () => {
  const { wss, tcpSockets, relays, close } = await relayToTcp();
  const client = new WebSocket(`ws://127.0.0.1:${port(wss)}`);
  const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
  await nextMessage(client);
  tcpSockets[0].end();
  assert.equal(await closed, 1000);
  await relays[0].done;
  await close();
});

test('relaySockets joins two WebSockets; closing one end closes the other', async () => {
  const far = await listening(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
  far.on('connection', (ws) =>
    ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(Buffer.concat([Buffer.from('far:'), data]), { binary: isBinary })),
  );
  let relay: Relay | undefined;
  const middle = await listening(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
  middle.on('connection', (ws) => {
    ws.pause();
    void opened(new WebSocket(`ws://127.0.0.1:${port(far)}`)).then((upstream) => (relay = relaySockets(ws, upstream)));
  });
  const client = await opened(new WebSocket(`ws://127.0.0.1:${port(middle)}`));
  const answer = nextMessage(client);
  client.send(Buffer.from('hi'), { binary: true });
  assert.equal((await answer).toString(), 'far:hi');
  for (const ws of far.clients) ws.close();
  await new Promise((resolve) => client.once('close', resolve));
  await relay!.done;
  await new Promise((resolve) => middle.close(() => far.close(resolve)));
});

test('only a well-formed WebSocket handshake opens the far end', () => {
  const req = (method: string, headers: Record<string, string>) => ({ method, headers }) as unknown as IncomingMessage;
  const good = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
  assert.equal(isWebSocketHandshake(req('GET', good)), true);
  assert.equal(isWebSocketHandshake(req('POST', good)), false);
  assert.equal(isWebSocketHandshake(req('GET', { ...good, upgrade: 'h2c' })), false);
  assert.equal(isWebSocketHandshake(req('GET', { ...good, 'sec-websocket-key': 'short' })), false);
  assert.equal(isWebSocketHandshake(req('GET', { ...good, 'sec-websocket-version': '7' })), false);
});
