// Firmware: SMBIOS identity, the bootloader (UEFI from OVMF with its NVRAM, or
// SeaBIOS), and direct kernel boot.
import type { VirtualMachineInstance } from '../../api/types.ts';
import { type Concern, type ConversionContext, ConversionError, domainName, type PlanPart } from './plan.ts';
import { esc, escOptional, opts } from './qemu-options.ts';

const efiBootloader = (vmi: VirtualMachineInstance) => vmi.spec.domain.firmware?.bootloader?.efi;

export const usesEfi = (vmi: VirtualMachineInstance) => efiBootloader(vmi) !== undefined;

/** EFI boots securely unless told not to, as upstream's. */
export const secureBoot = (vmi: VirtualMachineInstance) => {
  const efi = efiBootloader(vmi);
  return efi !== undefined && efi.secureBoot !== false;
};

function smbios(vmi: VirtualMachineInstance, ctx: ConversionContext): string[] {
  const { firmware, chassis } = vmi.spec.domain;
  const system = opts('type=1', {
    manufacturer: esc(ctx.smbios.manufacturer),
    product: esc(ctx.smbios.product),
    family: esc(ctx.smbios.family),
    version: escOptional(ctx.smbios.version),
    sku: escOptional(ctx.smbios.sku),
    serial: escOptional(firmware?.serial),
    uuid: firmware?.uuid,
  });
  const argv = [...(firmware?.uuid ? ['-uuid', firmware.uuid] : []), '-smbios', system];
  if (chassis) {
    argv.push(
      '-smbios',
      opts('type=3', {
        manufacturer: escOptional(chassis.manufacturer),
        version: escOptional(chassis.version),
        serial: escOptional(chassis.serial),
        asset: escOptional(chassis.asset),
        sku: escOptional(chassis.sku),
      }),
    );
  }
  return argv;
}

function bootloader(vmi: VirtualMachineInstance, ctx: ConversionContext): PlanPart {
  const efi = efiBootloader(vmi);
  if (!efi) {
    const useSerial = vmi.spec.domain.firmware?.bootloader?.bios?.useSerial;
    return { argv: useSerial ? ['-fw_cfg', 'name=etc/sercon-port,string=0x3f8'] : [] };
  }
  const secure = secureBoot(vmi);
  // The guest's own copy of the variable store, kept across restarts only when persistent.
  const vars = `${ctx.workdir}/nvram/${domainName(vmi)}_VARS.fd`;
  const code = secure ? ctx.firmware.ovmfSecureCode : ctx.firmware.ovmfCode;
  return {
    argv: [
      '-drive',
      opts('if=pflash', { format: 'raw', unit: 0, readonly: 'on', file: esc(code) }),
      '-drive',
      opts('if=pflash', { format: 'raw', unit: 1, file: esc(vars) }),
      ...(secure ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
    ],
    prepare: [
      {
        kind: 'copy',
        from: secure ? ctx.firmware.ovmfSecureVars : ctx.firmware.ovmfVars,
        to: vars,
        keepExisting: efi.persistent === true,
      },
    ],
  };
}

function kernelBoot(vmi: VirtualMachineInstance, ctx: ConversionContext): string[] {
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot;
  if (!kernelBoot?.container) return [];
  const { container, kernelArgs } = kernelBoot;
  const field = 'spec.domain.firmware.kernelBoot.container';
  const argv: string[] = [];
  if (container.kernelPath) {
    if (!ctx.volumes.kernel) throw new ConversionError(`${field}.kernelPath`, 'the kernel was not extracted from the kernel boot image');
    argv.push('-kernel', ctx.volumes.kernel);
    if (kernelArgs) argv.push('-append', kernelArgs);
  }
  if (container.initrdPath) {
    if (!ctx.volumes.initrd) throw new ConversionError(`${field}.initrdPath`, 'the initrd was not extracted from the kernel boot image');
    argv.push('-initrd', ctx.volumes.initrd);
  }
  return argv;
}

export const firmware: Concern = (vmi, ctx) => {
  const loader = bootloader(vmi, ctx);
  return { argv: [...smbios(vmi, ctx), ...loader.argv, ...kernelBoot(vmi, ctx)], prepare: loader.prepare };
};
