// What a fill pod is given: the task in CDI_TASK (checked up front, so a bad
// one fails with a message), the paths with their overrides, extra headers,
// the pod token, and a block device's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceNumbers } from '../../src/cdi/importer/clone-source.ts';
import { diskPath, parseExtraHeaders, parseTask, podEnvironment } from '../../src/cdi/importer/pod-env.ts';
import { bearerTokenMatches, Progress } from '../../src/cdi/importer/pod-server.ts';

const target = { volumeMode: 'Filesystem', sizeBytes: 1024, availableBytes: 2048, contentType: 'kubevirt' };

test('each kind of task is accepted as the controller writes it', () => {
  const tasks = [
    { kind: 'import', source: { type: 'http', url: 'https://e/d.qcow2', basicAuth: true, certs: true, extraHeaders: ['X-A: b'] }, target },
    { kind: 'import', source: { type: 'registry', file: 'disk.img' }, target },
    { kind: 'import', source: { type: 'blank' }, target: { ...target, volumeMode: 'Block' } },
    { kind: 'import', source: { type: 'clone', url: 'http://10.0.0.5:8080/disk.img' }, target },
    { kind: 'upload', target, contentType: 'kubevirt' },
    { kind: 'clone-source', volumeMode: 'Block' },
  ];
  for (const task of tasks) assert.deepEqual(parseTask(JSON.stringify(task)), task);
});

test('a bad task says what is wrong with it', () => {
  assert.throws(() => parseTask(undefined), /CDI_TASK is not set/);
  assert.throws(() => parseTask('{'), /CDI_TASK is not JSON/);
  assert.throws(() => parseTask('{"kind":"export"}'), /kind export is unknown/);
  assert.throws(
    () => parseTask(JSON.stringify({ kind: 'import', source: { type: 'http', url: 'ftp://x/y' }, target })),
    /not http or https/,
  );
  assert.throws(() => parseTask(JSON.stringify({ kind: 'import', source: { type: 's3', url: 'x' }, target })), /source.type s3 is unknown/);
  assert.throws(
    () => parseTask(JSON.stringify({ kind: 'import', source: { type: 'blank' }, target: { ...target, sizeBytes: -1 } })),
    /sizeBytes/,
  );
  assert.throws(() => parseTask(JSON.stringify({ kind: 'upload', target })), /contentType is undefined/);
});

test('paths default to the pod layout of the contract and each can be overridden', () => {
  const pod = podEnvironment({});
  assert.deepEqual(
    { ...pod },
    {
      dataDir: '/data',
      blockDevice: '/dev/cdi-block-volume',
      scratchDir: '/scratch',
      registryDir: '/scratch/registry',
      certsDir: '/certs',
      terminationLog: '/dev/termination-log',
      port: 8080,
      podToken: '',
    },
  );
  assert.equal(diskPath(pod, 'Filesystem'), '/data/disk.img');
  assert.equal(diskPath(pod, 'Block'), '/dev/cdi-block-volume');
  const test = podEnvironment({ CDI_DATA_DIR: '/tmp/d', CDI_POD_PORT: '0', CDI_TERMINATION_LOG: '/tmp/t', CDI_POD_TOKEN: 'tok' });
  assert.equal(diskPath(test, 'Filesystem'), '/tmp/d/disk.img');
  assert.equal(test.port, 0);
  assert.equal(test.terminationLog, '/tmp/t');
  assert.equal(test.podToken, 'tok');
  assert.throws(() => podEnvironment({ CDI_POD_PORT: 'http' }), /not a port/);
});

test('extra headers are "Name: value"; the value may hold colons', () => {
  assert.deepEqual(parseExtraHeaders(['X-Token: a:b:c', 'Accept:  */* ']), { 'X-Token': 'a:b:c', Accept: '*/*' });
  assert.deepEqual(parseExtraHeaders(undefined), {});
  assert.throws(() => parseExtraHeaders(['no colon']), /not "Name: value"/);
  assert.throws(() => parseExtraHeaders([': value']), /not "Name: value"/);
  assert.throws(() => parseExtraHeaders(['Bad Name: v']), /not "Name: value"/);
});

test('the pod token: exact match only, and no token admits nobody', () => {
  assert.ok(bearerTokenMatches('Bearer s3cret', 's3cret'));
  assert.ok(bearerTokenMatches('bearer s3cret', 's3cret'));
  assert.ok(!bearerTokenMatches('Bearer s3cre', 's3cret'));
  assert.ok(!bearerTokenMatches('Basic s3cret', 's3cret'));
  assert.ok(!bearerTokenMatches(undefined, 's3cret'));
  assert.ok(!bearerTokenMatches('Bearer ', ''));
  assert.ok(!bearerTokenMatches('Bearer anything', ''));
});

test('progress stays within 0..100 and never goes back, until a new attempt resets it', () => {
  const progress = new Progress();
  progress.setBytes(50, 200);
  assert.equal(progress.percent, 25);
  progress.set(10);
  assert.equal(progress.percent, 25);
  progress.setBytes(10, undefined);
  assert.equal(progress.percent, 25, 'no length, no news');
  progress.set(250);
  assert.equal(progress.percent, 100);
  progress.reset();
  assert.equal(progress.percent, 0);
});

test("a block device's major and minor from its device number", () => {
  // makedev(8, 16): /dev/sdb
  assert.deepEqual(deviceNumbers(0x810n), { major: 8, minor: 16 });
  // makedev(259, 1): an NVMe partition, major above 255
  assert.deepEqual(deviceNumbers(0x10301n), { major: 259, minor: 1 });
  // makedev(253, 300): minor above 255 lands in the high bits
  assert.deepEqual(deviceNumbers((253n << 8n) | (300n & 0xffn) | ((300n & ~0xffn) << 12n)), { major: 253, minor: 300 });
});
