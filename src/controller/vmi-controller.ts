// The VMI controller: a VMI, one of its launcher pods, or a claim or
// DataVolume one of its volumes names changes, the VMI's key is queued, and
// reconcile carries out planVmi (./vmi.ts): it creates or deletes the
// launcher pod (or the temporary pod that binds WaitForFirstConsumer claims)
// and writes the VMI's status.
import type { V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { ClusterConfig } from '../api/cluster-config.ts';
import type { CDIConfig, DataVolume, VirtualMachineInstance } from '../api/types.ts';
import { apiTimestamp, claimNameOf, isEphemeralProvisioningPod, vmiOwnerOf } from '../contract/vmi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { Expectations, UpdateExpectations } from '../lib/expectations.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import type { LauncherPodParams } from './launcher-pod.ts';
import { heartbeatExpired } from './node.ts';
import { dataVolumeOwnerOf, lookUpVolumes, planVmi } from './vmi.ts';

/** The API writes of the VMI controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface VmiControllerApi {
  createPod(namespace: string, pod: V1Pod): Promise<V1Pod>;
  /** Without a grace period, the pod's own is used. */
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void>;
  replaceVmi(namespace: string, name: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>>;
}

export interface VmiControllerOptions {
  api: VmiControllerApi;
  informers: {
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
    pods: InformerCache<V1Pod>;
    dataVolumes: InformerCache<Typed<DataVolume>>;
    pvcs: InformerCache<V1PersistentVolumeClaim>;
    /** The CDIConfig (`config`): the filesystem overhead reported in the VMI's volumeStatus. */
    cdiConfigs?: InformerCache<Typed<CDIConfig>>;
    /** The nodes: a VMI on one whose virt-handler stopped heartbeating is the node controller's to fail. */
    nodes?: InformerCache<V1Node>;
  };
  /** The node controller's heartbeat timeout. */
  heartbeatTimeoutMs?: number;
  queue: WorkQueue;
  params: Omit<LauncherPodParams, 'config'>;
  config: () => ClusterConfig;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

export class VmiController {
  readonly #api: VmiControllerApi;
  readonly #vmis: InformerCache<Typed<VirtualMachineInstance>>;
  readonly #pods: InformerCache<V1Pod>;
  readonly #dataVolumes: InformerCache<Typed<DataVolume>>;
  readonly #pvcs: InformerCache<V1PersistentVolumeClaim>;
  readonly #cdiConfigs?: InformerCache<Typed<CDIConfig>>;
  readonly #nodes?: InformerCache<V1Node>;
  readonly #heartbeatTimeoutMs?: number;
  readonly #queue: WorkQueue;
  readonly #params: Omit<LauncherPodParams, 'config'>;
  readonly #config: () => ClusterConfig;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;
  readonly #podExpectations: Expectations;
  readonly #vmiUpdates: UpdateExpectations;

  constructor(options: VmiControllerOptions) {
    this.#api = options.api;
    this.#vmis = options.informers.vmis;
    this.#cdiConfigs = options.informers.cdiConfigs;
    this.#nodes = options.informers.nodes;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#pods = options.informers.pods;
    this.#dataVolumes = options.informers.dataVolumes;
    this.#pvcs = options.informers.pvcs;
    this.#queue = options.queue;
    this.#params = options.params;
    this.#config = options.config;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    const millis = () => options.now().getTime();
    this.#podExpectations = new Expectations(millis);
    this.#vmiUpdates = new UpdateExpectations(millis);
    onEveryChange(this.#vmis, (vmi) => this.#queue.add(keyOf(vmi)));
    onEveryChange(this.#pods, (pod, verb) => {
      // Which VMI a pod belongs to is decided by its ownerReference, never by its labels.
      const owner = vmiOwnerOf(pod);
      if (!owner) return;
      const key = `${pod.metadata?.namespace}/${owner.name}`;
      if (verb === 'add') this.#podExpectations.creationObserved(key);
      this.#queue.add(key);
    });
    // A DataVolume has its claim's name; a claim of a DataVolume may be named by a persistentVolumeClaim volume too.
    onEveryChange(this.#dataVolumes, (dv) => this.#queueVmisNaming(dv.metadata.namespace, dv.metadata.name));
    onEveryChange(this.#pvcs, (pvc) => {
      this.#queueVmisNaming(pvc.metadata?.namespace, pvc.metadata?.name);
      const owner = dataVolumeOwnerOf(pvc);
      if (owner && owner.name !== pvc.metadata?.name) this.#queueVmisNaming(pvc.metadata?.namespace, owner.name);
    });
  }

  /** Queues every VMI of the namespace with a volume on the claim (or DataVolume) of this name. */
  #queueVmisNaming(namespace: string | undefined, name: string | undefined): void {
    if (!namespace || !name) return;
    for (const vmi of this.#vmis.list(namespace)) if (vmi.spec.volumes?.some((v) => claimNameOf(v) === name)) this.#queue.add(keyOf(vmi));
  }

  /** Reconciles queued VMIs until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'VMI');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const vmi = this.#vmis.get(name, namespace);
    if (!vmi) {
      this.#podExpectations.forget(key);
      this.#vmiUpdates.forget(key);
      return;
    }
    if (this.#vmiUpdates.stale(key, vmi.metadata.resourceVersion)) return;
    const params = { ...this.#params, config: this.#config() };
    const volumes = lookUpVolumes(
      vmi,
      (claim) => this.#pvcs.get(claim, namespace),
      (dv) => this.#dataVolumes.get(dv, namespace),
      this.#cdiConfigs?.get('config')?.status?.filesystemOverhead,
    );
    const at = this.#now();
    const node = vmi.status?.nodeName ? this.#nodes?.get(vmi.status.nodeName) : undefined;
    const nodeUnresponsive = node !== undefined && heartbeatExpired(node, at.getTime(), this.#heartbeatTimeoutMs);
    const plan = planVmi(
      vmi,
      this.#pods.list(namespace),
      params,
      apiTimestamp(at),
      !this.#podExpectations.satisfied(key),
      volumes,
      nodeUnresponsive,
    );
    const vmiLog = this.#log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata };
    if (plan.createPod) {
      this.#podExpectations.expectCreations(key, 1);
      try {
        const pod = await this.#api.createPod(namespace, plan.createPod);
        if (isEphemeralProvisioningPod(plan.createPod))
          vmiLog.info('created a temporary pod for WaitForFirstConsumer DataVolumes', { pod: pod.metadata?.name });
        else vmiLog.info('created the launcher pod', { pod: pod.metadata?.name });
        this.#record(subject, 'Normal', 'SuccessfulCreate', `Created virtual machine pod ${pod.metadata?.name}`);
      } catch (error) {
        this.#podExpectations.forget(key);
        this.#record(subject, 'Warning', 'FailedCreate', `Error creating pod: ${(error as Error).message.split('\n')[0]}`);
        throw error;
      }
    }
    for (const pod of plan.deletePods ?? []) {
      // A temporary pod holds nothing worth a graceful end (upstream deletes it at once).
      const grace = isEphemeralProvisioningPod(pod) ? 0 : undefined;
      await this.#api.deletePod(namespace, pod.metadata!.name!, grace).catch(ignoreNotFound);
    }
    if (plan.update) {
      const [from, to] = [vmi.status?.phase, plan.update.status?.phase];
      if (to !== from) vmiLog.info('phase changed', { from: from ?? '', to });
      // Gone meanwhile: there is nothing left to report on.
      const written = await this.#api.replaceVmi(namespace, name, plan.update).catch(ignoreNotFound);
      this.#vmiUpdates.wrote(key, vmi.metadata.resourceVersion, written?.metadata.resourceVersion);
    }
    for (const event of plan.events) this.#record(subject, event.type, event.reason, event.message);
  }
}
