// Finding containers' init processes from /proc (a stand-in tree here): one
// scan serves every container, and a known process is checked before reuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const proc = mkdtempSync(join(tmpdir(), 'kvts-proc-'));
process.env.HOST_PROC = proc;
const { containerPid } = await import('../../src/handler/proc.ts');

const idA = 'a'.repeat(64);
const idB = 'b'.repeat(64);
function processIn(pid: number, containerId: string) {
  mkdirSync(join(proc, String(pid)), { recursive: true });
  writeFileSync(join(proc, String(pid), 'cgroup'), `4:cpu:/kubepods/burstable/pod1234/${containerId}\n1:name=systemd:/kubepods/burstable/pod1234/${containerId}\n`);
}

test('a container\'s init is its oldest process; one scan finds every container; an exited init is looked for again', () => {
  processIn(12, idA);
  processIn(10, idA);
  processIn(11, idB);
  mkdirSync(join(proc, 'self'), { recursive: true });
  assert.equal(containerPid(idA), 10);
  // Known from the same scan: even a process added since is not looked at.
  processIn(9, idB);
  assert.equal(containerPid(idB), 11);
  rmSync(join(proc, '10'), { recursive: true });
  assert.equal(containerPid(idA), 12, 'the init that exited is not returned');
  assert.equal(containerPid(idB), 9, 'the new scan saw the older process');
  assert.equal(containerPid('c'.repeat(64)), undefined);
});
