// The rate-limited work queue: one entry per key, one worker per key, backoff on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, runWorkers } from '../../src/lib/workqueue.ts';

test('a key is queued once, however often it is added', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('a');
  q.add('b');
  assert.equal(q.length, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
});

test('a key added while being processed comes back after done, never to two workers at once', async () => {
  const q = new WorkQueue();
  q.add('a');
  const key = await q.get();
  q.add('a');
  assert.equal(q.length, 0, 'held by a worker: not handed out again');
  q.done(key!);
  assert.equal(await q.get(), 'a');
});

test('failures back off exponentially and forget resets them', async () => {
  const q = new WorkQueue({ baseDelayMs: 20 });
  q.addRateLimited('a');
  q.addRateLimited('a');
  assert.equal(q.numRequeues('a'), 2);
  const started = Date.now();
  assert.equal(await q.get(), 'a');
  assert.ok(Date.now() - started >= 15);
  q.forget('a');
  assert.equal(q.numRequeues('a'), 0);
  q.shutDown();
  assert.equal(await q.get(), undefined);
});

test('workers retry a failing reconcile until it succeeds', async () => {
  const q = new WorkQueue({ baseDelayMs: 1 });
  let attempts = 0;
  const errors: string[] = [];
  q.add('x');
  const workers = runWorkers(
    q,
    2,
    async () => {
      attempts++;
      if (attempts < 3) throw new Error(`attempt ${attempts}`);
      q.shutDown();
    },
    (key, e) => errors.push(`${key}: ${(e as Error).message}`),
  );
  await workers;
  assert.equal(attempts, 3);
  assert.deepEqual(errors, ['x: attempt 1', 'x: attempt 2']);
});
