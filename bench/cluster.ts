// What the cluster benchmarks share: the VMI they start (the test guest, small enough that a
// 2-core node runs 30), a scratch namespace removed to the end, containers' working sets, and how
// they report a distribution.
import { CoreV1Api, type CustomObjectsApi } from '@kubernetes/client-node';
import type { PooledKubeConfig } from '../src/lib/kube.ts';
import { rawRequest } from '../src/lib/raw-request.ts';

export const TEST_GUEST_IMAGE = 'registry:5000/kubevirt-ts/test-guest-container-disk:devel';

/**
 * A VMI of the test guest with 128Mi and 25m of CPU: at upstream's default of 100m per vCPU a
 * 2-core node (less the CPU reserved for the node's own daemons and what kubevirt-ts's
 * components ask for) schedules only 11.
 */
export function testGuestVmi(
  name: string,
  namespace: string,
  extra: { labels?: Record<string, string>; nodeSelector?: Record<string, string> } = {},
) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      terminationGracePeriodSeconds: 0,
      ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
      domain: {
        devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {} }] },
        memory: { guest: '128Mi' },
        resources: { requests: { cpu: '25m' } },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'containerdisk', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

/** Creates the VMIs ten requests at a time, as a user's automation would. */
export async function createVmis(custom: CustomObjectsApi, namespace: string, vmis: object[]): Promise<void> {
  for (let i = 0; i < vmis.length; i += 10)
    await Promise.all(
      vmis
        .slice(i, i + 10)
        .map((body) =>
          custom.createNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', namespace, plural: 'virtualmachineinstances', body }),
        ),
    );
}

/** The p-th percentile (nearest rank) of xs. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Deletes the namespace and waits until it is gone (its VMIs and pods with it). */
export async function deleteNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.deleteNamespace({ name }).catch(() => undefined);
  for (let i = 0; i < 300; i++) {
    const gone = await core.readNamespace({ name }).then(
      () => false,
      (error: { code?: number }) => error.code === 404,
    );
    if (gone) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`namespace ${name} still there after 5 minutes`);
}

interface Summary {
  pods: { podRef: { name: string; namespace: string }; containers?: { name: string; memory?: { workingSetBytes?: number } }[] }[];
}

/**
 * The working sets (bytes) of the named containers in the namespace, each name with one figure
 * per pod, from every node's summary API: what `kubectl top` shows. The kubelet refreshes them
 * every ~10 s.
 */
export async function workingSets(kc: PooledKubeConfig, namespace: string, containers: string[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const node of (await kc.makeApiClient(CoreV1Api).listNode()).items) {
    const path = `/api/v1/nodes/${node.metadata!.name}/proxy/stats/summary`;
    const summary = JSON.parse(await rawRequest(kc, 'GET', path)) as Summary;
    for (const pod of summary.pods) {
      if (pod.podRef.namespace !== namespace) continue;
      for (const c of pod.containers ?? []) {
        if (!containers.includes(c.name) || c.memory?.workingSetBytes === undefined) continue;
        out.set(c.name, [...(out.get(c.name) ?? []), c.memory.workingSetBytes]);
      }
    }
  }
  return out;
}
