// A containerDisk's format is what qemu-img finds in the image, whatever its
// name, under upstream's verification limits; images upstream refuses are
// refused with its words, and a limit too small to read the image fails as
// upstream's does ("failed to invoke qemu-img").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerDiskFormat, DISK_VERIFICATION } from '../../src/launcher/prepare.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvts-cdformat-'));
const image = (name: string, format: string, extra: string[] = []) => {
  const path = join(dir, name);
  execFileSync('qemu-img', ['create', '-q', '-f', format, ...extra, path, '1M']);
  return path;
};

test('the format comes from the image, not its name', async () => {
  assert.equal(await containerDiskFormat('d', image('downloaded', 'qcow2')), 'qcow2');
  assert.equal(await containerDiskFormat('d', image('disk.qcow2', 'raw')), 'raw');
});

test("images upstream refuses are refused in its words; a limit too small to read one fails as upstream's does", async () => {
  const base = image('base.qcow2', 'qcow2');
  await assert.rejects(
    containerDiskFormat('root', image('layered', 'qcow2', ['-F', 'qcow2', '-b', base])),
    new RegExp(`^Error: invalid image in containerDisk root: expected no backing file, but found ${base}$`),
  );
  await assert.rejects(
    containerDiskFormat('root', image('disk.vmdk', 'vmdk')),
    /^Error: invalid image in containerDisk root: unsupported image format: vmdk$/,
  );
  await assert.rejects(
    containerDiskFormat('root', image('small', 'raw'), { ...DISK_VERIFICATION, memoryLimitBytes: 42_000 }),
    /^Error: failed to get container disk info: failed to invoke qemu-img: /,
  );
});
