// Runs virt-handler's helper commands (nsenter, mount, ip) on worker threads.
// Starting a process blocks the starting thread until the child has called
// exec: on a saturated node that took ~20 ms per command, and in a burst of
// VMI starts it held virt-handler's main thread for half of its time, with
// every watch event, status write and launcher answer waiting behind it.
//
// Each worker is a V8 isolate of its own, ~18 MiB resident: workers start on
// demand (a new one only while every running one is busy, up to `threads`) and
// end after `idleMs` without work, so an idle node agent carries none. The
// worker's program is a string (eval), so it does not depend on where this
// module's file is, nor load it again (the component may run as one bundle).
import { Worker } from 'node:worker_threads';

interface Job {
  id: number;
  argv: string[];
}
type Done = { id: number; stdout: string } | { id: number; error: string };

/** The worker's whole program: run each job's argv, answer with its stdout or a message naming it. */
const WORKER_PROGRAM = `
const { parentPort } = require('node:worker_threads');
const { execFile } = require('node:child_process');
parentPort.on('message', ({ id, argv }) => {
  execFile(argv[0], argv.slice(1), { encoding: 'utf8' }, (error, stdout, stderr) =>
    parentPort.postMessage(error ? { id, error: argv.join(' ') + ': ' + (stderr.trim() || error.message) } : { id, stdout }),
  );
});
`;

interface Pending {
  resolve: (stdout: string) => void;
  reject: (error: Error) => void;
}

interface RunnerWorker {
  thread: Worker;
  pending: Map<number, Pending>;
  idleTimer?: NodeJS.Timeout;
}

/** A function that runs a command on one of up to `threads` workers and resolves with its stdout; `workers()` counts the running ones. */
export function commandRunner(threads: number, idleMs = 15_000): ((argv: string[]) => Promise<string>) & { workers: () => number } {
  const workers: RunnerWorker[] = [];
  let nextId = 0;

  function retire(worker: RunnerWorker) {
    const at = workers.indexOf(worker);
    if (at >= 0) workers.splice(at, 1);
    void worker.thread.terminate();
  }

  function startWorker(): RunnerWorker {
    // A small young generation: the worker only shuttles command output.
    const worker: RunnerWorker = {
      thread: new Worker(WORKER_PROGRAM, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2 } }),
      pending: new Map(),
    };
    worker.thread.on('message', (done: Done) => {
      const job = worker.pending.get(done.id);
      worker.pending.delete(done.id);
      if ('error' in done) job?.reject(new Error(done.error));
      else job?.resolve(done.stdout);
      if (worker.pending.size === 0) {
        worker.thread.unref();
        worker.idleTimer = setTimeout(() => retire(worker), idleMs).unref();
      }
    });
    // A worker that died takes its jobs with it: they fail, and the next command starts a fresh one.
    worker.thread.on('error', (error) => {
      for (const job of worker.pending.values()) job.reject(error);
      worker.pending.clear();
      retire(worker);
    });
    workers.push(worker);
    return worker;
  }

  const run = (argv: string[]) =>
    new Promise<string>((resolve, reject) => {
      const least = workers.reduce<RunnerWorker | undefined>((a, b) => (!a || b.pending.size < a.pending.size ? b : a), undefined);
      const worker = least && (least.pending.size === 0 || workers.length >= threads) ? least : startWorker();
      clearTimeout(worker.idleTimer);
      const id = nextId++;
      worker.pending.set(id, { resolve, reject });
      worker.thread.ref();
      worker.thread.postMessage({ id, argv } satisfies Job);
    });
  return Object.assign(run, { workers: () => workers.length });
}
