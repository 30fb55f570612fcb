// Server-side apply and delete of arbitrary install objects, sent as the JSON
// they are. (The client library's generic object API re-serialises objects
// through its typed models, which drops schema keys such as
// x-kubernetes-int-or-string from CRDs.)
import { request, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { statusMessage } from './kube.ts';

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
  APIService: { group: 'apiregistration.k8s.io', plural: 'apiservices', namespaced: false },
};

export interface ApplyObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export function objectPath(obj: ApplyObject): string {
  const resource = RESOURCES[obj.kind ?? ''];
  if (!resource) throw new Error(`no API path known for kind ${obj.kind}`);
  const base = resource.group ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${obj.metadata?.namespace}` : '';
  return `${base}${ns}/${resource.plural}/${encodeURIComponent(obj.metadata?.name ?? '')}`;
}

export class ApiError extends Error {
  readonly code: number;
  readonly body: string;
  constructor(code: number, body: string, what: string) {
    super(`${what}: ${code} ${statusMessage(body) ?? body}`);
    this.code = code;
    this.body = body;
  }
}

async function send(kc: KubeConfig, method: string, path: string, contentType: string | undefined, body: string | undefined): Promise<string> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const options: RequestOptions & { headers: Record<string, string> } = {
    method, hostname: server.hostname, port: server.port || 443, path, headers: { Accept: 'application/json', ...(contentType ? { 'Content-Type': contentType } : {}) },
  };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) reject(new ApiError(res.statusCode ?? 500, text, `${method} ${path}`));
        else resolve(text);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Server-side apply, taking ownership of every field given (force), as an installer does. */
export async function applyObject(kc: KubeConfig, obj: ApplyObject, fieldManager: string): Promise<void> {
  await send(kc, 'PATCH', `${objectPath(obj)}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`, 'application/apply-patch+yaml', JSON.stringify(obj));
}

/** Deletes an object; one already gone is fine. */
export async function deleteObject(kc: KubeConfig, obj: ApplyObject): Promise<void> {
  await send(kc, 'DELETE', objectPath(obj), 'application/json', JSON.stringify({ propagationPolicy: 'Background' })).catch((error) => {
    if (!(error instanceof ApiError && error.code === 404)) throw error;
  });
}
