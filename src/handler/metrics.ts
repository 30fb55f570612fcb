// The per-VMI metrics virt-handler serves, with upstream's names and labels:
// from one VMI and its launcher's stats snapshot to the samples of each family.
// Pure: the collection (./metrics-collector.ts) asks the launchers and hands
// the snapshots here at each scrape.
import type { VirtualMachineInstance } from '../api/types.ts';
import type { DomainStats } from '../contract/launcher-protocol.ts';
import type { FamilyType, Labels, Sample } from '../lib/metrics.ts';

export interface VmiFamily {
  name: string;
  help: string;
  type: FamilyType;
}

const family = (name: string, type: FamilyType, help: string): VmiFamily => ({ name, type, help });

/** Every per-VMI family virt-handler serves, in the order it serves them. */
export const VMI_FAMILIES = {
  cpuUsage: family(
    'kubevirt_vmi_cpu_usage_seconds_total',
    'counter',
    'Total CPU time spent in all modes (sum of both vcpu and hypervisor usage).',
  ),
  cpuUser: family('kubevirt_vmi_cpu_user_usage_seconds_total', 'counter', 'Total CPU time spent in user mode.'),
  cpuSystem: family('kubevirt_vmi_cpu_system_usage_seconds_total', 'counter', 'Total CPU time spent in system mode.'),
  vcpuSeconds: family(
    'kubevirt_vmi_vcpu_seconds_total',
    'counter',
    'Total amount of time spent in each state by each vcpu (cpu_time excluding hypervisor time). Where `id` is the vcpu identifier and `state` one of running, blocked, offline.',
  ),
  load1m: family('kubevirt_vmi_guest_load_1m', 'gauge', 'Guest system load average over 1 minute as reported by the guest agent.'),
  load5m: family('kubevirt_vmi_guest_load_5m', 'gauge', 'Guest system load average over 5 minutes as reported by the guest agent.'),
  load15m: family('kubevirt_vmi_guest_load_15m', 'gauge', 'Guest system load average over 15 minutes as reported by the guest agent.'),
  memoryDomain: family('kubevirt_vmi_memory_domain_bytes', 'gauge', 'The amount of memory in bytes allocated to the domain.'),
  memoryResident: family('kubevirt_vmi_memory_resident_bytes', 'gauge', 'Resident set size of the process running the domain.'),
  memoryAvailable: family('kubevirt_vmi_memory_available_bytes', 'gauge', 'Amount of usable memory as seen by the domain.'),
  memoryUsable: family(
    'kubevirt_vmi_memory_usable_bytes',
    'gauge',
    'The amount of memory which can be reclaimed by balloon without pushing the guest system to swap.',
  ),
  memoryUnused: family('kubevirt_vmi_memory_unused_bytes', 'gauge', 'The amount of memory left completely unused by the system.'),
  memoryBalloon: family('kubevirt_vmi_memory_actual_balloon_bytes', 'gauge', 'Current balloon size in bytes.'),
  netRxBytes: family('kubevirt_vmi_network_receive_bytes_total', 'counter', 'Total network traffic received in bytes.'),
  netTxBytes: family('kubevirt_vmi_network_transmit_bytes_total', 'counter', 'Total network traffic transmitted in bytes.'),
  netRxPackets: family('kubevirt_vmi_network_receive_packets_total', 'counter', 'Total network traffic received packets.'),
  netTxPackets: family('kubevirt_vmi_network_transmit_packets_total', 'counter', 'Total network traffic transmitted packets.'),
  netRxErrors: family('kubevirt_vmi_network_receive_errors_total', 'counter', 'Total network received error packets.'),
  netTxErrors: family('kubevirt_vmi_network_transmit_errors_total', 'counter', 'Total network transmitted error packets.'),
  netRxDropped: family(
    'kubevirt_vmi_network_receive_packets_dropped_total',
    'counter',
    'The total number of rx packets dropped on vNIC interfaces.',
  ),
  netTxDropped: family(
    'kubevirt_vmi_network_transmit_packets_dropped_total',
    'counter',
    'The total number of tx packets dropped on vNIC interfaces.',
  ),
  storageReadBytes: family('kubevirt_vmi_storage_read_traffic_bytes_total', 'counter', 'Total number of bytes read from storage.'),
  storageWriteBytes: family('kubevirt_vmi_storage_write_traffic_bytes_total', 'counter', 'Total number of written bytes.'),
  storageReadOps: family('kubevirt_vmi_storage_iops_read_total', 'counter', 'Total number of I/O read operations.'),
  storageWriteOps: family('kubevirt_vmi_storage_iops_write_total', 'counter', 'Total number of I/O write operations.'),
  storageFlushOps: family('kubevirt_vmi_storage_flush_requests_total', 'counter', 'Total storage flush requests.'),
  storageReadTimes: family('kubevirt_vmi_storage_read_times_seconds_total', 'counter', 'Total time spent on read operations.'),
  storageWriteTimes: family('kubevirt_vmi_storage_write_times_seconds_total', 'counter', 'Total time spent on write operations.'),
  storageFlushTimes: family('kubevirt_vmi_storage_flush_times_seconds_total', 'counter', 'Total time spent on cache flushing.'),
  fsCapacity: family('kubevirt_vmi_filesystem_capacity_bytes', 'gauge', 'Total VM filesystem capacity in bytes.'),
  fsUsed: family('kubevirt_vmi_filesystem_used_bytes', 'gauge', 'Used VM filesystem capacity in bytes.'),
} as const;

export type VmiFamilyKey = keyof typeof VMI_FAMILIES;
export type VmiSamples = Partial<Record<VmiFamilyKey, Sample[]>>;

const LABEL_PREFIX = 'kubernetes_vmi_label_';

/** A VMI label as a Prometheus label name: upstream's prefix, with '.', '/' and '-' made '_'. */
export function vmiLabelName(key: string): string {
  return LABEL_PREFIX + key.replace(/[./-]/g, '_');
}

/** The labels every per-VMI sample carries: node, namespace, name and the VMI's own labels. */
export function vmiLabels(vmi: VirtualMachineInstance): Labels {
  const labels: Labels = {};
  for (const [key, value] of Object.entries(vmi.metadata.labels ?? {})) {
    const name = vmiLabelName(key);
    // Anything still outside Prometheus' label name alphabet would break the scrape: left out.
    if (/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) labels[name] = value;
  }
  return { ...labels, node: vmi.status?.nodeName ?? '', namespace: vmi.metadata.namespace ?? '', name: vmi.metadata.name ?? '' };
}

const defined = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value);

/** The samples of one VMI's snapshot, family by family. */
export function vmiSamples(vmi: VirtualMachineInstance, stats: DomainStats): VmiSamples {
  const base = vmiLabels(vmi);
  const out: VmiSamples = {};
  const add = (key: VmiFamilyKey, value: number | undefined, extra: Labels = {}) => {
    if (!defined(value)) return;
    (out[key] ??= []).push({ labels: { ...base, ...extra }, value });
  };
  if (stats.cpu) {
    add('cpuUsage', stats.cpu.userSeconds + stats.cpu.systemSeconds);
    add('cpuUser', stats.cpu.userSeconds);
    add('cpuSystem', stats.cpu.systemSeconds);
  }
  for (const vcpu of stats.vcpus ?? []) add('vcpuSeconds', vcpu.seconds, { id: String(vcpu.id), state: vcpu.state });
  add('load1m', stats.load?.load1m);
  add('load5m', stats.load?.load5m);
  add('load15m', stats.load?.load15m);
  const memory = stats.memory ?? {};
  add('memoryDomain', memory.domainBytes);
  add('memoryResident', memory.residentBytes);
  add('memoryAvailable', memory.availableBytes);
  add('memoryUsable', memory.usableBytes);
  add('memoryUnused', memory.unusedBytes);
  add('memoryBalloon', memory.actualBalloonBytes);
  for (const net of stats.networks ?? []) {
    const labels = { interface: net.interface };
    add('netRxBytes', net.rxBytes, labels);
    add('netTxBytes', net.txBytes, labels);
    add('netRxPackets', net.rxPackets, labels);
    add('netTxPackets', net.txPackets, labels);
    add('netRxErrors', net.rxErrors, labels);
    add('netTxErrors', net.txErrors, labels);
    add('netRxDropped', net.rxDropped, labels);
    add('netTxDropped', net.txDropped, labels);
  }
  for (const block of stats.blocks ?? []) {
    const labels = { drive: block.drive };
    add('storageReadBytes', block.readBytes, labels);
    add('storageWriteBytes', block.writeBytes, labels);
    add('storageReadOps', block.readOps, labels);
    add('storageWriteOps', block.writeOps, labels);
    add('storageFlushOps', block.flushOps, labels);
    add('storageReadTimes', block.readSeconds, labels);
    add('storageWriteTimes', block.writeSeconds, labels);
    add('storageFlushTimes', block.flushSeconds, labels);
  }
  for (const fs of stats.filesystems ?? []) {
    const labels = { disk_name: fs.diskName, mount_point: fs.mountPoint, file_system_type: fs.type };
    add('fsCapacity', fs.capacityBytes, labels);
    add('fsUsed', fs.usedBytes, labels);
  }
  return out;
}

/** The samples of many VMIs merged, family by family. */
export function mergeSamples(all: readonly VmiSamples[]): VmiSamples {
  const out: VmiSamples = {};
  for (const samples of all) {
    for (const [key, list] of Object.entries(samples) as [VmiFamilyKey, Sample[]][]) (out[key] ??= []).push(...list);
  }
  return out;
}

/** kubevirt_console_active_connections / kubevirt_vnc_active_connections: one sample per VMI with an open stream. */
export function connectionSamples(open: readonly { namespace: string; name: string }[]): Sample[] {
  const counts = new Map<string, { namespace: string; name: string; count: number }>();
  for (const { namespace, name } of open) {
    const key = `${namespace}/${name}`;
    const entry = counts.get(key) ?? { namespace, name, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  return [...counts.values()].map((c) => ({ labels: { namespace: c.namespace, vmi: c.name }, value: c.count }));
}
