// What virt-operator installs for DataVolumes where CDI itself is not
// installed: cdi-controller (the DataVolume controller and the upload proxy)
// with least-privilege RBAC, the proxy's Service (a node port, so clients
// outside the cluster reach it), the UploadTokenRequest API (served by
// virt-api) and the user roles for CDI's kinds. Pure.
//
// cdi-controller mounts the fill-pod CA and hands each fill pod its
// certificate in the pod's environment, as CDI does for its upload server:
// it needs no rights on Secrets, where a Secret per pod would have it create
// (and so be able to overwrite) Secrets in every namespace.
import { DATAVOLUME_WEBHOOK_PATH, FILL_POD_CA_SECRET, UPLOAD_GROUP } from '../contract/cdi.ts';
import { UPLOAD_TOKEN_SECRET } from '../contract/upload-token.ts';
import {
  b64,
  certVolume,
  componentDeployment,
  componentPodSpec,
  COMPONENT_MEMORY,
  componentResources,
  nodeCommand,
  type InstallParams,
  labels,
  namespacedRole,
  serviceAccountWithRole,
} from './components.ts';

type Obj = Record<string, unknown>;

export const CDI_SERVICE_ACCOUNT = 'kubevirt-cdi-controller';
export const UPLOAD_PROXY_SERVICE = 'cdi-uploadproxy';
export const UPLOAD_API_SERVICE = `v1beta1.${UPLOAD_GROUP}`;

export function cdiObjects(p: InstallParams): Obj[] {
  const sa = CDI_SERVICE_ACCOUNT;
  return [
    ...serviceAccountWithRole(sa, p, [
      { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes/status'], verbs: ['update'] },
      { apiGroups: ['cdi.kubevirt.io'], resources: ['cdiconfigs'], verbs: ['get', 'create', 'update'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]),
    ...namespacedRole(sa, p, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get'] },
    ]),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: UPLOAD_PROXY_SERVICE, namespace: p.namespace, labels: labels('cdi-uploadproxy') },
      spec: { type: 'NodePort', selector: { 'kubevirt.io': 'cdi-controller' }, ports: [{ port: 443, targetPort: 8443, protocol: 'TCP' }] },
    },
    componentDeployment(
      'cdi-controller',
      p.namespace,
      1,
      componentPodSpec(
        'cdi-controller',
        sa,
        p.image,
        p.imagePullPolicy,
        {
          command: nodeCommand(
            'cdi-controller',
            '/app/src/cdi/main.js',
            '--fill-pod-image',
            p.launcherImage,
            '--image-pull-policy',
            p.imagePullPolicy,
          ),
          ports: [{ name: 'uploadproxy', containerPort: 8443, protocol: 'TCP' }],
          readinessProbe: { httpGet: { scheme: 'HTTPS', port: 8443, path: '/healthz' }, periodSeconds: 2, initialDelaySeconds: 1 },
          resources: componentResources('10m', COMPONENT_MEMORY.cdi),
          volumeMounts: [
            { name: 'kubevirt-cdi-uploadproxy-certs', mountPath: '/etc/cdi-uploadproxy/certificates', readOnly: true },
            { name: UPLOAD_TOKEN_SECRET, mountPath: '/etc/cdi-upload-token', readOnly: true },
            { name: FILL_POD_CA_SECRET, mountPath: '/etc/cdi-fill-pod-ca', readOnly: true },
          ],
        },
        [
          certVolume('kubevirt-cdi-uploadproxy-certs'),
          { name: UPLOAD_TOKEN_SECRET, secret: { secretName: UPLOAD_TOKEN_SECRET } },
          certVolume(FILL_POD_CA_SECRET),
        ],
      ),
      { metrics: false },
    ),
    ...cdiUserRoles(),
    ...cdiRegistrations(p),
  ];
}

/** The UploadTokenRequest API, behind virt-api. */
function cdiRegistrations(p: InstallParams): Obj[] {
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'cdi-api-datavolume-validate', labels: labels('virt-api-aggregator') },
      webhooks: [
        {
          name: 'datavolume-validate.cdi.kubevirt.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
          rules: [
            { apiGroups: ['cdi.kubevirt.io'], apiVersions: ['v1beta1'], resources: ['datavolumes'], operations: ['CREATE'], scope: '*' },
          ],
          clientConfig: {
            caBundle: b64(p.caBundle),
            service: { namespace: p.namespace, name: 'virt-api', path: DATAVOLUME_WEBHOOK_PATH, port: 443 },
          },
        },
      ],
    },
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: UPLOAD_API_SERVICE, labels: labels('virt-api-aggregator') },
      spec: {
        group: UPLOAD_GROUP,
        version: 'v1beta1',
        groupPriorityMinimum: 1000,
        versionPriority: 15,
        service: { namespace: p.namespace, name: 'virt-api', port: 443 },
        caBundle: b64(p.caBundle),
      },
    },
  ];
}

const ALL = ['get', 'delete', 'create', 'update', 'patch', 'list', 'watch', 'deletecollection'];
const READ = ['get', 'list', 'watch'];

/** CDI's user roles, by CDI's names, aggregated into Kubernetes' admin, edit and view. */
function cdiUserRoles(): Obj[] {
  const role = (name: string, aggregateTo: string, rules: Obj[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: { 'kubevirt.io': '', [`rbac.authorization.k8s.io/aggregate-to-${aggregateTo}`]: 'true' } },
    rules,
  });
  const writer = [
    { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes'], verbs: ALL },
    { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes/source'], verbs: ['create'] },
    { apiGroups: [UPLOAD_GROUP], resources: ['uploadtokenrequests'], verbs: ['create'] },
    { apiGroups: ['cdi.kubevirt.io'], resources: ['cdiconfigs'], verbs: READ },
  ];
  return [
    role('cdi.kubevirt.io:admin', 'admin', writer),
    role('cdi.kubevirt.io:edit', 'edit', writer),
    role('cdi.kubevirt.io:view', 'view', [
      { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes', 'cdiconfigs'], verbs: READ },
      { apiGroups: ['cdi.kubevirt.io'], resources: ['datavolumes/source'], verbs: ['create'] },
    ]),
    {
      // Every user may read where the upload proxy is, as CDI allows.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'cdi.kubevirt.io:config-reader', labels: { 'kubevirt.io': '' } },
      rules: [{ apiGroups: ['cdi.kubevirt.io'], resources: ['cdiconfigs'], verbs: READ }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'cdi.kubevirt.io:config-reader', labels: { 'kubevirt.io': '' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cdi.kubevirt.io:config-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    },
  ];
}
