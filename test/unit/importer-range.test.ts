// The clone source's Range handling: one range, clamped to the disk; the
// ones that cannot be met get 416; the ones it does not understand (or
// several ranges) get the whole disk, as RFC 9110 allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { contentRange, parseRange, totalFromContentRange, unsatisfiedContentRange } from '../../src/cdi/importer/range.ts';

const SIZE = 1000;

test('first-last, first-, and suffix ranges', () => {
  assert.deepEqual(parseRange('bytes=0-99', SIZE), { kind: 'part', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=900-', SIZE), { kind: 'part', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', SIZE), { kind: 'part', start: 900, end: 999 });
  assert.deepEqual(parseRange('Bytes = 5 - 5', SIZE), { kind: 'part', start: 5, end: 5 });
});

test('a range past the end is clamped; one starting past it cannot be met', () => {
  assert.deepEqual(parseRange('bytes=500-5000', SIZE), { kind: 'part', start: 500, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', SIZE), { kind: 'part', start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=1000-', SIZE), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', SIZE), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' }, 'an empty disk has no bytes to give');
});

test('no header, other units, several ranges, nonsense: the whole disk', () => {
  for (const header of [
    undefined,
    'items=0-1',
    'bytes=0-1,5-9',
    'bytes=abc',
    'bytes=9-1',
    'bytes=1-x',
    'bytes=-',
    'bytes=99999999999999999999-',
  ]) {
    assert.deepEqual(parseRange(header, SIZE), { kind: 'whole' }, String(header));
  }
});

test('any range it accepts lies inside the disk', () => {
  fc.assert(
    fc.property(fc.nat(10_000), fc.option(fc.nat(20_000)), fc.option(fc.nat(20_000)), (size, first, last) => {
      const header = `bytes=${first ?? ''}-${last ?? ''}`;
      const range = parseRange(header, size);
      if (range.kind === 'part') {
        assert.ok(range.start >= 0 && range.start <= range.end && range.end < size, `${header} of ${size}`);
      }
    }),
  );
});

test('the Content-Range headers, and reading the total back', () => {
  assert.equal(contentRange({ start: 0, end: 1023 }, 4096), 'bytes 0-1023/4096');
  assert.equal(unsatisfiedContentRange(4096), 'bytes */4096');
  assert.equal(totalFromContentRange('bytes 0-1023/67108864'), 67108864);
  assert.equal(totalFromContentRange('bytes */512'), 512);
  assert.equal(totalFromContentRange('bytes 0-1023/*'), undefined, 'a server that does not know the length');
  assert.equal(totalFromContentRange(undefined), undefined);
});
