// qemu-img as the importer drives it: its -p progress reports read from
// output that arrives in arbitrary pieces, and the arguments naming an image
// (an explicit format always; a URL through json: with the password in a
// secret object, never on the command line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastQemuProgress, QemuProgressReader } from '../../src/cdi/importer/qemu-progress.ts';
import { imageArguments } from '../../src/cdi/importer/qemu-img.ts';

test('the last complete report in a piece of output', () => {
  assert.equal(lastQemuProgress('    (0.00/100%)\r    (1.01/100%)\r    (37.50/100%)\r'), 37.5);
  assert.equal(lastQemuProgress('    (100.00/100%)\r\n'), 100);
  assert.equal(lastQemuProgress('    (12/100%)'), 12);
  assert.equal(lastQemuProgress('qemu-img: error'), undefined);
  assert.equal(lastQemuProgress(''), undefined);
});

test('a report split between pieces is read once it is whole', () => {
  const reader = new QemuProgressReader();
  assert.equal(reader.feed('    (0.00/100%)\r    (4'), 0);
  assert.equal(reader.feed('2.'), undefined);
  assert.equal(reader.feed('19/100%)\r'), 42.19);
  assert.equal(reader.feed('    (50.00/10'), undefined);
  assert.equal(reader.feed('0%)'), 50, 'no \\r yet, but the report is complete');
  assert.equal(reader.feed('\r    (100.00/100%)\r\n'), 100);
});

test('a file is opened with its detected format, never probed', () => {
  assert.deepEqual(imageArguments({ kind: 'file', path: '/scratch/image.qcow2', format: 'qcow2' }), {
    options: ['-f', 'qcow2'],
    image: '/scratch/image.qcow2',
  });
});

test("a URL goes through json: with the format and curl's long timeout", () => {
  const args = imageArguments({ kind: 'url', url: 'https://example.com/a,b.img', format: 'raw' });
  assert.deepEqual(args.options, []);
  assert.ok(args.image.startsWith('json:'));
  assert.deepEqual(JSON.parse(args.image.slice('json:'.length)), {
    driver: 'raw',
    file: { driver: 'https', url: 'https://example.com/a,b.img', timeout: 3600 },
  });
});

test('basic auth: the user in the json, the password only in a secret file (commas doubled in its path)', () => {
  const args = imageArguments(
    { kind: 'url', url: 'http://example.com/d.qcow2', format: 'qcow2', credentials: { username: 'u', password: 'hunter2' } },
    '/tmp/x,y/password',
  );
  assert.deepEqual(args.options, ['--object', 'secret,id=sourcepassword,file=/tmp/x,,y/password']);
  const spec = JSON.parse(args.image.slice('json:'.length));
  assert.deepEqual(spec.file, {
    driver: 'http',
    url: 'http://example.com/d.qcow2',
    timeout: 3600,
    username: 'u',
    'password-secret': 'sourcepassword',
  });
  assert.ok(!args.image.includes('hunter2') && !args.options.join(' ').includes('hunter2'));
  assert.throws(() => imageArguments({ kind: 'url', url: 'http://e/d', format: 'raw', credentials: { username: 'u', password: 'p' } }));
});
