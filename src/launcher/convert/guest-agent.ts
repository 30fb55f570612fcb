// The guest-agent channel: always there, so agents that start later are found.
import type { Concern } from './plan.ts';
import { esc, opts } from './qemu-options.ts';

export const guestAgent: Concern = (_vmi, _ctx, plan) => ({
  argv: [
    '-device',
    'virtio-serial-pci,id=virtio-serial0',
    '-chardev',
    opts('socket', { id: 'charchannel0', path: esc(plan.sockets.guestAgent), server: 'on', wait: 'off' }),
    '-device',
    'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0',
  ],
});
