// GET requests to an import's source (a web server, or a clone source pod),
// following redirects as curl and Go do: image mirrors redirect to CDNs.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { type FillPodClientTls, serverNameTls } from '../fill-pod-client.ts';
import { HEADER_BYTES } from './formats.ts';
import { requestFailed, TopLevelError, unexpectedStatus } from './messages.ts';
import { totalFromContentRange } from './range.ts';

export interface SourceConnection {
  /** Sent with every request: credentials, extra headers. */
  headers: Record<string, string>;
  /** CA certificates trusted besides the system's. */
  extraCAs?: string[];
  /** Another fill pod (a clone's source): only these CAs are trusted, and only a certificate for this name. */
  fillPod?: { caBundle: string; serverName: string };
  /** The stage a failure is reported under ("Unable to connect to http data source"). */
  stage: string;
}

export interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

const MAX_REDIRECTS = 10;
/** A source that sends nothing for this long is gone; a slow one still sends something. */
const IDLE_TIMEOUT_MS = 5 * 60_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function once(
  url: URL,
  headers: Record<string, string>,
  extraCAs: string[] | undefined,
  fillPod?: FillPodClientTls,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const options = {
      method: 'GET',
      headers: { 'User-Agent': 'kubevirt-ts-cdi-importer', 'Accept-Encoding': 'identity', ...headers },
      ...(https && extraCAs?.length ? { ca: [...rootCertificates, ...extraCAs] } : {}),
      ...(https && fillPod ? fillPod : {}),
    };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => {
      const err = Object.assign(new Error(`no data from the source for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' });
      req.destroy(err);
    });
    req.once('error', reject);
    req.end();
  });
}

/** GETs `url`; rejects with the stage's message when the source cannot be reached. Any status is returned. */
export async function get(url: string, connection: SourceConnection, headers: Record<string, string> = {}): Promise<Answer> {
  let current = new URL(url);
  let sent = { ...connection.headers, ...headers };
  const fillPod = connection.fillPod ? serverNameTls(connection.fillPod.caBundle, connection.fillPod.serverName) : undefined;
  for (let hop = 0; ; hop++) {
    let res: IncomingMessage;
    try {
      res = await once(current, sent, connection.extraCAs, fillPod);
    } catch (err) {
      throw new TopLevelError(`${connection.stage}: ${requestFailed(current.toString(), err)}`);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.has(status) && location && hop < MAX_REDIRECTS) {
      res.resume();
      const next = new URL(location, current);
      // Credentials are for the origin they were given for, not wherever it sends us.
      if (next.origin !== current.origin) {
        sent = Object.fromEntries(Object.entries(sent).filter(([name]) => name.toLowerCase() !== 'authorization'));
      }
      current = next;
      continue;
    }
    return { status, statusText: res.statusMessage ?? '', headers: res.headers, body: res };
  }
}

/** Fails with CDI's wording unless the answer's status is one of `accepted`. */
export function expectStatus(answer: Answer, accepted: readonly number[], stage: string): void {
  if (accepted.includes(answer.status)) return;
  answer.body.resume();
  throw new TopLevelError(`${stage}: ${unexpectedStatus(answer.status, answer.statusText, accepted[0])}`);
}

export function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const value = Number(headers['content-length']);
  return headers['content-length'] !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

export interface ProbeResult {
  /** The source's first bytes (at most HEADER_BYTES). */
  head: Buffer;
  /** The server answered the range with 206, so qemu-img can read the image in place. */
  rangesWork: boolean;
  totalBytes?: number;
}

/** Reads the start of the source with a range request, to learn its format and whether ranges work. */
export async function probe(url: string, connection: SourceConnection): Promise<ProbeResult> {
  const answer = await get(url, connection, { Range: `bytes=0-${HEADER_BYTES - 1}` });
  expectStatus(answer, [200, 206], connection.stage);
  const rangesWork = answer.status === 206;
  const totalBytes = rangesWork ? totalFromContentRange(answer.headers['content-range']) : contentLength(answer.headers);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= HEADER_BYTES) break;
    }
  } catch (err) {
    throw new TopLevelError(`${connection.stage}: ${requestFailed(url, err)}`);
  } finally {
    // A server that ignored the range is sending the whole image.
    answer.body.destroy();
  }
  return { head: Buffer.concat(chunks).subarray(0, HEADER_BYTES), rangesWork, totalBytes };
}
