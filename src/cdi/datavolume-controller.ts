// The DataVolume controller: a DataVolume, its claim or its fill pod changes,
// the DataVolume's key is queued, and reconcile carries out planDataVolume
// (./plan.ts). The pods the plan asks for get their TLS material here (a
// certificate for the pod's name; the CA bundle for a clone's importer): issuing
// is no business of the pure plan. While a fill pod runs, its progress is asked
// for every two seconds, over TLS checked against the fill-pod CA, each request
// held by the pod until then or until its work is complete: the claim is then
// known filled at once, not only once the kubelet reports the pod's exit.
import { createHmac } from 'node:crypto';
import type { V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { jsonEqual } from '../api/json-equal.ts';
import type { DataVolume } from '../api/types.ts';
import { CDI_GROUP, DATAVOLUME_UID_LABEL } from '../contract/cdi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { type FillPodClientTls, fillPodClientTls } from './fill-pod-client.ts';
import { type FillPodTls, withFillPodTls } from './fill-pod-tls.ts';
import { CLONE_TARGET_ANNOTATION, type FillPodParams, planDataVolume, progressUrl } from './plan.ts';

export interface DataVolumeControllerApi {
  createClaim(namespace: string, claim: V1PersistentVolumeClaim): Promise<void>;
  annotateClaim(namespace: string, name: string, annotations: Record<string, string>): Promise<void>;
  createPod(namespace: string, pod: V1Pod): Promise<void>;
  deletePod(namespace: string, name: string): Promise<void>;
  replaceDataVolumeStatus(namespace: string, name: string, dv: DataVolume): Promise<void>;
  /** The fill pod's progress, or undefined when it cannot tell; `tls` checks the pod's certificate. */
  fetchProgress(url: string, tls: FillPodClientTls): Promise<FillProgress | undefined>;
}

/** What a fill pod says of its work: how far (0..100), and whether it is complete. */
export interface FillProgress {
  progress: number;
  complete: boolean;
}

export interface DataVolumeControllerOptions {
  api: DataVolumeControllerApi;
  informers: {
    dataVolumes: InformerCache<Typed<DataVolume>>;
    claims: InformerCache<V1PersistentVolumeClaim>;
    pods: InformerCache<V1Pod>;
    storageClasses: InformerCache<V1StorageClass>;
  };
  queue: WorkQueue;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
  params: FillPodParams;
  /** The share of a claim of this StorageClass (the default one when undefined) its filesystem keeps, by the CDIConfig. */
  filesystemOverhead?: (storageClass: string | undefined) => string;
  /** The key fill pods' tokens are derived from, which the upload proxy derives them with too. */
  podTokenKey: Buffer;
  /** The fill-pod CA: certificates for the pods created, the bundle to check them with. */
  tls: FillPodTls;
}

const PROGRESS_POLL_MS = 2000;

/**
 * The pod as the plan asked for it, with its serving certificate (for its own
 * name in its own namespace) and, for a pod that calls other fill pods, the
 * CA bundle, added to its environment.
 */
export async function podWithTls(tls: FillPodTls, pod: V1Pod, trustsFillPods = false): Promise<V1Pod> {
  const leaf = await tls.issue(pod.metadata!.namespace!, pod.metadata!.name!);
  return withFillPodTls(pod, { ...leaf, ...(trustsFillPods ? { caBundle: tls.bundle() } : {}) });
}

/** The token a DataVolume's fill pod asks for. */
export const podToken = (key: Buffer, dvUid: string) => createHmac('sha256', key).update(`fill-pod/${dvUid}`).digest('base64url');

export class DataVolumeController {
  readonly #o: DataVolumeControllerOptions;
  /** The last answer of each DataVolume's fill pod (by the pod's UID). */
  readonly #progress = new Map<string, FillProgress & { podUid: string }>();
  /** DataVolumes whose fill pod has a progress request open. */
  readonly #polling = new Set<string>();

  constructor(options: DataVolumeControllerOptions) {
    this.#o = options;
    const { dataVolumes, claims, pods } = options.informers;
    onEveryChange(dataVolumes, (dv) => options.queue.add(keyOf(dv)));
    // A claim is named after its DataVolume; a fill pod is owned by it. Claims of no DataVolume are not this controller's.
    onEveryChange(claims, (claim) => {
      const key = `${claim.metadata!.namespace}/${claim.metadata!.name}`;
      const ownedByDataVolume = claim.metadata?.ownerReferences?.some((o) => o.kind === 'DataVolume');
      if (ownedByDataVolume || dataVolumes.get(claim.metadata!.name!, claim.metadata!.namespace)) options.queue.add(key);
    });
    onEveryChange(pods, (pod) => {
      const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'DataVolume');
      if (owner) options.queue.add(`${pod.metadata!.namespace}/${owner.name}`);
      const cloneTarget = pod.metadata?.annotations?.[CLONE_TARGET_ANNOTATION];
      if (cloneTarget) options.queue.add(cloneTarget);
    });
  }

  run(workers: number): Promise<void> {
    return runReconciler(this.#o.queue, workers, this, this.#o.log, 'DataVolume');
  }

  #defaultStorageClass(): V1StorageClass | undefined {
    return this.#o.informers.storageClasses
      .list()
      .find((sc) => sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  }

  async reconcile(key: string): Promise<void> {
    const { api, informers, record } = this.#o;
    const [namespace, name] = key.split('/');
    const dv = informers.dataVolumes.get(name, namespace);
    const claim = informers.claims.get(name, namespace);
    const pods = informers.pods.list(namespace).filter((p) => p.metadata?.labels?.[DATAVOLUME_UID_LABEL] === dv?.metadata.uid);
    if (!dv) {
      this.#progress.delete(key);
      // A clone's source pod is in another namespace, out of reach of the garbage collector.
      for (const orphan of informers.pods.list().filter((p) => p.metadata?.annotations?.[CLONE_TARGET_ANNOTATION] === key))
        await api.deletePod(orphan.metadata!.namespace!, orphan.metadata!.name!).catch(ignoreNotFound);
      return;
    }
    if (dv.metadata.deletionTimestamp) return;
    const pod = pods.find((p) => !p.metadata?.annotations?.[CLONE_TARGET_ANNOTATION]);
    const className = claim?.spec?.storageClassName ?? (dv.spec.pvc ?? dv.spec.storage)?.storageClassName;
    const storageClass = className ? informers.storageClasses.get(className) : this.#defaultStorageClass();
    const cloneRef = dv.spec.source?.pvc;
    const cloneSource = cloneRef
      ? {
          claim: informers.claims.get(cloneRef.name, cloneRef.namespace || namespace),
          pod: informers.pods.list(cloneRef.namespace || namespace).find((p) => p.metadata?.annotations?.[CLONE_TARGET_ANNOTATION] === key),
        }
      : undefined;
    const plan = planDataVolume({
      dv,
      claim,
      pod: pods.find((p) => !p.metadata?.annotations?.[CLONE_TARGET_ANNOTATION]),
      cloneSource,
      storageClass,
      ...this.#progressOf(key, pod),
      podToken: podToken(this.#o.podTokenKey, dv.metadata.uid!),
      now: this.#o
        .now()
        .toISOString()
        .replace(/\.\d+Z$/, 'Z'),
      params: {
        ...this.#o.params,
        ...(this.#o.filesystemOverhead
          ? { filesystemOverhead: this.#o.filesystemOverhead(storageClass?.metadata?.name ?? className) }
          : {}),
      },
    });
    const dvLog = this.#o.log.object({ kind: 'DataVolume', metadata: dv.metadata });
    const subject = { apiVersion: `${CDI_GROUP}/v1beta1`, kind: 'DataVolume', metadata: dv.metadata };
    if (plan.createClaim) {
      dvLog.info('creating the claim', { size: plan.createClaim.spec?.resources?.requests?.storage });
      await api.createClaim(namespace, plan.createClaim).catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
        record(subject, 'Warning', 'ErrResourceExists', `Resource "${name}" already exists and is not managed by DataVolume`);
      });
    }
    if (plan.annotateClaim) await api.annotateClaim(namespace, name, plan.annotateClaim);
    if (plan.createPod) {
      dvLog.info('creating the fill pod', { pod: plan.createPod.metadata?.name });
      const pod = await podWithTls(this.#o.tls, plan.createPod, plan.createPodTrustsFillPods);
      await api.createPod(namespace, pod).catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
      });
    }
    if (plan.createSourcePod) {
      dvLog.info('creating the clone source pod', {
        namespace: plan.createSourcePod.metadata?.namespace,
        pod: plan.createSourcePod.metadata?.name,
      });
      const sourcePod = await podWithTls(this.#o.tls, plan.createSourcePod);
      await api.createPod(sourcePod.metadata!.namespace!, sourcePod).catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
      });
    }
    if (plan.deleteSourcePod) await api.deletePod(plan.deleteSourcePod.namespace, plan.deleteSourcePod.name).catch(ignoreNotFound);
    if (plan.requeueAfterMs !== undefined) this.#o.queue.addAfter(key, plan.requeueAfterMs);
    if (plan.deletePod) {
      dvLog.info('removing the fill pod: its work is done', { pod: plan.deletePod });
      await api.deletePod(namespace, plan.deletePod).catch(ignoreNotFound);
      this.#progress.delete(key);
    }
    for (const event of plan.events) record(subject, event.type, event.reason, event.message);
    if (!jsonEqual(plan.status, dv.status ?? {})) {
      if (plan.status.phase !== dv.status?.phase)
        dvLog.info('phase changed', { from: dv.status?.phase ?? '', to: plan.status.phase ?? '' });
      await api.replaceDataVolumeStatus(namespace, name, { ...dv, status: plan.status }).catch(ignoreNotFound);
    }
    if (plan.pollProgress && pod && !this.#polling.has(key)) this.#poll(key, namespace, pod);
  }

  #progressOf(key: string, pod: V1Pod | undefined): { progress?: number; fillComplete?: boolean } {
    const last = this.#progress.get(key);
    if (!last || last.podUid !== pod?.metadata?.uid) return {};
    return { progress: last.progress, ...(last.complete ? { fillComplete: true } : {}) };
  }

  /**
   * Asks the fill pod for its progress, without holding up a worker: the pod holds the request
   * for up to PROGRESS_POLL_MS, or until its work is complete, and the DataVolume is looked at
   * again then.
   */
  #poll(key: string, namespace: string, pod: V1Pod): void {
    const url = progressUrl(pod, PROGRESS_POLL_MS);
    if (!url) {
      this.#o.queue.addAfter(key, PROGRESS_POLL_MS);
      return;
    }
    const tls = fillPodClientTls(this.#o.tls.bundle(), namespace, pod.metadata!.name!);
    const asked = this.#o.now().getTime();
    this.#polling.add(key);
    void this.#o.api
      .fetchProgress(url, tls)
      .catch(() => undefined)
      .then((answer) => {
        this.#polling.delete(key);
        if (answer) this.#progress.set(key, { ...answer, podUid: pod.metadata!.uid! });
        // A pod that answers at once (one that cannot hold the request) is asked again at the pace.
        const elapsed = this.#o.now().getTime() - asked;
        this.#o.queue.addAfter(key, answer?.complete ? 0 : Math.max(0, PROGRESS_POLL_MS - elapsed));
      });
  }
}
