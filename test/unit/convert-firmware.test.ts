// The firmware concern: SMBIOS, EFI with and without secure boot, BIOS serial, kernel boot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firmware } from '../../src/launcher/convert/firmware.ts';
import { ctx, has, part, refuses, values, vmi } from '../helpers/convert.ts';

test("SMBIOS: the node's system identity with the VMI's serial and UUID, and the chassis", () => {
  const p = part(
    firmware,
    vmi((s) => (s.domain.firmware = { uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223', serial: 'e4686d2c' })),
  );
  assert.ok(has(p, '-uuid', '5d307ca9-b3ef-428c-8861-06e72d69f223'));
  assert.ok(
    has(
      p,
      '-smbios',
      'type=1,manufacturer=KubeVirt,product=None,family=KubeVirt,serial=e4686d2c,uuid=5d307ca9-b3ef-428c-8861-06e72d69f223',
    ),
  );
  const chassis = part(
    firmware,
    vmi((s) => (s.domain.chassis = { manufacturer: 'a,b', asset: 'x' })),
    ctx({ smbios: { manufacturer: 'K', product: 'P', family: 'F', sku: 's' } }),
  );
  assert.deepEqual(values(chassis, '-smbios').slice(1), ['type=3,manufacturer=a,,b,asset=x']);
  assert.match(values(chassis, '-smbios')[0], /^type=1,manufacturer=K,product=P,family=F,sku=s,/);
});

test("EFI: OVMF code read-only, the VMI's own variable store copied in; secure boot takes the secure pair", () => {
  const efi = part(
    firmware,
    vmi((s) => (s.domain.firmware = { bootloader: { efi: { secureBoot: false } } })),
  );
  assert.ok(has(efi, '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/CODE.fd'));
  assert.ok(has(efi, '-drive', /^if=pflash,format=raw,unit=1,file=\/var\/run\/kubevirt-private\/vmi\/nvram\/ns_vmi-ephemeral_VARS.fd$/));
  const vars = '/var/run/kubevirt-private/vmi/nvram/ns_vmi-ephemeral_VARS.fd';
  assert.deepEqual(efi.prepare, [{ kind: 'copy', from: '/ovmf/VARS.fd', to: vars, keepExisting: false }]);
  const secure = part(
    firmware,
    vmi((s) => (s.domain.firmware = { bootloader: { efi: { persistent: true } } })),
  );
  assert.ok(has(secure, '-drive', /file=\/ovmf\/CODE.secboot.fd/));
  assert.ok(has(secure, '-global', 'driver=cfi.pflash01,property=secure,value=on'));
  assert.deepEqual(
    secure.prepare?.map((s) => s.kind === 'copy' && [s.from, s.keepExisting]),
    [['/ovmf/VARS.ms.fd', true]],
  );
});

test('BIOS: the serial console on request; nothing to prepare', () => {
  const bios = part(
    firmware,
    vmi((s) => (s.domain.firmware = { bootloader: { bios: { useSerial: true } } })),
  );
  assert.ok(has(bios, '-fw_cfg', 'name=etc/sercon-port,string=0x3f8'));
  assert.equal(bios.prepare, undefined);
  assert.equal(values(part(firmware, vmi()), '-fw_cfg').length, 0);
});

test('kernel boot: the kernel, its arguments and the initrd extracted from the image', () => {
  const kb = part(
    firmware,
    vmi(() => {}, 'vmi-kernel-boot.yaml'),
  );
  assert.ok(has(kb, '-kernel', '/kernel/vmlinuz'));
  assert.ok(has(kb, '-initrd', '/kernel/initrd'));
  assert.ok(has(kb, '-append', 'console=ttyS0'));
  refuses(
    () =>
      part(
        firmware,
        vmi(() => {}, 'vmi-kernel-boot.yaml'),
        ctx({ volumes: {} }),
      ),
    'spec.domain.firmware.kernelBoot.container.kernelPath',
    /not extracted/,
  );
});
