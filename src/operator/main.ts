// virt-operator: once it holds the leader lease, it fills its informers'
// caches and runs the KubeVirt controller over them.
import {
  AppsV1Api,
  VersionApi,
  type KubernetesListObject,
  type KubernetesObject,
  type V1DaemonSet,
  type V1Deployment,
} from '@kubernetes/client-node';
import type { KubeVirt } from '../api/types.ts';
import { eventRecorder } from '../lib/events.ts';
import {
  customInformer,
  loadKubeConfig,
  makeInformer,
  startInformers,
  withoutLastApplied,
  type CachedInformer,
  type Typed,
} from '../lib/kube.ts';
import { serveHealth } from '../lib/health.ts';
import { LeaderElector } from '../lib/leader.ts';
import { componentMetrics } from '../lib/metrics.ts';
import { createCa, createLeaf } from './certs.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue } from '../lib/workqueue.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from './components.ts';
import { OperatorKubeApi } from './kube-api.ts';
import { KubeVirtController } from './kubevirt-controller.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('virt-operator');
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
const images = {
  image: process.env.VIRT_TS_IMAGE ?? 'registry:5000/kubevirt-ts/virt-ts:devel',
  launcherImage: process.env.VIRT_LAUNCHER_IMAGE ?? 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: process.env.IMAGE_PULL_POLICY ?? 'IfNotPresent',
};

// Made before any request is sent: the API client's requests are counted from the first.
const metrics = componentMetrics('virt-operator');
const kc = loadKubeConfig();
// Its metrics over TLS on 8443, as upstream's, with a certificate of its own made at start
// (scrapers do not verify it, as upstream's ServiceMonitor does not).
await serveOperatorMetrics();
const identity = process.env.POD_NAME ?? `${process.env.HOSTNAME}-${process.pid}`;
const elector = new LeaderElector(kc, { namespace: NAMESPACE, name: 'virt-operator', identity }, log);
exitOnSignals(log, () => elector.release());
await elector.run(() => process.exit(1));
metrics.setLeading(true);

const apps = kc.makeApiClient(AppsV1Api);
const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
const kubevirts = customInformer<Typed<KubeVirt>>(kc, 'kubevirt.io', 'v1', 'kubevirts');
const listed = { namespace: NAMESPACE, labelSelector: selector };
const deployments = makeInformer<V1Deployment>(
  kc,
  `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`,
  () => apps.listNamespacedDeployment(listed) as Promise<KubernetesListObject<V1Deployment>>,
  selector,
  withoutLastApplied,
);
const daemonsets = makeInformer<V1DaemonSet>(
  kc,
  `/apis/apps/v1/namespaces/${NAMESPACE}/daemonsets`,
  () => apps.listNamespacedDaemonSet(listed) as Promise<KubernetesListObject<V1DaemonSet>>,
  selector,
  withoutLastApplied,
);

const controller = new KubeVirtController({
  api: new OperatorKubeApi(kc),
  informers: { kubevirts, deployments, daemonsets },
  queue: new WorkQueue({ baseDelayMs: 500 }),
  namespace: NAMESPACE,
  images,
  now: () => new Date(),
  record: eventRecorder(kc, 'virt-operator', log),
  log,
});
await startInformers(log, kubevirts, deployments as CachedInformer<KubernetesObject>, daemonsets as CachedInformer<KubernetesObject>);

metrics.setReady(true);
log.info('reconciling KubeVirt CRs', { namespace: NAMESPACE, image: images.image });
await controller.run();

async function serveOperatorMetrics() {
  const now = new Date();
  const year = 365 * 24 * 3600 * 1000;
  try {
    const ca = await createCa(now, year);
    const name = `virt-operator.${NAMESPACE}.svc`;
    const leaf = await createLeaf(ca, { secret: '', commonName: name, dnsNames: [name], usage: 'server' }, now, year);
    const versionApi = kc.makeApiClient(VersionApi);
    serveHealth({
      port: 8443,
      tls: () => leaf,
      state: { apiserverVersion: () => versionApi.getCode(), configResourceVersion: () => '' },
      metrics: metrics.registry,
      log,
    });
  } catch (error) {
    log.warning('not serving metrics', { error: String(error) });
  }
}
