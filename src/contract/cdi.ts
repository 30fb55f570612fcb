// What crosses the boundaries of kubevirt-ts's DataVolume support: the
// annotations CDI puts on the claims it fills (virt-controller and clients
// read them too), and the pods the DataVolume controller runs (importer,
// upload server, clone source) with the task each one is given.

export const CDI_GROUP = 'cdi.kubevirt.io';
export const CDI_VERSION = 'v1beta1';
export const UPLOAD_GROUP = 'upload.cdi.kubevirt.io';
/** virt-api's webhook for DataVolume creation (the clone authorization check). */
export const DATAVOLUME_WEBHOOK_PATH = '/datavolume-validate';

/** The annotations CDI writes on a DataVolume's claim, by CDI's names. */
export const CLAIM_ANNOTATIONS = {
  /** The phase of the pod that fills the claim: Pending, Running, Succeeded, Failed. */
  podPhase: 'cdi.kubevirt.io/storage.pod.phase',
  podReady: 'cdi.kubevirt.io/storage.pod.ready',
  podRestarts: 'cdi.kubevirt.io/storage.pod.restarts',
  importPodName: 'cdi.kubevirt.io/storage.import.importPodName',
  uploadPodName: 'cdi.kubevirt.io/storage.uploadPodName',
  /** The claim waits for an upload. */
  uploadTarget: 'cdi.kubevirt.io/storage.upload.target',
  importEndpoint: 'cdi.kubevirt.io/storage.import.endpoint',
  importSource: 'cdi.kubevirt.io/storage.import.source',
  contentType: 'cdi.kubevirt.io/storage.contentType',
  cloneRequest: 'k8s.io/CloneRequest',
  /** Set by the user (virtctl --force-bind): bind and fill the claim now, without waiting for a consumer. */
  bindImmediate: 'cdi.kubevirt.io/storage.bind.immediate.requested',
  /** The scheduler's choice of node for a WaitForFirstConsumer claim. */
  selectedNode: 'volume.kubernetes.io/selected-node',
  /** Whether the fill pod's container runs ("true"/"false"), and the message and reason of its last failure. */
  running: 'cdi.kubevirt.io/storage.condition.running',
  runningMessage: 'cdi.kubevirt.io/storage.condition.running.message',
  runningReason: 'cdi.kubevirt.io/storage.condition.running.reason',
} as const;

/** The pod virt-controller runs only to have WaitForFirstConsumer claims bound where the VMI will run. */
export const EPHEMERAL_PROVISIONING_ANNOTATION = 'kubevirt.io/ephemeral-provisioning';

/** Labels on every pod the DataVolume controller runs. */
export const CDI_POD_LABELS = { app: 'containerized-data-importer', 'app.kubernetes.io/managed-by': 'kubevirt-ts-cdi' } as const;
/** The label naming the DataVolume (by UID) a pod works for. */
export const DATAVOLUME_UID_LABEL = 'cdi.kubevirt.io/datavolume-uid';

/** Where things are inside the pods the DataVolume controller runs. */
export const CDI_POD_PATHS = {
  /** A Filesystem-mode claim's mount; the disk is disk.img in it. */
  data: '/data',
  /** A Block-mode claim's device. */
  blockDevice: '/dev/cdi-block-volume',
  /** Room for a download that cannot be converted as it streams (an emptyDir). */
  scratch: '/scratch',
  /** The CA certificates of an http source's certConfigMap. */
  certs: '/certs',
  /** Where the registry source's init container leaves the image's disk. */
  registryDisk: '/scratch/registry',
  /** The static busybox the registry source's init container copies the disk with. */
  tools: '/kvts-tools',
} as const;

export const DISK_IMAGE = 'disk.img';

/**
 * The fill pod's port (HTTPS with the pod's own certificate, see
 * FILL_POD_TLS_ENV; every request but GET /progress and /healthz with the
 * pod's bearer token): GET /progress answers {"progress": 0..100}; the upload
 * server and the clone source serve here too.
 */
export const CDI_POD_PORT = 8080;
export const PROGRESS_PATH = '/progress';
/** The clone source serves the claim's disk, raw, at this path (with Range). */
export const CLONE_SOURCE_PATH = '/disk.img';
/** The upload server's paths, as CDI's upload proxy forwards them. */
export const UPLOAD_SERVER_PATHS = { sync: '/v1beta1/upload', async: '/v1beta1/upload-async', form: '/v1beta1/upload-form' } as const;

/** What a fill pod is told to do: JSON in the CDI_TASK environment variable. */
export type CdiTask =
  | { kind: 'import'; source: ImportSource; target: TaskTarget }
  | { kind: 'upload'; target: TaskTarget; contentType: 'kubevirt' | 'archive' }
  | { kind: 'clone-source'; volumeMode: 'Filesystem' | 'Block' };

export type ImportSource =
  | { type: 'http'; url: string; basicAuth?: boolean; certs?: boolean; extraHeaders?: string[] }
  | { type: 'registry'; file: string }
  | { type: 'blank' }
  /** serverName: the name the source pod's certificate must carry (fillPodServerName), checked against the fill-pod CA. */
  | { type: 'clone'; url: string; serverName?: string };

export interface TaskTarget {
  volumeMode: 'Filesystem' | 'Block';
  /** The disk's virtual size: the claim's capacity less the filesystem's overhead. */
  sizeBytes: number;
  /** The bytes the claim offers; an image larger than this cannot be imported. */
  availableBytes: number;
  contentType: 'kubevirt' | 'archive';
}

export const CDI_TASK_ENV = 'CDI_TASK';
/** A secretRef's keys (CDI's names), handed to the importer as these variables. */
export const BASIC_AUTH_ENV = { username: 'IMPORTER_ACCESS_KEY_ID', password: 'IMPORTER_SECRET_KEY' } as const;
export const SECRET_KEYS = { username: 'accessKeyId', password: 'secretKey' } as const;
/** The shared secret the upload proxy (and a clone's target) shows a fill pod, as a bearer token. */
export const POD_TOKEN_ENV = 'CDI_POD_TOKEN';

/**
 * TLS into the fill pods: cdi-controller signs each fill pod (importer,
 * upload server, clone source) a serving certificate for fillPodServerName
 * with the fill-pod CA that virt-operator keeps in FILL_POD_CA_SECRET, and
 * hands it to the pod in its environment, as CDI hands its upload server
 * TLS_CERT and TLS_KEY. A pod that calls another fill pod (a clone's
 * importer) is also given the CA bundle to check it with.
 */
export const FILL_POD_TLS_ENV = { cert: 'TLS_CERT', key: 'TLS_KEY', ca: 'CDI_FILL_POD_CA' } as const;
/** The Secret (install namespace) with the fill-pod CA: tls.crt and tls.key sign, ca-bundle is what callers trust. */
export const FILL_POD_CA_SECRET = 'kubevirt-cdi-fill-pod-ca';
export const FILL_POD_CA_FILES = { cert: 'tls.crt', key: 'tls.key', bundle: 'ca-bundle' } as const;
/** A fill pod's certificate lives a week: longer than any fill, shorter than the CA. */
export const FILL_POD_CERT_LIFETIME_MS = 7 * 24 * 3600 * 1000;
/**
 * The fill-pod CA lives four weeks and is replaced once two are left, so every
 * certificate it signs gets its full week; a replaced CA stays in the bundle
 * until it expires, after every certificate it signed.
 */
export const FILL_POD_CA_LIFETIME_MS = 4 * FILL_POD_CERT_LIFETIME_MS;
export const FILL_POD_CA_RENEW_BEFORE_MS = 2 * FILL_POD_CERT_LIFETIME_MS;
/** The name a fill pod's certificate is issued for, and callers check: not resolvable, only compared. */
export const fillPodServerName = (namespace: string, podName: string) => `${podName}.${namespace}.fill-pod.cdi.kubevirt.io`;

/** The share of a claim a filesystem keeps for itself, CDI's default. */
export const DEFAULT_FILESYSTEM_OVERHEAD = '0.06';

/** The CDIConfig's status.filesystemOverhead, as CDI writes it: the global share and one per StorageClass. */
export interface FilesystemOverheadStatus {
  global?: string;
  storageClass?: Record<string, string>;
}

/**
 * The share of a claim its filesystem keeps, read from the CDIConfig's status
 * as CDI and KubeVirt read it: none on a block device, the StorageClass's own
 * where the status has one, else the global one; CDI's default where the
 * CDIConfig has no status yet.
 */
export function filesystemOverheadFor(
  status: FilesystemOverheadStatus | undefined,
  storageClassName: string | undefined,
  volumeMode?: string,
): string {
  if (volumeMode === 'Block') return '0';
  if (!status) return DEFAULT_FILESYSTEM_OVERHEAD;
  const own = storageClassName === undefined ? undefined : status.storageClass?.[storageClassName];
  return own ?? status.global ?? DEFAULT_FILESYSTEM_OVERHEAD;
}
