// The machine: its type, the chipset features it has (ACPI, SMM, HPET), and the accelerator.
import type { VirtualMachineInstance } from '../../api/types.ts';
import { type Concern, ConversionError } from './plan.ts';
import { opts } from './qemu-options.ts';
import { secureBoot } from './firmware.ts';

const machineType = (vmi: VirtualMachineInstance) => vmi.spec.domain.machine?.type ?? 'q35';

export const isQ35 = (vmi: VirtualMachineInstance) => machineType(vmi).includes('q35');

export const machine: Concern = (vmi, ctx, plan) => {
  const type = machineType(vmi);
  if (!isQ35(vmi) && !/^pc($|-i440fx)/.test(type)) {
    throw new ConversionError('spec.domain.machine.type', `machine type ${type} is not one QEMU offers here (q35 or pc)`);
  }
  const { features = {}, clock } = vmi.spec.domain;
  const fields: Record<string, string> = {};
  if (features.acpi?.enabled === false) fields.acpi = 'off';
  // Secure boot's firmware keeps its variables in SMM-protected flash.
  if (secureBoot(vmi) || features.smm?.enabled === true) fields.smm = 'on';
  else if (features.smm?.enabled === false) fields.smm = 'off';
  if (clock?.timer?.hpet?.present === false) fields.hpet = 'off';
  return {
    argv: [
      '-machine',
      opts(type, { ...fields, ...plan.machine }),
      // A 32 MiB translation cache keeps TCG's memory overhead down without slowing boot.
      '-accel',
      ctx.kvm ? 'kvm' : 'tcg,tb-size=32',
    ],
  };
};
