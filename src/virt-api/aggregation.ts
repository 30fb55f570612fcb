// The aggregated API's front door: who may call it, and what it says about
// itself. kube-apiserver forwards each request to subresources.kubevirt.io
// with the user in X-Remote-* headers, over TLS with its front-proxy client
// certificate. Those headers mean nothing unless that certificate chains to
// the requestheader CA and carries an allowed CN (upstream once skipped the
// CN check, letting any certificate from that CA impersonate users).

export const SUBRESOURCE_GROUP = 'subresources.kubevirt.io';
export const SUBRESOURCE_VERSION = 'v1';

export interface RequestHeaderConfig {
  /** PEM of the CA that signs front-proxy client certificates. */
  clientCA: string;
  /** CNs allowed to assert users; empty means any certificate the CA signed. */
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

/** Reads kube-system/extension-apiserver-authentication's data, as kube-apiserver publishes it. */
export function requestHeaderConfig(data: Record<string, string>): RequestHeaderConfig | undefined {
  const clientCA = data['requestheader-client-ca-file'];
  if (!clientCA) return undefined;
  const list = (key: string) => (data[key] ? (JSON.parse(data[key]) as string[]) : []);
  return {
    clientCA,
    allowedNames: list('requestheader-allowed-names'),
    usernameHeaders: list('requestheader-username-headers'),
    groupHeaders: list('requestheader-group-headers'),
    extraHeaderPrefixes: list('requestheader-extra-headers-prefix'),
  };
}

export interface ProxyPeer {
  /** The TLS layer verified the client certificate against the requestheader CA. */
  verified: boolean;
  commonName?: string;
}

export interface RemoteUser {
  name: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type ProxyAuthentication = { user: RemoteUser } | { error: string };

/** Who the request is from, if the proxy that forwarded it is trusted. */
export function authenticateProxy(
  peer: ProxyPeer,
  headers: Record<string, string | string[] | undefined>,
  config: RequestHeaderConfig | undefined,
): ProxyAuthentication {
  if (!config) return { error: 'the requestheader client CA is not known yet' };
  if (!peer.verified) return { error: 'no client certificate signed by the requestheader client CA was presented' };
  if (config.allowedNames.length && !config.allowedNames.includes(peer.commonName ?? '')) {
    return {
      error: `the client certificate's common name ${JSON.stringify(peer.commonName ?? '')} is not one of the allowed requestheader names`,
    };
  }
  const values = (name: string) => {
    const v = headers[name.toLowerCase()];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  const name = config.usernameHeaders.flatMap(values)[0];
  if (!name) return { error: 'the request carries no user' };
  const extra: Record<string, string[]> = {};
  for (const prefix of config.extraHeaderPrefixes) {
    for (const [header, value] of Object.entries(headers)) {
      if (!header.startsWith(prefix.toLowerCase()) || value === undefined) continue;
      const key = decodeURIComponent(header.slice(prefix.length));
      extra[key] = [...(extra[key] ?? []), ...(Array.isArray(value) ? value : [value])];
    }
  }
  return { user: { name, groups: config.groupHeaders.flatMap(values), extra } };
}

const NAMESPACED_SUBRESOURCES = [
  'expand-vm-spec',
  ...[
    'vnc',
    'vnc/screenshot',
    'console',
    'portforward',
    'pause',
    'unpause',
    'freeze',
    'unfreeze',
    'reset',
    'softreboot',
    'guestosinfo',
    'userlist',
    'filesystemlist',
    'addvolume',
    'removevolume',
    'evacuate/cancel',
  ].map((s) => `virtualmachineinstances/${s}`),
  ...['start', 'stop', 'restart', 'migrate', 'expand-spec', 'portforward', 'addvolume', 'removevolume', 'evacuate/cancel'].map(
    (s) => `virtualmachines/${s}`,
  ),
];

export function apiResourceList() {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`,
    resources: NAMESPACED_SUBRESOURCES.map((name) => ({ name, singularName: '', namespaced: true, kind: '', verbs: [] })),
  };
}

export function apiGroup() {
  const version = { groupVersion: `${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`, version: SUBRESOURCE_VERSION };
  return { kind: 'APIGroup', apiVersion: 'v1', name: SUBRESOURCE_GROUP, versions: [version], preferredVersion: version };
}

/** A Kubernetes Status error body. */
export function statusError(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
