// virt-controller's metrics, with upstream's names and labels: kubevirt_vmi_info
// and kubevirt_vm_info built afresh from the caches at each scrape, the VMI
// phase transition histograms observed as VMIs change phase, and the migration
// phase gauges (zero: kubevirt-ts does not migrate yet).
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance } from '../api/types.ts';
import type { InformerCache } from '../lib/kube.ts';

/** Upstream's buckets for the phase transition histograms, in seconds. */
export const PHASE_TRANSITION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600];

const ANNOTATION_PREFIX = 'vm.kubevirt.io/';
const annotation = (obj: { metadata: { annotations?: Record<string, string> } }, key: string) =>
  obj.metadata.annotations?.[ANNOTATION_PREFIX + key] ?? '';

export const VMI_INFO_LABELS = [
  'node',
  'namespace',
  'name',
  'phase',
  'os',
  'workload',
  'flavor',
  'instance_type',
  'preference',
  'guest_os_kernel_release',
  'guest_os_machine',
  'guest_os_arch',
  'guest_os_name',
  'guest_os_version_id',
  'evictable',
  'outdated',
  'vmi_pod',
] as const;

export const VM_INFO_LABELS = [
  'name',
  'namespace',
  'os',
  'workload',
  'flavor',
  'machine_type',
  'instance_type',
  'preference',
  'status',
  'status_group',
] as const;

/** The launcher pod running a VMI on its node, by upstream's created-by label. */
function runningPodOf(vmi: VirtualMachineInstance, pods: readonly V1Pod[]): string {
  const pod = pods.find(
    (p) =>
      p.metadata?.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid &&
      p.status?.phase === 'Running' &&
      p.spec?.nodeName === vmi.status?.nodeName,
  );
  return pod?.metadata?.name ?? '';
}

/** The labels of a VMI's kubevirt_vmi_info sample. */
export function vmiInfoLabels(vmi: VirtualMachineInstance, pods: readonly V1Pod[]): Record<(typeof VMI_INFO_LABELS)[number], string> {
  const annotations = vmi.metadata.annotations ?? {};
  const guest = vmi.status?.guestOSInfo ?? {};
  const strategy = vmi.spec.evictionStrategy;
  return {
    node: vmi.status?.nodeName ?? '',
    namespace: vmi.metadata.namespace ?? '',
    name: vmi.metadata.name ?? '',
    phase: (vmi.status?.phase ?? '').toLowerCase(),
    os: annotation(vmi, 'os'),
    workload: annotation(vmi, 'workload'),
    flavor: annotation(vmi, 'flavor'),
    instance_type: annotations['kubevirt.io/instancetype-name'] ?? annotations['kubevirt.io/cluster-instancetype-name'] ?? '',
    preference: annotations['kubevirt.io/preference-name'] ?? annotations['kubevirt.io/cluster-preference-name'] ?? '',
    guest_os_kernel_release: guest.kernelRelease ?? '',
    guest_os_machine: vmi.status?.machine?.type ?? '',
    guest_os_arch: guest.machine ?? '',
    guest_os_name: guest.name ?? '',
    guest_os_version_id: guest.versionId ?? '',
    // Only a live-migrating strategy keeps a VMI through a node drain.
    evictable: String(strategy === 'LiveMigrate' || strategy === 'LiveMigrateIfPossible'),
    outdated: 'false',
    vmi_pod: runningPodOf(vmi, pods),
  };
}

const STATUS_GROUPS: Record<string, string> = {
  Provisioning: 'starting',
  Starting: 'starting',
  WaitingForVolumeBinding: 'starting',
  Running: 'running',
  Migrating: 'migrating',
  Stopped: 'non_running',
  Paused: 'non_running',
  Stopping: 'non_running',
  Terminating: 'non_running',
  CrashLoopBackOff: 'error',
  Unknown: 'error',
  ErrorUnschedulable: 'error',
  ErrImagePull: 'error',
  ImagePullBackOff: 'error',
  ErrorPvcNotFound: 'error',
  DataVolumeError: 'error',
};

/** The labels of a VM's kubevirt_vm_info sample. */
export function vmInfoLabels(vm: VirtualMachine): Record<(typeof VM_INFO_LABELS)[number], string> {
  const status = vm.status?.printableStatus ?? '';
  const template = vm.spec.template;
  return {
    name: vm.metadata.name ?? '',
    namespace: vm.metadata.namespace ?? '',
    os: template?.metadata?.annotations?.[`${ANNOTATION_PREFIX}os`] ?? annotation(vm, 'os'),
    workload: template?.metadata?.annotations?.[`${ANNOTATION_PREFIX}workload`] ?? annotation(vm, 'workload'),
    flavor: template?.metadata?.annotations?.[`${ANNOTATION_PREFIX}flavor`] ?? annotation(vm, 'flavor'),
    machine_type: template?.spec?.domain?.machine?.type ?? '',
    instance_type: vm.spec.instancetype?.name ?? '',
    preference: vm.spec.preference?.name ?? '',
    status: status.toLowerCase(),
    status_group: STATUS_GROUPS[status] ?? '<unknown>',
  };
}

/** When a VMI entered `phase`, from its status' transition timestamps, in seconds since the epoch. */
function phaseTime(vmi: VirtualMachineInstance, phase: string | undefined): number | undefined {
  const entry = vmi.status?.phaseTransitionTimestamps?.find((t) => t.phase === phase);
  const at = entry?.phaseTransitionTimestamp ? Date.parse(entry.phaseTransitionTimestamp) : Number.NaN;
  return Number.isFinite(at) ? at / 1000 : undefined;
}

/**
 * The transitions to observe when a VMI is seen in `vmi`'s phase after `lastPhase`: the time
 * from the last phase to this one, and from creation to this one. None when the phase did not
 * change or a timestamp is missing.
 */
export function phaseTransitions(
  lastPhase: string | undefined,
  vmi: VirtualMachineInstance,
): { between?: { phase: string; last_phase: string; seconds: number }; fromCreation?: { phase: string; seconds: number } } {
  const phase = vmi.status?.phase;
  if (!phase || !lastPhase || phase === lastPhase) return {};
  const now = phaseTime(vmi, phase);
  if (now === undefined) return {};
  const before = phaseTime(vmi, lastPhase);
  const created = vmi.metadata.creationTimestamp ? Date.parse(vmi.metadata.creationTimestamp) / 1000 : undefined;
  return {
    ...(before !== undefined && now >= before ? { between: { phase, last_phase: lastPhase, seconds: now - before } } : {}),
    ...(created !== undefined && Number.isFinite(created) && now >= created ? { fromCreation: { phase, seconds: now - created } } : {}),
  };
}

/** Adds virt-controller's families to `registry`, fed by the caches and the VMI informer's events. */
export function controllerMetrics(
  registry: Registry,
  informers: {
    vms: InformerCache<VirtualMachine>;
    vmis: InformerCache<VirtualMachineInstance>;
    pods: InformerCache<V1Pod>;
  },
): void {
  new Gauge({
    name: 'kubevirt_vmi_info',
    help: 'Information about VirtualMachineInstances.',
    labelNames: VMI_INFO_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      const pods = informers.pods.list();
      for (const vmi of informers.vmis.list()) this.set(vmiInfoLabels(vmi, pods), 1);
    },
  });
  new Gauge({
    name: 'kubevirt_vm_info',
    help: 'Information about Virtual Machines.',
    labelNames: VM_INFO_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of informers.vms.list()) this.set(vmInfoLabels(vm), 1);
    },
  });
  for (const phase of ['pending', 'scheduling', 'running', 'unset']) {
    new Gauge({
      name: `kubevirt_vmi_migrations_in_${phase}_phase`,
      help: `Number of current ${phase} migrations.`,
      registers: [registry],
    }).set(0);
  }
  const between = new Histogram({
    name: 'kubevirt_vmi_phase_transition_time_seconds',
    help: 'Histogram of VM phase transitions duration between different phases in seconds.',
    labelNames: ['phase', 'last_phase'],
    buckets: PHASE_TRANSITION_BUCKETS,
    registers: [registry],
  });
  const fromCreation = new Histogram({
    name: 'kubevirt_vmi_phase_transition_time_from_creation_seconds',
    help: 'Histogram of VM phase transitions duration from creation time in seconds.',
    labelNames: ['phase'],
    buckets: PHASE_TRANSITION_BUCKETS,
    registers: [registry],
  });
  const lastPhase = new Map<string, string | undefined>();
  const keyOf = (vmi: VirtualMachineInstance) => `${vmi.metadata.namespace}/${vmi.metadata.name}/${vmi.metadata.uid}`;
  informers.vmis.on('add', (vmi) => lastPhase.set(keyOf(vmi), vmi.status?.phase));
  informers.vmis.on('update', (vmi) => {
    const key = keyOf(vmi);
    const seen = phaseTransitions(lastPhase.get(key), vmi);
    if (seen.between) between.observe({ phase: seen.between.phase, last_phase: seen.between.last_phase }, seen.between.seconds);
    if (seen.fromCreation) fromCreation.observe({ phase: seen.fromCreation.phase }, seen.fromCreation.seconds);
    lastPhase.set(key, vmi.status?.phase);
  });
  informers.vmis.on('delete', (vmi) => lastPhase.delete(keyOf(vmi)));
}
