// Input devices: tablets, on virtio or on the USB controller disks may already have added.
import { type Concern, ConversionError } from './plan.ts';
import { controllerOnce, opts } from './qemu-options.ts';

export const inputs: Concern = (vmi, _ctx, plan) => {
  const argv: string[] = [];
  for (const [i, input] of (vmi.spec.domain.devices?.inputs ?? []).entries()) {
    if (input.type !== 'tablet') {
      throw new ConversionError(`spec.domain.devices.inputs[${i}].type`, `input type ${input.type} is not supported`);
    }
    const id = `input-${input.name}`;
    if (input.bus === 'virtio') argv.push('-device', opts('virtio-tablet-pci', { id }));
    else argv.push(...controllerOnce('qemu-xhci', 'usb', plan.argv, argv), '-device', opts('usb-tablet', { id }));
  }
  return { argv };
};
