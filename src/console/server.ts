// The web console's HTTPS server: the page and its bundled assets, the
// Kubernetes API forwarded with the browser's own bearer token, and the
// serial console and VNC WebSockets relayed to kube-apiserver with that token
// in an Authorization header; and VMI metrics, each answered only after the
// user's token has read the VMI(s) from kube-apiserver. The server holds no
// Kubernetes credentials.
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../lib/log.ts';
import { getText, type VmiMetricsSource } from './metrics.ts';
import { choosePlainProtocol, isWebSocketHandshake, PLAIN_STREAM_PROTOCOL, refuseUpgrade, relaySockets } from '../lib/stream-relay.ts';
import {
  bearerFromProtocols,
  FORWARDED_RESPONSE_HEADERS,
  forwardedHeaders,
  isApiPath,
  isStreamPath,
  refusalClose,
  status,
} from './proxy.ts';
import { GRAPH_MINUTES, parseMetricsPath } from './vmi-metrics.ts';

type Vmi = { metadata?: { name?: string } };

export interface ConsoleServerOptions {
  /** kube-apiserver's URL, e.g. https://10.96.0.1:443. */
  apiServer: string;
  /** The CA kube-apiserver's certificate is checked against. */
  apiServerCa: () => Buffer;
  servingCertificate: () => { cert: Buffer; key: Buffer };
  /** The folder of the bundled page (index.html, app.js, app.css). */
  staticDir: string;
  /** Where VMI figures come from: a Prometheus, or the server's own history of virt-handler's metrics. */
  metrics: VmiMetricsSource;
  log: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  // The bundled libraries' licence texts (esbuild's linked legal comments).
  '.txt': 'text/plain; charset=utf-8',
};

/** The page loads nothing but its own files, and is not framed. xterm.js sets inline styles; noVNC draws cursors from data: URLs. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export class ConsoleServer {
  readonly #options: ConsoleServerOptions;
  readonly #assets = new Map<string, { body: Buffer; type: string }>();
  readonly #wss = new WebSocketServer({ noServer: true, handleProtocols: choosePlainProtocol });
  #server?: Server;

  constructor(options: ConsoleServerOptions) {
    this.#options = options;
    for (const file of readdirSync(options.staticDir)) {
      const type = CONTENT_TYPES[extname(file)];
      if (type) this.#assets.set(file === 'index.html' ? '/' : `/${file}`, { body: readFileSync(join(options.staticDir, file)), type });
    }
  }

  async start(port: number, host?: string): Promise<AddressInfo> {
    const server = createServer(this.#options.servingCertificate(), (req, res) => this.#handleRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#handleUpgrade(req, socket, head));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    this.#options.log.info('serving the web console', { port });
    return server.address() as AddressInfo;
  }

  reloadServingCertificate(): void {
    this.#server?.setSecureContext(this.#options.servingCertificate());
    this.#options.log.info('serving certificate reloaded');
  }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #handleRequest(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'https://console');
    if (url.pathname === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (isApiPath(url.pathname)) return this.#forward(req, res, url);
    const metricsOf = parseMetricsPath(url.pathname);
    if (metricsOf && req.method === 'GET') return void this.#metrics(req, res, url, metricsOf);
    const asset = req.method === 'GET' || req.method === 'HEAD' ? this.#assets.get(url.pathname) : undefined;
    if (!asset) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }

  /** One API request, as the browser's user: the body streamed both ways (watches included). */
  #forward(req: IncomingMessage, res: ServerResponse, url: URL) {
    const answer = (code: number, reason: string, message: string) => {
      if (!res.headersSent) res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(status(code, reason, message)));
      else res.destroy();
    };
    const headers = forwardedHeaders(req.headers);
    if (!/^Bearer \S+$/.test(headers.authorization ?? '')) return answer(401, 'Unauthorized', 'log in with a bearer token');
    const upstream = request(
      new URL(url.pathname + url.search, this.#options.apiServer),
      { method: req.method, headers, ca: this.#options.apiServerCa() },
      (answerStream) => {
        const passed: Record<string, string> = {};
        for (const name of FORWARDED_RESPONSE_HEADERS) {
          const value = answerStream.headers[name];
          if (typeof value === 'string') passed[name] = value;
        }
        res.writeHead(answerStream.statusCode ?? 502, passed);
        answerStream.pipe(res);
      },
    );
    upstream.on('error', (error) => answer(502, 'BadGateway', `kube-apiserver: ${error.message}`));
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  /**
   * A VMI's graphs or a namespace's CPU and memory figures. The user's token first reads the VMI (or lists
   * the namespace's VMIs) from kube-apiserver; a refusal there is the answer, with the API's own status.
   * Only then is the source asked, with the server's fixed queries for that namespace and name.
   */
  async #metrics(req: IncomingMessage, res: ServerResponse, url: URL, of: { namespace: string; name?: string }) {
    const json = (code: number, body: unknown) =>
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-cache' }).end(JSON.stringify(body));
    const { authorization } = forwardedHeaders(req.headers);
    if (!/^Bearer \S+$/.test(authorization ?? '')) return json(401, status(401, 'Unauthorized', 'log in with a bearer token'));
    const vmis = `/apis/kubevirt.io/v1/namespaces/${of.namespace}/virtualmachineinstances`;
    const asUser = { headers: { authorization: authorization!, accept: 'application/json' }, ca: this.#options.apiServerCa() };
    const read = await getText(new URL(of.name ? `${vmis}/${of.name}` : vmis, this.#options.apiServer), asUser).catch((error: Error) => ({
      code: 502,
      body: JSON.stringify(status(502, 'BadGateway', `kube-apiserver: ${error.message}`)),
    }));
    if (read.code !== 200) return void res.writeHead(read.code, { 'content-type': 'application/json' }).end(read.body);
    try {
      if (of.name) {
        const minutes = Math.min(GRAPH_MINUTES, Math.max(1, Math.floor(Number(url.searchParams.get('minutes')) || GRAPH_MINUTES)));
        return json(200, await this.#options.metrics.vmi(of.namespace, of.name, minutes));
      }
      // Only the VMIs the user was shown.
      const names = new Set(((JSON.parse(read.body) as { items?: Vmi[] }).items ?? []).map((vmi) => vmi.metadata?.name));
      const { source, usage } = await this.#options.metrics.usage(of.namespace);
      json(200, { source, usage: Object.fromEntries(Object.entries(usage).filter(([name]) => names.has(name))) });
    } catch (error) {
      this.#options.log.warning('metrics not read', { namespace: of.namespace, name: of.name ?? '', error: (error as Error).message });
      json(502, status(502, 'BadGateway', `metrics: ${(error as Error).message}`));
    }
  }

  /**
   * A console or VNC stream: kube-apiserver's is opened first with the user's token, then the browser's
   * handshake is completed. A refusal (401, 403, a VMI not running) reaches the page as a close code and reason.
   */
  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(req.url ?? '/', 'https://console');
    if (!isStreamPath(url.pathname)) return refuseUpgrade(socket, 404, status(404, 'NotFound', `no stream at ${url.pathname}`));
    if (!isWebSocketHandshake(req)) return refuseUpgrade(socket, 400, status(400, 'BadRequest', 'not a WebSocket handshake'));
    const { token } = bearerFromProtocols(req.headers['sec-websocket-protocol']);
    if (!token) return refuseUpgrade(socket, 401, status(401, 'Unauthorized', 'no bearer token in the WebSocket subprotocols'));
    const target = new URL(url.pathname + url.search, this.#options.apiServer);
    target.protocol = 'wss:';
    const upstream = new WebSocket(target, [PLAIN_STREAM_PROTOCOL], {
      headers: { authorization: `Bearer ${token}` },
      ca: this.#options.apiServerCa(),
      handshakeTimeout: 30_000,
    });
    const log = this.#options.log.object({
      kind: 'VirtualMachineInstance',
      metadata: { namespace: url.pathname.split('/')[5], name: url.pathname.split('/')[7] },
    });
    const kind = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
    const accept = (then: (ws: WebSocket) => void) => {
      if (socket.destroyed) return void upstream.terminate();
      this.#wss.handleUpgrade(req, socket, head, then);
    };
    const refuse = (code: number, body: string) => {
      log.info(`${kind} refused`, { code });
      accept((ws) => {
        const { closeCode, reason } = refusalClose(code, body);
        ws.send(body);
        ws.close(closeCode, reason);
      });
    };
    socket.once('close', () => {
      if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
    });
    upstream.once('open', () => {
      // Held until the relay exists, so the VNC server's greeting is not lost.
      upstream.pause();
      accept((ws) => {
        log.info(`${kind} opened`);
        void relaySockets(ws, upstream).done.then(() => log.info(`${kind} closed`));
      });
    });
    upstream.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => refuse(response.statusCode ?? 502, Buffer.concat(chunks).toString('utf8')));
      response.on('error', () => refuse(502, 'kube-apiserver ended the answer early'));
    });
    upstream.once('error', (error) => {
      if (upstream.readyState !== WebSocket.OPEN)
        refuse(502, JSON.stringify(status(502, 'BadGateway', `kube-apiserver: ${error.message}`)));
    });
  }
}
