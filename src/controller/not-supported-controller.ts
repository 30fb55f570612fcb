// Carries out ./not-supported.ts: every snapshot, restore, export, clone or
// backup that appears is queued as `kind/namespace/name`, and reconcile
// writes the status that says kubevirt-ts does not do that yet, once.
import type { EventRecorder } from '../lib/events.ts';
import { apiTimestamp } from '../contract/vmi.ts';
import type { InformerCache, JsonPatchOperation } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { NOT_SUPPORTED_KINDS, NOT_SUPPORTED_REASON, type NotSupportedKind } from '../contract/not-supported.ts';
import { type NotSupportedObject, planNotSupported } from './not-supported.ts';

export interface NotSupportedControllerApi {
  /** A JSON patch of the object's status subresource. */
  patchCustomStatus(kind: NotSupportedKind, namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
}

export interface NotSupportedControllerOptions {
  api: NotSupportedControllerApi;
  /** One informer per kind of NOT_SUPPORTED_KINDS, by kind name. */
  informers: Record<string, InformerCache<NotSupportedObject>>;
  queue: WorkQueue;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

export class NotSupportedController {
  readonly #api: NotSupportedControllerApi;
  readonly #informers: Record<string, InformerCache<NotSupportedObject>>;
  readonly #queue: WorkQueue;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;

  constructor(options: NotSupportedControllerOptions) {
    this.#api = options.api;
    this.#informers = options.informers;
    this.#queue = options.queue;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    for (const kind of NOT_SUPPORTED_KINDS) {
      const informer = this.#informers[kind.kind];
      if (!informer) continue;
      const enqueue = (o: NotSupportedObject) => this.#queue.add(`${kind.kind}/${o.metadata.namespace}/${o.metadata.name}`);
      informer.on('add', enqueue);
      informer.on('update', enqueue);
    }
  }

  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'unsupported object');
  }

  async reconcile(key: string): Promise<void> {
    const [kindName, namespace, name] = key.split('/');
    const kind = NOT_SUPPORTED_KINDS.find((k) => k.kind === kindName);
    const object = kind && this.#informers[kind.kind]?.get(name, namespace);
    if (!kind || !object) return;
    const status = planNotSupported(kind, object, apiTimestamp(this.#now()));
    if (!status) return;
    // Guarded by the status read, so a write by anyone else in between is not overwritten.
    const guard: JsonPatchOperation[] = object.status ? [{ op: 'test', path: '/status', value: object.status }] : [];
    await this.#api.patchCustomStatus(kind, namespace, name, [...guard, { op: 'add', path: '/status', value: status }]);
    const subject = { apiVersion: `${kind.group}/${kind.version}`, kind: kind.kind, metadata: object.metadata };
    this.#record(subject, 'Warning', NOT_SUPPORTED_REASON, `kubevirt-ts does not support ${kind.what} yet`);
    this.#log.object(subject).info('marked as not supported');
  }
}
