// The test kit's images: which console behaviour each published guest name
// gets, the utility images upstream's tests pull, the GNU tools they run in
// the compute container, and a guest's own poweroff ending its VMI well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONTAINER_DISK_NAMES,
  CUSTOM_LOCATION_NAME,
  GNU_TOOLS,
  guestFlavour,
  IMAGES,
  KERNEL_BOOT_NAMES,
  VIRTIO_WIN_NAME,
} from '../../images/build.ts';
import { containerDiskFileIn } from '../../src/contract/launcher-pod.ts';
import { onQemuExit, onQmpEvent } from '../../src/launcher/domain.ts';
import { phaseOf } from '../../src/handler/status.ts';

test('each guest name logs in as the upstream image of that name does', () => {
  const flavours = Object.fromEntries(
    [...CONTAINER_DISK_NAMES, ...KERNEL_BOOT_NAMES, CUSTOM_LOCATION_NAME].map((n) => [n, guestFlavour(n)]),
  );
  assert.deepEqual(flavours, {
    'kubevirt-ts/test-guest-container-disk': 'cirros',
    'kubevirt/cirros-container-disk-demo': 'cirros',
    'kubevirt/alpine-container-disk-demo': 'alpine',
    'kubevirt/alpine-with-test-tooling-container-disk': 'alpine',
    'kubevirt/fedora-cloud-container-disk-demo': 'fedora',
    'kubevirt/fedora-with-test-tooling-container-disk': 'fedora',
    'kubevirt-ts/test-guest-kernel-boot': 'cirros',
    'kubevirt/alpine-ext-kernel-boot-demo': 'alpine',
    'kubevirt/cirros-custom-container-disk-demo': 'cirros',
  });
  // A registry prefix does not change it.
  assert.equal(guestFlavour('registry:5000/kubevirt/alpine-container-disk-demo'), 'alpine');
});

test("upstream's utility image vm-killer is built", () => {
  assert.ok(IMAGES['vm-killer']);
});

test("the compute container has GNU versions of what upstream's tests run in it", () => {
  // stat -c/-f/--printf, ps -LC/-TcC/-o, pgrep -u, tail -v, ls -Z, find -size, df, id -u, lsblk, bash -c, xargs -r.
  for (const tool of [
    'bash',
    'stat',
    'ps',
    'pgrep',
    'pkill',
    'tail',
    'ls',
    'find',
    'df',
    'id',
    'lsblk',
    'xargs',
    'grep',
    'tr',
    'wc',
    'sleep',
  ])
    assert.ok(GNU_TOOLS.includes(tool), tool);
});

test('a guest that powers itself off ends Succeeded', () => {
  const running = onQmpEvent({ state: 'Paused', reason: 'StartingUp' }, { event: 'RESUME' });
  const shutdown = onQmpEvent(running, { event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' } });
  assert.equal(phaseOf(shutdown), 'Running');
  assert.equal(phaseOf(onQemuExit(shutdown, { code: 0, signal: null, killedByUs: false })), 'Succeeded');
});

test("a containerDisk's disk is the one file under /disk, whatever its name (upstream's virtio-win image carries an ISO); none or more are refused in upstream's words", () => {
  assert.equal(containerDiskFileIn(['virtio-win.iso']), 'virtio-win.iso');
  assert.equal(containerDiskFileIn(['downloaded']), 'downloaded');
  assert.throws(() => containerDiskFileIn([]), { message: 'no file found in folder /disk, no disk present' });
  assert.throws(() => containerDiskFileIn(['a.qcow2', 'b.img']), {
    message: 'more than one file found in folder /disk, only one disk is allowed',
  });
  assert.equal(VIRTIO_WIN_NAME, 'kubevirt/virtio-container-disk');
});
