// The domain state the launcher reports, kept from QMP events and the QEMU
// process's exit. Named as libvirt names them, as upstream's handler expects.
import type { DomainStatus } from '../contract/launcher-protocol.ts';
import type { QmpEvent } from './qmp.ts';

export const INITIAL_DOMAIN: DomainStatus = { state: 'NoState', reason: 'Unknown' };

/** The next domain status after a QMP event. */
export function onQmpEvent(status: DomainStatus, event: QmpEvent): DomainStatus {
  const data = event.data ?? {};
  switch (event.event) {
    case 'RESUME':
      return { ...status, state: 'Running', reason: status.state === 'NoState' || status.reason === 'StartingUp' ? 'Booted' : 'Unpaused' };
    case 'STOP':
      // The reason (user, I/O error, watchdog) arrives with query-status or a BLOCK_IO_ERROR.
      return status.state === 'Paused' ? status : { ...status, state: 'Paused', reason: 'User' };
    case 'BLOCK_IO_ERROR':
      return data.action === 'stop' ? { ...status, state: 'Paused', reason: 'IOError' } : status;
    case 'WATCHDOG':
      return data.action === 'pause' ? { ...status, state: 'Paused', reason: 'Watchdog' } : status;
    case 'RESET':
      return status.state === 'Running' ? { ...status, reason: 'Reset' } : status;
    case 'SHUTDOWN':
      return { ...status, state: 'Shutdown', reason: data.guest === true ? 'GuestShutdown' : 'HostShutdown' };
    case 'GUEST_PANICKED':
      return { ...status, state: 'Crashed', reason: 'Panicked' };
    default:
      return status;
  }
}

/** The final status once the QEMU process is gone. */
export function onQemuExit(status: DomainStatus, exit: { code: number | null; signal: string | null; killedByUs: boolean }): DomainStatus {
  if (status.state === 'Crashed') return { ...status };
  if (status.state === 'Shutdown' && exit.code === 0) return { ...status, state: 'Shutoff', reason: 'Shutdown' };
  if (exit.killedByUs) return { ...status, state: 'Shutoff', reason: 'Destroyed' };
  return { ...status, state: 'Crashed', reason: 'Failed' };
}
