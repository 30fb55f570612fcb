// The objects that install kubevirt-ts's virt-api: its service account and
// least-privilege RBAC, Deployment, Service, serving-certificate Secret and the
// webhook configurations, named as upstream names them. Pure: the operator
// (and, until it exists, hack/install.ts) applies what this returns.

export interface InstallParams {
  namespace: string;
  /** The component image, e.g. registry:5000/kubevirt-ts/virt-ts:devel. */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** PEM of the CA that signed virt-api's serving certificate. */
  caBundle: string;
  servingCert: { cert: string; key: string };
}

type Obj = Record<string, unknown>;

const b64 = (text: string) => Buffer.from(text).toString('base64');
const labels = (component: string) => ({ 'kubevirt.io': component, 'app.kubernetes.io/managed-by': 'virt-operator', 'app.kubernetes.io/component': 'kubevirt' });

interface Hook {
  name: string;
  path: string;
  group: string;
  versions: string[];
  resources: string[];
  operations: string[];
}

const CORE_VERSIONS = ['v1', 'v1alpha3'];

export const MUTATING_HOOKS: Hook[] = [
  { name: 'virtualmachines-mutator.kubevirt.io', path: '/virtualmachines-mutate', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachines'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachineinstances-mutator.kubevirt.io', path: '/virtualmachineinstances-mutate', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstances'], operations: ['CREATE', 'UPDATE'] },
  { name: 'migrations-mutator.kubevirt.io', path: '/migration-mutate-create', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstancemigrations'], operations: ['CREATE'] },
];

export const VALIDATING_HOOKS: Hook[] = [
  { name: 'virtualmachineinstances-create-validator.kubevirt.io', path: '/virtualmachineinstances-validate-create', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstances'], operations: ['CREATE'] },
  { name: 'virtualmachineinstances-update-validator.kubevirt.io', path: '/virtualmachineinstances-validate-update', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstances'], operations: ['UPDATE'] },
  { name: 'virtualmachine-validator.kubevirt.io', path: '/virtualmachines-validate', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachines'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachinereplicaset-validator.kubevirt.io', path: '/virtualmachinereplicaset-validate', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstancereplicasets'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachinepool-validator.kubevirt.io', path: '/virtualmachinepool-validate', group: 'pool.kubevirt.io', versions: ['v1beta1', 'v1alpha1'], resources: ['virtualmachinepools'], operations: ['CREATE', 'UPDATE'] },
  { name: 'migration-create-validator.kubevirt.io', path: '/migration-validate-create', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstancemigrations'], operations: ['CREATE'] },
  { name: 'migration-update-validator.kubevirt.io', path: '/migration-validate-update', group: 'kubevirt.io', versions: CORE_VERSIONS, resources: ['virtualmachineinstancemigrations'], operations: ['UPDATE'] },
  { name: 'virtualmachineinstancetype-validator.instancetype.kubevirt.io', path: '/virtualmachineinstancetypes-validate', group: 'instancetype.kubevirt.io', versions: ['v1beta1'], resources: ['virtualmachineinstancetypes'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachineclusterinstancetype-validator.instancetype.kubevirt.io', path: '/virtualmachineclusterinstancetypes-validate', group: 'instancetype.kubevirt.io', versions: ['v1beta1'], resources: ['virtualmachineclusterinstancetypes'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachinepreference-validator.instancetype.kubevirt.io', path: '/virtualmachinepreferences-validate', group: 'instancetype.kubevirt.io', versions: ['v1beta1'], resources: ['virtualmachinepreferences'], operations: ['CREATE', 'UPDATE'] },
  { name: 'virtualmachineclusterpreference-validator.instancetype.kubevirt.io', path: '/virtualmachineclusterpreferences-validate', group: 'instancetype.kubevirt.io', versions: ['v1beta1'], resources: ['virtualmachineclusterpreferences'], operations: ['CREATE', 'UPDATE'] },
  { name: 'migration-policy-validator.kubevirt.io', path: '/migration-policy-validate-create', group: 'migrations.kubevirt.io', versions: ['v1alpha1'], resources: ['migrationpolicies'], operations: ['CREATE', 'UPDATE'] },
];

function webhookConfiguration(kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration', name: string, hooks: Hook[], p: InstallParams): Obj {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name, labels: labels('virt-api-aggregator') },
    webhooks: hooks.map((hook) => ({
      name: hook.name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      matchPolicy: 'Equivalent',
      rules: [{ apiGroups: [hook.group], apiVersions: hook.versions, resources: hook.resources, operations: hook.operations, scope: '*' }],
      clientConfig: { caBundle: b64(p.caBundle), service: { namespace: p.namespace, name: 'virt-api', path: hook.path, port: 443 } },
    })),
  };
}

/** A component's service account, its ClusterRole and the binding between them. */
function serviceAccountWithRole(sa: string, p: InstallParams, rules: Obj[]): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: p.namespace, labels: labels('') } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: sa, labels: labels('') }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: sa, labels: labels('') },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: p.namespace }],
    },
  ];
}

/** A component's Deployment: one replica of the component image, non-root, no capabilities, read-only root. */
function componentDeployment(name: string, sa: string, p: InstallParams, container: Obj, volumes: Obj[] = []): Obj {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: p.namespace, labels: labels(name) },
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'kubevirt.io': name } },
      template: {
        metadata: { labels: { 'kubevirt.io': name } },
        spec: {
          serviceAccountName: sa,
          securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name,
            image: p.image,
            imagePullPolicy: p.imagePullPolicy,
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
            ...container,
          }],
          ...(volumes.length ? { volumes } : {}),
        },
      },
    },
  };
}

export function virtApiObjects(p: InstallParams): Obj[] {
  const sa = 'kubevirt-apiserver';
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: p.namespace, labels: { 'kubevirt.io': '' } } },
    // virt-api reads the cluster configuration and the instance types VMs refer to; it writes nothing.
    ...serviceAccountWithRole(sa, p, [
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['instancetype.kubevirt.io'], resources: ['virtualmachineinstancetypes', 'virtualmachineclusterinstancetypes', 'virtualmachinepreferences', 'virtualmachineclusterpreferences'], verbs: ['get', 'list', 'watch'] },
    ]),
    {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'kubevirt-virt-api-certs', namespace: p.namespace, labels: labels('') },
      data: { 'tls.crt': b64(p.servingCert.cert), 'tls.key': b64(p.servingCert.key) },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'virt-api', namespace: p.namespace, labels: labels('virt-api') },
      spec: { selector: { 'kubevirt.io': 'virt-api' }, ports: [{ port: 443, targetPort: 8443, protocol: 'TCP' }] },
    },
    componentDeployment('virt-api', sa, p, {
      command: ['node', '/app/src/virt-api/main.js'],
      env: [{ name: 'KUBEVIRT_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
      ports: [{ name: 'virt-api', containerPort: 8443, protocol: 'TCP' }],
      readinessProbe: { httpGet: { scheme: 'HTTPS', port: 8443, path: '/readyz' }, periodSeconds: 2, initialDelaySeconds: 1 },
      resources: { requests: { cpu: '5m', memory: '64Mi' } },
      volumeMounts: [{ name: 'kubevirt-virt-api-certs', mountPath: '/etc/virt-api/certificates', readOnly: true }],
    }, [{ name: 'kubevirt-virt-api-certs', secret: { secretName: 'kubevirt-virt-api-certs' } }]),
    ...virtControllerObjects(p),
    webhookConfiguration('MutatingWebhookConfiguration', 'virt-api-mutator', MUTATING_HOOKS, p),
    webhookConfiguration('ValidatingWebhookConfiguration', 'virt-api-validator', VALIDATING_HOOKS, p),
  ];
}

/** virt-controller: it turns VMs into VMIs, so it may write those, and read nothing else. */
function virtControllerObjects(p: InstallParams): Obj[] {
  const sa = 'kubevirt-controller';
  return [
    ...serviceAccountWithRole(sa, p, [
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['patch'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'create', 'delete', 'patch'] },
    ]),
    componentDeployment('virt-controller', sa, p, {
      command: ['node', '/app/src/controller/main.js'],
      resources: { requests: { cpu: '10m', memory: '64Mi' } },
    }),
  ];
}
