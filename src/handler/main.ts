// virt-handler, the node agent (one per node, privileged, in the host PID
// namespace). For each VMI scheduled to its node it wires the pod network
// and the image volumes inside the launcher pod, sends the launcher `sync`,
// follows its domain events, and writes the VMI's status. It also
// heartbeats the node. Restarting it never touches a running guest: it
// reconnects to each launcher and carries on.
import { connect as connectSocket, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, makeInformer, PatchStrategy, setHeaderOptions, type KubernetesListObject, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { claimMountPath, computeStatus, fileTreeMountPath, LAUNCHER_SELECTOR, OVMF, POD_PATHS } from '../contract/launcher-pod.ts';
import { LauncherClient } from '../contract/launcher-client.ts';
import { isFinal, LAUNCHER_SOCKET, SERIAL_SOCKET, VNC_SOCKET, type DomainStatus, type GuestInfo, type NodeContext } from '../contract/launcher-protocol.ts';
import { apiTimestamp, isFinalPhase, ownedPods, podIsReady, vmiOwnerOf } from '../contract/vmi.ts';
import { hugepageSizes } from '../lib/hugepages.ts';
import { kvmUsable } from '../lib/kvm.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { eventRecorder } from '../lib/events.ts';
import { UpdateExpectations } from '../lib/expectations.ts';
import { apiErrorMessage, customInformer, keyOf, loadKubeConfig, startInformers, type CachedInformer } from '../lib/kube.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue, runWorkers } from '../lib/workqueue.ts';
import { checkClaimImages, prepareImageVolumes, releaseImageVolumes } from './disks.ts';
import { cpuLabels, heartbeatPatch, kvmCapacityPatch } from './heartbeat.ts';
import { BRIDGE, networkScript, parsePodInterface, planPodNetwork, TAP, type NetworkPlan } from './network.ts';
import { emptyDirOf, UnsafePathError, viaDirectoryFd } from './paths.ts';
import { allowCharDevices, makePodCpuIdle, type CharDevice } from './cgroup.ts';
import { containerIdOf, containerPid, parentPid, PROC } from './proc.ts';
import { statusChanged, withObservedStatus } from './status.ts';
import { commandRunner } from './runner.ts';
import { serveVirtApi } from './server.ts';
import { jsonEqual } from '../api/json-equal.ts';

const log = createLogger('virt-handler');
exitOnSignals(log);
const { values: flags } = parseArgs({ options: { 'heartbeat-interval-seconds': { type: 'string', default: '60' }, 'state-dir': { type: 'string', default: '/var/run/kubevirt-ts' } } });
const NODE = process.env.NODE_NAME;
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
if (!NODE) {
  log.error('NODE_NAME is not set; virt-handler must run with the downward API giving it spec.nodeName');
  process.exit(2);
}
type Typed<T> = T & KubernetesObject;

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const record = eventRecorder(kc, 'virt-handler', log);

const cpu = cpuLabels(readFileSync('/proc/cpuinfo', 'utf8'));
/** Whether guests here run in software emulation: known once the KVM probe has run. */
let emulation: boolean | undefined;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function heartbeat() {
  await core
    .patchNode({ name: NODE!, body: heartbeatPatch(new Date(), true, cpu, emulation) }, mergePatch)
    .catch((error) => log.warning('heartbeat failed', { node: NODE, error: apiErrorMessage(error) }));
}
await heartbeat();
setInterval(heartbeat, Number(flags['heartbeat-interval-seconds']) * 1000);

const nodeSelector = `kubevirt.io/nodeName=${NODE}`;
const vmis = makeInformer<Typed<VirtualMachineInstance>>(kc, '/apis/kubevirt.io/v1/virtualmachineinstances',
  () => custom.listClusterCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', labelSelector: nodeSelector }) as Promise<KubernetesListObject<Typed<VirtualMachineInstance>>>, nodeSelector);
const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: LAUNCHER_SELECTOR }) as Promise<KubernetesListObject<V1Pod>>, LAUNCHER_SELECTOR);
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
const queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 30_000 });
const vmiUpdates = new UpdateExpectations();

for (const verb of ['add', 'update', 'delete'] as const) {
  vmis.on(verb, (vmi) => queue.add(keyOf(vmi)));
  pods.on(verb, (pod) => {
    const owner = vmiOwnerOf(pod);
    if (owner && pod.spec?.nodeName === NODE) queue.add(`${pod.metadata?.namespace}/${owner.name}`);
  });
}
await startInformers(log, vmis, pods as CachedInformer<KubernetesObject>, clusterConfig.informer);

/** What virt-handler knows about one VMI's launcher. */
interface LauncherState {
  podUid: string;
  client?: LauncherClient;
  domain?: DomainStatus;
  guest?: GuestInfo;
  guestCheckedAt: number;
  guestPending?: boolean;
  network?: NetworkPlan;
  syncError?: string;
  syncing?: boolean;
  /** After a failed sync, not before this time (ms), doubling up to 30 s. */
  nextSyncAt?: number;
  syncDelayMs?: number;
  shutdownSent?: boolean;
  /** Whether the guest runs in software emulation, as the last sync said. */
  emulated?: boolean;
  cpuIdle?: boolean;
  imagesReleased?: boolean;
}
const states = new Map<string, LauncherState>();

// Off the main thread: see runner.ts.
const run = commandRunner(4);
const toolPath = (tool: string) => (process.env.PATH ?? '').split(':').map((dir) => `${dir}/${tool}`).find((path) => existsSync(path)) ?? tool;
const inNetns = (pid: number) => (argv: string[]) => run(['nsenter', `--net=${PROC}/${pid}/ns/net`, '--', ...argv]);

function computePid(pod: V1Pod): number {
  const id = containerIdOf(computeStatus(pod)?.containerID);
  const pid = id ? containerPid(id) : undefined;
  if (!pid) throw new Error(`the compute container of ${pod.metadata?.name} is not running`);
  return pid;
}

const TUN_DEVICE: CharDevice = { path: '/dev/net/tun', major: 10, minor: 200 };
const KVM_DEVICE: CharDevice = { path: '/dev/kvm', major: 10, minor: 232 };

/** Device nodes QEMU opens inside the compute container (no device plugin: we make them). */
async function ensureDevices(pid: number, kvm: boolean) {
  const nodes = kvm ? [TUN_DEVICE, KVM_DEVICE] : [TUN_DEVICE];
  allowCharDevices(pid, parentPid(pid), nodes);
  const script = nodes.map(({ path, major, minor }) => `mkdir -p ${path.slice(0, path.lastIndexOf('/'))}; [ -c ${path} ] || mknod -m 0666 ${path} c ${major} ${minor}`).join('; ');
  // Run inside the container's own root, so nothing there can point us at a host path.
  await run(['nsenter', '-t', String(pid), '-m', '-r', '--', '/bin/busybox', 'sh', '-c', script]);
}

async function wireNetwork(vmi: VirtualMachineInstance, pid: number): Promise<NetworkPlan> {
  const inPod = inNetns(pid);
  // One process for all the questions and one script for the plan: under load, each spawn costs
  // more than the command. Tools by full path, as PATH finds them here: busybox's sh would prefer
  // its own smaller applets.
  const ip = toolPath('ip');
  const [built, addresses, routes] = (await inPod(['sh', '-c', `${ip} link show ${BRIDGE} >/dev/null 2>&1 && echo built || echo new; ${ip} -j addr show dev eth0; ${ip} -j route show default`])).split('\n');
  const exists = built === 'built';
  const pod = parsePodInterface(addresses, routes);
  const plan = planPodNetwork(vmi, pod);
  if (!exists) {
    await inPod(['sh', '-ec', networkScript(plan.commands, toolPath)]).catch(async (error) => {
      // A half-built network would be taken for a finished one next time.
      await inPod(['sh', '-c', `${toolPath('ip')} link del ${TAP}; ${toolPath('ip')} link del ${BRIDGE}`]).catch(() => undefined);
      throw error;
    });
  }
  return plan;
}

// KVM is probed once, in the background. A working /dev/kvm is advertised as upstream's extended
// resource, and the node's annotation says whether guests here run in software emulation.
const kvmProbe = kvmUsable(flags['state-dir']!).then(async (usable) => {
  emulation = !usable || clusterConfig.current().useEmulation;
  if (!usable) log.warning('KVM is not usable on this node: guests can run only in software emulation (developerConfiguration.useEmulation)', { node: NODE });
  await core.patchNodeStatus({ name: NODE!, body: kvmCapacityPatch(usable) }, mergePatch)
    .catch((error) => log.warning('cannot advertise the KVM device', { error: apiErrorMessage(error) }));
  await heartbeat();
  return usable;
});

async function useKvm(): Promise<boolean> {
  if (clusterConfig.current().useEmulation) return false;
  const usable = await kvmProbe;
  if (!usable) throw new Error(`KVM is not usable on node ${NODE} and developerConfiguration.useEmulation is false: enable useEmulation in the KubeVirt CR to run in software emulation`);
  return true;
}

async function nodeContext(vmi: VirtualMachineInstance, pod: V1Pod, state: LauncherState): Promise<NodeContext> {
  const kvm = await useKvm();
  state.emulated = !kvm;
  const pid = computePid(pod);
  checkClaimImages(vmi, `${PROC}/${pid}/root`);
  // Independent steps, each mostly waiting for processes it starts: on a busy node, one after
  // the other they added up to seconds per guest.
  const [, network, images] = await Promise.all([ensureDevices(pid, kvm), state.network ?? wireNetwork(vmi, pid), prepareImageVolumes(vmi, pod, run)]);
  state.network = network;
  const claims: NonNullable<NodeContext['volumes']['claims']> = {};
  const fileTrees: Record<string, string> = {};
  for (const v of vmi.spec.volumes ?? []) {
    if (v.persistentVolumeClaim || v.ephemeral) claims[v.name] = { path: claimMountPath(v.name), mode: 'Filesystem' };
    const tree = fileTreeMountPath(v);
    if (tree) fileTrees[v.name] = tree;
  }
  return {
    socketDir: POD_PATHS.sockets, kvm, hugepageSizes: hugepageSizes(), firmware: OVMF,
    interfaces: state.network.attachments, volumes: { ...images, claims, fileTrees },
    smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' }, dhcp: state.network.dhcp,
  };
}

async function connect(key: string, pod: V1Pod, state: LauncherState) {
  const client = await viaDirectoryFd(emptyDirOf(pod.metadata!.uid!, 'sockets'), LAUNCHER_SOCKET, (path) => LauncherClient.connect(path));
  client.on('domain', (event) => {
    state.domain = event.domain;
    queue.add(key);
  });
  client.on('close', () => {
    if (state.client === client) state.client = undefined;
    queue.addAfter(key, 500);
  });
  state.client = client;
  state.domain = await client.request<DomainStatus>({ command: 'watch' });
}

async function release(key: string) {
  vmiUpdates.forget(key);
  const state = states.get(key);
  if (!state) return;
  states.delete(key);
  state.client?.close();
  await releaseImageVolumes(state.podUid, run);
}

function launcherPodOf(vmi: VirtualMachineInstance): V1Pod | undefined {
  return ownedPods(vmi, pods.list(vmi.metadata.namespace))
    .filter((p) => p.spec?.nodeName === NODE && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
    .sort((a, b) => String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)))[0];
}

const GUEST_INFO_INTERVAL_MS = { connected: 60_000, waiting: 5_000 };

/**
 * A VMI whose launcher pod is Ready on this node but which is not Scheduled
 * here yet, read from kube-apiserver (the informer holds only VMIs on this
 * node). virt-controller marks a VMI Scheduled on exactly this signal, so its
 * guest may start while that write is on its way; the status waits for it.
 */
async function vmiOfReadyPod(namespace: string, name: string): Promise<Typed<VirtualMachineInstance> | undefined> {
  const owned = pods.list(namespace).find((p) => p.spec?.nodeName === NODE && !p.metadata?.deletionTimestamp && podIsReady(p) && vmiOwnerOf(p)?.name === name);
  if (!owned) return undefined;
  const vmi = (await custom.getNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', namespace, name })
    .catch((error: { code?: number }) => {
      if (error.code === 404) return undefined;
      throw error;
    })) as Typed<VirtualMachineInstance> | undefined;
  if (!vmi || vmi.metadata.uid !== vmiOwnerOf(owned)?.uid) return undefined;
  const phase = vmi.status?.phase;
  return phase === 'Scheduling' || (phase === 'Scheduled' && vmi.status?.nodeName === NODE) ? vmi : undefined;
}

async function reconcile(key: string): Promise<void> {
  const [namespace, name] = key.split('/');
  let vmi = vmis.get(name, namespace);
  const early = !vmi;
  vmi ??= await vmiOfReadyPod(namespace, name);
  if (!vmi || (!early && vmi.status?.nodeName !== NODE) || isFinalPhase(vmi.status?.phase)) return release(key);
  if (vmiUpdates.stale(key, vmi.metadata.resourceVersion)) return;
  const pod = launcherPodOf(vmi);
  if (!pod) return; // virt-controller fails a VMI whose pod is gone
  let state = states.get(key);
  if (state && state.podUid !== pod.metadata!.uid) {
    await release(key);
    state = undefined;
  }
  if (!state) {
    state = { podUid: pod.metadata!.uid!, guestCheckedAt: 0 };
    states.set(key, state);
  }
  const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
  const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata };
  const launcherExitCode = computeStatus(pod)?.state?.terminated?.exitCode;
  // Once QEMU has exited (the launcher says so before it exits itself, and before the kubelet
  // sees the compute container end), nothing opens the images again. Their mounts would make
  // the kubelet's tear-down of the pod's volumes fail and back off, holding up the pod's deletion.
  if ((launcherExitCode !== undefined || (state.domain && isFinal(state.domain))) && !state.imagesReleased) {
    state.imagesReleased = true;
    await releaseImageVolumes(state.podUid, run);
  }
  if (!state.client && launcherExitCode === undefined) {
    const deleting = vmi.metadata.deletionTimestamp || pod.metadata?.deletionTimestamp;
    const connected = await connect(key, pod, state).then(() => true, (error) => {
      // Being deleted, a launcher that no longer answers has ended or is ending: the pod's next
      // status says which, and queues the VMI again. Retrying sooner only fails again.
      if (!deleting) throw error;
      return false;
    });
    if (!connected) return;
  }
  const client = state.client;
  const domainUp = state.domain && ['Running', 'Paused'].includes(state.domain.state);

  if (vmi.metadata.deletionTimestamp || pod.metadata?.deletionTimestamp) {
    if (domainUp && !state.shutdownSent) {
      state.shutdownSent = true;
      const grace = vmi.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
      vmiLog.info('shutting the guest down', { gracePeriodSeconds: grace });
      record(subject, 'Normal', 'ShuttingDown', `Signaled Graceful Shutdown (grace period ${grace}s)`);
      client?.request({ command: 'shutdown', gracePeriodSeconds: grace }).catch((error: Error) => vmiLog.warning('shutdown failed', { error: error.message }));
    }
  } else if (client && (early || vmi.status?.phase === 'Scheduled') && (!state.domain || state.domain.state === 'NoState') && !state.syncing && Date.now() >= (state.nextSyncAt ?? 0)) {
    state.syncing = true;
    try {
      const context = await nodeContext(vmi, pod, state);
      await client.request({ command: 'sync', vmi, context });
      state.syncError = undefined;
      state.syncDelayMs = undefined;
      vmiLog.info('launcher synced');
      record(subject, 'Normal', 'Created', 'VirtualMachineInstance defined.');
    } catch (error) {
      state.syncError = (error as Error).message.replace(/\/proc\/\d+\/fd\/\d+/g, '<fd>');
      state.syncDelayMs = Math.min(30_000, (state.syncDelayMs ?? 500) * 2);
      state.nextSyncAt = Date.now() + state.syncDelayMs;
      queue.addAfter(key, state.syncDelayMs);
      vmiLog.warning('sync failed', { error: state.syncError, unsafePath: error instanceof UnsafePathError, retryInMs: state.syncDelayMs });
      record(subject, 'Warning', 'SyncFailed', state.syncError);
    } finally {
      state.syncing = false;
    }
  }

  const running = state.domain?.state === 'Running';
  // A launcher found again after a restart was synced under the node's current mode.
  if (running && !state.cpuIdle && (state.emulated ?? emulation)) {
    state.cpuIdle = true;
    try {
      const pid = computePid(pod);
      makePodCpuIdle(pid, parentPid(pid));
    } catch (error) {
      vmiLog.warning('cannot lower the emulated guest\'s CPU priority', { error: (error as Error).message });
    }
  }
  // The agent may take seconds to answer (or never): asked in the background, never holding up the status.
  if (client && running && !state.guestPending && Date.now() - state.guestCheckedAt > (state.guest ? GUEST_INFO_INTERVAL_MS.connected : GUEST_INFO_INTERVAL_MS.waiting)) {
    state.guestPending = true;
    state.guestCheckedAt = Date.now();
    void client.request<GuestInfo>({ command: 'guestInfo' }).catch(() => undefined).then((guest) => {
      state.guestPending = false;
      const changed = !jsonEqual(guest, state.guest);
      state.guest = guest;
      if (changed) queue.add(key);
      queue.addAfter(key, guest ? GUEST_INFO_INTERVAL_MS.connected : GUEST_INFO_INTERVAL_MS.waiting);
    });
  }

  const podReady = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  const observed = { domain: state.domain, guest: state.guest, interfaces: state.network?.interfaces, syncError: state.syncError, launcherExitCode, podReady };
  const next = withObservedStatus(vmi, observed, apiTimestamp());
  // Before virt-controller's Scheduled, the VMI is not this node's to write (and kube-apiserver would refuse).
  if (!early && statusChanged(vmi, next)) {
    if (next.status?.phase !== vmi.status?.phase) {
      vmiLog.info('phase changed', { from: vmi.status?.phase, to: next.status?.phase, domain: state.domain });
      if (next.status?.phase === 'Running') record(subject, 'Normal', 'Started', 'VirtualMachineInstance started.');
      if (next.status?.phase === 'Failed') record(subject, 'Warning', 'Stopped', `The VirtualMachineInstance crashed (${state.domain?.state}/${state.domain?.reason}).`);
      if (next.status?.phase === 'Succeeded') record(subject, 'Normal', 'Stopped', 'The VirtualMachineInstance was shut down.');
    }
    const written = (await custom.replaceNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', namespace, name, body: next })) as Typed<VirtualMachineInstance>;
    vmiUpdates.wrote(key, vmi.metadata.resourceVersion, written.metadata.resourceVersion);
  }
}

const certs = '/etc/virt-handler';
const handlerTls = () => ({
  cert: readFileSync(`${certs}/kubevirt-virt-handler-server-certs/tls.crt`),
  key: readFileSync(`${certs}/kubevirt-virt-handler-server-certs/tls.key`),
  ca: readFileSync(`${certs}/kubevirt-ca/ca-bundle`),
});
const COMMANDS = { pause: 'pause', unpause: 'unpause', softreboot: 'softReboot', reset: 'reset' } as const;
const launcherOf = (namespace: string, name: string) => {
  const client = states.get(`${namespace}/${name}`)?.client;
  if (!client) throw new Error(`VMI ${namespace}/${name} has no running launcher on node ${NODE}`);
  return client;
};
const apiServer = serveVirtApi(handlerTls, {
  async act(namespace, name, action) {
    await launcherOf(namespace, name).request({ command: COMMANDS[action] });
    log.object({ kind: 'VirtualMachineInstance', metadata: { namespace, name } }).info(`${action} done`);
  },
  guestInfo: (namespace, name) => launcherOf(namespace, name).request<GuestInfo>({ command: 'guestInfo' }),
  async openStream(namespace, name, kind) {
    launcherOf(namespace, name);
    const podUid = states.get(`${namespace}/${name}`)!.podUid;
    return viaDirectoryFd(emptyDirOf(podUid, 'sockets'), kind === 'console' ? SERIAL_SOCKET : VNC_SOCKET, (path) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connectSocket(path);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
        socket.once('error', reject);
      }));
  },
}, log);
// Certificates rotate; the server takes the new ones without a restart.
setInterval(() => apiServer.setSecureContext(handlerTls()), 60_000).unref();

log.info('virt-handler running', { node: NODE, vmis: vmis.list().length });
await runWorkers(queue, 16, reconcile, (key, error) => log.warning('reconcile failed; will retry', { key, error: apiErrorMessage(error) }));
