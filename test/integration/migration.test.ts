// Live migration between two launchers on this host, with real QEMU (TCG): the
// guest keeps counting on its serial console across the move, what it wrote to
// its containerDisk before arrives with it (block migration of the overlay),
// and the source ends Shutoff/Migrated.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LauncherClient } from '../../src/contract/launcher-client.ts';
import { MIGRATION_IN_SOCKET, type MigrationOptions, type MigrationOutcome } from '../../src/contract/migration.ts';
import { layoutDir } from '../../images/oci.ts';
import { COUNTING_GUEST_USER_DATA, consoleCounts } from '../helpers/counting-guest.ts';

const REPO = join(import.meta.dirname, '..', '..');
const DISK_IMAGE = `oci:${layoutDir('registry:5000/kubevirt-ts/test-guest-container-disk:devel')}:latest`;

execFileSync('node', [join(REPO, 'images', 'build.ts'), '--no-push', 'test-guest'], { stdio: ['ignore', 'ignore', 'inherit'] });

const manifest = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'mover' },
  spec: {
    domain: {
      devices: {
        disks: [
          { name: 'containerdisk', disk: { bus: 'virtio' } },
          { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
        ],
      },
      memory: { guest: '128Mi' },
    },
    volumes: [
      { name: 'containerdisk', containerDisk: { image: DISK_IMAGE } },
      { name: 'cloudinitdisk', cloudInitNoCloud: { userData: COUNTING_GUEST_USER_DATA } },
    ],
  },
};

interface Launched {
  child: ChildProcess;
  workdir: string;
  output: () => string;
  exit: Promise<number | null>;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

function launch(incoming: boolean): Launched {
  const workdir = mkdtempSync(join(tmpdir(), 'kvts-mig-'));
  writeFileSync(join(workdir, 'vmi.yaml'), stringify(manifest));
  const args = [join(REPO, 'src', 'launcher', 'main.ts'), '--vmi', join(workdir, 'vmi.yaml'), '--workdir', workdir];
  const child = spawn('node', incoming ? [...args, '--incoming'] : args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, workdir, output: () => out, exit };
}

async function waitFor(run: Launched, pattern: RegExp, seconds: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const match = run.output().match(pattern);
    if (match) return match;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no ${pattern} within ${seconds}s; output:\n${run.output().slice(-3000)}`);
}

test('a guest migrates to another launcher: the counter never restarts and the disk arrives', async () => {
  const source = launch(false);
  await waitFor(source, /count 3 written-before-migration/, 60);
  const target = launch(true);
  await waitFor(target, /waiting for the incoming migration/, 30);
  const client = await LauncherClient.connect(join(source.workdir, 'sockets', 'launcher.sock'));
  const options: MigrationOptions = {
    id: 'test-migration',
    uri: `unix:${join(target.workdir, 'sockets', MIGRATION_IN_SOCKET)}`,
    block: true,
    bandwidthBytesPerSecond: 0,
    completionTimeoutPerGiB: 150,
    progressTimeoutSeconds: 150,
    allowPostCopy: false,
    allowAutoConverge: false,
  };
  const outcome = await client.request<MigrationOutcome>({ command: 'migrate', options });
  client.close();
  assert.equal(outcome.completed, true, `${JSON.stringify(outcome)}\n${target.output().slice(-3000)}`);
  assert.equal(outcome.mode, 'PreCopy');
  // Emulated (as every guest here is), the guest is paused for the whole move: QEMU loses writes
  // a running TCG guest makes while its memory is copied.
  assert.ok((outcome.totalTimeMs ?? 0) > 0 && (outcome.downtimeMs ?? 0) >= (outcome.totalTimeMs ?? 0), JSON.stringify(outcome));
  assert.equal(await source.exit, 0, source.output().slice(-2000));
  assert.match(source.output(), /"msg":"VMI stopped".*"reason":"Migrated"/);
  assert.match(source.output(), /the guest is paused for its migration/);
  const lastAtSource = Math.max(...consoleCounts(source.output()).map((c) => c.n));
  // The target's console goes on from where the source's stopped.
  await waitFor(target, new RegExp(`count ${lastAtSource + 3} `), 60);
  const atTarget = consoleCounts(target.output());
  assert.ok(atTarget.length >= 3, target.output().slice(-2000));
  assert.ok(
    atTarget.every((c) => c.n > lastAtSource - 2 && c.marker === 'written-before-migration'),
    JSON.stringify({ lastAtSource, atTarget }),
  );
  target.child.kill('SIGTERM');
  assert.equal(await target.exit, 0);
});
