// What the fill pod is given: its task, and where its volumes are. Every
// path has an override so the program runs outside a pod (the integration
// tests run it on the host with temporary directories).
import { join } from 'node:path';
import {
  CDI_POD_PATHS,
  CDI_POD_PORT,
  CDI_TASK_ENV,
  DISK_IMAGE,
  FILL_POD_TLS_ENV,
  POD_TOKEN_ENV,
  type CdiTask,
  type TaskTarget,
} from '../../contract/cdi.ts';

export const PATH_OVERRIDES = {
  dataDir: 'CDI_DATA_DIR',
  blockDevice: 'CDI_BLOCK_DEVICE',
  scratchDir: 'CDI_SCRATCH_DIR',
  registryDir: 'CDI_REGISTRY_DIR',
  certsDir: 'CDI_CERTS_DIR',
  terminationLog: 'CDI_TERMINATION_LOG',
  port: 'CDI_POD_PORT',
} as const;

const TERMINATION_LOG = '/dev/termination-log';

export interface PodEnvironment {
  dataDir: string;
  blockDevice: string;
  scratchDir: string;
  registryDir: string;
  certsDir: string;
  terminationLog: string;
  /** 0 picks a free port (tests); the port in use is logged. */
  port: number;
  /** The bearer token the pod's clients show; empty means every authenticated request is refused. */
  podToken: string;
  /** The pod's serving certificate and key (PEM): it serves HTTPS with them, plain HTTP without (outside a cluster). */
  tls?: { cert: string; key: string };
  /** The fill-pod CA bundle, for a pod that calls another fill pod (a clone's importer). */
  fillPodCa?: string;
}

/** Apart, as a failure to read the rest of the environment must still be written there. */
export function terminationLogPath(env: NodeJS.ProcessEnv): string {
  return env[PATH_OVERRIDES.terminationLog] || TERMINATION_LOG;
}

export function podEnvironment(env: NodeJS.ProcessEnv): PodEnvironment {
  const port = env[PATH_OVERRIDES.port] ? Number(env[PATH_OVERRIDES.port]) : CDI_POD_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${PATH_OVERRIDES.port} is not a port: ${env[PATH_OVERRIDES.port]}`);
  const cert = env[FILL_POD_TLS_ENV.cert];
  const key = env[FILL_POD_TLS_ENV.key];
  if (!cert !== !key) throw new Error(`${FILL_POD_TLS_ENV.cert} and ${FILL_POD_TLS_ENV.key} go together; only one is set`);
  return {
    dataDir: env[PATH_OVERRIDES.dataDir] || CDI_POD_PATHS.data,
    blockDevice: env[PATH_OVERRIDES.blockDevice] || CDI_POD_PATHS.blockDevice,
    scratchDir: env[PATH_OVERRIDES.scratchDir] || CDI_POD_PATHS.scratch,
    registryDir: env[PATH_OVERRIDES.registryDir] || CDI_POD_PATHS.registryDisk,
    certsDir: env[PATH_OVERRIDES.certsDir] || CDI_POD_PATHS.certs,
    terminationLog: terminationLogPath(env),
    port,
    podToken: env[POD_TOKEN_ENV] ?? '',
    ...(cert && key ? { tls: { cert, key } } : {}),
    ...(env[FILL_POD_TLS_ENV.ca] ? { fillPodCa: env[FILL_POD_TLS_ENV.ca] } : {}),
  };
}

/** Where a claim's disk is: disk.img in a Filesystem claim, the device itself for Block. */
export function diskPath(pod: PodEnvironment, volumeMode: TaskTarget['volumeMode']): string {
  return volumeMode === 'Block' ? pod.blockDevice : join(pod.dataDir, DISK_IMAGE);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkTarget(target: unknown): asserts target is TaskTarget {
  if (!isObject(target)) throw new Error('target is missing');
  if (target.volumeMode !== 'Filesystem' && target.volumeMode !== 'Block') throw new Error(`target.volumeMode is ${target.volumeMode}`);
  for (const key of ['sizeBytes', 'availableBytes'] as const) {
    const value = target[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      throw new Error(`target.${key} is not a byte count: ${value}`);
  }
  if (target.contentType !== 'kubevirt' && target.contentType !== 'archive') throw new Error(`target.contentType is ${target.contentType}`);
}

function checkSource(source: unknown): asserts source is Extract<CdiTask, { kind: 'import' }>['source'] {
  if (!isObject(source)) throw new Error('source is missing');
  switch (source.type) {
    case 'blank':
      return;
    case 'http':
    case 'clone':
      if (typeof source.url !== 'string' || !URL.canParse(source.url)) throw new Error(`source.url is not a URL: ${source.url}`);
      if (!/^https?:$/.test(new URL(source.url).protocol)) throw new Error(`source.url is not http or https: ${source.url}`);
      if (source.type === 'clone' && source.serverName !== undefined && (typeof source.serverName !== 'string' || !source.serverName))
        throw new Error('source.serverName is not a name');
      if (source.type === 'http' && source.extraHeaders !== undefined) {
        if (!Array.isArray(source.extraHeaders) || source.extraHeaders.some((h) => typeof h !== 'string')) {
          throw new Error('source.extraHeaders is not a list of strings');
        }
      }
      return;
    case 'registry':
      if (typeof source.file !== 'string' || !source.file) throw new Error('source.file is missing');
      return;
    default:
      throw new Error(`source.type ${source.type} is unknown`);
  }
}

/** The task in CDI_TASK, checked enough that a bad one fails with a message instead of halfway through. */
export function parseTask(text: string | undefined): CdiTask {
  if (!text) throw new Error(`${CDI_TASK_ENV} is not set`);
  let task: unknown;
  try {
    task = JSON.parse(text);
  } catch (err) {
    throw new Error(`${CDI_TASK_ENV} is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(task)) throw new Error(`${CDI_TASK_ENV} is not an object`);
  try {
    switch (task.kind) {
      case 'import':
        checkSource(task.source);
        checkTarget(task.target);
        break;
      case 'upload':
        checkTarget(task.target);
        if (task.contentType !== 'kubevirt' && task.contentType !== 'archive') throw new Error(`contentType is ${task.contentType}`);
        break;
      case 'clone-source':
        if (task.volumeMode !== 'Filesystem' && task.volumeMode !== 'Block') throw new Error(`volumeMode is ${task.volumeMode}`);
        break;
      default:
        throw new Error(`kind ${task.kind} is unknown`);
    }
  } catch (err) {
    throw new Error(`${CDI_TASK_ENV} is invalid: ${(err as Error).message}`);
  }
  return task as unknown as CdiTask;
}

/** "Name: value" lines as headers; a line without a name is a mistake in the DataVolume. */
export function parseExtraHeaders(lines: readonly string[] = []): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!name || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`extra header ${JSON.stringify(line)} is not "Name: value"`);
    headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}
