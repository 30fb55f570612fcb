// The migration stream between two virt-handlers: QEMU speaks to a unix socket
// in its own pod, and the stream crosses the node network only inside TLS,
// both handlers proving themselves with certificates of the KubeVirt CA.
//   source QEMU → source pod's MIGRATION_OUT_SOCKET (source handler) ⇒ TLS ⇒
//   target handler's port → target pod's MIGRATION_IN_SOCKET → target QEMU
import { chmodSync, closeSync, constants, lstatSync, openSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../lib/log.ts';
import { UnsafePathError } from './paths.ts';

export interface ProxyTls {
  cert: Buffer;
  key: Buffer;
  /** The KubeVirt CA: the other handler's certificate must chain to it. */
  ca: Buffer;
}

export interface MigrationListener {
  port: number;
  close(): void;
}

/** How long a side may stay open after the other has closed, for what is still on its way to go out. */
const LINGER_MS = 30_000;

/**
 * Joins two streams. A close is passed on as an end, after everything that came before it has
 * been written: QEMU closes its end of the stream as soon as it has sent the last of the guest,
 * which may still be in this process's buffers, and a target that misses those bytes cannot load
 * the guest. A failure ends both at once.
 */
export function splice(a: Duplex, b: Duplex) {
  a.pipe(b);
  b.pipe(a);
  const fail = () => {
    a.destroy();
    b.destroy();
  };
  for (const [from, to] of [
    [a, b],
    [b, a],
  ]) {
    from.on('error', fail);
    from.on('close', () => {
      if (!to.destroyed && !to.writableEnded) to.end();
      setTimeout(() => to.destroy(), LINGER_MS).unref();
    });
  }
}

/**
 * The target handler's end: a TLS port on its address, each connection passed on to the target
 * QEMU's incoming socket. Only a peer with a certificate of the CA (another virt-handler) gets in.
 */
export function listenForMigration(
  address: string,
  tls: ProxyTls,
  openTarget: () => Promise<Duplex>,
  log: Logger,
): Promise<MigrationListener> {
  const server = createTlsServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (peer: TLSSocket) => {
    openTarget().then(
      (target) => splice(peer, target),
      (error: Error) => {
        log.warning('cannot reach the migration target QEMU', { error: error.message });
        peer.destroy();
      },
    );
  });
  server.on('tlsClientError', (error) => log.warning('migration connection refused', { error: error.message }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      server.off('error', reject);
      const port = (server.address() as { port: number }).port;
      resolve({ port, close: () => server.close() });
    });
  });
}

/**
 * The source handler's end: a unix socket in the source pod's socket directory for QEMU to send
 * to, each connection carried over TLS to the target handler. The target's certificate is
 * checked against the CA; it names no address, as the target's pod address is not known when
 * certificates are issued.
 */
export async function forwardMigration(
  socketDir: string,
  name: string,
  target: { host: string; port: number },
  tls: ProxyTls,
  log: Logger,
): Promise<{ close(): void }> {
  const server: Server = createServer((local: Socket) => {
    const remote = tlsConnect({ ...target, ...tls, rejectUnauthorized: true, checkServerIdentity: () => undefined });
    remote.once('secureConnect', () => splice(local, remote));
    remote.once('error', (error) => {
      log.warning('cannot reach the migration target', { error: error.message, ...target });
      local.destroy();
    });
  });
  await listenInDirectory(server, socketDir, name);
  return { close: () => server.close() };
}

/**
 * Listens on `name` in a pod's directory, reached through a descriptor opened without following
 * links (as viaDirectoryFd reaches sockets there), and lets the pod's QEMU, which does not run as
 * root, connect to it.
 */
async function listenInDirectory(server: Server, dir: string, name: string): Promise<void> {
  if (name.includes('/')) throw new UnsafePathError(`${name}: not a plain name`);
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const path = `/proc/self/fd/${fd}/${name}`;
    const existing = (() => {
      try {
        return lstatSync(path);
      } catch {
        return undefined;
      }
    })();
    if (existing && !existing.isSocket()) throw new UnsafePathError(`${name} exists and is not a socket`);
    if (existing) unlinkSync(path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o666);
  } finally {
    closeSync(fd);
  }
}
