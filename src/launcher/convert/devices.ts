// The other devices a guest may have: memory balloon, entropy source, watchdog,
// panic devices and sound.
import type { VirtualMachineInstance } from '../../api/types.ts';
import { type Concern, ConversionError } from './plan.ts';
import { opts } from './qemu-options.ts';

const WATCHDOG_ACTIONS: Record<string, string> = { reset: 'reset', poweroff: 'poweroff', shutdown: 'shutdown' };

type Devices = NonNullable<VirtualMachineInstance['spec']['domain']['devices']>;

function watchdog({ watchdog }: Devices): string[] {
  if (!watchdog) return [];
  if (!watchdog.i6300esb) throw new ConversionError('spec.domain.devices.watchdog', 'only the i6300esb watchdog exists on amd64');
  const action = watchdog.i6300esb.action ?? 'reset';
  const mapped = WATCHDOG_ACTIONS[action];
  if (!mapped) throw new ConversionError('spec.domain.devices.watchdog.i6300esb.action', `watchdog action ${action} is not supported`);
  return ['-device', opts('i6300esb', { id: `watchdog-${watchdog.name}` }), '-action', `watchdog=${mapped}`];
}

function panicDevices({ panicDevices = [] }: Devices): string[] {
  return panicDevices.flatMap((panic, i) => {
    const model = panic.model ?? 'isa';
    if (model === 'isa') return ['-device', 'pvpanic'];
    if (model === 'pvpanic') return ['-device', 'pvpanic-pci'];
    throw new ConversionError(`spec.domain.devices.panicDevices[${i}].model`, `panic device ${model} needs Hyper-V enlightenments`);
  });
}

function sound({ sound }: Devices): string[] {
  if (!sound) return [];
  // No host audio: the guest sees the card, and what it plays goes nowhere.
  const card =
    sound.model === 'ac97'
      ? ['-device', 'AC97,audiodev=audio0']
      : ['-device', 'ich9-intel-hda,id=sound0', '-device', 'hda-duplex,audiodev=audio0'];
  return ['-audiodev', 'none,id=audio0', ...card];
}

export const devices: Concern = (vmi) => {
  const devices = vmi.spec.domain.devices ?? {};
  const balloon =
    devices.autoattachMemBalloon !== false ? ['-device', opts('virtio-balloon-pci', { id: 'balloon0', 'free-page-reporting': 'on' })] : [];
  const rng = devices.rng ? ['-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0,id=rng'] : [];
  return { argv: [...balloon, ...rng, ...watchdog(devices), ...panicDevices(devices), ...sound(devices)] };
};
