// What the DataVolume controller does about one DataVolume, decided from the
// caches alone: the claim to create, the pod that fills it (importer or upload
// server), the annotations that remember how far it got, and the status CDI
// would write. Pure: ./datavolume-controller.ts carries the plan out.
import type { V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { parseQuantity, quantityValue } from '../api/quantity.ts';
import type { DataVolume, DataVolumeStatus } from '../api/types.ts';
import {
  BASIC_AUTH_ENV,
  CDI_GROUP,
  CDI_POD_LABELS,
  CDI_POD_PATHS,
  CDI_POD_PORT,
  CDI_TASK_ENV,
  CLAIM_ANNOTATIONS as A,
  type CdiTask,
  DATAVOLUME_UID_LABEL,
  DEFAULT_FILESYSTEM_OVERHEAD,
  fillPodServerName,
  type ImportSource,
  POD_TOKEN_ENV,
  PROGRESS_PATH,
  CLONE_SOURCE_PATH,
  SECRET_KEYS,
  type TaskTarget,
} from '../contract/cdi.ts';
import type { ProcessName } from '../contract/process-names.ts';

type Condition = NonNullable<DataVolumeStatus['conditions']>[number];
type Phase =
  | 'Pending'
  | 'CloneScheduled'
  | 'CloneInProgress'
  | 'WaitForFirstConsumer'
  | 'ImportScheduled'
  | 'ImportInProgress'
  | 'UploadScheduled'
  | 'UploadReady'
  | 'Succeeded'
  | 'Failed';

export interface DataVolumeInput {
  dv: DataVolume;
  claim?: V1PersistentVolumeClaim;
  /** The pod filling the claim, if one runs. */
  pod?: V1Pod;
  /** The claim's StorageClass (or the default one when the DataVolume names none). */
  storageClass?: V1StorageClass;
  /** A clone's source: its claim, and the pod that serves it to the clone's importer. */
  cloneSource?: { claim?: V1PersistentVolumeClaim; pod?: V1Pod };
  /** The fill pod's last reported progress, 0..100. */
  progress?: number;
  /** The fill pod said its work is complete (the disk written through), which its exit 0 will say again. */
  fillComplete?: boolean;
  /** The secret the fill pod asks of its callers (the upload proxy). */
  podToken: string;
  now: string;
  params: FillPodParams;
}

export interface FillPodParams {
  /** The image the fill pods run: the virt-launcher image (Node, qemu-img). */
  image: string;
  imagePullPolicy: string;
  filesystemOverhead?: string;
}

export interface DataVolumePlan {
  createClaim?: V1PersistentVolumeClaim;
  /**
   * The fill pod to create. Every pod a plan asks for serves HTTPS with a
   * certificate for its own name, which the executor issues and adds
   * (issuing is neither pure nor deterministic).
   */
  createPod?: V1Pod;
  /** The fill pod calls another fill pod (a clone's importer, its source): the executor gives it the fill-pod CA bundle too. */
  createPodTrustsFillPods?: true;
  /** The pod (by name) to delete: its work is done, or the DataVolume is going away. */
  deletePod?: string;
  /** Annotations to add to the claim. */
  annotateClaim?: Record<string, string>;
  status: DataVolumeStatus;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
  /** Ask the fill pod for its progress. */
  pollProgress: boolean;
  /** A clone's source pod (in the source's namespace, so not owned by the DataVolume) to create, or to remove once done. */
  createSourcePod?: V1Pod;
  deleteSourcePod?: { namespace: string; name: string };
  /** Look again after this long: what the plan waits for (a clone's source) sends no event here. */
  requeueAfterMs?: number;
}

/** On a clone's source pod: the DataVolume (namespace/name) it serves. */
export const CLONE_TARGET_ANNOTATION = 'cdi.kubevirt.io/clone-target';

const PHASE_EVENTS: Partial<Record<Phase, { type: 'Normal' | 'Warning'; message: (claim: string) => string }>> = {
  ImportScheduled: { type: 'Normal', message: (c) => `Import into ${c} scheduled` },
  ImportInProgress: { type: 'Normal', message: (c) => `Import into ${c} in progress` },
  CloneScheduled: { type: 'Normal', message: (c) => `Cloning into ${c} scheduled` },
  CloneInProgress: { type: 'Normal', message: (c) => `Cloning into ${c} in progress` },
  UploadScheduled: { type: 'Normal', message: (c) => `Upload into ${c} scheduled` },
  UploadReady: { type: 'Normal', message: (c) => `Upload into ${c} ready` },
};

const COMPLETE: Record<SourceKind, string> = {
  import: 'Import Complete',
  clone: 'Clone Complete',
  upload: 'Upload Complete',
  unsupported: '',
};

/**
 * Whether a clone can start: its source claim must exist and be filled
 * (a DataVolume's claim is filled once its pod succeeded), and its source pod
 * serve it. Until then, what is missing.
 */
function waitForCloneSource(
  input: DataVolumeInput,
):
  | { wait: true; message?: string; event?: DataVolumePlan['events'][number]; createSourcePod?: V1Pod }
  | { wait: false; source: CloneFrom } {
  const { dv } = input;
  const ref = dv.spec.source!.pvc!;
  const source = input.cloneSource?.claim;
  if (!source) {
    const message = `The source pvc ${ref.name} doesn't exist`;
    return {
      wait: true,
      message,
      event:
        dv.status?.conditions?.find((c) => c.type === 'Running')?.message === message
          ? undefined
          : { type: 'Warning', reason: 'CloneWithoutSource', message },
    };
  }
  const annotations = source.metadata?.annotations ?? {};
  const filledByCdi = annotations[A.importSource] !== undefined || annotations[A.uploadTarget] !== undefined;
  if ((filledByCdi && annotations[A.podPhase] !== 'Succeeded') || source.status?.phase !== 'Bound')
    return { wait: true, message: `The source pvc ${ref.name} is not ready yet` };
  const pod = input.cloneSource?.pod;
  if (!pod) return { wait: true, createSourcePod: cloneSourcePod(dv, source, input.params, input.podToken) };
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  if (!ready || !pod.status?.podIP) return { wait: true };
  return {
    wait: false,
    source: {
      url: `https://${pod.status.podIP}:${CDI_POD_PORT}${CLONE_SOURCE_PATH}`,
      serverName: fillPodServerName(pod.metadata!.namespace!, pod.metadata!.name!),
    },
  };
}

/** CDI tells a user only that the claim is too small, whatever the tool said. */
const TOO_SMALL =
  /is larger than the reported available|no space left on device|file largest block is bigger than maxblock|disk quota exceeded/i;
export const failureMessage = (message: string) => (TOO_SMALL.test(message) ? 'DataVolume too small to contain image' : message);

type SourceKind = 'import' | 'clone' | 'upload' | 'unsupported';

function sourceKind(dv: DataVolume): SourceKind {
  const s = dv.spec.source ?? {};
  if (s.http || s.registry || s.blank) return 'import';
  if (s.upload) return 'upload';
  if (s.pvc) return 'clone';
  return 'unsupported';
}

/** A fill pod's name: at most a DNS label's 63 characters (it is also the pod's hostname), not ending in '-' or '.'. */
const fillPodNameFrom = (name: string) => name.slice(0, 63).replace(/[-.]+$/, '');

export const fillPodName = (dv: DataVolume) =>
  fillPodNameFrom(`${sourceKind(dv) === 'upload' ? 'cdi-upload' : 'importer'}-${dv.metadata.name}`);

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const dataVolumeOwner = (dv: DataVolume) => ({
  apiVersion: `${CDI_GROUP}/v1beta1`,
  kind: 'DataVolume',
  name: dv.metadata.name!,
  uid: dv.metadata.uid!,
  controller: true,
  blockOwnerDeletion: true,
});

/** The claim CDI makes for a DataVolume: spec.pvc as given, or spec.storage completed with defaults. */
export function claimFor(dv: DataVolume, overhead = DEFAULT_FILESYSTEM_OVERHEAD): V1PersistentVolumeClaim {
  const spec = dv.spec.pvc ?? dv.spec.storage ?? {};
  const annotations: Record<string, string> = {};
  const dvAnnotations = dv.metadata.annotations ?? {};
  // Present, whatever its value, as CDI reads it (virtctl --force-bind sets "")
  if (dvAnnotations[A.bindImmediate] !== undefined) annotations[A.bindImmediate] = dvAnnotations[A.bindImmediate];
  const source = dv.spec.source ?? {};
  if (source.upload) annotations[A.uploadTarget] = '';
  if (source.http) {
    annotations[A.importEndpoint] = source.http.url;
    annotations[A.importSource] = 'http';
  }
  if (source.registry) annotations[A.importSource] = 'registry';
  if (source.blank) annotations[A.importSource] = 'none';
  annotations[A.contentType] = dv.spec.contentType ?? 'kubevirt';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: dv.metadata.name,
      namespace: dv.metadata.namespace,
      labels: { ...dv.metadata.labels, app: 'containerized-data-importer' },
      annotations,
      ownerReferences: [dataVolumeOwner(dv)],
    },
    spec: {
      accessModes: spec.accessModes?.length ? spec.accessModes : ['ReadWriteOnce'],
      volumeMode: spec.volumeMode ?? 'Filesystem',
      resources: { requests: { storage: claimSize(dv, overhead) } },
      ...(spec.storageClassName ? { storageClassName: spec.storageClassName } : {}),
      ...(spec.selector ? { selector: spec.selector as never } : {}),
      ...(spec.volumeName ? { volumeName: spec.volumeName } : {}),
    },
  };
}

/**
 * The claim's size: spec.pvc's as given; spec.storage's grown by the
 * filesystem's overhead, so the disk itself gets the size asked for.
 */
export function claimSize(dv: DataVolume, overhead: string): string {
  const requested = (dv.spec.pvc ?? dv.spec.storage)?.resources?.requests?.storage;
  if (requested === undefined) return '1Gi';
  if (dv.spec.pvc || (dv.spec.storage?.volumeMode ?? 'Filesystem') === 'Block') return String(requested);
  const bytes = Math.ceil(quantityValue(parseQuantity(String(requested))) / MiB) * MiB;
  return String(Math.ceil(bytes / (1 - Number(overhead))));
}

/** The disk the fill pod writes: the claim's size, less what its filesystem keeps (none on a block device). */
export function taskTarget(claim: V1PersistentVolumeClaim, overhead: string, contentType: string): TaskTarget {
  const block = claim.spec?.volumeMode === 'Block';
  const requested = quantityValue(parseQuantity(String(claim.spec?.resources?.requests?.storage ?? GiB)));
  const capacity = claim.status?.capacity?.storage ? quantityValue(parseQuantity(String(claim.status.capacity.storage))) : requested;
  const available = Math.min(requested, capacity);
  const usable = block ? available : Math.floor((available * (1 - Number(overhead))) / MiB) * MiB;
  return {
    volumeMode: block ? 'Block' : 'Filesystem',
    sizeBytes: usable,
    availableBytes: usable,
    contentType: contentType === 'archive' ? 'archive' : 'kubevirt',
  };
}

/** Where a clone's importer reads the source: the source pod's URL (by IP) and the name its certificate carries. */
export interface CloneFrom {
  url: string;
  serverName: string;
}

function importSource(dv: DataVolume, clone?: CloneFrom): ImportSource {
  const s = dv.spec.source!;
  if (s.http)
    return {
      type: 'http',
      url: s.http.url,
      ...(s.http.secretRef ? { basicAuth: true } : {}),
      ...(s.http.certConfigMap ? { certs: true } : {}),
      ...(s.http.extraHeaders?.length ? { extraHeaders: s.http.extraHeaders } : {}),
    };
  if (s.registry) return { type: 'registry', file: REGISTRY_DISK_FILE };
  if (s.pvc && clone) return { type: 'clone', url: clone.url, serverName: clone.serverName };
  return { type: 'blank' };
}

/** The pod that serves a clone's source claim, read-only, to the clone's importer. */
export function cloneSourcePod(dv: DataVolume, source: V1PersistentVolumeClaim, params: FillPodParams, token: string): V1Pod {
  const block = source.spec?.volumeMode === 'Block';
  const task: CdiTask = { kind: 'clone-source', volumeMode: block ? 'Block' : 'Filesystem' };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${dv.metadata.uid}-source-pod`,
      namespace: source.metadata!.namespace,
      labels: { ...CDI_POD_LABELS, [DATAVOLUME_UID_LABEL]: dv.metadata.uid!, 'cdi.kubevirt.io': 'cdi-clone-source' },
      annotations: { [CLONE_TARGET_ANNOTATION]: `${dv.metadata.namespace}/${dv.metadata.name}` },
    },
    spec: {
      restartPolicy: 'OnFailure',
      securityContext: { fsGroup: 107, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'cdi-clone-source',
          image: params.image,
          imagePullPolicy: params.imagePullPolicy,
          command: ['cdi-importer' satisfies ProcessName, '/app/src/cdi/importer/main.js'],
          env: [
            { name: CDI_TASK_ENV, value: JSON.stringify(task) },
            { name: POD_TOKEN_ENV, value: token },
          ],
          ports: [{ name: 'https', containerPort: CDI_POD_PORT, protocol: 'TCP' }],
          readinessProbe: { tcpSocket: { port: CDI_POD_PORT }, periodSeconds: 1 },
          resources: { requests: { cpu: '10m', memory: '64Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, runAsUser: 107 },
          ...(block
            ? { volumeDevices: [{ name: 'cdi-source-vol', devicePath: CDI_POD_PATHS.blockDevice }] }
            : { volumeMounts: [{ name: 'cdi-source-vol', mountPath: CDI_POD_PATHS.data, readOnly: true }] }),
        },
      ],
      volumes: [{ name: 'cdi-source-vol', persistentVolumeClaim: { claimName: source.metadata!.name!, readOnly: true } }],
    },
  };
}

/** The file name the registry source's init container gives the image's disk. */
const REGISTRY_DISK_FILE = 'disk';

/** A registry URL as CDI takes it (docker://host/repo:tag) as an image reference. */
export function registryImage(url: string): string {
  return url.replace(/^docker:\/\//, '');
}

/** What a fill pod is made from: whose work it does (a DataVolume, or a bare upload claim) and what it is told. */
interface FillJob {
  /** The pod's name. */
  name: string;
  namespace: string;
  /** The UID the pod is labelled with (DATAVOLUME_UID_LABEL): the DataVolume's, or a bare claim's. */
  uid: string;
  owner: NonNullable<NonNullable<V1Pod['metadata']>['ownerReferences']>[number];
  claim: V1PersistentVolumeClaim;
  task: Extract<CdiTask, { kind: 'import' | 'upload' }>;
  http?: NonNullable<DataVolume['spec']['source']>['http'];
  registry?: NonNullable<DataVolume['spec']['source']>['registry'];
}

/** The pod that fills the claim of a DataVolume. */
export function fillPod(dv: DataVolume, claim: V1PersistentVolumeClaim, params: FillPodParams, token: string, clone?: CloneFrom): V1Pod {
  const kind = sourceKind(dv);
  const target = taskTarget(claim, params.filesystemOverhead ?? DEFAULT_FILESYSTEM_OVERHEAD, dv.spec.contentType ?? 'kubevirt');
  const task: FillJob['task'] =
    kind === 'upload'
      ? { kind: 'upload', target, contentType: target.contentType }
      : { kind: 'import', source: importSource(dv, clone), target };
  return fillPodFor(
    {
      name: fillPodName(dv),
      namespace: dv.metadata.namespace!,
      uid: dv.metadata.uid!,
      // Owned by the DataVolume, not the claim: a claim in use is kept until its pods are gone.
      owner: dataVolumeOwner(dv),
      claim,
      task,
      http: dv.spec.source?.http,
      registry: dv.spec.source?.registry,
    },
    params,
    token,
  );
}

function fillPodFor(job: FillJob, params: FillPodParams, token: string): V1Pod {
  const { claim, task, http, registry } = job;
  const upload = task.kind === 'upload';
  const block = task.target.volumeMode === 'Block';
  const env = [
    { name: CDI_TASK_ENV, value: JSON.stringify(task) },
    { name: POD_TOKEN_ENV, value: token },
    ...(http?.secretRef
      ? (['username', 'password'] as const).map((key) => ({
          name: BASIC_AUTH_ENV[key],
          valueFrom: { secretKeyRef: { name: http.secretRef!, key: SECRET_KEYS[key] } },
        }))
      : []),
  ];
  const volumes: NonNullable<V1Pod['spec']>['volumes'] = [
    { name: 'cdi-data-vol', persistentVolumeClaim: { claimName: claim.metadata!.name! } },
    { name: 'cdi-scratch', emptyDir: {} },
    ...(http?.certConfigMap ? [{ name: 'cdi-cert-vol', configMap: { name: http.certConfigMap } }] : []),
    ...(registry ? [{ name: 'cdi-tools', emptyDir: {} }] : []),
  ];
  const mounts = [
    ...(block ? [] : [{ name: 'cdi-data-vol', mountPath: CDI_POD_PATHS.data }]),
    { name: 'cdi-scratch', mountPath: CDI_POD_PATHS.scratch },
    ...(http?.certConfigMap ? [{ name: 'cdi-cert-vol', mountPath: CDI_POD_PATHS.certs, readOnly: true }] : []),
  ];
  const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, runAsUser: 107 };
  // The containerDisk image holds only files: a static busybox from our image copies its disk out (node pull, no registry access from the pod).
  const initContainers = registry
    ? [
        {
          name: 'tools',
          image: params.image,
          imagePullPolicy: params.imagePullPolicy,
          command: ['/bin/busybox', 'cp', '/bin/busybox', `${CDI_POD_PATHS.tools}/busybox`],
          securityContext,
          volumeMounts: [{ name: 'cdi-tools', mountPath: CDI_POD_PATHS.tools }],
        },
        {
          name: 'registry-disk',
          image: registryImage(registry.url ?? ''),
          imagePullPolicy: params.imagePullPolicy,
          command: [
            `${CDI_POD_PATHS.tools}/busybox`,
            'sh',
            '-c',
            `set -e; f=$(${CDI_POD_PATHS.tools}/busybox find /disk -type f | ${CDI_POD_PATHS.tools}/busybox head -n 1); ` +
              `[ -n "$f" ] || { echo "no disk image under /disk in the image" > /dev/termination-log; exit 1; }; ` +
              `${CDI_POD_PATHS.tools}/busybox mkdir -p ${CDI_POD_PATHS.registryDisk}; ` +
              `${CDI_POD_PATHS.tools}/busybox cp "$f" ${CDI_POD_PATHS.registryDisk}/${REGISTRY_DISK_FILE}`,
          ],
          securityContext: { ...securityContext, runAsUser: 107 },
          volumeMounts: [
            { name: 'cdi-tools', mountPath: CDI_POD_PATHS.tools },
            { name: 'cdi-scratch', mountPath: CDI_POD_PATHS.scratch },
          ],
        },
      ]
    : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: job.name,
      namespace: job.namespace,
      labels: {
        ...CDI_POD_LABELS,
        [DATAVOLUME_UID_LABEL]: job.uid,
        'cdi.kubevirt.io': upload ? 'cdi-upload-server' : 'importer',
      },
      annotations: { [A.importPodName]: job.name },
      ownerReferences: [job.owner],
    },
    spec: {
      restartPolicy: 'OnFailure',
      securityContext: { fsGroup: 107, seccompProfile: { type: 'RuntimeDefault' } },
      ...(initContainers ? { initContainers } : {}),
      containers: [
        {
          name: upload ? 'cdi-upload-server' : 'importer',
          image: params.image,
          imagePullPolicy: params.imagePullPolicy,
          command: ['cdi-importer' satisfies ProcessName, '/app/src/cdi/importer/main.js'],
          env,
          ports: [{ name: 'https', containerPort: CDI_POD_PORT, protocol: 'TCP' }],
          ...(upload ? { readinessProbe: { httpGet: { scheme: 'HTTPS', path: '/healthz', port: CDI_POD_PORT }, periodSeconds: 1 } } : {}),
          resources: { requests: { cpu: '10m', memory: '64Mi' } },
          securityContext,
          volumeMounts: mounts,
          ...(block ? { volumeDevices: [{ name: 'cdi-data-vol', devicePath: CDI_POD_PATHS.blockDevice }] } : {}),
          terminationMessagePolicy: 'FallbackToLogsOnError',
        },
      ],
      volumes,
    },
  };
}

/** The fill pod's progress, asked to be held up to `waitMs` until its work is complete. */
export const progressUrl = (pod: V1Pod, waitMs: number) =>
  pod.status?.podIP ? `https://${pod.status.podIP}:${CDI_POD_PORT}${PROGRESS_PATH}?wait=${waitMs}` : undefined;

function condition(now: string, old: Condition[] | undefined, type: string, status: string, reason: string, message: string): Condition {
  const prior = old?.find((c) => c.type === type);
  const same = prior?.status === status && prior.reason === reason && prior.message === message;
  const transition = prior?.status === status ? (prior.lastTransitionTime ?? now) : now;
  return {
    type,
    status,
    reason,
    message,
    lastTransitionTime: transition,
    lastHeartbeatTime: same ? (prior.lastHeartbeatTime ?? now) : now,
  };
}

function terminatedMessage(pod: V1Pod | undefined): string | undefined {
  const status = pod?.status?.containerStatuses?.[0];
  const message = status?.state?.terminated?.message ?? status?.lastState?.terminated?.message;
  if (message) return message.trim();
  const waiting = pod?.status?.initContainerStatuses?.find((s) => s.state?.waiting?.reason?.includes('Err') || s.lastState?.terminated);
  return waiting?.lastState?.terminated?.message?.trim() ?? waiting?.state?.waiting?.message;
}

/**
 * The fill pod's phase, with its end seen as soon as the kubelet reports it:
 * a fill container that exited 0 is never restarted (restartPolicy OnFailure),
 * and the pod's own phase turns Succeeded only after the kubelet has also torn
 * the sandbox down, about a second later.
 */
export function fillPodPhase(pod: V1Pod): string {
  const phase = pod.status?.phase ?? 'Pending';
  const policy = pod.spec?.restartPolicy;
  if (phase !== 'Running' || (policy !== 'OnFailure' && policy !== 'Never')) return phase;
  const containers = pod.status?.containerStatuses ?? [];
  const exitedZero = containers.length > 0 && containers.every((c) => c.state?.terminated?.exitCode === 0);
  return exitedZero ? 'Succeeded' : phase;
}

export function planDataVolume(input: DataVolumeInput): DataVolumePlan {
  const { dv, claim, pod, now } = input;
  const old = dv.status?.conditions;
  const events: DataVolumePlan['events'] = [];
  const name = dv.metadata.name!;
  const kind = sourceKind(dv);
  const plan = (importPhase: Phase, progress: string, conditions: Condition[], extra: Partial<DataVolumePlan> = {}): DataVolumePlan => {
    const phase: Phase =
      kind !== 'clone'
        ? importPhase
        : importPhase === 'ImportScheduled'
          ? 'CloneScheduled'
          : importPhase === 'ImportInProgress'
            ? 'CloneInProgress'
            : importPhase;
    const event = PHASE_EVENTS[phase];
    if (event && dv.status?.phase !== phase) events.push({ type: event.type, reason: phase, message: event.message(name) });
    const bound = conditions.find((c) => c.type === 'Bound');
    const oldBound = old?.find((c) => c.type === 'Bound');
    if (bound?.reason && (bound.reason !== oldBound?.reason || bound.message !== oldBound?.message))
      events.push({ type: 'Normal', reason: bound.reason, message: bound.message ?? '' });
    return {
      status: {
        ...(claim || extra.createClaim ? { claimName: name } : {}),
        phase,
        progress,
        restartCount: pod?.status?.containerStatuses?.[0]?.restartCount ?? Number(claim?.metadata?.annotations?.[A.podRestarts] ?? 0),
        conditions,
      },
      events,
      pollProgress: false,
      ...extra,
    };
  };
  const bound = claim?.status?.phase === 'Bound';
  const wffc = input.storageClass?.volumeBindingMode === 'WaitForFirstConsumer';
  const boundCondition = claim
    ? bound
      ? condition(now, old, 'Bound', 'True', 'Bound', `PVC ${name} Bound`)
      : condition(now, old, 'Bound', 'False', 'Pending', `PVC ${name} Pending`)
    : condition(now, old, 'Bound', 'Unknown', '', 'No PVC found');
  const notReady = (reason = '', message = '') => condition(now, old, 'Ready', 'False', reason, message);
  const claimWaits = (phase: Phase): Phase => (!bound && kind !== 'upload' && wffc ? 'WaitForFirstConsumer' : phase);

  if (kind === 'unsupported') {
    const message =
      'kubevirt-ts fills DataVolumes from http, registry, pvc, upload and blank sources only; this source is not supported yet';
    if (dv.status?.phase !== 'Failed') events.push({ type: 'Warning', reason: 'SourceNotSupported', message });
    return plan('Failed', 'N/A', [
      boundCondition,
      notReady('SourceNotSupported', message),
      condition(now, old, 'Running', 'False', 'SourceNotSupported', message),
    ]);
  }
  if (!claim) {
    return plan('Pending', 'N/A', [boundCondition, notReady(), condition(now, old, 'Running', 'False', '', '')], {
      createClaim: claimFor(dv, input.params.filesystemOverhead),
    });
  }
  const owned = claim.metadata?.ownerReferences?.some((o) => o.uid === dv.metadata.uid);
  if (!owned) {
    const message = `PVC ${name} already exists and is not owned by DataVolume ${name}`;
    if (dv.status?.conditions?.find((c) => c.type === 'Ready')?.reason !== 'ErrClaimNotValid')
      events.push({ type: 'Warning', reason: 'ErrClaimNotValid', message });
    return plan('Pending', 'N/A', [boundCondition, notReady('ErrClaimNotValid', message), condition(now, old, 'Running', 'False', '', '')]);
  }
  const annotations = claim.metadata?.annotations ?? {};
  if (annotations[A.podPhase] === 'Succeeded') {
    const succeeded = plan('Succeeded', kind === 'upload' ? 'N/A' : '100.0%', [
      boundCondition,
      condition(now, old, 'Ready', 'True', '', ''),
      condition(now, old, 'Running', 'False', 'Completed', COMPLETE[kind]),
    ]);
    if (dv.status?.phase !== 'Succeeded')
      events.push({
        type: 'Normal',
        reason: kind === 'upload' ? 'UploadSucceeded' : kind === 'clone' ? 'CloneSucceeded' : 'ImportSucceeded',
        message:
          kind === 'upload'
            ? `Successfully uploaded into ${name}`
            : kind === 'clone'
              ? `Successfully cloned from ${dv.spec.source!.pvc!.namespace}/${dv.spec.source!.pvc!.name} into ${dv.metadata.namespace}/${name}`
              : `Successfully imported into PVC ${name}`,
      });
    const sourcePod = input.cloneSource?.pod;
    if (sourcePod) succeeded.deleteSourcePod = { namespace: sourcePod.metadata!.namespace!, name: sourcePod.metadata!.name! };
    if (pod) succeeded.deletePod = pod.metadata!.name!;
    return succeeded;
  }
  const running = (status: string, reason: string, message: string) => condition(now, old, 'Running', status, reason, message);
  if (!pod) {
    const waitsForConsumer =
      !bound && kind !== 'upload' && wffc && annotations[A.bindImmediate] === undefined && !annotations[A.selectedNode];
    if (waitsForConsumer) return plan('WaitForFirstConsumer', 'N/A', [boundCondition, notReady(), running('False', '', '')]);
    const phase: Phase = kind === 'upload' ? 'UploadScheduled' : claimWaits('ImportScheduled');
    let clone: CloneFrom | undefined;
    if (kind === 'clone') {
      const waiting = waitForCloneSource(input);
      if (waiting.wait) {
        if (waiting.event) events.push(waiting.event);
        return plan(phase, 'N/A', [boundCondition, notReady(), running('False', 'Pending', waiting.message ?? '')], {
          requeueAfterMs: 2000,
          ...(waiting.createSourcePod ? { createSourcePod: waiting.createSourcePod } : {}),
        });
      }
      clone = waiting.source;
    }
    return plan(phase, 'N/A', [boundCondition, notReady(), running('False', 'Pending', '')], {
      createPod: fillPod(dv, claim, input.params, input.podToken, clone),
      ...(clone ? { createPodTrustsFillPods: true as const } : {}),
      annotateClaim: { [A.podPhase]: 'Pending' },
    });
  }
  const observedPhase = fillPodPhase(pod);
  const podPhase = input.fillComplete && observedPhase === 'Running' ? 'Succeeded' : observedPhase;
  const restarts = pod.status?.containerStatuses?.[0]?.restartCount ?? 0;
  const rawFailure = terminatedMessage(pod);
  const failure = rawFailure === undefined ? undefined : failureMessage(rawFailure);
  const annotateClaim: Record<string, string> = {};
  if (annotations[A.podPhase] !== podPhase) annotateClaim[A.podPhase] = podPhase;
  if (String(restarts) !== (annotations[A.podRestarts] ?? '0')) annotateClaim[A.podRestarts] = String(restarts);
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (annotations[A.podReady] !== String(ready)) annotateClaim[A.podReady] = String(ready);
  const extra = Object.keys(annotateClaim).length ? { annotateClaim } : {};
  if (podPhase === 'Succeeded') {
    // Remembered on the claim, so the next pass reports Succeeded and removes the pod.
    return plan(
      kind === 'upload' ? 'UploadReady' : 'ImportInProgress',
      '100.0%',
      [boundCondition, notReady(), running('False', 'Completed', '')],
      extra,
    );
  }
  const progress = input.progress === undefined || kind === 'upload' ? 'N/A' : `${input.progress.toFixed(2)}%`;
  const erroring = failure && (restarts > 0 || podPhase === 'Failed' || pod.status?.containerStatuses?.[0]?.state?.waiting);
  if (erroring) {
    if (failure !== annotations[A.runningMessage]) {
      annotateClaim[A.runningMessage] = failure;
      annotateClaim[A.runningReason] = 'Error';
      events.push({ type: 'Warning', reason: 'Error', message: failure });
    }
    const phase: Phase = kind === 'upload' ? 'UploadReady' : 'ImportInProgress';
    return plan(phase, progress, [boundCondition, notReady(), running('False', 'Error', failure)], {
      annotateClaim,
      pollProgress: podPhase === 'Running',
    });
  }
  if (podPhase === 'Pending') {
    return plan(
      kind === 'upload' ? 'UploadScheduled' : claimWaits('ImportScheduled'),
      'N/A',
      [boundCondition, notReady(), running('False', 'Pending', '')],
      extra,
    );
  }
  if (kind === 'upload') {
    return plan(
      ready ? 'UploadReady' : 'UploadScheduled',
      progress,
      [boundCondition, notReady(), running(ready ? 'True' : 'False', ready ? 'Pod is running' : 'Pending', '')],
      {
        ...extra,
        pollProgress: true,
      },
    );
  }
  return plan('ImportInProgress', progress, [boundCondition, notReady(), running('True', 'Pod is running', '')], {
    ...extra,
    pollProgress: true,
  });
}

// ---------------------------------------------------------------------------------------------
// Bare upload claims: `virtctl image-upload pvc` makes a claim annotated as an
// upload target and no DataVolume. As CDI's upload controller, an upload
// server runs for it (owned by the claim), and the claim's annotations carry
// the server's phase and readiness, which virtctl waits on.

/** A claim waiting for an upload by itself: an upload target no DataVolume owns (a DataVolume's is the DataVolume's business). */
export function isBareUploadClaim(claim: V1PersistentVolumeClaim): boolean {
  const annotations = claim.metadata?.annotations ?? {};
  return (
    annotations[A.uploadTarget] !== undefined &&
    annotations[A.cloneRequest] === undefined &&
    !claim.metadata?.ownerReferences?.some((o) => o.kind === 'DataVolume')
  );
}

/** The UID a claim's fill pod is labelled with and its token derived from: its DataVolume's, else (a bare claim) its own. */
export const fillPodSubjectUid = (claim: V1PersistentVolumeClaim): string | undefined =>
  claim.metadata?.ownerReferences?.find((o) => o.kind === 'DataVolume')?.uid ?? claim.metadata?.uid;

export const uploadClaimPodName = (claim: V1PersistentVolumeClaim) => fillPodNameFrom(`cdi-upload-${claim.metadata!.name}`);

export interface UploadClaimInput {
  claim: V1PersistentVolumeClaim;
  /** The upload server pod working for the claim, if one runs. */
  pod?: V1Pod;
  /** The secret the upload server asks of the upload proxy. */
  podToken: string;
  params: FillPodParams;
}

export interface UploadClaimPlan {
  createPod?: V1Pod;
  /** The upload server (by name) to remove: the upload is done, or the claim no longer waits for one. */
  deletePod?: string;
  /** Annotations to add or change on the claim. */
  annotateClaim?: Record<string, string>;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

/** The running condition CDI keeps on the claim (storage.condition.running[.message|.reason]), from the pod's container. */
function runningAnnotations(pod: V1Pod): Record<string, string> {
  const state = pod.status?.containerStatuses?.[0]?.state;
  if (!state) return {};
  const running = A.running;
  if (state.running) return { [running]: 'true', [A.runningMessage]: '', [A.runningReason]: 'Pod is running' };
  const ended = state.terminated ?? (state.waiting?.reason !== 'CrashLoopBackOff' ? state.waiting : undefined);
  if (!ended) return { [running]: 'false' };
  return { [running]: 'false', [A.runningMessage]: failureMessage((ended.message ?? '').trim()), [A.runningReason]: ended.reason ?? '' };
}

/** What to do about a claim waiting for an upload by itself (no DataVolume): CDI's upload controller. */
export function planUploadClaim(input: UploadClaimInput): UploadClaimPlan {
  const { claim, pod } = input;
  const name = claim.metadata!.name!;
  const annotations = claim.metadata?.annotations ?? {};
  const events: UploadClaimPlan['events'] = [];
  const podName = pod?.metadata?.name;
  // Done, going away, or no longer an upload target: only the server is left to remove.
  if (!isBareUploadClaim(claim) || claim.metadata?.deletionTimestamp || annotations[A.podPhase] === 'Succeeded')
    return { events, ...(podName ? { deletePod: podName } : {}) };
  if (!pod) {
    // The upload server is the claim's first consumer: it is made whether or not the claim is bound yet.
    const target = taskTarget(
      claim,
      input.params.filesystemOverhead ?? DEFAULT_FILESYSTEM_OVERHEAD,
      annotations[A.contentType] ?? 'kubevirt',
    );
    const podName = annotations[A.uploadPodName] ?? uploadClaimPodName(claim);
    const createPod = fillPodFor(
      {
        name: podName,
        namespace: claim.metadata!.namespace!,
        uid: claim.metadata!.uid!,
        owner: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          name,
          uid: claim.metadata!.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
        claim,
        task: { kind: 'upload', target, contentType: target.contentType },
      },
      input.params,
      input.podToken,
    );
    const annotateClaim: Record<string, string> = {};
    if (annotations[A.uploadPodName] !== podName) annotateClaim[A.uploadPodName] = podName;
    if (annotations[A.podPhase] !== 'Pending') annotateClaim[A.podPhase] = 'Pending';
    if (annotations[A.podReady] !== 'false') annotateClaim[A.podReady] = 'false';
    return { createPod, annotateClaim, events };
  }
  const phase = fillPodPhase(pod);
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const wanted: Record<string, string> = {
    [A.podPhase]: phase,
    [A.podReady]: String(ready && phase === 'Running'),
    ...runningAnnotations(pod),
  };
  // As CDI: the restart count on the claim only grows.
  const restarts = pod.status?.containerStatuses?.[0]?.restartCount ?? 0;
  if (restarts > Number(annotations[A.podRestarts] ?? 0)) wanted[A.podRestarts] = String(restarts);
  const annotateClaim = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => annotations[key] !== value));
  if (phase === 'Succeeded') events.push({ type: 'Normal', reason: 'UploadSucceeded', message: 'Upload Successful' });
  const failure = annotateClaim[A.runningMessage];
  if (failure && wanted[A.runningReason] !== 'Pod is running' && wanted[A.runningReason] !== 'Completed')
    events.push({ type: 'Warning', reason: 'Error', message: failure });
  return {
    events,
    ...(Object.keys(annotateClaim).length ? { annotateClaim } : {}),
    // The claim remembers the success; the server's work is done.
    ...(phase === 'Succeeded' ? { deletePod: podName! } : {}),
  };
}
