// virt-handler's console and VNC sessions per VMI: a new connection replaces
// the open ones (upstream's), a shared VNC viewer joins them, and the
// connection metrics count each open stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamPath, vncOptionsOf } from '../../src/contract/handler-api.ts';
import { StreamSessions } from '../../src/handler/server.ts';
import type { Relay } from '../../src/lib/stream-relay.ts';

function relay(): Relay & { aborted: boolean; finish: () => void } {
  let finish = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const r = {
    aborted: false,
    close: () => finish(),
    abort: () => {
      r.aborted = true;
      finish();
    },
    done,
    finish: () => finish(),
  };
  return r;
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a new stream replaces the open one; shared VNC viewers join it and are counted each', async () => {
  const sessions = new StreamSessions();
  const key = 'vnc/ns/vm';
  const first = relay();
  sessions.start(key, first);
  const second = relay();
  sessions.start(key, second, true);
  const third = relay();
  sessions.start(key, third, true);
  assert.deepEqual([first.aborted, second.aborted, third.aborted], [false, false, false]);
  assert.equal(sessions.open().length, 3);
  assert.deepEqual(sessions.open()[0], { kind: 'vnc', namespace: 'ns', name: 'vm' });

  second.finish();
  await settle();
  assert.equal(sessions.open().length, 2);

  // An unshared connection (upstream's clients) ends every viewer, shared ones too.
  const last = relay();
  sessions.start(key, last);
  assert.deepEqual([first.aborted, third.aborted, last.aborted], [true, true, false]);
  await settle();
  assert.equal(sessions.open().length, 1);
  assert.equal(sessions.busy(key), true);
  last.finish();
  await settle();
  assert.equal(sessions.busy(key), false);
  assert.deepEqual(sessions.open(), []);
});

test("the VNC options travel from virt-api's query to virt-handler's", () => {
  const path = streamPath('ns', 'vm', 'vnc', { shared: true });
  assert.equal(path, '/v1/namespaces/ns/virtualmachineinstances/vm/vnc?preserveSession=false&shared=true');
  assert.deepEqual(vncOptionsOf(new URL(path, 'https://h').searchParams), { preserveSession: false, shared: true });
  assert.equal(streamPath('ns', 'vm', 'vnc', { preserveSession: true }).endsWith('?preserveSession=true'), true);
  assert.equal(streamPath('ns', 'vm', 'console', { shared: true }).includes('?'), false);
});
