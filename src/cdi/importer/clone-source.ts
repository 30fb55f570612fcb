// The clone source: serves a claim's disk, raw, to the pod filling the clone
// target, with ranges so a target can resume or read in parts.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { CLONE_SOURCE_PATH } from '../../contract/cdi.ts';
import type { Logger } from '../../lib/log.ts';
import { runProgram } from './qemu-img.ts';
import { answer, answerCommonPaths, bearerTokenMatches, pathOf, type Progress } from './pod-server.ts';
import { contentRange, parseRange, unsatisfiedContentRange } from './range.ts';

/** Linux's split of a device number (glibc's gnu_dev_major/minor), which stat reports whole. */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** A file's length, or a block device's (whose stat says 0). */
export async function diskBytes(path: string): Promise<number> {
  const info = await stat(path, { bigint: true });
  if (!info.isBlockDevice()) return Number(info.size);
  const { major, minor } = deviceNumbers(info.rdev);
  try {
    const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
    return Number(sectors.trim()) * 512;
  } catch {
    // No sysfs in this container: ask the device itself.
    const done = await runProgram('blockdev', ['--getsize64', path]);
    const bytes = Number(done.stdout.trim());
    if (done.code !== 0 || !Number.isSafeInteger(bytes)) throw new Error(`cannot tell the size of ${path}: ${done.stderr.trim()}`);
    return bytes;
  }
}

export function cloneSourceHandler(disk: string, token: string, progress: Progress, log: Logger) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (answerCommonPaths(req, res, progress)) return;
    if (pathOf(req) !== CLONE_SOURCE_PATH) return answer(res, 404, 'not found\n', { close: true });
    if (!bearerTokenMatches(req.headers.authorization, token))
      return answer(res, 401, 'a valid bearer token is required\n', { close: true });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return answer(res, 405, `${req.method} is not allowed\n`, { close: true });
    }
    let size: number;
    try {
      size = await diskBytes(disk);
    } catch (err) {
      log.error('cannot read the disk', { disk, error: (err as Error).message });
      return answer(res, 500, `cannot read the claim's disk: ${(err as Error).message}\n`);
    }
    const range = parseRange(req.headers.range, size);
    res.setHeader('Accept-Ranges', 'bytes');
    if (range.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', unsatisfiedContentRange(size));
      return answer(res, 416, 'the range is outside the disk\n');
    }
    const start = range.kind === 'part' ? range.start : 0;
    const end = range.kind === 'part' ? range.end : size - 1;
    res.statusCode = range.kind === 'part' ? 206 : 200;
    if (range.kind === 'part') res.setHeader('Content-Range', contentRange(range, size));
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', end - start + 1);
    if (req.method === 'HEAD' || end < start) {
      res.end();
      return;
    }
    log.info('serving the disk', { start, end, size });
    try {
      await pipeline(createReadStream(disk, { start, end }), res);
    } catch (err) {
      // The target went away, or the disk could not be read: the client sees a short body.
      log.warning('serving the disk stopped', { error: (err as Error).message });
      res.destroy();
    }
  };
}
