// Controller expectations (client-go's ControllerExpectations): after a
// controller creates an object, it waits to see it in its cache before
// deciding again, so a stale cache never makes it create the object twice.
// An expectation that is never met expires, so a lost watch event cannot
// block a key for ever.

const TTL_MS = 5 * 60 * 1000;

export class Expectations {
  private readonly pending = new Map<string, { count: number; since: number }>();
  /** Objects deleted and not yet seen gone (or going), by name, per key (client-go's UID-tracking expectations). */
  private readonly deleting = new Map<string, { names: Set<string>; since: number }>();

  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  expectCreations(key: string, count: number): void {
    this.pending.set(key, { count, since: this.now() });
  }

  creationObserved(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    if (--entry.count <= 0) this.pending.delete(key);
  }

  /** Adds to what is expected to go. */
  expectDeletions(key: string, names: readonly string[]): void {
    if (!names.length) return;
    const entry = this.deleting.get(key);
    if (entry) for (const name of names) entry.names.add(name);
    else this.deleting.set(key, { names: new Set(names), since: this.now() });
  }

  /** The object of this name was seen deleted, or marked for deletion. */
  deletionObserved(key: string, name: string): void {
    const entry = this.deleting.get(key);
    if (!entry) return;
    entry.names.delete(name);
    if (entry.names.size === 0) this.deleting.delete(key);
  }

  /** Whether the controller may act on the key: nothing it created is still unseen, nothing it deleted still seen. */
  satisfied(key: string): boolean {
    const now = this.now();
    const created = this.pending.get(key);
    if (created && now - created.since > TTL_MS) this.pending.delete(key);
    const deleted = this.deleting.get(key);
    if (deleted && now - deleted.since > TTL_MS) this.deleting.delete(key);
    return !this.pending.has(key) && !this.deleting.has(key);
  }

  forget(key: string): void {
    this.pending.delete(key);
    this.deleting.delete(key);
  }
}

const STALE_TTL_MS = 10 * 1000;

/**
 * The same idea for updates: right after a controller writes an object, its
 * cache still holds the version it wrote over, and deciding from that copy
 * only earns a 409 Conflict (and a backoff). Until the cache moves past that
 * version, the key is skipped; the watch event of the write queues it again.
 */
export class UpdateExpectations {
  private readonly overwritten = new Map<string, { resourceVersion: string; since: number }>();

  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Records a write of `key`; a write that changed nothing (same version) or found the object gone leaves no expectation. */
  wrote(key: string, before: string | undefined, after: string | undefined): void {
    if (before === undefined || after === undefined || before === after) return;
    this.overwritten.set(key, { resourceVersion: before, since: this.now() });
  }

  /** Whether the cached copy (of this resourceVersion) is one the controller already wrote over. */
  stale(key: string, cached: string | undefined): boolean {
    const entry = this.overwritten.get(key);
    if (!entry) return false;
    if (entry.resourceVersion === cached && this.now() - entry.since < STALE_TTL_MS) return true;
    this.overwritten.delete(key);
    return false;
  }

  /** Drops what is known of a key whose object is gone. */
  forget(key: string): void {
    this.overwritten.delete(key);
  }
}
