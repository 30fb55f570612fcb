// Live migration across components: what virt-controller writes on the VMI and
// the target pod, what each virt-handler reads there, the sockets in the
// launcher pods the migration stream passes through, and the launcher's
// migrate command.
import type { V1Pod } from '@kubernetes/client-node';
import type { MigrationSettings } from '../api/cluster-config.ts';
import type { MigrationPolicy, VirtualMachineInstance } from '../api/types.ts';

/** The target pod's annotation naming its migration object. */
export const MIGRATION_JOB_NAME_ANNOTATION = 'kubevirt.io/migrationJobName';

/** In the target pod's socket directory: the target QEMU's incoming listener, which the target virt-handler feeds. */
export const MIGRATION_IN_SOCKET = 'migration-in.sock';
/** In the source pod's socket directory: the source virt-handler's listener, which the source QEMU sends to. */
export const MIGRATION_OUT_SOCKET = 'migration-out.sock';

export type MigrationState = NonNullable<NonNullable<VirtualMachineInstance['status']>['migrationState']>;

/** The VMI's migration that has started and not ended, if any. */
export function migrationInFlight(vmi: VirtualMachineInstance): MigrationState | undefined {
  const state = vmi.status?.migrationState;
  return state?.migrationUid && !state.completed && !state.failed ? state : undefined;
}

/** The migration moved the guest: its target pod is the VMI's pod from now on. */
export const migrationSucceeded = (state: MigrationState | undefined) => Boolean(state?.completed && !state.failed);

/** The pod a migration moved the guest out of: it runs down beside the guest's new pod, and is no longer the VMI's. */
export function isMigratedAwaySource(vmi: VirtualMachineInstance, pod: V1Pod): boolean {
  const state = vmi.status?.migrationState;
  return migrationSucceeded(state) && state?.sourcePod !== undefined && state.sourcePod === pod.metadata?.name;
}

/**
 * A migration's target pod is not the VMI's pod until the migration has succeeded (and then the
 * source pod ends). Named on the VMI before it is created, so no one takes it for the VMI's pod.
 */
export function isPendingMigrationTarget(vmi: VirtualMachineInstance, pod: V1Pod): boolean {
  const state = vmi.status?.migrationState;
  return state?.targetPod !== undefined && state.targetPod === pod.metadata?.name && !migrationSucceeded(state);
}

/** Disks that live in the launcher pod (containerDisk overlays, emptyDisks) and so must travel with the guest. */
export const hasLocalDisks = (vmi: VirtualMachineInstance) =>
  (vmi.spec.volumes ?? []).some((v) => v.containerDisk || v.emptyDisk || v.ephemeral);

/** How the source launcher migrates, from the cluster's migration configuration (and a MigrationPolicy). */
export interface MigrationOptions {
  /** The migration's UID: asked again for the same one, the launcher answers for the one under way. */
  id: string;
  /** Where the source QEMU sends the stream: the source handler's listener, `unix:<path>`. */
  uri: string;
  /** Local disks (containerDisk overlays, emptyDisks) travel in the stream, their top layer only. */
  block: boolean;
  /** Bytes per second; 0 for no limit. */
  bandwidthBytesPerSecond: number;
  /** The whole migration may take this many seconds per GiB of memory and local disk before it is cancelled (or switched to post-copy). */
  completionTimeoutPerGiB: number;
  /** Cancelled when the remaining data has not shrunk for this many seconds. */
  progressTimeoutSeconds: number;
  allowPostCopy: boolean;
  allowAutoConverge: boolean;
}

/** How a migration ended, as the source launcher saw it. */
export interface MigrationOutcome {
  completed: boolean;
  mode: 'PreCopy' | 'PostCopy';
  /** QEMU's own figures: the guest's downtime and the whole migration, in milliseconds. */
  downtimeMs?: number;
  totalTimeMs?: number;
  failureReason?: string;
  /** The migration was cancelled on request (migrate_cancel). */
  aborted?: boolean;
}

export interface Migratability {
  migratable: boolean;
  reason?: 'DisksNotLiveMigratable' | 'InterfaceNotLiveMigratable' | 'HostDeviceNotLiveMigratable';
  message?: string;
}

/** Upstream's annotation that lets a VM on the pod network with bridge binding migrate (its IP changes). */
export const ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION = 'kubevirt.io/allow-pod-bridge-network-live-migration';

/**
 * Whether the VMI can live-migrate, with upstream's reasons and messages: every claim must be
 * shared (ReadWriteMany), a host disk cannot move, and the pod network must be masqueraded
 * (bridge only when the VMI allows its address to change).
 */
export function migratability(vmi: VirtualMachineInstance): Migratability {
  const claims = new Map((vmi.status?.volumeStatus ?? []).map((s) => [s.name, s.persistentVolumeClaimInfo]));
  for (const volume of vmi.spec.volumes ?? []) {
    const claimed = volume.persistentVolumeClaim ?? volume.dataVolume ?? volume.ephemeral?.persistentVolumeClaim;
    if (claimed && !claims.get(volume.name)?.accessModes?.includes('ReadWriteMany')) {
      const name = volume.persistentVolumeClaim?.claimName ?? volume.dataVolume?.name ?? volume.ephemeral?.persistentVolumeClaim?.claimName;
      return {
        migratable: false,
        reason: 'DisksNotLiveMigratable',
        message: `cannot migrate VMI: PVC ${name} is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`,
      };
    }
    if (volume.hostDisk && !volume.hostDisk.shared) {
      return { migratable: false, reason: 'DisksNotLiveMigratable', message: 'cannot migrate VMI with non-shared HostDisk' };
    }
  }
  const devices = vmi.spec.domain.devices;
  if (devices.gpus?.length || devices.hostDevices?.length) {
    return {
      migratable: false,
      reason: 'HostDeviceNotLiveMigratable',
      message: 'VMI uses a PCI host devices',
    };
  }
  const podNetwork = vmi.spec.networks?.find((n) => n.pod)?.name;
  const podInterface = devices.interfaces?.find((i) => i.name === podNetwork);
  if (podInterface?.bridge && vmi.metadata.annotations?.[ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION] !== 'true') {
    return {
      migratable: false,
      reason: 'InterfaceNotLiveMigratable',
      message:
        'cannot migrate VMI which does not use masquerade, bridge with kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable plugin to connect to the pod network',
    };
  }
  return { migratable: true };
}

/** The migration configuration a migration runs with, as written in its migrationState. */
export type MigrationConfiguration = NonNullable<MigrationState['migrationConfiguration']>;

const labelsMatch = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

/**
 * The MigrationPolicy that applies to a VMI, as upstream chooses it: every label of both its
 * selectors matches (the VMI's, its namespace's), and of several the one matching the most
 * labels, then the first by name.
 */
export function matchingPolicy(
  policies: readonly MigrationPolicy[],
  vmi: VirtualMachineInstance,
  namespaceLabels: Record<string, string> | undefined,
): MigrationPolicy | undefined {
  const weight = (p: MigrationPolicy) =>
    Object.keys(p.spec.selectors.virtualMachineInstanceSelector ?? {}).length +
    Object.keys(p.spec.selectors.namespaceSelector ?? {}).length;
  return policies
    .filter(
      (p) =>
        labelsMatch(p.spec.selectors.virtualMachineInstanceSelector, vmi.metadata.labels) &&
        labelsMatch(p.spec.selectors.namespaceSelector, namespaceLabels),
    )
    .sort((a, b) => weight(b) - weight(a) || String(a.metadata.name).localeCompare(String(b.metadata.name)))[0];
}

/** The cluster's migration settings, with what a policy sets in their place. */
export function effectiveMigrationConfiguration(settings: MigrationSettings, policy: MigrationPolicy | undefined): MigrationConfiguration {
  const spec = policy?.spec;
  return {
    allowAutoConverge: spec?.allowAutoConverge ?? settings.allowAutoConverge,
    allowPostCopy: spec?.allowPostCopy ?? settings.allowPostCopy,
    bandwidthPerMigration: spec?.bandwidthPerMigration ?? String(settings.bandwidthBytesPerSecond),
    completionTimeoutPerGiB: spec?.completionTimeoutPerGiB ?? settings.completionTimeoutPerGiB,
    progressTimeout: settings.progressTimeoutSeconds,
    parallelMigrationsPerCluster: settings.parallelMigrationsPerCluster,
    parallelOutboundMigrationsPerNode: settings.parallelOutboundMigrationsPerNode,
  };
}
