// The loop every controller runs over its work queue: workers reconcile the
// keys it hands out, and a key whose reconcile fails is logged and retried
// later (client-go's processNextWorkItem).
import { apiErrorMessage } from './kube.ts';
import type { Logger } from './log.ts';
import { runWorkers, type WorkQueue } from './workqueue.ts';

export interface Reconciler {
  reconcile(key: string): Promise<void>;
}

/** Runs until the queue shuts down. `kind` names what is reconciled, in the failure log. */
export async function runReconciler(queue: WorkQueue, workers: number, reconciler: Reconciler, log: Logger, kind: string): Promise<void> {
  await runWorkers(
    queue,
    workers,
    (key) => reconciler.reconcile(key),
    (key, error) => log.warning(`${kind} reconcile failed; will retry`, { key, error: apiErrorMessage(error) }),
  );
}
