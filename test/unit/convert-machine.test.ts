// The emulator and machine concerns: QEMU's name, monitor and paused start; the
// machine type, chipset features and accelerator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emulator } from '../../src/launcher/convert/emulator.ts';
import { machine } from '../../src/launcher/convert/machine.ts';
import { emptyPlan } from '../../src/launcher/convert/plan.ts';
import { ctx, has, part, refuses, vmi } from '../helpers/convert.ts';

test('emulator: named after the VMI, paused until cont, QMP on the shared socket, no display', () => {
  const p = part(emulator, vmi());
  assert.ok(has(p, '-name', 'guest=ns_vmi-ephemeral,debug-threads=on'));
  assert.ok(p.argv.includes('-S'), 'QEMU starts paused until the launcher says cont');
  assert.ok(has(p, '-qmp', 'unix:/var/run/kubevirt/sockets/qmp.sock,server=on,wait=off'));
  assert.ok(has(p, '-display', 'none'));
  refuses(
    () =>
      part(
        emulator,
        vmi((s) => (s.architecture = 'arm64')),
      ),
    'spec.architecture',
    /amd64 guests only/,
  );
});

test('machine: q35 or pc, TCG with a small translation cache or KVM', () => {
  const p = part(machine, vmi());
  assert.ok(has(p, '-machine', 'q35'));
  assert.ok(has(p, '-accel', 'tcg,tb-size=32'));
  assert.ok(has(part(machine, vmi(), ctx({ kvm: true })), '-accel', 'kvm'));
  assert.ok(
    has(
      part(
        machine,
        vmi((s) => (s.domain.machine = { type: 'pc' })),
      ),
      '-machine',
      'pc',
    ),
  );
  refuses(
    () =>
      part(
        machine,
        vmi((s) => (s.domain.machine = { type: 's390-ccw-virtio' })),
      ),
    'spec.domain.machine.type',
    /q35 or pc/,
  );
});

test('machine: ACPI, SMM and HPET switches; secure boot turns SMM on', () => {
  const off = part(
    machine,
    vmi((s) => {
      s.domain.features = { acpi: { enabled: false }, smm: { enabled: false } };
      s.domain.clock = { timer: { hpet: { present: false } } };
    }),
  );
  assert.ok(has(off, '-machine', 'q35,acpi=off,smm=off,hpet=off'));
  const secure = part(
    machine,
    vmi((s) => (s.domain.firmware = { bootloader: { efi: {} } })),
  );
  assert.ok(has(secure, '-machine', 'q35,smm=on'));
  assert.ok(
    has(
      part(
        machine,
        vmi((s) => (s.domain.features = { smm: { enabled: true } })),
      ),
      '-machine',
      'q35,smm=on',
    ),
  );
  const insecure = part(
    machine,
    vmi((s) => (s.domain.firmware = { bootloader: { efi: { secureBoot: false } } })),
  );
  assert.ok(has(insecure, '-machine', 'q35'));
});

test('machine: the fields earlier concerns gave for -machine follow its own', () => {
  const c = ctx();
  const sofar = { ...emptyPlan(c), machine: { 'memory-backend': 'pc.ram' } };
  const p = part(
    machine,
    vmi((s) => (s.domain.features = { acpi: { enabled: false } })),
    c,
    sofar,
  );
  assert.ok(has(p, '-machine', 'q35,acpi=off,memory-backend=pc.ram'));
});
