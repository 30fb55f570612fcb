// Controller expectations (client-go's ControllerExpectations): after a
// controller creates an object, it waits to see it in its cache before
// deciding again, so a stale cache never makes it create the object twice.
// An expectation that is never met expires, so a lost watch event cannot
// block a key for ever.

const TTL_MS = 5 * 60 * 1000;

export class Expectations {
  private readonly pending = new Map<string, { count: number; since: number }>();

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

  /** Whether the controller may act on the key: nothing it created is still unseen. */
  satisfied(key: string): boolean {
    const entry = this.pending.get(key);
    if (!entry) return true;
    if (this.now() - entry.since > TTL_MS) {
      this.pending.delete(key);
      return true;
    }
    return false;
  }

  forget(key: string): void {
    this.pending.delete(key);
  }
}
