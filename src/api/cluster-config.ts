// The effective cluster configuration: the KubeVirt CR's spec.configuration
// with upstream's defaults filled in. Every component reads it through here.
import type { KubeVirtConfiguration } from './types.ts';
import { quantityValue } from './quantity.ts';

/** Beta gates: on unless listed in disabledFeatureGates. Alpha gates must be named in featureGates. */
const BETA_GATES = new Set([
  'ImageVolume',
  'Snapshot',
  'WorkloadEncryptionSEV',
  'KubevirtSeccompProfile',
  'NodeRestriction',
  'GPUsWithDRA',
  'HostDevicesWithDRA',
  'DecentralizedLiveMigration',
  'DeclarativeHotplugVolumes',
  'PasstBinding',
  'PodSecondaryInterfaceNamingUpgrade',
  'ExternalNetResourceInjection',
  'RebootPolicy',
  'Template',
  'OptOutRoleAggregation',
]);

const MACHINE_TYPES: Record<string, string> = { amd64: 'q35', arm64: 'virt', s390x: 's390-ccw-virtio' };
const EMULATED_MACHINES: Record<string, string[]> = {
  amd64: ['q35*', 'pc-q35*'],
  arm64: ['virt*'],
  s390x: ['s390-ccw-virtio*'],
};

export const DEFAULT_CPU_MODEL = 'host-model';
export const DEFAULT_CPU_REQUEST = '100m';
export const DEFAULT_MAX_HOTPLUG_RATIO = 4;

/** Models upstream treats as too old to offer (its default obsoleteCPUModels), by QEMU's names. */
export const DEFAULT_OBSOLETE_CPU_MODELS = new Set(
  [
    '486',
    'pentium',
    'pentium2',
    'pentium3',
    'pentiumpro',
    'coreduo',
    'n270',
    'core2duo',
    'Conroe',
    'athlon',
    'phenom',
    'qemu64',
    'qemu32',
    'kvm64',
    'kvm32',
    'Opteron_G1',
    'Opteron_G2',
  ].flatMap((name) => [name, `${name}-v1`]),
);

export class ClusterConfig {
  readonly raw: KubeVirtConfiguration;
  private readonly enabledGates: Set<string>;
  private readonly disabledGates: Set<string>;
  readonly defaultArchitecture: string;

  constructor(raw: KubeVirtConfiguration = {}, defaultArchitecture = 'amd64') {
    this.raw = raw;
    this.enabledGates = new Set(raw.developerConfiguration?.featureGates ?? []);
    this.disabledGates = new Set(raw.developerConfiguration?.disabledFeatureGates ?? []);
    this.defaultArchitecture = raw.architectureConfiguration?.defaultArchitecture || defaultArchitecture;
  }

  isFeatureGateEnabled(gate: string): boolean {
    if (this.disabledGates.has(gate)) return false;
    return this.enabledGates.has(gate) || BETA_GATES.has(gate);
  }

  private archConfig(arch: string) {
    const byArch = this.raw.architectureConfiguration as
      | Record<string, { machineType?: string; emulatedMachines?: string[] } | undefined>
      | undefined;
    return byArch?.[arch];
  }

  machineType(arch: string): string {
    return this.archConfig(arch)?.machineType || this.raw.machineType || MACHINE_TYPES[arch] || MACHINE_TYPES.amd64;
  }

  emulatedMachines(arch: string): string[] {
    return this.archConfig(arch)?.emulatedMachines ?? this.raw.emulatedMachines ?? EMULATED_MACHINES[arch] ?? [];
  }

  get cpuModel(): string {
    return this.raw.cpuModel ?? '';
  }
  /** The CPU models no node offers (obsoleteCPUModels, a set in place of upstream's default, as upstream reads it). */
  get obsoleteCpuModels(): ReadonlySet<string> {
    const set = this.raw.obsoleteCPUModels;
    return set ? new Set(Object.keys(set).filter((model) => set[model])) : DEFAULT_OBSOLETE_CPU_MODELS;
  }
  get cpuRequest(): string | number {
    return this.raw.cpuRequest ?? DEFAULT_CPU_REQUEST;
  }
  get useEmulation(): boolean {
    return this.raw.developerConfiguration?.useEmulation ?? false;
  }
  /** developerConfiguration.logVerbosity.virtLauncher, if the CR sets it. */
  get launcherLogVerbosity(): number | undefined {
    return this.raw.developerConfiguration?.logVerbosity?.virtLauncher;
  }
  /** developerConfiguration.diskVerification.memoryLimit: the address space qemu-img may use to read a containerDisk. */
  get diskVerificationMemoryLimitBytes(): number | undefined {
    const limit = this.raw.developerConfiguration?.diskVerification?.memoryLimit;
    return limit === undefined ? undefined : quantityValue(limit);
  }
  get defaultNetworkInterface(): string {
    return this.raw.network?.defaultNetworkInterface || 'bridge';
  }
  get permitBridgeInterfaceOnPodNetwork(): boolean {
    return this.raw.network?.permitBridgeInterfaceOnPodNetwork ?? true;
  }
  get permitSlirpInterface(): boolean {
    return this.raw.network?.permitSlirpInterface ?? false;
  }
  get networkBindings(): Record<string, unknown> {
    return this.raw.network?.binding ?? {};
  }
  get evictionStrategy(): string | undefined {
    return this.raw.evictionStrategy;
  }
  get isLiveUpdateRollout(): boolean {
    return (this.raw.vmRolloutStrategy ?? 'LiveUpdate') === 'LiveUpdate';
  }
  get maxHotplugRatio(): number {
    return this.raw.liveUpdateConfiguration?.maxHotplugRatio || DEFAULT_MAX_HOTPLUG_RATIO;
  }
  get maxCpuSockets(): number {
    return this.raw.liveUpdateConfiguration?.maxCpuSockets ?? 0;
  }
  get maxGuest(): string | number | undefined {
    return this.raw.liveUpdateConfiguration?.maxGuest;
  }
  get memBalloonStatsPeriod(): number {
    return this.raw.memBalloonStatsPeriod ?? 10;
  }
  get rootEnabled(): boolean {
    return this.isFeatureGateEnabled('Root');
  }
  /** spec.configuration.migrations with upstream's defaults. */
  get migrations(): MigrationSettings {
    const m = this.raw.migrations ?? {};
    return {
      parallelMigrationsPerCluster: m.parallelMigrationsPerCluster ?? 5,
      parallelOutboundMigrationsPerNode: m.parallelOutboundMigrationsPerNode ?? 2,
      bandwidthBytesPerSecond: m.bandwidthPerMigration === undefined ? 0 : quantityValue(m.bandwidthPerMigration),
      completionTimeoutPerGiB: m.completionTimeoutPerGiB ?? 150,
      progressTimeoutSeconds: m.progressTimeout ?? 150,
      allowPostCopy: m.allowPostCopy ?? false,
      allowAutoConverge: m.allowAutoConverge ?? false,
    };
  }
}

export interface MigrationSettings {
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
  /** 0: no limit. */
  bandwidthBytesPerSecond: number;
  completionTimeoutPerGiB: number;
  progressTimeoutSeconds: number;
  allowPostCopy: boolean;
  allowAutoConverge: boolean;
}
