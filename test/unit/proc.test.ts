// Finding containers' init processes from /proc (a stand-in tree here): one
// scan serves every container, a known process is checked before reuse, and
// the init is told by its parent, not by the lowest PID.
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
const SHIM = 2;
function processIn(pid: number, containerId: string, parent = SHIM) {
  mkdirSync(join(proc, String(pid)), { recursive: true });
  writeFileSync(
    join(proc, String(pid), 'cgroup'),
    `4:cpu:/kubepods/burstable/pod1234/${containerId}\n1:name=systemd:/kubepods/burstable/pod1234/${containerId}\n`,
  );
  writeFileSync(join(proc, String(pid), 'status'), `Name:\tx\nPPid:\t${parent}\n`);
}

test("a container's init is its process started by the shim; one scan finds every container; an exited init is looked for again", () => {
  processIn(300, idA);
  processIn(301, idA, 300);
  processIn(11, idB);
  // PIDs wrapped: the init's child got a lower PID than the init.
  processIn(7, idA, 300);
  mkdirSync(join(proc, 'self'), { recursive: true });
  assert.equal(containerPid(idA), 300);
  // Known from the same scan: a process added since is not looked at.
  processIn(12, idB, 11);
  assert.equal(containerPid(idB), 11);
  rmSync(join(proc, '300'), { recursive: true });
  rmSync(join(proc, '301'), { recursive: true });
  processIn(7, idA);
  assert.equal(containerPid(idA), 7, 'the init that exited is not returned; its orphan, parented by the shim now, is');
  assert.equal(containerPid('c'.repeat(64)), undefined);
});
