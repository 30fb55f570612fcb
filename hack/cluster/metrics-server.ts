// The local cluster's resource metrics API (metrics.k8s.io: kubectl top, HorizontalPodAutoscalers
// on CPU and memory): metrics-server, built from its Go module (image from images/build.ts), as a
// Deployment behind the v1beta1.metrics.k8s.io APIService. Both of its TLS links are checked: it
// serves with a certificate the cluster CA issued (pki.sh), which the APIService trusts, and it
// checks the kubelet's serving certificate against the same CA, as its service account sees it.
//   node hack/cluster/metrics-server.ts --pki DIR [--registry registry:5000]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { pki: { type: 'string' }, registry: { type: 'string', default: 'registry:5000' } },
});
if (!values.pki) throw new Error('metrics-server: --pki DIR (the cluster PKI, with ca.crt and metrics-server.{crt,key}) is required');
const pki = values.pki;
const base64Of = (file: string) => readFileSync(join(pki, file)).toString('base64');

const NAMESPACE = 'kube-system';
const NAME = 'metrics-server';
const PORT = 4443;
// Pinned to the digest images/build.ts pushed, so a rebuilt image replaces the running one.
const repository = `${values.registry}/kubevirt-ts/metrics-server`;
const inspected = execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${repository}:devel`], { encoding: 'utf8' });
const image = `${repository}@${JSON.parse(inspected).Digest}`;
const serviceAccount = { kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE };
const clusterRoleBinding = (name: string, role: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [serviceAccount],
});

const objects = [
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE } },
  // Who may read the metrics: whoever may view, edit or administer (the roles aggregate this one).
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: {
      name: 'system:aggregated-metrics-reader',
      labels: Object.fromEntries(['view', 'edit', 'admin'].map((role) => [`rbac.authorization.k8s.io/aggregate-to-${role}`, 'true'])),
    },
    rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
  },
  // What it reads: the kubelets' resource metrics, and the pods and nodes they belong to.
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'system:metrics-server' },
    rules: [
      { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
    ],
  },
  clusterRoleBinding('system:metrics-server', 'system:metrics-server'),
  // As an aggregated API server: it checks callers' tokens and rights with kube-apiserver, and
  // trusts the front proxy's certificate (the extension-apiserver-authentication ConfigMap).
  clusterRoleBinding('metrics-server:system:auth-delegator', 'system:auth-delegator'),
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'metrics-server-auth-reader', namespace: NAMESPACE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
    subjects: [serviceAccount],
  },
  {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: `${NAME}-tls`, namespace: NAMESPACE },
    data: { 'tls.crt': base64Of('metrics-server.crt'), 'tls.key': base64Of('metrics-server.key') },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: NAME, namespace: NAMESPACE },
    spec: { selector: { 'k8s-app': NAME }, ports: [{ name: 'https', port: 443, targetPort: 'https', appProtocol: 'https' }] },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'k8s-app': NAME } },
      template: {
        metadata: { labels: { 'k8s-app': NAME } },
        spec: {
          serviceAccountName: NAME,
          priorityClassName: 'system-cluster-critical',
          securityContext: { fsGroup: 1000 },
          containers: [
            {
              name: NAME,
              image,
              imagePullPolicy: 'IfNotPresent',
              args: [
                `--secure-port=${PORT}`,
                '--tls-cert-file=/certs/tls.crt',
                '--tls-private-key-file=/certs/tls.key',
                '--kubelet-preferred-address-types=InternalIP',
                '--kubelet-use-node-status-port',
                '--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
                // Its shortest: an HPA test sees load within a sync or two.
                '--metric-resolution=15s',
              ],
              ports: [{ name: 'https', containerPort: PORT }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: '/livez', port: 'https', scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 3 },
              resources: { requests: { cpu: '10m', memory: '32Mi' } },
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 1000,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tls', mountPath: '/certs', readOnly: true }],
            },
          ],
          volumes: [{ name: 'tls', secret: { secretName: `${NAME}-tls`, defaultMode: 0o440 } }],
        },
      },
    },
  },
  {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: 'v1beta1.metrics.k8s.io' },
    spec: {
      group: 'metrics.k8s.io',
      version: 'v1beta1',
      service: { name: NAME, namespace: NAMESPACE, port: 443 },
      caBundle: base64Of('ca.crt'),
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  },
];

const kubectl = (args: string[], input?: string) => execFileSync('kubectl', args, { input, stdio: ['pipe', 'inherit', 'inherit'] });
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
kubectl(['rollout', 'status', `deployment/${NAME}`, '-n', NAMESPACE, '--timeout=120s']);
kubectl(['wait', '--for=condition=Available', 'apiservice/v1beta1.metrics.k8s.io', '--timeout=60s']);
