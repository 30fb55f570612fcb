// The objects virt-operator installs and keeps in place, named as upstream
// names them: per component a service account with least-privilege RBAC,
// virt-api and virt-controller Deployments, the virt-handler DaemonSet, the
// webhook configurations and the subresource APIService. Pure: the operator
// applies what this returns; certificates are its own business (./certs.ts).
import { KUBEVIRT_SERVICE_ACCOUNTS, serviceAccountUsername } from '../api/constants.ts';
import { UPLOAD_TOKEN_SECRET } from '../contract/upload-token.ts';
import { NOT_SUPPORTED_KINDS } from '../contract/not-supported.ts';
import type { ProcessName } from '../contract/process-names.ts';
import type { KubeVirtSpec } from '../api/types.ts';
import type { MonitoringInstall } from './monitoring.ts';

export interface InstallParams {
  namespace: string;
  /** The component image, e.g. registry:5000/kubevirt-ts/virt-ts:devel. */
  image: string;
  launcherImage: string;
  imagePullPolicy: string;
  /** PEM bundle of the CAs that sign kubevirt-ts's serving certificates. */
  caBundle: string;
  /** Serve DataVolumes (cdi.kubevirt.io) ourselves: false where CDI itself is installed. */
  cdi: boolean;
  /** The Prometheus Operator's objects, where one is installed and its service account found. */
  monitoring?: MonitoringInstall;
  /** The in-cluster URL of a Prometheus the web console asks for VMI graphs; empty or absent: none, the console keeps its own. */
  prometheusUrl?: string;
  /** The KubeVirt CR's placement of virt-api and virt-controller (infra) and of virt-handler (workloads). */
  placement?: { infra?: NodePlacement; workloads?: NodePlacement };
}

export type NodePlacement = NonNullable<NonNullable<KubeVirtSpec['infra']>['nodePlacement']>;

/**
 * A pod spec with a KubeVirt CR's node placement added, as upstream's operator adds it: the
 * pod's own node selector keys and affinity kinds stay, the placement fills in the others, and
 * its tolerations come after the pod's.
 */
export function withPlacement(podSpec: Obj, placement: NodePlacement | undefined): Obj {
  if (!placement) return podSpec;
  const own = podSpec as { nodeSelector?: Record<string, string>; affinity?: Obj; tolerations?: unknown[] };
  const nodeSelector = { ...placement.nodeSelector, ...own.nodeSelector };
  const affinity = { ...(placement.affinity as Obj | undefined), ...own.affinity };
  const tolerations = [...(own.tolerations ?? []), ...(placement.tolerations ?? [])];
  return {
    ...podSpec,
    ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
    ...(Object.keys(affinity).length ? { affinity } : {}),
    ...(tolerations.length ? { tolerations } : {}),
  };
}

type Obj = Record<string, unknown>;

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'virt-operator';
export const b64 = (text: string) => Buffer.from(text).toString('base64');
/** The label on every component pod that the kubevirt-prometheus-metrics Service selects, as upstream's. */
export const PROMETHEUS_LABEL = 'prometheus.kubevirt.io';
export const METRICS_SERVICE = 'kubevirt-prometheus-metrics';
export const labels = (component: string) => ({
  'kubevirt.io': component,
  [MANAGED_BY_LABEL]: MANAGED_BY,
  'app.kubernetes.io/component': 'kubevirt',
});

const CONSOLE_CERT_SECRET = 'kubevirt-virt-console-certs';

/** The certificate Secrets each component mounts, and what each certificate is for. */
export function leafCertificates(namespace: string) {
  const service = (name: string) => [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`, `${name}.${namespace}`, name];
  return [
    { secret: 'kubevirt-virt-api-certs', commonName: `virt-api.${namespace}.svc`, dnsNames: service('virt-api'), usage: 'server' as const },
    {
      secret: 'kubevirt-controller-certs',
      commonName: `virt-controller.${namespace}.svc`,
      dnsNames: service('virt-controller'),
      usage: 'server' as const,
    },
    {
      secret: 'kubevirt-virt-handler-server-certs',
      commonName: 'kubevirt.io:system:node:virt-handler',
      dnsNames: ['virt-handler'],
      usage: 'server' as const,
    },
    { secret: 'kubevirt-virt-handler-certs', commonName: 'kubevirt.io:system:client:virt-handler', dnsNames: [], usage: 'client' as const },
    {
      secret: CONSOLE_CERT_SECRET,
      commonName: `virt-console.${namespace}.svc`,
      dnsNames: service('virt-console'),
      usage: 'server' as const,
    },
    {
      secret: 'kubevirt-cdi-uploadproxy-certs',
      commonName: `cdi-uploadproxy.${namespace}.svc`,
      dnsNames: service('cdi-uploadproxy'),
      usage: 'server' as const,
    },
  ];
}

interface Hook {
  name: string;
  path: string;
  group: string;
  versions: string[];
  resources: string[];
  operations: string[];
  /**
   * The hook has nothing to say about UPDATEs by kubevirt-ts's own service
   * accounts. kube-apiserver then skips the call (matchConditions), which
   * saves two webhook round trips on each of the several status writes of a
   * VMI start. (virt-handler's node is checked by a policy: nodeRestriction.)
   */
  skipOwnUpdates?: true;
  /** CEL conditions the request must meet for the hook to be called. */
  only?: { name: string; expression: string };
  /** The hook writes (only outside dry runs): sideEffects NoneOnDryRun. */
  writesOutsideDryRun?: true;
}

function matchConditions(hook: Hook, namespace: string): Obj {
  if (hook.only) return { matchConditions: [hook.only] };
  if (!hook.skipOwnUpdates) return {};
  const usernames = KUBEVIRT_SERVICE_ACCOUNTS.map((sa) => `'${serviceAccountUsername(namespace, sa)}'`).join(', ');
  return {
    matchConditions: [
      { name: 'not-an-update-by-kubevirt', expression: `!(request.operation == 'UPDATE' && request.userInfo.username in [${usernames}])` },
    ],
  };
}

const CORE_VERSIONS = ['v1', 'v1alpha3'];

export const MUTATING_HOOKS: Hook[] = [
  {
    name: 'virtualmachines-mutator.kubevirt.io',
    path: '/virtualmachines-mutate',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachines'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachineinstances-mutator.kubevirt.io',
    path: '/virtualmachineinstances-mutate',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstances'],
    operations: ['CREATE', 'UPDATE'],
    skipOwnUpdates: true,
  },
  {
    name: 'migrations-mutator.kubevirt.io',
    path: '/migration-mutate-create',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstancemigrations'],
    operations: ['CREATE'],
  },
];

export const VALIDATING_HOOKS: Hook[] = [
  {
    name: 'virtualmachineinstances-create-validator.kubevirt.io',
    path: '/virtualmachineinstances-validate-create',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstances'],
    operations: ['CREATE'],
  },
  {
    name: 'virtualmachineinstances-update-validator.kubevirt.io',
    path: '/virtualmachineinstances-validate-update',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstances'],
    operations: ['UPDATE'],
    skipOwnUpdates: true,
  },
  {
    name: 'virtualmachine-validator.kubevirt.io',
    path: '/virtualmachines-validate',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachines'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachinereplicaset-validator.kubevirt.io',
    path: '/virtualmachinereplicaset-validate',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstancereplicasets'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachinepool-validator.kubevirt.io',
    path: '/virtualmachinepool-validate',
    group: 'pool.kubevirt.io',
    versions: ['v1beta1', 'v1alpha1'],
    resources: ['virtualmachinepools'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    // A launcher pod's eviction marks its VMI for evacuation where its eviction strategy asks for that (upstream's).
    name: 'virt-launcher-eviction-interceptor.kubevirt.io',
    path: '/pod-eviction-validate',
    group: '',
    versions: ['v1'],
    resources: ['pods/eviction'],
    operations: ['*'],
    only: { name: 'only-vms', expression: 'object.metadata.name.startsWith("virt-launcher")' },
    writesOutsideDryRun: true,
  },
  {
    name: 'virtualmachinepreset-validator.kubevirt.io',
    path: '/vmipreset-validate',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstancepresets'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'migration-create-validator.kubevirt.io',
    path: '/migration-validate-create',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstancemigrations'],
    operations: ['CREATE'],
  },
  {
    name: 'migration-update-validator.kubevirt.io',
    path: '/migration-validate-update',
    group: 'kubevirt.io',
    versions: CORE_VERSIONS,
    resources: ['virtualmachineinstancemigrations'],
    operations: ['UPDATE'],
  },
  {
    name: 'virtualmachineinstancetype-validator.instancetype.kubevirt.io',
    path: '/virtualmachineinstancetypes-validate',
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1'],
    resources: ['virtualmachineinstancetypes'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachineclusterinstancetype-validator.instancetype.kubevirt.io',
    path: '/virtualmachineclusterinstancetypes-validate',
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1'],
    resources: ['virtualmachineclusterinstancetypes'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachinepreference-validator.instancetype.kubevirt.io',
    path: '/virtualmachinepreferences-validate',
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1'],
    resources: ['virtualmachinepreferences'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'virtualmachineclusterpreference-validator.instancetype.kubevirt.io',
    path: '/virtualmachineclusterpreferences-validate',
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1'],
    resources: ['virtualmachineclusterpreferences'],
    operations: ['CREATE', 'UPDATE'],
  },
  {
    name: 'migration-policy-validator.kubevirt.io',
    path: '/migration-policy-validate-create',
    group: 'migrations.kubevirt.io',
    versions: ['v1alpha1'],
    resources: ['migrationpolicies'],
    operations: ['CREATE', 'UPDATE'],
  },
];

function webhookConfiguration(
  kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration',
  name: string,
  hooks: Hook[],
  p: InstallParams,
): Obj {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name, labels: labels('virt-api-aggregator') },
    webhooks: hooks.map((hook) => ({
      name: hook.name,
      admissionReviewVersions: ['v1'],
      sideEffects: hook.writesOutsideDryRun ? 'NoneOnDryRun' : 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      matchPolicy: 'Equivalent',
      rules: [{ apiGroups: [hook.group], apiVersions: hook.versions, resources: hook.resources, operations: hook.operations, scope: '*' }],
      ...matchConditions(hook, p.namespace),
      clientConfig: { caBundle: b64(p.caBundle), service: { namespace: p.namespace, name: 'virt-api', path: hook.path, port: 443 } },
    })),
  };
}

/** A component's service account, its ClusterRole and the binding between them. */
export function serviceAccountWithRole(sa: string, p: InstallParams, rules: Obj[]): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: p.namespace, labels: labels('') } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: sa, labels: labels('') }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: sa, labels: labels('') },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: p.namespace }],
    },
  ];
}

/** A Role in the install namespace for what a component keeps there (its leader lease). */
export function namespacedRole(sa: string, p: InstallParams, rules: Obj[]): Obj[] {
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: sa, namespace: p.namespace, labels: labels('') }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: sa, namespace: p.namespace, labels: labels('') },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: p.namespace }],
    },
  ];
}

/**
 * One malloc arena, not one per thread: a component's threads (libuv's, V8's, virt-handler's
 * command workers) allocate little and seldom, and each arena kept pages of its own resident.
 */
export const MALLOC_ONE_ARENA = { name: 'MALLOC_ARENA_MAX', value: '1' };

const COMPONENT_ENV = [
  { name: 'KUBEVIRT_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
  // virt-handler's migration listeners are on its pod's address, as upstream's.
  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  MALLOC_ONE_ARENA,
];

/**
 * How much memory a component's container may use, and the heap V8 is given within it. The
 * targets are a working set of at most 64 MiB idle and 100 MiB under load (100 VMIs; 30 running
 * ones for virt-handler). Old space is capped at 96 MiB, so V8 collects before its heap outgrows
 * the loaded target instead of growing towards its default (~2 GiB on 64-bit), and the limit
 * leaves twice the target for code, the young generation, buffers and TLS (a burst of
 * VMI starts, a big list after a watch expired). virt-handler's is larger: its command workers
 * (an isolate each, ~18 MiB, up to four while VMIs start) are on top.
 */
export const COMPONENT_MEMORY = {
  request: '64Mi',
  limit: '192Mi',
  oldSpaceMiB: 96,
  handler: { request: '80Mi', limit: '256Mi' },
  /** cdi-controller relays uploads (its proxy streams them) and was seen at 156 MiB after the e2e suite: room until that is understood. */
  cdi: { request: '64Mi', limit: '256Mi' },
  /** virt-operator's live heap is mostly its own code: a smaller old space is collected sooner (see operatorNodeCommand). */
  operatorOldSpaceMiB: 48,
} as const;

const v8Flags = (oldSpaceMiB: number) => [
  `--max-old-space-size=${oldSpaceMiB}`,
  '--max-semi-space-size=2',
  '--v8-pool-size=1',
  '--optimize-for-size',
];

/**
 * `node`, started under the component's process name (../contract/process-names.ts), with the V8
 * flags every component but virt-operator runs with: old space capped (above);
 * semi-spaces of 2 MiB instead of 16 (a smaller young generation, for more but shorter
 * scavenges); one V8 platform thread instead of one per core (background GC and compile work);
 * V8's memory-over-speed choices (a heap that grows more slowly between collections), since the
 * components are idle most of the time and their working set is what a node pays for.
 */
export const nodeCommand = (name: ProcessName, script: string, ...args: string[]) => [
  name,
  ...v8Flags(COMPONENT_MEMORY.oldSpaceMiB),
  script,
  ...args,
];

/**
 * virt-operator's `node`: it reconciles now and then and is never hot, so V8's lite mode (no
 * optimizing compiler, no feedback vectors until needed) costs it nothing a user sees and saves
 * the memory the other components spend on speed.
 */
export const operatorNodeCommand = (script: string) => [
  'virt-operator' satisfies ProcessName,
  ...v8Flags(COMPONENT_MEMORY.operatorOldSpaceMiB),
  '--lite-mode',
  script,
];

/** A component container's resources: its CPU request and the memory request and limit above. */
export const componentResources = (cpu: string, memory: { request: string; limit: string } = COMPONENT_MEMORY) => ({
  requests: { cpu, memory: memory.request },
  limits: { memory: memory.limit },
});

/** A component's pod: the component image, non-root, no capabilities, read-only root. */
export function componentPodSpec(name: string, sa: string, image: string, pullPolicy: string, container: Obj, volumes: Obj[] = []): Obj {
  return {
    serviceAccountName: sa,
    securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name,
        image,
        imagePullPolicy: pullPolicy,
        env: COMPONENT_ENV,
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
        ...container,
      },
    ],
    ...(volumes.length ? { volumes } : {}),
  };
}

/** A component's pod (componentPodSpec's arguments after the placement) with the CR's placement for it. */
const placedPodSpec = (placement: NodePlacement | undefined, ...args: Parameters<typeof componentPodSpec>) =>
  withPlacement(componentPodSpec(...args), placement);

/** A component's Deployment; `metrics: false` keeps it out of the kubevirt-prometheus-metrics Service (it serves no /metrics on 8443). */
export function componentDeployment(name: string, namespace: string, replicas: number, podSpec: Obj, { metrics = true } = {}): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: labels(name) },
    spec: {
      replicas,
      selector: { matchLabels: { 'kubevirt.io': name } },
      template: {
        metadata: { labels: { 'kubevirt.io': name, [MANAGED_BY_LABEL]: MANAGED_BY, ...(metrics ? { [PROMETHEUS_LABEL]: 'true' } : {}) } },
        spec: podSpec,
      },
    },
  };
}

export const certVolume = (secret: string) => ({ name: secret, secret: { secretName: secret } });
/** The CA bundle, for the components that talk to each other over mutual TLS. */
const caVolume = { name: 'kubevirt-ca', configMap: { name: 'kubevirt-ca' } };

/** Everything virt-operator installs besides the CRDs and the user roles, in apply order. */
export function componentObjects(p: InstallParams): Obj[] {
  return [
    ...virtApiObjects(p),
    ...virtControllerObjects(p),
    ...virtHandlerObjects(p),
    ...consoleObjects(p),
    metricsService(p),
    ...registrations(p),
  ];
}

/**
 * The Service Prometheus scrapes the components through, as upstream's: every pod labelled
 * prometheus.kubevirt.io=true (virt-api, virt-controller, virt-handler, virt-operator), its
 * metrics port. Metrics are served over TLS without client authentication, as upstream serves them.
 */
function metricsService(p: InstallParams): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: METRICS_SERVICE, namespace: p.namespace, labels: { ...labels(''), [PROMETHEUS_LABEL]: 'true' } },
    spec: {
      selector: { [PROMETHEUS_LABEL]: 'true' },
      // By number: virt-api's port carries its API name; every component serves metrics on 8443.
      ports: [{ name: 'metrics', port: 443, targetPort: 8443, protocol: 'TCP' }],
    },
  };
}

function virtApiObjects(p: InstallParams): Obj[] {
  const sa = 'kubevirt-apiserver';
  return [
    // virt-api reads the cluster configuration and the instance types VMs refer to, and turns
    // lifecycle requests into patches of VMs (runStrategy, state change requests) and VMIs (grace period),
    // and migrate requests into migrations.
    ...serviceAccountWithRole(sa, p, [
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines', 'virtualmachineinstances'], verbs: ['get', 'patch'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ['create'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['patch'] },
      // A forced restart deletes the VMI's launcher pod at once, as upstream's virt-api does;
      // the eviction webhook reads the pod to be evicted.
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'delete'] },
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
      // Whether the creator of a cross-namespace clone may read its source (CDI's check).
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
      {
        apiGroups: ['instancetype.kubevirt.io'],
        resources: [
          'virtualmachineinstancetypes',
          'virtualmachineclusterinstancetypes',
          'virtualmachinepreferences',
          'virtualmachineclusterpreferences',
        ],
        verbs: ['get', 'list', 'watch'],
      },
    ]),
    // The front proxy's CA and allowed names, to check who forwards aggregated requests.
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kubevirt-apiserver-auth-reader', namespace: 'kube-system', labels: labels('') },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: p.namespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'virt-api', namespace: p.namespace, labels: labels('virt-api') },
      spec: { selector: { 'kubevirt.io': 'virt-api' }, ports: [{ port: 443, targetPort: 8443, protocol: 'TCP' }] },
    },
    componentDeployment(
      'virt-api',
      p.namespace,
      2,
      placedPodSpec(
        p.placement?.infra,
        'virt-api',
        sa,
        p.image,
        p.imagePullPolicy,
        {
          command: nodeCommand('virt-api', '/app/src/virt-api/main.js'),
          ports: [{ name: 'virt-api', containerPort: 8443, protocol: 'TCP' }],
          readinessProbe: { httpGet: { scheme: 'HTTPS', port: 8443, path: '/readyz' }, periodSeconds: 2, initialDelaySeconds: 1 },
          // Its CPU share must hold up against launcher pods starting together: every VMI creation waits on its webhooks.
          resources: componentResources('50m'),
          volumeMounts: [
            { name: 'kubevirt-virt-api-certs', mountPath: '/etc/virt-api/certificates', readOnly: true },
            { name: 'kubevirt-virt-handler-certs', mountPath: '/etc/virt-api/handler-client', readOnly: true },
            { name: 'kubevirt-ca', mountPath: '/etc/virt-api/ca', readOnly: true },
            { name: UPLOAD_TOKEN_SECRET, mountPath: '/etc/virt-api/upload-token', readOnly: true },
          ],
        },
        [
          certVolume('kubevirt-virt-api-certs'),
          certVolume('kubevirt-virt-handler-certs'),
          caVolume,
          // The key of upload tokens (UploadTokenRequest); there only while kubevirt-ts serves DataVolumes.
          { name: UPLOAD_TOKEN_SECRET, secret: { secretName: UPLOAD_TOKEN_SECRET, optional: true } },
        ],
      ),
    ),
    // It finds the virt-handler of a VMI's node to relay VMI actions to it.
    ...namespacedRole(sa, p, [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]),
  ];
}

/** virt-controller: VMs into VMIs, VMIs into launcher pods, node health. */
function virtControllerObjects(p: InstallParams): Obj[] {
  const sa = 'kubevirt-controller';
  return [
    ...serviceAccountWithRole(sa, p, [
      // Pools make, update and delete their VMs.
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list', 'watch', 'patch', 'create', 'delete'] },
      { apiGroups: ['pool.kubevirt.io'], resources: ['virtualmachinepools'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['pool.kubevirt.io'], resources: ['virtualmachinepools/status'], verbs: ['update'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['update', 'patch'] },
      {
        apiGroups: ['kubevirt.io'],
        resources: ['virtualmachineinstances'],
        verbs: ['get', 'list', 'watch', 'create', 'delete', 'update', 'patch'],
      },
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
      // Replica sets: read, and their status written; their VMIs are made, adopted and deleted above.
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancereplicasets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancereplicasets/status'], verbs: ['update'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ['get', 'list', 'watch', 'patch', 'create'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations/status'], verbs: ['update'] },
      { apiGroups: ['migrations.kubevirt.io'], resources: ['migrationpolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
      // Instance types and preferences are read and captured for each VM in ControllerRevisions it owns.
      {
        apiGroups: ['instancetype.kubevirt.io'],
        resources: [
          'virtualmachineinstancetypes',
          'virtualmachineclusterinstancetypes',
          'virtualmachinepreferences',
          'virtualmachineclusterpreferences',
        ],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: ['apps'], resources: ['controllerrevisions'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
      // A VM's dataVolumeTemplates become DataVolumes (orphans adopted); VMIs wait for their claims.
      { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
      // The filesystem overhead the VMI's volumeStatus reports.
      { apiGroups: ['cdi.kubevirt.io'], resources: ['cdiconfigs'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      // Snapshots, restores, exports, clones and backups are not carried out yet: it only says so in their status.
      ...NOT_SUPPORTED_KINDS.flatMap((k) => [
        { apiGroups: [k.group], resources: [k.plural], verbs: ['list', 'watch'] },
        { apiGroups: [k.group], resources: [`${k.plural}/status`], verbs: ['patch'] },
      ]),
    ]),
    // Its leader lease, and virt-handlers' node leases it watches (self-fencing).
    ...namespacedRole(sa, p, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
    ]),
    componentDeployment(
      'virt-controller',
      p.namespace,
      2,
      placedPodSpec(
        p.placement?.infra,
        'virt-controller',
        sa,
        p.image,
        p.imagePullPolicy,
        {
          command: nodeCommand(
            'virt-controller',
            '/app/src/controller/main.js',
            '--launcher-image',
            p.launcherImage,
            '--image-pull-policy',
            p.imagePullPolicy,
          ),
          // /healthz and /leader, over TLS, as upstream's virt-controller serves them beside its metrics.
          ports: [{ name: 'metrics', containerPort: 8443, protocol: 'TCP' }],
          // As virt-api's: a starved controller holds up every VMI's Scheduled.
          resources: componentResources('50m'),
          volumeMounts: [{ name: 'kubevirt-controller-certs', mountPath: '/etc/virt-controller/certificates', readOnly: true }],
        },
        [certVolume('kubevirt-controller-certs')],
      ),
    ),
  ];
}

/**
 * virt-handler: one per node. It wires network and disks inside launcher
 * pods, so it is privileged, in the host PID namespace, and sees the kubelet's
 * pods directory (mounts it makes there reach the launchers). It runs from the
 * launcher image, which carries QEMU (for the KVM probe), iproute2 and iptables.
 */
function virtHandlerObjects(p: InstallParams): Obj[] {
  const sa = 'kubevirt-handler';
  const pod = componentPodSpec(
    'virt-handler',
    sa,
    p.launcherImage,
    p.imagePullPolicy,
    {
      command: nodeCommand('virt-handler', '/app/src/handler/main.js'),
      // Prometheus metrics (and /healthz), over TLS with its serving certificate, as upstream's.
      ports: [{ name: 'metrics', containerPort: 8443, protocol: 'TCP' }],
      // Ready while it serves and reaches kube-apiserver, as upstream's (sooner and more often than its 15 s / 20 s).
      readinessProbe: {
        httpGet: { scheme: 'HTTPS', port: 8443, path: '/healthz' },
        initialDelaySeconds: 1,
        periodSeconds: 5,
        timeoutSeconds: 5,
      },
      // Its CPU share must hold up against busy launcher pods (emulated guests), or syncs queue behind them.
      resources: componentResources('100m', COMPONENT_MEMORY.handler),
      securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
      volumeMounts: [
        ...['kubevirt-virt-handler-certs', 'kubevirt-virt-handler-server-certs'].map((name) => ({
          name,
          mountPath: `/etc/virt-handler/${name}`,
          readOnly: true,
        })),
        { name: 'kubevirt-ca', mountPath: '/etc/virt-handler/kubevirt-ca', readOnly: true },
        { name: 'kubelet-pods', mountPath: '/var/lib/kubelet/pods', mountPropagation: 'Bidirectional' },
        { name: 'state', mountPath: '/var/run/kubevirt-ts' },
      ],
    },
    [
      certVolume('kubevirt-virt-handler-certs'),
      certVolume('kubevirt-virt-handler-server-certs'),
      caVolume,
      { name: 'kubelet-pods', hostPath: { path: '/var/lib/kubelet/pods', type: 'Directory' } },
      { name: 'state', hostPath: { path: '/var/run/kubevirt-ts', type: 'DirectoryOrCreate' } },
    ],
  );
  return [
    // Its node's lease (self-fencing), in the install namespace only.
    ...namespacedRole(sa, p, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'patch'] }]),
    ...serviceAccountWithRole(sa, p, [
      { apiGroups: [''], resources: ['nodes', 'nodes/status'], verbs: ['get', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]),
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'virt-handler', namespace: p.namespace, labels: labels('virt-handler') },
      spec: {
        selector: { matchLabels: { 'kubevirt.io': 'virt-handler' } },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels: { 'kubevirt.io': 'virt-handler', [MANAGED_BY_LABEL]: MANAGED_BY, [PROMETHEUS_LABEL]: 'true' } },
          spec: withPlacement(
            { ...pod, hostPID: true, securityContext: { seccompProfile: { type: 'RuntimeDefault' } } },
            p.placement?.workloads,
          ),
        },
      },
    },
  ];
}

/** A headless Service of virt-handler's metrics port: its DNS name lists the ready virt-handler pods, with no rights needed to read it. */
const HANDLER_METRICS_SERVICE = 'virt-handler-metrics';

/**
 * The web console (src/console): it acts only with the token each browser sends, so its service account has
 * no role and its pod mounts no token; it reads kube-apiserver's CA from the namespace's kube-root-ca.crt.
 * VMI graphs come from the Prometheus found (prometheusUrl), else from virt-handler's metrics, which the
 * console scrapes itself through the headless Service (checked against the kubevirt CA).
 */
function consoleObjects(p: InstallParams): Obj[] {
  const name = 'virt-console';
  const pod = componentPodSpec(
    name,
    'kubevirt-console',
    p.image,
    p.imagePullPolicy,
    {
      command: nodeCommand(
        'virt-console',
        '/app/src/console/main.js',
        `--prometheus-url=${p.prometheusUrl ?? ''}`,
        `--handler-metrics=${HANDLER_METRICS_SERVICE}.${p.namespace}.svc:8443`,
      ),
      ports: [{ name: 'https', containerPort: 8443, protocol: 'TCP' }],
      readinessProbe: { httpGet: { scheme: 'HTTPS', port: 8443, path: '/healthz' }, periodSeconds: 5, initialDelaySeconds: 1 },
      resources: componentResources('10m'),
      volumeMounts: [
        { name: CONSOLE_CERT_SECRET, mountPath: '/etc/virt-console/certificates', readOnly: true },
        { name: 'kube-ca', mountPath: '/etc/virt-console/kube-ca', readOnly: true },
        { name: 'kubevirt-ca', mountPath: '/etc/virt-console/kubevirt-ca', readOnly: true },
      ],
    },
    [certVolume(CONSOLE_CERT_SECRET), { name: 'kube-ca', configMap: { name: 'kube-root-ca.crt' } }, caVolume],
  );
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'kubevirt-console', namespace: p.namespace, labels: labels('') },
      automountServiceAccountToken: false,
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: p.namespace, labels: labels(name) },
      spec: { selector: { 'kubevirt.io': name }, ports: [{ name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' }] },
    },
    componentDeployment(name, p.namespace, 1, { ...pod, automountServiceAccountToken: false }, { metrics: false }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: HANDLER_METRICS_SERVICE, namespace: p.namespace, labels: labels('virt-handler') },
      spec: {
        clusterIP: 'None',
        selector: { 'kubevirt.io': 'virt-handler' },
        ports: [{ name: 'metrics', port: 8443, targetPort: 8443, protocol: 'TCP' }],
      },
    },
  ];
}

export const NODE_RESTRICTION_POLICY = 'kubevirt-vmi-node-restriction-policy';

/**
 * virt-handler may write only the VMIs on its own node, or migrating to it
 * (their migration state names it the target): its token is bound to its pod,
 * so kube-apiserver knows the node it runs on. Checked by kube-apiserver
 * itself (CEL), without a webhook round trip on each of virt-handler's status
 * writes.
 */
function nodeRestriction(p: InstallParams): Obj[] {
  const onNode = (o: string) =>
    `(has(${o}.status) && has(${o}.status.nodeName) && ${o}.status.nodeName == variables.node) || ` +
    `(has(${o}.status) && has(${o}.status.migrationState) && has(${o}.status.migrationState.targetNode) && ${o}.status.migrationState.targetNode == variables.node)`;
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: NODE_RESTRICTION_POLICY, labels: labels('virt-handler') },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['kubevirt.io'],
              apiVersions: ['*'],
              operations: ['UPDATE'],
              resources: ['virtualmachineinstances', 'virtualmachineinstances/status'],
            },
          ],
        },
        matchConditions: [
          {
            name: 'virt-handler-only',
            expression: `request.userInfo.username == '${serviceAccountUsername(p.namespace, 'kubevirt-handler')}'`,
          },
        ],
        variables: [
          {
            name: 'node',
            expression:
              "has(request.userInfo.extra) && 'authentication.kubernetes.io/node-name' in request.userInfo.extra ? request.userInfo.extra['authentication.kubernetes.io/node-name'][0] : ''",
          },
        ],
        validations: [
          {
            expression: `variables.node != '' && (${onNode('oldObject')}) && (${onNode('object')})`,
            messageExpression:
              "'Node restriction, virt-handler' + (variables.node != '' ? ' on node ' + variables.node : '') + ' is only allowed to modify VMIs it owns'",
            reason: 'Forbidden',
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: 'kubevirt-vmi-node-restriction-binding', labels: labels('virt-handler') },
      spec: { policyName: NODE_RESTRICTION_POLICY, validationActions: ['Deny'] },
    },
  ];
}

/** How the kube-apiserver reaches virt-api: the webhooks and the subresource API. */
function registrations(p: InstallParams): Obj[] {
  return [
    webhookConfiguration('MutatingWebhookConfiguration', 'virt-api-mutator', MUTATING_HOOKS, p),
    webhookConfiguration('ValidatingWebhookConfiguration', 'virt-api-validator', VALIDATING_HOOKS, p),
    ...nodeRestriction(p),
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: 'v1.subresources.kubevirt.io', labels: labels('virt-api-aggregator') },
      spec: {
        group: 'subresources.kubevirt.io',
        version: 'v1',
        groupPriorityMinimum: 1000,
        versionPriority: 15,
        service: { namespace: p.namespace, name: 'virt-api', port: 443 },
        caBundle: b64(p.caBundle),
      },
    },
  ];
}
