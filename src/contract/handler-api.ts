// virt-handler's HTTPS endpoint for virt-api (mutual TLS with the kubevirt CA):
// its port, the client name it lets in, and the paths virt-api calls.

export const HANDLER_PORT = 8186;
/** The common name of the client certificate virt-api presents. */
export const VIRT_API_CLIENT_CN = 'kubevirt.io:system:client:virt-handler';
export const HANDLER_ACTIONS = ['pause', 'unpause', 'softreboot', 'reset'] as const;
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
/** The WebSocket path of a VMI's serial console or VNC display. */
export const streamPath = (namespace: string, name: string, kind: StreamKind, preserveSession = false) =>
  `${vmiPath(namespace, name)}/${kind}${kind === 'vnc' ? `?preserveSession=${preserveSession}` : ''}`;
