// The virt-handler side of the command socket (see ./launcher-protocol.ts).
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import type { DomainEvent, LauncherCommand, LauncherResponse } from './launcher-protocol.ts';

export class LauncherCommandError extends Error {
  readonly field?: string;
  constructor(message: string, field?: string) {
    super(message);
    this.field = field;
  }
}

export class LauncherClient extends EventEmitter<{ domain: [DomainEvent]; close: [] }> {
  private readonly socket: Socket;
  private readonly pending = new Map<number, (r: LauncherResponse) => void>();
  private nextId = 1;

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (msg.type === 'domain') this.emit('domain', msg as DomainEvent);
        else this.pending.get(msg.id)?.(msg as LauncherResponse);
      }
    });
    socket.on('close', () => {
      for (const resolve of this.pending.values()) resolve({ id: 0, ok: false, error: { message: 'the launcher closed the connection' } });
      this.pending.clear();
      this.emit('close');
    });
    socket.on('error', () => socket.destroy());
  }

  static connect(path: string): Promise<LauncherClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new LauncherClient(socket)));
      socket.once('error', reject);
    });
  }

  async request<T = unknown>(command: LauncherCommand): Promise<T> {
    const id = this.nextId++;
    const response = await new Promise<LauncherResponse>((resolve) => {
      this.pending.set(id, resolve);
      this.socket.write(`${JSON.stringify({ ...command, id })}\n`);
    });
    this.pending.delete(id);
    if (!response.ok) throw new LauncherCommandError(response.error.message, response.error.field);
    return response.result as T;
  }

  close() {
    this.socket.destroy();
  }
}
