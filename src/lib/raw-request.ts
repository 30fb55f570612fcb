// Requests to kube-apiserver as raw JSON over the kubeconfig's connection,
// for bodies the client library would re-serialise (server-side apply of CRDs)
// and for paths it has no method for (aggregated subresources). It loads no
// client library: virtctl sends every request through here.
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

/**
 * What a request needs of a kubeconfig: the server, and its TLS and credentials as request options.
 * client-node's KubeConfig has this shape, and so has virtctl's own reader (src/virtctl/kubeconfig.ts).
 */
export interface ApiConnection {
  getCurrentCluster(): { server: string } | null;
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
}

/** The message of a Kubernetes Status response body, if the body is one. */
export function statusMessage(body: unknown): string | undefined {
  try {
    const parsed = typeof body === 'string' ? JSON.parse(body) : body;
    if (parsed && typeof parsed === 'object' && 'message' in parsed) return String((parsed as { message: unknown }).message);
  } catch {
    // not JSON
  }
  return undefined;
}

/** A stream's whole content as text. */
export function readText(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

/** One finished request to kube-apiserver, for the API client's metrics. */
export interface RequestRecord {
  method: string;
  url: string;
  /** The answer's status code; undefined when none came (connection error). */
  status?: number;
  /** Seconds from sending to the answer's headers. */
  seconds?: number;
}

let requestObserver: ((record: RequestRecord) => void) | undefined;
/**
 * Who hears of every request the component sends (its metrics); set once by the component.
 * Kept here, free of any metrics library, so that virtctl, which sends its requests through
 * this module, loads none.
 */
export function setRequestObserver(observer: ((record: RequestRecord) => void) | undefined): void {
  requestObserver = observer;
}
/** Tells the observer of a finished request. */
export function observeRequest(record: RequestRecord): void {
  try {
    requestObserver?.(record);
  } catch {
    // metrics never break a request
  }
}

/** A non-2xx answer; `status` is the Status message when the server sent one. */
export class ApiError extends Error {
  readonly code: number;
  readonly status: string;
  constructor(code: number, body: string, what: string) {
    const status = statusMessage(body) ?? (body || `${code}`);
    super(`${what}: ${code} ${status}`);
    this.code = code;
    this.status = status;
  }
}

export interface RawRequest {
  contentType?: string;
  body?: string;
  headers?: Record<string, string | string[]>;
}

/** The kubeconfig's TLS, credentials and any extra headers, as options for a request or a WebSocket. */
export async function connectionOptions(
  kc: ApiConnection,
  headers: Record<string, string | string[]> = {},
): Promise<RequestOptions & { headers: Record<string, string | string[]> }> {
  const options: RequestOptions & { headers: Record<string, string | string[]> } = { headers: { Accept: 'application/json', ...headers } };
  await kc.applyToHTTPSOptions(options);
  return options;
}

/** Sends one request; resolves with the answer's text, rejects with ApiError for a non-2xx answer. */
export async function rawRequest(kc: ApiConnection, method: string, path: string, req: RawRequest = {}): Promise<string> {
  const url = new URL(kc.getCurrentCluster()!.server.replace(/\/$/, '') + path);
  const options = await connectionOptions(kc, { ...req.headers, ...(req.contentType ? { 'Content-Type': req.contentType } : {}) });
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = send(url, { ...options, method }, (res) => {
      observeRequest({ method, url: url.href, status: res.statusCode, seconds: (performance.now() - started) / 1000 });
      readText(res).then((text) => {
        const code = res.statusCode ?? 500;
        if (code < 200 || code >= 300) reject(new ApiError(code, text, `${method} ${path}`));
        else resolve(text);
      }, reject);
    });
    request.on('error', (error) => {
      observeRequest({ method, url: url.href });
      reject(error);
    });
    request.end(req.body);
  });
}
