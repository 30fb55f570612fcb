// virtctl's ends of the streaming subresources: the serial console on this
// terminal, a local VNC port, and local ports forwarded into a guest.
import { spawn, execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { relayStream } from '../lib/stream-relay.ts';
import type { ForwardedPort } from './args.ts';

/** Ctrl+] ends a console session, as in upstream's virtctl and telnet. */
const ESCAPE = 0x1d;

/** Attaches this terminal (raw, when it is one) to a console stream until Ctrl+], the stream's end, or SIGINT. */
export function attachConsole(ws: WebSocket, name: string): Promise<void> {
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  process.stderr.write(`Successfully connected to ${name} console. Press Ctrl+] or Ctrl+5 to exit console.\n`);
  return new Promise((resolve) => {
    const finish = () => {
      if (raw) stdin.setRawMode(false);
      stdin.off('data', onInput);
      stdin.pause();
      process.off('SIGINT', finish);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      resolve();
    };
    const onInput = (chunk: Buffer) => {
      const escapeAt = chunk.indexOf(ESCAPE);
      const data = escapeAt < 0 ? chunk : chunk.subarray(0, escapeAt);
      if (data.length && ws.readyState === WebSocket.OPEN) ws.send(data, { binary: true });
      if (escapeAt >= 0) finish();
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) process.stdout.write(data);
    });
    ws.once('close', (code: number) => {
      if (code === 1006) {
        process.stderr.write(
          '\nYou were disconnected from the console. This could be caused by one of the following:\n - the target VM was powered off\n - another user connected to the console of the target VM\n - network issues\n',
        );
      }
      finish();
    });
    ws.once('error', finish);
    ws.resume();
    stdin.on('data', onInput);
    stdin.once('end', finish);
    process.once('SIGINT', finish);
    stdin.resume();
  });
}

const listen = (server: Server, address: string, port: number) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve((server.address() as { port: number }).port));
  });

/** A VNC viewer on PATH and its arguments for a local port, as upstream looks for one. */
function vncViewer(port: number): [string, string[]] | undefined {
  const has = (bin: string) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (has('remote-viewer')) return ['remote-viewer', [`vnc://127.0.0.1:${port}`]];
  if (has('vncviewer')) return ['vncviewer', [`127.0.0.1:${port}`]];
  return undefined;
}

/**
 * VNC through a local TCP port that takes one client. With proxyOnly the port
 * is printed as {"port":N} and the proxy waits; otherwise a viewer is started.
 */
export async function vncProxy(ws: WebSocket, options: { address: string; port: number; proxyOnly: boolean }): Promise<void> {
  const server = createServer();
  const port = await listen(server, options.proxyOnly ? options.address : '127.0.0.1', options.port);
  const client = new Promise<Socket>((resolve) => server.once('connection', resolve));
  if (options.proxyOnly) {
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  } else {
    const viewer = vncViewer(port);
    if (!viewer) {
      server.close();
      ws.close();
      throw new Error(
        'could not find remote-viewer or vncviewer in $PATH: install one, or use --proxy-only and point any VNC viewer at the printed port',
      );
    }
    spawn(viewer[0], viewer[1], { stdio: 'ignore' }).once('exit', () => ws.close());
  }
  const ended = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const socket = await Promise.race([client, ended.then(() => undefined)]);
  server.close();
  if (!socket) return;
  await relayStream(ws, socket).done;
}

/** Forwards each local port into the guest: every accepted connection gets its own stream. Runs until SIGINT. */
export async function forwardPorts(
  open: (port: ForwardedPort) => Promise<WebSocket>,
  ports: ForwardedPort[],
  address: string,
  log: (line: string) => void,
): Promise<void> {
  const servers = await Promise.all(
    ports.map(async (port) => {
      const server = createServer((socket) => {
        // Until the stream is there, a local client that goes away just goes.
        socket.once('error', () => socket.destroy());
        open(port).then(
          (ws) => relayStream(ws, socket),
          (error: Error) => {
            log(`error forwarding ${port.local} -> ${port.remote}: ${error.message}`);
            socket.destroy();
          },
        );
      });
      const local = await listen(server, address, port.local);
      log(`Forwarding from ${address}:${local} -> ${port.remote}`);
      return server;
    }),
  );
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  for (const server of servers) server.close();
}

/** One forwarded port on stdin/stdout, for ssh's ProxyCommand. */
export async function forwardStdio(ws: WebSocket): Promise<void> {
  const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
  await relayStream(ws, stdio).done;
}
