// The streams between source and disk: peeking keeps every byte, a body cut
// short of its length says by how much, and broken compressed data is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { counted, gunzip, peek, type ByteStream } from '../../src/cdi/importer/streams.ts';

async function* chunks(...parts: (Buffer | Error)[]): ByteStream {
  for (const part of parts) {
    if (part instanceof Error) throw part;
    yield part;
  }
}

async function collect(stream: ByteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of stream) out.push(chunk);
  return Buffer.concat(out);
}

test('peek returns the head and still yields everything', async () => {
  const { head, stream } = await peek(chunks(Buffer.from('ab'), Buffer.from('cdef'), Buffer.from('gh')), 4);
  assert.equal(head.toString(), 'abcd');
  assert.equal((await collect(stream)).toString(), 'abcdefgh');
  const short = await peek(chunks(Buffer.from('xy')), 1024);
  assert.equal(short.head.toString(), 'xy');
  assert.equal((await collect(short.stream)).toString(), 'xy');
  const empty = await peek(chunks(), 16);
  assert.equal(empty.head.length, 0);
  assert.equal((await collect(empty.stream)).length, 0);
});

test('counted reports totals, and a body short of its length fails with the counts', async () => {
  const seen: number[] = [];
  assert.equal((await collect(counted(chunks(Buffer.alloc(3), Buffer.alloc(4)), 7, (n) => seen.push(n)))).length, 7);
  assert.deepEqual(seen, [3, 7]);
  await assert.rejects(collect(counted(chunks(Buffer.alloc(3)), 10, () => undefined)), /closed after 3 of 10 bytes/);
  await assert.rejects(
    collect(counted(chunks(Buffer.alloc(3), Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), 10, () => undefined)),
    /closed after 3 of 10 bytes/,
  );
  await assert.rejects(collect(counted(chunks(new Error('EACCES')), undefined, () => undefined)), /EACCES/);
});

test('gzip: multi-member files decompress whole; a cut-off one is a gzip error; a source error stays itself', async () => {
  const twoMembers = Buffer.concat([gzipSync(Buffer.from('disk ')), gzipSync(Buffer.from('image'))]);
  assert.equal((await collect(gunzip(chunks(twoMembers)))).toString(), 'disk image');
  const big = gzipSync(Buffer.alloc(1 << 20, 7));
  await assert.rejects(collect(gunzip(chunks(big.subarray(0, big.length - 10)))), /^Error: gzip: unexpected end of file/);
  await assert.rejects(collect(gunzip(chunks(big.subarray(0, 100), new Error('connection reset')))), /connection reset/);
});
