// Kubernetes client set-up and informers (list+watch caches) for custom resources.
import { CustomObjectsApi, KubeConfig, makeInformer, type Informer, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';

export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

export type CachedInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** A cluster-wide informer for one custom resource (namespaced ones are listed across all namespaces). */
export function customInformer<T extends KubernetesObject>(kc: KubeConfig, group: string, version: string, plural: string): CachedInformer<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return makeInformer<T>(kc, `/apis/${group}/${version}/${plural}`, () =>
    api.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<T>>,
  );
}
