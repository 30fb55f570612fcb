// The upload server: takes one image in a request's body (through CDI's
// upload proxy, which checked the user's token and forwards the pod's), and
// ends once the disk is complete. Answers follow CDI's upload server, which
// virtctl and the upload proxy expect.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CdiTask, UPLOAD_SERVER_PATHS } from '../../contract/cdi.ts';
import type { Logger } from '../../lib/log.ts';
import { type DiskTarget, writeImageStream } from './disk-image.ts';
import { contentLength } from './http-client.ts';
import { describe, ImportError, STAGE } from './messages.ts';
import { diskPath, type PodEnvironment } from './pod-env.ts';
import { answer, answerCommonPaths, bearerTokenMatches, pathOf, type Progress } from './pod-server.ts';
import { counted } from './streams.ts';

type UploadTask = Extract<CdiTask, { kind: 'upload' }>;

type State = 'idle' | 'receiving' | 'processing' | 'done';

/** How an upload ended: the disk is complete, or it failed after its sender was told it had arrived. */
export type UploadOutcome = { ok: true } | { ok: false; message: string };

/** The text of a failed upload's answer, and its status: 400 for an image that does not fit, as CDI. */
export function uploadFailure(err: unknown): { status: number; message: string } {
  const tooLarge = err instanceof ImportError && err.tooLarge;
  return {
    status: tooLarge ? 400 : 500,
    message: `${STAGE.upload}: ${tooLarge ? `${STAGE.uploadTooLarge}: ` : ''}${describe(err)}`,
  };
}

export interface UploadServer {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Settles when an upload has finished for good (the pod then ends). */
  outcome: Promise<UploadOutcome>;
}

export function uploadServer(task: UploadTask, pod: PodEnvironment, progress: Progress, log: Logger): UploadServer {
  const target: DiskTarget = {
    path: diskPath(pod, task.target.volumeMode),
    block: task.target.volumeMode === 'Block',
    sizeBytes: task.target.sizeBytes,
    availableBytes: task.target.availableBytes,
  };
  const archive = task.contentType === 'archive' || task.target.contentType === 'archive';
  let state: State = 'idle';
  let finish: (outcome: UploadOutcome) => void = () => undefined;
  const outcome = new Promise<UploadOutcome>((resolve) => (finish = resolve));

  async function receive(req: IncomingMessage, res: ServerResponse, mode: 'sync' | 'async'): Promise<void> {
    state = 'receiving';
    progress.reset();
    const total = contentLength(req.headers);
    log.info('upload started', { mode, contentLength: total });
    let answered = false;
    try {
      await writeImageStream({
        source: counted(req, total, (bytes) => progress.setBytes(bytes, total)),
        target,
        scratchDir: pod.scratchDir,
        detectFormat: true,
        name: 'the upload',
        log,
        onReceived: () => {
          state = 'processing';
          if (mode !== 'async') return;
          // Async: the sender may go; what is left is this pod's work.
          answer(res, 200, '');
          answered = true;
        },
      });
    } catch (err) {
      const failure = uploadFailure(err);
      log.error('upload failed', { error: failure.message });
      if (answered) {
        // The sender was told the upload arrived: only ending the pod with the
        // message makes the failure visible (on the DataVolume), as CDI does.
        finish({ ok: false, message: failure.message });
        return;
      }
      state = 'idle';
      answer(res, failure.status, failure.message, { close: true });
      return;
    }
    state = 'done';
    progress.markComplete();
    log.info('upload complete', { target: target.path });
    if (answered) {
      finish({ ok: true });
      return;
    }
    res.once('finish', () => finish({ ok: true }));
    res.once('close', () => finish({ ok: true }));
    answer(res, 200, '');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (answerCommonPaths(req, res, progress)) return;
    const path = pathOf(req);
    const route =
      path === UPLOAD_SERVER_PATHS.sync
        ? 'sync'
        : path === UPLOAD_SERVER_PATHS.async
          ? 'async'
          : path === UPLOAD_SERVER_PATHS.form
            ? 'form'
            : undefined;
    if (!route) return answer(res, 404, 'not found\n', { close: true });
    if (!bearerTokenMatches(req.headers.authorization, pod.podToken))
      return answer(res, 401, 'a valid bearer token is required\n', { close: true });
    // virtctl asks with HEAD whether the async path exists.
    if (req.method === 'HEAD') return answer(res, route === 'async' ? 200 : 404);
    if (req.method !== 'POST' && req.method !== 'PUT') {
      res.setHeader('Allow', 'POST, PUT');
      return answer(res, 405, `${req.method} is not allowed\n`, { close: true });
    }
    if (state === 'receiving' || state === 'processing') return answer(res, 503, 'another upload is in progress\n', { close: true });
    if (state === 'done') return answer(res, 409, 'the upload has already completed\n', { close: true });
    if (route === 'form') {
      return answer(
        res,
        400,
        `${STAGE.upload}: multipart form uploads are not supported; send the image as the body to ${UPLOAD_SERVER_PATHS.sync}`,
        {
          close: true,
        },
      );
    }
    if (archive) return answer(res, 400, `${STAGE.upload}: archive uploads are not supported; upload a disk image`, { close: true });
    await receive(req, res, route);
  }

  return { handle, outcome };
}
