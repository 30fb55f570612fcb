// What virt-handler does for virt-api's calls: VMI actions and the guest
// agent's answers go over the launcher's command socket, the console and VNC
// streams to QEMU's sockets beside it.
import type { Duplex } from 'node:stream';
import type { HandlerAction } from '../contract/handler-api.ts';
import { LauncherCommandError } from '../contract/launcher-client.ts';
import { type GuestInfo, type LauncherCommand, SERIAL_SOCKET, VNC_SOCKET } from '../contract/launcher-protocol.ts';
import type { Logger } from '../lib/log.ts';
import type { VirtApiHandlers } from './server.ts';
import type { VirtHandler } from './virt-handler.ts';

const COMMANDS: Record<HandlerAction, LauncherCommand['command']> = {
  pause: 'pause',
  unpause: 'unpause',
  softreboot: 'softReboot',
  reset: 'reset',
  freeze: 'freeze',
  unfreeze: 'unfreeze',
};

/** How upstream's virt-handler words a launcher's refusal of these commands (its cmd-client), which its clients match on. */
const UPSTREAM_NAMES: Partial<Record<HandlerAction, string>> = { freeze: 'Freeze', unfreeze: 'Unfreeze' };

export function virtApiRelay(
  launchers: Pick<VirtHandler, 'launcherOf' | 'askGuestAgain'>,
  /** Connects to the unix socket of that name in the launcher pod's socket directory. */
  openSocket: (podUid: string, socket: string) => Promise<Duplex>,
  log: Logger,
): VirtApiHandlers {
  return {
    async act(namespace, name, action, options = {}) {
      const connection = launchers.launcherOf(namespace, name).connection;
      const command = (
        action === 'freeze'
          ? { command: 'freeze', unfreezeTimeoutSeconds: options.unfreezeTimeoutSeconds ?? 0 }
          : { command: COMMANDS[action] }
      ) as LauncherCommand;
      const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: { namespace, name } });
      try {
        await connection.request(command);
      } catch (error) {
        const upstreamName = UPSTREAM_NAMES[action];
        if (!(error instanceof LauncherCommandError) || !upstreamName) throw error;
        vmiLog.error(`Failed to ${action} VMI`, { reason: error.message });
        throw new Error(`server error. command ${upstreamName} failed: ${JSON.stringify(error.message)}`);
      }
      vmiLog.info(`${action} done`);
      if (action === 'freeze' || action === 'unfreeze') launchers.askGuestAgain(namespace, name);
    },
    guestInfo: (namespace, name) => launchers.launcherOf(namespace, name).connection.request<GuestInfo>({ command: 'guestInfo' }),
    openStream: (namespace, name, kind) =>
      openSocket(launchers.launcherOf(namespace, name).podUid, kind === 'console' ? SERIAL_SOCKET : VNC_SOCKET),
  };
}
