// The local cluster's DNS, as kubeadm runs it: CoreDNS (built from its Go module, image from
// images/build.ts) behind the kube-system/kube-dns Service at the address the kubelet gives pods
// as their nameserver. Names of Services and pods resolve in cluster.local; everything else goes
// to the node's own resolver.
//   node hack/cluster/coredns.ts --ip SERVICE_IP [--registry registry:5000]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { ip: { type: 'string' }, registry: { type: 'string', default: 'registry:5000' } },
});
if (!values.ip) throw new Error('coredns: --ip SERVICE_IP (the clusterDNS address the kubelet names) is required');

const NAMESPACE = 'kube-system';
const NAME = 'coredns';
const LABELS = { 'k8s-app': 'kube-dns' };
const HEALTH_PORT = 8080;
const READY_PORT = 8181;
const METRICS_PORT = 9153;

// Names in the cluster's domain are answered from the API (never forwarded); reverse lookups of
// addresses outside the cluster fall through to the node's resolver.
const COREFILE = `.:53 {
    errors
    health :${HEALTH_PORT}
    ready :${READY_PORT}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :${METRICS_PORT}
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`;

const objects = [
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE } },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'system:coredns' },
    rules: [
      { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'system:coredns' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
    subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
  },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: NAME, namespace: NAMESPACE }, data: { Corefile: COREFILE } },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
    spec: {
      replicas: 1,
      selector: { matchLabels: LABELS },
      template: {
        metadata: { labels: LABELS },
        spec: {
          serviceAccountName: NAME,
          priorityClassName: 'system-cluster-critical',
          // Its own lookups go to the node's resolver, not to itself.
          dnsPolicy: 'Default',
          containers: [
            {
              name: NAME,
              image: `${values.registry}/kubevirt-ts/coredns:devel`,
              imagePullPolicy: 'IfNotPresent',
              args: ['-conf', '/etc/coredns/Corefile'],
              ports: [
                { name: 'dns', containerPort: 53, protocol: 'UDP' },
                { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
              ],
              resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
              livenessProbe: { httpGet: { path: '/health', port: HEALTH_PORT }, periodSeconds: 10 },
              readinessProbe: { httpGet: { path: '/ready', port: READY_PORT }, periodSeconds: 2 },
              volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
            },
          ],
          volumes: [{ name: 'config', configMap: { name: NAME } }],
        },
      },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: NAMESPACE, labels: { ...LABELS, 'kubernetes.io/name': 'CoreDNS' } },
    spec: {
      clusterIP: values.ip,
      selector: LABELS,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        { name: 'metrics', port: METRICS_PORT, protocol: 'TCP' },
      ],
    },
  },
];

const kubectl = (args: string[], input?: string) => execFileSync('kubectl', args, { input, stdio: ['pipe', 'inherit', 'inherit'] });
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
kubectl(['rollout', 'status', `deployment/${NAME}`, '-n', NAMESPACE, '--timeout=120s']);
