// The live cluster configuration: every component watches the KubeVirt CR
// and reads its spec.configuration through here, so a change applies without
// a restart.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ClusterConfig } from '../api/cluster-config.ts';
import type { KubeVirt } from '../api/types.ts';
import { customInformer, type CachedInformer } from './kube.ts';

export function clusterConfigInformer(
  kc: KubeConfig,
  namespace: string,
): {
  informer: CachedInformer<KubeVirt & KubernetesObject>;
  current: () => ClusterConfig;
  /** The resourceVersion of the KubeVirt CR the current configuration was read from ("" before one is seen). */
  resourceVersion: () => string;
} {
  const informer = customInformer<KubeVirt & KubernetesObject>(kc, 'kubevirt.io', 'v1', 'kubevirts');
  let config = new ClusterConfig();
  let resourceVersion = '';
  const refresh = () => {
    const kv = informer.list(namespace)[0] ?? informer.list()[0];
    config = new ClusterConfig(kv?.spec?.configuration);
    resourceVersion = kv?.metadata?.resourceVersion ?? '';
  };
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, refresh);
  return { informer, current: () => config, resourceVersion: () => resourceVersion };
}
