// virt-handler's HTTPS endpoint for virt-api (mutual TLS with the kubevirt CA):
// its port, the client name it lets in, and the paths virt-api calls.

export const HANDLER_PORT = 8186;
/** The common name of the client certificate virt-api presents. */
export const VIRT_API_CLIENT_CN = 'kubevirt.io:system:client:virt-handler';
export const HANDLER_ACTIONS = ['pause', 'unpause', 'softreboot', 'reset', 'freeze', 'unfreeze'] as const;
export type HandlerAction = (typeof HANDLER_ACTIONS)[number];
export type StreamKind = 'console' | 'vnc';

const vmiPath = (namespace: string, name: string) => `/v1/namespaces/${namespace}/virtualmachineinstances/${name}`;
/** The path virt-api calls for an action on a VMI. */
export const actionPath = (namespace: string, name: string, action: HandlerAction) => `${vmiPath(namespace, name)}/${action}`;
/** The path virt-api reads a VMI's guest agent information from. */
export const guestInfoPath = (namespace: string, name: string) => `${vmiPath(namespace, name)}/guestinfo`;
/** The namespace, name and verb of a path under vmiPath, or undefined for any other. */
export function parseVmiPath(pathname: string): { namespace: string; name: string; verb: string } | undefined {
  const match = /^\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/([a-z]+)$/.exec(pathname);
  return match ? { namespace: match[1], name: match[2], verb: match[3] } : undefined;
}
/**
 * A Go duration as metav1.Duration writes it ("0s", "10s", "5m0s", "1h2m3.5s",
 * "1.5h", "300ms"), in seconds; undefined when it is not one.
 */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (text === '0') return 0;
  if (!match) return undefined;
  let seconds = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) seconds += Number(value) * units[unit];
  return match[1] === '-' ? -seconds : seconds;
}

/** The body of a freeze request (upstream's FreezeUnfreezeTimeout): the seconds after which the guest thaws by itself, or why not. */
export function freezeTimeoutOf(body: string): { seconds: number } | { error: string } {
  let parsed: { unfreezeTimeout?: unknown };
  try {
    parsed = body.trim() ? JSON.parse(body) : {};
  } catch {
    return { error: 'failed to unmarshal unfreeze timeout' };
  }
  if (parsed?.unfreezeTimeout === undefined || parsed.unfreezeTimeout === null)
    return { error: 'Unfreeze timeout in freeze request is not set' };
  const seconds = typeof parsed.unfreezeTimeout === 'string' ? parseGoDuration(parsed.unfreezeTimeout) : undefined;
  return seconds === undefined ? { error: 'failed to unmarshal unfreeze timeout' } : { seconds: Math.trunc(seconds) };
}

/** The WebSocket path of a VMI's serial console or VNC display. */
/**
 * A VNC stream's options: upstream's preserveSession (refused while another is open), and kubevirt-ts's
 * shared (joins the open ones instead of ending them: QEMU serves several clients that ask to share).
 */
export interface VncOptions {
  preserveSession?: boolean;
  shared?: boolean;
}

export const streamPath = (namespace: string, name: string, kind: StreamKind, vnc: VncOptions = {}) =>
  `${vmiPath(namespace, name)}/${kind}${kind === 'vnc' ? `?preserveSession=${vnc.preserveSession === true}${vnc.shared ? '&shared=true' : ''}` : ''}`;

/** The VNC options of a stream request's query. */
export const vncOptionsOf = (query: URLSearchParams): VncOptions => ({
  preserveSession: query.get('preserveSession') === 'true',
  shared: query.get('shared') === 'true',
});
