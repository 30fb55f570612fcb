// VNC in the browser: noVNC over the VMI's vnc stream, as a shared client, so
// other viewers of the same display stay connected.
import RFB from '@novnc/novnc';
import { streamSocket } from './api.ts';
import { h } from './dom.ts';
import { vmiSubresourcePath } from './model.ts';
import { followStream } from './stream-status.ts';

export function vncPage(root: HTMLElement, ns: string, name: string): () => void {
  const status = h('p', { id: 'stream-status' });
  const screen = h('div', { id: 'vnc-screen' });
  // shared: other viewers of this display stay connected (kubevirt-ts's option; upstream allows one viewer).
  const socket = streamSocket(`${vmiSubresourcePath(ns, name, 'vnc')}?shared=true`);
  followStream(socket, status, 'VNC');
  const rfb = new RFB(screen, socket, { shared: true });
  rfb.scaleViewport = true;
  const ctrlAltDel = h('button', { type: 'button', id: 'vnc-ctrl-alt-del', onclick: () => rfb.sendCtrlAltDel() }, 'Send Ctrl+Alt+Del');
  rfb.addEventListener('connect', () => (status.textContent = 'VNC: connected, display shown'));
  root.append(h('h2', {}, h('a', { href: `#/ns/${ns}/vm/${name}` }, `${ns}/${name}`), ' VNC'), status, ctrlAltDel, screen);
  return () => {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) rfb.disconnect();
  };
}
