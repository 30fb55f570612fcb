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
import { readText } from '../lib/raw-request.ts';
import {
  freezeTimeoutOf,
  HANDLER_ACTIONS,
  HANDLER_PORT,
  parseVmiPath,
  VIRT_API_CLIENT_CN,
  type HandlerAction,
  type StreamKind,
  vncOptionsOf,
} from '../contract/handler-api.ts';
import { choosePlainProtocol, isWebSocketHandshake, refuseUpgrade, relayStream, type Relay } from '../lib/stream-relay.ts';

export interface HandlerTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

export interface VirtApiHandlers {
  act(namespace: string, name: string, action: HandlerAction, options?: { unfreezeTimeoutSeconds?: number }): Promise<void>;
  guestInfo(namespace: string, name: string): Promise<unknown>;
  /** A connected stream to the VMI's console or VNC socket. */
  openStream(namespace: string, name: string, kind: StreamKind): Promise<Duplex>;
}

const fromVirtApi = (req: IncomingMessage) => (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN === VIRT_API_CLIENT_CN;

export function serveVirtApi(
  tls: () => HandlerTls,
  handlers: VirtApiHandlers,
  log: Logger,
  sessions: StreamSessions = new StreamSessions(),
): Server {
  const server = createServer({ ...tls(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    if (!fromVirtApi(req)) {
      res.writeHead(403).end('only virt-api may call virt-handler');
      return;
    }
    const target = parseVmiPath(req.url ?? '');
    if (req.method === 'GET' && target?.verb === 'guestinfo') {
      handlers.guestInfo(target.namespace, target.name).then(
        (info) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info)),
        (error: Error) => res.writeHead(409).end(error.message),
      );
      return;
    }
    const action = target?.verb as HandlerAction | undefined;
    if (req.method !== 'PUT' || !target || !HANDLER_ACTIONS.includes(action!)) {
      res.writeHead(404).end();
      return;
    }
    // Freeze and unfreeze fail with 400, as upstream's handler answers them; the other actions with 409.
    const failed = action === 'freeze' || action === 'unfreeze' ? 400 : 409;
    // A request that breaks off mid-body (virt-api's connection dropped) must not end this process.
    const answer = (code: number, text?: string) => {
      if (!res.headersSent && !res.destroyed) res.writeHead(code).end(text);
    };
    readText(req)
      .then(async (body) => {
        const timeout = action === 'freeze' ? freezeTimeoutOf(body) : { seconds: 0 };
        if ('error' in timeout) return answer(400, timeout.error);
        await handlers.act(target.namespace, target.name, action!, { unfreezeTimeoutSeconds: timeout.seconds }).then(
          () => answer(200),
          (error: Error) => answer(failed, error.message),
        );
      })
      .catch(() => answer(400));
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: choosePlainProtocol });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!fromVirtApi(req)) return refuseUpgrade(socket, 403, { message: 'only virt-api may call virt-handler' });
    if (!isWebSocketHandshake(req)) return refuseUpgrade(socket, 400, { message: 'not a WebSocket handshake' });
    const url = new URL(req.url ?? '/', 'https://virt-handler');
    const target = parseVmiPath(url.pathname);
    const kind = target?.verb;
    if (!target || (kind !== 'console' && kind !== 'vnc')) return refuseUpgrade(socket, 404, { message: `no stream at ${url.pathname}` });
    const { namespace, name } = target;
    const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: { namespace, name } });
    const key = `${kind}/${namespace}/${name}`;
    // A new console (or VNC) connection ends the ones before it, unless the VNC client asks to keep an existing session
    // (refused while one is open) or to share the display (it joins them): an ended one is dropped without a close
    // frame, so its client reports an unexpected EOF, as upstream's.
    const vnc = kind === 'vnc' ? vncOptionsOf(url.searchParams) : {};
    if (vnc.preserveSession && sessions.busy(key)) {
      return refuseUpgrade(socket, 503, { message: 'Active VNC connection. Request denied.' });
    }
    const shared = vnc.shared === true;
    if (!shared) sessions.end(key);
    handlers.openStream(namespace, name, kind).then(
      (stream) => {
        if (socket.destroyed) return void stream.destroy();
        wss.handleUpgrade(req, socket, head, (ws) => {
          const relay = relayStream(ws, stream);
          sessions.start(key, relay, shared);
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

/** The open streams of each VMI and kind: one at a time, or several that share a VNC display. */
export class StreamSessions {
  readonly #open = new Map<string, Set<Relay>>();
  /** The streams open now, one entry each, for the connection metrics. */
  open(): { kind: StreamKind; namespace: string; name: string }[] {
    return [...this.#open].flatMap(([key, relays]) => {
      const [kind, namespace, name] = key.split('/');
      return [...relays].map(() => ({ kind: kind as StreamKind, namespace, name }));
    });
  }
  busy(key: string) {
    return (this.#open.get(key)?.size ?? 0) > 0;
  }
  /** Drops the open streams of `key`, as upstream's handler drops one a newer connection replaces (see Relay.abort). */
  end(key: string) {
    for (const relay of this.#open.get(key) ?? []) relay.abort();
    this.#open.delete(key);
  }
  /** Records a new stream: it replaces those open, unless it shares them. */
  start(key: string, relay: Relay, shared = false) {
    if (!shared) this.end(key);
    const relays = this.#open.get(key) ?? new Set<Relay>();
    relays.add(relay);
    this.#open.set(key, relays);
    void relay.done.then(() => {
      relays.delete(relay);
      if (!relays.size && this.#open.get(key) === relays) this.#open.delete(key);
    });
  }
}
