// The migration controller: a VirtualMachineInstanceMigration, its VMI or its
// target pod changes, the migration's key is queued, and reconcile carries
// out planMigration (./migration.ts): it writes the VMI's migrationState,
// creates or deletes the target pod and writes the migration's phase.
import type { V1Namespace, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { ClusterConfig } from '../api/cluster-config.ts';
import { MIGRATION_FINALIZER } from '../api/constants.ts';
import type { MigrationPolicy, VirtualMachineInstance, VirtualMachineInstanceMigration } from '../api/types.ts';
import { MIGRATION_JOB_NAME_ANNOTATION } from '../contract/migration.ts';
import { claimNameOf } from '../contract/vmi.ts';
import type { EventRecorder } from '../lib/events.ts';
import { UpdateExpectations } from '../lib/expectations.ts';
import { ignoreNotFound, keyOf, onEveryChange, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import type { LauncherPodParams } from './launcher-pod.ts';
import { planMigration } from './migration.ts';

type Migration = Typed<VirtualMachineInstanceMigration>;

export interface MigrationControllerApi {
  createPod(namespace: string, pod: V1Pod): Promise<V1Pod>;
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void>;
  replaceVmi(namespace: string, name: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>>;
  replaceMigrationStatus(namespace: string, name: string, migration: VirtualMachineInstanceMigration): Promise<Migration>;
  patchMigration(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void>;
}

export interface MigrationControllerOptions {
  api: MigrationControllerApi;
  informers: {
    migrations: InformerCache<Migration>;
    vmis: InformerCache<Typed<VirtualMachineInstance>>;
    pods: InformerCache<V1Pod>;
    nodes: InformerCache<V1Node>;
    pvcs: InformerCache<V1PersistentVolumeClaim>;
    policies: InformerCache<Typed<MigrationPolicy>>;
    namespaces: InformerCache<V1Namespace>;
  };
  queue: WorkQueue;
  params: Omit<LauncherPodParams, 'config'>;
  config: () => ClusterConfig;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
  /** The random part of a target pod's name (tests pass their own). */
  suffix?: () => string;
}

/** What the migration controller reads of a namespace: its labels, for the policies' namespace selectors. */
export const namespaceAsRead = (ns: V1Namespace): V1Namespace => ({
  metadata: { name: ns.metadata?.name, ...(ns.metadata?.labels ? { labels: ns.metadata.labels } : {}) },
});

const randomSuffix = () => Math.random().toString(36).slice(2, 7).padEnd(5, '0');

export class MigrationController {
  readonly #o: MigrationControllerOptions;
  readonly #vmiWrites: UpdateExpectations;
  readonly #migrationWrites: UpdateExpectations;

  constructor(options: MigrationControllerOptions) {
    this.#o = options;
    const millis = () => options.now().getTime();
    this.#vmiWrites = new UpdateExpectations(millis);
    this.#migrationWrites = new UpdateExpectations(millis);
    const { migrations, vmis, pods } = options.informers;
    onEveryChange(migrations, (m) => options.queue.add(keyOf(m)));
    onEveryChange(vmis, (vmi) => {
      for (const m of migrations.list(vmi.metadata.namespace)) if (m.spec.vmiName === vmi.metadata.name) options.queue.add(keyOf(m));
    });
    onEveryChange(pods, (pod) => {
      const name = pod.metadata?.annotations?.[MIGRATION_JOB_NAME_ANNOTATION];
      if (name) options.queue.add(`${pod.metadata?.namespace}/${name}`);
    });
    // A migration waiting for a free slot goes on when another ends.
    migrations.on('update', (m) => {
      if (m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed')
        for (const waiting of migrations.list()) if ((waiting.status?.phase ?? 'Pending') === 'Pending') options.queue.add(keyOf(waiting));
    });
  }

  run(workers: number): Promise<void> {
    return runReconciler(this.#o.queue, workers, this, this.#o.log, 'VirtualMachineInstanceMigration');
  }

  async reconcile(key: string): Promise<void> {
    const { informers, api, record } = this.#o;
    const [namespace, name] = key.split('/');
    const migration = informers.migrations.get(name, namespace);
    if (!migration) {
      this.#migrationWrites.forget(key);
      this.#vmiWrites.forget(key);
      return;
    }
    if (this.#migrationWrites.stale(key, migration.metadata.resourceVersion)) return;
    const vmi = migration.spec.vmiName ? informers.vmis.get(migration.spec.vmiName, namespace) : undefined;
    if (vmi && this.#vmiWrites.stale(key, vmi.metadata.resourceVersion)) return;
    const claims = new Map<string, V1PersistentVolumeClaim>();
    for (const volume of vmi?.spec.volumes ?? []) {
      const claim = claimNameOf(volume);
      const pvc = claim === undefined ? undefined : informers.pvcs.get(claim, namespace);
      if (pvc) claims.set(claim!, pvc);
    }
    const config = this.#o.config();
    const plan = planMigration({
      migration,
      vmi,
      pods: informers.pods.list(namespace),
      migrations: informers.migrations.list(),
      sourceNodeOf: (m) => {
        const other = informers.vmis.get(m.spec.vmiName ?? '', m.metadata.namespace);
        return other?.status?.migrationState?.sourceNode ?? other?.status?.nodeName;
      },
      nodes: informers.nodes.list(),
      settings: config.migrations,
      policies: informers.policies.list(),
      namespaceLabels: informers.namespaces.get(namespace)?.metadata?.labels,
      params: { ...this.#o.params, config },
      claims,
      targetPodName: `virt-launcher-${migration.spec.vmiName}-${(this.#o.suffix ?? randomSuffix)()}`,
      now: this.#o.now(),
    });
    const log = this.#o.log.object({ kind: 'VirtualMachineInstanceMigration', metadata: migration.metadata });
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: migration.metadata };
    if (plan.vmi) {
      const written = await api.replaceVmi(namespace, plan.vmi.metadata.name!, plan.vmi);
      this.#vmiWrites.wrote(key, vmi?.metadata.resourceVersion, written.metadata.resourceVersion);
    }
    if (plan.createPod) {
      await api.createPod(namespace, plan.createPod).catch((error: { code?: number }) => {
        // Named ahead: made already, by an earlier look whose cache had not shown it yet.
        if (error.code !== 409) throw error;
      });
      log.info('created the migration target pod', { pod: plan.createPod.metadata?.name });
    }
    for (const pod of plan.deletePods ?? []) await api.deletePod(namespace, pod.metadata!.name!, 0).catch(ignoreNotFound);
    if (plan.status) {
      const from = migration.status?.phase;
      const written = await api.replaceMigrationStatus(namespace, name, { ...migration, status: plan.status }).catch(ignoreNotFound);
      this.#migrationWrites.wrote(key, migration.metadata.resourceVersion, written?.metadata.resourceVersion);
      if (plan.status.phase !== from)
        log.info('migration phase changed', { from: from ?? '', to: plan.status.phase, vmi: migration.spec.vmiName });
    }
    if (plan.removeFinalizer) {
      const finalizers = (migration.metadata.finalizers ?? []).filter((f) => f !== MIGRATION_FINALIZER);
      await api
        .patchMigration(namespace, name, [
          { op: 'test', path: '/metadata/finalizers', value: migration.metadata.finalizers },
          { op: 'replace', path: '/metadata/finalizers', value: finalizers },
        ])
        .catch(ignoreNotFound);
    }
    for (const event of plan.events) record(subject, event.type, event.reason, event.message);
  }
}
