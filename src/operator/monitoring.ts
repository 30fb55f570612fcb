// What virt-operator installs for a Prometheus Operator in the cluster, as
// upstream does: a ServiceMonitor for the kubevirt-prometheus-metrics Service,
// the prometheus-kubevirt-rules PrometheusRule, and a Role that lets the
// monitoring stack's service account discover the component pods. Pure: the
// KubeVirt controller finds the stack (monitoringCandidates) and applies these.
import type { KubeVirt } from '../api/types.ts';
import { labels, PROMETHEUS_LABEL } from './components.ts';
import { kubevirtRuleGroups, PROMETHEUS_RULE_NAME } from './monitoring-rules.ts';

export const SERVICE_MONITOR_CRD = 'servicemonitors.monitoring.coreos.com';
export const PROMETHEUS_RULE_CRD = 'prometheusrules.monitoring.coreos.com';
/** Upstream's defaults when the CR names no monitoring namespace or account: OpenShift's, then kube-prometheus'. */
const DEFAULT_MONITOR_NAMESPACES = ['openshift-monitoring', 'monitoring'];
const DEFAULT_MONITOR_ACCOUNT = 'prometheus-k8s';
const MONITORING_ROLE = 'kubevirt-monitoring';

export interface MonitoringInstall {
  /** The namespace of the monitoring stack's service account, and its name. */
  namespace: string;
  account: string;
  /** Where the ServiceMonitor goes (spec.serviceMonitorNamespace, else `namespace`). */
  serviceMonitorNamespace: string;
  /** Which of the Prometheus Operator's kinds the cluster serves. */
  serviceMonitors: boolean;
  prometheusRules: boolean;
}

/** The accounts that may be the monitoring stack's, in order: the CR's, else upstream's defaults. */
export function monitoringCandidates(kv: KubeVirt): { namespace: string; account: string }[] {
  const account = kv.spec?.monitorAccount || DEFAULT_MONITOR_ACCOUNT;
  const namespaces = kv.spec?.monitorNamespace ? [kv.spec.monitorNamespace] : DEFAULT_MONITOR_NAMESPACES;
  return namespaces.map((namespace) => ({ namespace, account }));
}

/**
 * The Services a Prometheus is looked for under, in each monitoring namespace: kube-prometheus' and the
 * local cluster's (hack/cluster/prometheus.ts). Its HTTP API must answer without credentials.
 */
export const PROMETHEUS_SERVICES = ['prometheus-k8s', 'prometheus'];

/** A Prometheus Service's in-cluster URL: its port named web (Prometheus' own name), else 9090, else none. */
export function prometheusUrlOf(service: {
  metadata?: { name?: string; namespace?: string };
  spec?: { ports?: { name?: string; port: number }[] };
}): string {
  const ports = service.spec?.ports ?? [];
  const port = ports.find((p) => p.name === 'web') ?? ports.find((p) => p.port === 9090);
  return port ? `http://${service.metadata?.name}.${service.metadata?.namespace}.svc:${port.port}` : '';
}

type Obj = Record<string, unknown>;

/** The objects for `m`, the install being in `namespace`. */
export function monitoringObjects(namespace: string, m: MonitoringInstall): Obj[] {
  const meta = (name: string, ns: string, extra: Record<string, string> = {}) => ({
    name,
    namespace: ns,
    labels: { ...labels(''), ...extra },
  });
  const objects: Obj[] = [];
  if (m.serviceMonitors) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: meta(MONITORING_ROLE, namespace),
        rules: [{ apiGroups: [''], resources: ['services', 'endpoints', 'pods'], verbs: ['get', 'list', 'watch'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: meta(MONITORING_ROLE, namespace),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: MONITORING_ROLE },
        subjects: [{ kind: 'ServiceAccount', namespace: m.namespace, name: m.account }],
      },
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        // Upstream names its ServiceMonitor as its PrometheusRule.
        metadata: meta(PROMETHEUS_RULE_NAME, m.serviceMonitorNamespace, {
          [PROMETHEUS_LABEL]: 'true',
          'k8s-app': 'kubevirt',
          'openshift.io/cluster-monitoring': '',
        }),
        spec: {
          selector: { matchLabels: { [PROMETHEUS_LABEL]: 'true' } },
          namespaceSelector: { matchNames: [namespace] },
          endpoints: [
            // Each component's serving certificate names its Service, not the pod address scraped:
            // upstream skips verification too. honorLabels keeps a VMI's own namespace and name.
            { port: 'metrics', scheme: 'https', tlsConfig: { insecureSkipVerify: true }, honorLabels: true },
          ],
        },
      },
    );
  }
  if (m.prometheusRules) {
    objects.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta(PROMETHEUS_RULE_NAME, namespace, { [PROMETHEUS_LABEL]: 'true', 'k8s-app': 'kubevirt' }),
      spec: { groups: kubevirtRuleGroups(namespace) },
    });
  }
  return objects;
}

/** Every monitoring object that may be in the install's namespace: what is not desired there is removed by name. */
export function monitoringObjectsIn(namespace: string): Obj[] {
  const all = {
    namespace,
    account: DEFAULT_MONITOR_ACCOUNT,
    serviceMonitorNamespace: namespace,
    serviceMonitors: true,
    prometheusRules: true,
  };
  return monitoringObjects(namespace, all);
}
