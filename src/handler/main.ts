// virt-handler, the node agent (one per node, privileged, in the host PID
// namespace). For each VMI scheduled to its node it wires the pod network
// and the image volumes inside the launcher pod, sends the launcher `sync`,
// follows its domain events, and writes the VMI's status (./virt-handler.ts).
// It also heartbeats the node. Restarting it never touches a running guest:
// it reconnects to each launcher and carries on.
import { connect as connectSocket, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../api/types.ts';
import { LAUNCHER_SELECTOR, launcherPodAsRead } from '../contract/launcher-pod.ts';
import { LauncherClient } from '../contract/launcher-client.ts';
import { LAUNCHER_SOCKET } from '../contract/launcher-protocol.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { eventRecorder } from '../lib/events.ts';
import { hugepageSizes } from '../lib/hugepages.ts';
import { chain, loadKubeConfig, makeInformer, startInformers, withoutLastApplied, type CachedInformer, type Typed } from '../lib/kube.ts';
import { kvmUsable } from '../lib/kvm.ts';
import { queryCpuDefinitions, usableCpuModels } from '../lib/cpu-models.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue } from '../lib/workqueue.ts';
import { cpuLabels } from './heartbeat.ts';
import { NodeLauncherHost } from './launcher-host.ts';
import { NodeReporter } from './node-reporter.ts';
import { NodeLease } from './node-lease.ts';
import { microTime } from '../lib/leader.ts';
import { FENCING, nodeLeaseName } from '../contract/node.ts';
import { emptyDirOf, viaDirectoryFd } from './paths.ts';
import { commandRunner } from './runner.ts';
import { serveHealth } from '../lib/health.ts';
import { componentMetrics } from '../lib/metrics.ts';
import { HandlerMetrics } from './metrics-collector.ts';
import { virtApiRelay } from './relay.ts';
import { forwardMigration, listenForMigration } from './migration-proxy.ts';
import { MIGRATION_TARGET_NODE_LABEL } from '../api/constants.ts';
import { serveVirtApi, StreamSessions } from './server.ts';
import { VirtHandler } from './virt-handler.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('virt-handler');
/** What is done on SIGTERM before exiting: set once the node reporter exists. */
let beforeExit: () => unknown = () => undefined;
exitOnSignals(log, () => beforeExit());
const { values: flags } = parseArgs({
  options: {
    'heartbeat-interval-seconds': { type: 'string', default: '60' },
    'state-dir': { type: 'string', default: '/var/run/kubevirt-ts' },
  },
});
const NODE = process.env.NODE_NAME;
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
if (!NODE) {
  log.error('NODE_NAME is not set; virt-handler must run with the downward API giving it spec.nodeName');
  process.exit(2);
}

// Made before any request is sent: the API client's requests are counted from the first.
const METRICS_PORT = 8443;
const component = componentMetrics('virt-handler');
const kc = loadKubeConfig();
const versionApi = kc.makeApiClient(VersionApi);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const vmiApi = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' };

const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
const nodeSelector = `kubevirt.io/nodeName=${NODE}`;
const vmis = makeInformer<Typed<VirtualMachineInstance>>(
  kc,
  '/apis/kubevirt.io/v1/virtualmachineinstances',
  () =>
    custom.listClusterCustomObject({ ...vmiApi, labelSelector: nodeSelector }) as Promise<
      KubernetesListObject<Typed<VirtualMachineInstance>>
    >,
  nodeSelector,
);
const targetSelector = `${MIGRATION_TARGET_NODE_LABEL}=${NODE}`;
const migrationTargets = makeInformer<Typed<VirtualMachineInstance>>(
  kc,
  '/apis/kubevirt.io/v1/virtualmachineinstances',
  () =>
    custom.listClusterCustomObject({ ...vmiApi, labelSelector: targetSelector }) as Promise<
      KubernetesListObject<Typed<VirtualMachineInstance>>
    >,
  targetSelector,
);
const pods = makeInformer<V1Pod>(
  kc,
  '/api/v1/pods',
  () => core.listPodForAllNamespaces({ labelSelector: LAUNCHER_SELECTOR }) as Promise<KubernetesListObject<V1Pod>>,
  LAUNCHER_SELECTOR,
  chain(withoutLastApplied, launcherPodAsRead),
);

const reporter = new NodeReporter({
  node: NODE,
  patchNode: (body) => core.patchNode({ name: NODE, body }, mergePatch),
  patchNodeStatus: (body) => core.patchNodeStatus({ name: NODE, body }, mergePatch),
  cpuLabels: cpuLabels(readFileSync('/proc/cpuinfo', 'utf8')),
  probeKvm: () => kvmUsable(flags['state-dir']!),
  probeCpuModels: async (accel, obsolete) => usableCpuModels(await queryCpuDefinitions(accel), obsolete),
  readNodeLabels: async () => (await core.readNode({ name: NODE })).metadata?.labels ?? {},
  config: clusterConfig.current,
  log,
});
const certs = '/etc/virt-handler';
const handlerTls = () => ({
  cert: readFileSync(`${certs}/kubevirt-virt-handler-server-certs/tls.crt`),
  key: readFileSync(`${certs}/kubevirt-virt-handler-server-certs/tls.key`),
  ca: readFileSync(`${certs}/kubevirt-ca/ca-bundle`),
});
/** The handler's client certificate: what it shows another handler it sends a migration to. */
const handlerClientTls = () => ({
  cert: readFileSync(`${certs}/kubevirt-virt-handler-certs/tls.crt`),
  key: readFileSync(`${certs}/kubevirt-virt-handler-certs/tls.key`),
  ca: readFileSync(`${certs}/kubevirt-ca/ca-bundle`),
});
const openSocket = (podUid: string, name: string) =>
  viaDirectoryFd(
    emptyDirOf(podUid, 'sockets'),
    name,
    (path) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connectSocket(path);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
        socket.once('error', reject);
      }),
  );
const POD_IP = process.env.POD_IP;
if (!POD_IP) {
  log.error('POD_IP is not set; virt-handler must run with the downward API giving it status.podIP');
  process.exit(2);
}

const handler = new VirtHandler({
  node: NODE,
  vmis,
  migrationTargets,
  pods,
  address: POD_IP,
  migrations: () => clusterConfig.current().migrations,
  streams: {
    listen: (podUid, socket) => listenForMigration(POD_IP, handlerTls(), () => openSocket(podUid, socket), log),
    forward: (podUid, socket, target) => forwardMigration(emptyDirOf(podUid, 'sockets'), socket, target, handlerClientTls(), log),
  },
  api: {
    readVmi: (namespace, name) =>
      custom.getNamespacedCustomObject({ ...vmiApi, namespace, name }).catch((error: { code?: number }) => {
        if (error.code === 404) return undefined;
        throw error;
      }) as Promise<VirtualMachineInstance | undefined>,
    replaceVmi: (vmi) =>
      custom.replaceNamespacedCustomObject({
        ...vmiApi,
        namespace: vmi.metadata.namespace!,
        name: vmi.metadata.name!,
        body: vmi,
      }) as Promise<VirtualMachineInstance>,
  },
  dial: (podUid) => viaDirectoryFd(emptyDirOf(podUid, 'sockets'), LAUNCHER_SOCKET, (path) => LauncherClient.connect(path)),
  // Off the main thread: see runner.ts.
  host: new NodeLauncherHost({
    run: commandRunner(4),
    useKvm: () => reporter.useKvm(),
    hugepageSizes,
    diskVerificationMemoryLimitBytes: () => clusterConfig.current().diskVerificationMemoryLimitBytes,
  }),
  emulation: () => reporter.emulation,
  queue: new WorkQueue({ baseDelayMs: 500, maxDelayMs: 30_000 }),
  record: eventRecorder(kc, 'virt-handler', log),
  log,
});

const coordination = kc.makeApiClient(CoordinationV1Api);
const leaseName = nodeLeaseName(NODE);
const nodeLease = new NodeLease({
  node: NODE,
  // A merge patch: an update would need the lease's resourceVersion, and the lease is this handler's alone.
  renew: async (at) => {
    const spec = { holderIdentity: NODE, leaseDurationSeconds: FENCING.leaseDurationMs / 1000, renewTime: microTime(at) };
    await coordination
      .patchNamespacedLease({ name: leaseName, namespace: NAMESPACE, body: { spec } }, mergePatch)
      .catch(async (error: { code?: number }) => {
        if (error.code !== 404) throw error;
        await coordination.createNamespacedLease({ namespace: NAMESPACE, body: { metadata: { name: leaseName }, spec } });
      });
  },
  renewed: (validUntil) => handler.extendLease(validUntil),
  log,
});

// Going away, virt-handler takes its node out of VMI scheduling (upstream's labelNodeUnschedulable).
beforeExit = () => reporter.stop();
await reporter.heartbeatEvery(Number(flags['heartbeat-interval-seconds']) * 1000);
await startInformers(log, vmis, migrationTargets, pods as CachedInformer<KubernetesObject>, clusterConfig.informer);
reporter.probeKvm();
nodeLease.start();

const sessions = new StreamSessions();
const apiServer = serveVirtApi(handlerTls, virtApiRelay(handler, openSocket, log), log, sessions);
// Certificates rotate; the server takes the new ones without a restart.
setInterval(() => apiServer.setSecureContext(handlerTls()), 60_000).unref();

// Prometheus metrics on the metrics port, over TLS with the handler's serving certificate, as upstream serves them.
const metrics = new HandlerMetrics({
  node: NODE,
  vmis,
  launcherOf: (namespace, name) => handler.launcherOf(namespace, name),
  openStreams: () => sessions.open(),
  log,
  base: component,
});
serveHealth({
  port: METRICS_PORT,
  tls: () => {
    const { cert, key } = handlerTls();
    return { cert, key };
  },
  state: { apiserverVersion: () => versionApi.getCode(), configResourceVersion: clusterConfig.resourceVersion },
  metrics: metrics.registry,
  log,
});
component.setReady(true);

log.info('virt-handler running', { node: NODE, vmis: vmis.list().length });
await handler.run(16);
