// cdi-controller: kubevirt-ts's DataVolume support where CDI is not installed.
// Every replica serves the upload proxy; the leader fills DataVolumes and
// keeps the CDIConfig's status.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CoreV1Api,
  type KubernetesListObject,
  type KubernetesObject,
  StorageV1Api,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { jsonEqual } from '../api/json-equal.ts';
import type { DataVolume } from '../api/types.ts';
import { CDI_GROUP, CDI_POD_LABELS, CDI_VERSION, type FilesystemOverheadStatus, filesystemOverheadFor } from '../contract/cdi.ts';
import { UPLOAD_TOKEN_KEY_FILE } from '../contract/upload-token.ts';
import { eventRecorder } from '../lib/events.ts';
import {
  type CachedInformer,
  customInformer,
  loadKubeConfig,
  makeInformer,
  startInformers,
  type Typed,
  withoutLastApplied,
} from '../lib/kube.ts';
import { LeaderElector } from '../lib/leader.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue } from '../lib/workqueue.ts';
import { cdiConfigStatus, NEW_CDI_CONFIG, uploadProxyAddress } from './cdi-config.ts';
import { DataVolumeController } from './datavolume-controller.ts';
import { fillPodTls, readFillPodCa } from './fill-pod-tls.ts';
import { UploadClaimController } from './upload-claim-controller.ts';
import { CdiKubeApi } from './kube-api.ts';
import { uploadProxy } from './upload-proxy.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('cdi-controller');
const { values: flags } = parseArgs({
  options: {
    'fill-pod-image': { type: 'string', default: 'registry:5000/kubevirt-ts/virt-launcher:devel' },
    'image-pull-policy': { type: 'string', default: 'IfNotPresent' },
    'proxy-certificates': { type: 'string', default: '/etc/cdi-uploadproxy/certificates' },
    'token-key': { type: 'string', default: '/etc/cdi-upload-token' },
    'fill-pod-ca': { type: 'string', default: '/etc/cdi-fill-pod-ca' },
    'proxy-port': { type: 'string', default: '8443' },
    'upload-proxy-service': { type: 'string', default: 'cdi-uploadproxy' },
  },
});
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
exitOnSignals(log);

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const storage = kc.makeApiClient(StorageV1Api);
const selector = `app=${CDI_POD_LABELS.app}`;
const dataVolumes = customInformer<Typed<DataVolume>>(kc, CDI_GROUP, CDI_VERSION, 'datavolumes');
// Every claim: a bare upload target (virtctl image-upload pvc) is known by an annotation, which no selector can ask for.
const claims = makeInformer<V1PersistentVolumeClaim>(
  kc,
  '/api/v1/persistentvolumeclaims',
  () => core.listPersistentVolumeClaimForAllNamespaces() as Promise<KubernetesListObject<V1PersistentVolumeClaim>>,
  undefined,
  withoutLastApplied,
);
const pods = makeInformer<V1Pod>(
  kc,
  '/api/v1/pods',
  () => core.listPodForAllNamespaces({ labelSelector: selector }) as Promise<KubernetesListObject<V1Pod>>,
  selector,
  withoutLastApplied,
);
const storageClasses = makeInformer<V1StorageClass>(
  kc,
  '/apis/storage.k8s.io/v1/storageclasses',
  () => storage.listStorageClass() as Promise<KubernetesListObject<V1StorageClass>>,
  undefined,
  withoutLastApplied,
);
const tokenKey = readFileSync(join(flags['token-key']!, UPLOAD_TOKEN_KEY_FILE));
const certDir = flags['proxy-certificates']!;
const fillPodCaDir = flags['fill-pod-ca']!;
// Read at start, so a missing Secret stops cdi-controller at once; again as the operator rotates it.
const fillPods = fillPodTls(() => readFillPodCa(fillPodCaDir));
fillPods.bundle();

// Built before the informers start, so that what exists already is queued by their first list,
// and worked on once this replica leads.
const api = new CdiKubeApi(kc);
/** The CDIConfig's status.filesystemOverhead as last computed (syncCdiConfig keeps it, every 30 s). */
let overheads: FilesystemOverheadStatus | undefined;
const defaultClassName = () =>
  storageClasses.list().find((sc) => sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true')?.metadata?.name;
const controller = new DataVolumeController({
  api,
  informers: { dataVolumes, claims, pods, storageClasses },
  queue: new WorkQueue(),
  now: () => new Date(),
  record: eventRecorder(kc, 'cdi-controller', log),
  log,
  params: { image: flags['fill-pod-image']!, imagePullPolicy: flags['image-pull-policy']! },
  filesystemOverhead: (storageClass) => filesystemOverheadFor(overheads, storageClass ?? defaultClassName()),
  podTokenKey: tokenKey,
  tls: fillPods,
});

const uploadClaims = new UploadClaimController({
  api,
  informers: { claims, pods },
  queue: new WorkQueue(),
  record: eventRecorder(kc, 'cdi-controller', log),
  log,
  params: { image: flags['fill-pod-image']!, imagePullPolicy: flags['image-pull-policy']! },
  filesystemOverhead: (claim) => filesystemOverheadFor(overheads, claim.spec?.storageClassName ?? defaultClassName()),
  podTokenKey: tokenKey,
  tls: fillPods,
});

await startInformers(
  log,
  dataVolumes,
  claims as CachedInformer<KubernetesObject>,
  pods as CachedInformer<KubernetesObject>,
  storageClasses as CachedInformer<KubernetesObject>,
);

uploadProxy({
  tls: { cert: readFileSync(join(certDir, 'tls.crt'), 'utf8'), key: readFileSync(join(certDir, 'tls.key'), 'utf8') },
  tokenKey,
  fillPodCa: () => fillPods.bundle(),
  claims,
  pods,
  log,
  now: Date.now,
}).listen(Number(flags['proxy-port']), () => log.info('upload proxy serving', { port: Number(flags['proxy-port']) }));

const identity = process.env.POD_NAME ?? `${process.env.HOSTNAME}-${process.pid}`;
const elector = new LeaderElector(kc, { namespace: NAMESPACE, name: 'cdi-controller', identity }, log);
await elector.run(() => process.exit(1));

/** The CDIConfig's status follows the proxy's Service, the nodes and the admin's spec; looked at every 30 s. */
async function syncCdiConfig(): Promise<void> {
  let config = await api.readCdiConfig();
  if (!config) {
    await api.createCdiConfig(NEW_CDI_CONFIG).catch((error: { code?: number }) => {
      if (error.code !== 409) throw error;
    });
    config = await api.readCdiConfig();
  }
  if (!config) return;
  const service = await core.readNamespacedService({ namespace: NAMESPACE, name: flags['upload-proxy-service']! }).catch(() => undefined);
  const nodes = (await core.listNode()).items;
  const defaultClass = storageClasses
    .list()
    .find((sc) => sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  const classNames = storageClasses.list().map((sc) => sc.metadata!.name!);
  const status = cdiConfigStatus(config, uploadProxyAddress(service, nodes), defaultClass?.metadata?.name, classNames);
  overheads = status.filesystemOverhead;
  if (!jsonEqual(status, config.status ?? {})) {
    await api.replaceCdiConfig({ ...config, status });
    log.info('CDIConfig status written', { uploadProxyURL: status.uploadProxyURL ?? '' });
  }
}
const keepCdiConfig = () =>
  syncCdiConfig()
    .catch((error: Error) => log.warning('cannot write the CDIConfig status; will retry', { error: error.message }))
    .finally(() => setTimeout(keepCdiConfig, 30_000));
// The first pass before any claim is sized, so the admin's filesystem overhead applies from the start.
await syncCdiConfig().catch((error: Error) => log.warning('cannot write the CDIConfig status; will retry', { error: error.message }));
setTimeout(keepCdiConfig, 30_000);

log.info('caches synced; reconciling', { dataVolumes: dataVolumes.list().length });
await Promise.all([controller.run(3), uploadClaims.run(1)]);
