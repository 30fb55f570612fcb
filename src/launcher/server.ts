// The launcher's command socket: requests from virt-handler in, answers and
// domain events out, newline-delimited JSON (see ../contract/launcher-protocol.ts).
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { Supervisor } from './supervisor.ts';
import type { DomainEvent, LauncherRequest, LauncherResponse, NodeContext } from '../contract/launcher-protocol.ts';
import { ConversionError } from './convert.ts';
import type { Logger } from '../lib/log.ts';

/** Called with the node context of each sync that carries one, before the supervisor sees it. */
export type ContextReceiver = (context: NodeContext) => void;

export function serveCommands(path: string, supervisor: Supervisor, log: Logger, onContext?: ContextReceiver): Server {
  const receive = (context: NodeContext) => {
    if (context.leaseValidUntil !== undefined) supervisor.extendLease(context.leaseValidUntil);
    onContext?.(context);
  };
  rmSync(path, { force: true });
  const watchers = new Set<Socket>();
  supervisor.on('domain', (domain) => {
    const event: DomainEvent = { type: 'domain', domain, at: Date.now() };
    for (const socket of watchers) socket.write(`${JSON.stringify(event)}\n`);
  });
  const server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('close', () => watchers.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) void handle(JSON.parse(line) as LauncherRequest, socket);
      }
    });
  });

  async function handle(request: LauncherRequest, socket: Socket) {
    const reply = (response: LauncherResponse) => socket.write(`${JSON.stringify(response)}\n`);
    try {
      let result: unknown;
      switch (request.command) {
        case 'sync':
          if (request.context) receive(request.context);
          await supervisor.sync(request.vmi);
          break;
        case 'prepareMigrationTarget':
          receive(request.context);
          await supervisor.prepareMigrationTarget(request.vmi, request.allowPostCopy);
          break;
        case 'migrate':
          result = await supervisor.migrate(request.options);
          break;
        case 'cancelMigration':
          await supervisor.cancelMigration();
          break;
        case 'lease':
          supervisor.extendLease(request.validUntil);
          break;
        case 'shutdown':
          result = await supervisor.shutdown(request.gracePeriodSeconds);
          break;
        case 'kill':
          result = await supervisor.kill();
          break;
        case 'pause':
          await supervisor.pause();
          break;
        case 'unpause':
          await supervisor.unpause();
          break;
        case 'reset':
          await supervisor.reset();
          break;
        case 'softReboot':
          await supervisor.softReboot();
          break;
        case 'freeze':
          await supervisor.filesystems.freeze(request.unfreezeTimeoutSeconds);
          break;
        case 'unfreeze':
          await supervisor.filesystems.unfreeze();
          break;
        case 'guestInfo':
          result = await supervisor.guestInfo();
          break;
        case 'stats':
          result = await supervisor.stats();
          break;
        case 'ping':
          result = supervisor.status;
          break;
        case 'watch':
          watchers.add(socket);
          result = supervisor.status;
          break;
      }
      reply({ id: request.id, ok: true, result });
    } catch (error) {
      const field = error instanceof ConversionError ? error.field : undefined;
      log.warning('command failed', { command: request.command, error: (error as Error).message });
      reply({ id: request.id, ok: false, error: { message: (error as Error).message, ...(field ? { field } : {}) } });
    }
  }

  server.listen(path);
  return server;
}
