// The streaming subresources (console, vnc, portforward): which VMIs they may
// reach, with upstream's codes and messages, and where a port-forward goes.
// Pure: ./server.ts fetches, dials and relays.
import type { VirtualMachine, VirtualMachineInstance } from '../api/types.ts';
import { vmiConflict, type LifecycleError } from './lifecycle.ts';
import { vmiIsPaused } from '../contract/vmi.ts';

export const VMI_NOT_RUNNING = 'VMI is not running';

const badRequest = (message: string): LifecycleError => ({ code: 400, reason: 'BadRequest', message });
const isRunning = (vmi: VirtualMachineInstance) => vmi.status?.phase === 'Running';

/** The serial console: there must be one, and the VMI must run. 400 means "not yet": virtctl retries on it. */
export function checkConsole(vmi: VirtualMachineInstance): LifecycleError | undefined {
  if (vmi.spec.domain.devices?.autoattachSerialConsole === false) return badRequest('No serial consoles are present.');
  if (vmi.status?.phase === 'Failed') return vmiConflict(vmi.metadata.name!, 'VMI is in failed status');
  if (!isRunning(vmi)) return badRequest(VMI_NOT_RUNNING);
  return undefined;
}

/** VNC: there must be a display, and the VMI must run. */
export function checkVnc(vmi: VirtualMachineInstance): LifecycleError | undefined {
  if (vmi.spec.domain.devices?.autoattachGraphicsDevice === false) return badRequest('No graphics devices are present.');
  if (!isRunning(vmi)) return badRequest(VMI_NOT_RUNNING);
  return undefined;
}

/** The node's virt-handler serves a VMI only once it is scheduled there. */
export function checkOnNode(vmi: VirtualMachineInstance): LifecycleError | undefined {
  const phase = vmi.status?.phase;
  if (phase === 'Running' || phase === 'Scheduled') return undefined;
  return badRequest(`Unable to connect to VirtualMachineInstance because phase is ${phase ?? ''} instead of Running or Scheduled`);
}

/** A VM's streams reach the VMI it created. */
export function checkVmStarted(vm: VirtualMachine): LifecycleError | undefined {
  if (!vm.status?.created) return vmiConflict(vm.metadata.name!, 'VMI is not started');
  return undefined;
}

export interface PortForwardTarget {
  host: string;
  port: number;
}

/** Where a port-forward to `port` of a VMI connects: its first interface's address, as upstream does. */
export function portForwardTarget(vmi: VirtualMachineInstance, port: string, protocol = 'tcp'): PortForwardTarget | LifecycleError {
  if (vmiIsPaused(vmi)) return vmiConflict(vmi.metadata.name!, 'VMI is paused');
  const host = vmi.status?.interfaces?.[0]?.ipAddress;
  if (!host) return badRequest('no network interfaces are present');
  if (!port) return badRequest('port must not be empty');
  const number = Number(port);
  if (!/^\d+$/.test(port) || number < 1 || number > 65535) return badRequest(`port ${port} is not a TCP port number (1-65535)`);
  if (protocol !== 'tcp') return badRequest(`protocol ${protocol} is not supported by kubevirt-ts yet; forward tcp ports`);
  return { host, port: number };
}
