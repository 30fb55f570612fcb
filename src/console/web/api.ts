// The page's Kubernetes API calls: every one goes to the console server with
// the user's bearer token, which the server forwards unchanged. The token
// lives in this tab's sessionStorage only.
import { PLAIN_STREAM_PROTOCOL } from '../../contract/streams.ts';
import { bearerProtocol, describeError } from './model.ts';

const TOKEN_KEY = 'kubevirt-ts.token';
const NAMESPACE_KEY = 'kubevirt-ts.namespace';

export const token = () => sessionStorage.getItem(TOKEN_KEY) ?? '';
export const setToken = (value: string) => sessionStorage.setItem(TOKEN_KEY, value);
export const logout = () => sessionStorage.removeItem(TOKEN_KEY);
export const namespace = () => sessionStorage.getItem(NAMESPACE_KEY) ?? 'default';
export const setNamespace = (value: string) => sessionStorage.setItem(NAMESPACE_KEY, value);

export class ApiError extends Error {
  readonly code: number;
  constructor(code: number, body: string) {
    super(describeError(code, body));
    this.code = code;
  }
}

/** One API call as the logged-in user; a JSON answer is parsed, a refusal thrown as ApiError with the API's message. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${token()}`,
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // A token kube-apiserver no longer takes (expired, revoked): log in again (the login form says why itself).
  if (response.status === 401 && token() && !document.getElementById('login')) {
    logout();
    location.hash = '#/login';
  }
  if (!response.ok) throw new ApiError(response.status, text);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** The user kube-apiserver takes the token for (a SelfSubjectReview): the token is refused with an ApiError. */
export async function whoAmI(): Promise<string> {
  const review = await api<{ status?: { userInfo?: { username?: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  return review.status?.userInfo?.username ?? '';
}

/** A console or VNC WebSocket to the console server, the token offered as kube-apiserver's bearer subprotocol. */
export function streamSocket(path: string): WebSocket {
  const socket = new WebSocket(`wss://${location.host}${path}`, [PLAIN_STREAM_PROTOCOL, bearerProtocol(token())]);
  socket.binaryType = 'arraybuffer';
  return socket;
}
