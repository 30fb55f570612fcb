// An image's format comes from its first bytes, never its name: each
// signature qemu-img knows, the two compressions, and raw for the rest
// (including data too short to hold any signature).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { detectFormat, innerFormat, isCompression, isConvertible } from '../../src/cdi/importer/formats.ts';

function header(bytes: number[] | string, length = 1024, at = 0): Buffer {
  const head = Buffer.alloc(length);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)).copy(head, at);
  return head;
}

test('qcow2 by its magic and version; qcow version 1 is its own driver', () => {
  assert.equal(detectFormat(header([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])), 'qcow2');
  assert.equal(detectFormat(header([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 2])), 'qcow2');
  assert.equal(detectFormat(header([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 1])), 'qcow');
  // Too short for a version: still qcow2, and qemu-img will say what is wrong.
  assert.equal(detectFormat(Buffer.from([0x51, 0x46, 0x49, 0xfb])), 'qcow2');
});

test('gzip and xz by their magic', () => {
  assert.equal(detectFormat(gzipSync(Buffer.from('disk'))), 'gzip');
  assert.equal(detectFormat(header([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04])), 'xz');
  assert.equal(detectFormat(header([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01])), 'raw', 'xz needs its NUL');
  assert.equal(detectFormat(Buffer.from([0x1f])), 'raw', 'one byte is no gzip header');
});

test("qemu-img's other formats: vmdk, vhdx, dynamic vhd, and vdi whose signature follows a banner", () => {
  assert.equal(detectFormat(header('KDMV')), 'vmdk');
  assert.equal(detectFormat(header('vhdxfile')), 'vhdx');
  assert.equal(detectFormat(header('conectix')), 'vpc');
  const vdi = header('<<< Oracle VM VirtualBox Disk Image >>>\n');
  Buffer.from([0x7f, 0x10, 0xda, 0xbe]).copy(vdi, 64);
  assert.equal(detectFormat(vdi), 'vdi');
});

test('anything else is raw: zeros, an MBR, an ISO, nothing at all', () => {
  assert.equal(detectFormat(Buffer.alloc(1024)), 'raw');
  const mbr = Buffer.alloc(512);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  assert.equal(detectFormat(mbr), 'raw');
  assert.equal(detectFormat(Buffer.alloc(0)), 'raw');
  assert.equal(detectFormat(header('QFI')), 'raw');
});

test('what needs qemu-img, what needs decompressing; a compressed file inside another is data', () => {
  assert.ok(isConvertible('qcow2') && isConvertible('vdi'));
  assert.ok(!isConvertible('raw') && !isConvertible('gzip'));
  assert.ok(isCompression('xz') && isCompression('gzip') && !isCompression('qcow2'));
  assert.equal(innerFormat(header([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])), 'qcow2');
  assert.equal(innerFormat(gzipSync(Buffer.from('x'))), 'raw');
});
