// The KubeVirt controller: it keeps the PKI current (planPki), applies every
// install object with server-side apply (desiredInstall), so that a deleted
// or edited object comes back, reports Deployed/Available only when all
// components are ready (kubevirtStatus), keeps the catalogue of common instance
// types and preferences in place (or removes it when the CR turns it off), and
// uninstalls everything, the catalogue first, when the CR is deleted.
import { createHash, randomBytes } from 'node:crypto';
import type {
  KubernetesObject,
  V1APIService,
  V1CustomResourceDefinition,
  V1ConfigMap,
  V1DaemonSet,
  V1Deployment,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import { jsonEqual } from '../api/json-equal.ts';
import type { KubeVirt, KubeVirtStatus } from '../api/types.ts';
import { FILL_POD_CA_FILES, FILL_POD_CA_SECRET } from '../contract/cdi.ts';
import { UPLOAD_TOKEN_KEY_FILE, UPLOAD_TOKEN_SECRET } from '../contract/upload-token.ts';
import { apiTimestamp } from '../contract/vmi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { UPLOAD_API_SERVICE } from './cdi-components.ts';
import { planFillPodCa, planPki, type KeyPair } from './certs.ts';
import { leafCertificates, MANAGED_BY, MANAGED_BY_LABEL } from './components.ts';
import { CATALOGUE_KINDS, type CatalogueKind, commonInstancetypes } from './common-instancetypes.ts';
import { componentImages, desiredInstall, KUBEVIRT_FINALIZER, kubevirtStatus, workloadWaiting, type ImageSettings } from './install.ts';
import {
  monitoringCandidates,
  monitoringObjects,
  monitoringObjectsIn,
  PROMETHEUS_SERVICES,
  prometheusUrlOf,
  PROMETHEUS_RULE_CRD,
  SERVICE_MONITOR_CRD,
  type MonitoringInstall,
} from './monitoring.ts';

/** Re-apply everything this often even when nothing seems to have changed, to put back what was removed. */
const RESYNC_MS = 5 * 60 * 1000;
const SUBRESOURCE_API_SERVICE = 'v1.subresources.kubevirt.io';
const DATAVOLUME_CRD = 'datavolumes.cdi.kubevirt.io';

/** An object virt-operator installs, sent as the JSON it is. */
export type InstallObject = Record<string, unknown> & KubernetesObject;

/** The API calls of the KubeVirt controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface KubeVirtControllerApi {
  /** Server-side apply, taking ownership of every field given (force), as an installer does. */
  apply(object: InstallObject): Promise<void>;
  /** Deletes an object; one already gone is fine. */
  delete(object: InstallObject): Promise<void>;
  /** Deletes every catalogue object of a kind that the label selector matches; a kind no longer served is fine. */
  deleteAll(kind: CatalogueKind, labelSelector: string): Promise<void>;
  readSecret(namespace: string, name: string): Promise<V1Secret>;
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap>;
  readApiService(name: string): Promise<V1APIService>;
  readCrd(name: string): Promise<V1CustomResourceDefinition>;
  readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount>;
  readService(namespace: string, name: string): Promise<V1Service>;
  /** Whether any VMI exists, in any namespace. */
  vmisExist(): Promise<boolean>;
  patchKubeVirt(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<KubeVirt>>;
  replaceKubeVirtStatus(namespace: string, name: string, kv: KubeVirt): Promise<void>;
}

export interface KubeVirtControllerOptions {
  api: KubeVirtControllerApi;
  informers: {
    kubevirts: InformerCache<Typed<KubeVirt>>;
    /** The operator's own Deployments and DaemonSets (those labelled managed by it) in its namespace. */
    deployments: InformerCache<V1Deployment>;
    daemonsets: InformerCache<V1DaemonSet>;
  };
  queue: WorkQueue;
  /** The namespace the operator installs into; a KubeVirt CR elsewhere is ignored. */
  namespace: string;
  /** The component images when the CR names no other registry or tag. */
  images: ImageSettings;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

export class KubeVirtController {
  readonly #api: KubeVirtControllerApi;
  readonly #kubevirts: InformerCache<Typed<KubeVirt>>;
  readonly #deployments: InformerCache<V1Deployment>;
  readonly #daemonsets: InformerCache<V1DaemonSet>;
  readonly #queue: WorkQueue;
  readonly #namespace: string;
  readonly #images: ImageSettings;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  /** What was applied last, and when: the same install is applied again only once RESYNC_MS have passed. */
  #lastApplied = { hash: '', at: 0 };
  /** When the catalogue of common instance types and preferences was last applied (0: not since the install changed). */
  #catalogueAppliedAt = 0;
  /** Whether the catalogue was removed (the CR turned it off) and not applied since. */
  #catalogueRemoved = false;
  #cdiInstalled: boolean | undefined;
  /** The monitoring objects applied last: those the next install no longer has are deleted. */
  #monitoringApplied: InstallObject[] = [];

  constructor(options: KubeVirtControllerOptions) {
    this.#api = options.api;
    this.#kubevirts = options.informers.kubevirts;
    this.#deployments = options.informers.deployments;
    this.#daemonsets = options.informers.daemonsets;
    this.#queue = options.queue;
    this.#namespace = options.namespace;
    this.#images = options.images;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    onEveryChange(this.#kubevirts, (kv) => {
      if (kv.metadata?.namespace === this.#namespace) this.#queue.add(keyOf(kv));
    });
    const onWorkloadChange = (verb: string) => {
      // A component removed from under us is put back at once.
      if (verb === 'delete') this.#lastApplied = { hash: '', at: 0 };
      for (const kv of this.#kubevirts.list(this.#namespace)) this.#queue.add(keyOf(kv));
    };
    onEveryChange(this.#deployments, (_, verb) => onWorkloadChange(verb));
    onEveryChange(this.#daemonsets, (_, verb) => onWorkloadChange(verb));
  }

  /** Reconciles queued KubeVirt CRs until the queue shuts down. */
  run(): Promise<void> {
    return runReconciler(this.#queue, 1, this, this.#log, 'KubeVirt');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const kv = this.#kubevirts.get(name, namespace);
    if (!kv) return;
    if (kv.metadata.deletionTimestamp) return this.#uninstall(kv);
    let resourceVersion = kv.metadata.resourceVersion;
    const finalizers = kv.metadata.finalizers ?? [];
    if (!finalizers.includes(KUBEVIRT_FINALIZER)) {
      const patch: JsonPatchOperation[] = [{ op: 'add', path: '/metadata/finalizers', value: [...finalizers, KUBEVIRT_FINALIZER] }];
      resourceVersion = (await this.#api.patchKubeVirt(namespace, name, patch)).metadata.resourceVersion;
    }
    const pki = await this.#syncPki(kv);
    const images = componentImages(kv, this.#images);
    const cdi = await this.#servesDataVolumes();
    let fillPodCaCheck: Date | undefined;
    if (cdi) {
      await this.#syncUploadTokenKey();
      fillPodCaCheck = await this.#syncFillPodCa(kv);
    }
    const monitoring = await this.#monitoring(kv);
    const prometheusUrl = await this.#prometheusUrl(kv);
    const placement = { infra: kv.spec?.infra?.nodePlacement, workloads: kv.spec?.workloads?.nodePlacement };
    const desired = desiredInstall({
      namespace: this.#namespace,
      ...images,
      caBundle: pki.bundle,
      cdi,
      monitoring,
      prometheusUrl,
      placement,
    });
    const hash = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
    if (hash !== this.#lastApplied.hash || this.#now().getTime() - this.#lastApplied.at > RESYNC_MS) {
      const started = this.#now().getTime();
      for (const obj of desired) await this.#api.apply(obj);
      await this.#pruneMonitoring(monitoring);
      this.#lastApplied = { hash, at: this.#now().getTime() };
      this.#catalogueAppliedAt = 0;
      this.#log.info('install objects applied', { objects: desired.length, ms: this.#now().getTime() - started, image: images.image });
    }
    const waiting = await this.#readiness(cdi);
    // The catalogue goes in once virt-api (whose webhooks admit it) is ready, unless the CR turns it off.
    if (kv.spec?.configuration?.commonInstancetypesDeployment?.enabled === false) await this.#removeCatalogue();
    else if (!waiting.length) await this.#applyCatalogue();
    const status = kubevirtStatus(kv, { waiting, generations: this.#generations() }, images, apiTimestamp(this.#now()));
    if (!jsonEqual(status, kv.status ?? {})) {
      if (status.phase !== kv.status?.phase) {
        this.#log.info('phase changed', { from: kv.status?.phase ?? '', to: status.phase, waiting });
        const deployed = status.phase === 'Deployed';
        const message = deployed ? 'All components are ready' : `Waiting for ${waiting.join(', ')}`;
        this.#record(this.#subject(kv), 'Normal', deployed ? 'Deployed' : 'Deploying', message);
      }
      await this.#api.replaceKubeVirtStatus(namespace, name, { ...kv, metadata: { ...kv.metadata, resourceVersion }, status });
    }
    // The APIService is not watched, and certificates come due: look again.
    const nextCheck = Math.min(pki.nextCheck.getTime(), fillPodCaCheck?.getTime() ?? Number.POSITIVE_INFINITY);
    const untilRenewal = Math.max(1000, nextCheck - this.#now().getTime());
    this.#queue.addAfter(key, Math.min(waiting.length ? 3000 : RESYNC_MS, untilRenewal));
  }

  /**
   * The Prometheus Operator's objects to install, as upstream decides: where the cluster serves
   * ServiceMonitors or PrometheusRules and the monitoring service account exists (the CR's
   * monitorNamespace/monitorAccount, else upstream's defaults).
   */
  async #monitoring(kv: Typed<KubeVirt>): Promise<MonitoringInstall | undefined> {
    const serves = async (crd: string) => (await this.#api.readCrd(crd).catch(ignoreNotFound)) !== undefined;
    const serviceMonitors = await serves(SERVICE_MONITOR_CRD);
    const prometheusRules = await serves(PROMETHEUS_RULE_CRD);
    if (!serviceMonitors && !prometheusRules) return undefined;
    for (const { namespace, account } of monitoringCandidates(kv)) {
      if (!(await this.#api.readServiceAccount(namespace, account).catch(ignoreNotFound))) continue;
      const serviceMonitorNamespace = kv.spec?.serviceMonitorNamespace || namespace;
      return { namespace, account, serviceMonitorNamespace, serviceMonitors, prometheusRules };
    }
    return undefined;
  }

  /** The in-cluster address of the first Prometheus Service found in the monitoring namespaces, for the web console. */
  async #prometheusUrl(kv: Typed<KubeVirt>): Promise<string> {
    for (const { namespace } of monitoringCandidates(kv))
      for (const name of PROMETHEUS_SERVICES) {
        const service = await this.#api.readService(namespace, name).catch(ignoreNotFound);
        const url = service && prometheusUrlOf(service);
        if (url) return url;
      }
    return '';
  }

  /**
   * Deletes the monitoring objects `monitoring` does not have (a CRD or the account went, the CR
   * changed): those in the install's namespace by name, a ServiceMonitor elsewhere if applied before.
   */
  async #pruneMonitoring(monitoring: MonitoringInstall | undefined): Promise<void> {
    const id = (o: InstallObject) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
    const now = (monitoring ? monitoringObjects(this.#namespace, monitoring) : []) as InstallObject[];
    const kept = new Set(now.map(id));
    const stale = new Map<string, InstallObject>();
    for (const o of [...this.#monitoringApplied, ...(monitoringObjectsIn(this.#namespace) as InstallObject[])])
      if (!kept.has(id(o))) stale.set(id(o), o);
    for (const o of stale.values()) await this.#api.delete(o);
    this.#monitoringApplied = now;
  }

  /** Applies the common instance types and preferences; a failure is logged and tried again at the next reconcile. */
  async #applyCatalogue(): Promise<void> {
    if (this.#catalogueAppliedAt && this.#now().getTime() - this.#catalogueAppliedAt < RESYNC_MS) return;
    const catalogue = commonInstancetypes().map((o) => ({
      ...o,
      metadata: { ...o.metadata, labels: { ...o.metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY } },
    })) as InstallObject[];
    try {
      for (const obj of catalogue) await this.#api.apply(obj);
      this.#catalogueAppliedAt = this.#now().getTime();
      this.#catalogueRemoved = false;
      this.#log.info('common instance types and preferences applied', { objects: catalogue.length });
    } catch (error) {
      this.#log.warning('could not apply the common instance types and preferences; will retry', { error: String(error) });
    }
  }

  /**
   * Removes the catalogue objects the operator made, by its label (upstream's deleteInstancetypes and
   * deletePreferences): objects of those kinds that users made stay.
   */
  async #removeCatalogue(): Promise<void> {
    if (this.#catalogueRemoved) return;
    for (const kind of CATALOGUE_KINDS) await this.#api.deleteAll(kind, `${MANAGED_BY_LABEL}=${MANAGED_BY}`);
    this.#catalogueRemoved = true;
    this.#catalogueAppliedAt = 0;
    this.#log.info('common instance types and preferences removed');
  }

  #subject(kv: Typed<KubeVirt>) {
    return { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: kv.metadata };
  }

  #secretObject(name: string, pair: KeyPair): InstallObject {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name, namespace: this.#namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
      data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') },
    };
  }

  async #readPair(name: string): Promise<KeyPair | undefined> {
    const secret = await this.#api.readSecret(this.#namespace, name).catch(ignoreNotFound);
    const data = secret?.data ?? {};
    if (!data['tls.crt'] || !data['tls.key']) return undefined;
    return { cert: Buffer.from(data['tls.crt'], 'base64').toString(), key: Buffer.from(data['tls.key'], 'base64').toString() };
  }

  /** Issues what is missing or due, writes it, and returns the CA bundle and when to look again. */
  async #syncPki(kv: Typed<KubeVirt>): Promise<{ bundle: string; nextCheck: Date }> {
    const leaves = leafCertificates(this.#namespace);
    const bundleMap = await this.#api.readConfigMap(this.#namespace, 'kubevirt-ca').catch(ignoreNotFound);
    const state = {
      ca: await this.#readPair('kubevirt-ca'),
      bundle: bundleMap?.data?.['ca-bundle'],
      leaves: Object.fromEntries(await Promise.all(leaves.map(async (l) => [l.secret, await this.#readPair(l.secret)] as const))),
    };
    const plan = await planPki(state, leaves, this.#now());
    if (plan.caRenewed) {
      await this.#api.apply(this.#secretObject('kubevirt-ca', plan.ca));
      const message = 'Issued a new kubevirt-ts CA; the previous one stays trusted until it expires';
      this.#record(this.#subject(kv), 'Normal', 'CARotated', message);
    }
    if (plan.bundle !== state.bundle) {
      const metadata = { name: 'kubevirt-ca', namespace: this.#namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } };
      await this.#api.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { 'ca-bundle': plan.bundle } });
    }
    for (const [secret, pair] of Object.entries(plan.write)) {
      await this.#api.apply(this.#secretObject(secret, pair));
      this.#log.info('certificate issued', { secret });
    }
    return { bundle: plan.bundle, nextCheck: plan.nextCheck };
  }

  /**
   * Whether kubevirt-ts serves DataVolumes: not where CDI itself is installed
   * (its DataVolume CRD is there and not ours), whose controller then fills them.
   */
  async #servesDataVolumes(): Promise<boolean> {
    const crd = await this.#api.readCrd(DATAVOLUME_CRD).catch(ignoreNotFound);
    const ours = !crd || crd.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
    if (!ours && this.#cdiInstalled !== true)
      this.#log.info('CDI is installed: its DataVolume controller fills DataVolumes, ours stands aside');
    this.#cdiInstalled = !ours;
    return ours;
  }

  /** The key upload tokens are signed with, made once. */
  async #syncUploadTokenKey(): Promise<void> {
    const secret = await this.#api.readSecret(this.#namespace, UPLOAD_TOKEN_SECRET).catch(ignoreNotFound);
    if (secret?.data?.[UPLOAD_TOKEN_KEY_FILE]) return;
    await this.#api.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: UPLOAD_TOKEN_SECRET, namespace: this.#namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
      data: { [UPLOAD_TOKEN_KEY_FILE]: randomBytes(32).toString('base64') },
    });
    this.#log.info('upload token key issued', { secret: UPLOAD_TOKEN_SECRET });
  }

  /**
   * The fill-pod CA cdi-controller signs its fill pods' certificates with:
   * made once, kept, and replaced before it runs short (planFillPodCa).
   * Returns when to look again.
   */
  async #syncFillPodCa(kv: Typed<KubeVirt>): Promise<Date> {
    const secret = await this.#api.readSecret(this.#namespace, FILL_POD_CA_SECRET).catch(ignoreNotFound);
    const data = secret?.data ?? {};
    const text = (key: string) => (data[key] ? Buffer.from(data[key], 'base64').toString() : undefined);
    const cert = text(FILL_POD_CA_FILES.cert);
    const key = text(FILL_POD_CA_FILES.key);
    const plan = await planFillPodCa({ ca: cert && key ? { cert, key } : undefined, bundle: text(FILL_POD_CA_FILES.bundle) }, this.#now());
    if (plan.changed) {
      const object = this.#secretObject(FILL_POD_CA_SECRET, plan.ca);
      await this.#api.apply({
        ...object,
        data: { ...(object.data as object), [FILL_POD_CA_FILES.bundle]: Buffer.from(plan.bundle).toString('base64') },
      });
      this.#log.info('fill-pod CA written', { secret: FILL_POD_CA_SECRET, renewed: plan.caRenewed });
      if (plan.caRenewed && cert)
        this.#record(this.#subject(kv), 'Normal', 'CARotated', 'Issued a new fill-pod CA; the previous one stays trusted until it expires');
    }
    return plan.nextCheck;
  }

  /** The generations of the workloads the operator manages, as upstream lists them in status.generations. */
  #generations(): NonNullable<KubeVirtStatus['generations']> {
    const of = (resource: string, o: { metadata?: { name?: string; namespace?: string; generation?: number } }) => ({
      group: 'apps',
      resource,
      namespace: o.metadata?.namespace ?? this.#namespace,
      name: o.metadata?.name ?? '',
      lastGeneration: o.metadata?.generation ?? 0,
    });
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return [
      ...this.#daemonsets
        .list(this.#namespace)
        .map((d) => of('daemonsets', d))
        .sort(byName),
      ...this.#deployments
        .list(this.#namespace)
        .map((d) => of('deployments', d))
        .sort(byName),
    ];
  }

  async #readiness(cdi: boolean): Promise<string[]> {
    const waiting = [
      ...(cdi ? [workloadWaiting(this.#deployments.get('cdi-controller', this.#namespace) as never, 'Deployment', 'cdi-controller')] : []),
      workloadWaiting(this.#deployments.get('virt-api', this.#namespace) as never, 'Deployment', 'virt-api'),
      workloadWaiting(this.#deployments.get('virt-controller', this.#namespace) as never, 'Deployment', 'virt-controller'),
      workloadWaiting(this.#daemonsets.get('virt-handler', this.#namespace) as never, 'DaemonSet', 'virt-handler'),
    ].filter((w): w is string => w !== undefined);
    for (const name of [SUBRESOURCE_API_SERVICE, ...(cdi ? [UPLOAD_API_SERVICE] : [])]) {
      const service = await this.#api.readApiService(name).catch(() => undefined);
      const available = service?.status?.conditions?.find((c) => c.type === 'Available')?.status === 'True';
      if (!available) waiting.push(`APIService ${name}`);
    }
    return waiting;
  }

  async #uninstall(kv: Typed<KubeVirt>): Promise<void> {
    const kvLog = this.#log.object({ kind: 'KubeVirt', metadata: kv.metadata });
    if (kv.spec?.uninstallStrategy !== 'RemoveWorkloads' && (await this.#api.vmisExist())) {
      kvLog.warning('uninstall blocked: VMIs still exist (uninstallStrategy BlockUninstallIfWorkloadsExist)');
      this.#queue.addAfter(keyOf(kv), 10_000);
      return;
    }
    const images = componentImages(kv, this.#images);
    const installed = desiredInstall({
      namespace: this.#namespace,
      ...images,
      caBundle: '',
      cdi: await this.#servesDataVolumes(),
      monitoring: await this.#monitoring(kv),
    });
    const pkiSecrets = ['kubevirt-ca', UPLOAD_TOKEN_SECRET, FILL_POD_CA_SECRET, ...leafCertificates(this.#namespace).map((l) => l.secret)];
    const pki = pkiSecrets.map((name) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: this.#namespace } }));
    const bundle = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubevirt-ca', namespace: this.#namespace } };
    // The catalogue goes first, by its label, while its CRDs still serve it.
    this.#catalogueRemoved = false;
    await this.#removeCatalogue();
    for (const obj of [...installed].reverse().concat(pki, bundle)) await this.#api.delete(obj);
    kvLog.info('uninstalled', { objects: installed.length + pki.length + 1 });
    const finalizers = (kv.metadata.finalizers ?? []).filter((f) => f !== KUBEVIRT_FINALIZER);
    await this.#api.patchKubeVirt(this.#namespace, kv.metadata.name!, [{ op: 'replace', path: '/metadata/finalizers', value: finalizers }]);
    this.#lastApplied = { hash: '', at: 0 };
  }
}
