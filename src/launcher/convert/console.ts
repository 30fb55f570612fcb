// The serial console: a socket virt-handler relays to `virtctl console`, logged
// to a file unless logSerialConsole is off.
import { SERIAL_SOCKET } from '../../contract/launcher-protocol.ts';
import type { Concern } from './plan.ts';
import { esc, opts } from './qemu-options.ts';

export const serialConsole: Concern = (vmi, ctx) => {
  const devices = vmi.spec.domain.devices ?? {};
  if (devices.autoattachSerialConsole === false) return { argv: [] };
  const serial = `${ctx.socketDir}/${SERIAL_SOCKET}`;
  const log = devices.logSerialConsole !== false ? `${serial}-log` : undefined;
  const chardev = opts('socket', {
    id: 'charserial0',
    path: esc(serial),
    server: 'on',
    wait: 'off',
    logfile: log && esc(log),
    logappend: log ? 'on' : undefined,
  });
  return { argv: ['-chardev', chardev, '-serial', 'chardev:charserial0'], sockets: { serial }, serialLog: log };
};
