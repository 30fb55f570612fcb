// Runs virt-handler's helper commands (nsenter, mount, ip) on worker threads.
// Starting a process blocks the starting thread until the child has called
// exec: on a saturated node that took ~20 ms per command, and in a burst of
// VMI starts it held virt-handler's main thread for half of its time, with
// every watch event, status write and launcher answer waiting behind it.
import { execFile } from 'node:child_process';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

interface Job {
  id: number;
  argv: string[];
}
type Done = { id: number; stdout: string } | { id: number; error: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', ({ id, argv }: Job) => {
    execFile(argv[0], argv.slice(1), { encoding: 'utf8' }, (error, stdout, stderr) =>
      port.postMessage(error ? { id, error: `${argv.join(' ')}: ${stderr.trim() || error.message}` } : { id, stdout }),
    );
  });
}

interface Pending {
  resolve: (stdout: string) => void;
  reject: (error: Error) => void;
}

/** A function that runs a command on one of `threads` workers and resolves with its stdout. */
export function commandRunner(threads: number): (argv: string[]) => Promise<string> {
  const workers = Array.from({ length: threads }, () => startWorker());
  let nextId = 0;

  function startWorker() {
    const worker = { thread: new Worker(new URL(import.meta.url)), pending: new Map<number, Pending>() };
    worker.thread.on('message', (done: Done) => {
      const job = worker.pending.get(done.id);
      worker.pending.delete(done.id);
      if ('error' in done) job?.reject(new Error(done.error));
      else job?.resolve(done.stdout);
      if (worker.pending.size === 0) worker.thread.unref();
    });
    // A worker that died takes its jobs with it: they fail, and a fresh worker takes its place.
    worker.thread.on('error', (error) => {
      for (const job of worker.pending.values()) job.reject(error);
      workers[workers.indexOf(worker)] = startWorker();
    });
    // An idle worker keeps no process alive (set after the listeners: adding one refs it again).
    worker.thread.unref();
    return worker;
  }

  return (argv) =>
    new Promise<string>((resolve, reject) => {
      const worker = workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      const id = nextId++;
      worker.pending.set(id, { resolve, reject });
      worker.thread.ref();
      worker.thread.postMessage({ id, argv } satisfies Job);
    });
}
