// KubeVirt's Prometheus rules: upstream's recording rule and alert names, each
// expression written here from what the rule is documented to mean. One source
// for the three places that load them: the prometheus-kubevirt-rules
// PrometheusRule virt-operator installs, manifests/kubevirt-prometheus-rules.yaml
// (a plain rules file, checked by promtool in CI) and the local cluster's Prometheus.
//
// The component rules select by the labels a ServiceMonitor scrape gives a target
// (namespace, pod); per-VMI series keep their own namespace and name (honor_labels).
// Rules over kube_* and container_* series need kube-state-metrics and cAdvisor.
import { stringify } from 'yaml';

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: (RecordingRule | AlertingRule)[];
}

export const PROMETHEUS_RULE_NAME = 'prometheus-kubevirt-rules';
const RUNBOOKS = 'https://kubevirt.io/monitoring/runbooks/';

const COMPONENTS = ['api', 'controller', 'handler', 'operator'] as const;
type Component = (typeof COMPONENTS)[number];

/** `expr`, or 0 when it has no series: a count of nothing is zero, not absent. */
const orZero = (expr: string) => `((${expr}) or on() vector(0))`;

/** The components' and the cluster's state, for the install in `ns`. */
function componentRecordingRules(ns: string): RecordingRule[] {
  const pods = (c: Component) => `namespace="${ns}", pod=~"virt-${c}-.+"`;
  return COMPONENTS.flatMap((c) => [
    // Pods whose metrics endpoint answered the last scrape.
    { record: `cluster:kubevirt_virt_${c}_up:sum`, expr: orZero(`count(up{${pods(c)}} == 1)`) },
    {
      record: `cluster:kubevirt_virt_${c}_pods_running:count`,
      expr: orZero(`count(kube_pod_status_phase{${pods(c)}, phase="Running"} > 0)`),
    },
    // Ready by the kubelet's probe and by the component's own gauge.
    {
      record: `cluster:kubevirt_virt_${c}_ready:sum`,
      expr: orZero(
        `count((kube_pod_status_ready{${pods(c)}, condition="true"} > 0) and on(namespace, pod) (kubevirt_virt_${c}_ready_status{namespace="${ns}"} > 0))`,
      ),
    },
  ]).concat(
    (['controller', 'operator'] as const).map((c) => ({
      record: `cluster:kubevirt_virt_${c}_leading:sum`,
      expr: orZero(`count(kubevirt_virt_${c}_leading_status{namespace="${ns}"} == 1)`),
    })),
  );
}

const WATCHED_CONTAINERS = 'virt-api|virt-controller|virt-handler|virt-operator|compute';

const clusterRecordingRules: RecordingRule[] = [
  {
    // Requests to kubevirt.io API versions the API server reports as deprecated, by verb.
    record: 'cluster:kubevirt_api_request_deprecated_total:sum',
    expr:
      'sum by (group, version, resource, subresource, verb) (apiserver_request_total and on(group, version, resource, subresource) ' +
      'apiserver_requested_deprecated_apis{group="kubevirt.io"})',
  },
  // Cordoned nodes take no new VMs.
  { record: 'cluster:kubevirt_non_schedulable_nodes:sum', expr: orZero('count(kube_node_spec_unschedulable == 1)') },
  {
    record: 'cluster:kubevirt_nodes_allocatable:count',
    expr: `${orZero('count(group by (node) (kube_node_status_allocatable))')} - on() cluster:kubevirt_non_schedulable_nodes:sum`,
  },
  {
    record: 'cluster:kubevirt_nodes_with_kvm:count',
    expr: orZero('count(group by (node) (kube_node_status_allocatable{resource="devices_kubevirt_io_kvm"} > 0))'),
  },
  // For each component container, the pod furthest over (or least under) its memory request.
  ...(
    [
      ['memory_working_set_delta_from_request', 'container_memory_working_set_bytes'],
      ['memory_rss_delta_from_request', 'container_memory_rss'],
    ] as const
  ).map(([reason, usage]) => ({
    record: 'container:kubevirt_memory_delta_from_requested_bytes:max',
    expr:
      `topk by (container) (1, max by (namespace, node, pod, container) (${usage}{container=~"${WATCHED_CONTAINERS}", pod=~"virt-.+"}) ` +
      `- on(namespace, pod, container) group_left() max by (namespace, pod, container) ` +
      `(kube_pod_container_resource_requests{resource="memory", container=~"${WATCHED_CONTAINERS}"}))`,
    labels: { reason },
  })),
  {
    // Claims no pod mounts and no VM disk holds, with the storage they request.
    record: 'pvc:kubevirt_suspected_orphaned_storage_bytes:info',
    expr:
      'kube_persistentvolumeclaim_resource_requests_storage_bytes and on(namespace, persistentvolumeclaim) (' +
      'group by (namespace, persistentvolumeclaim) (kube_persistentvolumeclaim_info) ' +
      'unless on(namespace, persistentvolumeclaim) group by (namespace, persistentvolumeclaim) (kube_pod_spec_volumes_persistentvolumeclaims_info) ' +
      'unless on(namespace, persistentvolumeclaim) group by (namespace, persistentvolumeclaim) (kubevirt_vm_disk_allocated_size_bytes))',
  },
  {
    // Claims a restore made, labelled with the VM they were restored from.
    record: 'pvc:kubevirt_vmsnapshot_labels:info',
    expr:
      'label_replace(label_replace(kube_persistentvolumeclaim_labels{label_restore_kubevirt_io_source_vm_name!="", ' +
      'label_restore_kubevirt_io_source_vm_namespace!=""} == 1, "vm_name", "$1", "label_restore_kubevirt_io_source_vm_name", "(.+)"), ' +
      '"vm_namespace", "$1", "label_restore_kubevirt_io_source_vm_namespace", "(.+)")',
  },
  { record: 'vm:kubevirt_vmsnapshot_disks_restored:sum', expr: 'count by (vm_namespace, vm_name) (pvc:kubevirt_vmsnapshot_labels:info)' },
  {
    record: 'vm:kubevirt_vmsnapshot_restored_bytes:sum',
    expr:
      'sum by (vm_namespace, vm_name) (kube_persistentvolumeclaim_resource_requests_storage_bytes * on(namespace, persistentvolumeclaim) ' +
      'group_left(vm_namespace, vm_name) pvc:kubevirt_vmsnapshot_labels:info)',
  },
];

const launcherCompute = 'pod=~"virt-launcher-.+", container="compute"';

const vmRecordingRules: RecordingRule[] = [
  // What the compute container requested beyond what it uses (negative: it uses more).
  ...(
    [
      ['working_set', 'container_memory_working_set_bytes'],
      ['rss', 'container_memory_rss'],
    ] as const
  ).map(([basis, usage]) => ({
    record: `pod_container:kubevirt_vm_memory_request_margin_based_on_${basis}_bytes:sum`,
    expr:
      `sum by (namespace, pod, container) (kube_pod_container_resource_requests{${launcherCompute}, resource="memory"}) ` +
      `- on(namespace, pod, container) max by (namespace, pod, container) (${usage}{${launcherCompute}})`,
  })),
  { record: 'namespace:kubevirt_vm:sum', expr: 'count by (namespace) (group by (namespace, name) (kubevirt_vm_info))' },
  {
    record: 'node:kubevirt_vmi_phase:sum',
    expr:
      'count by (node, phase, os, workload, flavor, instance_type, preference, guest_os_kernel_release, guest_os_machine, ' +
      'guest_os_arch, guest_os_name, guest_os_version_id) (kubevirt_vmi_info)',
  },
  // Memory the guest has in use: what it has, less what it could still use.
  {
    record: 'vmi:kubevirt_vmi_memory_used_bytes:sum',
    expr: 'sum by (namespace, name) (kubevirt_vmi_memory_available_bytes) - sum by (namespace, name) (kubevirt_vmi_memory_usable_bytes)',
  },
  // vCPUs, counted by their id (each has a series per state).
  {
    record: 'vmi:kubevirt_vmi_vcpu:count',
    expr: 'count by (namespace, name, node) (group by (namespace, name, node, id) (kubevirt_vmi_vcpu_seconds_total))',
  },
  // Runnable work beyond one task per vCPU: the guest's 1-minute load less its vCPUs.
  {
    record: 'vmi:kubevirt_vmi_guest_queue_length:sum',
    expr:
      'clamp_min(sum by (namespace, name) (kubevirt_vmi_guest_load_1m) - on(namespace, name) ' +
      'sum by (namespace, name) (vmi:kubevirt_vmi_vcpu:count), 0)',
  },
  {
    record: 'vmi:kubevirt_vmi_memory_headroom_ratio:sum',
    expr: 'sum by (namespace, name) (kubevirt_vmi_memory_usable_bytes) / sum by (namespace, name) (kubevirt_vmi_memory_available_bytes)',
  },
  { record: 'vmi:kubevirt_vmi_memory_available_bytes:sum', expr: 'sum by (namespace, name) (kubevirt_vmi_memory_available_bytes)' },
  ...['5m', '30m'].flatMap((window) => [
    {
      record: `vmi:kubevirt_vmi_pgmajfaults:rate${window}`,
      expr: `sum by (namespace, name) (rate(kubevirt_vmi_memory_pgmajfault_total[${window}]))`,
    },
    {
      record: `vmi:kubevirt_vmi_swap_traffic_bytes:rate${window}`,
      expr: `sum by (namespace, name) (rate({__name__=~"kubevirt_vmi_memory_swap_(in|out)_traffic_bytes"}[${window}]))`,
    },
  ]),
];

/** Upstream's older names, kept as copies of the rules that replaced them. */
const deprecatedRecordingRules: RecordingRule[] = [
  ['kubevirt_allocatable_nodes', 'cluster:kubevirt_nodes_allocatable:count'],
  ['kubevirt_nodes_with_kvm', 'cluster:kubevirt_nodes_with_kvm:count'],
  ['kubevirt_api_request_deprecated_total', 'cluster:kubevirt_api_request_deprecated_total:sum'],
  ['kubevirt_number_of_vms', 'namespace:kubevirt_vm:sum'],
  [
    'kubevirt_vm_container_memory_request_margin_based_on_rss_bytes',
    'pod_container:kubevirt_vm_memory_request_margin_based_on_rss_bytes:sum',
  ],
  [
    'kubevirt_vm_container_memory_request_margin_based_on_working_set_bytes',
    'pod_container:kubevirt_vm_memory_request_margin_based_on_working_set_bytes:sum',
  ],
  ['kubevirt_vm_created_total', 'sum by (namespace) (kubevirt_vm_created_by_pod_total)'],
  ['kubevirt_vmi_guest_vcpu_queue', 'vmi:kubevirt_vmi_guest_queue_length:sum'],
  ['kubevirt_vmi_memory_used_bytes', 'vmi:kubevirt_vmi_memory_used_bytes:sum'],
  ['kubevirt_vmi_phase_count', 'node:kubevirt_vmi_phase:sum'],
  ['kubevirt_vmi_migration_data_total_bytes', 'kubevirt_vmi_migration_data_bytes_total'],
  ['kubevirt_virt_api_up', 'cluster:kubevirt_virt_api_up:sum'],
  ['kubevirt_virt_controller_up', 'cluster:kubevirt_virt_controller_up:sum'],
  ['kubevirt_virt_controller_ready', 'cluster:kubevirt_virt_controller_ready:sum'],
  ['kubevirt_virt_operator_up', 'cluster:kubevirt_virt_operator_up:sum'],
  ['kubevirt_virt_operator_ready', 'cluster:kubevirt_virt_operator_ready:sum'],
  ['kubevirt_virt_operator_leading', 'cluster:kubevirt_virt_operator_leading:sum'],
  ['kubevirt_virt_handler_up', 'cluster:kubevirt_virt_handler_up:sum'],
  ['kubevirt_vmsnapshot_persistentvolumeclaim_labels', 'pvc:kubevirt_vmsnapshot_labels:info'],
  ['kubevirt_vmsnapshot_disks_restored_from_source', 'vm:kubevirt_vmsnapshot_disks_restored:sum'],
  ['kubevirt_vmsnapshot_disks_restored_from_source_bytes', 'vm:kubevirt_vmsnapshot_restored_bytes:sum'],
  ['kubevirt_memory_delta_from_requested_bytes', 'container:kubevirt_memory_delta_from_requested_bytes:max'],
].map(([record, expr]) => ({ record, expr }));

type Severity = 'info' | 'warning' | 'critical';

interface AlertSpec {
  alert: string;
  expr: string;
  for?: string;
  severity: Severity;
  /** How much the alert says about KubeVirt's own health (upstream's operator_health_impact). */
  impact: 'none' | Severity;
  summary: string;
  description?: string;
}

const fullName: Record<Component, string> = {
  api: 'virt-api',
  controller: 'virt-controller',
  handler: 'virt-handler',
  operator: 'virt-operator',
};

/** The alerts about one component's pods: none running, some or none ready, too few, failing API calls. */
function componentAlerts(ns: string, c: Component): AlertSpec[] {
  const name = fullName[c];
  const running = `cluster:kubevirt_virt_${c}_pods_running:count`;
  const ready = `cluster:kubevirt_virt_${c}_ready:sum`;
  const title = { api: 'VirtAPI', controller: 'VirtController', handler: 'VirtHandler', operator: 'VirtOperator' }[c];
  const plural = { api: 'VirtAPI', controller: 'VirtControllers', handler: 'VirtHandler', operator: 'VirtOperators' }[c];
  const alerts: AlertSpec[] = [
    {
      alert: `${title}Down`,
      expr: `${running} == 0`,
      for: '10m',
      severity: 'critical',
      impact: 'critical',
      summary: `No ${name} pod has been running for 10 minutes.`,
    },
    {
      alert: `LowReady${plural}Count`,
      expr: `${ready} > 0 and ${ready} < ${running}`,
      for: '10m',
      severity: 'warning',
      impact: 'warning',
      summary: `Some ${name} pods run but are not ready.`,
    },
    {
      alert: `NoReady${title}`,
      expr: `${ready} == 0`,
      for: '10m',
      severity: 'critical',
      impact: 'critical',
      summary: `No ${name} pod has been ready for 10 minutes.`,
    },
    {
      alert: `${c === 'api' ? 'VirtApi' : title}RESTErrorsBurst`,
      // Share of the component's API client requests answered 4xx or 5xx over 5 minutes.
      expr:
        `sum(rate(kubevirt_rest_client_requests_total{namespace="${ns}", pod=~"${name}-.+", code=~"[45].."}[5m])) ` +
        `/ sum(rate(kubevirt_rest_client_requests_total{namespace="${ns}", pod=~"${name}-.+"}[5m])) >= 0.8`,
      for: '5m',
      severity: 'critical',
      impact: 'critical',
      summary: `At least 80% of ${name}'s calls to the Kubernetes API failed over the last 5 minutes.`,
    },
  ];
  // virt-handler is a DaemonSet: its rollout alert is VirtHandlerDaemonSetRolloutFailing.
  if (c !== 'handler') {
    alerts.push({
      alert: { api: 'LowVirtAPICount', controller: 'LowVirtControllersCount', operator: 'LowVirtOperatorCount' }[c],
      expr: `${running} / on() kube_deployment_spec_replicas{namespace="${ns}", deployment="${name}"} < 0.75`,
      for: c === 'controller' ? '10m' : '60m',
      severity: 'warning',
      impact: 'warning',
      summary: `Fewer than three quarters of the ${name} replicas asked for are running.`,
    });
  }
  if (c === 'controller' || c === 'operator') {
    alerts.push({
      alert: `NoLeading${title}`,
      expr: `cluster:kubevirt_virt_${c}_leading:sum == 0`,
      for: '10m',
      severity: 'critical',
      impact: 'critical',
      summary: `No ${name} pod has held the leader lease for 10 minutes.`,
    });
  }
  return alerts;
}

/** Alerts about the install as a whole (they carry its namespace). */
function installAlerts(ns: string): AlertSpec[] {
  return [
    {
      alert: 'LowKVMNodesCount',
      expr: 'cluster:kubevirt_nodes_allocatable:count > 1 and cluster:kubevirt_nodes_with_kvm:count < 2',
      for: '5m',
      severity: 'warning',
      impact: 'warning',
      summary: 'Live migration needs at least two nodes that offer KVM.',
      description: 'Fewer than two nodes offer the devices.kubevirt.io/kvm resource.',
    },
    {
      alert: 'KubeVirtNoAvailableNodesToRunVMs',
      // No node offers KVM while emulation is off, or no node is both labelled schedulable and not cordoned.
      expr:
        `(${orZero('cluster:kubevirt_nodes_with_kvm:count')} == 0 and ${orZero('max(kubevirt_configuration_emulation_enabled)')} == 0) ` +
        `or ${orZero('count(kube_node_labels{label_kubevirt_io_schedulable="true"} unless on(node) (kube_node_spec_unschedulable == 1))')} == 0`,
      for: '5m',
      severity: 'warning',
      impact: 'critical',
      summary: 'No node in the cluster can run VMs.',
    },
    ...COMPONENTS.flatMap((c) => componentAlerts(ns, c)),
    {
      alert: 'KubeVirtDeprecatedAPIRequested',
      // New requests (other than reads and deletes) to a deprecated kubevirt.io version in the last 10 minutes.
      expr:
        'sum by (group, version, resource) (' +
        'increase(cluster:kubevirt_api_request_deprecated_total:sum{verb!~"LIST|WATCH|DELETE"}[10m]) > 0 ' +
        'or (cluster:kubevirt_api_request_deprecated_total:sum{verb!~"LIST|WATCH|DELETE"} > 0 ' +
        'unless cluster:kubevirt_api_request_deprecated_total:sum{verb!~"LIST|WATCH|DELETE"} offset 10m))',
      severity: 'info',
      impact: 'none',
      summary: '{{ $value }} requests to a deprecated KubeVirt API version in the last 10 minutes.',
      description: 'Clients called {{ $labels.resource }}.{{ $labels.group }}/{{ $labels.version }}, which is deprecated.',
    },
    {
      alert: 'VirtLauncherPodsStuckFailed',
      // Across the whole cluster: failed launcher pods nobody removes pile up.
      expr: 'count(kube_pod_status_phase{pod=~"virt-launcher-.+", phase="Failed"} > 0) >= 200',
      for: '10m',
      severity: 'critical',
      impact: 'critical',
      summary: 'At least 200 failed virt-launcher pods have not been removed for 10 minutes.',
    },
    {
      alert: 'OrphanedVirtualMachineInstances',
      // Nodes with launcher pods but no ready virt-handler.
      expr:
        'group by (node) (kube_pod_info{pod=~"virt-launcher-.+", node!=""}) unless on(node) ' +
        'group by (node) ((kube_pod_status_ready{pod=~"virt-handler-.+", condition="true"} > 0) * on(namespace, pod) group_left(node) ' +
        'group by (namespace, pod, node) (kube_pod_info{pod=~"virt-handler-.+"}))',
      for: '10m',
      severity: 'warning',
      impact: 'warning',
      summary: 'Node {{ $labels.node }} has had VMIs but no ready virt-handler for more than 10 minutes.',
    },
    {
      alert: 'VirtHandlerDaemonSetRolloutFailing',
      expr:
        `kube_daemonset_status_desired_number_scheduled{namespace="${ns}", daemonset="virt-handler"} ` +
        `- kube_daemonset_status_number_ready{namespace="${ns}", daemonset="virt-handler"} != 0`,
      for: '15m',
      severity: 'warning',
      impact: 'warning',
      summary: 'virt-handler has not become ready on every node it should run on for 15 minutes.',
    },
  ];
}

/** The guest's filesystems that fill up meaningfully: not read-only media, pseudo or memory filesystems. */
const guestFilesystems =
  'namespace!="", mount_point!="System Reserved", file_system_type!~"(?i:cdfs|iso9660|udf|squashfs|cramfs|tmpfs|devtmpfs|ramfs|' +
  'proc|sysfs|cgroup2?|overlay|fuse\\\\..*|debugfs|tracefs|securityfs|pstore|selinuxfs|bpf|configfs|mqueue|hugetlbfs|autofs|nsfs)"';
const filesystemUsePercent = `100 * kubevirt_vmi_filesystem_used_bytes{${guestFilesystems}} / kubevirt_vmi_filesystem_capacity_bytes{${guestFilesystems}}`;

/** `expr` with a `vm` label copied from `from` (console plugins link an alert to its VM by it). */
const withVm = (expr: string, from = 'name') => `label_replace(${expr}, "vm", "$1", "${from}", "(.+)")`;

/** Running VMIs, one series each, with a `vm` label: their name. */
const runningVmis = 'topk by (namespace, name) (1, label_replace(kubevirt_vmi_info{phase="running"}, "vm", "$1", "name", "(.+)"))';

/** Alerts about VMs (their own namespace is in the series). */
const vmAlerts: AlertSpec[] = [
  {
    alert: 'VMCannotBeEvicted',
    expr: withVm('kubevirt_vmi_non_evictable == 1 and on(namespace, name) (kubevirt_vmi_info{phase="running"} == 1)'),
    for: '1m',
    severity: 'warning',
    impact: 'none',
    summary: 'A VM that should live-migrate on eviction cannot be migrated.',
    description:
      'VM {{ $labels.name }} in {{ $labels.namespace }} (node {{ $labels.node }}) has eviction strategy LiveMigrate but is not migratable.',
  },
  {
    alert: 'KubeVirtVMIExcessiveMigrations',
    // Each migration counts once, by its highest value over the day.
    expr: withVm(
      'sum by (namespace, vmi) (max by (namespace, vmi, vmim) (max_over_time(kubevirt_vmi_migration_succeeded[1d]))) >= 12',
      'vmi',
    ),
    severity: 'warning',
    impact: 'none',
    summary: 'A VMI was migrated an excessive number of times in the last 24 hours.',
    description: 'VMI {{ $labels.vmi }} in {{ $labels.namespace }} migrated 12 or more times in 24 hours.',
  },
  {
    alert: 'OutdatedVirtualMachineInstanceWorkloads',
    expr: 'kubevirt_vmi_number_of_outdated{namespace!=""} > 0',
    for: '24h',
    severity: 'warning',
    impact: 'none',
    summary: 'VMIs still run in launcher pods of the previous KubeVirt version a day after the update.',
  },
  ...(
    [
      ['GuestVCPUQueueHighWarning', 10, 'warning'],
      ['GuestVCPUQueueHighCritical', 20, 'critical'],
    ] as const
  ).map(([alert, threshold, severity]) => ({
    alert,
    expr: withVm(`vmi:kubevirt_vmi_guest_queue_length:sum{namespace!=""} > ${threshold}`),
    severity,
    impact: 'none' as const,
    summary: `The guest's runnable work exceeds its vCPUs by more than ${threshold}.`,
    description: 'VMI {{ $labels.name }} in {{ $labels.namespace }} has a vCPU queue of {{ $value }}.',
  })),
  {
    alert: 'VirtualMachineStuckInUnhealthyState',
    // A VM in a transitional or error state that has no VMI at all.
    expr: withVm(
      'group by (namespace, name, status) ((kubevirt_vm_info{status=~"provisioning|starting|terminating"} == 1) ' +
        'or (kubevirt_vm_info{status_group="error"} == 1)) unless on(namespace, name) kubevirt_vmi_info',
    ),
    for: '10m',
    severity: 'warning',
    impact: 'none',
    summary: 'A VM has been {{ $labels.status }} for more than 10 minutes.',
    description: 'VM {{ $labels.name }} in {{ $labels.namespace }} has been {{ $labels.status }} for more than 10 minutes without a VMI.',
  },
  {
    alert: 'VirtualMachineStuckOnNode',
    // A VM whose VMI is scheduled or running on a node, stuck starting, stopping, terminating or in error.
    expr: withVm(
      'group by (namespace, name, status, node) (((kubevirt_vm_info{status=~"starting|stopping|terminating"} == 1) ' +
        'or (kubevirt_vm_info{status_group="error"} == 1)) * on(namespace, name) group_left(node) ' +
        'topk by (namespace, name) (1, kubevirt_vmi_info{phase=~"scheduled|running"}))',
    ),
    for: '5m',
    severity: 'warning',
    impact: 'none',
    summary: 'A VM on a node has been {{ $labels.status }} for more than 5 minutes.',
    description:
      'VM {{ $labels.name }} in {{ $labels.namespace }} on node {{ $labels.node }} has been {{ $labels.status }} for more than 5 minutes.',
  },
  {
    alert: 'KubeVirtVMGuestMemoryPressure',
    // Almost no usable memory left while the guest faults pages in or swaps.
    expr:
      '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.05 and vmi:kubevirt_vmi_memory_available_bytes:sum > 0 ' +
      'and (vmi:kubevirt_vmi_pgmajfaults:rate5m > 5 or vmi:kubevirt_vmi_swap_traffic_bytes:rate5m > 1048576)) ' +
      `* on(namespace, name) group_left(vm) ${runningVmis}`,
    for: '5m',
    severity: 'warning',
    impact: 'none',
    summary: 'A VM is short of memory and thrashing.',
    description: 'VM {{ $labels.vm }} in {{ $labels.namespace }} has under 5% usable memory with heavy major faults or swap traffic.',
  },
  {
    alert: 'KubeVirtVMGuestMemoryAvailableLow',
    // Almost no usable memory for half an hour, but quiet: most likely a guest without swap.
    expr:
      '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.03 and vmi:kubevirt_vmi_memory_available_bytes:sum > 0 ' +
      'and vmi:kubevirt_vmi_pgmajfaults:rate30m < 1 and vmi:kubevirt_vmi_swap_traffic_bytes:rate30m < 2048) ' +
      `* on(namespace, name) group_left(vm) ${runningVmis}`,
    for: '30m',
    severity: 'info',
    impact: 'none',
    summary: 'A VM has had almost no usable memory, without swapping, for 30 minutes.',
    description: 'VM {{ $labels.vm }} in {{ $labels.namespace }} has had under 3% usable memory for 30 minutes.',
  },
  ...(
    [
      [`${filesystemUsePercent} >= 85 < 95`, '10m', 'warning', 85],
      [`${filesystemUsePercent} >= 95`, undefined, 'critical', 95],
    ] as const
  ).map(([expr, wait, severity, percent]) => ({
    alert: 'GuestFilesystemAlmostOutOfSpace',
    expr: withVm(expr),
    ...(wait ? { for: wait } : {}),
    severity,
    impact: 'none' as const,
    summary: `A guest filesystem is more than ${percent}% full.`,
    description:
      'VMI {{ $labels.name }} in {{ $labels.namespace }}: {{ $labels.disk_name }} ({{ $labels.mount_point }}) is {{ $value }}% full.',
  })),
  {
    alert: 'VMNonRecoverableOSPanic',
    expr: withVm('sum by (namespace, name) (increase(kubevirt_vmi_guest_os_panic_total[24h])) > 5'),
    for: '1m',
    severity: 'critical',
    impact: 'none',
    summary: 'VM {{ $labels.name }} in {{ $labels.namespace }} had guest OS panics it could not recover from.',
    description: '{{ $value }} guest OS panics in the last 24 hours.',
  },
];

function alertingRule(spec: AlertSpec, namespace?: string): AlertingRule {
  return {
    alert: spec.alert,
    expr: spec.expr,
    ...(spec.for ? { for: spec.for } : {}),
    labels: {
      severity: spec.severity,
      operator_health_impact: spec.impact,
      kubernetes_operator_part_of: 'kubevirt',
      kubernetes_operator_component: 'kubevirt',
      ...(namespace ? { namespace } : {}),
    },
    annotations: {
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      runbook_url: `${RUNBOOKS}${spec.alert}`,
    },
  };
}

/** The rule groups for the install in `namespace`: recording rules first, as the alerts read them. */
export function kubevirtRuleGroups(namespace: string): RuleGroup[] {
  return [
    {
      name: 'kubevirt.rules',
      rules: [...componentRecordingRules(namespace), ...clusterRecordingRules, ...vmRecordingRules, ...deprecatedRecordingRules],
    },
    {
      name: 'kubevirt.alerts',
      rules: [...installAlerts(namespace).map((a) => alertingRule(a, namespace)), ...vmAlerts.map((a) => alertingRule(a))],
    },
  ];
}

/** The alert names, each once. */
export function kubevirtAlertNames(namespace: string): string[] {
  const names = kubevirtRuleGroups(namespace).flatMap((g) => g.rules.flatMap((r) => ('alert' in r ? [r.alert] : [])));
  return [...new Set(names)];
}

/** A Prometheus rules file of the groups for the install in `namespace`. */
export function renderedRulesFile(namespace: string): string {
  return stringify({ groups: kubevirtRuleGroups(namespace) }, { lineWidth: 0 });
}
