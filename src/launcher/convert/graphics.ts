// The graphics device and its VNC socket, for `virtctl vnc`.
import { VNC_SOCKET } from '../../contract/launcher-protocol.ts';
import { type Concern, ConversionError } from './plan.ts';
import { opts } from './qemu-options.ts';
import { usesEfi } from './firmware.ts';

const VIDEO: Record<string, string> = { vga: 'VGA', cirrus: 'cirrus-vga', virtio: 'virtio-vga', bochs: 'bochs-display', ramfb: 'ramfb' };

export const graphics: Concern = (vmi, ctx) => {
  const devices = vmi.spec.domain.devices ?? {};
  if (devices.autoattachGraphicsDevice === false) return { argv: [] };
  const type = devices.video?.type;
  // EFI guests get bochs by default, as upstream's: a display without legacy VGA, which UEFI does not need.
  const video = type ? VIDEO[type] : usesEfi(vmi) ? 'bochs-display' : 'VGA';
  if (!video) throw new ConversionError('spec.domain.devices.video.type', `video type ${type} is not supported`);
  const vnc = `${ctx.socketDir}/${VNC_SOCKET}`;
  return { argv: ['-device', opts(video, { id: 'video0' }), '-vnc', `unix:${vnc}`], sockets: { vnc } };
};
