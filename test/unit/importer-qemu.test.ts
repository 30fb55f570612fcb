// qemu-img as the importer drives it: its -p progress reports read from
// output that arrives in arbitrary pieces, and the arguments naming an image
// (an explicit format always; an http source through nbdkit's curl plugin on
// a unix socket, with the password in a file, never on the command line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastQemuProgress, QemuProgressReader } from '../../src/cdi/importer/qemu-progress.ts';
import { nbdkitArguments } from '../../src/cdi/importer/nbdkit.ts';
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

test('an NBD export is opened through json: with its detected format and the socket path as it is', () => {
  const args = imageArguments({ kind: 'nbd', socket: '/tmp/cdi-nbdkit-a,b?c/nbdkit.sock', format: 'qcow2' });
  assert.deepEqual(args.options, []);
  assert.ok(args.image.startsWith('json:'));
  assert.deepEqual(JSON.parse(args.image.slice('json:'.length)), {
    driver: 'qcow2',
    file: { driver: 'nbd', server: { type: 'unix', path: '/tmp/cdi-nbdkit-a,b?c/nbdkit.sock' } },
  });
  assert.equal(JSON.parse(imageArguments({ kind: 'nbd', socket: '/s', format: 'raw' }).image.slice(5)).driver, 'raw');
});

const SOCKET = '/tmp/cdi-nbdkit-x/nbdkit.sock';
const COMMON = [
  '--foreground',
  '--readonly',
  '--exit-with-parent',
  '--unix',
  SOCKET,
  'curl',
  'url=https://example.com/a,b.img',
  'protocols=http,https',
  'timeout=3600',
  'user-agent=kubevirt-ts-cdi-importer',
];

test("nbdkit serves a URL read-only on the private socket, in the foreground, with curl's long timeout and http(s) only", () => {
  assert.deepEqual(nbdkitArguments({ url: 'https://example.com/a,b.img', headers: {} }, { socket: SOCKET }), COMMON);
});

test('basic auth: the user on the command line, the password only in its file (password=+FILE)', () => {
  const args = nbdkitArguments(
    { url: 'https://example.com/a,b.img', headers: {}, credentials: { username: 'u', password: 'hunter2' } },
    { socket: SOCKET, passwordFile: '/tmp/cdi-nbdkit-x/password' },
  );
  assert.deepEqual(args, [...COMMON, 'user=u', 'password=+/tmp/cdi-nbdkit-x/password']);
  assert.ok(!args.join(' ').includes('hunter2'));
  assert.throws(() =>
    nbdkitArguments({ url: 'http://e/d', headers: {}, credentials: { username: 'u', password: 'p' } }, { socket: SOCKET }),
  );
});

test("the certConfigMap's CAs through cainfo=, the extra headers each as a header= (an empty one as curl wants it)", () => {
  const args = nbdkitArguments(
    {
      url: 'https://example.com/a,b.img',
      headers: { 'X-Token': 'a: b', Accept: '*/*', 'X-Empty': '' },
      extraCAs: ['-----BEGIN CERTIFICATE-----'],
    },
    { socket: SOCKET, caFile: '/tmp/cdi-nbdkit-x/ca.pem' },
  );
  assert.deepEqual(args, [
    ...COMMON,
    'cainfo=/tmp/cdi-nbdkit-x/ca.pem',
    'header=X-Token: a: b',
    'header=Accept: */*',
    'header=X-Empty;', // "X-Empty:" would tell curl to remove the header
  ]);
  assert.throws(() => nbdkitArguments({ url: 'https://e/d', headers: {}, extraCAs: ['x'] }, { socket: SOCKET }));
  assert.ok(!nbdkitArguments({ url: 'https://e/d', headers: {}, extraCAs: [] }, { socket: SOCKET }).some((a) => a.startsWith('cainfo=')));
});
