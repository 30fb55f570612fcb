// The virt-launcher pod of a VMI, rendered as upstream renders it: the same
// name prefix, labels and container names (compute, volume<name>,
// kernel-boot, guest-console-log), so tools that select on them keep working.
// Pure: the VMI controller creates what this returns.
import type {
  V1Container,
  V1EnvVar,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { ClusterConfig } from '../api/cluster-config.ts';
import { CREATED_BY_LABEL, DEFAULT_GRACE_PERIOD_SECONDS, NODE_SCHEDULABLE_LABEL, NON_ROOT_UID, VMI_ID_LABEL } from '../api/constants.ts';
import { vmiId } from '../api/vmi-id.ts';
import { binaryQuantity, parseQuantity, quantityValue } from '../api/quantity.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { guestMemoryOf } from '../api/guest-memory.ts';
import { EPHEMERAL_PROVISIONING_ANNOTATION } from '../contract/cdi.ts';
import { sanitizeHostname } from '../contract/vmi.ts';
import { CPU_FEATURE_LABEL_PREFIX, CPU_MODEL_LABEL_PREFIX } from '../contract/node.ts';
import {
  DEBUG_LOGS_ENV,
  DEBUG_LOGS_LABEL,
  DEBUG_VERBOSITY_THRESHOLD,
  DEFAULT_LAUNCHER_VERBOSITY,
  FAIL_FAST_ANNOTATION,
  KEEP_AFTER_FAILURE_FLAG,
  KEEP_LAUNCHER_AFTER_FAILURE_ANNOTATION,
  LOG_FILTERS_ANNOTATION,
  LOG_FILTERS_FLAG,
  LOG_VERBOSITY_ENV,
  LOG_VERBOSITY_LABEL,
  SIMULATE_CRASH_FLAG,
  claimDevicePath,
  claimMountPath,
  cloudInitSecretMountPath,
  COMPUTE_CONTAINER,
  CONSOLE_LOG_CONTAINER,
  DOMAIN_ANNOTATION,
  fileTreeMountPath,
  holderContainerName,
  imageVolumeMountPath,
  KERNEL_BOOT_CONTAINER,
  KERNEL_BOOT_IMAGE_VOLUME,
  KERNEL_BOOT_MOUNT_PATH,
  LAUNCHER_LABEL_VALUE,
  POD_EMPTY_DIRS,
  POD_PATHS,
  VM_NAME_LABEL,
} from '../contract/launcher-pod.ts';

/** Upstream gives the launcher this long beyond the guest's own grace period to clean up. */
export const LAUNCHER_EXTRA_GRACE_SECONDS = 15;

export interface LauncherPodParams {
  launcherImage: string;
  imagePullPolicy: string;
  config: ClusterConfig;
  /** Whether kube-apiserver keeps a pod's image volumes (Kubernetes' ImageVolume gate is on there). */
  imageVolumesServed?: boolean;
}

/**
 * Whether the VMI's containerDisk and kernel-boot images become image volumes of its pod rather
 * than holder containers: upstream's ImageVolume gate (beta, on unless disabled), where the
 * cluster serves them. Elsewhere the holders stay, as the gate's pods would not start.
 */
const usesImageVolumes = (params: LauncherPodParams) =>
  params.imageVolumesServed === true && params.config.isFeatureGateEnabled('ImageVolume');

/**
 * What kubevirt-ts itself needs beyond the guest's RAM, measured (bench/launcher.ts):
 * the launcher process ~55 MiB, QEMU under TCG ~80 MiB (32 MiB of it the
 * translation cache), plus page tables and I/O buffers per vCPU and the
 * video memory when a display is attached.
 */
export function memoryOverheadBytes(vmi: VirtualMachineInstance): number {
  const Mi = 1024 * 1024;
  const graphics = vmi.spec.domain.devices.autoattachGraphicsDevice !== false ? 16 * Mi : 0;
  return 150 * Mi + 8 * Mi * vcpus(vmi) + graphics;
}

export function vcpus(vmi: VirtualMachineInstance): number {
  const cpu = vmi.spec.domain.cpu;
  return Math.max(1, (cpu?.sockets ?? 1) * (cpu?.cores ?? 1) * (cpu?.threads ?? 1));
}

export function guestMemoryBytes(vmi: VirtualMachineInstance): number {
  const q = guestMemoryOf(vmi.spec);
  return q === undefined ? 0 : quantityValue(parseQuantity(q));
}

function computeResources(vmi: VirtualMachineInstance, config: ClusterConfig) {
  const d = vmi.spec.domain;
  const overhead = memoryOverheadBytes(vmi);
  const pageSize = d.memory?.hugepages?.pageSize;
  // On hugepages the guest's RAM is the pod's hugepages resource, and its memory only our overhead, as upstream.
  const guestInMemory = pageSize ? 0 : quantityValue(parseQuantity(d.resources?.requests?.memory ?? binaryQuantity(guestMemoryBytes(vmi))));
  const requests: Record<string, string> = { memory: binaryQuantity(guestInMemory + overhead) };
  // Without an explicit request each vCPU asks for the cluster's cpuRequest (100m), as upstream does.
  const perVcpuMillis = Number(parseQuantity(config.cpuRequest).nanos / 1_000_000n);
  const cpuRequest = d.resources?.requests?.cpu ?? `${perVcpuMillis * vcpus(vmi)}m`;
  requests.cpu = String(cpuRequest);
  const limits: Record<string, string> = {};
  if (d.resources?.limits?.memory !== undefined)
    limits.memory = binaryQuantity((pageSize ? 0 : quantityValue(parseQuantity(d.resources.limits.memory))) + overhead);
  if (d.resources?.limits?.cpu !== undefined) limits.cpu = String(d.resources.limits.cpu);
  if (pageSize) requests[`hugepages-${pageSize}`] = limits[`hugepages-${pageSize}`] = binaryQuantity(guestMemoryBytes(vmi));
  return { requests, ...(Object.keys(limits).length ? { limits } : {}) };
}

type PodSpec = NonNullable<V1Pod['spec']>;
const emptyDir = (name: string): V1Volume => ({ name, emptyDir: {} });

/** The claims of the VMI's namespace by name, as the PVC cache holds them. */
export type ClaimLookup = ReadonlyMap<string, V1PersistentVolumeClaim>;
const NO_CLAIMS: ClaimLookup = new Map();

interface VolumeSources {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  devices: V1VolumeDevice[];
  serviceAccount?: string;
}

function volumeSources(vmi: VirtualMachineInstance, claims: ClaimLookup): VolumeSources {
  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  const devices: V1VolumeDevice[] = [];
  let serviceAccount: string | undefined;
  for (const v of vmi.spec.volumes ?? []) {
    const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name ?? v.ephemeral?.persistentVolumeClaim?.claimName;
    if (claim) {
      // A DataVolume's claim is the guest's own disk: upstream never mounts it read-only.
      const readOnly = v.dataVolume ? undefined : v.ephemeral !== undefined || v.persistentVolumeClaim?.readOnly === true;
      volumes.push({ name: v.name, persistentVolumeClaim: { claimName: claim, ...(readOnly !== undefined ? { readOnly } : {}) } });
      // An ephemeral volume is only ever a backing file under an overlay, so it stays a mount.
      if (!v.ephemeral && claims.get(claim)?.spec?.volumeMode === 'Block')
        devices.push({ name: v.name, devicePath: claimDevicePath(v.name) });
      else mounts.push({ name: v.name, mountPath: claimMountPath(v.name) });
    } else if (v.configMap) {
      volumes.push({ name: v.name, configMap: { name: v.configMap.name, optional: v.configMap.optional } });
      mounts.push({ name: v.name, mountPath: fileTreeMountPath(v)!, readOnly: true });
    } else if (v.secret) {
      volumes.push({ name: v.name, secret: { secretName: v.secret.secretName, optional: v.secret.optional } });
      mounts.push({ name: v.name, mountPath: fileTreeMountPath(v)!, readOnly: true });
    } else if (v.downwardAPI) {
      volumes.push({ name: v.name, downwardAPI: { items: v.downwardAPI.fields } as V1Volume['downwardAPI'] });
      mounts.push({ name: v.name, mountPath: fileTreeMountPath(v)!, readOnly: true });
    } else if (v.serviceAccount) {
      serviceAccount = v.serviceAccount.serviceAccountName;
    }
    for (const [kind, ref] of [
      ['user-data', v.cloudInitNoCloud?.secretRef ?? v.cloudInitConfigDrive?.secretRef],
      ['network-data', v.cloudInitNoCloud?.networkDataSecretRef ?? v.cloudInitConfigDrive?.networkDataSecretRef],
    ] as const) {
      if (!ref?.name) continue;
      const name = `${v.name}-${kind === 'user-data' ? 'udata' : 'ndata'}`;
      volumes.push({ name, secret: { secretName: ref.name } });
      mounts.push({ name, mountPath: cloudInitSecretMountPath(v.name, kind === 'user-data' ? 'userdata' : 'networkdata'), readOnly: true });
    }
  }
  return { volumes, mounts, devices, serviceAccount };
}

/**
 * The CPU limit of the pod's helper containers (image holders, console log). Upstream's 10m/15m
 * is a CFS quota of 1-1.5 ms per 100 ms, and the OCI runtime sets a container up inside its
 * cgroup: each helper spent ~0.25 s throttled before its own program ran, one after the other,
 * in every VMI's start (measured: nr_throttled 3 for each). At rest they use no CPU at all.
 */
const HELPER_CPU_LIMIT = '100m';

/**
 * A helper container's resources: ours, with each request and limit the KubeVirt CR's
 * supportContainerResources names for its type put in place, as upstream does.
 */
function supportResources(
  type: 'container-disk' | 'guest-console-log',
  defaults: { requests: Record<string, string>; limits: Record<string, string> },
  config: ClusterConfig,
) {
  const custom = config.raw.supportContainerResources?.find((s) => s.type === type)?.resources;
  const merged = (ours: Record<string, string>, theirs: Record<string, string | number> = {}) => ({
    ...ours,
    ...Object.fromEntries(Object.entries(theirs).map(([name, q]) => [name, String(q)])),
  });
  return { requests: merged(defaults.requests, custom?.requests), limits: merged(defaults.limits, custom?.limits) };
}

/** A container that only holds an image's files open for virt-handler, running our static holder binary. */
function holderContainer(name: string, image: string, pullPolicy: string | undefined, params: LauncherPodParams): V1Container {
  return {
    name,
    image,
    imagePullPolicy: pullPolicy ?? params.imagePullPolicy,
    command: [`${POD_PATHS.binShare}/container-disk`],
    resources: supportResources(
      'container-disk',
      { requests: { cpu: '1m', memory: '1Mi' }, limits: { cpu: HELPER_CPU_LIMIT, memory: '8Mi' } },
      params.config,
    ),
    securityContext: restricted(),
    volumeMounts: [{ name: 'virt-bin-share-dir', mountPath: POD_PATHS.binShare, readOnly: true }],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

const restricted = () => ({
  runAsUser: NON_ROOT_UID,
  runAsGroup: NON_ROOT_UID,
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
});

export function serialConsoleLogEnabled(vmi: VirtualMachineInstance, config: ClusterConfig): boolean {
  const devices = vmi.spec.domain.devices;
  if (devices.autoattachSerialConsole === false) return false;
  if (devices.logSerialConsole !== undefined) return devices.logSerialConsole;
  return config.raw.virtualMachineOptions?.disableSerialConsoleLog === undefined;
}

/** Prefixes of the VMI's annotations that stay off its pod: kubectl's bookkeeping and the API versions the VMI was observed at. */
const VMI_ONLY_ANNOTATION_PREFIXES = [
  'kubectl.kubernetes.io',
  'kubevirt.io/storage-observed-api-version',
  'kubevirt.io/latest-observed-api-version',
];

/** The VMI's annotations that its launcher pod carries too: all but those prefixes, as upstream. */
export function podAnnotationsOf(vmi: VirtualMachineInstance): Record<string, string> {
  return Object.fromEntries(
    Object.entries(vmi.metadata.annotations ?? {}).filter(([key]) => !VMI_ONLY_ANNOTATION_PREFIXES.some((p) => key.startsWith(p))),
  );
}

/** The VMI's libvirt log filters, passed on to its launcher as upstream's virt-controller passes them. */
function logFilterArgs(vmi: VirtualMachineInstance): string[] {
  const filters = vmi.metadata.annotations?.[LOG_FILTERS_ANNOTATION];
  return filters !== undefined ? [LOG_FILTERS_FLAG, filters] : [];
}

/**
 * The launcher's verbosity, set when the VMI's label or the KubeVirt CR departs from the default
 * (the label wins), and the debug switch, on for a `debugLogs: "true"` label or a verbosity past
 * the threshold: upstream's environment for its launcher.
 */
export function logSettingsEnv(vmi: VirtualMachineInstance, config: ClusterConfig): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  const label = vmi.metadata.labels?.[LOG_VERBOSITY_LABEL];
  const cluster = config.launcherLogVerbosity ?? DEFAULT_LAUNCHER_VERBOSITY;
  if (label !== undefined || cluster !== DEFAULT_LAUNCHER_VERBOSITY) env.push({ name: LOG_VERBOSITY_ENV, value: label ?? String(cluster) });
  const verbosity = label !== undefined ? Number(label) : cluster;
  if (vmi.metadata.labels?.[DEBUG_LOGS_LABEL]?.toLowerCase() === 'true' || verbosity > DEBUG_VERBOSITY_THRESHOLD) {
    env.push({ name: DEBUG_LOGS_ENV, value: '1' });
  }
  return env;
}

/** The VMI asks that its launcher's container keep running after the launcher failed (upstream's test for it). */
export const keepsLauncherAfterFailure = (vmi: VirtualMachineInstance) =>
  Object.entries(vmi.metadata.annotations ?? {}).some(
    ([key, value]) => key.startsWith(KEEP_LAUNCHER_AFTER_FAILURE_ANNOTATION) && (value === '' || value.startsWith('true')),
  );

/**
 * The launcher pod of a VMI. `claims` tells each claim's volume mode: a Block claim is handed to
 * the compute container as a device, anything else (or a claim not known) as a mount.
 */
export function renderLauncherPod(vmi: VirtualMachineInstance, params: LauncherPodParams, claims: ClaimLookup = NO_CLAIMS): V1Pod {
  const name = vmi.metadata.name!;
  const uid = vmi.metadata.uid!;
  const grace = vmi.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
  const hostname = sanitizeHostname(vmi);
  const sources = volumeSources(vmi, claims);
  const hugepages = vmi.spec.domain.memory?.hugepages?.pageSize !== undefined;
  const compute: V1Container = {
    name: COMPUTE_CONTAINER,
    image: params.launcherImage,
    imagePullPolicy: params.imagePullPolicy,
    args: [
      '--socket-dir',
      POD_PATHS.sockets,
      '--workdir',
      POD_PATHS.private,
      // Which VMI this launcher is for, from its first log line on, and on its command line as upstream's is.
      '--name',
      name,
      '--namespace',
      vmi.metadata.namespace!,
      '--uid',
      uid,
      ...(vmi.metadata.annotations?.[FAIL_FAST_ANNOTATION] !== undefined ? [SIMULATE_CRASH_FLAG] : []),
      ...(keepsLauncherAfterFailure(vmi) ? [KEEP_AFTER_FAILURE_FLAG] : []),
      ...logFilterArgs(vmi),
    ],
    env: [...logSettingsEnv(vmi, params.config), { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    resources: computeResources(vmi, params.config),
    // QEMU binds no privileged port and opens a tap virt-handler created for it; nothing else is needed.
    securityContext: { ...restricted(), capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } },
    volumeMounts: [
      { name: 'private', mountPath: POD_PATHS.private },
      { name: 'public', mountPath: POD_PATHS.public },
      { name: 'sockets', mountPath: POD_PATHS.sockets },
      { name: 'ephemeral-disks', mountPath: POD_PATHS.ephemeralDisks },
      { name: 'container-disks', mountPath: POD_PATHS.containerDisks, mountPropagation: 'HostToContainer' },
      { name: 'hotplug-disks', mountPath: POD_PATHS.hotplugDisks, mountPropagation: 'HostToContainer' },
      ...(hugepages ? [{ name: 'hugepages', mountPath: POD_PATHS.hugepages }] : []),
      ...sources.mounts,
    ],
    ...(sources.devices.length ? { volumeDevices: sources.devices } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  const holders: V1Container[] = [];
  const imageVolumes: V1Volume[] = [];
  const asImageVolume = usesImageVolumes(params);
  const imageVolume = (name: string, image: string, pullPolicy: string | undefined, mountPath: string) => {
    imageVolumes.push({ name, image: { reference: image, pullPolicy: pullPolicy ?? params.imagePullPolicy } });
    compute.volumeMounts!.push({ name, mountPath, readOnly: true });
  };
  for (const [index, volume] of (vmi.spec.volumes ?? []).entries()) {
    const disk = volume.containerDisk;
    if (!disk?.image) continue;
    if (asImageVolume) imageVolume(volume.name, disk.image, disk.imagePullPolicy, imageVolumeMountPath(index));
    else holders.push(holderContainer(holderContainerName(volume.name), disk.image, disk.imagePullPolicy, params));
  }
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernelBoot?.image) {
    if (asImageVolume) imageVolume(KERNEL_BOOT_IMAGE_VOLUME, kernelBoot.image, kernelBoot.imagePullPolicy, KERNEL_BOOT_MOUNT_PATH);
    else holders.push(holderContainer(KERNEL_BOOT_CONTAINER, kernelBoot.image, kernelBoot.imagePullPolicy, params));
  }
  if (holders.length) {
    // The holders' images carry no program of their own, so compute hands them ours. The kubelet
    // starts a pod's containers in order and waits for each one's postStart hook: the holders, which
    // come after compute, find the binary in place. An init container would do the same, but the
    // kubelet notices its exit only at its next relist of the runtime, up to a second later.
    compute.lifecycle = {
      postStart: { exec: { command: ['/bin/cp', '/usr/bin/container-disk', `${POD_PATHS.binShare}/container-disk`] } },
    };
    compute.volumeMounts!.push({ name: 'virt-bin-share-dir', mountPath: POD_PATHS.binShare });
  }
  const containers: V1Container[] = [compute, ...holders];
  if (serialConsoleLogEnabled(vmi, params.config)) {
    containers.push({
      name: CONSOLE_LOG_CONTAINER,
      image: params.launcherImage,
      imagePullPolicy: params.imagePullPolicy,
      // As PID 1 tail would ignore SIGTERM and hold the pod for its whole grace period.
      command: ['/bin/sh', '-c', `trap 'exit 0' TERM; tail -F -n +1 ${POD_PATHS.serialLog} & wait`],
      resources: supportResources(
        'guest-console-log',
        { requests: { cpu: '5m', memory: '4Mi' }, limits: { cpu: HELPER_CPU_LIMIT, memory: '16Mi' } },
        params.config,
      ),
      securityContext: restricted(),
      volumeMounts: [{ name: 'sockets', mountPath: POD_PATHS.sockets, readOnly: true }],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    });
  }
  const labels: Record<string, string> = {
    ...vmi.metadata.labels,
    'kubevirt.io': LAUNCHER_LABEL_VALUE,
    [CREATED_BY_LABEL]: uid,
    // Label values are DNS labels at most: upstream labels the pod with the hostname, and the id hashes a long name.
    [VM_NAME_LABEL]: hostname,
    [VMI_ID_LABEL]: vmiId(name),
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `virt-launcher-${name}-`,
      namespace: vmi.metadata.namespace,
      labels,
      annotations: {
        [DOMAIN_ANNOTATION]: name,
        ...podAnnotationsOf(vmi),
        'kubectl.kubernetes.io/default-container': COMPUTE_CONTAINER,
      },
      ownerReferences: [
        { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name, uid, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      hostname,
      ...(vmi.spec.subdomain ? { subdomain: vmi.spec.subdomain } : {}),
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: grace + LAUNCHER_EXTRA_GRACE_SECONDS,
      automountServiceAccountToken: sources.serviceAccount !== undefined,
      ...(sources.serviceAccount ? { serviceAccountName: sources.serviceAccount } : {}),
      securityContext: { runAsUser: NON_ROOT_UID, runAsGroup: NON_ROOT_UID, fsGroup: NON_ROOT_UID, runAsNonRoot: true },
      nodeSelector: { ...vmi.spec.nodeSelector, ...cpuNodeSelector(vmi), [NODE_SCHEDULABLE_LABEL]: 'true' },
      ...withForbiddenCpuFeatures(vmi, vmi.spec.affinity as PodSpec['affinity']),
      ...(vmi.spec.tolerations ? { tolerations: vmi.spec.tolerations as PodSpec['tolerations'] } : {}),
      ...(vmi.spec.topologySpreadConstraints
        ? { topologySpreadConstraints: vmi.spec.topologySpreadConstraints as PodSpec['topologySpreadConstraints'] }
        : {}),
      ...(vmi.spec.schedulerName ? { schedulerName: vmi.spec.schedulerName } : {}),
      ...(vmi.spec.priorityClassName ? { priorityClassName: vmi.spec.priorityClassName } : {}),
      ...(vmi.spec.dnsPolicy ? { dnsPolicy: vmi.spec.dnsPolicy } : {}),
      ...(vmi.spec.dnsConfig ? { dnsConfig: vmi.spec.dnsConfig as PodSpec['dnsConfig'] } : {}),
      containers,
      volumes: [
        ...POD_EMPTY_DIRS.map(emptyDir),
        ...(holders.length ? [emptyDir('virt-bin-share-dir')] : []),
        ...(hugepages ? [{ name: 'hugepages', emptyDir: { medium: 'HugePages' } }] : []),
        ...sources.volumes,
        ...imageVolumes,
      ],
    },
  };
}

/** CPU modes that name no model: they take what the node has. */
const HOST_CPU_MODES = new Set(['host-model', 'host-passthrough']);

/** The node labels a VMI's CPU needs, as upstream's: its model's, unless it takes the host's, and each required feature's. */
export function cpuNodeSelector(vmi: VirtualMachineInstance): Record<string, string> {
  const cpu = vmi.spec.domain.cpu;
  const selector: Record<string, string> = {};
  if (cpu?.model && !HOST_CPU_MODES.has(cpu.model)) selector[`${CPU_MODEL_LABEL_PREFIX}${cpu.model}`] = 'true';
  for (const feature of cpu?.features ?? []) {
    if (!feature.policy || feature.policy === 'require') selector[`${CPU_FEATURE_LABEL_PREFIX}${feature.name}`] = 'true';
  }
  return selector;
}

/**
 * The pod's affinity keeping it off nodes with a feature the VMI forbids, as upstream's: the
 * label must be absent in every required term (terms are alternatives, so each gets it).
 */
export function withForbiddenCpuFeatures(vmi: VirtualMachineInstance, affinity: PodSpec['affinity']): { affinity?: PodSpec['affinity'] } {
  const absent = (vmi.spec.domain.cpu?.features ?? [])
    .filter((f) => f.policy === 'forbid')
    .map((f) => ({ key: `${CPU_FEATURE_LABEL_PREFIX}${f.name}`, operator: 'DoesNotExist' }));
  if (!absent.length) return affinity ? { affinity } : {};
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = required?.nodeSelectorTerms.length
    ? required.nodeSelectorTerms.map((term) => ({ ...term, matchExpressions: [...(term.matchExpressions ?? []), ...absent] }))
    : [{ matchExpressions: absent }];
  return {
    affinity: {
      ...affinity,
      nodeAffinity: {
        ...affinity?.nodeAffinity,
        requiredDuringSchedulingIgnoredDuringExecution: { ...required, nodeSelectorTerms: terms },
      },
    },
  };
}

/**
 * The pod that only has the VMI's WaitForFirstConsumer claims bound (upstream's
 * RenderLaunchManifestNoVm): the launcher pod as it will be scheduled, with the same claims,
 * resources, node selector, affinity and tolerations, so the scheduler picks the node the VMI
 * will run on; but its one container exits at once and nothing else runs.
 */
export function renderTemporaryPod(vmi: VirtualMachineInstance, params: LauncherPodParams, claims: ClaimLookup = NO_CLAIMS): V1Pod {
  const pod = renderLauncherPod(vmi, params, claims);
  const spec = pod.spec!;
  const compute = spec.containers.find((c) => c.name === COMPUTE_CONTAINER)!;
  // /bin/true is busybox's, in every image built here; the launcher's own entrypoint would wait for virt-handler.
  compute.command = ['/bin/true'];
  delete compute.args;
  // The hook hands the image holders their binary, and there are no holders here.
  delete compute.lifecycle;
  spec.containers = [compute];
  delete spec.initContainers;
  // Nor any image for the guest: nothing here reads one.
  const unused = new Set(['virt-bin-share-dir', ...(spec.volumes ?? []).filter((v) => v.image).map((v) => v.name)]);
  compute.volumeMounts = compute.volumeMounts?.filter((m) => !unused.has(m.name));
  spec.volumes = spec.volumes?.filter((v) => !unused.has(v.name));
  pod.metadata!.annotations = { ...pod.metadata!.annotations, [EPHEMERAL_PROVISIONING_ANNOTATION]: 'true' };
  return pod;
}
