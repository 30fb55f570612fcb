// Kubernetes client set-up and informers (list+watch caches).
import {
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
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

/**
 * What an informer keeps of each object it is sent (client-go's SetTransform): applied to every
 * listed item and every watched object before the cache stores it or any handler sees it. It may
 * change the object in place, and must keep metadata's name, namespace and resourceVersion.
 */
export type Transform<T> = (object: T) => T;

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * A copy without undefined fields: client-node's typed lists give class instances that carry
 * every field of the type, most of them undefined (each a slot in memory). Dates stay Dates.
 */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map(compact) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) if (field !== undefined) out[key] = compact(field);
  return out as T;
}

/**
 * The transform every informer applies: no managedFields, server-side apply's bookkeeping (often
 * a third of an object), which no component reads. Safe for objects written back whole: a PUT
 * without managedFields keeps the stored ones.
 */
export function stripManagedFields<T extends KubernetesObject>(object: T): T {
  const o = compact(object);
  if (o.metadata) delete o.metadata.managedFields;
  return o;
}

/**
 * Drops kubectl's last-applied annotation (a second copy of the object), for kinds a component
 * never writes back whole (a PUT of the cached object would remove the annotation on the server).
 */
export function withoutLastApplied<T extends KubernetesObject>(object: T): T {
  const annotations = object.metadata?.annotations;
  if (!annotations || !(LAST_APPLIED in annotations)) return object;
  const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
  if (Object.keys(rest).length) object.metadata!.annotations = rest;
  else delete object.metadata!.annotations;
  return object;
}

/** Transforms applied one after another. */
export const chain =
  <T>(...transforms: Transform<T>[]): Transform<T> =>
  (object) =>
    transforms.reduce((o, t) => t(o), object);

/** A Watch whose objects pass through `transform` before the informer sees them. */
class TransformingWatch<T extends KubernetesObject> extends Watch {
  readonly #transform: Transform<T>;
  constructor(kc: KubeConfig, transform: Transform<T>) {
    super(kc);
    this.#transform = transform;
  }
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, object, watchObj) =>
        callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.#transform(object as T) : object, watchObj),
      done,
    );
  }
}

/**
 * An informer (list+watch cache, as client-node's makeInformer) that keeps each object as
 * `transform` returns it, after the bookkeeping no component reads (stripManagedFields).
 */
export function makeInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  labelSelector?: string,
  transform: Transform<T> = (o) => o,
): CachedInformer<T> {
  const keep = (o: T) => transform(stripManagedFields(o));
  const listKept = async () => {
    const listed = await list();
    return { ...listed, items: listed.items.map(keep) };
  };
  return new ListWatch<T>(path, new TransformingWatch(kc, keep), listKept, false, labelSelector);
}

/** A cluster-wide informer for one custom resource (namespaced ones are listed across all namespaces). */
export function customInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
  transform?: Transform<T>,
): CachedInformer<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return makeInformer<T>(
    kc,
    `/apis/${group}/${version}/${plural}`,
    () => api.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<T>>,
    undefined,
    transform,
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

/** For `.catch` of a create: a 409 (one of that name exists) resolves to undefined; any other failure stays one. */
export function ignoreConflict(error: unknown): undefined {
  if ((error as { code?: number }).code === 409) return undefined;
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
