// virtctl's connection to the cluster, read from kubeconfig the way kubectl
// reads it ($KUBECONFIG or ~/.kube/config, --kubeconfig, --context, --cluster,
// --user, -n, --server, --token, --as), for plain requests and for the
// WebSocket streams of the subresource API.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocket } from 'ws';
import { PLAIN_STREAM_PROTOCOL } from '../lib/stream-relay.ts';
import { statusMessage } from '../lib/kube.ts';

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

export class ApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
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
        clusters: [{ name: 'virtctl', server: flags.server ?? cluster!.server, caData: cluster?.caData, caFile: cluster?.caFile, skipTLSVerify: flags.insecureSkipTlsVerify ?? cluster?.skipTLSVerify ?? false }],
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

  get config(): KubeConfig {
    return this.#kc;
  }

  async #options(): Promise<RequestOptions> {
    const options: RequestOptions = { headers: {} };
    await this.#kc.applyToHTTPSOptions(options);
    const headers = options.headers as Record<string, string | string[]>;
    if (this.#flags.as) headers['Impersonate-User'] = this.#flags.as;
    if (this.#flags.asGroup?.length) headers['Impersonate-Group'] = this.#flags.asGroup;
    return options;
  }

  /** A request to kube-apiserver; a non-2xx answer throws ApiError with the Status message. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(this.#kc.getCurrentCluster()!.server.replace(/\/$/, '') + path);
    const options = await this.#options();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload) Object.assign(options.headers!, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, { ...options, method }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code >= 300) return reject(new ApiError(code, statusMessage(text) ?? `${code} ${res.statusMessage ?? ''}`.trim()));
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch {
            resolve(text as T);
          }
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Opens a subresource stream; a refusal throws ApiError with the server's status and message. */
  async stream(path: string, query: Record<string, string> = {}): Promise<WebSocket> {
    const url = new URL(this.#kc.getCurrentCluster()!.server.replace(/\/$/, '') + path);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const options = await this.#options();
    const ws = new WebSocket(url, [PLAIN_STREAM_PROTOCOL], { ...(options as object), headers: options.headers as Record<string, string> });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        // Held until the caller attaches its end, so the first bytes are not lost.
        ws.pause();
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          reject(new ApiError(code, statusMessage(Buffer.concat(chunks).toString('utf8')) ?? `Websocket failed with http status: ${code} ${res.statusMessage ?? ''}`.trim()));
        });
      });
      ws.once('error', reject);
    });
  }
}

export const vmiPath = (namespace: string, name: string, subresource: string) => `${SUBRESOURCES}/namespaces/${namespace}/virtualmachineinstances/${name}/${subresource}`;
export const vmPath = (namespace: string, name: string, subresource: string) => `${SUBRESOURCES}/namespaces/${namespace}/virtualmachines/${name}/${subresource}`;
