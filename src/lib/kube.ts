// Kubernetes client set-up and informers (list+watch caches).
import {
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
  type RequestContext,
} from '@kubernetes/client-node';
import type { Logger } from './log.ts';
import { observeRequest, statusMessage } from './raw-request.ts';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * A KubeConfig whose API calls share one connection pool per cluster and user,
 * as client-go's transport does. client-node 2.0 builds a new undici Agent for
 * every call: each call paid a TLS handshake on both ends (a sixth of
 * kube-apiserver's CPU in a burst of VMI starts) and left its connection open
 * until kube-apiserver dropped it.
 */
export class PooledKubeConfig extends KubeConfig {
  readonly #dispatchers = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return;
    const key = JSON.stringify([this.getCurrentCluster()?.name, this.getCurrentUser()?.name]);
    const pooled = this.#dispatchers.get(key);
    if (!pooled) {
      this.#dispatchers.set(key, observed(fresh));
      context.setDispatcher(this.#dispatchers.get(key)!);
      return;
    }
    context.setDispatcher(pooled);
    void fresh.close(); // never connected
  }
}

type DispatchHandler = Record<string | symbol, unknown>;

/**
 * The dispatcher with each request reported to the request observer (the API client's
 * metrics) once its answer's headers arrive, or it fails. The handler undici passes is
 * wrapped member by member, whichever of its handler interfaces (onHeaders/onError or
 * onResponseStart/onResponseError) it uses.
 */
export function observed(dispatcher: Dispatcher): Dispatcher {
  const dispatch = dispatcher.dispatch.bind(dispatcher);
  dispatcher.dispatch = ((options: { origin?: string | URL; path: string; method: string }, handler: DispatchHandler) => {
    const started = performance.now();
    const url = `${String(options.origin ?? '').replace(/\/$/, '')}${options.path}`;
    let reported = false;
    const report = (status?: number) => {
      if (reported) return;
      reported = true;
      observeRequest({
        method: options.method,
        url,
        status,
        seconds: status === undefined ? undefined : (performance.now() - started) / 1000,
      });
    };
    const wrapped = new Proxy(handler, {
      get(target, prop) {
        const value = target[prop];
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => unknown).bind(target);
        if (prop === 'onHeaders') {
          return (status: number, ...rest: unknown[]) => {
            report(status);
            return method(status, ...rest);
          };
        }
        if (prop === 'onResponseStart') {
          return (controller: unknown, status: number, ...rest: unknown[]) => {
            report(status);
            return method(controller, status, ...rest);
          };
        }
        if (prop === 'onError' || prop === 'onResponseError') {
          return (...args: unknown[]) => {
            report();
            return method(...args);
          };
        }
        return method;
      },
    });
    return dispatch(options as never, wrapped as never);
  }) as Dispatcher['dispatch'];
  return dispatcher;
}

export function loadKubeConfig(): KubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromDefault();
  return kc;
}

export type CachedInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/**
 * What a component reads of an informer: its cache and its change events. Components take
 * this, so their wiring runs the same over a real informer and a seeded one in tests.
 */
export interface InformerCache<T> {
  on(verb: 'add' | 'update' | 'delete', callback: (object: T) => void): void;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
}

export type InformerVerb = 'add' | 'update' | 'delete';

/** Calls back on every change the informer reports, whichever its kind. */
export function onEveryChange<T>(informer: InformerCache<T>, callback: (object: T, verb: InformerVerb) => void): void {
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, (object) => callback(object, verb));
}

/** One of kubevirt-ts's API types where client-node wants a KubernetesObject (their ObjectMeta types differ in detail). */
export type Typed<T> = T & KubernetesObject;

/** A JSON patch (RFC 6902) operation, as sent with content type application/json-patch+json. */
export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** A cluster-wide informer for one custom resource (namespaced ones are listed across all namespaces). */
export function customInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
): CachedInformer<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return makeInformer<T>(
    kc,
    `/apis/${group}/${version}/${plural}`,
    () => api.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<T>>,
  );
}

/** Starts informers, restarting any whose watch fails; resolves once every cache is filled. */
export async function startInformers(log: Logger, ...informers: CachedInformer<KubernetesObject>[]): Promise<void> {
  for (const informer of informers) {
    informer.on('error', (error) => {
      log.warning('watch failed; restarting it', { error: String(error) });
      setTimeout(() => void informer.start(), 2000);
    });
  }
  await Promise.all(informers.map((i) => i.start()));
}

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

/** For `.catch`: a 404 (the object is gone, or was never there) resolves to undefined; any other failure stays one. */
export function ignoreNotFound(error: unknown): undefined {
  if ((error as { code?: number }).code === 404) return undefined;
  throw error;
}

/** (Defined beside the raw requests, which load no client library.) */
export { statusMessage };

/** A readable one-line reason for a failed API call: the Status message the server sent, when there is one. */
export function apiErrorMessage(error: unknown): string {
  const e = error as { code?: number; body?: unknown; message?: string };
  const message = statusMessage(e.body);
  if (message !== undefined) return `${e.code ?? ''} ${message}`.trim();
  return String(e.message ?? error).split('\n')[0];
}
