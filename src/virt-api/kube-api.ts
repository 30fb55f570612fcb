// virt-api's API calls over client-node: what the server declares it needs,
// and nothing more.
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Pod,
} from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration } from '../api/types.ts';
import { CREATED_BY_LABEL } from '../api/constants.ts';
import type { JsonPatchOperation } from '../lib/kube.ts';
import type { AccessQuestion } from './clone-authorization.ts';
import { handlerAddress } from './handler-client.ts';
import type { VirtApiServerApi } from './server.ts';

const KUBEVIRT = { group: 'kubevirt.io', version: 'v1' };
const jsonPatchHeaders = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const jsonPatch = (patch: JsonPatchOperation[]) => patch as unknown as object;

export class VirtApiKubeApi implements VirtApiServerApi {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #authorization: AuthorizationV1Api;
  /** The namespace virt-handler runs in. */
  readonly #namespace: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#authorization = kc.makeApiClient(AuthorizationV1Api);
    this.#namespace = namespace;
  }

  async canI(q: AccessQuestion): Promise<boolean> {
    const review = await this.#authorization.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: q.user,
          groups: q.groups,
          extra: q.extra,
          resourceAttributes: { namespace: q.namespace, group: q.group, resource: q.resource, subresource: q.subresource, verb: q.verb },
        },
      },
    });
    return review.status?.allowed === true;
  }

  async getVm(namespace: string, name: string): Promise<VirtualMachine> {
    return (await this.#custom.getNamespacedCustomObject({ ...KUBEVIRT, namespace, plural: 'virtualmachines', name })) as VirtualMachine;
  }

  async getVmi(namespace: string, name: string): Promise<VirtualMachineInstance> {
    const request = { ...KUBEVIRT, namespace, plural: 'virtualmachineinstances', name };
    return (await this.#custom.getNamespacedCustomObject(request)) as VirtualMachineInstance;
  }

  async patchVm(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    const request = { ...KUBEVIRT, namespace, name, dryRun, plural: 'virtualmachines', body: jsonPatch(patch) };
    await this.#custom.patchNamespacedCustomObject(request, jsonPatchHeaders);
  }

  async patchVmStatus(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    const request = { ...KUBEVIRT, namespace, name, dryRun, plural: 'virtualmachines', body: jsonPatch(patch) };
    await this.#custom.patchNamespacedCustomObjectStatus(request, jsonPatchHeaders);
  }

  async patchVmi(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    const request = { ...KUBEVIRT, namespace, name, dryRun, plural: 'virtualmachineinstances', body: jsonPatch(patch) };
    await this.#custom.patchNamespacedCustomObject(request, jsonPatchHeaders);
  }

  async deleteLauncherPods(namespace: string, vmiUid: string, gracePeriodSeconds: number, dryRun?: 'All'): Promise<string[]> {
    const pods = await this.#core.listNamespacedPod({ namespace, labelSelector: `${CREATED_BY_LABEL}=${vmiUid}` });
    const names: string[] = [];
    for (const pod of pods.items) {
      const name = pod.metadata?.name;
      // Only the VMI's own: the label is a hint, the ownerReference decides.
      if (!name || !pod.metadata?.ownerReferences?.some((o) => o.controller && o.uid === vmiUid)) continue;
      await this.#core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds, dryRun }).catch((error: { code?: number }) => {
        if (error.code !== 404) throw error;
      });
      names.push(name);
    }
    return names;
  }

  async createMigration(namespace: string, migration: VirtualMachineInstanceMigration, dryRun?: 'All'): Promise<void> {
    const request = { ...KUBEVIRT, namespace, plural: 'virtualmachineinstancemigrations', dryRun, body: migration };
    await this.#custom.createNamespacedCustomObject(request);
  }

  getPod(namespace: string, name: string): Promise<V1Pod> {
    return this.#core.readNamespacedPod({ name, namespace });
  }

  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    return this.#core.readNamespacedConfigMap({ name, namespace });
  }

  handlerAddress(node: string): Promise<string> {
    return handlerAddress(this.#core, this.#namespace, node);
  }
}
