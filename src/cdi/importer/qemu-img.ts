// qemu-img, for everything that is not a plain raw stream: reading an image's
// size, checking it, and converting it to the raw disk. Images are always
// opened with their detected format: letting qemu-img probe would let a raw
// image that looks like qcow2 (or names a backing file) decide what is read.
import { spawn, type ChildProcess } from 'node:child_process';
import type { ConvertibleFormat } from './formats.ts';
import { qemuError } from './messages.ts';
import { QemuProgressReader } from './qemu-progress.ts';

export type QemuImage =
  | { kind: 'file'; path: string; format: ConvertibleFormat | 'raw' }
  /** An image an NBD server (nbdkit, serving an http source) exports on a unix socket. */
  | { kind: 'nbd'; socket: string; format: ConvertibleFormat | 'raw'; serverError?: () => string | undefined };

/** The children still running, so a stopping pod takes them with it, and the signal each is stopped with. */
const running = new Map<ChildProcess, NodeJS.Signals>();

/**
 * Counts `child` among the children a stopping pod takes with it, until it
 * ends. `signal` is for children that would wait for something before
 * exiting on SIGTERM, as nbdkit waits for a request stuck on its source.
 */
export function track(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  running.set(child, signal);
  child.once('close', () => running.delete(child));
  child.once('error', () => running.delete(child));
}

export function stopChildren(): void {
  for (const [child, signal] of running) child.kill(signal);
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; rejects only when it cannot be started. */
export function runProgram(command: string, args: readonly string[], onStdout?: (text: string) => void): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      onStdout?.(text);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** qemu-img's arguments naming `image`: the options before it, then the image. */
export function imageArguments(image: QemuImage): { options: string[]; image: string } {
  if (image.kind === 'file') return { options: ['-f', image.format], image: image.path };
  // json: rather than an nbd+unix:// URI, which would need the socket's path escaped.
  const file = { driver: 'nbd', server: { type: 'unix', path: image.socket } };
  return { options: [], image: `json:${JSON.stringify({ driver: image.format, file })}` };
}

/** Runs qemu-img `subcommand` on `image`. */
function onImage(
  subcommand: string,
  image: QemuImage,
  before: string[],
  after: string[],
  onStdout?: (text: string) => void,
): Promise<Finished> {
  const args = imageArguments(image);
  return runProgram('qemu-img', [subcommand, ...args.options, ...before, args.image, ...after], onStdout);
}

/** A failure's message, with what the NBD server said about its source when it said something. */
function failure(image: QemuImage, message: string): Error {
  const server = image.kind === 'nbd' ? image.serverError?.() : undefined;
  // nbdkit's lines start "nbdkit: ".
  return new Error(server ? `${message} (${server})` : message);
}

export interface ImageInfo {
  virtualSize: number;
  format: string;
  backingFile?: string;
}

export async function imageInfo(image: QemuImage): Promise<ImageInfo> {
  const done = await onImage('info', image, ['--output=json'], []);
  if (done.code !== 0) throw failure(image, qemuError(done.stderr, `qemu-img info exited with ${done.code ?? done.signal}`));
  const info = JSON.parse(done.stdout) as Record<string, unknown>;
  const virtualSize = info['virtual-size'];
  if (typeof virtualSize !== 'number') throw new Error(`qemu-img info reported no virtual size: ${done.stdout.slice(0, 200)}`);
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  return { virtualSize, format: String(info.format), backingFile: typeof backing === 'string' ? backing : undefined };
}

/** qemu-img check's exit codes: 0 clean, 3 leaked clusters (harmless to a copy), 63 no check for this format. */
const CHECK_ACCEPTABLE = new Set([0, 3, 63]);

/**
 * Finds a truncated or damaged image. qemu-img convert reads past the end of
 * a truncated image as zeros and succeeds, so without this a cut-off
 * download becomes a disk with holes in it.
 */
export async function checkImage(image: QemuImage): Promise<void> {
  if (image.format === 'raw') return;
  const done = await onImage('check', image, ['--output=json'], []);
  if (done.code !== null && CHECK_ACCEPTABLE.has(done.code)) return;
  const errorLines = done.stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  let found = '';
  try {
    const report = JSON.parse(done.stdout) as { corruptions?: number; 'check-errors'?: number };
    const count = (report.corruptions ?? 0) + (report['check-errors'] ?? 0);
    if (count) found = `qemu-img check found ${count} errors, the image is truncated or corrupt`;
  } catch {
    // No report: qemu-img could not even open the image, and said why on stderr.
  }
  const firstError = errorLines[0] ?? `qemu-img check exited with ${done.code ?? done.signal}`;
  const more = errorLines.length > 1 ? ` (and ${errorLines.length - 1} more)` : '';
  throw failure(image, found ? `${found}: ${firstError}${more}` : qemuError(done.stderr, firstError));
}

/** Writes `image` as a raw disk to `target`; onto a block device with `-n`, as qemu-img must not create the device. */
export async function convertToRaw(
  image: QemuImage,
  target: string,
  options: { block: boolean; onProgress?: (percent: number) => void },
): Promise<void> {
  const progress = new QemuProgressReader();
  const onStdout = (text: string) => {
    const percent = progress.feed(text);
    if (percent !== undefined) options.onProgress?.(percent);
  };
  // The default -S 4k leaves zero runs unwritten: a new disk.img stays sparse.
  const done = await onImage('convert', image, ['-p', '-O', 'raw', ...(options.block ? ['-n'] : [])], [target], onStdout);
  if (done.code !== 0) throw failure(image, qemuError(done.stderr, `qemu-img convert exited with ${done.code ?? done.signal}`));
}
