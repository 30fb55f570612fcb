// virt-handler's node lease (self-fencing, see contract/node.ts): renewed
// every few seconds; each renewal tells the launchers how long their guests
// may run on without another.
import { apiErrorMessage } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { FENCING } from '../contract/node.ts';

export interface NodeLeaseDeps {
  node: string;
  /** Writes the lease's renewTime (creating it the first time). */
  renew: (at: Date) => Promise<void>;
  /** The lease is held until this moment (ms since the epoch). */
  renewed: (validUntil: number) => void;
  log: Logger;
  now?: () => number;
}

export class NodeLease {
  readonly #deps: NodeLeaseDeps;
  #timer?: NodeJS.Timeout;
  #failing = false;

  constructor(deps: NodeLeaseDeps) {
    this.#deps = deps;
  }

  start(): void {
    void this.renewNow();
    this.#timer = setInterval(() => void this.renewNow(), FENCING.renewEveryMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async renewNow(): Promise<void> {
    const at = (this.#deps.now ?? Date.now)();
    try {
      await this.#deps.renew(new Date(at));
      if (this.#failing) this.#deps.log.info('node lease renewed again', { node: this.#deps.node });
      this.#failing = false;
      // Measured from before the write: the lease runs from when it was asked for, not answered.
      this.#deps.renewed(at + FENCING.leaseDurationMs);
    } catch (error) {
      if (!this.#failing)
        this.#deps.log.warning('cannot renew the node lease; guests stop if it runs out', {
          node: this.#deps.node,
          error: apiErrorMessage(error),
          leaseDurationMs: FENCING.leaseDurationMs,
        });
      this.#failing = true;
    }
  }
}
