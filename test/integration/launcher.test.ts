// virt-launcher on the host with real QEMU (TCG here), as `npm run launcher` runs it:
// the test guest boots from a containerDisk image, and is paused, reset,
// shut down and killed through the command socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LauncherClient } from '../../src/contract/launcher-client.ts';
import type { DomainStats, DomainStatus, GuestInfo } from '../../src/contract/launcher-protocol.ts';
import { layoutDir } from '../../images/oci.ts';

const REPO = join(import.meta.dirname, '..', '..');
const DISK_IMAGE = `oci:${layoutDir('registry:5000/kubevirt-ts/test-guest-container-disk:devel')}:latest`;

before(() => {
  execFileSync('node', [join(REPO, 'images', 'build.ts'), '--no-push', 'test-guest'], { stdio: ['ignore', 'ignore', 'inherit'] });
});

interface Run {
  child: ChildProcess;
  workdir: string;
  output: () => string;
  exit: Promise<number | null>;
  waitFor: (text: string | RegExp, seconds: number) => Promise<number>;
  client: () => Promise<LauncherClient>;
}

function vmi(name: string, userData: string, extra: { grace?: number; pvc?: boolean; image?: string; rebootPolicy?: string } = {}) {
  const disks = [
    { name: 'containerdisk', disk: { bus: 'virtio' } },
    { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
  ];
  const volumes: Record<string, unknown>[] = [
    { name: 'containerdisk', containerDisk: { image: extra.image ?? DISK_IMAGE } },
    { name: 'cloudinitdisk', cloudInitNoCloud: { userData } },
  ];
  if (extra.pvc) {
    disks.push({ name: 'data', disk: { bus: 'virtio' } });
    volumes.push({ name: 'data', persistentVolumeClaim: { claimName: 'data' } });
  }
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name },
    spec: {
      domain: { devices: { disks }, memory: { guest: '128Mi' }, ...(extra.rebootPolicy ? { rebootPolicy: extra.rebootPolicy } : {}) },
      terminationGracePeriodSeconds: extra.grace ?? 20,
      volumes,
    },
  };
}

const launched = new Set<ChildProcess>();
after(async () => {
  for (const child of launched) child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, launched.size ? 10_000 : 0));
  for (const child of launched) child.kill('SIGKILL');
});

function launch(manifest: object, workdir = mkdtempSync(join(tmpdir(), 'kvts-launcher-'))): Run {
  const file = join(workdir, 'vmi.yaml');
  writeFileSync(file, stringify(manifest));
  const child = spawn('node', [join(REPO, 'src', 'launcher', 'main.ts'), '--vmi', file, '--workdir', workdir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  launched.add(child);
  child.on('exit', () => launched.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const started = Date.now();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    workdir,
    output: () => out,
    exit,
    waitFor: async (text, seconds) => {
      const deadline = started + seconds * 1000;
      while (Date.now() < deadline) {
        if (typeof text === 'string' ? out.includes(text) : text.test(out)) return (Date.now() - started) / 1000;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // A launcher left running would keep this file's process, and the whole tier, from ending.
      child.kill('SIGTERM');
      throw new Error(`no ${text} within ${seconds}s; output:\n${out.slice(-3000)}`);
    },
    client: () => LauncherClient.connect(join(workdir, 'sockets', 'launcher.sock')),
  };
}

function finalStatus(run: Run): DomainStatus {
  const line = run
    .output()
    .split('\n')
    .reverse()
    .find((l) => l.includes('"msg":"VMI stopped"'));
  assert.ok(line, run.output().slice(-2000));
  return JSON.parse(line);
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function unpackedBase(): string {
  const found = execFileSync(
    'find',
    [
      join(process.env.KVTS_CACHE ?? join(process.env.HOME!, '.cache', 'kubevirt-ts'), 'launcher-images', 'rootfs'),
      '-path',
      '*/disk/disk.qcow2',
    ],
    { encoding: 'utf8' },
  );
  return found.split('\n').filter(Boolean)[0];
}

test('the guest boots from a containerDisk and prints its user-data within 30s; the base image is never written', async () => {
  const run = launch(vmi('boot', "#!/bin/sh\necho 'printed from cloud-init userdata'\n"));
  const seconds = await run.waitFor('printed from cloud-init userdata', 30);
  assert.ok(seconds <= 30, `took ${seconds}s`);
  const base = unpackedBase();
  const before = sha256(base);
  await run.waitFor('boot login:', 30);
  run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0);
  assert.deepEqual({ ...finalStatus(run) }, { ...finalStatus(run), state: 'Shutoff', reason: 'Shutdown' });
  assert.equal(sha256(base), before, 'the containerDisk base image changed');
  // The guest wrote to its boot disk: the write went to the overlay, which only the launcher's group may read.
  const overlay = join(run.workdir, 'ephemeral-disks', 'disk-data', 'containerdisk', 'disk.qcow2');
  assert.equal(statSync(overlay).mode & 0o777, 0o640);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' }));
  assert.ok(info['actual-size'] > 200 * 1024, `overlay holds ${info['actual-size']} bytes`);
});

test('a persistentVolumeClaim disk keeps what the guest wrote across a restart', async () => {
  const script = [
    '#!/bin/sh',
    'previous=$(head -c 9 /dev/vdc)',
    'echo "pvc held: [$previous]"',
    'printf persisted | dd of=/dev/vdc conv=notrunc 2>/dev/null; sync',
    'echo pvc written',
  ].join('\n');
  const first = launch(vmi('pvc', script, { pvc: true }));
  await first.waitFor('pvc written', 30);
  first.child.kill('SIGTERM');
  assert.equal(await first.exit, 0);
  assert.ok(existsSync(join(first.workdir, 'claims', 'data', 'disk.img')));
  const second = launch(vmi('pvc', script, { pvc: true }), first.workdir);
  await second.waitFor('pvc held: [persisted]', 30);
  second.child.kill('SIGTERM');
  assert.equal(await second.exit, 0);
});

test('a guest of 1Gi boots with room to grow: maxGuest as a virtio-mem device, nothing of it plugged', async () => {
  const manifest = vmi('growable', '#!/bin/sh\necho up\n');
  manifest.spec.domain.memory.guest = '1Gi';
  const run = launch(manifest);
  await run.waitFor('growable login:', 60);
  const qemu = execFileSync('pgrep', ['-P', String(run.child.pid), '-f', 'qemu-system'])
    .toString()
    .trim()
    .split('\n')[0];
  const argv = readFileSync(`/proc/${qemu}/cmdline`, 'utf8').split('\0');
  assert.ok(argv.includes('size=1024M,slots=1,maxmem=4096M'), argv.join(' '));
  assert.ok(
    argv.some((a) => a.startsWith('virtio-mem-pci,') && a.includes('requested-size=0')),
    argv.join(' '),
  );
  run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0);
});

test('graceful shutdown ends within the grace period; a guest that ignores ACPI is killed when it ends', async () => {
  const polite = launch(vmi('polite', '#!/bin/sh\necho up\n', { grace: 20 }));
  await polite.waitFor('polite login:', 30);
  let t = Date.now();
  polite.child.kill('SIGTERM');
  assert.equal(await polite.exit, 0);
  assert.ok(Date.now() - t < 20_000, `took ${Date.now() - t}ms`);
  assert.equal(finalStatus(polite).reason, 'Shutdown');

  const stubborn = launch(
    vmi('stubborn', "#!/bin/sh\nkill $(ps | awk '/[p]ower-button-watcher/ {print $1}') && echo ignoring acpi\n", { grace: 3 }),
  );
  await stubborn.waitFor('ignoring acpi', 30);
  await stubborn.waitFor('stubborn login:', 30);
  t = Date.now();
  stubborn.child.kill('SIGTERM');
  assert.equal(await stubborn.exit, 0);
  const took = Date.now() - t;
  assert.ok(took >= 3000 && took < 8000, `killed after ${took}ms`);
  assert.equal(finalStatus(stubborn).reason, 'Destroyed');
});

test('pause, unpause, reset and console reconnect work through the command socket', async () => {
  const run = launch(vmi('control', '#!/bin/sh\necho up\n'));
  await run.waitFor('control login:', 30);
  const client = await run.client();
  const events: string[] = [];
  client.on('domain', (e) => events.push(`${e.domain.state}/${e.domain.reason}`));
  const initial = await client.request<DomainStatus>({ command: 'watch' });
  assert.equal(initial.state, 'Running');

  await client.request({ command: 'pause' });
  assert.equal((await client.request<DomainStatus>({ command: 'ping' })).state, 'Paused');
  await client.request({ command: 'unpause' });
  await waitUntil(() => events.includes('Running/Unpaused'), 5);

  // The console: reconnecting gets the live console again.
  for (let i = 0; i < 2; i++) {
    const screen = await consoleExchange(join(run.workdir, 'sockets', 'virt-serial0'), '\n', /login:/);
    assert.match(screen, /control login:/);
  }

  // The guest agent answers through the launcher.
  const info = await waitFor(() => client.request<GuestInfo>({ command: 'guestInfo' }), 20);
  assert.equal(info.os?.id, 'kvts-guest');
  assert.equal(info.hostname, 'control');
  assert.equal(info.fsFreezeStatus, 'thawed');
  // Frozen, the agent still answers whether it is (upstream's fsFreezeStatus comes from that answer).
  await client.request({ command: 'freeze', unfreezeTimeoutSeconds: 0 });
  assert.equal((await client.request<GuestInfo>({ command: 'guestInfo' })).fsFreezeStatus, 'frozen');
  await client.request({ command: 'unfreeze' });
  assert.equal((await client.request<GuestInfo>({ command: 'guestInfo' })).fsFreezeStatus, 'thawed');

  // The stats snapshot virt-handler's metrics read: QEMU's CPU and memory, each vCPU, each disk by its VMI name.
  const stats = await client.request<DomainStats>({ command: 'stats' });
  assert.ok((stats.cpu?.userSeconds ?? 0) + (stats.cpu?.systemSeconds ?? 0) > 0, JSON.stringify(stats));
  assert.deepEqual(
    stats.vcpus?.map((v) => [v.id, v.state]),
    [[0, 'running']],
  );
  assert.equal(stats.memory?.domainBytes, 128 * 1024 * 1024);
  assert.ok((stats.memory?.residentBytes ?? 0) > 0);
  assert.ok((stats.memory?.actualBalloonBytes ?? 0) > 0);
  assert.deepEqual(stats.blocks?.map((b) => b.drive).sort(), ['cloudinitdisk', 'containerdisk']);
  assert.ok((stats.blocks?.find((b) => b.drive === 'containerdisk')?.readBytes ?? 0) > 0);

  const boots = run.output().split('kubevirt-ts test guest ready').length - 1;
  await client.request({ command: 'reset' });
  await waitUntil(() => run.output().split('kubevirt-ts test guest ready').length - 1 > boots, 40);

  client.close();
  run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0);
});

test("rebootPolicy Terminate: the guest's load comes through its agent (qemu-ga 7.2 has no guest-get-load); a soft reboot is answered and ends the VMI as Shutoff/Shutdown", async () => {
  const run = launch(vmi('terminate', '#!/bin/sh\necho up\n', { rebootPolicy: 'Terminate' }));
  await run.waitFor('terminate login:', 30);
  const client = await run.client();
  // The agent's figures are read beside the snapshots, so a later snapshot carries them.
  const load = await waitFor(async () => {
    const stats = await client.request<DomainStats>({ command: 'stats' });
    if (!stats.load) throw new Error(`no load yet: ${JSON.stringify(stats)}`);
    return stats.load;
  }, 30);
  for (const figure of [load.load1m, load.load5m, load.load15m]) assert.ok(typeof figure === 'number' && figure >= 0, JSON.stringify(load));
  await waitFor(() => client.request<GuestInfo>({ command: 'guestInfo' }), 20);
  await client.request({ command: 'softReboot' });
  assert.equal(await run.exit, 0);
  client.close();
  assert.deepEqual({ state: finalStatus(run).state, reason: finalStatus(run).reason }, { state: 'Shutoff', reason: 'Shutdown' });
  assert.equal(run.output().split('kubevirt-ts test guest ready').length - 1, 1, 'the guest did not boot again');
});

test("the alpine image lets root in with no password at alpine's prompt, and poweroff in the guest ends the VMI as Shutoff/Shutdown", async () => {
  const image = `oci:${layoutDir('registry:5000/kubevirt/alpine-container-disk-demo:devel')}:latest`;
  const run = launch(vmi('alpine', '#!/bin/sh\necho up\n', { image }));
  await run.waitFor('flavour alpine', 30);
  await run.waitFor('alpine login:', 30);
  const console = await consoleSession(join(run.workdir, 'sockets', 'virt-serial0'));
  try {
    // The sequence upstream's console.LoginToAlpine sends and expects.
    console.write('\n');
    await console.expect(/(localhost|alpine) login: /, 10);
    console.write('root\n');
    await console.expect(/(localhost|alpine):~# /, 10);
    assert.doesNotMatch(console.screen(), /Password:/);
    console.write('poweroff\n');
    assert.equal(await run.exit, 0);
  } finally {
    console.close();
  }
  assert.deepEqual({ state: finalStatus(run).state, reason: finalStatus(run).reason }, { state: 'Shutoff', reason: 'Shutdown' });
});

test('a soft reboot with the guest agent stopped goes through ACPI: the guest powers off, is reset instead, and boots again', async () => {
  const image = `oci:${layoutDir('registry:5000/kubevirt/alpine-container-disk-demo:devel')}:latest`;
  const run = launch(vmi('acpi-reboot', '#!/bin/sh\necho up\n', { image }));
  await run.waitFor('acpi-reboot login:', 30);
  const client = await run.client();
  const console = await consoleSession(join(run.workdir, 'sockets', 'virt-serial0'));
  try {
    console.write('\n');
    await console.expect(/acpi-reboot login: /, 10);
    console.write('root\n');
    await console.expect(/acpi-reboot:~# /, 10);
    // As upstream's test stops it, through systemd's command.
    console.write('systemctl disable --now qemu-guest-agent; systemctl is-active qemu-guest-agent\n');
    await console.expect(/inactive/, 10);
    await client.request({ command: 'softReboot' });
    await waitFor(() => {
      if (run.output().split('kubevirt-ts test guest ready').length - 1 < 2) throw new Error('not booted again yet');
      return Promise.resolve();
    }, 60);
    assert.equal(run.child.exitCode, null, 'QEMU runs on');
    assert.match(run.output(), /soft reboot through ACPI/);
    // Answered only once the guest is down, by which time a standalone launcher is on its way out.
    void client.request({ command: 'shutdown', gracePeriodSeconds: 30 }).catch(() => undefined);
    assert.equal(await run.exit, 0);
  } finally {
    console.close();
    client.close();
  }
  assert.deepEqual({ state: finalStatus(run).state, reason: finalStatus(run).reason }, { state: 'Shutoff', reason: 'Shutdown' });
});

test('the guest boots from a kernel boot image', async () => {
  const image = `oci:${layoutDir('registry:5000/kubevirt-ts/test-guest-kernel-boot:devel')}:latest`;
  const run = launch({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'kernelboot' },
    spec: {
      domain: {
        devices: {},
        memory: { guest: '128Mi' },
        firmware: {
          kernelBoot: {
            kernelArgs: 'console=ttyS0 quiet',
            container: { image, kernelPath: '/boot/vmlinuz-virt', initrdPath: '/boot/initramfs-virt' },
          },
        },
      },
      terminationGracePeriodSeconds: 10,
    },
  });
  await run.waitFor('login:', 40);
  run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0);
});

test('a VMI this host cannot run is refused with the field that asks for it', async () => {
  const manifest = vmi('hugepages', '#!/bin/sh\n') as { spec: { domain: { memory: Record<string, unknown> } } };
  manifest.spec.domain.memory.hugepages = { pageSize: '1Gi' };
  manifest.spec.domain.memory.guest = '1Gi';
  const run = launch(manifest);
  assert.equal(await run.exit, 1);
  assert.match(run.output(), /"field":"spec.domain.memory.hugepages.pageSize"/);
  assert.match(run.output(), /this node has no hugepages of size 1Gi/);
});

/** Retries an async call until it succeeds or the time is up. */
async function waitFor<T>(call: () => Promise<T>, seconds: number): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function waitUntil(condition: () => boolean, seconds: number) {
  const deadline = Date.now() + seconds * 1000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One connection to the serial console: what it showed since connecting, and a wait for text to appear. */
function consoleSession(path: string) {
  return new Promise<{
    write: (s: string) => void;
    expect: (re: RegExp, seconds: number) => Promise<void>;
    screen: () => string;
    close: () => void;
  }>((resolve, reject) => {
    const socket = connect(path);
    let screen = '';
    let from = 0;
    socket.on('data', (d) => (screen += d.toString()));
    socket.on('error', reject);
    socket.on('connect', () =>
      resolve({
        write: (s) => socket.write(s),
        // Matches only text that arrived after the previous match.
        expect: async (re, seconds) => {
          const deadline = Date.now() + seconds * 1000;
          for (;;) {
            const found = re.exec(screen.slice(from));
            if (found) {
              from += found.index + found[0].length;
              return;
            }
            if (Date.now() > deadline) throw new Error(`console showed no ${re}: ${JSON.stringify(screen.slice(-500))}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        },
        screen: () => screen,
        close: () => socket.destroy(),
      }),
    );
  });
}

/** Connects to the serial console socket, types `input`, and returns what it shows until `until` matches. */
function consoleExchange(path: string, input: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let screen = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`console showed no ${until}: ${screen}`));
    }, 10_000);
    socket.on('connect', () => socket.write(input));
    socket.on('data', (d) => {
      screen += d.toString();
      if (until.test(screen)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(screen);
      }
    });
    socket.on('error', reject);
  });
}

test("a guest whose virt-handler's lease runs out unrenewed is stopped (self-fencing); a renewed one runs on", async () => {
  const run = launch(vmi('fenced', '#!/bin/sh\necho up\n'));
  await run.waitFor('fenced login:', 60);
  const client = await run.client();
  await client.request({ command: 'lease', validUntil: Date.now() + 2000 });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  // Renewed before it ran out: the guest is still there past the first deadline.
  await client.request({ command: 'lease', validUntil: Date.now() + 3000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(run.child.exitCode, null, 'the guest was stopped although its lease was renewed');
  const started = Date.now();
  await run.waitFor(/self-fencing/, 120);
  assert.equal(await run.exit, 0);
  assert.ok(Date.now() - started < 5000);
  assert.equal(finalStatus(run).reason, 'Destroyed');
  client.close();
});
