// Benchmark: virt-launcher's memory overhead and its sync → QEMU running time.
//   node bench/launcher.ts [--runs 10]
// Memory: the launcher's RSS (bundled as in its image, in its pod mode), and QEMU's RSS minus
// guest RAM, for a 128Mi guest that has booted to its login prompt. Timing: from the sync command to QEMU
// running the guest (not counting the guest's own boot), over several runs.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Supervisor } from '../src/launcher/supervisor.ts';
import { LauncherClient } from '../src/contract/launcher-client.ts';
import { OVMF } from '../src/contract/launcher-pod.ts';
import type { NodeContext } from '../src/contract/launcher-protocol.ts';
import { defaultNewVmi } from '../src/api/defaults/vmi.ts';
import { ClusterConfig } from '../src/api/cluster-config.ts';
import { createLogger } from '../src/lib/log.ts';
import { containerDiskImage, imageRootfs } from '../src/launcher/images.ts';
import { layoutDir, CACHE } from '../images/oci.ts';
import type { VirtualMachineInstance } from '../src/api/types.ts';

const REPO = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const GUEST_MIB = 128;
const IMAGE = `oci:${layoutDir('registry:5000/kubevirt-ts/test-guest-container-disk:devel')}:latest`;

function manifest(name: string): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'bench' },
    spec: {
      domain: { devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, memory: { guest: `${GUEST_MIB}Mi` } },
      terminationGracePeriodSeconds: 0,
      volumes: [{ name: 'containerdisk', containerDisk: { image: IMAGE } }],
    },
  };
}

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/** What virt-handler's sync carries for the benchmark's guest: the node's side of the conversion. */
const nodeContext = (socketDir: string, base: string): NodeContext => ({
  socketDir,
  kvm: false,
  hugepageSizes: [],
  firmware: OVMF,
  interfaces: { default: { user: {} } },
  volumes: { containerDisks: { containerdisk: base } },
  smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' },
});

/** The launcher as it runs in a pod: the image's bundle (hack/bundle.ts), commands over its socket. */
async function memory(base: string) {
  const dir = mkdtempSync(join(tmpdir(), 'kvts-bench-'));
  execFileSync(process.execPath, [join(REPO, 'hack', 'bundle.ts'), join(dir, 'app'), 'src/launcher/main.ts'], { stdio: 'inherit' });
  const sockets = join(dir, 'sockets');
  mkdirSync(sockets);
  const context = nodeContext(sockets, base);
  const launcher = spawn('node', [join(dir, 'app', 'src', 'launcher', 'main.js'), '--socket-dir', sockets, '--workdir', dir], {
    stdio: 'ignore',
  });
  let client: LauncherClient | undefined;
  for (let i = 0; i < 100 && !client; i++) {
    client = await LauncherClient.connect(join(sockets, 'launcher.sock')).catch(() => undefined);
    if (!client) await new Promise((r) => setTimeout(r, 50));
  }
  const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
  await client!.request({
    command: 'sync',
    vmi: defaultNewVmi(manifest('memory'), config, { newUUID: () => crypto.randomUUID(), now: () => new Date().toISOString() }),
    context,
  });
  const log = join(sockets, 'virt-serial0-log');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes('login:')) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 200));
  client!.close();
  await new Promise((r) => setTimeout(r, 2000)); // let the guest settle
  const qemuPid = Number(execFileSync('pgrep', ['-P', String(launcher.pid), 'qemu-system'], { encoding: 'utf8' }).trim());
  const launcherMiB = rssKiB(launcher.pid!) / 1024;
  const qemuMiB = rssKiB(qemuPid) / 1024;
  launcher.kill('SIGTERM');
  await new Promise((r) => launcher.on('exit', r));
  const qemuOverhead = Math.max(0, qemuMiB - GUEST_MIB);
  console.log(
    `memory (guest ${GUEST_MIB} MiB, booted): launcher RSS ${launcherMiB.toFixed(1)} MiB; QEMU RSS ${qemuMiB.toFixed(1)} MiB, minus guest RAM ${qemuOverhead.toFixed(1)} MiB; overhead ${(launcherMiB + qemuOverhead).toFixed(1)} MiB`,
  );
  console.log(
    `  launcher RSS vs target 60 MiB: ${(launcherMiB / 60).toFixed(2)}x; overhead vs upstream's 240 MiB budget: ${((launcherMiB + qemuOverhead) / 240).toFixed(2)}x`,
  );
}

async function syncToRunning(runs: number, base: string) {
  const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
  const timings: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'kvts-bench-'));
    const vmi = defaultNewVmi(manifest(`sync-${i}`), config, { newUUID: () => crypto.randomUUID(), now: () => new Date().toISOString() });
    const supervisor = new Supervisor({
      log: createLogger('bench', {}, () => undefined),
      context: () => ({ ...nodeContext(dir, base), workdir: dir, ephemeralDisks: join(dir, 'ephemeral-disks'), now: new Date() }),
    });
    const running = new Promise<void>((resolve) => supervisor.on('domain', (s) => s.state === 'Running' && resolve()));
    const started = performance.now();
    await supervisor.sync(vmi);
    await running;
    timings.push(performance.now() - started);
    await supervisor.kill();
  }
  const sorted = [...timings].sort((a, b) => a - b);
  console.log(
    `sync → QEMU running over ${runs} runs: p50 ${percentile(sorted, 50).toFixed(0)} ms, p95 ${percentile(sorted, 95).toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`,
  );
  console.log(`  p50 vs target 300 ms: ${(percentile(sorted, 50) / 300).toFixed(2)}x`);
}

execFileSync('node', [join(REPO, 'images', 'build.ts'), '--no-push', 'test-guest'], { stdio: ['ignore', 'ignore', 'inherit'] });
const base = await containerDiskImage(await imageRootfs(IMAGE, join(CACHE, 'launcher-images')));
await memory(base);
await syncToRunning(Number(values.runs), base);
