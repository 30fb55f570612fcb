// An informer cache filled by the test instead of a watch: components take it
// where they take a real one (InformerCache), and the test drives their event
// wiring with add/update/remove.
import type { InformerCache } from '../../src/lib/kube.ts';

type Verb = 'add' | 'update' | 'delete';

/** Anything with Kubernetes metadata: client-node's objects and kubevirt.io's alike. */
type Named = { metadata?: { name?: string; namespace?: string } };

export class SeededInformer<T extends Named> implements InformerCache<T> {
  readonly #objects = new Map<string, T>();
  readonly #callbacks: Record<Verb, ((object: T) => void)[]> = { add: [], update: [], delete: [] };

  constructor(objects: readonly T[] = []) {
    for (const object of objects) this.#objects.set(SeededInformer.#key(object), object);
  }

  static #key(object: Named): string {
    return `${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;
  }

  on(verb: Verb, callback: (object: T) => void): void {
    this.#callbacks[verb].push(callback);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): readonly T[] {
    return [...this.#objects.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }

  /** Stores the object (added or updated) and tells every subscriber, as a watch event would. */
  upsert(object: T): void {
    const key = SeededInformer.#key(object);
    const verb = this.#objects.has(key) ? 'update' : 'add';
    this.#objects.set(key, object);
    for (const callback of this.#callbacks[verb]) callback(object);
  }

  remove(object: T): void {
    this.#objects.delete(SeededInformer.#key(object));
    for (const callback of this.#callbacks.delete) callback(object);
  }
}
