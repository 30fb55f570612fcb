// The node controller: a node, a VMI placed on it or a launcher pod that ended there changes, the node's name
// is queued, and reconcile carries out planNode (./node.ts): a node whose
// virt-handler stopped heartbeating becomes unschedulable for VMIs, and its
// VMIs without a running launcher pod fail.
import type { V1Lease, V1Node, V1Pod } from '@kubernetes/client-node';
import { nodeLeaseName } from '../contract/node.ts';
import { podIsFinal } from '../contract/vmi.ts';
import { NODE_SCHEDULABLE_LABEL } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import type { EventRecorder } from '../lib/events.ts';
import { ignoreNotFound, onEveryChange, withoutLastApplied, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import { planNode } from './node.ts';
import type { VmiControllerApi } from './vmi-controller.ts';

/** The API writes of the node controller. Failures reject with the API's error (its `code` the HTTP status). */
export interface NodeControllerApi extends Pick<VmiControllerApi, 'replaceVmi' | 'deletePod'> {
  patchNode(name: string, patch: JsonPatchOperation[]): Promise<void>;
}

/**
 * What the controllers read of a node, for the nodes informer to keep: its metadata (name, the
 * heartbeat annotation, the schedulable label; JSON patches go by those) and whether it is
 * cordoned (where a migration may go). Nothing reads its status here, whose images list and
 * conditions are most of a node.
 */
export function nodeAsRead(node: V1Node): V1Node {
  const { apiVersion, kind, metadata, spec } = withoutLastApplied(node);
  return {
    ...(apiVersion ? { apiVersion } : {}),
    ...(kind ? { kind } : {}),
    metadata,
    ...(spec?.unschedulable ? { spec: { unschedulable: true } } : {}),
  };
}

export interface NodeControllerOptions {
  api: NodeControllerApi;
  informers: {
    nodes: InformerCache<V1Node>;
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
    pods: InformerCache<V1Pod>;
    /** virt-handlers' node leases, in KubeVirt's namespace (self-fencing). */
    leases?: InformerCache<V1Lease>;
  };
  queue: WorkQueue;
  heartbeatTimeoutMs: number;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

export class NodeController {
  readonly #api: NodeControllerApi;
  readonly #nodes: InformerCache<V1Node>;
  readonly #vmis: InformerCache<Typed<VirtualMachineInstance>>;
  readonly #pods: InformerCache<V1Pod>;
  readonly #leases?: InformerCache<V1Lease>;
  readonly #queue: WorkQueue;
  readonly #heartbeatTimeoutMs: number;
  readonly #now: () => Date;
  readonly #record: EventRecorder;
  readonly #log: Logger;

  constructor(options: NodeControllerOptions) {
    this.#api = options.api;
    this.#nodes = options.informers.nodes;
    this.#vmis = options.informers.vmis;
    this.#pods = options.informers.pods;
    this.#leases = options.informers.leases;
    this.#queue = options.queue;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#now = options.now;
    this.#record = options.record;
    this.#log = options.log;
    onEveryChange(this.#nodes, (node) => this.#queue.add(node.metadata!.name!));
    if (this.#leases)
      onEveryChange(this.#leases, (lease) => {
        const node = lease.spec?.holderIdentity;
        if (node && lease.metadata?.name === nodeLeaseName(node)) this.#queue.add(node);
      });
    onEveryChange(this.#vmis, (vmi) => {
      if (vmi.status?.nodeName) this.#queue.add(vmi.status.nodeName);
    });
    // A launcher pod that ends on an unresponsive node fails its VMI here: nothing else about the VMI changes.
    onEveryChange(this.#pods, (pod) => {
      if (pod.spec?.nodeName && podIsFinal(pod)) this.#queue.add(pod.spec.nodeName);
    });
  }

  /** Reconciles queued nodes until the queue shuts down. */
  run(workers: number): Promise<void> {
    return runReconciler(this.#queue, workers, this, this.#log, 'node');
  }

  async reconcile(name: string): Promise<void> {
    const node = this.#nodes.get(name);
    if (!node) return;
    const renewTime = this.#leases?.list().find((l) => l.metadata?.name === nodeLeaseName(name))?.spec?.renewTime;
    const leaseRenewedAt = renewTime === undefined ? undefined : new Date(renewTime).getTime();
    const plan = planNode(node, this.#vmis.list(), this.#pods.list(), this.#now().getTime(), this.#heartbeatTimeoutMs, leaseRenewedAt);
    if (plan.markUnschedulable) {
      this.#log.warning('virt-handler stopped heartbeating; the node is no longer schedulable for VMIs', { node: name });
      const label = `/metadata/labels/${NODE_SCHEDULABLE_LABEL.replace('/', '~1')}`;
      await this.#api.patchNode(name, [{ op: 'add', path: label, value: 'false' }]);
    }
    for (const vmi of plan.failVmis) {
      const failed = structuredClone(vmi);
      failed.status = { ...failed.status, phase: 'Failed', reason: 'NodeUnresponsive' };
      await this.#api.replaceVmi(vmi.metadata.namespace!, vmi.metadata.name!, failed);
      const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata };
      const message =
        leaseRenewedAt === undefined
          ? `virt-handler on node ${name} is unresponsive; the VirtualMachineInstance failed`
          : `virt-handler on node ${name} has not renewed its lease since ${new Date(leaseRenewedAt).toISOString()}; its guests stopped themselves and the VirtualMachineInstance failed`;
      this.#record(subject, 'Warning', 'NodeUnresponsive', message);
    }
    // Their guests stopped themselves: no kubelet is left there to confirm the pods' end, and they hold nothing.
    for (const pod of plan.forceDeletePods ?? []) {
      this.#log.info('force-deleting a launcher pod of a fenced node', { node: name, pod: pod.metadata?.name });
      await this.#api.deletePod(pod.metadata!.namespace!, pod.metadata!.name!, 0).catch(ignoreNotFound);
    }
    if (plan.recheckAfterMs !== undefined) this.#queue.addAfter(name, plan.recheckAfterMs);
  }
}
