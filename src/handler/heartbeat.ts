// virt-handler's node heartbeat: the labels that let launcher pods land on
// this node and describe its CPU, the KVM device as an extended resource
// (upstream's name), and the timestamp the node controller watches.
import { NODE_SCHEDULABLE_LABEL } from '../api/constants.ts';
import {
  CPU_FEATURE_LABEL_PREFIX,
  CPU_MODEL_LABEL_PREFIX,
  EMULATION_ANNOTATION,
  HEARTBEAT_ANNOTATION,
  KVM_RESOURCE,
} from '../contract/node.ts';
import { apiTimestamp } from '../contract/vmi.ts';
/** CPU features worth scheduling on, labelled as upstream's node labeller names them. */
const FEATURES = ['aes', 'avx', 'avx2', 'avx512f', 'fma', 'pclmulqdq', 'rdrand', 'sse4_1', 'sse4_2', 'ssse3', 'svm', 'vmx', 'x2apic'];
const VENDORS: Record<string, string> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD' };

/** Labels describing the host CPU, from /proc/cpuinfo. */
export function cpuLabels(cpuinfo: string): Record<string, string> {
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo)?.[1];
  const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? []);
  const labels: Record<string, string> = {};
  if (vendor) labels[`cpu-vendor.node.kubevirt.io/${VENDORS[vendor] ?? vendor}`] = 'true';
  for (const f of FEATURES) if (flags.has(f)) labels[`${CPU_FEATURE_LABEL_PREFIX}${f}`] = 'true';
  return labels;
}

/**
 * The node's CPU model labels: one per model offered, and a removal (null, in a merge patch) for
 * each model label the node carries that is no longer offered.
 */
export function cpuModelLabels(models: readonly string[], current: Record<string, string>): Record<string, string | null> {
  const labels: Record<string, string | null> = {};
  for (const key of Object.keys(current)) if (key.startsWith(CPU_MODEL_LABEL_PREFIX)) labels[key] = null;
  for (const model of models) labels[`${CPU_MODEL_LABEL_PREFIX}${model}`] = 'true';
  return labels;
}

/** The merge patch one heartbeat writes to the node's metadata. */
export function heartbeatPatch(
  now: Date,
  schedulable: boolean,
  cpu: Record<string, string | null>,
  emulation: boolean | undefined,
): object {
  return {
    metadata: {
      labels: { ...cpu, [NODE_SCHEDULABLE_LABEL]: String(schedulable) },
      annotations: {
        [HEARTBEAT_ANNOTATION]: apiTimestamp(now),
        ...(emulation !== undefined ? { [EMULATION_ANNOTATION]: String(emulation) } : {}),
      },
    },
  };
}

/** The merge patch that takes the node out of scheduling for VMIs: only the label, the last heartbeat stays as it was. */
export function unschedulablePatch(): object {
  return { metadata: { labels: { [NODE_SCHEDULABLE_LABEL]: 'false' } } };
}

/** The merge patch of the node's status advertising the KVM device: 1000 VMIs' worth, or none. */
export function kvmCapacityPatch(usable: boolean): object {
  const amount = usable ? '1k' : '0';
  return { status: { capacity: { [KVM_RESOURCE]: amount }, allocatable: { [KVM_RESOURCE]: amount } } };
}
