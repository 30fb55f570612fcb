// What the web console's server passes on to kube-apiserver, and with whose
// rights: only the API paths, only the headers an API call needs, and only
// the bearer token the browser sent. It has no credentials of its own to
// add, so a request can never do more than its user may. Pure: ./server.ts
// carries the requests.

import { BEARER_PROTOCOL_PREFIX, REFUSAL_CLOSE_BASE, statusMessageOf } from '../contract/streams.ts';

/** Request headers passed to kube-apiserver; everything else (cookies, impersonation, forwarding headers) stays behind. */
const FORWARDED_REQUEST_HEADERS = ['authorization', 'accept', 'content-type'];
/** Response headers passed back to the browser. */
export const FORWARDED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'warning'];

/** Whether a path is one of the Kubernetes API's (core or a group), the only ones the server forwards. */
export function isApiPath(path: string): boolean {
  return /^\/apis?(\/|$)/.test(path) && !path.split('/').includes('..');
}

/** The headers of an API request as forwarded: the allowed ones present, nothing else. */
export function forwardedHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

const STREAM_PATH =
  /^\/apis\/subresources\.kubevirt\.io\/v1\/namespaces\/([a-z0-9.-]+)\/virtualmachineinstances\/([a-z0-9.-]+)\/(console|vnc)$/;

/** Whether a WebSocket upgrade asks for a VMI's serial console or VNC stream, the only streams the server relays. */
export const isStreamPath = (path: string) => STREAM_PATH.test(path);

/**
 * The bearer token in a WebSocket's offered subprotocols (`base64url.bearer.authorization.k8s.io.<token, base64url>`),
 * and the other protocols offered; the token's protocol is never answered, so the token is not echoed back.
 */
export function bearerFromProtocols(header: string | undefined): { token?: string; protocols: string[] } {
  const offered = (header ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const carrier = offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  const encoded = carrier?.slice(BEARER_PROTOCOL_PREFIX.length);
  const token = encoded && /^[A-Za-z0-9_-]+$/.test(encoded) ? Buffer.from(encoded, 'base64url').toString('utf8') : undefined;
  return { token: token || undefined, protocols: offered.filter((p) => p !== carrier) };
}

/** A Kubernetes Status for an error the server answers itself. */
export function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** How a refused stream is closed towards the browser (see REFUSAL_CLOSE_BASE): a close reason holds at most 123 bytes. */
export function refusalClose(code: number, body: string): { closeCode: number; reason: string } {
  let reason = statusMessageOf(body);
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return { closeCode: REFUSAL_CLOSE_BASE + (code >= 100 && code <= 999 ? code : 502), reason };
}
