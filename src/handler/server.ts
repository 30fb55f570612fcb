// virt-handler's HTTPS endpoint for virt-api, mutual TLS with the kubevirt CA:
// only a client certificate from that CA with virt-api's client name gets in.
// It carries VMI actions to the launcher of a VMI on this node, and relays the
// serial console and VNC streams to the launcher's unix sockets.
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { Logger } from '../lib/log.ts';
import { choosePlainProtocol, isWebSocketHandshake, refuseUpgrade, relayStream, type Relay } from '../lib/stream-relay.ts';

export const HANDLER_PORT = 8186;
/** The common name of the client certificate virt-api presents. */
export const VIRT_API_CLIENT_CN = 'kubevirt.io:system:client:virt-handler';
export const HANDLER_ACTIONS = ['pause', 'unpause', 'softreboot', 'reset'] as const;
export type HandlerAction = (typeof HANDLER_ACTIONS)[number];
export type StreamKind = 'console' | 'vnc';

export interface HandlerTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

const vmiPath = (namespace: string, name: string) => `/v1/namespaces/${namespace}/virtualmachineinstances/${name}`;
/** The path virt-api calls for an action on a VMI. */
export const actionPath = (namespace: string, name: string, action: HandlerAction) => `${vmiPath(namespace, name)}/${action}`;
/** The path virt-api reads a VMI's guest agent information from. */
export const guestInfoPath = (namespace: string, name: string) => `${vmiPath(namespace, name)}/guestinfo`;
/** The WebSocket path of a VMI's serial console or VNC display. */
export const streamPath = (namespace: string, name: string, kind: StreamKind, preserveSession = false) =>
  `${vmiPath(namespace, name)}/${kind}${kind === 'vnc' ? `?preserveSession=${preserveSession}` : ''}`;

export interface VirtApiHandlers {
  act(namespace: string, name: string, action: HandlerAction): Promise<void>;
  guestInfo(namespace: string, name: string): Promise<unknown>;
  /** A connected stream to the VMI's console or VNC socket. */
  openStream(namespace: string, name: string, kind: StreamKind): Promise<Duplex>;
}

const PATH = /^\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/([a-z]+)$/;
const fromVirtApi = (req: IncomingMessage) => (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN === VIRT_API_CLIENT_CN;

export function serveVirtApi(tls: () => HandlerTls, handlers: VirtApiHandlers, log: Logger): Server {
  const server = createServer({ ...tls(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    if (!fromVirtApi(req)) {
      res.writeHead(403).end('only virt-api may call virt-handler');
      return;
    }
    const match = PATH.exec(req.url ?? '');
    if (req.method === 'GET' && match?.[3] === 'guestinfo') {
      handlers.guestInfo(match[1], match[2]).then(
        (info) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info)),
        (error: Error) => res.writeHead(409).end(error.message),
      );
      return;
    }
    const action = match?.[3] as HandlerAction | undefined;
    if (req.method !== 'PUT' || !match || !HANDLER_ACTIONS.includes(action!)) {
      res.writeHead(404).end();
      return;
    }
    handlers.act(match[1], match[2], action!).then(
      () => res.writeHead(200).end(),
      (error: Error) => res.writeHead(409).end(error.message),
    );
  });
  const sessions = new StreamSessions();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: choosePlainProtocol });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!fromVirtApi(req)) return refuseUpgrade(socket, 403, { message: 'only virt-api may call virt-handler' });
    if (!isWebSocketHandshake(req)) return refuseUpgrade(socket, 400, { message: 'not a WebSocket handshake' });
    const url = new URL(req.url ?? '/', 'https://virt-handler');
    const match = PATH.exec(url.pathname);
    const kind = match?.[3];
    if (!match || (kind !== 'console' && kind !== 'vnc')) return refuseUpgrade(socket, 404, { message: `no stream at ${url.pathname}` });
    const [namespace, name] = [match[1], match[2]];
    const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: { namespace, name } });
    const key = `${kind}/${namespace}/${name}`;
    // A new console (or VNC) connection ends the one before it, unless the VNC client asks to keep an existing session.
    if (kind === 'vnc' && url.searchParams.get('preserveSession') === 'true' && sessions.busy(key)) {
      return refuseUpgrade(socket, 503, { message: 'Active VNC connection. Request denied.' });
    }
    sessions.end(key);
    handlers.openStream(namespace, name, kind).then(
      (stream) => {
        if (socket.destroyed) return void stream.destroy();
        wss.handleUpgrade(req, socket, head, (ws) => {
          const relay = relayStream(ws, stream);
          sessions.start(key, relay);
          vmiLog.info(`${kind} connected`);
          void relay.done.then(() => vmiLog.info(`${kind} disconnected`));
        });
      },
      (error: Error) => {
        vmiLog.warning(`${kind} refused`, { error: error.message });
        refuseUpgrade(socket, 400, { message: error.message });
      },
    );
  });
  server.listen(HANDLER_PORT, () => log.info('serving virt-api', { port: HANDLER_PORT }));
  return server;
}

/** The open stream of each VMI and kind: one at a time. */
class StreamSessions {
  readonly #open = new Map<string, Relay>();
  busy(key: string) {
    return this.#open.has(key);
  }
  end(key: string) {
    this.#open.get(key)?.close();
    this.#open.delete(key);
  }
  start(key: string, relay: Relay) {
    this.end(key);
    this.#open.set(key, relay);
    void relay.done.then(() => {
      if (this.#open.get(key) === relay) this.#open.delete(key);
    });
  }
}
