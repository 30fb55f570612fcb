// A small client for QEMU's machine protocol (QMP) and for the guest agent's
// protocol, both newline-delimited JSON over a unix socket. No npm package
// covers either, so this is ours.
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  readonly errorClass: string;
  constructor(errorClass: string, desc: string) {
    super(desc);
    this.errorClass = errorClass;
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Splits a byte stream into JSON messages, one per line. */
class LineReader {
  private buffer = '';
  push(chunk: Buffer, onMessage: (msg: Record<string, unknown>) => void) {
    this.buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) onMessage(JSON.parse(line));
    }
  }
}

async function connectWithRetry(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(path);
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${path}: ${(error as Error).message}`);
      await sleep(20);
    }
  }
}

/** A QMP session: commands answered in order, events emitted as 'event'. */
/** Sees each QMP message as it is sent, and each reply and event as it arrives (the monitor's debug log). */
export type MonitorTrace = (direction: 'send' | 'reply' | 'event', msg: Record<string, unknown>) => void;

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  private readonly trace?: MonitorTrace;

  private constructor(socket: Socket, trace?: MonitorTrace) {
    super();
    this.socket = socket;
    this.trace = trace;
    const reader = new LineReader();
    socket.on('data', (chunk) => reader.push(chunk, (msg) => this.onMessage(msg)));
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error('QMP connection closed'));
      this.pending.clear();
      this.emit('close');
    });
    socket.on('error', () => socket.destroy());
  }

  static async connect(path: string, timeoutMs = 10_000, trace?: MonitorTrace): Promise<QmpClient> {
    const socket = await connectWithRetry(path, timeoutMs);
    const client = new QmpClient(socket, trace);
    await client.execute('qmp_capabilities');
    return client;
  }

  private onMessage(msg: Record<string, unknown>) {
    if ('QMP' in msg) return; // the greeting
    this.trace?.(typeof msg.event === 'string' ? 'event' : 'reply', msg);
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    const id = msg.id as number;
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if ('error' in msg) {
      const error = msg.error as { class: string; desc: string };
      pending.reject(new QmpError(error.class, error.desc));
    } else pending.resolve(msg.return);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('QMP connection closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const msg = { execute: command, ...(args ? { arguments: args } : {}), id };
      this.trace?.('send', msg);
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  close() {
    this.socket.destroy();
  }
}

/**
 * One guest-agent command. The agent keeps no session state, so each call
 * connects, resynchronises with guest-sync (discarding stale replies) and asks.
 */
export async function guestAgentCommand<T>(path: string, command: string, timeoutMs = 3000, args?: Record<string, unknown>): Promise<T> {
  const socket = await connectWithRetry(path, Math.min(timeoutMs, 500));
  const syncId = Math.floor(Math.random() * 2 ** 31);
  const reader = new LineReader();
  try {
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the guest agent did not answer ${command} within ${timeoutMs}ms`)), timeoutMs);
      let synced = false;
      socket.on('data', (chunk) => {
        try {
          reader.push(chunk, (msg) => {
            if (!synced) {
              if (msg.return === syncId) {
                synced = true;
                socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
              }
              return;
            }
            clearTimeout(timer);
            if ('error' in msg) {
              const error = msg.error as { class: string; desc: string };
              reject(new QmpError(error.class, error.desc));
            } else resolve(msg.return as T);
          });
        } catch {
          // a partial or stale line from an earlier session; the sync id filters it
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      // QEMU gone (a guest-shutdown under -no-reboot ends it at once): no answer is coming.
      socket.on('close', () => {
        clearTimeout(timer);
        reject(new Error(`the guest agent's connection closed before it answered ${command}`));
      });
      // A leading 0xFF byte makes the agent drop any half-parsed input first.
      socket.write(
        Buffer.concat([Buffer.from([0xff]), Buffer.from(`${JSON.stringify({ execute: 'guest-sync', arguments: { id: syncId } })}\n`)]),
      );
    });
  } finally {
    socket.destroy();
  }
}
