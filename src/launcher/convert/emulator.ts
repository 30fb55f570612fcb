// The QEMU process itself: the guests its binary runs, its name, its monitor, no window of its own,
// and whether a guest reboot ends it.
import { type Concern, ConversionError, domainName } from './plan.ts';
import { esc } from './qemu-options.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';

export const emulator: Concern = (vmi, ctx, plan) => {
  const architecture = vmi.spec.architecture;
  if (architecture && architecture !== 'amd64') {
    throw new ConversionError('spec.architecture', `this node runs amd64 guests only, not ${architecture}`);
  }
  return {
    argv: [
      '-name',
      `guest=${esc(domainName(vmi))},debug-threads=on`,
      '-no-user-config',
      '-nodefaults',
      // Paused (-S) until the launcher has connected to QMP and says cont. A migration target is not:
      // QEMU resumes the guest after the migration exactly when the source ran it.
      ...(ctx.incomingMigration ? ['-incoming', 'defer'] : ['-S']),
      '-msg',
      'timestamp=on',
      '-qmp',
      `unix:${plan.sockets.qmp},server=on,wait=off`,
      '-display',
      'none',
      // rebootPolicy Terminate (upstream: libvirt's on_reboot=destroy): a guest reboot becomes a
      // SHUTDOWN event (reason guest-reset) and QEMU exits as after a power-off, so the VMI ends.
      ...(vmi.spec.domain.rebootPolicy === 'Terminate' ? ['-no-reboot'] : []),
    ],
  };
};
