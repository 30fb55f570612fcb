// The evacuation controller: a VMI marked for evacuation, or one of its
// migrations, changes; reconcile carries out planEvacuation (./evacuation.ts).
import type { VirtualMachineInstance, VirtualMachineInstanceMigration } from '../api/types.ts';
import { Expectations } from '../lib/expectations.ts';
import { keyOf, onEveryChange, type InformerCache, type Typed } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import type { EventRecorder } from '../lib/events.ts';
import { planEvacuation } from './evacuation.ts';

export interface EvacuationControllerApi {
  createMigration(namespace: string, migration: VirtualMachineInstanceMigration): Promise<Typed<VirtualMachineInstanceMigration>>;
}

export interface EvacuationControllerOptions {
  api: EvacuationControllerApi;
  informers: { vmis: InformerCache<Typed<VirtualMachineInstance>>; migrations: InformerCache<Typed<VirtualMachineInstanceMigration>> };
  queue: WorkQueue;
  now: () => Date;
  record: EventRecorder;
  log: Logger;
}

export class EvacuationController {
  readonly #o: EvacuationControllerOptions;
  /** A migration created and not yet in the cache: no second one meanwhile. */
  readonly #creations: Expectations;

  constructor(options: EvacuationControllerOptions) {
    this.#o = options;
    this.#creations = new Expectations(() => options.now().getTime());
    const { vmis, migrations } = options.informers;
    onEveryChange(vmis, (vmi) => {
      if (vmi.status?.evacuationNodeName) options.queue.add(keyOf(vmi));
    });
    onEveryChange(migrations, (m, verb) => {
      const key = `${m.metadata.namespace}/${m.spec.vmiName}`;
      if (verb === 'add') this.#creations.creationObserved(key);
      options.queue.add(key);
    });
  }

  run(workers: number): Promise<void> {
    return runReconciler(this.#o.queue, workers, this, this.#o.log, 'VMI');
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/');
    const vmi = this.#o.informers.vmis.get(name, namespace);
    if (!vmi || !this.#creations.satisfied(key)) return;
    const plan = planEvacuation(vmi, this.#o.informers.migrations.list(namespace), this.#o.now());
    if (plan.retryAfterMs) this.#o.queue.addAfter(key, plan.retryAfterMs);
    if (!plan.create) return;
    this.#creations.expectCreations(key, 1);
    try {
      const created = await this.#o.api.createMigration(namespace, plan.create);
      this.#o.log
        .object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata })
        .info('evacuating the VMI', { node: vmi.status?.evacuationNodeName, migration: created.metadata.name });
      this.#o.record(
        { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata },
        'Normal',
        'SuccessfulCreate',
        `Created Migration ${created.metadata.name} for evacuation of node ${vmi.status?.evacuationNodeName}`,
      );
    } catch (error) {
      this.#creations.forget(key);
      throw error;
    }
  }
}
