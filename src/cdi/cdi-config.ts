// The CDIConfig named `config`: kubevirt-ts creates it and keeps its status,
// which clients read (virtctl image-upload finds the upload proxy there). The
// proxy's address is the override the admin set, else the upload proxy
// Service's node port on a node's address, which reaches it from outside the
// cluster without anyone opening a port.
import type { V1Node, V1Service } from '@kubernetes/client-node';
import type { CDIConfig } from '../api/types.ts';
import { CDI_GROUP, CDI_VERSION, DEFAULT_FILESYSTEM_OVERHEAD } from '../contract/cdi.ts';

type Status = NonNullable<CDIConfig['status']>;

export function uploadProxyAddress(service: V1Service | undefined, nodes: readonly V1Node[]): string | undefined {
  const port = service?.spec?.ports?.[0]?.nodePort;
  if (!port) return undefined;
  const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  // Untainted nodes first: a node that keeps pods off (a simulated one among them) may not run kube-proxy.
  const tainted = (n: V1Node) => (n.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  const preferred = [...ready.filter((n) => !tainted(n)), ...ready.filter(tainted)];
  const address = preferred.flatMap((n) => n.status?.addresses ?? []).find((a) => a.type === 'InternalIP')?.address;
  return address ? `${address}:${port}` : undefined;
}

/** A share CDI accepts: 0, 1, or 0.x with at most three decimals. */
const VALID_OVERHEAD = /^(0(\.\d{1,3})?|1)$/;

/**
 * status.filesystemOverhead, as CDI's config controller computes it: the
 * spec's global share when valid (else CDI's default), and for every
 * StorageClass of the cluster the spec's share for it when valid, else the
 * global one.
 */
export function filesystemOverheadStatus(config: CDIConfig | undefined, storageClasses: readonly string[]): Status['filesystemOverhead'] {
  const spec = config?.spec?.filesystemOverhead;
  const global = spec?.global !== undefined && VALID_OVERHEAD.test(spec.global) ? spec.global : DEFAULT_FILESYSTEM_OVERHEAD;
  const storageClass: Record<string, string> = {};
  for (const name of [...storageClasses].sort()) {
    const own = spec?.storageClass?.[name];
    storageClass[name] = own !== undefined && VALID_OVERHEAD.test(own) ? own : global;
  }
  return { global, storageClass };
}

export function cdiConfigStatus(
  config: CDIConfig | undefined,
  proxyAddress: string | undefined,
  defaultStorageClass?: string,
  storageClasses: readonly string[] = [],
): Status {
  const spec = config?.spec ?? {};
  const uploadProxyURL = spec.uploadProxyURLOverride ?? proxyAddress;
  const scratch = spec.scratchSpaceStorageClass ?? defaultStorageClass;
  return {
    ...(uploadProxyURL ? { uploadProxyURL } : {}),
    ...(scratch ? { scratchSpaceStorageClass: scratch } : {}),
    filesystemOverhead: filesystemOverheadStatus(config, storageClasses),
    defaultPodResourceRequirements: spec.podResourceRequirements ?? {
      limits: { cpu: '750m', memory: '600M' },
      requests: { cpu: '100m', memory: '60M' },
    },
    preallocation: spec.preallocation ?? false,
  };
}

export const NEW_CDI_CONFIG: CDIConfig = {
  apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
  kind: 'CDIConfig',
  metadata: { name: 'config' },
  spec: {},
};
