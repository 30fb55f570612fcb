// What virt-operator installs for a KubeVirt CR, what the operator itself is
// made of (kubevirt-operator.yaml), and how the CR's status reports the
// install. Pure: ./kubevirt-controller.ts applies and observes.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { CDI_CRDS, CRDS, renderCrd } from '../api/crds.ts';
import { cdiObjects } from './cdi-components.ts';
import { HEADER } from '../api/manifests.ts';
import type { KubeVirt, KubeVirtStatus } from '../api/types.ts';
import {
  componentDeployment,
  componentObjects,
  componentPodSpec,
  componentResources,
  MANAGED_BY,
  MALLOC_ONE_ARENA,
  MANAGED_BY_LABEL,
  operatorNodeCommand,
  type InstallParams,
} from './components.ts';
import { monitoringObjects } from './monitoring.ts';
import { userClusterRoles } from './rbac.ts';

type Obj = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };
type Condition = NonNullable<KubeVirtStatus['conditions']>[number];

export const KUBEVIRT_FINALIZER = 'foregroundDeleteKubeVirt';
export const OPERATOR_VERSION = 'v1.7.0-kubevirt-ts';
const KUBEVIRT_CRD = 'kubevirts.kubevirt.io';

const managed = (o: Obj): Obj => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY } } });

/** The CRDs the operator owns: all but the KubeVirt CRD, which the operator's own manifest carries. */
export function installedCrds(cdi: boolean): Obj[] {
  return [...CRDS, ...(cdi ? CDI_CRDS : [])]
    .map((def) => renderCrd(def) as Obj)
    .filter((crd) => crd.metadata?.name !== KUBEVIRT_CRD)
    .map(managed);
}

/** Everything installed for a KubeVirt CR, in the order it is applied (deletion runs in reverse). */
export function desiredInstall(p: InstallParams): Obj[] {
  return [
    ...installedCrds(p.cdi),
    ...userClusterRoles().map((r) => managed(r as Obj)),
    ...(componentObjects(p) as Obj[]),
    ...(p.cdi ? cdiObjects(p).map(managed) : []),
    ...(p.monitoring ? monitoringObjects(p.namespace, p.monitoring).map(managed) : []),
  ];
}

export interface ImageSettings {
  image: string;
  launcherImage: string;
  imagePullPolicy: string;
}

/** Component images: the operator's own, unless the CR names another registry or tag. */
export function componentImages(kv: KubeVirt, defaults: ImageSettings): ImageSettings {
  const retag = (ref: string) => {
    const at = ref.search(/[@:][^/]*$/);
    const repo = at >= 0 ? ref.slice(0, at) : ref;
    const registry = kv.spec?.imageRegistry;
    const path = repo.slice(repo.indexOf('/') + 1);
    const base = registry ? `${registry}/${path}` : repo;
    if (kv.spec?.imageTag) return `${base}:${kv.spec.imageTag}`;
    return registry ? `${base}${ref.slice(at)}` : ref;
  };
  return {
    image: retag(defaults.image),
    launcherImage: retag(defaults.launcherImage),
    imagePullPolicy: kv.spec?.imagePullPolicy ?? defaults.imagePullPolicy,
  };
}

export interface Readiness {
  /** Components not ready yet, with why. */
  waiting: string[];
  /** The generations of the workloads applied (upstream's status.generations), as their caches hold them. */
  generations?: GenerationStatus[];
}

type GenerationStatus = NonNullable<KubeVirtStatus['generations']>[number];

/**
 * What upstream calls the deployment config: what identifies one install (namespace, registry,
 * version, pull policy), as JSON with its ID, a SHA-1 over the rest.
 */
export function deploymentConfig(namespace: string, images: ImageSettings): { id: string; json: string } {
  const fields = {
    namespace,
    registry: registryOf(images.image),
    imagePrefix: '',
    kubeVirtVersion: versionOf(images.image),
    additionalProperties: { ImagePullPolicy: images.imagePullPolicy },
  };
  const id = createHash('sha1').update(JSON.stringify(fields)).digest('hex');
  return { id, json: JSON.stringify({ id, ...fields }) };
}

/**
 * The CR status, as upstream's virt-operator writes it: the target install's version, registry
 * and ID at once; Created once every object is applied (this is computed only after they are);
 * Deployed, Available and the observed version, registry, ID and generation once every component
 * is ready. A new target over an observed install is an update: Available stays, Degraded tells it.
 */
export function kubevirtStatus(kv: KubeVirt, readiness: Readiness, images: ImageSettings, now: string): KubeVirtStatus {
  const ready = readiness.waiting.length === 0;
  const previous = kv.status?.conditions ?? [];
  const condition = (type: string, status: boolean, reason: string, message: string): Condition => {
    const old = previous.find((c) => c.type === type);
    const s = status ? 'True' : 'False';
    const same = old?.status === s && old.reason === reason && old.message === message;
    return {
      type,
      status: s,
      reason,
      message,
      lastProbeTime: same ? old.lastProbeTime : now,
      lastTransitionTime: same ? old.lastTransitionTime : now,
    };
  };
  const version = versionOf(images.image);
  const registry = registryOf(images.image);
  const target = deploymentConfig(kv.metadata.namespace ?? '', images);
  const observedId = kv.status?.observedDeploymentID;
  const updating = !!observedId && observedId !== target.id;
  let progress: Condition[];
  if (ready) {
    const message = 'All components are ready.';
    progress = [
      condition('Available', true, 'AllComponentsReady', message),
      condition('Progressing', false, 'AllComponentsReady', message),
      condition('Degraded', false, 'AllComponentsReady', message),
    ];
  } else if (updating) {
    const message =
      `Transitioning from previous version ${kv.status?.observedKubeVirtVersion ?? ''} with registry ` +
      `${kv.status?.observedKubeVirtRegistry ?? ''} to target version ${version} using registry ${registry}`;
    progress = [
      condition('Available', true, 'UpdateInProgress', message),
      condition('Progressing', true, 'UpdateInProgress', message),
      condition('Degraded', true, 'UpdateInProgress', message),
    ];
  } else {
    const message = `Deploying version ${version} with registry ${registry}`;
    progress = [
      condition('Available', false, 'DeploymentInProgress', message),
      condition('Progressing', true, 'DeploymentInProgress', message),
      condition('Degraded', false, 'DeploymentInProgress', message),
    ];
  }
  const status: KubeVirtStatus = {
    ...kv.status,
    phase: ready ? 'Deployed' : 'Deploying',
    conditions: [...progress, condition('Created', true, 'AllResourcesCreated', 'All resources were created.')],
    operatorVersion: OPERATOR_VERSION,
    targetKubeVirtRegistry: registry,
    targetKubeVirtVersion: version,
    targetDeploymentID: target.id,
    targetDeploymentConfig: target.json,
    ...(ready
      ? {
          observedKubeVirtRegistry: registry,
          observedKubeVirtVersion: version,
          observedDeploymentID: target.id,
          observedDeploymentConfig: target.json,
          observedGeneration: kv.metadata.generation,
        }
      : {}),
    defaultArchitecture: kv.spec?.configuration?.architectureConfiguration?.defaultArchitecture || 'amd64',
  };
  if (readiness.generations) status.generations = readiness.generations;
  return status;
}

const versionOf = (image: string) => image.split(/[@:]/).pop() ?? '';
const registryOf = (image: string) => image.split('/')[0];

/** What a Deployment or DaemonSet still waits for, if anything. */
export function workloadWaiting(
  o:
    | {
        kind?: string;
        metadata?: { name?: string; generation?: number };
        spec?: { replicas?: number };
        status?: Record<string, number | undefined>;
      }
    | undefined,
  kind: string,
  name: string,
): string | undefined {
  if (!o) return `${kind} ${name} missing`;
  const s = o.status ?? {};
  if ((s.observedGeneration ?? 0) < (o.metadata?.generation ?? 0)) return `${kind} ${name} not observed`;
  if (kind === 'DaemonSet') {
    const want = s.desiredNumberScheduled ?? 0;
    return want > 0 && (s.numberReady ?? 0) >= want && (s.updatedNumberScheduled ?? 0) >= want
      ? undefined
      : `DaemonSet ${name} ${s.numberReady ?? 0}/${want} ready`;
  }
  const want = o.spec?.replicas ?? 1;
  return (s.readyReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want && (s.replicas ?? 0) <= want
    ? undefined
    : `Deployment ${name} ${s.readyReplicas ?? 0}/${want} ready`;
}

/** The operator itself, as manifests/kubevirt-operator.yaml carries it. */
export function operatorManifest(p: { namespace: string } & ImageSettings): Obj[] {
  const sa = 'kubevirt-operator';
  const kubevirtCrd = CRDS.find((d) => `${d.plural}.${d.group}` === KUBEVIRT_CRD)!;
  const labels = { 'kubevirt.io': '', 'app.kubernetes.io/component': 'kubevirt' };
  const all = ['*'];
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: p.namespace, labels: { 'kubevirt.io': '', 'pod-security.kubernetes.io/enforce': 'privileged' } },
    },
    renderCrd(kubevirtCrd) as Obj,
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: p.namespace, labels } },
    {
      // The installer: it creates the CRDs, roles, components and registrations, so it may write those and nothing else.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: sa, labels },
      rules: [
        { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
        { apiGroups: ['kubevirt.io'], resources: ['kubevirts/status'], verbs: ['get', 'patch', 'update'] },
        { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['list'] },
        { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: all },
        {
          apiGroups: ['rbac.authorization.k8s.io'],
          resources: ['clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'],
          verbs: [...all, 'escalate', 'bind'],
        },
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: [
            'mutatingwebhookconfigurations',
            'validatingwebhookconfigurations',
            'validatingadmissionpolicies',
            'validatingadmissionpolicybindings',
          ],
          verbs: all,
        },
        { apiGroups: ['apiregistration.k8s.io'], resources: ['apiservices'], verbs: all },
        { apiGroups: [''], resources: ['serviceaccounts', 'services', 'secrets', 'configmaps'], verbs: all },
        { apiGroups: ['apps'], resources: ['deployments', 'daemonsets'], verbs: all },
        // For a Prometheus Operator in the cluster: its CRDs are looked up, its objects written.
        { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors', 'prometheusrules'], verbs: all },
        // The catalogue of common cluster instance types and preferences.
        {
          apiGroups: ['instancetype.kubevirt.io'],
          resources: ['virtualmachineclusterinstancetypes', 'virtualmachineclusterpreferences'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
        },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: sa, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: p.namespace }],
    },
    componentDeployment(
      'virt-operator',
      p.namespace,
      1,
      componentPodSpec('virt-operator', sa, p.image, p.imagePullPolicy, {
        command: operatorNodeCommand('/app/src/operator/main.js'),
        // Its metrics, over TLS, as upstream's.
        ports: [{ name: 'metrics', containerPort: 8443, protocol: 'TCP' }],
        env: [
          { name: 'KUBEVIRT_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'VIRT_TS_IMAGE', value: p.image },
          { name: 'VIRT_LAUNCHER_IMAGE', value: p.launcherImage },
          { name: 'IMAGE_PULL_POLICY', value: p.imagePullPolicy },
          MALLOC_ONE_ARENA,
        ],
        resources: componentResources('10m'),
      }),
    ) as Obj,
  ];
}

/** The operator install manifest, for the images of the local registry's devel tag. */
export function renderedOperatorManifest(): string {
  const objects = operatorManifest({
    namespace: 'kubevirt',
    image: 'registry:5000/kubevirt-ts/virt-ts:devel',
    launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
    imagePullPolicy: 'Always',
  });
  return (
    HEADER.replace('src/api', 'src/operator') +
    objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n')
  );
}
