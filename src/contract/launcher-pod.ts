// The launcher pod's layout: what virt-controller renders, what virt-handler
// finds through the kubelet's pods directory and what virt-launcher reads
// inside the pod. Container names and labels are upstream's, so tools that
// select on them keep working.
import type { V1Pod } from '@kubernetes/client-node';
import type { Volume } from '../api/types.ts';
import type { Firmware } from './launcher-protocol.ts';

/** The `kubevirt.io` label value of every launcher pod. */
export const LAUNCHER_LABEL_VALUE = 'virt-launcher';
export const LAUNCHER_SELECTOR = `kubevirt.io=${LAUNCHER_LABEL_VALUE}`;
export const VM_NAME_LABEL = 'vm.kubevirt.io/name';
export const DOMAIN_ANNOTATION = 'kubevirt.io/domain';
/** Upstream's functional tests set this on a VMI to have its launcher crash at once (a crash loop to watch). */
export const FAIL_FAST_ANNOTATION = 'kubevirt.io/func-test-virt-launcher-fail-fast';
/** The launcher's flag for it, as upstream's virt-controller passes it. */
export const SIMULATE_CRASH_FLAG = '--simulate-crash';
/**
 * Upstream's annotation asking that a launcher that failed keep its container running, for
 * debugging: any annotation key it begins, with an empty value or one beginning with "true".
 */
export const KEEP_LAUNCHER_AFTER_FAILURE_ANNOTATION = 'kubevirt.io/keep-launcher-alive-after-failure';
/** The launcher's flag for it, as upstream's virt-controller passes it. */
export const KEEP_AFTER_FAILURE_FLAG = '--keep-after-failure';

/**
 * How a VMI asks for its launcher's debug logs, as upstream: a `debugLogs: "true"` label, a
 * `logVerbosity` label (or the KubeVirt CR's logVerbosity.virtLauncher), or libvirt log filters
 * in an annotation. virt-controller passes them to the launcher as upstream's does: the filters
 * as a flag, the verbosity and the debug switch in the environment.
 */
export const DEBUG_LOGS_LABEL = 'debugLogs';
export const LOG_VERBOSITY_LABEL = 'logVerbosity';
export const LOG_FILTERS_ANNOTATION = 'kubevirt.io/libvirt-log-filters';
export const LOG_FILTERS_FLAG = '--libvirt-log-filters';
export const LOG_VERBOSITY_ENV = 'VIRT_LAUNCHER_LOG_VERBOSITY';
export const DEBUG_LOGS_ENV = 'LIBVIRT_DEBUG_LOGS';
/** The launcher's verbosity when neither the VMI nor the KubeVirt CR sets one (upstream's default). */
export const DEFAULT_LAUNCHER_VERBOSITY = 2;
/** Above this verbosity the debug logs are on (upstream's EXT_LOG_VERBOSITY_THRESHOLD). */
export const DEBUG_VERBOSITY_THRESHOLD = 5;

/** Where a containerDisk image keeps its disk when the volume names no path, as upstream's. */
export const CONTAINER_DISK_DIR = 'disk';

/**
 * The file under /disk that is the containerDisk's disk: the one file there, whatever its name or
 * format (an ISO too), refused in upstream's words when there is none or more than one.
 */
export function containerDiskFileIn(names: readonly string[]): string {
  if (names.length === 0) throw new Error(`no file found in folder /${CONTAINER_DISK_DIR}, no disk present`);
  if (names.length > 1) throw new Error(`more than one file found in folder /${CONTAINER_DISK_DIR}, only one disk is allowed`);
  return names[0];
}

/**
 * Where the compute container has a containerDisk's image when the pod mounts it as an image
 * volume (Kubernetes' ImageVolume), by the volume's place in the VMI's spec, and the kernel-boot
 * image; upstream's ImageVolume layout. The pod volume of a containerDisk is named as the VMI's.
 */
export const imageVolumeMountPath = (volumeIndex: number) => `/var/run/kubevirt-image-volume/disk_${volumeIndex}`;
export const KERNEL_BOOT_IMAGE_VOLUME = 'kernel-boot-volume';
export const KERNEL_BOOT_MOUNT_PATH = '/var/run/kubevirt-kernel-boot';

/** Container names: virt-launcher and QEMU; each containerDisk's holder (`volume<name>`); the kernel-boot holder; the serial console log. */
export const COMPUTE_CONTAINER = 'compute';
export const holderContainerName = (volumeName: string) => `volume${volumeName}`;
export const KERNEL_BOOT_CONTAINER = 'kernel-boot';
export const CONSOLE_LOG_CONTAINER = 'guest-console-log';

/** Where things live inside the launcher pod; virt-handler finds them through the kubelet's pods directory. */
export const POD_PATHS = {
  private: '/var/run/kubevirt-private',
  public: '/var/run/kubevirt',
  sockets: '/var/run/kubevirt/sockets',
  containerDisks: '/var/run/kubevirt/container-disks',
  ephemeralDisks: '/var/run/kubevirt-ephemeral-disks',
  hotplugDisks: '/var/run/kubevirt/hotplug-disks',
  binShare: '/init/usr/bin',
  claims: '/var/run/kubevirt-private/vmi-disks',
  serialLog: '/var/run/kubevirt/sockets/virt-serial0-log',
  serviceAccount: '/var/run/secrets/kubernetes.io/serviceaccount',
  /** The hugetlbfs the kubelet mounts for a guest backed by hugepages (one page size per pod). */
  hugepages: '/dev/hugepages',
} as const;

/** The pod's emptyDir volumes by name; virt-handler reaches `sockets` and `container-disks` on the host. */
export const POD_EMPTY_DIRS = ['private', 'public', 'sockets', 'ephemeral-disks', 'container-disks', 'hotplug-disks'] as const;
export type PodEmptyDir = (typeof POD_EMPTY_DIRS)[number] | 'virt-bin-share-dir';

/** Where a claim-backed volume (persistentVolumeClaim, ephemeral) is mounted in the compute container. */
export const claimMountPath = (volumeName: string) => `${POD_PATHS.claims}/${volumeName}`;

/** Where a Block-mode claim's device is in the compute container (upstream's path, which its libvirt disk names). */
export const claimDevicePath = (volumeName: string) => `/dev/${volumeName}`;

/** Where the files of a configMap, secret, downwardAPI or serviceAccount volume are, or undefined for other kinds. */
export function fileTreeMountPath(volume: Volume): string | undefined {
  if (volume.configMap) return `${POD_PATHS.private}/config-map/${volume.name}`;
  if (volume.secret) return `${POD_PATHS.private}/secret/${volume.name}`;
  if (volume.downwardAPI) return `${POD_PATHS.private}/downwardapi/${volume.name}`;
  if (volume.serviceAccount) return POD_PATHS.serviceAccount;
  return undefined;
}

/** Where the Secret a cloud-init volume names for its user data or network data is mounted (each key a file). */
export const cloudInitSecretMountPath = (volumeName: string, kind: 'userdata' | 'networkdata') =>
  `${POD_PATHS.private}/secret/${volumeName}/${kind}`;

/** The launcher image's UEFI firmware (Debian's OVMF). */
export const OVMF: Firmware = {
  ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmfSecureCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  ovmfSecureVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
};

/** The compute container's status in a launcher pod. */
export const computeStatus = (pod: V1Pod) => pod.status?.containerStatuses?.find((c) => c.name === COMPUTE_CONTAINER);

/**
 * What virt-controller and virt-handler read of a launcher pod, for their informers to keep
 * (the rest of the spec, the containers' commands, env, mounts and probes, is most of a launcher
 * pod, and neither reads it): all of the metadata and status, and of the spec only the node,
 * each container's name and image (virt-controller reports the compute container's image in
 * the VMI's status) and the image volumes (virt-handler finds a containerDisk there rather than
 * in a holder). Neither writes a cached pod back.
 */
export function launcherPodAsRead(pod: V1Pod): V1Pod {
  if (!pod.spec) return pod;
  const { nodeName, containers, volumes } = pod.spec;
  const imageVolumes = (volumes ?? []).filter((v) => v.image);
  pod.spec = {
    ...(nodeName ? { nodeName } : {}),
    containers: (containers ?? []).map(({ name, image }) => ({ name, image })),
    ...(imageVolumes.length ? { volumes: imageVolumes } : {}),
  };
  return pod;
}
