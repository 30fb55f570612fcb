// Freezing and thawing the guest's filesystems through its agent
// (guest-fsfreeze-freeze / -thaw), as upstream's launcher does through
// libvirt, and the timer that thaws them if no unfreeze comes in time.
import { guestAgentCommand } from './qmp.ts';

/** libvirt's words when the agent's channel has no one at the guest's end; upstream's clients match on them. */
export const AGENT_NOT_CONNECTED = 'Guest agent is not responding: QEMU guest agent is not connected';
/** How long the agent gets to answer a ping before it counts as not connected. */
const PING_TIMEOUT_MS = 3000;
/** Freezing flushes every filesystem first: that may take a while. */
const FREEZE_TIMEOUT_MS = 60_000;

async function agentCommand<T>(agentSocket: string, command: string): Promise<T> {
  try {
    await guestAgentCommand(agentSocket, 'guest-ping', PING_TIMEOUT_MS);
  } catch {
    throw new Error(AGENT_NOT_CONNECTED);
  }
  return guestAgentCommand<T>(agentSocket, command, FREEZE_TIMEOUT_MS);
}

export class FilesystemFreezer {
  readonly #agentSocket: () => string;
  #thawTimer: NodeJS.Timeout | undefined;

  /** `agentSocket` throws while there is no domain. */
  constructor(agentSocket: () => string) {
    this.#agentSocket = agentSocket;
  }

  /**
   * Freezes; with a timeout above 0, thaws by itself after that many seconds unless thawed before.
   * Frozen already, it does nothing (the agent would refuse, and the first timeout stands), as upstream's.
   */
  async freeze(unfreezeTimeoutSeconds = 0): Promise<void> {
    const socket = this.#agentSocket();
    if ((await agentCommand<string>(socket, 'guest-fsfreeze-status')) === 'frozen') return;
    await guestAgentCommand<number>(socket, 'guest-fsfreeze-freeze', FREEZE_TIMEOUT_MS);
    clearTimeout(this.#thawTimer);
    if (unfreezeTimeoutSeconds > 0) {
      this.#thawTimer = setTimeout(() => void this.unfreeze().catch(() => undefined), unfreezeTimeoutSeconds * 1000);
      this.#thawTimer.unref();
    }
  }

  /** Thaws; thawed already, it does nothing. */
  async unfreeze(): Promise<void> {
    clearTimeout(this.#thawTimer);
    const socket = this.#agentSocket();
    if ((await agentCommand<string>(socket, 'guest-fsfreeze-status')) === 'thawed') return;
    await guestAgentCommand<number>(socket, 'guest-fsfreeze-thaw', FREEZE_TIMEOUT_MS);
  }
}
