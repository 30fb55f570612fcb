// The byte streams between a source and the disk: looking at the first bytes
// without losing them, counting what arrives, and decompressing.
import { spawn } from 'node:child_process';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { truncatedBody } from './messages.ts';

export type ByteStream = AsyncIterable<Buffer>;

/** The first `bytes` bytes of `source` (fewer if it is shorter), and a stream that still yields everything. */
export async function peek(source: ByteStream, bytes: number): Promise<{ head: Buffer; stream: ByteStream }> {
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    chunks.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* everything(): ByteStream {
    try {
      if (head.length) yield head;
      while (!ended) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Stopping early (a failed write) must release the source: a request, a child.
      if (!ended) await iterator.return?.();
    }
  }
  return { head: head.subarray(0, bytes), stream: everything() };
}

/**
 * Reports each chunk's arrival. A body that ends short of its Content-Length
 * (the server or a proxy dropped the connection) fails here with the counts,
 * rather than as Node's bare "aborted".
 */
export async function* counted(source: ByteStream, expectedBytes: number | undefined, onBytes: (total: number) => void): ByteStream {
  let total = 0;
  try {
    for await (const chunk of source) {
      total += chunk.length;
      onBytes(total);
      yield chunk;
    }
  } catch (err) {
    if (expectedBytes !== undefined && total < expectedBytes) throw new Error(truncatedBody(total, expectedBytes));
    throw err;
  }
  if (expectedBytes !== undefined && total < expectedBytes) throw new Error(truncatedBody(total, expectedBytes));
}

export async function* gunzip(source: ByteStream): ByteStream {
  const input = Readable.from(source, { objectMode: false });
  const unzip = createGunzip();
  // pipeline destroys unzip with the input's error, so the loop below sees it.
  pipeline(input, unzip, () => undefined);
  try {
    for await (const chunk of unzip as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code?.startsWith('Z_') ? new Error(`gzip: ${(err as Error).message}`) : err;
  } finally {
    unzip.destroy();
    input.destroy();
  }
}

/** xz through the xz program: Node has no xz decoder, and xz is in every image that has qemu-img. */
export async function* unxz(source: ByteStream): ByteStream {
  const child = spawn('xz', ['--decompress', '--stdout'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<{ code: number | null; started: boolean; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, started: false, error }));
    child.once('close', (code) => resolve({ code, started: true }));
  });
  const input = Readable.from(source, { objectMode: false });
  let inputError: Error | undefined;
  pipeline(input, child.stdin, (err) => {
    // xz stopping early (bad data) shows as EPIPE here; its own message says why.
    if (err && (err as NodeJS.ErrnoException).code !== 'EPIPE') inputError = err;
  });
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    const end = await exited;
    if (!end.started) throw new Error(`cannot run xz: ${end.error?.message}`);
    // A source that failed made xz see a cut-off stream: the source's error is the cause.
    if (inputError) throw inputError;
    if (end.code !== 0) throw new Error(`xz: ${stderr.trim().replace(/^xz: \(stdin\): /, '') || `exited with ${end.code}`}`);
  } finally {
    if (child.exitCode === null) child.kill();
    input.destroy();
  }
}
