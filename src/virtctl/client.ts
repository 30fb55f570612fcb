// virtctl's connection to the cluster, read from kubeconfig the way kubectl
// reads it ($KUBECONFIG or ~/.kube/config, --kubeconfig, --context, --cluster,
// --user, -n, --server, --token, --as), for plain requests and for the
// WebSocket streams of the subresource API. It loads no client library, and
// `ws` only for a stream: a plain command starts in a few tens of milliseconds.
import { homedir } from 'node:os';
import type { WebSocket } from 'ws';
import { ApiError, connectionOptions, rawRequest, readText } from '../lib/raw-request.ts';
import { Connection, kubeconfigFiles, loadKubeconfig } from './kubeconfig.ts';

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
  readonly #connection: Connection;
  readonly #flags: ConnectionFlags;

  constructor(connection: Connection, flags: ConnectionFlags) {
    this.#connection = connection;
    this.namespace = flags.namespace ?? connection.namespace ?? 'default';
    this.#flags = flags;
  }

  /** Reads the kubeconfig the flags and the environment name. */
  static async connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Promise<Cluster> {
    const data = await loadKubeconfig(kubeconfigFiles(flags.kubeconfig, env, homedir()), env);
    return new Cluster(new Connection(data, flags), flags);
  }

  /** Impersonation, as kubectl's --as and --as-group send it (else the kubeconfig user's as and as-groups). */
  #headers(): Record<string, string | string[]> {
    const fromConfig = this.#connection.impersonation;
    const user = this.#flags.as ?? fromConfig.user;
    const groups = this.#flags.asGroup?.length ? this.#flags.asGroup : fromConfig.groups;
    return {
      ...(user && { 'Impersonate-User': user }),
      ...(groups?.length && { 'Impersonate-Group': groups }),
    };
  }

  /** A request to kube-apiserver; a non-2xx answer throws ApiError with the Status message. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await rawRequest(this.#connection, method, path, {
      headers: this.#headers(),
      ...(body !== undefined && { contentType: 'application/json', body: JSON.stringify(body) }),
    });
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Opens a subresource stream; a refusal throws ApiError with the server's status and message. */
  async stream(path: string, query: Record<string, string> = {}): Promise<WebSocket> {
    const [{ WebSocket }, { PLAIN_STREAM_PROTOCOL }] = await Promise.all([import('ws'), import('../lib/stream-relay.ts')]);
    const url = new URL(this.#connection.server + path);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const options = await connectionOptions(this.#connection, this.#headers());
    const ws = new WebSocket(url, [PLAIN_STREAM_PROTOCOL], options);
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
