// A component started through the link named after it (as its pod starts it) shows that name to ps
// and pkill, though Node names its main thread "MainThread", and keeps its command line whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '..', '..');

test("a component started through its link is named as upstream's binary, with its command line intact", {
  skip: process.platform !== 'linux',
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvts-name-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(process.execPath, join(dir, 'virt-handler'));
  const script = `import { takeProcessName } from ${JSON.stringify(join(REPO, 'src', 'lib', 'process-name.ts'))};
import { readFileSync } from 'node:fs';
const before = readFileSync('/proc/self/comm', 'utf8').trim();
takeProcessName();
console.log(JSON.stringify({ before, after: readFileSync('/proc/self/comm', 'utf8').trim(), cmdline: readFileSync('/proc/self/cmdline', 'utf8').split('\\0') }));`;
  const out = JSON.parse(
    execFileSync(join(dir, 'virt-handler'), ['--input-type=module', '-e', script, 'uid-1234'], { encoding: 'utf8', env: { PATH: dir } }),
  );
  assert.equal(out.before, 'MainThread', "Node's own name for its main thread, which pkill would see");
  assert.equal(out.after, 'virt-handler');
  assert.ok(out.cmdline.includes('uid-1234'), 'the command line stays whole');
  // Started as plain node, nothing is renamed.
  const plain = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(JSON.parse(plain).after, 'MainThread');
});
