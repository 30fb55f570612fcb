// virtctl's connection to the cluster, read from kubeconfig the way kubectl
// reads it ($KUBECONFIG or ~/.kube/config, --kubeconfig, --context, --cluster,
// --user, -n, --server, --token, --as), for plain requests and for the
// WebSocket streams of the subresource API.
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocket, type ClientOptions } from 'ws';
import { PLAIN_STREAM_PROTOCOL } from '../lib/stream-relay.ts';
import { ApiError, connectionOptions, rawRequest, readText } from '../lib/raw-request.ts';

export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
  namespace?: string;
  server?: string;
  token?: string;
  as?: string;
  asGroup?: string[];
  insecureSkipTlsVerify?: boolean;
}

export const SUBRESOURCES = '/apis/subresources.kubevirt.io/v1';

export class Cluster {
  readonly namespace: string;
  readonly #kc: KubeConfig;
  readonly #flags: ConnectionFlags;

  constructor(flags: ConnectionFlags) {
    const kc = new KubeConfig();
    if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
    if (flags.context) kc.setCurrentContext(flags.context);
    const context = kc.getContextObject(kc.getCurrentContext());
    // --cluster, --user and --server override the context's choices, as in kubectl.
    if (flags.cluster || flags.user || flags.server || flags.token || flags.insecureSkipTlsVerify) {
      const cluster = kc.getCluster(flags.cluster ?? context?.cluster ?? '') ?? kc.getCurrentCluster();
      const user = kc.getUser(flags.user ?? context?.user ?? '') ?? kc.getCurrentUser();
      if (!cluster && !flags.server) throw new Error('no cluster in kubeconfig: pass --server or --kubeconfig');
      const patched = new KubeConfig();
      patched.loadFromOptions({
        clusters: [
          {
            name: 'virtctl',
            server: flags.server ?? cluster!.server,
            caData: cluster?.caData,
            caFile: cluster?.caFile,
            skipTLSVerify: flags.insecureSkipTlsVerify ?? cluster?.skipTLSVerify ?? false,
          },
        ],
        users: [{ ...(user ?? {}), name: 'virtctl', ...(flags.token && { token: flags.token }) }],
        contexts: [{ name: 'virtctl', cluster: 'virtctl', user: 'virtctl', namespace: context?.namespace }],
        currentContext: 'virtctl',
      });
      this.#kc = patched;
    } else {
      this.#kc = kc;
    }
    if (!this.#kc.getCurrentCluster()) throw new Error('no cluster is configured: set KUBECONFIG or pass --kubeconfig');
    this.namespace = flags.namespace ?? context?.namespace ?? 'default';
    this.#flags = flags;
  }

  /** Impersonation, as kubectl's --as and --as-group send it. */
  #headers(): Record<string, string | string[]> {
    return {
      ...(this.#flags.as && { 'Impersonate-User': this.#flags.as }),
      ...(this.#flags.asGroup?.length && { 'Impersonate-Group': this.#flags.asGroup }),
    };
  }

  /** A request to kube-apiserver; a non-2xx answer throws ApiError with the Status message. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await rawRequest(this.#kc, method, path, {
      headers: this.#headers(),
      ...(body !== undefined && { contentType: 'application/json', body: JSON.stringify(body) }),
    });
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Opens a subresource stream; a refusal throws ApiError with the server's status and message. */
  async stream(path: string, query: Record<string, string> = {}): Promise<WebSocket> {
    const url = new URL(this.#kc.getCurrentCluster()!.server.replace(/\/$/, '') + path);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const options = await connectionOptions(this.#kc, this.#headers());
    const ws = new WebSocket(url, [PLAIN_STREAM_PROTOCOL], options as ClientOptions);
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        // Held until the caller attaches its end, so the first bytes are not lost.
        ws.pause();
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        void readText(res).then((text) => reject(new ApiError(res.statusCode ?? 0, text, `GET ${path}`)), reject);
      });
      ws.once('error', reject);
    });
  }
}

export const vmiPath = (namespace: string, name: string, subresource: string) =>
  `${SUBRESOURCES}/namespaces/${namespace}/virtualmachineinstances/${name}/${subresource}`;
export const vmPath = (namespace: string, name: string, subresource: string) =>
  `${SUBRESOURCES}/namespaces/${namespace}/virtualmachines/${name}/${subresource}`;
