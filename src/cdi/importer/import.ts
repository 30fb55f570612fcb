// The importer: fills a claim from an http(s) URL, a registry image's disk,
// a clone source pod, or with nothing (a blank disk).
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { BASIC_AUTH_ENV, type CdiTask, type ImportSource } from '../../contract/cdi.ts';
import type { Logger } from '../../lib/log.ts';
import { convertImage, createBlankDisk, type DiskTarget, writeImageStream } from './disk-image.ts';
import { type ConvertibleFormat, detectFormat, HEADER_BYTES, isCompression } from './formats.ts';
import { contentLength, expectStatus, get, probe, type SourceConnection } from './http-client.ts';
import { ImportError, imageTooLargeError, redactUrl, STAGE, TopLevelError } from './messages.ts';
import { diskPath, parseExtraHeaders, type PodEnvironment } from './pod-env.ts';
import type { Progress } from './pod-server.ts';
import { type HttpImageSource, type NbdServer, serveOverNbd } from './nbdkit.ts';
import { imageInfo, type ImageInfo } from './qemu-img.ts';
import { counted } from './streams.ts';

type ImportTask = Extract<CdiTask, { kind: 'import' }>;
type HttpSource = Extract<ImportSource, { type: 'http' }>;

interface Context {
  pod: PodEnvironment;
  target: DiskTarget;
  progress: Progress;
  log: Logger;
  env: NodeJS.ProcessEnv;
}

export async function runImport(task: ImportTask, pod: PodEnvironment, progress: Progress, log: Logger, env = process.env): Promise<void> {
  const target: DiskTarget = {
    path: diskPath(pod, task.target.volumeMode),
    block: task.target.volumeMode === 'Block',
    sizeBytes: task.target.sizeBytes,
    availableBytes: task.target.availableBytes,
  };
  if (task.target.contentType === 'archive') {
    if (task.source.type === 'blank') throw new TopLevelError('Cannot create empty disk with content type archive');
    throw new ImportError('Unsupported content type archive: this importer writes disk images only');
  }
  const context: Context = { pod, target, progress, log, env };
  switch (task.source.type) {
    case 'blank':
      return createBlankDisk(target);
    case 'http':
      return importHttp(task.source, context);
    case 'registry':
      return importRegistryDisk(task.source.file, context);
    case 'clone':
      return importClone(task.source, context);
  }
}

/** The CA certificates of the certConfigMap, one file per key (Kubernetes' ..data links skipped). */
async function readCertificates(dir: string): Promise<string[]> {
  const certificates: string[] = [];
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const file = join(dir, name);
    if ((await stat(file)).isFile()) certificates.push(await readFile(file, 'utf8'));
  }
  return certificates;
}

function basicAuth(env: NodeJS.ProcessEnv): { username: string; password: string } {
  const username = env[BASIC_AUTH_ENV.username];
  const password = env[BASIC_AUTH_ENV.password];
  if (username === undefined || password === undefined) {
    throw new TopLevelError(
      `${STAGE.httpSource}: the source needs basic auth, but ${BASIC_AUTH_ENV.username} and ${BASIC_AUTH_ENV.password} are not both set`,
    );
  }
  return { username, password };
}

async function importHttp(source: HttpSource, context: Context): Promise<void> {
  const { log, progress, target } = context;
  const credentials = source.basicAuth ? basicAuth(context.env) : undefined;
  let extraHeaders: Record<string, string>;
  try {
    extraHeaders = parseExtraHeaders(source.extraHeaders);
  } catch (err) {
    throw new TopLevelError(`${STAGE.httpSource}: ${(err as Error).message}`);
  }
  const connection: SourceConnection = {
    headers: {
      ...extraHeaders,
      ...(credentials
        ? { Authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` }
        : {}),
    },
    extraCAs: source.certs ? await readCertificates(context.pod.certsDir) : undefined,
    stage: STAGE.httpSource,
  };
  const url = source.url;
  const probed = await probe(url, connection);
  if (probed.head.length === 0) throw new ImportError(`${redactUrl(url)} is empty: there is no image to import`);
  const format = detectFormat(probed.head);
  log.info('probed source', { url: redactUrl(url), format, rangesWork: probed.rangesWork, totalBytes: probed.totalBytes });
  // qemu-img reads the image in place over ranges (through nbdkit), without a copy in scratch space.
  if (probed.rangesWork && !isCompression(format)) {
    const source: HttpImageSource = { url, credentials, headers: extraHeaders, extraCAs: connection.extraCAs };
    if (await convertInPlace(source, format, context)) return;
  }
  const answer = await get(url, connection);
  expectStatus(answer, [200], STAGE.httpSource);
  const total = contentLength(answer.headers);
  await writeImageStream({
    source: counted(answer.body, total, (bytes) => progress.setBytes(bytes, total)),
    target,
    scratchDir: context.pod.scratchDir,
    detectFormat: true,
    name: redactUrl(url),
    log,
  });
}

/**
 * Converts the image nbdkit serves from `source`; false, with nothing
 * written, when qemu-img cannot read it that way: servers that answer
 * ranges but not HEAD, or lie about lengths, defeat nbdkit's curl plugin,
 * and reading the image as a stream still works.
 */
async function convertInPlace(source: HttpImageSource, format: ConvertibleFormat | 'raw', context: Context): Promise<boolean> {
  const { log, progress, target } = context;
  let server: NbdServer | undefined;
  try {
    let info: ImageInfo;
    try {
      server = await serveOverNbd(source, format);
      info = await imageInfo(server.image);
    } catch (err) {
      log.warning('qemu-img cannot read the source in place, streaming it instead', { error: (err as Error).message });
      return false;
    }
    await convertImage(server.image, target, redactUrl(source.url), { info, onProgress: (percent) => progress.set(percent), log });
    return true;
  } finally {
    await server?.stop();
  }
}

async function importRegistryDisk(fileName: string, context: Context): Promise<void> {
  const { pod, log, progress, target } = context;
  const file = resolve(pod.registryDir, fileName);
  const inside = relative(pod.registryDir, file);
  if (!inside || inside.startsWith('..'))
    throw new ImportError(`the registry image's disk ${fileName} is not a file in ${pod.registryDir}`);
  let head: Buffer;
  let size: number;
  try {
    const handle = await open(file, 'r');
    try {
      size = (await handle.stat()).size;
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new ImportError(`the registry image's disk cannot be read: ${(err as Error).message}`);
  }
  if (head.length === 0) throw new ImportError(`the registry image's disk ${file} is empty: there is no image to import`);
  const format = detectFormat(head);
  log.info('registry disk', { file, format, size });
  if (!isCompression(format)) {
    await convertImage({ kind: 'file', path: file, format }, target, file, { onProgress: (percent) => progress.set(percent), log });
    return;
  }
  await writeImageStream({
    source: counted(createReadStream(file), size, (bytes) => progress.setBytes(bytes, size)),
    target,
    scratchDir: pod.scratchDir,
    detectFormat: true,
    name: file,
    log,
  });
}

async function importClone(source: Extract<ImportSource, { type: 'clone' }>, context: Context): Promise<void> {
  const { pod, log, progress, target } = context;
  const url = source.url;
  // The source pod's certificate is checked against the fill-pod CA and the name it was issued for, never the system's CAs.
  let fillPod: SourceConnection['fillPod'];
  if (new URL(url).protocol === 'https:') {
    if (!pod.fillPodCa || !source.serverName)
      throw new TopLevelError(`${STAGE.cloneSource}: the source is https, but the fill-pod CA or the source's server name is missing`);
    fillPod = { caBundle: pod.fillPodCa, serverName: source.serverName };
  }
  const connection: SourceConnection = {
    headers: { Authorization: `Bearer ${pod.podToken}` },
    stage: STAGE.cloneSource,
    ...(fillPod ? { fillPod } : {}),
  };
  const answer = await get(url, connection);
  expectStatus(answer, [200], STAGE.cloneSource);
  const total = contentLength(answer.headers);
  log.info('cloning', { url, totalBytes: total });
  if (total !== undefined && total > target.availableBytes) {
    answer.body.destroy();
    throw imageTooLargeError(total, target.availableBytes, STAGE.target);
  }
  await writeImageStream({
    source: counted(answer.body, total, (bytes) => progress.setBytes(bytes, total)),
    target,
    scratchDir: pod.scratchDir,
    detectFormat: false,
    name: url,
    log,
  });
}
