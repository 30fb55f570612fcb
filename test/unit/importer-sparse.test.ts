// Sparse writing: which blocks hold data, and a writer that leaves the rest
// as holes in a file but writes every byte to a device (where a hole would
// show old data).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { DiskWriter } from '../../src/cdi/importer/disk-writer.ts';
import { dataRuns, isAllZero, SPARSE_BLOCK_BYTES } from '../../src/cdi/importer/zero-blocks.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvts-sparse-'));
const B = SPARSE_BLOCK_BYTES;
const MiB = 1024 * 1024;

test('all-zero, at any length and wherever the non-zero byte is', () => {
  assert.ok(isAllZero(Buffer.alloc(0)));
  assert.ok(isAllZero(Buffer.alloc(200_000)));
  for (const at of [0, 4095, 65_536, 199_999]) {
    const buf = Buffer.alloc(200_000);
    buf[at] = 1;
    assert.ok(!isAllZero(buf), `byte ${at}`);
  }
});

test('data runs: adjacent data blocks merge, zero blocks split, a short last block counts', () => {
  const buf = Buffer.alloc(5 * B + 100);
  buf[0] = 1;
  buf[B + 7] = 1;
  buf[3 * B + 1] = 1;
  buf[5 * B + 99] = 1;
  assert.deepEqual(dataRuns(buf), [
    { start: 0, end: 2 * B },
    { start: 3 * B, end: 4 * B },
    { start: 5 * B, end: 5 * B + 100 },
  ]);
  assert.deepEqual(dataRuns(Buffer.alloc(3 * B)), []);
});

test('every non-zero byte is inside a run, and every byte outside the runs is zero', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5 * 512 }), fc.constantFrom(1, 512, 4096), (bytes, block) => {
      const buf = Buffer.from(bytes.map((b) => (b < 200 ? 0 : b)));
      const runs = dataRuns(buf, block);
      const covered = new Uint8Array(buf.length);
      for (const run of runs) covered.fill(1, run.start, run.end);
      for (let i = 0; i < buf.length; i++) if (!covered[i]) assert.equal(buf[i], 0);
    }),
  );
});

/** Data at the start, a long zero stretch, data in odd-sized chunks, zeros at the end. */
function image(): Buffer[] {
  const data = Buffer.alloc(MiB, 0xab);
  const chunks = [data.subarray(0, 1000), data.subarray(1000), Buffer.alloc(6 * MiB + 123)];
  for (let i = 0; i < 50; i++) chunks.push(Buffer.alloc(777, i + 1));
  chunks.push(Buffer.alloc(2 * MiB));
  return chunks;
}

test('a new file gets the data and holes for the zeros, with the whole length', async () => {
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(64 * 1024, 0xff), { flag: 'w' });
  const writer = await DiskWriter.createFile(path);
  for (const chunk of image()) await writer.write(chunk);
  const written = await writer.finish();
  const expected = Buffer.concat(image());
  assert.equal(written, expected.length);
  assert.ok(readFileSync(path).equals(expected), 'what a previous attempt left is gone');
  assert.ok(statSync(path).blocks * 512 < 2 * MiB, `sparse: ${statSync(path).blocks * 512} bytes allocated`);
});

test('a device is written in full: its old bytes under the zeros are overwritten', async () => {
  const path = join(dir, 'device');
  const expected = Buffer.concat(image());
  writeFileSync(path, Buffer.alloc(expected.length + 4096, 0x5a));
  const writer = await DiskWriter.openDevice(path);
  for (const chunk of image()) await writer.write(chunk);
  await writer.finish();
  const device = readFileSync(path);
  assert.ok(device.subarray(0, expected.length).equals(expected));
  assert.equal(device.length, expected.length + 4096, 'a device is never truncated');
  assert.ok(device.subarray(expected.length).every((b) => b === 0x5a));
});
