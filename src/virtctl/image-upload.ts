// virtctl image-upload, as upstream's (kubevirt pkg/virtctl/imageupload): the
// same arguments and checks, the same DataVolume or PersistentVolumeClaim, the
// same waits, the upload token from upload.cdi.kubevirt.io and the upload to
// CDI's upload proxy, and the same messages. The parts that only decide
// (arguments, objects, predicates, URLs) are pure and exported for the tests;
// imageUpload() talks to the cluster and the proxy.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { posix } from 'node:path';
import { getCACertificates } from 'node:tls';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { canonicalQuantity, QuantityError } from '../api/quantity.ts';
import { CDI_GROUP, CDI_VERSION, CLAIM_ANNOTATIONS, UPLOAD_GROUP, UPLOAD_SERVER_PATHS } from '../contract/cdi.ts';
import { ApiError, readText } from '../lib/raw-request.ts';
import { UsageError } from './args.ts';
import type { Cluster } from './client.ts';
import { type Progress, type ProgressOutput, progress } from './progress.ts';

/** An error that already says what happened and what to do next: printed as it is. */
export class UploadError extends UsageError {}

// ---------------------------------------------------------------------------------------------
// Arguments

export interface ImageUploadFlags {
  insecure?: boolean;
  uploadproxyUrl?: string;
  pvcName?: string;
  pvcSize?: string;
  size?: string;
  storageClass?: string;
  accessMode?: string;
  blockVolume?: boolean;
  volumeMode?: string;
  imagePath?: string;
  archivePath?: string;
  noCreate?: boolean;
  waitSecs?: number;
  retry?: number;
  forceBind?: boolean;
  datasource?: boolean;
  defaultInstancetype?: string;
  defaultInstancetypeKind?: string;
  defaultPreference?: string;
  defaultPreferenceKind?: string;
}

/** What one image-upload does, from its arguments. */
export interface UploadPlan {
  /** dv: a DataVolume with an upload source; pvc: a bare upload-target claim. */
  kind: 'dv' | 'pvc';
  name: string;
  /** The local file: the image, or the archive with `archive`. */
  file: string;
  archive: boolean;
  size?: string;
  storageClass?: string;
  accessMode?: string;
  volumeMode?: 'block' | 'filesystem';
  noCreate: boolean;
  forceBind: boolean;
  insecure: boolean;
  uploadProxyUrl?: string;
  waitSecs: number;
  retries: number;
  dataSource: boolean;
  /** The default instance type and preference labels for the new object and the DataSource. */
  labels: Record<string, string>;
}

/** The labels that name an image's default instance type and preference (kubevirt.io/api/instancetype). */
export const DEFAULT_LABELS = {
  instancetype: 'instancetype.kubevirt.io/default-instancetype',
  instancetypeKind: 'instancetype.kubevirt.io/default-instancetype-kind',
  preference: 'instancetype.kubevirt.io/default-preference',
  preferenceKind: 'instancetype.kubevirt.io/default-preference-kind',
} as const;

/** Asks CDI's PVC-rendering webhook to apply the storage profile to a claim virtctl creates. */
export const APPLY_STORAGE_PROFILE_LABEL = 'cdi.kubevirt.io/applyStorageProfile';
/** Set when CDI fills a DataVolume's claim through a populator (then the upload goes to the claim named by pvcPrime). */
export const USE_POPULATOR_ANNOTATION = 'cdi.kubevirt.io/storage.usePopulator';
export const PVC_PRIME_ANNOTATION = 'cdi.kubevirt.io/storage.populator.pvcPrime';
/** Set on claims whose DataVolume was garbage-collected after it succeeded (older CDI). */
export const DELETE_AFTER_COMPLETION_ANNOTATION = 'cdi.kubevirt.io/storage.deleteAfterCompletion';

/** The deprecated flags, with upstream's advice. */
export const DEPRECATED_FLAGS: Record<string, string> = {
  'pvc-name': 'specify the name as the second argument instead.',
  'pvc-size': 'use --size instead.',
  'block-volume': 'specify volume mode (filesystem/block) with --volume-mode instead.',
};

/** image-upload's positional arguments and flags, checked in upstream's order with upstream's messages. */
export function parseImageUploadArgs(args: string[], flags: ImageUploadFlags): UploadPlan {
  let size = flags.size || undefined;
  if (size && flags.pvcSize && size !== flags.pvcSize) throw new UsageError('--pvc-size and --size can not be specified at the same time');
  if (flags.pvcSize) size = flags.pvcSize;

  let volumeMode = flags.volumeMode || undefined;
  if (flags.blockVolume) {
    if (!volumeMode) volumeMode = 'block';
    else if (volumeMode !== 'block') throw new UsageError(`incompatible --volume-mode '${volumeMode}' and --block-volume`);
  }
  if (volumeMode !== undefined && volumeMode !== 'block' && volumeMode !== 'filesystem')
    throw new UsageError(`Invalid volume mode '${volumeMode}'. Valid values are 'block' and 'filesystem'.`);

  if (!flags.imagePath && !flags.archivePath) throw new UsageError('either image-path or archive-path must be provided');
  if (flags.imagePath && flags.archivePath) throw new UsageError('cannot handle both image-path and archive-path, provide only one');
  const archive = Boolean(flags.archivePath);
  if (archive && volumeMode === 'block') throw new UsageError('In archive upload the volume mode should always be filesystem');

  let kind: UploadPlan['kind'];
  let name: string;
  if (flags.pvcName) {
    // The deprecated form: `--pvc-name NAME` and no arguments, always a bare claim.
    if (args.length !== 0) throw new UsageError('cannot use --pvc-name and args');
    kind = 'pvc';
    name = flags.pvcName;
  } else {
    if (args.length !== 2) throw new UsageError('expecting two args');
    const type = args[0].toLowerCase();
    if (type !== 'dv' && type !== 'pvc') throw new UsageError(`invalid resource type ${args[0]}`);
    kind = type;
    name = args[1];
  }

  if (!flags.defaultInstancetype && flags.defaultInstancetypeKind)
    throw new UsageError('--default-instancetype must be provided with --default-instancetype-kind');
  if (!flags.defaultPreference && flags.defaultPreferenceKind)
    throw new UsageError('--default-preference must be provided with --default-preference-kind');
  if ((flags.defaultInstancetype || flags.defaultPreference) && flags.noCreate)
    throw new UsageError('--default-instancetype and --default-preference cannot be used with --no-create');

  const labels: Record<string, string> = {
    ...(flags.defaultInstancetype && { [DEFAULT_LABELS.instancetype]: flags.defaultInstancetype }),
    ...(flags.defaultInstancetypeKind && { [DEFAULT_LABELS.instancetypeKind]: flags.defaultInstancetypeKind }),
    ...(flags.defaultPreference && { [DEFAULT_LABELS.preference]: flags.defaultPreference }),
    ...(flags.defaultPreferenceKind && { [DEFAULT_LABELS.preferenceKind]: flags.defaultPreferenceKind }),
  };

  return {
    kind,
    name,
    file: (flags.archivePath || flags.imagePath)!,
    archive,
    ...(size && { size }),
    ...(flags.storageClass && { storageClass: flags.storageClass }),
    ...(flags.accessMode && { accessMode: flags.accessMode }),
    ...(volumeMode && { volumeMode: volumeMode as 'block' | 'filesystem' }),
    noCreate: flags.noCreate === true,
    forceBind: flags.forceBind === true,
    insecure: flags.insecure === true,
    ...(flags.uploadproxyUrl && { uploadProxyUrl: flags.uploadproxyUrl }),
    waitSecs: flags.waitSecs ?? 300,
    retries: flags.retry ?? 5,
    dataSource: flags.datasource === true,
    labels,
  };
}

// ---------------------------------------------------------------------------------------------
// The objects virtctl creates

interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
  spec?: Record<string, unknown>;
}

export interface Claim extends KubeObject {
  status?: { phase?: string };
}

export interface DataVolume extends KubeObject {
  status?: { phase?: string; claimName?: string };
}

export interface CdiConfig {
  spec?: { uploadProxyURLOverride?: string };
  status?: { uploadProxyURL?: string };
}

export interface KubeEvent {
  involvedObject?: { kind?: string; uid?: string };
  reason?: string;
  message?: string;
}

const READ_ONLY_MANY = 'ReadOnlyMany';
const READ_ONLY_MESSAGE = 'cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany if supported';

/** resource.ParseQuantity's error, the words upstream's virtctl prints for a bad --size. */
const GO_QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/** The size as the API server stores it (canonical), or upstream's error. */
function storageQuantity(size: string | undefined): string {
  try {
    return canonicalQuantity(size ?? '');
  } catch (error) {
    if (error instanceof QuantityError) throw new UsageError(`validation failed for size=${size ?? ''}: ${GO_QUANTITY_ERROR}`);
    throw error;
  }
}

const volumeModeOf = (mode: UploadPlan['volumeMode']) => (mode === 'block' ? 'Block' : mode === 'filesystem' ? 'Filesystem' : undefined);
const contentTypeOf = (plan: UploadPlan) => (plan.archive ? 'archive' : 'kubevirt');
const nonEmpty = (map: Record<string, string>) => (Object.keys(map).length ? map : undefined);

/**
 * The DataVolume `image-upload dv` creates: an upload source, spec.storage
 * (so the storage profile fills in what is not given), the force-bind
 * annotation (present, empty) with --force-bind.
 */
export function uploadDataVolume(plan: UploadPlan, namespace: string): DataVolume {
  const storage = storageQuantity(plan.size);
  if (plan.accessMode === READ_ONLY_MANY) throw new UsageError(READ_ONLY_MESSAGE);
  const annotations = nonEmpty({ ...(plan.forceBind && { [CLAIM_ANNOTATIONS.bindImmediate]: '' }) });
  const labels = nonEmpty(plan.labels);
  const volumeMode = volumeModeOf(plan.volumeMode);
  return {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataVolume',
    metadata: { name: plan.name, namespace, ...(annotations && { annotations }), ...(labels && { labels }) },
    spec: {
      source: { upload: {} },
      contentType: contentTypeOf(plan),
      storage: {
        ...(plan.accessMode && { accessModes: [plan.accessMode] }),
        resources: { requests: { storage } },
        ...(plan.storageClass && { storageClassName: plan.storageClass }),
        ...(volumeMode && { volumeMode }),
      },
    },
  };
}

/**
 * The claim `image-upload pvc` creates: CDI's upload-target and content-type
 * annotations, ReadWriteOnce unless --access-mode says otherwise, and the
 * label that has CDI apply the storage profile.
 */
export function uploadClaim(plan: UploadPlan, namespace: string): Claim {
  if (plan.accessMode === READ_ONLY_MANY) throw new UsageError(READ_ONLY_MESSAGE);
  const storage = storageQuantity(plan.size);
  const volumeMode = volumeModeOf(plan.volumeMode);
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: plan.name,
      namespace,
      annotations: {
        [CLAIM_ANNOTATIONS.uploadTarget]: '',
        [CLAIM_ANNOTATIONS.contentType]: contentTypeOf(plan),
        ...(plan.forceBind && { [CLAIM_ANNOTATIONS.bindImmediate]: '' }),
      },
      labels: { [APPLY_STORAGE_PROFILE_LABEL]: 'true', ...plan.labels },
    },
    spec: {
      accessModes: [plan.accessMode ?? 'ReadWriteOnce'],
      resources: { requests: { storage } },
      ...(plan.storageClass && { storageClassName: plan.storageClass }),
      ...(volumeMode && { volumeMode }),
    },
  };
}

/** The UploadTokenRequest upstream's virtctl sends; the answer's status.token authorizes one upload to the claim. */
export const uploadTokenRequest = (name: string) => ({
  apiVersion: `${UPLOAD_GROUP}/${CDI_VERSION}`,
  kind: 'UploadTokenRequest',
  metadata: { generateName: 'token-for-virtctl-' },
  spec: { pvcName: name },
});

/** The DataSource --datasource creates (or makes point at the upload's claim). */
export function dataSourceFor(plan: UploadPlan, namespace: string, existing?: KubeObject): KubeObject {
  if (existing) {
    const spec = existing.spec ?? {};
    const source = (spec.source ?? {}) as Record<string, unknown>;
    return {
      ...existing,
      metadata: { ...existing.metadata, labels: { ...existing.metadata.labels, ...plan.labels } },
      spec: { ...spec, source: { ...source, pvc: { name: plan.name, namespace } } },
    };
  }
  return {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataSource',
    metadata: { name: plan.name, namespace, ...(nonEmpty(plan.labels) && { labels: plan.labels }) },
    spec: { source: { pvc: { name: plan.name, namespace } } },
  };
}

// ---------------------------------------------------------------------------------------------
// Predicates

/** Go's strconv.ParseBool, true side: how upstream reads the pod-ready annotation. */
export const goTrue = (text: string | undefined) => ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text ?? '');

const annotation = (object: { metadata: Meta }, key: string) => object.metadata.annotations?.[key];

/** A bare claim is ready for the upload when CDI says its upload server pod is ready. */
export const claimUploadReady = (claim: Claim) => goTrue(annotation(claim, CLAIM_ANNOTATIONS.podReady));

/** The fill pod succeeded: the upload was processed (converted, resized) and the disk is complete. */
export const claimProcessingDone = (claim: Claim) => annotation(claim, CLAIM_ANNOTATIONS.podPhase) === 'Succeeded';

/**
 * Whether a DataVolume takes the upload now: its phase is UploadReady. A
 * DataVolume that waits for a consumer (or for its populator) never gets
 * there by itself, so without --force-bind that is an error at once.
 */
export function dataVolumeUploadReady(dv: DataVolume, forceBind: boolean): boolean {
  const phase = dv.status?.phase ?? '';
  if ((phase === 'WaitForFirstConsumer' || phase === 'PendingPopulation') && !forceBind)
    throw new UploadError(`cannot upload to DataVolume in ${phase} phase, make sure the PVC is Bound, or use force-bind flag`);
  return phase === 'UploadReady';
}

/**
 * Why an existing claim cannot take this upload, as upstream decides it; the
 * claim is the one the upload goes to (a DataVolume's populator claim).
 */
export function existingClaimProblem(claim: Claim, plan: UploadPlan): string | undefined {
  const name = plan.name;
  if (annotation(claim, CLAIM_ANNOTATIONS.podPhase) === 'Succeeded') return `PVC ${name} already successfully imported/cloned/updated`;
  if (!plan.noCreate && annotation(claim, CLAIM_ANNOTATIONS.uploadTarget) === undefined)
    return `PVC ${name} not available for upload: it exists and is no upload target; pass --no-create to upload into it anyway, or choose another name`;
  if (plan.archive && annotation(claim, CLAIM_ANNOTATIONS.contentType) !== 'archive')
    return `PVC ${name} doesn't have archive contentType annotation: upload an image with --image-path, or upload the archive to a new ${plan.kind}`;
  return undefined;
}

const OPTIMISTIC_LOCK_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

/** The failure an event reports for the claim or the DataVolume being waited on (upstream checks these two reasons). */
export function eventFailure(events: KubeEvent[], claimUid: string | undefined, dvUid: string | undefined): string | undefined {
  for (const event of events) {
    const { kind, uid } = event.involvedObject ?? {};
    if (kind === 'PersistentVolumeClaim' && claimUid && uid === claimUid && event.reason === 'ProvisioningFailed')
      if (!event.message?.includes(OPTIMISTIC_LOCK_MESSAGE)) return `Provisioning failed: ${event.message ?? ''}`;
    if (kind === 'DataVolume' && dvUid && uid === dvUid && event.reason === 'ErrClaimNotValid')
      return `Claim not valid: ${event.message ?? ''}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// URLs

/** The proxy's address from CDIConfig: the override an administrator set, else what CDI found (an Ingress or Route). */
export const configuredProxyUrl = (config: CdiConfig) => config.spec?.uploadProxyURLOverride || config.status?.uploadProxyURL || undefined;

/** An address without a scheme is https (CDI's status.uploadProxyURL is a bare host name). */
export const withScheme = (url: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`);

/**
 * The upload URL on the proxy: the address with the upload path joined to
 * its path, unless the address already holds that path (upstream's rule).
 */
export function uploadUrl(proxyUrl: string, async: boolean): string {
  const uri = async ? UPLOAD_SERVER_PATHS.async : UPLOAD_SERVER_PATHS.sync;
  let url: URL;
  try {
    url = new URL(proxyUrl);
  } catch {
    throw new UploadError(`invalid upload proxy URL ${JSON.stringify(proxyUrl)}: pass --uploadproxy-url https://HOST[:PORT]`);
  }
  if (proxyUrl.includes(uri)) return url.toString();
  url.pathname = posix.join(url.pathname, uri);
  return url.toString();
}

/** The error for an upload that failed after every attempt. */
export const retriesExhausted = (retries: number, last: string) => `error uploading image after ${retries} retries: ${last}`;

// ---------------------------------------------------------------------------------------------
// Talking to the proxy

/** How the proxy's certificate is checked: not at all with --insecure, else against the system's CAs (as Go's default client). */
export function proxyTls(insecure: boolean): RequestOptions {
  if (insecure) return { rejectUnauthorized: false };
  return { ca: [...new Set([...getCACertificates('system'), ...getCACertificates('default')])] };
}

/** http for an http:// proxy address (upstream allows it), https otherwise; the TLS options are ignored over http. */
const sendTo = (url: URL): typeof httpsRequest => (url.protocol === 'http:' ? (httpRequest as typeof httpsRequest) : httpsRequest);

/** HEAD on the async upload path: 200 means the proxy takes async uploads (answered once the bytes are in). */
function supportsAsync(url: string, token: string, tls: RequestOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const req = sendTo(target)(target, { ...tls, method: 'HEAD', agent: false, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

interface Answer {
  code: number;
  body: string;
}

/** POSTs the file, streamed from disk; resolves with the proxy's answer. */
function postFile(
  url: string,
  token: string,
  tls: RequestOptions,
  file: string,
  size: number,
  sent: (bytes: number) => void,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const source = createReadStream(file);
    let answered = false;
    const req = sendTo(target)(
      target,
      {
        ...tls,
        method: 'POST',
        agent: false,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
      },
      (res: IncomingMessage) => {
        answered = true;
        readText(res).then((body) => {
          source.destroy();
          resolve({ code: res.statusCode ?? 0, body });
        }, reject);
      },
    );
    req.on('error', (error) => {
      source.destroy();
      if (!answered) reject(new Error(`POST ${url}: ${error.message}`));
    });
    source.on('error', (error) => {
      req.destroy();
      reject(new Error(`reading ${file}: ${error.message}`));
    });
    source.on('data', (chunk) => sent(chunk.length));
    source.pipe(req);
  });
}

/** What to try when the proxy cannot be reached or not trusted. */
function connectionHint(message: string): string {
  if (/certificate|self[- ]signed|unable to verify|CERT_|SSL|TLS/i.test(message))
    return `${message}: the upload proxy's certificate is not trusted; add its CA to the system's trust store (or NODE_EXTRA_CA_CERTS), or pass --insecure`;
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT/.test(message))
    return `${message}: the upload proxy cannot be reached from here; check --uploadproxy-url (or CDIConfig config's uploadProxyURLOverride), e.g. port-forward it with kubectl port-forward -n <its namespace> service/cdi-uploadproxy 8443:443 and pass --uploadproxy-url https://127.0.0.1:8443 --insecure`;
  return message;
}

// ---------------------------------------------------------------------------------------------
// The command

/** What image-upload needs of the cluster connection (./client.ts's Cluster). */
export type KubeRequests = Pick<Cluster, 'namespace' | 'request'>;

export interface UploadIo {
  /** A line for stdout. */
  out(line: string): void;
  /** Where the progress goes (stdout); a TTY gets a bar. */
  progressOutput: ProgressOutput;
  /** How often the waits look at the DataVolume or claim (upstream: 2 s; a quarter second here, as it costs one GET). */
  pollMs?: number;
  /** How long to wait for processing after the upload (24 h as upstream). */
  processingTimeoutMs?: number;
  /** The pause before a retry (upstream: up to attempt × 50 ms). */
  retryDelayMs?: (attempt: number) => number;
  progress?: (output: ProgressOutput) => Progress;
}

const CORE = '/api/v1';
const CDI = `/apis/${CDI_GROUP}/${CDI_VERSION}`;
const claimPath = (ns: string, name: string) => `${CORE}/namespaces/${ns}/persistentvolumeclaims/${name}`;
const dataVolumePath = (ns: string, name = '') => `${CDI}/namespaces/${ns}/datavolumes${name && `/${name}`}`;
const dataSourcePath = (ns: string, name = '') => `${CDI}/namespaces/${ns}/datasources${name && `/${name}`}`;
const isNotFound = (error: unknown) => error instanceof ApiError && error.code === 404;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nsFlag = (ns: string) => (ns === 'default' ? '' : ` -n ${ns}`);

/** The server's words for an API refusal, and what to do next when that is known. */
function apiFailure(error: unknown, hint?: string): Error {
  if (!(error instanceof ApiError)) return error as Error;
  if (error.code === 403 && !hint)
    hint = 'ask an administrator for the rights to DataVolumes, PersistentVolumeClaims and uploadtokenrequests';
  return new UploadError(hint ? `${error.status}: ${hint}` : error.status);
}

/**
 * Upstream's wait: check now, then every interval, until the condition holds
 * or the time is up; an error from the condition ends it.
 */
async function poll(intervalMs: number, timeoutMs: number, condition: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(intervalMs, left));
  }
}

/** Uploads plan.file to the DataVolume or claim plan.name, creating it first unless --no-create. */
export async function imageUpload(cluster: KubeRequests, plan: UploadPlan, io: UploadIo): Promise<void> {
  const ns = cluster.namespace;
  const pollMs = io.pollMs ?? 250;

  // The file first, as upstream opens it before anything else.
  let size: number;
  try {
    const handle = await open(plan.file, 'r');
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new Error('is a directory');
      size = stat.size;
    } finally {
      await handle.close();
    }
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message;
    throw new UploadError(`open ${plan.file}: ${reason}`);
  }

  // An existing claim (for dv: the DataVolume's), or a new object.
  const existing = await existingUploadClaim(cluster, plan, io);
  if (existing) {
    let claim = existing;
    if (annotation(claim, CLAIM_ANNOTATIONS.uploadTarget) === undefined) {
      claim = {
        ...claim,
        metadata: { ...claim.metadata, annotations: { ...claim.metadata.annotations, [CLAIM_ANNOTATIONS.uploadTarget]: '' } },
      };
      try {
        claim = await cluster.request<Claim>('PUT', claimPath(claim.metadata.namespace ?? ns, claim.metadata.name!), claim);
      } catch (error) {
        throw apiFailure(error);
      }
    }
    io.out(`Using existing PVC ${ns}/${claim.metadata.name}`);
  } else {
    if (!plan.size) throw new UploadError('when creating a resource, the size must be specified');
    const object = plan.kind === 'pvc' ? uploadClaim(plan, ns) : uploadDataVolume(plan, ns);
    if (plan.storageClass) {
      try {
        await cluster.request('GET', `/apis/storage.k8s.io/v1/storageclasses/${plan.storageClass}`);
      } catch (error) {
        throw apiFailure(error, isNotFound(error) ? 'list the storage classes with kubectl get storageclass' : undefined);
      }
    }
    let created: Claim | DataVolume;
    try {
      created = await cluster.request<Claim>(
        'POST',
        plan.kind === 'pvc' ? `${CORE}/namespaces/${ns}/persistentvolumeclaims` : dataVolumePath(ns),
        object,
      );
    } catch (error) {
      throw apiFailure(
        error,
        isNotFound(error) && plan.kind === 'dv'
          ? 'DataVolumes (cdi.kubevirt.io) are not served: install CDI, or upload to a bare claim with image-upload pvc'
          : undefined,
      );
    }
    io.out(
      `${plan.kind === 'pvc' ? 'PersistentVolumeClaim' : 'DataVolume'} ${created.metadata.namespace ?? ns}/${created.metadata.name ?? plan.name} created`,
    );
  }

  // Until the upload server takes data.
  const ready =
    plan.kind === 'pvc' ? await waitClaimReady(cluster, plan, io, pollMs) : await waitDataVolumeReady(cluster, plan, io, pollMs);
  if (!ready.done)
    throw new UploadError(
      `timed out after ${plan.waitSecs}s waiting for ${ready.what}: see why with kubectl describe ${plan.kind} ${plan.name}${nsFlag(ns)} (and its upload pod), or wait longer with --wait-secs`,
    );

  let proxyUrl = plan.uploadProxyUrl;
  if (!proxyUrl) {
    let config: CdiConfig;
    try {
      config = await cluster.request<CdiConfig>('GET', `${CDI}/cdiconfigs/config`);
    } catch (error) {
      throw apiFailure(error, isNotFound(error) ? 'no CDIConfig named config: pass the upload proxy with --uploadproxy-url' : undefined);
    }
    proxyUrl = configuredProxyUrl(config);
    if (!proxyUrl)
      throw new UploadError(
        'uploadproxy URL not found: pass --uploadproxy-url (e.g. after kubectl port-forward -n <its namespace> service/cdi-uploadproxy 8443:443, --uploadproxy-url https://127.0.0.1:8443 --insecure), or have an administrator set spec.uploadProxyURLOverride in CDIConfig config',
      );
  }
  proxyUrl = withScheme(proxyUrl);
  uploadUrl(proxyUrl, false); // a malformed address fails here, before a token is asked for
  io.out(`Uploading data to ${proxyUrl}`);

  const token = await uploadToken(cluster, plan.name);
  await uploadData(cluster, plan, io, proxyUrl, token, size);

  if (plan.dataSource) await ensureDataSource(cluster, plan, io);

  io.out('Uploading data completed successfully, waiting for processing to complete, you can hit ctrl-c without interrupting the progress');
  try {
    const done = await poll(pollMs, io.processingTimeoutMs ?? 24 * 3600_000, async () => {
      const claim = await cluster.request<Claim>('GET', claimPath(ns, plan.name));
      if (!claimProcessingDone(claim)) return false;
      io.out('Processing completed successfully');
      return true;
    });
    if (!done) throw new UploadError(`processing of PVC ${ns}/${plan.name} did not complete in time`);
  } catch (error) {
    io.out('Timed out waiting for post upload processing to complete, please check upload pod status for progress');
    throw apiFailure(error);
  }
  io.out(`Uploading ${plan.file} completed successfully`);
}

/** The claim to upload to when it exists and may take the upload; undefined when it is to be created. */
async function existingUploadClaim(cluster: KubeRequests, plan: UploadPlan, io: UploadIo): Promise<Claim | undefined> {
  const ns = cluster.namespace;
  let claim: Claim;
  try {
    claim = await cluster.request<Claim>('GET', claimPath(ns, plan.name));
  } catch (error) {
    if (!isNotFound(error)) throw apiFailure(error);
    io.out(`PVC ${ns}/${plan.name} not found `);
    if (plan.noCreate)
      throw apiFailure(
        error,
        `nothing to upload to: create the ${plan.kind === 'dv' ? 'DataVolume' : 'PVC'} first, or drop --no-create and pass --size`,
      );
    return undefined;
  }
  if (plan.kind === 'dv') claim = await dataVolumeClaim(cluster, plan, claim);
  const problem = existingClaimProblem(claim, plan);
  if (problem) throw new UploadError(problem);
  return claim;
}

/** For dv: the claim the DataVolume's upload goes to (its populator's claim when it has one). */
async function dataVolumeClaim(cluster: KubeRequests, plan: UploadPlan, claim: Claim): Promise<Claim> {
  const ns = claim.metadata.namespace ?? cluster.namespace;
  let dv: DataVolume;
  try {
    dv = await cluster.request<DataVolume>('GET', dataVolumePath(ns, plan.name));
  } catch (error) {
    if (!isNotFound(error)) throw apiFailure(error);
    if (annotation(claim, DELETE_AFTER_COMPLETION_ANNOTATION) === 'true' && annotation(claim, CLAIM_ANNOTATIONS.podPhase) === 'Succeeded')
      throw new UploadError(`DataVolume already garbage-collected: Assuming PVC ${ns}/${plan.name} is successfully populated`);
    throw new UploadError(
      `No DataVolume is associated with the existing PVC ${ns}/${plan.name}: upload to the claim itself with image-upload pvc ${plan.name} --no-create`,
    );
  }
  if (annotation(dv, USE_POPULATOR_ANNOTATION) !== 'true') return claim;
  if (claim.status?.phase === 'Bound') throw new UploadError(`PVC ${plan.name} already successfully populated`);
  const prime = annotation(claim, PVC_PRIME_ANNOTATION);
  if (!prime) throw new UploadError(`Unable to get PVC Prime name from PVC ${ns}/${plan.name}`);
  try {
    return await cluster.request<Claim>('GET', claimPath(ns, prime));
  } catch {
    throw new UploadError(`Unable to get PVC Prime ${ns}/${plan.name}`);
  }
}

/** A failure the events report for the claim or the DataVolume, thrown; upstream looks up both by name for their UIDs. */
/** The namespace's events are listed at most this often while a wait polls faster. */
const EVENTS_EVERY_MS = 2000;

/** checkEvents, at most once per EVENTS_EVERY_MS. */
function eventChecker(cluster: KubeRequests): (claimName: string | undefined, dvName: string | undefined) => Promise<void> {
  let last = Number.NEGATIVE_INFINITY;
  return async (claimName, dvName) => {
    if (Date.now() - last < EVENTS_EVERY_MS) return;
    last = Date.now();
    await checkEvents(cluster, claimName, dvName);
  };
}

async function checkEvents(cluster: KubeRequests, claimName: string | undefined, dvName: string | undefined): Promise<void> {
  const ns = cluster.namespace;
  const uidOf = async (path: string) => {
    try {
      return (await cluster.request<{ metadata: Meta }>('GET', path)).metadata.uid;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw apiFailure(error);
    }
  };
  let events: KubeEvent[];
  try {
    events = (await cluster.request<{ items: KubeEvent[] }>('GET', `${CORE}/namespaces/${ns}/events`)).items ?? [];
  } catch (error) {
    throw apiFailure(error);
  }
  const claimUid = claimName ? await uidOf(claimPath(ns, claimName)) : undefined;
  const dvUid = dvName ? await uidOf(dataVolumePath(ns, dvName)) : undefined;
  const failure = eventFailure(events, claimUid, dvUid);
  if (failure)
    throw new UploadError(`${failure}: fix the storage request (--storage-class, --access-mode, --volume-mode, --size) and try again`);
}

interface Waited {
  done: boolean;
  what: string;
}

/** pvc: until the claim's upload pod is ready. */
async function waitClaimReady(cluster: KubeRequests, plan: UploadPlan, io: UploadIo, pollMs: number): Promise<Waited> {
  let logged = false;
  const events = eventChecker(cluster);
  const done = await poll(pollMs, plan.waitSecs * 1000, async () => {
    let claim: Claim;
    try {
      claim = await cluster.request<Claim>('GET', claimPath(cluster.namespace, plan.name));
    } catch (error) {
      if (isNotFound(error)) return false;
      throw apiFailure(error);
    }
    const ready = claimUploadReady(claim);
    if (!ready) {
      await events(plan.name, plan.name);
      if (!logged) io.out(`Waiting for PVC ${plan.name} upload pod to be ready...`);
      logged = true;
    } else if (logged) io.out('Pod now ready');
    return ready;
  });
  return { done, what: `the upload pod of PVC ${cluster.namespace}/${plan.name} to be ready` };
}

/** dv: until the DataVolume is UploadReady. */
async function waitDataVolumeReady(cluster: KubeRequests, plan: UploadPlan, io: UploadIo, pollMs: number): Promise<Waited> {
  let logged = false;
  let phase = '';
  const events = eventChecker(cluster);
  const done = await poll(pollMs, plan.waitSecs * 1000, async () => {
    let dv: DataVolume;
    try {
      dv = await cluster.request<DataVolume>('GET', dataVolumePath(cluster.namespace, plan.name));
    } catch (error) {
      if (!isNotFound(error)) throw apiFailure(error);
      io.out(`DV ${plan.name} not found... `);
      return false;
    }
    phase = dv.status?.phase ?? '';
    const ready = dataVolumeUploadReady(dv, plan.forceBind);
    if (!ready) {
      await events(dv.status?.claimName, plan.name);
      if (!logged) io.out(`Waiting for PVC ${plan.name} upload pod to be ready...`);
      logged = true;
    } else if (logged) io.out('Pod now ready');
    return ready;
  });
  return { done, what: `DataVolume ${cluster.namespace}/${plan.name} to be UploadReady (its phase: ${phase || 'none yet'})` };
}

/** A token for one upload to the claim, from upload.cdi.kubevirt.io. */
async function uploadToken(cluster: KubeRequests, name: string): Promise<string> {
  let answer: { status?: { token?: string } };
  try {
    answer = await cluster.request(
      'POST',
      `/apis/${UPLOAD_GROUP}/${CDI_VERSION}/namespaces/${cluster.namespace}/uploadtokenrequests`,
      uploadTokenRequest(name),
    );
  } catch (error) {
    throw apiFailure(
      error,
      isNotFound(error)
        ? 'the upload.cdi.kubevirt.io API is not served: is CDI (or the upload support of kubevirt-ts) installed and its API service available? (kubectl get apiservice v1beta1.upload.cdi.kubevirt.io)'
        : undefined,
    );
  }
  const token = answer?.status?.token;
  if (!token)
    throw new UploadError('the upload token request was answered without status.token: check the upload.cdi.kubevirt.io API service');
  return token;
}

/** The upload, with upstream's retries: a 401 on the first attempt is fatal, a later one gets a new token (3 times at most). */
async function uploadData(
  cluster: KubeRequests,
  plan: UploadPlan,
  io: UploadIo,
  proxyUrl: string,
  firstToken: string,
  size: number,
): Promise<void> {
  const tls = proxyTls(plan.insecure);
  const shown = (io.progress ?? progress)(io.progressOutput);
  const attempts = Math.max(1, plan.retries);
  const delay = io.retryDelayMs ?? ((attempt: number) => attempt * Math.floor(Math.random() * 50));
  let token = firstToken;
  let refreshes = 3;
  let last = '';
  io.out('');
  shown.start(size);
  try {
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        shown.restart(`Upload failed (${last}), retrying (attempt ${attempt + 1} of ${attempts})`);
        await sleep(delay(attempt));
      }
      const url = (await supportsAsync(uploadUrl(proxyUrl, true), token, tls)) ? uploadUrl(proxyUrl, true) : uploadUrl(proxyUrl, false);
      let answer: Answer;
      try {
        answer = await postFile(url, token, tls, plan.file, size, (bytes) => shown.add(bytes));
      } catch (error) {
        last = connectionHint((error as Error).message);
        continue;
      }
      if (answer.code === 200) return;
      last = `unexpected return value ${answer.code}, ${answer.body}`;
      if (answer.code === 401) {
        // A 401 at once is a bad token, not an expired one.
        if (attempt === 0 || refreshes === 0)
          throw new UploadError(
            `authentication failed: ${last}: the upload proxy refused the token; check that the proxy belongs to this cluster`,
          );
        token = await uploadToken(cluster, plan.name);
        refreshes--;
      }
    }
    throw new UploadError(retriesExhausted(attempts, last));
  } finally {
    shown.stop();
    io.out('');
  }
}

/** --datasource: a DataSource named like the upload pointing at its claim, created or updated. */
async function ensureDataSource(cluster: KubeRequests, plan: UploadPlan, io: UploadIo): Promise<void> {
  const ns = cluster.namespace;
  let existing: KubeObject | undefined;
  try {
    existing = await cluster.request<KubeObject>('GET', dataSourcePath(ns, plan.name));
  } catch (error) {
    if (!isNotFound(error)) throw apiFailure(error);
  }
  try {
    if (existing) {
      await cluster.request('PUT', dataSourcePath(existing.metadata.namespace ?? ns, plan.name), dataSourceFor(plan, ns, existing));
      io.out(`Updated an existing DataSource ${existing.metadata.namespace ?? ns}/${plan.name}`);
    } else {
      await cluster.request('POST', dataSourcePath(ns), dataSourceFor(plan, ns));
      io.out(`Created a new DataSource ${ns}/${plan.name}`);
    }
  } catch (error) {
    throw apiFailure(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Registration

const unsigned = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a non-negative integer');
  return Number(value);
};

/** main.ts's wrapper: connects, runs the action, prints an error with what to do next. */
type Runner = (
  action: (cluster: Cluster, cmd: Command, ...args: (string | undefined)[]) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

const EXAMPLES = `
Examples:
  # Upload a local disk image to a newly created DataVolume:
  virtctl image-upload dv fedora-dv --size=10Gi --image-path=/images/fedora30.qcow2

  # Upload a local disk image to an existing DataVolume
  virtctl image-upload dv fedora-dv --no-create --image-path=/images/fedora30.qcow2

  # Upload a local disk image to a newly created PersistentVolumeClaim
  virtctl image-upload pvc fedora-pvc --size=10Gi --image-path=/images/fedora30.qcow2

  # Upload a local disk image to an existing PersistentVolumeClaim
  virtctl image-upload pvc fedora-pvc --no-create --image-path=/images/fedora30.qcow2

  # Upload to a DataVolume with explicit URL to CDI Upload Proxy
  virtctl image-upload dv fedora-dv --uploadproxy-url=https://cdi-uploadproxy.mycluster.com --image-path=/images/fedora30.qcow2

  # Upload a local disk archive to a newly created DataVolume:
  virtctl image-upload dv fedora-dv --size=10Gi --archive-path=/images/fedora30.tar`;

/** Adds `image-upload` to virtctl. */
export function addImageUploadCommand(program: Command, run: Runner): void {
  program
    .command('image-upload')
    .argument('[type]', 'dv or pvc')
    .argument('[name]', 'the DataVolume or PersistentVolumeClaim')
    .description('Upload a VM image to a DataVolume/PersistentVolumeClaim.')
    .option('--insecure', 'Allow insecure server connections when using HTTPS.')
    .option('--uploadproxy-url <url>', 'The URL of the cdi-upload proxy service.')
    .addOption(new Option('--pvc-name <name>', 'The destination DataVolume/PVC name.').hideHelp())
    .addOption(new Option('--pvc-size <size>', 'The size of the PVC to create (ex. 10Gi, 500Mi).').hideHelp())
    .option('--size <size>', 'The size of the DataVolume to create (ex. 10Gi, 500Mi).')
    .option('--storage-class <name>', 'The storage class for the PVC.')
    .option('--access-mode <mode>', 'The access mode for the PVC.')
    .addOption(new Option('--block-volume', 'Create a PVC with VolumeMode=Block.').hideHelp())
    .option(
      '--volume-mode <mode>',
      'Specify the VolumeMode (block/filesystem) used to create the PVC. Default is the storageProfile default. For archive upload default is filesystem.',
    )
    .option('--image-path <path>', 'Path to the local VM image.')
    .option('--archive-path <path>', 'Path to the local archive.')
    .option('--no-create', "Don't attempt to create a new DataVolume/PVC.")
    .option('--wait-secs <seconds>', 'Seconds to wait for upload pod to start.', unsigned, 300)
    .option('--retry <count>', 'When upload server returns a transient error, we retry this number of times before giving up', unsigned, 5)
    .option('--force-bind', 'Force bind the PVC, ignoring the WaitForFirstConsumer logic.')
    .option('--datasource', 'Create a DataSource pointing to the created DataVolume/PVC.')
    .option('--default-instancetype <name>', 'The default instance type to associate with the image.')
    .option('--default-instancetype-kind <kind>', 'The default instance type kind to associate with the image.')
    .option('--default-preference <name>', 'The default preference to associate with the image.')
    .option('--default-preference-kind <kind>', 'The default preference kind to associate with the image.')
    .addHelpText('after', EXAMPLES)
    .action(
      run(async (cluster, cmd, type, name) => {
        const o = cmd.opts();
        for (const [flag, advice] of Object.entries(DEPRECATED_FLAGS))
          if (cmd.getOptionValueSource(flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())) === 'cli')
            process.stderr.write(`Flag --${flag} has been deprecated, ${advice}\n`);
        const plan = parseImageUploadArgs(
          [type, name].filter((a): a is string => a !== undefined),
          {
            ...o,
            noCreate: o.create === false,
          } as ImageUploadFlags,
        );
        await imageUpload(cluster, plan, { out: (line) => process.stdout.write(`${line}\n`), progressOutput: process.stdout });
      }),
    );
}
