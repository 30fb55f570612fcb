// The interfaces concern: model, MAC, boot order, tap or user networking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interfaces } from '../../src/launcher/convert/interfaces.ts';
import { ctx, has, part, refuses, vmi } from '../helpers/convert.ts';

test('interfaces: model, MAC, boot order, tap or user networking', () => {
  const p = part(
    interfaces,
    vmi((s) => {
      s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, model: 'e1000', macAddress: '02:00:00:00:00:01', bootOrder: 2 }];
    }),
  );
  assert.ok(has(p, '-netdev', 'tap,id=net-default,ifname=tap0,script=no,downscript=no'));
  assert.ok(has(p, '-device', 'e1000,netdev=net-default,id=ua-default,mac=02:00:00:00:00:01,bootindex=2'));
  const user = part(
    interfaces,
    vmi(),
    ctx({ interfaces: { default: { user: { hostForwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] } } } }),
  );
  assert.ok(has(user, '-netdev', 'user,id=net-default,hostfwd=tcp:127.0.0.1:2222-:22'));
  assert.ok(has(user, '-device', 'virtio-net-pci,netdev=net-default,id=ua-default'));
});

test('interfaces: a tap gets vhost on KVM and the MAC virt-handler leased for it', () => {
  const p = part(interfaces, vmi(), ctx({ kvm: true, interfaces: { default: { tap: 'tap0', mac: '02:00:00:00:00:02' } } }));
  assert.deepEqual(p.argv, [
    '-netdev',
    'tap,id=net-default,ifname=tap0,script=no,downscript=no,vhost=on',
    '-device',
    'virtio-net-pci,netdev=net-default,id=ua-default,mac=02:00:00:00:00:02',
  ]);
});

test('interfaces: what this node cannot wire is refused', () => {
  refuses(
    () =>
      part(
        interfaces,
        vmi((s) => (s.domain.devices.interfaces = [{ name: 'default', sriov: {} }])),
      ),
    'spec.domain.devices.interfaces[0].sriov',
    /not available/,
  );
  refuses(() => part(interfaces, vmi(), ctx({ interfaces: {} })), 'spec.domain.devices.interfaces[0].name', /was not prepared/);
  refuses(
    () =>
      part(
        interfaces,
        vmi((s) => (s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, model: 'virtio-fast' }])),
      ),
    'spec.domain.devices.interfaces[0].model',
    /not supported/,
  );
});
