// Server-side apply and delete of arbitrary install objects, sent as the JSON
// they are. (The client library's generic object API re-serialises objects
// through its typed models, which drops schema keys such as
// x-kubernetes-int-or-string from CRDs.)
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, rawRequest } from './raw-request.ts';

/** Where each kind the operator installs lives in the API. */
const RESOURCES: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  Namespace: { group: '', plural: 'namespaces', namespaced: false },
  ServiceAccount: { group: '', plural: 'serviceaccounts', namespaced: true },
  Service: { group: '', plural: 'services', namespaced: true },
  Secret: { group: '', plural: 'secrets', namespaced: true },
  ConfigMap: { group: '', plural: 'configmaps', namespaced: true },
  Deployment: { group: 'apps', plural: 'deployments', namespaced: true },
  DaemonSet: { group: 'apps', plural: 'daemonsets', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', plural: 'rolebindings', namespaced: true },
  CustomResourceDefinition: { group: 'apiextensions.k8s.io', plural: 'customresourcedefinitions', namespaced: false },
  MutatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', plural: 'mutatingwebhookconfigurations', namespaced: false },
  ValidatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', plural: 'validatingwebhookconfigurations', namespaced: false },
  ValidatingAdmissionPolicy: { group: 'admissionregistration.k8s.io', plural: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: {
    group: 'admissionregistration.k8s.io',
    plural: 'validatingadmissionpolicybindings',
    namespaced: false,
  },
  APIService: { group: 'apiregistration.k8s.io', plural: 'apiservices', namespaced: false },
  VirtualMachineClusterInstancetype: { group: 'instancetype.kubevirt.io', plural: 'virtualmachineclusterinstancetypes', namespaced: false },
  VirtualMachineClusterPreference: { group: 'instancetype.kubevirt.io', plural: 'virtualmachineclusterpreferences', namespaced: false },
  ServiceMonitor: { group: 'monitoring.coreos.com', plural: 'servicemonitors', namespaced: true },
  PrometheusRule: { group: 'monitoring.coreos.com', plural: 'prometheusrules', namespaced: true },
};

export interface ApplyObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** The collection an object of this kind lives in (in its namespace, for a namespaced kind). */
function collectionPath(obj: ApplyObject): string {
  const resource = RESOURCES[obj.kind ?? ''];
  if (!resource) throw new Error(`no API path known for kind ${obj.kind}`);
  const base = resource.group ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${obj.metadata?.namespace}` : '';
  return `${base}${ns}/${resource.plural}`;
}

export function objectPath(obj: ApplyObject): string {
  return `${collectionPath(obj)}/${encodeURIComponent(obj.metadata?.name ?? '')}`;
}

/** Server-side apply, taking ownership of every field given (force), as an installer does. */
export async function applyObject(kc: KubeConfig, obj: ApplyObject, fieldManager: string): Promise<void> {
  await rawRequest(kc, 'PATCH', `${objectPath(obj)}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`, {
    contentType: 'application/apply-patch+yaml',
    body: JSON.stringify(obj),
  });
}

const ignoreGone = (error: unknown) => {
  if (!(error instanceof ApiError && error.code === 404)) throw error;
};
const BACKGROUND = { contentType: 'application/json', body: JSON.stringify({ propagationPolicy: 'Background' }) };

/** Deletes an object; one already gone is fine. */
export async function deleteObject(kc: KubeConfig, obj: ApplyObject): Promise<void> {
  await rawRequest(kc, 'DELETE', objectPath(obj), BACKGROUND).catch(ignoreGone);
}

/** Deletes every object of a kind (`obj`'s apiVersion, kind and namespace) that the label selector matches; a kind not served is fine. */
export async function deleteObjects(kc: KubeConfig, obj: ApplyObject, labelSelector: string): Promise<void> {
  await rawRequest(kc, 'DELETE', `${collectionPath(obj)}?labelSelector=${encodeURIComponent(labelSelector)}`, BACKGROUND).catch(ignoreGone);
}
