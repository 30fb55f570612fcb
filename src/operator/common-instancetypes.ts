// The catalogue virt-operator installs: kubevirt/common-instancetypes' cluster
// instance types (series u1, o1, cx1, m1, n1, d1, rt1 in their sizes) and
// cluster preferences for common guest operating systems, written as compact
// tables that generate the objects. Values follow the published catalogue
// (common-instancetypes v1.7.0 as bundled by upstream KubeVirt).

type Obj = Record<string, unknown> & { metadata: { name: string; labels: Record<string, string>; annotations?: Record<string, string> } };

export const COMMON_INSTANCETYPES_VERSION = 'v1.7.0';
const VENDOR = {
  'instancetype.kubevirt.io/vendor': 'kubevirt.io',
  'instancetype.kubevirt.io/common-instancetypes-version': COMMON_INSTANCETYPES_VERSION,
};
const API_VERSION = 'instancetype.kubevirt.io/v1beta1';
const CRIO_DEDICATED = { 'cpu-load-balancing.crio.io': 'disable', 'cpu-quota.crio.io': 'disable', 'irq-load-balancing.crio.io': 'disable' };

/** Size name → [vCPUs, memory]. */
type Sizes = Record<string, [number, string]>;

interface Series {
  name: string;
  /** instancetype.kubevirt.io/class and the displayName annotation. */
  className: string;
  displayName: string;
  sizes: Sizes;
  /** The spec's other parts, for a size (and the hugepage size, for series that have 1Gi variants). */
  extra: (cpus: number, pageSize?: string) => Record<string, unknown>;
  /** Series offering each size with 1Gi hugepages too, named <size>1gi. */
  gigantic?: boolean;
  labels?: (pageSize?: string) => Record<string, string>;
}

const GENERAL_SIZES: Sizes = {
  nano: [1, '512Mi'],
  micro: [1, '1Gi'],
  small: [1, '2Gi'],
  medium: [1, '4Gi'],
  '2xmedium': [2, '4Gi'],
  large: [2, '8Gi'],
  xlarge: [4, '16Gi'],
  '2xlarge': [8, '32Gi'],
  '4xlarge': [16, '64Gi'],
  '8xlarge': [32, '128Gi'],
};
const pick = (sizes: Sizes, names: string[]): Sizes => Object.fromEntries(names.map((n) => [n, sizes[n]]));
const dedicated = { dedicatedCPUPlacement: true, isolateEmulatorThread: true };

export const SERIES: Series[] = [
  { name: 'u1', className: 'universal', displayName: 'Universal', sizes: GENERAL_SIZES, extra: () => ({}) },
  {
    name: 'o1',
    className: 'overcommitted',
    displayName: 'Overcommitted',
    sizes: pick(GENERAL_SIZES, ['nano', 'micro', 'small', 'medium', 'large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
    extra: () => ({ memory: { overcommitPercent: 50 } }),
  },
  {
    name: 'cx1',
    className: 'compute.exclusive',
    displayName: 'Compute Exclusive',
    sizes: {
      medium: [1, '2Gi'],
      large: [2, '4Gi'],
      xlarge: [4, '8Gi'],
      '2xlarge': [8, '16Gi'],
      '4xlarge': [16, '32Gi'],
      '8xlarge': [32, '64Gi'],
    },
    gigantic: true,
    extra: (cpus, pageSize = '2Mi') => ({
      cpu: { ...dedicated, maxSockets: cpus, numa: { guestMappingPassthrough: {} } },
      ioThreadsPolicy: 'auto',
      memory: { hugepages: { pageSize } },
    }),
  },
  {
    name: 'm1',
    className: 'memory',
    displayName: 'Memory',
    sizes: { large: [2, '16Gi'], xlarge: [4, '32Gi'], '2xlarge': [8, '64Gi'], '4xlarge': [16, '128Gi'], '8xlarge': [32, '256Gi'] },
    gigantic: true,
    extra: (_cpus, pageSize = '2Mi') => ({ memory: { hugepages: { pageSize } } }),
  },
  {
    name: 'n1',
    className: 'network',
    displayName: 'Network',
    sizes: {
      medium: [4, '4Gi'],
      large: [4, '8Gi'],
      xlarge: [8, '16Gi'],
      '2xlarge': [16, '32Gi'],
      '4xlarge': [32, '64Gi'],
      '8xlarge': [64, '128Gi'],
    },
    extra: () => ({ annotations: CRIO_DEDICATED, cpu: dedicated, memory: { hugepages: { pageSize: '1Gi' } } }),
  },
  {
    name: 'd1',
    className: 'dedicated',
    displayName: 'Dedicated',
    sizes: {
      nano: [1, '512Mi'],
      micro: [1, '1Gi'],
      small: [1, '2Gi'],
      medium: [1, '4Gi'],
      '2xmedium': [2, '4Gi'],
      large: [2, '8Gi'],
      xlarge: [4, '16Gi'],
      '2xlarge': [8, '32Gi'],
      '4xlarge': [16, '64Gi'],
      '8xlarge': [32, '128Gi'],
    },
    extra: () => ({ cpu: dedicated, ioThreadsPolicy: 'auto' }),
  },
  {
    name: 'rt1',
    className: 'realtime',
    displayName: 'Realtime',
    sizes: pick(GENERAL_SIZES, ['micro', 'small', 'medium', 'large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
    extra: () => ({
      annotations: CRIO_DEDICATED,
      cpu: { ...dedicated, numa: { guestMappingPassthrough: {} }, realtime: {} },
      memory: { hugepages: { pageSize: '1Gi' } },
    }),
  },
];

/** Deep merge of plain objects (the extra parts into cpu and memory). */
function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      current && typeof current === 'object' && value && typeof value === 'object' && !Array.isArray(value)
        ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export function commonClusterInstancetypes(): Obj[] {
  return SERIES.flatMap((series) =>
    Object.entries(series.sizes).flatMap(([size, [cpus, memory]]) => {
      const variants: (string | undefined)[] = series.gigantic ? [undefined, '1Gi'] : [undefined];
      return variants.map((pageSize) => {
        const spec = merge({ cpu: { guest: cpus }, memory: { guest: memory } }, series.extra(cpus, pageSize));
        const hugepages = (spec.memory as { hugepages?: { pageSize: string } }).hugepages?.pageSize;
        return {
          apiVersion: API_VERSION,
          kind: 'VirtualMachineClusterInstancetype',
          metadata: {
            name: `${series.name}.${size}${pageSize ? '1gi' : ''}`,
            annotations: { 'instancetype.kubevirt.io/displayName': series.displayName },
            labels: {
              'instancetype.kubevirt.io/class': series.className,
              'instancetype.kubevirt.io/cpu': String(cpus),
              'instancetype.kubevirt.io/memory': memory,
              'instancetype.kubevirt.io/size': size,
              'instancetype.kubevirt.io/version': '1',
              ...(hugepages ? { 'instancetype.kubevirt.io/hugepages': hugepages } : {}),
              ...VENDOR,
            },
          },
          spec,
        };
      });
    }),
  );
}

// Preferences: a base per guest family, and per OS its requirements and additions.
const LINUX = { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredRng: {} };
const IOTHREAD = { preferredDiskDedicatedIoThread: true };
const DESKTOP = { preferredAutoattachInputDevice: true, preferredInputBus: 'virtio', preferredInputType: 'tablet' };
const SECURE_BOOT = { features: { preferredSmm: {} }, firmware: { preferredEfi: { secureBoot: true } } };
const EFI = { firmware: { preferredEfi: { secureBoot: false } } };
const DPDK_CPU = { cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCoresThreads', ratio: 4 } } };
const arch = (a: string) => ({ preferredArchitecture: a, requirements: { architecture: a } });
const HYPERV = {
  frequencies: {},
  ipi: {},
  reenlightenment: {},
  relaxed: {},
  reset: {},
  runtime: {},
  spinlocks: { spinlocks: 8191 },
  synic: {},
  synictimer: { direct: {} },
  tlbflush: {},
  vapic: {},
  vpindex: {},
};
const WINDOWS_BASE = {
  clock: {
    preferredClockOffset: { utc: {} },
    preferredTimer: { hpet: { present: false }, hyperv: {}, pit: { tickPolicy: 'delay' }, rtc: { tickPolicy: 'catchup' } },
  },
  cpu: { preferredCPUTopology: 'sockets' },
  features: { preferredAcpi: {}, preferredApic: {}, preferredHyperv: HYPERV },
  preferredTerminationGracePeriodSeconds: 3600,
};
const WINDOWS_SATA = { preferredAutoattachInputDevice: true, preferredDiskBus: 'sata', preferredInterfaceModel: 'e1000e' };
const WINDOWS_VIRTIO = { ...DESKTOP, preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredVideoType: 'virtio' };

interface PreferenceRow {
  name: string;
  os: 'linux' | 'windows' | 'legacy';
  displayName: string;
  /** [vCPUs, memory] the guest needs at least. */
  requires?: [number, string];
  devices: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

const linux = (
  name: string,
  displayName: string,
  requires?: [number, string],
  devices: Record<string, unknown> = {},
  extra = {},
): PreferenceRow => ({
  name,
  os: 'linux',
  displayName,
  ...(requires ? { requires } : {}),
  devices: { ...LINUX, ...devices },
  extra,
});
/** Windows, with the emulated devices, and its .virtio twin. */
const windows = (
  name: string,
  displayName: string,
  requires: [number, string],
  extra: Record<string, unknown> = {},
  sataDevices = {},
): PreferenceRow[] => [
  { name, os: 'windows', displayName, requires, devices: { ...WINDOWS_SATA, ...sataDevices }, extra: merge(WINDOWS_BASE, extra) },
  {
    name: `${name}.virtio`,
    os: 'windows',
    displayName: `${displayName} (virtio)`,
    requires,
    devices: { ...WINDOWS_VIRTIO, ...sataDevices },
    extra: merge(WINDOWS_BASE, extra),
  },
];
const MODERN_WINDOWS = { features: { preferredSmm: {} }, firmware: { preferredEfi: { secureBoot: true } } };
const TPM_WINDOWS = { features: { preferredSmm: {} }, firmware: { preferredEfi: { persistent: true, secureBoot: true } } };

export const PREFERENCES: PreferenceRow[] = [
  linux('alpine', 'Alpine', [1, '512Mi']),
  linux('centos.stream9', 'CentOS Stream 9', [1, '1.5Gi'], IOTHREAD),
  linux('centos.stream9.desktop', 'CentOS Stream 9 Desktop', [1, '1.5Gi'], { ...IOTHREAD, ...DESKTOP }),
  linux('centos.stream9.dpdk', 'CentOS Stream 9 DPDK', [8, '1.5Gi'], { ...IOTHREAD, preferredNetworkInterfaceMultiQueue: true }, DPDK_CPU),
  linux('centos.stream10', 'CentOS Stream 10', [1, '1.5Gi'], IOTHREAD),
  linux('centos.stream10.desktop', 'CentOS Stream 10 Desktop', [1, '1.5Gi'], { ...IOTHREAD, ...DESKTOP }),
  linux('cirros', 'CirrOS', [1, '256Mi']),
  linux('debian', 'Debian', [1, '512Mi'], {}, EFI),
  linux('fedora', 'Fedora (amd64)', [1, '2Gi'], {}, merge(SECURE_BOOT, arch('amd64'))),
  linux('fedora.arm64', 'Fedora (arm64)', [1, '2Gi'], {}, arch('arm64')),
  linux('fedora.s390x', 'Fedora (s390x)', [1, '2Gi'], {}, arch('s390x')),
  { name: 'legacy', os: 'legacy', displayName: 'Legacy', devices: { preferredDiskBus: 'sata', preferredInterfaceModel: 'e1000' } },
  linux('linux', 'Linux'),
  linux('linux.efi', 'Linux EFI', undefined, {}, EFI),
  linux('linux.virtiotransitional', 'Linux Virtio Transitional', undefined, { preferredUseVirtioTransitional: true }),
  linux('opensuse.leap', 'OpenSUSE Leap', [1, '2Gi']),
  linux('opensuse.tumbleweed', 'OpenSUSE Tumbleweed', [1, '2Gi']),
  linux('oraclelinux', 'Oracle Linux', [2, '4Gi'], {}, EFI),
  linux('rhel.7', 'Red Hat Enterprise Linux 7', [1, '1Gi']),
  linux('rhel.7.desktop', 'Red Hat Enterprise Linux 7 Desktop', [1, '1Gi'], DESKTOP),
  linux('rhel.8', 'Red Hat Enterprise Linux 8', [1, '1.5Gi']),
  linux('rhel.8.desktop', 'Red Hat Enterprise Linux 8 Desktop', [1, '1.5Gi'], DESKTOP),
  linux('rhel.8.dpdk', 'Red Hat Enterprise Linux 8 DPDK', [8, '1.5Gi'], { preferredNetworkInterfaceMultiQueue: true }, DPDK_CPU),
  linux('rhel.9', 'Red Hat Enterprise Linux 9 (amd64)', [1, '1.5Gi'], IOTHREAD, merge(SECURE_BOOT, arch('amd64'))),
  linux('rhel.9.arm64', 'Red Hat Enterprise Linux 9 (arm64)', [1, '1.5Gi'], IOTHREAD, arch('arm64')),
  linux('rhel.9.s390x', 'Red Hat Enterprise Linux 9 (s390x)', [1, '1.5Gi'], IOTHREAD, arch('s390x')),
  linux(
    'rhel.9.desktop',
    'Red Hat Enterprise Linux 9 Desktop (amd64)',
    [1, '1.5Gi'],
    { ...IOTHREAD, ...DESKTOP },
    merge(SECURE_BOOT, arch('amd64')),
  ),
  linux(
    'rhel.9.dpdk',
    'Red Hat Enterprise Linux 9 DPDK (amd64)',
    [8, '1.5Gi'],
    { ...IOTHREAD, preferredNetworkInterfaceMultiQueue: true },
    merge(merge(DPDK_CPU, SECURE_BOOT), arch('amd64')),
  ),
  linux('rhel.10', 'Red Hat Enterprise Linux 10 (amd64)', [1, '1.5Gi'], IOTHREAD, merge(SECURE_BOOT, arch('amd64'))),
  linux('rhel.10.arm64', 'Red Hat Enterprise Linux 10 (arm64)', [1, '1.5Gi'], IOTHREAD, arch('arm64')),
  linux('rhel.10.s390x', 'Red Hat Enterprise Linux 10 (s390x)', [1, '1.5Gi'], IOTHREAD, arch('s390x')),
  linux('sles', 'SUSE Linux Enterprise Server', [1, '2Gi']),
  linux('ubuntu', 'Ubuntu', [1, '2Gi']),
  ...windows('windows.10', 'Microsoft Windows 10', [1, '2Gi'], MODERN_WINDOWS),
  ...windows('windows.11', 'Microsoft Windows 11', [2, '4Gi'], TPM_WINDOWS, { preferredTPM: { persistent: true } }),
  ...windows('windows.2k16', 'Microsoft Windows Server 2016', [1, '2Gi'], MODERN_WINDOWS),
  ...windows('windows.2k19', 'Microsoft Windows Server 2019', [1, '2Gi'], MODERN_WINDOWS),
  ...windows('windows.2k22', 'Microsoft Windows Server 2022', [1, '2Gi'], TPM_WINDOWS, { preferredTPM: { persistent: true } }),
  ...windows('windows.2k25', 'Microsoft Windows Server 2025', [1, '2Gi'], TPM_WINDOWS, { preferredTPM: { persistent: true } }),
];

export function commonClusterPreferences(): Obj[] {
  return PREFERENCES.map((row) => {
    const requirements = merge(
      row.requires ? { cpu: { guest: row.requires[0] }, memory: { guest: row.requires[1] } } : {},
      ((row.extra as { requirements?: Record<string, unknown> } | undefined)?.requirements ?? {}) as Record<string, unknown>,
    );
    const spec = merge(
      { annotations: { 'vm.kubevirt.io/os': row.os }, devices: row.devices },
      { ...row.extra, ...(Object.keys(requirements).length ? { requirements } : {}) },
    );
    return {
      apiVersion: API_VERSION,
      kind: 'VirtualMachineClusterPreference',
      metadata: {
        name: row.name,
        annotations: { 'openshift.io/display-name': row.displayName, 'openshift.io/provider-display-name': 'KubeVirt' },
        labels: {
          'instancetype.kubevirt.io/os-type': row.os,
          ...(row.requires
            ? {
                'instancetype.kubevirt.io/required-cpu': String(row.requires[0]),
                'instancetype.kubevirt.io/required-memory': row.requires[1],
              }
            : {}),
          ...VENDOR,
        },
      },
      spec,
    };
  });
}

/** The kinds the catalogue is made of (its API version is instancetype.kubevirt.io/v1beta1). */
export const CATALOGUE_KINDS = ['VirtualMachineClusterInstancetype', 'VirtualMachineClusterPreference'] as const;
export type CatalogueKind = (typeof CATALOGUE_KINDS)[number];

/** The whole catalogue, instance types then preferences. */
export function commonInstancetypes(): Obj[] {
  return [...commonClusterInstancetypes(), ...commonClusterPreferences()];
}
