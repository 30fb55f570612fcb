// The program in the DataVolume controller's fill pods: the importer, the
// upload server and the clone source, chosen by the task in CDI_TASK.
//
// Its report to the controller is the container's end: exit 0, or exit 1
// with one line in the termination log (shown on the DataVolume). Meanwhile
// GET /progress tells how far it is, and whether the work is complete: the
// answer to a held request (?wait=ms) tells of a success as soon as it is
// one, before the kubelet reports the exit.
import { writeFileSync } from 'node:fs';
import { CDI_TASK_ENV, type CdiTask } from '../../contract/cdi.ts';
import { createLogger, exitOnSignals, type Logger } from '../../lib/log.ts';
import { cloneSourceHandler } from './clone-source.ts';
import { runImport } from './import.ts';
import { describe, IMPORT_COMPLETE, redactUrl, STAGE, terminationMessage, TopLevelError, UPLOAD_COMPLETE } from './messages.ts';
import { diskPath, parseTask, podEnvironment, type PodEnvironment, terminationLogPath } from './pod-env.ts';
import { answer, answerCommonPaths, Progress, startPodServer, stopPodServer } from './pod-server.ts';
import { stopChildren } from './qemu-img.ts';
import { uploadServer } from './upload.ts';
import { takeProcessName } from '../../lib/process-name.ts';

function leaveMessage(pod: Pick<PodEnvironment, 'terminationLog'>, text: string, log: Logger): void {
  try {
    writeFileSync(pod.terminationLog, `${terminationMessage(text)}\n`);
  } catch (err) {
    log.warning('cannot write the termination log', { path: pod.terminationLog, error: describe(err) });
  }
}

/** The task as logged: a URL's credentials stay out of the logs. */
function taskSummary(task: CdiTask): Record<string, unknown> {
  if (task.kind !== 'import') return { kind: task.kind };
  const source = 'url' in task.source ? { ...task.source, url: redactUrl(task.source.url) } : task.source;
  return { kind: task.kind, source, target: task.target };
}

async function importMode(
  task: Extract<CdiTask, { kind: 'import' }>,
  pod: PodEnvironment,
  progress: Progress,
  log: Logger,
): Promise<number> {
  const server = await startPodServer(
    pod.port,
    (req, res) => {
      if (!answerCommonPaths(req, res, progress)) answer(res, 404, 'not found\n', { close: true });
    },
    log,
    pod.tls,
  );
  let code = 0;
  try {
    await runImport(task, pod, progress, log);
    leaveMessage(pod, IMPORT_COMPLETE, log);
    progress.markComplete();
    log.info('import complete');
  } catch (err) {
    const message = err instanceof TopLevelError ? err.message : `${STAGE.process}: ${describe(err)}`;
    log.error('import failed', { error: message });
    leaveMessage(pod, message, log);
    code = 1;
  }
  await stopPodServer(server);
  return code;
}

async function uploadMode(
  task: Extract<CdiTask, { kind: 'upload' }>,
  pod: PodEnvironment,
  progress: Progress,
  log: Logger,
): Promise<number> {
  const upload = uploadServer(task, pod, progress, log);
  const server = await startPodServer(pod.port, upload.handle, log, pod.tls);
  const outcome = await upload.outcome;
  await stopPodServer(server);
  if (!outcome.ok) {
    leaveMessage(pod, outcome.message, log);
    return 1;
  }
  leaveMessage(pod, UPLOAD_COMPLETE, log);
  return 0;
}

async function cloneSourceMode(task: Extract<CdiTask, { kind: 'clone-source' }>, pod: PodEnvironment, log: Logger): Promise<number> {
  const disk = diskPath(pod, task.volumeMode);
  await startPodServer(pod.port, cloneSourceHandler(disk, pod.podToken, new Progress(), log), log, pod.tls);
  log.info('serving the claim', { disk });
  // Until the controller deletes the pod, which exitOnSignals turns into exit 0.
  return new Promise<number>(() => undefined);
}

/**
 * An importer or upload server stopped halfway (evicted, its node drained)
 * must not exit 0, which the kubelet would report as a Succeeded pod and the
 * controller as a filled claim. lib/log's exitOnSignals always exits 0, so
 * it only serves the clone source, which has nothing to finish. Once the work
 * is complete (and said so), the controller may remove the pod before it has
 * ended by itself: that is a clean end.
 */
function failOnSignals(pod: PodEnvironment, work: string, progress: Progress, log: Logger): void {
  const stop = (signal: 'SIGTERM' | 'SIGINT', code: number) => {
    if (progress.complete) process.exit(0);
    log.warning('stopped before the work was done', { signal });
    stopChildren();
    leaveMessage(pod, `Stopped by ${signal} before the ${work} completed`, log);
    process.exit(code);
  };
  process.once('SIGTERM', () => stop('SIGTERM', 143));
  process.once('SIGINT', () => stop('SIGINT', 130));
}

async function main(): Promise<number> {
  const bootLog = createLogger('cdi-importer');
  let pod: PodEnvironment;
  let task: CdiTask;
  try {
    pod = podEnvironment(process.env);
  } catch (err) {
    bootLog.error('bad environment', { error: describe(err) });
    leaveMessage({ terminationLog: terminationLogPath(process.env) }, describe(err), bootLog);
    return 1;
  }
  try {
    task = parseTask(process.env[CDI_TASK_ENV]);
  } catch (err) {
    bootLog.error('bad task', { error: describe(err) });
    leaveMessage(pod, describe(err), bootLog);
    return 1;
  }
  const component = { import: 'cdi-importer', upload: 'cdi-upload-server', 'clone-source': 'cdi-clone-source' }[task.kind];
  const log = createLogger(component);
  const progress = new Progress(log);
  if (task.kind === 'clone-source') exitOnSignals(log);
  else failOnSignals(pod, task.kind, progress, log);
  log.info('starting', taskSummary(task));
  try {
    switch (task.kind) {
      case 'import':
        return await importMode(task, pod, progress, log);
      case 'upload':
        return await uploadMode(task, pod, progress, log);
      case 'clone-source':
        return await cloneSourceMode(task, pod, log);
    }
  } catch (err) {
    // Only the pod's server not starting (its port taken) gets here.
    log.error('failed', { error: describe(err) });
    leaveMessage(pod, `cannot serve on port ${pod.port}: ${describe(err)}`, log);
    return 1;
  }
}

takeProcessName();
main().then((code) => process.exit(code));
