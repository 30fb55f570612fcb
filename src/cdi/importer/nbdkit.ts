// An http(s) source served to qemu-img over NBD by nbdkit's curl plugin, as
// upstream CDI's importer does. qemu-img then reads the image in place, with
// ranges, without a copy in scratch space. QEMU's own curl block driver
// would do the same without a second process, but it deadlocks now and then
// with several requests in flight (its sockets left in CLOSE-WAIT, the import
// stuck for good); it also cannot be given custom CAs or headers.
//
// nbdkit runs as a child for as long as qemu-img needs the source: in the
// foreground, read-only, on a unix socket in a private directory, and with
// --exit-with-parent, so it cannot outlive the importer.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { ConvertibleFormat } from './formats.ts';
import { qemuError, redactUrl } from './messages.ts';
import { type QemuImage, track } from './qemu-img.ts';

export interface HttpImageSource {
  url: string;
  credentials?: { username: string; password: string };
  /** Headers sent with every request (the DataVolume's extraHeaders). */
  headers: Record<string, string>;
  /** CA certificates trusted besides the default ones (the certConfigMap's). */
  extraCAs?: string[];
}

/** Where nbdkit finds what is not on its command line. */
export interface NbdkitFiles {
  socket: string;
  /** The password, for password=+FILE: never on the command line. */
  passwordFile?: string;
  /** The CA bundle for cainfo=: the default roots and the certConfigMap's. */
  caFile?: string;
}

/** The timeout CDI gives each request: slow mirrors are common, and libcurl's own is short for a range of a large image. */
export const CURL_TIMEOUT_SECONDS = 3600;
export const USER_AGENT = 'kubevirt-ts-cdi-importer';

/**
 * nbdkit's arguments serving `source`. No filter: readahead does nothing for
 * the curl plugin (it serializes requests), and cache-on-read only added a
 * copy in $TMPDIR; neither made a conversion faster.
 */
export function nbdkitArguments(source: HttpImageSource, files: NbdkitFiles): string[] {
  const args = ['--foreground', '--readonly', '--exit-with-parent', '--unix', files.socket, 'curl', `url=${source.url}`];
  // Redirects may go elsewhere, but not to file:// or another of curl's protocols.
  args.push('protocols=http,https', `timeout=${CURL_TIMEOUT_SECONDS}`, `user-agent=${USER_AGENT}`);
  if (source.credentials) {
    if (!files.passwordFile) throw new Error('a password needs a password file');
    args.push(`user=${source.credentials.username}`, `password=+${files.passwordFile}`);
  }
  if (source.extraCAs?.length) {
    if (!files.caFile) throw new Error('extra CAs need a CA file');
    args.push(`cainfo=${files.caFile}`);
  }
  // curl reads "Name:" as "remove Name"; "Name;" sends it empty.
  for (const [name, value] of Object.entries(source.headers)) args.push(value ? `header=${name}: ${value}` : `header=${name};`);
  return args;
}

export interface NbdServer {
  image: QemuImage;
  /** Stops nbdkit and removes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

/** A URL's password as written and decoded: nbdkit may print either. */
function urlPasswords(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

const READY_TIMEOUT_MS = 30_000;
const STDERR_KEPT = 8192;

/** Starts nbdkit serving `source` and resolves once its socket accepts an NBD client. */
export async function serveOverNbd(source: HttpImageSource, format: ConvertibleFormat | 'raw'): Promise<NbdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'cdi-nbdkit-'));
  const files: NbdkitFiles = { socket: join(dir, 'nbdkit.sock') };
  const secrets = [source.credentials?.password, ...urlPasswords(source.url)].filter((s): s is string => !!s);
  /** nbdkit's words with the URL's credentials and the password out. */
  const redact = (text: string) => {
    let out = text.replaceAll(source.url, redactUrl(source.url));
    for (const secret of secrets) out = out.replaceAll(secret, '***');
    return out;
  };
  try {
    if (source.credentials) {
      files.passwordFile = join(dir, 'password');
      await writeFile(files.passwordFile, source.credentials.password, { mode: 0o600 });
    }
    if (source.extraCAs?.length) {
      files.caFile = join(dir, 'ca.pem');
      await writeFile(files.caFile, `${[...rootCertificates, ...source.extraCAs].join('\n')}\n`, { mode: 0o600 });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const child = spawn('nbdkit', nbdkitArguments(source, files), { stdio: ['ignore', 'ignore', 'pipe'] });
  // Read-only, it has nothing to finish, and on SIGTERM it would first wait
  // for a request stuck on the source (up to the timeout of an hour).
  track(child, 'SIGKILL');
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEPT);
  });
  let gone = false;
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`cannot run nbdkit: ${err.message}`));
    child.once('close', (code, signal) => resolve(`nbdkit exited with ${code ?? signal}`));
  }).finally(() => (gone = true));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    const ready = await Promise.race([
      accepting(files.socket, READY_TIMEOUT_MS, () => gone),
      exited.then((why) => Promise.reject(new Error(why))),
    ]);
    if (!ready) throw new Error(`nbdkit did not accept connections within ${READY_TIMEOUT_MS / 1000} s`);
  } catch (err) {
    await stop();
    const said = qemuError(stderr, '');
    throw new Error(redact(said ? `${(err as Error).message}: ${said}` : (err as Error).message));
  }
  const lastError = () => {
    const lines = stderr.split('\n').filter((line) => line.trim());
    return lines.length ? redact(lines[lines.length - 1].trim()) : undefined;
  };
  const image: QemuImage = { kind: 'nbd', socket: files.socket, format, serverError: lastError };
  return { image, stop };
}

const NBD_GREETING_BYTES = 18; // "NBDMAGIC", "IHAVEOPT", handshake flags
const NBD_FLAG_C_FIXED_NEWSTYLE = 1;
const NBD_FLAG_C_NO_ZEROES = 2;
const NBD_OPT_ABORT = 2;

/**
 * Whether an NBD server answers on `socket`: the greeting read, the
 * handshake then ended with NBD_OPT_ABORT (a bare close would make nbdkit
 * log a reset connection). Polls until `timeoutMs` has passed or the server is `gone`.
 */
async function accepting(socket: string, timeoutMs: number, gone: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone()) {
    if (await greets(socket)) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

function greets(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = createConnection(socket);
    let head = Buffer.alloc(0);
    let greeted = false;
    connection.once('close', () => resolve(greeted));
    connection.once('error', () => connection.destroy());
    connection.setTimeout(1000, () => connection.destroy());
    connection.on('data', (chunk: Buffer) => {
      if (greeted) return;
      head = Buffer.concat([head, chunk]);
      if (head.length < NBD_GREETING_BYTES) return;
      if (head.toString('latin1', 0, 8) !== 'NBDMAGIC') {
        connection.destroy();
        return;
      }
      greeted = true;
      const abort = Buffer.alloc(20);
      abort.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES, 0);
      abort.write('IHAVEOPT', 4, 'latin1');
      abort.writeUInt32BE(NBD_OPT_ABORT, 12);
      abort.writeUInt32BE(0, 16);
      // nbdkit answers the abort and closes; its close ends this.
      connection.end(abort);
    });
  });
}
