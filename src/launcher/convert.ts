// VMI → QEMU: a pure function from a defaulted VMI and what this node offers
// to a QEMU command line plus the files to make before QEMU starts. Anything
// this host cannot do is refused with the field it comes from. Each concern
// (convert/*.ts) adds its part; this module puts them in order.
import type { VirtualMachineInstance } from '../api/types.ts';
import { addPart, type Concern, type ConversionContext, emptyPlan, type QemuPlan } from './convert/plan.ts';
import { emulator, QEMU_BINARY } from './convert/emulator.ts';
import { guestMemory, memoryBacking, memoryHotplug } from './convert/memory.ts';
import { machine } from './convert/machine.ts';
import { cpu } from './convert/cpu.ts';
import { firmware } from './convert/firmware.ts';
import { clock } from './convert/clock.ts';
import { disks } from './convert/disks.ts';
import { interfaces } from './convert/interfaces.ts';
import { serialConsole } from './convert/console.ts';
import { graphics } from './convert/graphics.ts';
import { inputs } from './convert/inputs.ts';
import { devices } from './convert/devices.ts';
import { unsupported } from './convert/unsupported.ts';
import { guestAgent } from './convert/guest-agent.ts';

export { ConversionError, domainName, type ConversionContext, type PrepareStep, type QemuPlan } from './convert/plan.ts';
export { cloudInitIso } from './convert/volumes.ts';

/**
 * The concerns in argv order. A concern sees the plan the ones before it left: the memory
 * backend comes before the -machine option that names it, and disks before the inputs that
 * share their USB controller.
 */
const CONCERNS: readonly Concern[] = [
  emulator,
  memoryBacking,
  machine,
  guestMemory,
  cpu,
  firmware,
  clock,
  disks,
  interfaces,
  serialConsole,
  graphics,
  inputs,
  devices,
  unsupported,
  guestAgent,
  // Last, so that a guest that may grow keeps every other device's PCI address.
  memoryHotplug,
];

export function convertVmiToQemu(vmi: VirtualMachineInstance, ctx: ConversionContext): QemuPlan {
  const plan = CONCERNS.reduce((sofar, concern) => addPart(sofar, concern(vmi, ctx, sofar)), emptyPlan(ctx));
  const { argv, env, prepare, sockets, serialLog } = plan;
  return { binary: QEMU_BINARY, argv: [...argv], env: { ...env }, prepare: [...prepare], sockets: { ...sockets }, serialLog };
}
