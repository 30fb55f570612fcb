// Byte streams carried over WebSocket the way upstream's virtctl, virt-api and
// virt-handler carry them: subprotocol plain.kubevirt.io, the bytes in binary
// messages, anything else ignored. A relay ends both of its sides when either
// ends, so no socket, descriptor or timer outlives it. A WebSocket opened
// before its relay exists should be paused on open, so that nothing the far
// end sends first (a VNC server's greeting) is lost; the relay resumes it.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { PLAIN_STREAM_PROTOCOL } from '../contract/streams.ts';

export { PLAIN_STREAM_PROTOCOL };

/** For a WebSocketServer's handleProtocols: upstream's subprotocol when offered, else none (still accepted). */
export const choosePlainProtocol = (offered: Set<string>): string | false =>
  offered.has(PLAIN_STREAM_PROTOCOL) ? PLAIN_STREAM_PROTOCOL : false;

const asBuffer = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));

export interface Relay {
  /** Ends both sides. */
  close(): void;
  /**
   * Ends both sides, dropping the WebSocket without a close frame: what upstream's
   * virt-handler does to a console or VNC connection a newer one replaces. Its client
   * sees an abnormal closure (1006, "unexpected EOF"), which upstream's clients report
   * as an error (virtctl: "another user connected to the console").
   */
  abort(): void;
  /** Settles once both sides are closed. */
  done: Promise<void>;
}

/** Ends a WebSocket politely when it is open, at once otherwise. */
function endSocket(ws: WebSocket, code = 1000) {
  if (ws.readyState === WebSocket.OPEN) ws.close(code);
  else if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
}

const closed = (ws: WebSocket) =>
  new Promise<void>((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve() : ws.once('close', () => resolve())));
const streamClosed = (stream: Duplex) =>
  new Promise<void>((resolve) => (stream.destroyed ? resolve() : stream.once('close', () => resolve())));

/** Carries a byte stream (a unix or TCP socket) over a WebSocket, with backpressure both ways. */
export function relayStream(ws: WebSocket, stream: Duplex, keepAliveMs?: number): Relay {
  stream.on('data', (chunk: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    stream.pause();
    ws.send(chunk, { binary: true }, () => stream.resume());
  });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    if (!stream.write(asBuffer(data))) {
      ws.pause();
      stream.once('drain', () => ws.resume());
    }
  });
  const stop = keepAliveMs ? keepAlive(ws, keepAliveMs) : () => {};
  const close = () => {
    stop();
    endSocket(ws);
    stream.destroy();
  };
  const abort = () => {
    stop();
    ws.terminate();
    stream.destroy();
  };
  ws.on('close', close);
  ws.on('error', close);
  stream.on('end', close);
  stream.on('close', close);
  stream.on('error', close);
  ws.resume();
  return { close, abort, done: Promise.all([closed(ws), streamClosed(stream)]).then(() => {}) };
}

/** Whether a close code may be sent in a close frame (RFC 6455 7.4): 1005, 1006 and 1015 are only ever seen locally. */
const sendable = (code: number) => (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);

/** Ends `to` as `from` ended: the same close code and reason, or dropped without a close frame when `from` was. */
function endLike(to: WebSocket, code: number, reason: Buffer) {
  if (to.readyState !== WebSocket.OPEN) return endSocket(to);
  if (code === 1006) return to.terminate();
  if (!sendable(code)) return to.close();
  to.close(code, reason);
}

/** Relays messages between two WebSockets unchanged. */
export function relaySockets(a: WebSocket, b: WebSocket): Relay {
  const forward = (from: WebSocket, to: WebSocket) =>
    from.on('message', (data, isBinary) => {
      if (to.readyState !== WebSocket.OPEN) return;
      from.pause();
      to.send(asBuffer(data), { binary: isBinary }, () => from.resume());
    });
  forward(a, b);
  forward(b, a);
  const close = () => {
    endSocket(a);
    endSocket(b);
  };
  const abort = () => {
    a.terminate();
    b.terminate();
  };
  // A side that ends passes its ending on: a dropped connection is dropped on, a close frame's code and reason carried.
  a.on('close', (code, reason) => endLike(b, code, reason));
  b.on('close', (code, reason) => endLike(a, code, reason));
  for (const ws of [a, b]) {
    ws.on('error', close);
    ws.resume();
  }
  return { close, abort, done: Promise.all([closed(a), closed(b)]).then(() => {}) };
}

/**
 * Pings every `intervalMs` and drops a peer that has not answered for six
 * intervals, as upstream's streamer drops a client that stops answering.
 * Returns the function that stops it.
 */
export function keepAlive(ws: WebSocket, intervalMs: number): () => void {
  let lastPong = Date.now();
  ws.on('pong', () => (lastPong = Date.now()));
  const timer = setInterval(() => {
    if (Date.now() - lastPong > 6 * intervalMs) ws.terminate();
    else if (ws.readyState === WebSocket.OPEN) ws.ping('keep alive');
  }, intervalMs);
  timer.unref();
  const stop = () => clearInterval(timer);
  ws.once('close', stop);
  return stop;
}

/** The raw HTTP answer to an upgrade request that is refused before the handshake. */
export function refuseUpgrade(socket: Duplex, code: number, body: unknown) {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

/**
 * Whether an upgrade request is a WebSocket handshake the server will accept:
 * checked before the far end is opened, so a refused handshake leaves nothing open.
 */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  return (
    req.method === 'GET' &&
    req.headers.upgrade?.toLowerCase() === 'websocket' &&
    /^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? '') &&
    ['8', '13'].includes(req.headers['sec-websocket-version'] ?? '')
  );
}
