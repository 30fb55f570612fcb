// The domain state the launcher reports, kept from QMP events and the QEMU
// process's exit. Named as libvirt names them, as upstream's handler expects.
import type { DomainStatus } from '../contract/launcher-protocol.ts';
import type { QmpEvent } from './qmp.ts';

export const INITIAL_DOMAIN: DomainStatus = { state: 'NoState', reason: 'Unknown' };

/** The next domain status after a QMP event; `outgoing` while the guest is being migrated away. */
export function onQmpEvent(status: DomainStatus, event: QmpEvent, outgoing = false): DomainStatus {
  // Only a migrated guest is Shutoff while QEMU runs: what QEMU says as it quits changes nothing.
  if (status.state === 'Shutoff') return status;
  const data = event.data ?? {};
  switch (event.event) {
    case 'RESUME':
      return { ...status, state: 'Running', reason: resumeReason(status, outgoing) };
    case 'STOP':
      // A migration stops the guest for its last pass; otherwise the reason (user, I/O error,
      // watchdog) arrives with query-status or a BLOCK_IO_ERROR.
      if (outgoing) return { ...status, state: 'Paused', reason: 'Migration' };
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

function resumeReason(status: DomainStatus, outgoing: boolean): DomainStatus['reason'] {
  if (status.state === 'NoState' || status.reason === 'StartingUp') return 'Booted';
  // A target's guest resumes once its state has arrived (a source's, only when its migration failed).
  if (status.state === 'Paused' && status.reason === 'Migration' && !outgoing) return 'Migrated';
  return 'Unpaused';
}

/** The final status once the QEMU process is gone. */
export function onQemuExit(status: DomainStatus, exit: { code: number | null; signal: string | null; killedByUs: boolean }): DomainStatus {
  // Set before QEMU was told to quit: the guest left for its migration target.
  if (status.state === 'Shutoff') return { ...status };
  if (status.state === 'Crashed') return { ...status };
  if (status.state === 'Shutdown' && exit.code === 0) return { ...status, state: 'Shutoff', reason: 'Shutdown' };
  if (exit.killedByUs) return { ...status, state: 'Shutoff', reason: 'Destroyed' };
  return { ...status, state: 'Crashed', reason: 'Failed' };
}
