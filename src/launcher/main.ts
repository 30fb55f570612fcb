// virt-launcher's entry point.
//   Standalone (tests, debugging): node src/launcher/main.ts --vmi vmi.yaml --workdir DIR [--kubevirt-config kv.yaml] [--incoming]
//     boots the VMI on this host without Kubernetes, streams its serial console
//     to stdout, and shuts it down gracefully on Ctrl-C or SIGTERM. With
//     --incoming it waits for the guest to be migrated to it instead, on
//     DIR/sockets/migration-in.sock.
//   In a pod: node src/launcher/main.ts --socket-dir DIR --workdir DIR
//     waits for virt-handler's commands on DIR/launcher.sock; the first sync
//     carries the node context (accelerator, disk paths, taps, DHCP leases).
import { parseArgs } from 'node:util';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeVirt, VirtualMachineInstance } from '../api/types.ts';
import { createLogger, type ObjectRef } from '../lib/log.ts';
import { DEBUG_LOGS_ENV, KEEP_AFTER_FAILURE_FLAG, LOG_FILTERS_FLAG, LOG_VERBOSITY_ENV, OVMF, POD_PATHS } from '../contract/launcher-pod.ts';
import {
  LAUNCHER_SOCKET,
  SERIAL_SOCKET,
  type NetworkAttachment,
  type NodeContext,
  type VolumePaths,
} from '../contract/launcher-protocol.ts';
import { hugepageSizes } from '../lib/hugepages.ts';
import { chooseAccelerator, kvmUsable } from '../lib/kvm.ts';
import { readCloudInitSecrets } from './cloud-init-secrets.ts';
import type { ConversionContext } from './convert.ts';
import { Supervisor } from './supervisor.ts';
import { serveCommands } from './server.ts';
import { serveDhcp } from './dhcp.ts';
import { monitorTraceLog, monitorTrafficLogged } from './monitor-log.ts';
import type { Socket } from 'node:dgram';
import { takeProcessName } from '../lib/process-name.ts';

const CACHE = process.env.KVTS_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'kubevirt-ts');

async function standalone(vmiFile: string, workdir: string, kubevirtFile?: string, incoming = false) {
  // Only standalone mode parses YAML, defaults VMIs and reads images: a launcher in a pod loads none of it.
  const [{ parse }, { ClusterConfig }, { defaultNewVmi }, { containerDiskImage, imageRootfs }] = await Promise.all([
    import('yaml'),
    import('../api/cluster-config.ts'),
    import('../api/defaults/vmi.ts'),
    import('./images.ts'),
  ]);
  const log = createLogger('virt-launcher');
  const kubevirt = kubevirtFile ? (parse(readFileSync(kubevirtFile, 'utf8')) as KubeVirt) : undefined;
  // Standalone runs are for tests and debugging: emulation is allowed unless a KubeVirt CR says otherwise.
  const config = new ClusterConfig(kubevirt?.spec.configuration ?? { developerConfiguration: { useEmulation: true } });
  const raw = parse(readFileSync(vmiFile, 'utf8')) as VirtualMachineInstance;
  raw.metadata.namespace ??= 'default';
  const vmi = defaultNewVmi(raw, config, { newUUID: () => crypto.randomUUID(), now: () => new Date().toISOString() });
  const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
  const accel = chooseAccelerator(await kvmUsable(CACHE), config.useEmulation);
  const socketDir = join(workdir, 'sockets');
  mkdirSync(socketDir, { recursive: true });

  const volumes: VolumePaths = { containerDisks: {}, claims: {} };
  const images = join(CACHE, 'launcher-images');
  for (const volume of vmi.spec.volumes ?? []) {
    if (volume.containerDisk) {
      vmiLog.info('reading containerDisk image', { image: volume.containerDisk.image });
      const root = await imageRootfs(volume.containerDisk.image, images);
      volumes.containerDisks![volume.name] = await containerDiskImage(root, volume.containerDisk.path);
    }
    if (volume.persistentVolumeClaim || volume.dataVolume || volume.ephemeral) {
      // A claim is a directory under the workdir, so its disk.img outlives this run; a DataVolume's claim has its name.
      const claim =
        volume.persistentVolumeClaim?.claimName ?? volume.dataVolume?.name ?? volume.ephemeral!.persistentVolumeClaim!.claimName;
      const dir = join(workdir, 'claims', claim);
      mkdirSync(dir, { recursive: true });
      volumes.claims![volume.name] = { path: dir, mode: 'Filesystem', capacityBytes: 1024 * 1024 * 1024 };
    }
  }
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernelBoot) {
    const root = await imageRootfs(kernelBoot.image, images);
    if (kernelBoot.kernelPath) volumes.kernel = join(root, kernelBoot.kernelPath);
    if (kernelBoot.initrdPath) volumes.initrd = join(root, kernelBoot.initrdPath);
  }
  const interfaces: Record<string, NetworkAttachment> = {};
  for (const iface of vmi.spec.domain.devices.interfaces ?? []) interfaces[iface.name] = { user: {} };
  const context = (): ConversionContext => ({
    workdir,
    ephemeralDisks: join(workdir, 'ephemeral-disks'),
    socketDir,
    kvm: accel === 'kvm',
    hugepageSizes: hugepageSizes(),
    firmware: OVMF,
    interfaces,
    volumes,
    smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' },
    now: new Date(),
  });
  const supervisor = new Supervisor({ context, log: vmiLog, memBalloonStatsPeriod: config.memBalloonStatsPeriod });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void supervisor.shutdown();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  serveCommands(join(socketDir, LAUNCHER_SOCKET), supervisor, vmiLog);
  await (incoming ? supervisor.prepareMigrationTarget(vmi, false) : supervisor.sync(vmi));
  if (supervisor.sockets?.serial) followFile(join(socketDir, `${SERIAL_SOCKET}-log`));
  const final = await supervisor.exited;
  vmiLog.info('VMI stopped', { state: final.state, reason: final.reason });
  process.exit(final.state === 'Shutoff' ? 0 : 1);
}

/**
 * Copies the serial console's log to stdout as it grows. Reading the log, not
 * the console socket, leaves the one console connection free for a user.
 */
function followFile(path: string) {
  let offset = 0;
  const chunk = Buffer.alloc(64 * 1024);
  const timer = setInterval(() => {
    if (!existsSync(path)) return;
    const fd = openSync(path, 'r');
    try {
      let n: number;
      while ((n = readSync(fd, chunk, 0, chunk.length, offset)) > 0) {
        process.stdout.write(Buffer.from(chunk.subarray(0, n)));
        offset += n;
      }
    } finally {
      closeSync(fd);
    }
  }, 100);
  timer.unref();
}

/** The pod's DNS servers and search domains, from its resolv.conf, for the guest's DHCP lease. */
function podResolver(): { dns: string[]; searchDomains: string[] } {
  const text = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
  const dns = [...text.matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]);
  const searchDomains = /^search\s+(.+)$/m.exec(text)?.[1].trim().split(/\s+/) ?? [];
  return { dns, searchDomains };
}

/**
 * How long the launcher stays after its guest has ended, shut down on SIGTERM or on its own:
 * virt-handler reads the final domain event and writes the VMI's phase before the socket and the
 * pod go (a deleted VMI's last phase, Succeeded, would otherwise go with the object at once).
 */
const FINAL_EVENT_GRACE_MS = 1000;

/**
 * Ends the launcher with `code`. One that failed and was asked to (upstream's --keep-after-failure,
 * a debugging aid) keeps its container running instead, until the kubelet stops it.
 */
function exitLauncher(code: number, keepAfterFailure: boolean): void {
  if (code === 0 || !keepAfterFailure) process.exit(code);
  createLogger('virt-launcher').info('keeping virt-launcher container alive since --keep-after-failure is set to true');
  // The launcher is the container's first process, for which a signal without a handler does nothing.
  process.removeAllListeners('SIGTERM');
  process.on('SIGTERM', () => process.exit(code));
  setInterval(() => undefined, 2 ** 30);
}

async function inPod(
  socketDir: string,
  workdir: string,
  logFilters: string | undefined,
  vmi: ObjectRef['metadata'],
  keepAfterFailure: boolean,
) {
  const log = createLogger('virt-launcher').object({ kind: 'VirtualMachineInstance', metadata: vmi });
  const traceMonitor = monitorTrafficLogged({
    filters: logFilters,
    verbosity: process.env[LOG_VERBOSITY_ENV],
    debugSwitch: process.env[DEBUG_LOGS_ENV] !== undefined,
  });
  if (traceMonitor) log.info('logging the QEMU monitor traffic', { filters: logFilters });
  // virt-handler's sync carries everything node-specific; until then there is nothing to convert.
  let node: NodeContext | undefined;
  let dhcp: Socket | undefined;
  const supervisor = new Supervisor({
    context: (vmi) => {
      if (!node) throw new Error('virt-handler sent no node context with the sync');
      return {
        ...node,
        volumes: { ...node.volumes, cloudInitSecrets: readCloudInitSecrets(vmi) },
        workdir,
        ephemeralDisks: POD_PATHS.ephemeralDisks,
        now: new Date(),
      };
    },
    log,
    ...(traceMonitor
      ? { monitorTrace: monitorTraceLog(createLogger('virt-launcher', { subcomponent: 'libvirt' }, undefined, { debug: true })) }
      : {}),
  });
  const receiveContext = (context: NodeContext) => {
    node = context;
    if (dhcp || !context.dhcp?.length) return;
    const leases = context.dhcp.map((lease) => ({ ...lease, ...podResolver() }));
    dhcp = serveDhcp(leases, (error) => log.warning('DHCP server error', { error: error.message }));
    log.info('answering DHCP for the guest', { leases: leases.map((l) => ({ mac: l.mac, ip: l.ip })) });
  };
  serveCommands(join(socketDir, LAUNCHER_SOCKET), supervisor, log, receiveContext);
  process.on('SIGTERM', () => void supervisor.shutdown().then(() => setTimeout(() => process.exit(0), FINAL_EVENT_GRACE_MS)));
  log.info('waiting for commands', { socket: join(socketDir, LAUNCHER_SOCKET) });
  const final = await supervisor.exited;
  dhcp?.close();
  setTimeout(() => exitLauncher(final.state === 'Shutoff' ? 0 : 1, keepAfterFailure), FINAL_EVENT_GRACE_MS);
}

if (import.meta.main) {
  takeProcessName();
  const { values } = parseArgs({
    options: {
      vmi: { type: 'string' },
      workdir: { type: 'string' },
      'socket-dir': { type: 'string' },
      'kubevirt-config': { type: 'string' },
      'simulate-crash': { type: 'boolean' },
      [KEEP_AFTER_FAILURE_FLAG.slice(2)]: { type: 'boolean' },
      incoming: { type: 'boolean' },
      [LOG_FILTERS_FLAG.slice(2)]: { type: 'string' },
      name: { type: 'string' },
      namespace: { type: 'string' },
      uid: { type: 'string' },
    },
  });
  const keepAfterFailure = values[KEEP_AFTER_FAILURE_FLAG.slice(2)] === true;
  if (values['simulate-crash']) {
    // SIMULATE_CRASH_FLAG: upstream's launcher panics here, before anything else, and exits 2.
    createLogger('virt-launcher').error('Simulated virt-launcher crash');
    exitLauncher(2, keepAfterFailure);
  } else if (!values.workdir) {
    console.error('usage: virt-launcher --vmi <vmi.yaml> --workdir <dir> | --socket-dir <dir> --workdir <dir>');
    process.exit(2);
  } else {
    mkdirSync(values.workdir, { recursive: true });
    const run = values.vmi
      ? standalone(values.vmi, values.workdir, values['kubevirt-config'], values.incoming)
      : inPod(
          values['socket-dir'] ?? join(values.workdir, 'sockets'),
          values.workdir,
          values[LOG_FILTERS_FLAG.slice(2)] as string | undefined,
          { name: values.name, namespace: values.namespace, uid: values.uid },
          keepAfterFailure,
        );
    run.catch((error: Error) => {
      createLogger('virt-launcher').error('virt-launcher failed', {
        error: error.message,
        ...('field' in error ? { field: error.field } : {}),
      });
      exitLauncher(1, keepAfterFailure);
    });
  }
}
