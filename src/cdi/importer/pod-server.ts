// The fill pod's port: progress for the DataVolume controller, readiness
// for the kubelet, and the upload server's or clone source's own paths. HTTPS
// with the certificate cdi-controller issued the pod; plain HTTP only when it
// was given none (the program run outside a cluster, as the integration tests do).
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { PROGRESS_PATH } from '../../contract/cdi.ts';
import type { Logger } from '../../lib/log.ts';

export const HEALTHZ_PATH = '/healthz';

/** How far the transfer is, as a percentage, and whether the work is complete. */
export class Progress {
  #percent = 0;
  #loggedStep = 0;
  #complete = false;
  readonly #waiters = new Set<() => void>();
  readonly #log: Logger | undefined;

  constructor(log?: Logger) {
    this.#log = log;
  }

  get percent(): number {
    return this.#percent;
  }

  /** Never goes back: qemu-img and a retried stream can report less than before. */
  set(percent: number): void {
    if (!Number.isFinite(percent)) return;
    this.#percent = Math.max(this.#percent, Math.min(100, Math.max(0, percent)));
    const step = Math.floor(this.#percent / 10);
    if (step > this.#loggedStep) {
      this.#loggedStep = step;
      this.#log?.info('progress', { percent: Math.round(this.#percent) });
    }
  }

  setBytes(done: number, total: number | undefined): void {
    if (total) this.set((done / total) * 100);
  }

  /** A new attempt (a retried upload) starts from zero. */
  reset(): void {
    this.#percent = 0;
    this.#loggedStep = 0;
  }

  get complete(): boolean {
    return this.#complete;
  }

  /** The disk holds the whole image, written through: what the pod's exit 0 will say, told at once. */
  markComplete(): void {
    this.#complete = true;
    this.set(100);
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /** Settles once the work is complete, or after `ms`. */
  completeWithin(ms: number): Promise<void> {
    if (this.#complete || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#waiters.add(wake);
    });
  }
}

/**
 * The longest a progress request may ask to be held (`?wait=ms`) for the work to complete: the
 * controller learns of the end from the answer, without waiting on the kubelet to report the
 * pod's exit, which it notices only at its next look at the runtime.
 */
export const PROGRESS_WAIT_MAX_MS = 5000;

/** Whether an Authorization header carries `token` as a bearer token; no token configured admits nobody. */
export function bearerTokenMatches(header: string | undefined, token: string): boolean {
  if (!token || !header) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return false;
  const offered = Buffer.from(match[1]);
  const expected = Buffer.from(token);
  return offered.length === expected.length && timingSafeEqual(offered, expected);
}

export function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://pod').pathname;
}

/**
 * Ends an answer. `close` drops the connection afterwards: an answer given
 * before the request's body was read must not leave Node reading (and
 * discarding) a multi-gigabyte body to keep the connection alive.
 */
export function answer(res: ServerResponse, status: number, body = '', options: { contentType?: string; close?: boolean } = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader('Content-Type', options.contentType ?? 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  if (options.close) res.setHeader('Connection', 'close');
  res.end(body);
}

/** Answers the paths every fill pod has; false when `req` is for another path. */
export function answerCommonPaths(req: IncomingMessage, res: ServerResponse, progress: Progress): boolean {
  const path = pathOf(req);
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === PROGRESS_PATH) {
    const wait = Math.min(PROGRESS_WAIT_MAX_MS, Number(new URL(req.url ?? '/', 'http://pod').searchParams.get('wait')) || 0);
    void progress.completeWithin(wait).then(() =>
      answer(res, 200, JSON.stringify({ progress: Math.round(progress.percent * 100) / 100, complete: progress.complete }), {
        contentType: 'application/json',
      }),
    );
    return true;
  }
  if (path === HEALTHZ_PATH) {
    answer(res, 200, 'OK');
    return true;
  }
  return false;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * Listens on every address, over TLS when given the pod's certificate;
 * resolves once listening, having logged the port (tests ask for port 0).
 */
export async function startPodServer(port: number, handler: Handler, log: Logger, tls?: { cert: string; key: string }): Promise<Server> {
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      log.error('request failed', { method: req.method, path: pathOf(req), error: String(err) });
      answer(res, 500, String(err), { close: true });
    });
  };
  // An https.Server is an http.Server over TLS sockets: the same timeouts and connection handling.
  const server: Server = tls ? (createHttpsServer({ cert: tls.cert, key: tls.key }, serve) as unknown as Server) : createServer(serve);
  // Uploads of many gigabytes and sync answers that wait for a conversion
  // outlast Node's default five-minute limit on a request.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  log.info('serving', { port: (server.address() as AddressInfo).port, tls: tls !== undefined });
  return server;
}

/** Stops listening and drops idle and open connections, so the process can end. */
export function stopPodServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  });
}
