// Where the host mounts a holder container's root file system, from a stand-in
// /proc: beside the shim's bundle directory when that is the container's very
// root, else from the host's mount table; never a directory merely named so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const proc = mkdtempSync(join(tmpdir(), 'kvts-proc-'));
process.env.HOST_PROC = proc;
const { rootfsOnHost } = await import('../../src/handler/disks.ts');

const host = mkdtempSync(join(tmpdir(), 'kvts-host-'));
const bundles = join(host, 'state', 'k8s.io');
const SHIM = 100;
const id = (c: string) => c.repeat(64);
const processWithRoot = (pid: number, root: string) => {
  mkdirSync(join(proc, String(pid)), { recursive: true });
  symlinkSync(root, join(proc, String(pid), 'root'));
};

test("a holder's root file system is found beside the shim's bundle when it is the container's root, else in the host's mount table", () => {
  processWithRoot(SHIM, '/');
  mkdirSync(join(bundles, 'sandbox'), { recursive: true });
  symlinkSync(join(bundles, 'sandbox'), join(proc, String(SHIM), 'cwd'));
  const elsewhere = join(host, 'other-state', id('b'), 'rootfs');
  writeFileSync(
    join(proc, String(SHIM), 'mountinfo'),
    `1 0 0:1 / / rw - ext4 /dev/vda rw\n77 1 0:77 / ${elsewhere} rw - overlay overlay rw\n`,
  );

  const rootfs = join(bundles, id('a'), 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  processWithRoot(200, rootfs);
  assert.equal(rootfsOnHost(SHIM, 200, id('a')), rootfs);

  // A bundle of that name which is not the container's root is not taken: the mount table decides.
  mkdirSync(join(bundles, id('b'), 'rootfs'), { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  processWithRoot(201, elsewhere);
  assert.equal(rootfsOnHost(SHIM, 201, id('b')), elsewhere);

  mkdirSync(join(host, 'unmounted'));
  processWithRoot(202, join(host, 'unmounted'));
  assert.equal(rootfsOnHost(SHIM, 202, id('c')), undefined);
});
