// virt-operator: reconciles the KubeVirt CR. It keeps the PKI current, applies
// every install object with server-side apply (so a deleted or edited object
// comes back), reports Deployed/Available only when all components are ready,
// and uninstalls everything when the CR is deleted.
import { apiTimestamp } from '../contract/vmi.ts';
import { createHash } from 'node:crypto';
import {
  ApiregistrationV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi, makeInformer,
  type KubernetesListObject, type KubernetesObject, type V1DaemonSet, type V1Deployment,
} from '@kubernetes/client-node';
import type { KubeVirt } from '../api/types.ts';
import { applyObject, deleteObject } from '../lib/apply.ts';
import { eventRecorder } from '../lib/events.ts';
import { apiErrorMessage, customInformer, keyOf, loadKubeConfig, startInformers, type CachedInformer } from '../lib/kube.ts';
import { LeaderElector } from '../lib/leader.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { WorkQueue, runWorkers } from '../lib/workqueue.ts';
import { planPki, type KeyPair } from './certs.ts';
import { leafCertificates, MANAGED_BY, MANAGED_BY_LABEL } from './components.ts';
import { componentImages, desiredInstall, KUBEVIRT_FINALIZER, kubevirtStatus, workloadWaiting } from './install.ts';
import { jsonEqual } from '../api/json-equal.ts';

const log = createLogger('virt-operator');
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
const defaults = {
  image: process.env.VIRT_TS_IMAGE ?? 'registry:5000/kubevirt-ts/virt-ts:devel',
  launcherImage: process.env.VIRT_LAUNCHER_IMAGE ?? 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: process.env.IMAGE_PULL_POLICY ?? 'IfNotPresent',
};
/** Re-apply everything this often even when nothing seems to have changed, to put back what was removed. */
const RESYNC_MS = 5 * 60 * 1000;
type Typed<T> = T & KubernetesObject;
type Obj = Record<string, unknown> & KubernetesObject;

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const apiregistration = kc.makeApiClient(ApiregistrationV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const record = eventRecorder(kc, 'virt-operator', log);

const elector = new LeaderElector(kc, { namespace: NAMESPACE, name: 'virt-operator', identity: process.env.POD_NAME ?? `${process.env.HOSTNAME}-${process.pid}` }, log);
exitOnSignals(log, () => elector.release());
await elector.run(() => process.exit(1));

const kubevirts = customInformer<Typed<KubeVirt>>(kc, 'kubevirt.io', 'v1', 'kubevirts');
const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
const deployments = makeInformer<V1Deployment>(kc, `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`, () => apps.listNamespacedDeployment({ namespace: NAMESPACE, labelSelector: selector }) as Promise<KubernetesListObject<V1Deployment>>, selector);
const daemonsets = makeInformer<V1DaemonSet>(kc, `/apis/apps/v1/namespaces/${NAMESPACE}/daemonsets`, () => apps.listNamespacedDaemonSet({ namespace: NAMESPACE, labelSelector: selector }) as Promise<KubernetesListObject<V1DaemonSet>>, selector);
const queue = new WorkQueue({ baseDelayMs: 500 });
const enqueueAll = () => kubevirts.list(NAMESPACE).forEach((kv) => queue.add(keyOf(kv)));
let lastApplied = { hash: '', at: 0 };
for (const verb of ['add', 'update', 'delete'] as const) {
  kubevirts.on(verb, (kv) => kv.metadata?.namespace === NAMESPACE && queue.add(keyOf(kv)));
  for (const informer of [deployments, daemonsets] as CachedInformer<KubernetesObject>[]) {
    informer.on(verb, () => {
      // A component removed from under us is put back at once.
      if (verb === 'delete') lastApplied = { hash: '', at: 0 };
      enqueueAll();
    });
  }
}
await startInformers(log, kubevirts, deployments as CachedInformer<KubernetesObject>, daemonsets as CachedInformer<KubernetesObject>);

const notFound = (error: unknown) => (error as { code?: number }).code === 404;
const apply = (obj: Obj) => applyObject(kc, obj, 'virt-operator');
const secretObject = (name: string, pair: KeyPair): Obj => ({
  apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
  metadata: { name, namespace: NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
  data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') },
});

async function readPair(name: string): Promise<KeyPair | undefined> {
  try {
    const secret = await core.readNamespacedSecret({ name, namespace: NAMESPACE });
    const data = secret.data ?? {};
    if (!data['tls.crt'] || !data['tls.key']) return undefined;
    return { cert: Buffer.from(data['tls.crt'], 'base64').toString(), key: Buffer.from(data['tls.key'], 'base64').toString() };
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

/** Issues what is missing or due, writes it, and returns the CA bundle and when to look again. */
async function syncPki(kv: Typed<KubeVirt>): Promise<{ bundle: string; nextCheck: Date }> {
  const leaves = leafCertificates(NAMESPACE);
  const bundleMap = await core.readNamespacedConfigMap({ name: 'kubevirt-ca', namespace: NAMESPACE }).catch((error) => (notFound(error) ? undefined : Promise.reject(error)));
  const state = {
    ca: await readPair('kubevirt-ca'),
    bundle: bundleMap?.data?.['ca-bundle'],
    leaves: Object.fromEntries(await Promise.all(leaves.map(async (l) => [l.secret, await readPair(l.secret)] as const))),
  };
  const plan = await planPki(state, leaves, new Date());
  if (plan.caRenewed) {
    await apply(secretObject('kubevirt-ca', plan.ca));
    record({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: kv.metadata }, 'Normal', 'CARotated', 'Issued a new kubevirt-ts CA; the previous one stays trusted until it expires');
  }
  if (plan.bundle !== state.bundle) {
    await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubevirt-ca', namespace: NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } }, data: { 'ca-bundle': plan.bundle } });
  }
  for (const [secret, pair] of Object.entries(plan.write)) {
    await apply(secretObject(secret, pair));
    log.info('certificate issued', { secret });
  }
  return { bundle: plan.bundle, nextCheck: plan.nextCheck };
}

async function readiness(): Promise<string[]> {
  const waiting = [
    workloadWaiting(deployments.get('virt-api', NAMESPACE) as never, 'Deployment', 'virt-api'),
    workloadWaiting(deployments.get('virt-controller', NAMESPACE) as never, 'Deployment', 'virt-controller'),
    workloadWaiting(daemonsets.get('virt-handler', NAMESPACE) as never, 'DaemonSet', 'virt-handler'),
  ].filter((w): w is string => w !== undefined);
  const service = await apiregistration.readAPIService({ name: 'v1.subresources.kubevirt.io' }).catch(() => undefined);
  if (service?.status?.conditions?.find((c) => c.type === 'Available')?.status !== 'True') waiting.push('APIService v1.subresources.kubevirt.io');
  return waiting;
}

async function uninstall(kv: Typed<KubeVirt>): Promise<void> {
  const kvLog = log.object({ kind: 'KubeVirt', metadata: kv.metadata });
  if (kv.spec?.uninstallStrategy !== 'RemoveWorkloads') {
    const vmis = (await custom.listClusterCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', limit: 1 })) as { items: unknown[] };
    if (vmis.items.length) {
      kvLog.warning('uninstall blocked: VMIs still exist (uninstallStrategy BlockUninstallIfWorkloadsExist)');
      queue.addAfter(keyOf(kv), 10_000);
      return;
    }
  }
  const images = componentImages(kv, defaults);
  const installed = desiredInstall({ namespace: NAMESPACE, ...images, caBundle: '' }) as Obj[];
  const pki = ['kubevirt-ca', ...leafCertificates(NAMESPACE).map((l) => l.secret)].map((name) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NAMESPACE } }));
  const bundle = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubevirt-ca', namespace: NAMESPACE } };
  for (const obj of [...installed].reverse().concat(pki, bundle)) {
    await deleteObject(kc, obj);
  }
  kvLog.info('uninstalled', { objects: installed.length + pki.length + 1 });
  await custom.patchNamespacedCustomObject({
    group: 'kubevirt.io', version: 'v1', plural: 'kubevirts', namespace: NAMESPACE, name: kv.metadata.name!,
    body: [{ op: 'replace', path: '/metadata/finalizers', value: (kv.metadata.finalizers ?? []).filter((f) => f !== KUBEVIRT_FINALIZER) }] as unknown as object,
  });
  lastApplied = { hash: '', at: 0 };
}

async function reconcile(key: string): Promise<void> {
  const [namespace, name] = key.split('/');
  const kv = kubevirts.get(name, namespace);
  if (!kv) return;
  if (kv.metadata.deletionTimestamp) return uninstall(kv);
  const kvApi = { group: 'kubevirt.io', version: 'v1', plural: 'kubevirts', namespace, name };
  let resourceVersion = kv.metadata.resourceVersion;
  if (!(kv.metadata.finalizers ?? []).includes(KUBEVIRT_FINALIZER)) {
    const patched = (await custom.patchNamespacedCustomObject({ ...kvApi, body: [{ op: 'add', path: '/metadata/finalizers', value: [...(kv.metadata.finalizers ?? []), KUBEVIRT_FINALIZER] }] as unknown as object })) as Typed<KubeVirt>;
    resourceVersion = patched.metadata.resourceVersion;
  }
  const pki = await syncPki(kv);
  const images = componentImages(kv, defaults);
  const desired = desiredInstall({ namespace: NAMESPACE, ...images, caBundle: pki.bundle }) as Obj[];
  const hash = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
  if (hash !== lastApplied.hash || Date.now() - lastApplied.at > RESYNC_MS) {
    const started = Date.now();
    for (const obj of desired) await apply(obj);
    lastApplied = { hash, at: Date.now() };
    log.info('install objects applied', { objects: desired.length, ms: Date.now() - started, image: images.image });
  }
  const waiting = await readiness();
  const status = kubevirtStatus(kv, { waiting }, images, apiTimestamp());
  if (!jsonEqual(status, kv.status ?? {})) {
    if (status.phase !== kv.status?.phase) {
      log.info('phase changed', { from: kv.status?.phase ?? '', to: status.phase, waiting });
      record({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: kv.metadata }, 'Normal', status.phase === 'Deployed' ? 'Deployed' : 'Deploying', status.phase === 'Deployed' ? 'All components are ready' : `Waiting for ${waiting.join(', ')}`);
    }
    await custom.replaceNamespacedCustomObjectStatus({ ...kvApi, body: { ...kv, metadata: { ...kv.metadata, resourceVersion }, status } });
  }
  // The APIService is not watched, and certificates come due: look again.
  queue.addAfter(key, Math.min(waiting.length ? 3000 : RESYNC_MS, Math.max(1000, pki.nextCheck.getTime() - Date.now())));
}

log.info('reconciling KubeVirt CRs', { namespace: NAMESPACE, image: defaults.image });
await runWorkers(queue, 1, reconcile, (key, error) => log.warning('reconcile failed; will retry', { key, error: apiErrorMessage(error) }));
