// virt-operator's API calls over client-node and raw server-side apply: what
// the KubeVirt controller declares it needs, and nothing more.
import {
  ApiextensionsV1Api,
  ApiregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1APIService,
  type V1CustomResourceDefinition,
  type V1ConfigMap,
  type V1Secret,
  type V1Service,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { KubeVirt } from '../api/types.ts';
import { applyObject, deleteObject, deleteObjects } from '../lib/apply.ts';
import type { JsonPatchOperation, Typed } from '../lib/kube.ts';
import type { CatalogueKind } from './common-instancetypes.ts';
import type { InstallObject, KubeVirtControllerApi } from './kubevirt-controller.ts';

const KUBEVIRTS = { group: 'kubevirt.io', version: 'v1', plural: 'kubevirts' };

export class OperatorKubeApi implements KubeVirtControllerApi {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #apiregistration: ApiregistrationV1Api;
  readonly #apiextensions: ApiextensionsV1Api;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#apiregistration = kc.makeApiClient(ApiregistrationV1Api);
    this.#apiextensions = kc.makeApiClient(ApiextensionsV1Api);
  }

  apply(object: InstallObject): Promise<void> {
    return applyObject(this.#kc, object, 'virt-operator');
  }

  delete(object: InstallObject): Promise<void> {
    return deleteObject(this.#kc, object);
  }

  deleteAll(kind: CatalogueKind, labelSelector: string): Promise<void> {
    return deleteObjects(this.#kc, { apiVersion: 'instancetype.kubevirt.io/v1beta1', kind }, labelSelector);
  }

  readSecret(namespace: string, name: string): Promise<V1Secret> {
    return this.#core.readNamespacedSecret({ name, namespace });
  }

  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    return this.#core.readNamespacedConfigMap({ name, namespace });
  }

  readApiService(name: string): Promise<V1APIService> {
    return this.#apiregistration.readAPIService({ name });
  }

  readCrd(name: string): Promise<V1CustomResourceDefinition> {
    return this.#apiextensions.readCustomResourceDefinition({ name });
  }

  readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount> {
    return this.#core.readNamespacedServiceAccount({ name, namespace });
  }

  readService(namespace: string, name: string): Promise<V1Service> {
    return this.#core.readNamespacedService({ name, namespace });
  }

  async vmisExist(): Promise<boolean> {
    const request = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', limit: 1 };
    const vmis = (await this.#custom.listClusterCustomObject(request)) as { items: unknown[] };
    return vmis.items.length > 0;
  }

  async patchKubeVirt(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<KubeVirt>> {
    // client-node sends a patch body that is an array as a JSON patch.
    const request = { ...KUBEVIRTS, namespace, name, body: patch as unknown as object };
    return (await this.#custom.patchNamespacedCustomObject(request)) as Typed<KubeVirt>;
  }

  async replaceKubeVirtStatus(namespace: string, name: string, kv: KubeVirt): Promise<void> {
    await this.#custom.replaceNamespacedCustomObjectStatus({ ...KUBEVIRTS, namespace, name, body: kv });
  }
}
