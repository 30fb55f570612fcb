// The upload controller for bare claims, as CDI's: a claim annotated as an
// upload target that no DataVolume owns (virtctl image-upload pvc), or its
// upload server pod, changes; the claim's key is queued, and reconcile carries
// out planUploadClaim (./plan.ts). It shares the DataVolume controller's
// informers and API; its own queue keeps the two apart where a DataVolume and
// a claim share a name.
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { DATAVOLUME_UID_LABEL } from '../contract/cdi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { type DataVolumeControllerApi, podToken, podWithTls } from './datavolume-controller.ts';
import type { FillPodTls } from './fill-pod-tls.ts';
import { type FillPodParams, isBareUploadClaim, planUploadClaim } from './plan.ts';

export interface UploadClaimControllerOptions {
  api: Pick<DataVolumeControllerApi, 'annotateClaim' | 'createPod' | 'deletePod'>;
  informers: { claims: InformerCache<V1PersistentVolumeClaim>; pods: InformerCache<V1Pod> };
  queue: WorkQueue;
  record: EventRecorder;
  log: Logger;
  /** The fill pods' parameters; filesystemOverhead is asked per claim. */
  params: FillPodParams;
  /** The share of the claim its filesystem keeps, by CDIConfig (per StorageClass). */
  filesystemOverhead?: (claim: V1PersistentVolumeClaim) => string;
  podTokenKey: Buffer;
  /** The fill-pod CA: the upload server's serving certificate. */
  tls: FillPodTls;
}

export class UploadClaimController {
  readonly #o: UploadClaimControllerOptions;

  constructor(options: UploadClaimControllerOptions) {
    this.#o = options;
    const { claims, pods } = options.informers;
    onEveryChange(claims, (claim) => {
      if (isBareUploadClaim(claim) || this.#serverOf(claim)) options.queue.add(keyOf(claim));
    });
    onEveryChange(pods, (pod) => {
      const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'PersistentVolumeClaim' && o.controller);
      if (owner) options.queue.add(`${pod.metadata!.namespace}/${owner.name}`);
    });
  }

  run(workers: number): Promise<void> {
    return runReconciler(this.#o.queue, workers, this, this.#o.log, 'PersistentVolumeClaim');
  }

  /** The upload server working for the claim: labelled with its UID, owned by it. */
  #serverOf(claim: V1PersistentVolumeClaim): V1Pod | undefined {
    const uid = claim.metadata?.uid;
    if (!uid) return undefined;
    return this.#o.informers.pods
      .list(claim.metadata!.namespace)
      .find((p) => p.metadata?.labels?.[DATAVOLUME_UID_LABEL] === uid && p.metadata?.ownerReferences?.some((o) => o.uid === uid));
  }

  async reconcile(key: string): Promise<void> {
    const { api, informers, record } = this.#o;
    const [namespace, name] = key.split('/');
    const claim = informers.claims.get(name, namespace);
    // A claim gone takes its server with it (the garbage collector, by the owner reference).
    if (!claim) return;
    const pod = this.#serverOf(claim);
    if (!isBareUploadClaim(claim) && !pod) return;
    const plan = planUploadClaim({
      claim,
      pod,
      podToken: podToken(this.#o.podTokenKey, claim.metadata!.uid!),
      params: { ...this.#o.params, ...(this.#o.filesystemOverhead ? { filesystemOverhead: this.#o.filesystemOverhead(claim) } : {}) },
    });
    const log = this.#o.log.object({ kind: 'PersistentVolumeClaim', metadata: claim.metadata ?? {} });
    const subject = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: claim.metadata ?? {} };
    if (plan.annotateClaim) await api.annotateClaim(namespace, name, plan.annotateClaim);
    if (plan.createPod) {
      log.info('creating the upload server', { pod: plan.createPod.metadata?.name });
      const pod = await podWithTls(this.#o.tls, plan.createPod);
      await api.createPod(namespace, pod).catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
      });
    }
    if (plan.deletePod) {
      log.info('removing the upload server', { pod: plan.deletePod });
      await api.deletePod(namespace, plan.deletePod).catch(ignoreNotFound);
    }
    for (const event of plan.events) record(subject, event.type, event.reason, event.message);
  }
}
