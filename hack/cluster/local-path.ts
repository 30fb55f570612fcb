// The local cluster's default StorageClass: Rancher's local-path-provisioner
// (built from its Go module, image from images/build.ts) as a Deployment, its
// volumes in directories under the node's data path. Volumes bind when their
// first pod is scheduled (WaitForFirstConsumer) and are removed with their claim.
//   node hack/cluster/local-path.ts --path DIR [--registry registry:5000]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

const { values } = parseArgs({
  options: { path: { type: 'string' }, registry: { type: 'string', default: 'registry:5000' } },
});
if (!values.path) throw new Error('local-path: --path DIR (where the volumes live on the node) is required');

const NAMESPACE = 'local-path-storage';
const SA = 'local-path-provisioner-service-account';
const image = `${values.registry}/kubevirt-ts/local-path-provisioner:devel`;

// The helper pod creates and removes each volume's directory on its node.
const helperPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'helper-pod' },
  spec: {
    priorityClassName: 'system-node-critical',
    tolerations: [{ key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' }],
    containers: [{ name: 'helper-pod', image, imagePullPolicy: 'IfNotPresent' }],
  },
};

const objects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA, namespace: NAMESPACE } },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'local-path-provisioner-role', namespace: NAMESPACE },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'local-path-provisioner-role' },
    rules: [
      {
        apiGroups: [''],
        resources: ['nodes', 'persistentvolumeclaims', 'configmaps', 'pods', 'pods/log'],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
    ],
  },
  ...['Role', 'ClusterRole'].map((kind) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: `${kind}Binding`,
    metadata: { name: 'local-path-provisioner-bind', ...(kind === 'Role' ? { namespace: NAMESPACE } : {}) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: 'local-path-provisioner-role' },
    subjects: [{ kind: 'ServiceAccount', name: SA, namespace: NAMESPACE }],
  })),
  {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'local-path-config', namespace: NAMESPACE },
    data: {
      'config.json': JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [values.path] }] }),
      setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
      teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
      'helperPod.yaml': stringify(helperPod),
    },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'local-path-provisioner', namespace: NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'local-path-provisioner' } },
      template: {
        metadata: { labels: { app: 'local-path-provisioner' } },
        spec: {
          serviceAccountName: SA,
          containers: [
            {
              name: 'local-path-provisioner',
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['local-path-provisioner', 'start', '--config', '/etc/config/config.json'],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'CONFIG_MOUNT_PATH', value: '/etc/config/' },
              ],
              resources: { requests: { cpu: '10m', memory: '32Mi' } },
              volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config/' }],
            },
          ],
          volumes: [{ name: 'config-volume', configMap: { name: 'local-path-config' } }],
        },
      },
    },
  },
  {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'rancher.io/local-path',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  },
];

const kubectl = (args: string[], input?: string) => execFileSync('kubectl', args, { input, stdio: ['pipe', 'inherit', 'inherit'] });
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
kubectl(['rollout', 'status', 'deployment/local-path-provisioner', '-n', NAMESPACE, '--timeout=120s']);
