// The words a failed fill pod leaves behind. The termination message ends up
// in the DataVolume's Running condition, where users and tools match CDI's
// texts (a controller turns "is larger than the reported available storage"
// into "DataVolume too small to contain image"), so the wording follows CDI's
// importer and upload server.

/** The kubelet keeps at most this much of a termination message. */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;

export const IMPORT_COMPLETE = 'Import Complete';
export const UPLOAD_COMPLETE = 'Upload Complete';

/** CDI's stages: what was being done when a processing step failed. */
export const STAGE = {
  process: 'Unable to process data',
  scratch: 'Unable to transfer source data to scratch space',
  target: 'Unable to transfer source data to target file',
  convert: 'Unable to convert source data to target format',
  rawConversion: 'Conversion to Raw failed',
  resize: 'Unable to resize disk image to requested size',
  blank: 'Unable to create blank image',
  httpSource: 'Unable to connect to http data source',
  cloneSource: 'Unable to connect to clone source',
  upload: 'Saving stream failed',
  uploadTooLarge: 'effective image size is larger than the reported available storage',
} as const;

/**
 * A failure with its final wording. `tooLarge` survives wrapping so the upload
 * server can answer 400 (the user's image does not fit) rather than 500.
 */
export class ImportError extends Error {
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.name = 'ImportError';
    this.tooLarge = tooLarge;
  }
}

/**
 * A failure whose message is already the top of CDI's chain, not a step under
 * "Unable to process data": the source could not be reached or refused, or a
 * blank disk could not be made.
 */
export class TopLevelError extends ImportError {
  constructor(message: string) {
    super(message);
    this.name = 'TopLevelError';
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** `err` as a step of `stage`, keeping whether it is about size. */
export function failedAt(stage: string, err: unknown): ImportError {
  return new ImportError(`${stage}: ${describe(err)}`, err instanceof ImportError && err.tooLarge);
}

export function imageTooLarge(virtualBytes: number, availableBytes: number): string {
  return `virtual image size ${virtualBytes} is larger than the reported available storage ${availableBytes}. A larger PVC is required`;
}

export function imageTooLargeError(virtualBytes: number, availableBytes: number, stage: string = STAGE.convert): ImportError {
  return new ImportError(`${stage}: ${imageTooLarge(virtualBytes, availableBytes)}`, true);
}

export function invalidBackingFile(image: string, backingFile: string): string {
  return `Image ${image} is invalid because it has invalid backing file ${backingFile}`;
}

/** Go's http.Response.Status is "404 Not Found"; CDI's message quotes it. */
export function unexpectedStatus(status: number, statusText: string | undefined, expected = 200): string {
  const text = statusText ? `${status} ${statusText}` : `${status}`;
  return `expected status code ${expected}, got ${status}. Status: ${text}`;
}

interface NetworkError {
  code?: string;
  address?: string;
  port?: number;
  hostname?: string;
  message?: string;
  errors?: unknown[];
}

const TLS_CODES = /CERT|SIGNATURE|SELF_SIGNED|ISSUER|ALTNAME|TLS|SSL/;

/** Why a connection failed, in the words Go's net/http uses (users search for those). */
function networkReason(err: NetworkError, url: URL): string {
  // Node tries each address of a name in turn and reports them together.
  const first = (err.errors?.find((e) => (e as NetworkError).address) as NetworkError | undefined) ?? err;
  const endpoint = first.address ? `${first.address.includes(':') ? `[${first.address}]` : first.address}:${first.port}` : url.host;
  switch (err.code ?? first.code) {
    case 'ECONNREFUSED':
      return `dial tcp ${endpoint}: connect: connection refused`;
    case 'ENOTFOUND':
      return `dial tcp: lookup ${err.hostname ?? url.hostname}: no such host`;
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${err.hostname ?? url.hostname}: temporary failure in name resolution`;
    case 'ETIMEDOUT':
      return `dial tcp ${endpoint}: i/o timeout`;
    case 'EHOSTUNREACH':
      return `dial tcp ${endpoint}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp ${endpoint}: connect: network is unreachable`;
    case 'ECONNRESET':
      return `read tcp ${endpoint}: connection reset by peer`;
  }
  // Node appends advice on its own flags ("; if the root CA is installed locally, try
  // running Node.js with --use-system-ca"), which means nothing to a DataVolume's user.
  if (err.code && TLS_CODES.test(err.code)) return `tls: failed to verify certificate: ${err.message?.split(';')[0]}`;
  return err.message ?? String(err);
}

export function requestFailed(url: string, err: unknown): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `HTTP request errored: ${describe(err)}`;
  }
  const reason = typeof err === 'object' && err !== null ? networkReason(err as NetworkError, parsed) : String(err);
  return `HTTP request errored: Get "${redactUrl(url)}": ${reason}`;
}

/** A URL with any user:password removed, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

export function truncatedBody(received: number, expected: number): string {
  return `unexpected EOF: the connection closed after ${received} of ${expected} bytes`;
}

/** qemu-img's stderr on one line: it may print one error per line. */
export function qemuError(stderr: string, fallback: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.length ? lines.join('; ') : fallback;
}

/** One line of at most the kubelet's limit, cut on a character boundary. */
export function terminationMessage(text: string): string {
  const line = text.trim().replace(/\s*[\r\n]+\s*/g, '; ');
  const bytes = Buffer.from(line, 'utf8');
  if (bytes.length <= TERMINATION_MESSAGE_MAX_BYTES) return line;
  const ellipsis = '...';
  let cut = TERMINATION_MESSAGE_MAX_BYTES - ellipsis.length;
  // Back off to the start of a UTF-8 sequence.
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut).toString('utf8') + ellipsis;
}
