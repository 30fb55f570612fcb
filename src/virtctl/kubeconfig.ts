// virtctl's own kubeconfig reader: what kubectl reads of a kubeconfig (clusters, users, contexts;
// $KUBECONFIG with several files, ~/.kube/config, the pod's service account), turned into the
// options of one HTTPS request. It replaces @kubernetes/client-node's KubeConfig on virtctl's path,
// whose import alone took most of a virtctl run.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { parseKubeconfigYaml } from './kubeconfig-yaml.ts';

interface ClusterEntry {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
}

interface ExecConfig {
  apiVersion?: string;
  command?: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  interactiveMode?: 'Never' | 'IfAvailable' | 'Always';
  provideClusterInfo?: boolean;
}

interface UserEntry {
  token?: string;
  'token-file'?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  as?: string;
  'as-groups'?: string[];
  exec?: ExecConfig;
  'auth-provider'?: { name?: string; config?: Record<string, string> };
}

interface ContextEntry {
  cluster?: string;
  user?: string;
  namespace?: string;
}

/** What was read of the kubeconfig files: the first file to name an entry wins, as in kubectl. */
export interface KubeconfigData {
  currentContext?: string;
  clusters: Map<string, ClusterEntry>;
  users: Map<string, UserEntry>;
  contexts: Map<string, ContextEntry>;
}

interface RawConfig {
  'current-context'?: string;
  clusters?: { name?: string; cluster?: ClusterEntry }[] | null;
  users?: { name?: string; user?: UserEntry }[] | null;
  contexts?: { name?: string; context?: ContextEntry }[] | null;
}

const resolved = (base: string, path: string | undefined) => (path && !isAbsolute(path) ? join(base, path) : path);

/** Adds one file's entries to `into`; paths in it are relative to its folder, as kubectl reads them. */
export function mergeKubeconfig(into: KubeconfigData, raw: unknown, file: string): KubeconfigData {
  const config = (raw ?? {}) as RawConfig;
  if (typeof config !== 'object') throw new Error(`${file}: not a kubeconfig`);
  const base = dirname(file);
  into.currentContext ||= config['current-context'] || undefined;
  for (const { name, cluster } of config.clusters ?? []) {
    if (!name || into.clusters.has(name)) continue;
    into.clusters.set(name, { ...cluster, 'certificate-authority': resolved(base, cluster?.['certificate-authority']) });
  }
  for (const { name, user } of config.users ?? []) {
    if (!name || into.users.has(name)) continue;
    const command = user?.exec?.command;
    into.users.set(name, {
      ...user,
      'client-certificate': resolved(base, user?.['client-certificate']),
      'client-key': resolved(base, user?.['client-key']),
      'token-file': resolved(base, user?.['token-file']),
      // A plugin named by a relative path (with a slash) is found from the kubeconfig's folder, one without on PATH.
      ...(user?.exec && { exec: { ...user.exec, command: command?.includes('/') ? resolved(base, command) : command } }),
    });
  }
  for (const { name, context } of config.contexts ?? []) if (name && !into.contexts.has(name)) into.contexts.set(name, { ...context });
  return into;
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod's service account, as in-cluster clients use it. */
function inClusterConfig(env: NodeJS.ProcessEnv, root = SERVICE_ACCOUNT): KubeconfigData | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(join(root, 'token'))) return undefined;
  const namespaceFile = join(root, 'namespace');
  return {
    currentContext: 'in-cluster',
    clusters: new Map([
      [
        'in-cluster',
        { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, 'certificate-authority': join(root, 'ca.crt') },
      ],
    ]),
    users: new Map([['in-cluster', { 'token-file': join(root, 'token') }]]),
    contexts: new Map([
      [
        'in-cluster',
        {
          cluster: 'in-cluster',
          user: 'in-cluster',
          namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined,
        },
      ],
    ]),
  };
}

/** An unauthenticated server on localhost:8080, as kubectl assumes when there is no kubeconfig. */
const localhostConfig = (): KubeconfigData => ({
  currentContext: 'localhost',
  clusters: new Map([['localhost', { server: 'http://localhost:8080' }]]),
  users: new Map(),
  contexts: new Map([['localhost', { cluster: 'localhost' }]]),
});

/** Where the kubeconfig comes from: --kubeconfig, else every file of $KUBECONFIG that exists, else ~/.kube/config. */
export function kubeconfigFiles(flag: string | undefined, env: NodeJS.ProcessEnv, home: string): string[] {
  if (flag) return [flag];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(':').filter((file) => file && existsSync(file));
  const file = join(home, '.kube', 'config');
  return existsSync(file) ? [file] : [];
}

/**
 * A kubeconfig's text as data: JSON as it is, the YAML kubectl writes by our reader, and any other
 * YAML by the `yaml` package, loaded only then.
 */
export async function parseConfig(text: string): Promise<unknown> {
  if (text.trimStart().startsWith('{')) return JSON.parse(text);
  return parseKubeconfigYaml(text) ?? (await import('yaml')).parse(text);
}

/** Reads the kubeconfig files (or the in-cluster service account when there are none). */
export async function loadKubeconfig(files: string[], env: NodeJS.ProcessEnv = process.env): Promise<KubeconfigData> {
  const data: KubeconfigData = { clusters: new Map(), users: new Map(), contexts: new Map() };
  // Nothing to read: the pod's service account, else kubectl's (and client-node's) last resort.
  if (files.length === 0) return inClusterConfig(env) ?? localhostConfig();
  const texts = files.map((file) => readFileSync(file, 'utf8'));
  for (const [i, file] of files.entries()) mergeKubeconfig(data, await parseConfig(texts[i]), file);
  return data;
}

/** The flags that choose or override what the kubeconfig says, as kubectl's. */
export interface Overrides {
  context?: string;
  cluster?: string;
  user?: string;
  server?: string;
  token?: string;
  insecureSkipTlsVerify?: boolean;
}

interface ExecCredential {
  status?: { token?: string; clientCertificateData?: string; clientKeyData?: string; expirationTimestamp?: string };
}

/** One cluster and user out of a kubeconfig: the server, and what a request to it carries. */
export class Connection {
  readonly server: string;
  readonly namespace: string | undefined;
  readonly #cluster: ClusterEntry;
  readonly #user: UserEntry;
  readonly #token: string | undefined;
  readonly #insecure: boolean;
  #credential: Promise<ExecCredential> | undefined;

  constructor(data: KubeconfigData, overrides: Overrides = {}) {
    const contextName = overrides.context ?? data.currentContext;
    const context = contextName ? data.contexts.get(contextName) : undefined;
    if (overrides.context && !context) throw new Error(`context was not found for specified context: ${overrides.context}`);
    const clusterName = overrides.cluster ?? context?.cluster;
    const cluster = clusterName ? data.clusters.get(clusterName) : undefined;
    if (overrides.cluster && !cluster) throw new Error(`cluster "${overrides.cluster}" was not found in the kubeconfig`);
    const userName = overrides.user ?? context?.user;
    const user = userName ? data.users.get(userName) : undefined;
    if (overrides.user && !user) throw new Error(`user "${overrides.user}" was not found in the kubeconfig`);
    const server = overrides.server ?? cluster?.server;
    if (!server) throw new Error('no cluster is configured: set KUBECONFIG or pass --kubeconfig');
    if (cluster?.['proxy-url']) throw new Error(`the kubeconfig's proxy-url (${cluster['proxy-url']}) is not supported by this virtctl`);
    this.server = server.replace(/\/$/, '');
    this.namespace = context?.namespace || undefined;
    this.#cluster = cluster ?? {};
    this.#user = user ?? {};
    this.#token = overrides.token;
    // As kubectl: --insecure-skip-tls-verify drops the cluster's CA.
    this.#insecure = overrides.insecureSkipTlsVerify ?? this.#cluster['insecure-skip-tls-verify'] === true;
  }

  /** client-node's KubeConfig's name for it, so raw-request.ts takes either. */
  getCurrentCluster(): { server: string } {
    return { server: this.server };
  }

  /** The impersonation the kubeconfig's user asks for (--as and --as-group win). */
  get impersonation(): { user?: string; groups?: string[] } {
    return { user: this.#user.as, groups: this.#user['as-groups'] };
  }

  /** TLS (CA, client certificate, server name, verification) and credentials, onto request or WebSocket options. */
  async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    const cluster = this.#cluster;
    const user = this.#user;
    const headers = (options.headers ??= {}) as Record<string, string | string[]>;
    if (this.#insecure) options.rejectUnauthorized = false;
    else {
      const ca = fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data']);
      if (ca) options.ca = ca;
    }
    if (cluster['tls-server-name']) options.servername = cluster['tls-server-name'];
    const cert = fileOrData(user['client-certificate'], user['client-certificate-data']);
    const key = fileOrData(user['client-key'], user['client-key-data']);
    if (cert) options.cert = cert;
    if (key) options.key = key;
    const token = this.#token ?? user.token ?? (user['token-file'] ? readFileSync(user['token-file'], 'utf8').trim() : undefined);
    if (token) {
      headers.Authorization = `Bearer ${token}`;
      return;
    }
    if (user.username) options.auth = `${user.username}:${user.password ?? ''}`;
    if (user.exec) {
      const { status } = await (this.#credential ??= runExecPlugin(user.exec, this.server));
      if (status?.clientCertificateData) options.cert = status.clientCertificateData;
      if (status?.clientKeyData) options.key = status.clientKeyData;
      if (status?.token) headers.Authorization = `Bearer ${status.token}`;
      return;
    }
    const provider = user['auth-provider'];
    if (provider) {
      // What a login left in the kubeconfig (OIDC's id-token, a cached access-token); refreshing it is the login tool's job.
      const cached = provider.config?.['id-token'] ?? provider.config?.['access-token'];
      if (!cached)
        throw new Error(`the kubeconfig's auth-provider ${provider.name ?? ''} is not supported by this virtctl: use an exec plugin`);
      headers.Authorization = `Bearer ${cached}`;
    }
  }
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

/** Runs a client-go credential plugin (client.authentication.k8s.io ExecCredential) once. */
function runExecPlugin(exec: ExecConfig, server: string): Promise<ExecCredential> {
  if (!exec.command) throw new Error("the kubeconfig user's exec has no command");
  const interactive = exec.interactiveMode !== 'Never' && process.stdin.isTTY === true;
  const apiVersion = exec.apiVersion ?? 'client.authentication.k8s.io/v1';
  const info = {
    apiVersion,
    kind: 'ExecCredential',
    spec: { interactive, ...(exec.provideClusterInfo && { cluster: { server } }) },
  };
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const { name, value } of exec.env ?? []) env[name] = value;
  return new Promise((resolve, reject) => {
    const child = spawn(exec.command!, exec.args ?? [], { env, stdio: [interactive ? 'inherit' : 'ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', (error) => reject(new Error(`exec plugin ${exec.command}: ${error.message}`)));
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`exec plugin ${exec.command} exited with ${code}`));
      try {
        resolve(JSON.parse(out) as ExecCredential);
      } catch {
        reject(new Error(`exec plugin ${exec.command} printed no ExecCredential`));
      }
    });
  });
}
