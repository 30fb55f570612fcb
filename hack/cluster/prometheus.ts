// The local cluster's Prometheus (built from its Go module, image from
// images/build.ts) in the monitoring namespace: it finds the kubevirt-ts
// components through Kubernetes service discovery, scrapes them every 5 s as a
// Prometheus Operator would for virt-operator's ServiceMonitor, and evaluates
// KubeVirt's rules (src/operator/monitoring-rules.ts). Its API is the
// prometheus Service's port 9090 (no web UI):
//   kubectl get --raw '/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query=up'
//   node hack/cluster/prometheus.ts [--registry registry:5000] [--kubevirt-namespace kubevirt]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { renderedRulesFile } from '../../src/operator/monitoring-rules.ts';

const { values } = parseArgs({
  options: {
    registry: { type: 'string', default: 'registry:5000' },
    'kubevirt-namespace': { type: 'string', default: 'kubevirt' },
  },
});
const kubevirtNamespace = values['kubevirt-namespace'];

const NAMESPACE = 'monitoring';
// Upstream virt-operator's default monitoring account in this namespace: where the Prometheus
// Operator's CRDs are installed, virt-operator binds it a Role of its own.
const SA = 'prometheus-k8s';
const image = `${values.registry}/kubevirt-ts/prometheus:devel`;

/** What a Prometheus Operator would generate for virt-operator's ServiceMonitor, with the labels it gives targets. */
const config = {
  global: { scrape_interval: '5s', evaluation_interval: '5s' },
  rule_files: ['/etc/prometheus/rules/*.yaml'],
  scrape_configs: [
    {
      job_name: 'kubevirt-prometheus-metrics',
      kubernetes_sd_configs: [{ role: 'endpointslice', namespaces: { names: [kubevirtNamespace] } }],
      scheme: 'https',
      // The components' serving certificates do not name pod addresses (upstream's ServiceMonitor skips the check too).
      tls_config: { insecure_skip_verify: true },
      // A VMI's series carry the VMI's own namespace (and virt-handler's its node).
      honor_labels: true,
      relabel_configs: [
        { source_labels: ['__meta_kubernetes_service_label_prometheus_kubevirt_io'], regex: 'true', action: 'keep' },
        { source_labels: ['__meta_kubernetes_endpointslice_port_name'], regex: 'metrics', action: 'keep' },
        { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
        { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
        { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
        { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
        { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job' },
        { target_label: 'endpoint', replacement: 'metrics' },
      ],
    },
  ],
};
const files = {
  'prometheus.yml': stringify(config),
  'kubevirt.rules.yaml': renderedRulesFile(kubevirtNamespace),
};
// A new configuration or rules file restarts the pod (no reload endpoint to call).
const configHash = createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16);

const objects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA, namespace: NAMESPACE } },
  {
    // Service discovery: the endpoint slices of the Services, and their pods and Services for the labels.
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'kubevirt-ts-local-prometheus' },
    rules: [
      { apiGroups: [''], resources: ['services', 'endpoints', 'pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'kubevirt-ts-local-prometheus' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubevirt-ts-local-prometheus' },
    subjects: [{ kind: 'ServiceAccount', name: SA, namespace: NAMESPACE }],
  },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus-config', namespace: NAMESPACE }, data: files },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'prometheus', namespace: NAMESPACE },
    spec: {
      replicas: 1,
      // One TSDB at a time in the pod's directory.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { app: 'prometheus' } },
      template: {
        metadata: { labels: { app: 'prometheus' }, annotations: { 'kubevirt-ts.io/config-hash': configHash } },
        spec: {
          serviceAccountName: SA,
          securityContext: { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true },
          containers: [
            {
              name: 'prometheus',
              image,
              imagePullPolicy: 'Always',
              args: [
                '--config.file=/etc/prometheus/prometheus.yml',
                '--storage.tsdb.path=/prometheus',
                '--storage.tsdb.retention.time=1d',
                '--web.listen-address=:9090',
              ],
              ports: [{ name: 'web', containerPort: 9090 }],
              readinessProbe: { httpGet: { path: '/-/ready', port: 9090 }, periodSeconds: 2 },
              resources: { requests: { cpu: '20m', memory: '128Mi' } },
              volumeMounts: [
                { name: 'config', mountPath: '/etc/prometheus/prometheus.yml', subPath: 'prometheus.yml' },
                { name: 'rules', mountPath: '/etc/prometheus/rules' },
                { name: 'data', mountPath: '/prometheus' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: 'prometheus-config' } },
            {
              name: 'rules',
              configMap: { name: 'prometheus-config', items: [{ key: 'kubevirt.rules.yaml', path: 'kubevirt.rules.yaml' }] },
            },
            { name: 'data', emptyDir: {} },
          ],
        },
      },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'prometheus', namespace: NAMESPACE },
    spec: { selector: { app: 'prometheus' }, ports: [{ name: 'web', port: 9090, targetPort: 9090 }] },
  },
];

const kubectl = (args: string[], input?: string) => execFileSync('kubectl', args, { input, stdio: ['pipe', 'inherit', 'inherit'] });
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
kubectl(['rollout', 'status', 'deployment/prometheus', '-n', NAMESPACE, '--timeout=120s']);
