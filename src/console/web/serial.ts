// The serial console in the browser: xterm.js over the VMI's console stream.
// Typed keys and pasted text (xterm.js handles paste) go to the guest as bytes.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { streamSocket } from './api.ts';
import { h } from './dom.ts';
import { vmiSubresourcePath } from './model.ts';
import { followStream } from './stream-status.ts';

export function serialConsolePage(root: HTMLElement, ns: string, name: string): () => void {
  const status = h('p', { id: 'stream-status' });
  const screen = h('div', { id: 'terminal' });
  root.append(h('h2', {}, h('a', { href: `#/ns/${ns}/vm/${name}` }, `${ns}/${name}`), ' serial console'), status, screen);
  const terminal = new Terminal({ convertEol: false, scrollback: 5000, fontSize: 14 });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  terminal.open(screen);
  fit.fit();
  const onResize = () => fit.fit();
  window.addEventListener('resize', onResize);
  const socket = streamSocket(vmiSubresourcePath(ns, name, 'console'));
  followStream(socket, status, 'serial console');
  const encoder = new TextEncoder();
  socket.addEventListener('message', (event) => {
    if (event.data instanceof ArrayBuffer) terminal.write(new Uint8Array(event.data));
  });
  terminal.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  terminal.focus();
  return () => {
    window.removeEventListener('resize', onResize);
    socket.close();
    terminal.dispose();
  };
}
