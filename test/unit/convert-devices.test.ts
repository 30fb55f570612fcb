// The device concerns: serial console, graphics and VNC, inputs, balloon, rng,
// watchdog, sound, panic devices, the guest-agent channel, and what no node here offers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialConsole } from '../../src/launcher/convert/console.ts';
import { graphics } from '../../src/launcher/convert/graphics.ts';
import { inputs } from '../../src/launcher/convert/inputs.ts';
import { devices } from '../../src/launcher/convert/devices.ts';
import { guestAgent } from '../../src/launcher/convert/guest-agent.ts';
import { unsupported } from '../../src/launcher/convert/unsupported.ts';
import { emptyPlan } from '../../src/launcher/convert/plan.ts';
import { ctx, has, part, refuses, values, vmi } from '../helpers/convert.ts';

const headless = () =>
  vmi((s) => {
    s.domain.devices.autoattachSerialConsole = false;
    s.domain.devices.autoattachGraphicsDevice = false;
    s.domain.devices.autoattachMemBalloon = false;
  });

test('serial console: a socket for virtctl console, logged unless told not to', () => {
  const p = part(serialConsole, vmi());
  assert.ok(
    has(
      p,
      '-chardev',
      'socket,id=charserial0,path=/var/run/kubevirt/sockets/virt-serial0,server=on,wait=off,logfile=/var/run/kubevirt/sockets/virt-serial0-log,logappend=on',
    ),
  );
  assert.ok(has(p, '-serial', 'chardev:charserial0'));
  assert.deepEqual(p.sockets, { serial: '/var/run/kubevirt/sockets/virt-serial0' });
  assert.equal(p.serialLog, '/var/run/kubevirt/sockets/virt-serial0-log');
  const unlogged = part(
    serialConsole,
    vmi((s) => (s.domain.devices.logSerialConsole = false)),
  );
  assert.ok(has(unlogged, '-chardev', 'socket,id=charserial0,path=/var/run/kubevirt/sockets/virt-serial0,server=on,wait=off'));
  assert.equal(unlogged.serialLog, undefined);
  const none = part(serialConsole, headless());
  assert.equal(values(none, '-serial').length, 0);
  assert.equal(none.serialLog, undefined);
});

test('graphics: VGA (bochs for EFI) on a VNC socket, or none', () => {
  const p = part(graphics, vmi());
  assert.ok(has(p, '-vnc', 'unix:/var/run/kubevirt/sockets/virt-vnc'));
  assert.ok(has(p, '-device', 'VGA,id=video0'));
  assert.deepEqual(p.sockets, { vnc: '/var/run/kubevirt/sockets/virt-vnc' });
  const efi = part(
    graphics,
    vmi((s) => (s.domain.firmware = { bootloader: { efi: { secureBoot: false } } })),
  );
  assert.ok(has(efi, '-device', 'bochs-display,id=video0'), 'EFI guests get bochs, as upstream');
  assert.ok(
    has(
      part(
        graphics,
        vmi((s) => (s.domain.devices.video = { type: 'virtio' })),
      ),
      '-device',
      'virtio-vga,id=video0',
    ),
  );
  assert.equal(values(part(graphics, headless()), '-vnc').length, 0);
  refuses(
    () =>
      part(
        graphics,
        vmi((s) => (s.domain.devices.video = { type: 'qxl' })),
      ),
    'spec.domain.devices.video.type',
    /not supported/,
  );
});

test('inputs: tablets on virtio or USB, sharing the USB controller the plan so far may have', () => {
  const tablets = vmi((s) => {
    s.domain.devices.inputs = [
      { name: 'tablet', type: 'tablet', bus: 'usb' },
      { name: 'vt', type: 'tablet', bus: 'virtio' },
    ];
  });
  const p = part(inputs, tablets);
  assert.ok(has(p, '-device', 'usb-tablet,id=input-tablet'));
  assert.ok(has(p, '-device', 'virtio-tablet-pci,id=input-vt'));
  assert.deepEqual(values(p, '-device'), ['qemu-xhci,id=usb', 'usb-tablet,id=input-tablet', 'virtio-tablet-pci,id=input-vt']);
  const c = ctx();
  const afterUsbDisk = part(inputs, tablets, c, { ...emptyPlan(c), argv: ['-device', 'qemu-xhci,id=usb'] });
  assert.deepEqual(values(afterUsbDisk, '-device'), ['usb-tablet,id=input-tablet', 'virtio-tablet-pci,id=input-vt']);
  refuses(
    () =>
      part(
        inputs,
        vmi((s) => (s.domain.devices.inputs = [{ name: 'k', type: 'keyboard', bus: 'usb' }])),
      ),
    'spec.domain.devices.inputs[0].type',
    /not supported/,
  );
});

test('balloon, rng, watchdog, sound, panic device', () => {
  const p = part(
    devices,
    vmi((s) => {
      s.domain.devices.rng = {};
      s.domain.devices.watchdog = { name: 'wd', i6300esb: { action: 'poweroff' } };
      s.domain.devices.sound = { name: 'audio', model: 'ich9' };
      s.domain.devices.panicDevices = [{ model: 'isa' }, { model: 'pvpanic' }];
    }),
  );
  assert.ok(has(p, '-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on'));
  assert.ok(has(p, '-device', 'virtio-rng-pci,rng=rng0,id=rng'));
  assert.ok(has(p, '-device', 'i6300esb,id=watchdog-wd'));
  assert.ok(has(p, '-action', 'watchdog=poweroff'));
  assert.ok(has(p, '-device', 'ich9-intel-hda,id=sound0'));
  assert.ok(has(p, '-device', 'pvpanic'));
  assert.ok(has(p, '-device', 'pvpanic-pci'));
  assert.ok(
    has(
      part(
        devices,
        vmi((s) => (s.domain.devices.sound = { name: 'audio', model: 'ac97' })),
      ),
      '-device',
      'AC97,audiodev=audio0',
    ),
  );
  assert.ok(!has(part(devices, headless()), '-device', /virtio-balloon/));
  refuses(
    () =>
      part(
        devices,
        vmi((s) => (s.domain.devices.panicDevices = [{ model: 'hyperv' }])),
      ),
    'spec.domain.devices.panicDevices[0].model',
    /Hyper-V/,
  );
});

test('guest agent: the channel is always there, on the shared socket', () => {
  const p = part(guestAgent, headless());
  assert.ok(has(p, '-device', 'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0'));
  assert.ok(has(p, '-chardev', 'socket,id=charchannel0,path=/var/run/kubevirt/sockets/qga.sock,server=on,wait=off'));
});

test('what no node here offers is refused with the field that asks for it', () => {
  assert.deepEqual(part(unsupported, vmi()), { argv: [] });
  refuses(
    () =>
      part(
        unsupported,
        vmi((s) => (s.domain.devices.gpus = [{ name: 'g', deviceName: 'nvidia' }])),
      ),
    'spec.domain.devices.gpus',
    /host devices/,
  );
  refuses(
    () =>
      part(
        unsupported,
        vmi((s) => (s.domain.devices.tpm = {})),
      ),
    'spec.domain.devices.tpm',
    /swtpm/,
  );
  assert.deepEqual(
    part(
      unsupported,
      vmi((s) => (s.domain.devices.tpm = { enabled: false })),
    ),
    { argv: [] },
  );
  refuses(
    () =>
      part(
        unsupported,
        vmi((s) => (s.domain.launchSecurity = { sev: {} })),
      ),
    'spec.domain.launchSecurity',
    /encrypted/,
  );
  refuses(
    () =>
      part(
        unsupported,
        vmi((s) => (s.domain.devices.autoattachVSOCK = true)),
      ),
    'spec.domain.devices.autoattachVSOCK',
    /vhost-vsock/,
  );
});
