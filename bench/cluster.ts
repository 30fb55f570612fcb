// What the cluster benchmarks share: the VMI they start (the test guest, small enough that a
// 2-core node runs 30), a scratch namespace removed to the end, containers' working sets and CPU
// time, the kube-apiserver audit log's events, watches that outlive kube-apiserver ending them,
// and how they report a distribution.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CoreV1Api, type CustomObjectsApi, type KubeConfig, Watch } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../src/lib/kube.ts';
import { KUBECONFIG } from '../test/e2e/kube.ts';
import { rawRequest } from '../src/lib/raw-request.ts';

/** The cluster the benchmarks run on: $KUBECONFIG's, else the local cluster's (npm start). */
export function benchKubeConfig(): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(KUBECONFIG);
  return kc;
}

/** A watched object, as far as following the watch needs it. */
interface Versioned {
  metadata?: { resourceVersion?: string };
}

/**
 * Watches `path` until stopped. kube-apiserver ends a watch now and then (its timeout, a closed
 * connection): the watch is taken up again from the last resourceVersion seen, so that no event
 * is missed (a deletion included), or from a fresh list when that version is too old (410).
 * Resolves once the first watch is established.
 */
export async function followWatch<T extends object>(
  kc: KubeConfig,
  path: string,
  onEvent: (type: string, object: T) => void,
): Promise<{ stop(): void }> {
  let stopped = false;
  let resourceVersion: string | undefined;
  let current: AbortController | undefined;
  const again = (delayMs: number) => {
    if (!stopped) setTimeout(() => void start().catch(() => again(1000)), delayMs);
  };
  const start = async () => {
    current = await new Watch(kc).watch(
      path,
      { allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
      (type, object: T & Versioned & { code?: number }) => {
        if (type === 'ERROR') {
          if (object.code === 410) resourceVersion = undefined;
          return;
        }
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        if (type !== 'BOOKMARK') onEvent(type, object);
      },
      () => again(100),
    );
  };
  await start();
  return {
    stop() {
      stopped = true;
      current?.abort();
    },
  };
}

export const TEST_GUEST_IMAGE = 'registry:5000/kubevirt-ts/test-guest-container-disk:devel';

/**
 * A VMI of the test guest with 128Mi and 25m of CPU: at upstream's default of 100m per vCPU a
 * 2-core node (less the CPU reserved for the node's own daemons and what kubevirt-ts's
 * components ask for) schedules only 11.
 */
export function testGuestVmi(
  name: string,
  namespace: string,
  extra: { labels?: Record<string, string>; nodeSelector?: Record<string, string>; tolerations?: object[] } = {},
) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      terminationGracePeriodSeconds: 0,
      ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
      ...(extra.tolerations ? { tolerations: extra.tolerations } : {}),
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

/**
 * Creates the VMIs `batch` requests at a time (ten by default), as a user's automation would, each
 * batch `everyMs` after the previous one began (or once it is done, if later); resolves with when
 * each request was sent (ms).
 */
export async function createVmis(
  custom: CustomObjectsApi,
  namespace: string,
  vmis: object[],
  { batch: size = 10, everyMs = 0 } = {},
): Promise<number[]> {
  const sent: number[] = [];
  for (let i = 0; i < vmis.length; i += size) {
    const due = (sent.at(-1) ?? 0) + everyMs;
    if (i && Date.now() < due) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const batch = vmis.slice(i, i + size);
    sent.push(...batch.map(() => Date.now()));
    await Promise.all(
      batch.map((body) =>
        custom.createNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', namespace, plural: 'virtualmachineinstances', body }),
      ),
    );
  }
  return sent;
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

/** One container's figures in the kubelet's summary API. */
export interface ContainerStats {
  pod: string;
  name: string;
  memory?: { workingSetBytes?: number; rssBytes?: number };
  /** CPU time used since the container started, as of `time`. */
  cpu?: { time: string; usageCoreNanoSeconds?: number };
}

interface Summary {
  pods: { podRef: { name: string; namespace: string }; containers?: Omit<ContainerStats, 'pod'>[] }[];
}

/**
 * The named containers' figures in the namespace, one per pod, from the summary API of each node
 * that runs a pod of the namespace: what `kubectl top` shows. The kubelet refreshes them every ~10 s.
 */
export async function containerStats(kc: PooledKubeConfig, namespace: string, containers: string[]): Promise<ContainerStats[]> {
  const pods = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items;
  const nodes = new Set(pods.flatMap((p) => p.spec?.nodeName ?? []));
  const out: ContainerStats[] = [];
  for (const node of nodes) {
    const summary = JSON.parse(await rawRequest(kc, 'GET', `/api/v1/nodes/${node}/proxy/stats/summary`)) as Summary;
    for (const pod of summary.pods) {
      if (pod.podRef.namespace !== namespace) continue;
      for (const c of pod.containers ?? []) if (containers.includes(c.name)) out.push({ ...c, pod: pod.podRef.name });
    }
  }
  return out;
}

/** The working sets (bytes) of the named containers in the namespace, each name with one figure per pod (containerStats). */
export async function workingSets(kc: PooledKubeConfig, namespace: string, containers: string[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const c of await containerStats(kc, namespace, containers)) {
    if (c.memory?.workingSetBytes === undefined) continue;
    out.set(c.name, [...(out.get(c.name) ?? []), c.memory.workingSetBytes]);
  }
  return out;
}

/** The local cluster's kube-apiserver audit log (hack/cluster/audit-policy.yaml says what it records). */
export const AUDIT_LOG = '/var/lib/kubevirt-ts-cluster/logs/audit.log';

/** An audit log event, as far as the benchmarks read it. */
export interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  responseStatus?: { code?: number };
}

/** A place in the audit log: the file (by inode, which survives its rotation) and the offset. */
export interface AuditMark {
  path: string;
  inode: number;
  offset: number;
}

export function auditMark(path = AUDIT_LOG): AuditMark {
  const { ino, size } = statSync(path);
  return { path, inode: ino, offset: size };
}

function readBytes(path: string, from: number, to: number): string {
  const buffer = Buffer.alloc(Math.max(0, to - from));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/**
 * The events logged between two marks. If kube-apiserver rotated the log in between, the rest of
 * the rotated file (found by its inode beside the log) comes first.
 */
export function auditEventsBetween(start: AuditMark, end: AuditMark): AuditEvent[] {
  let text: string;
  if (start.inode === end.inode) text = readBytes(end.path, start.offset, end.offset);
  else {
    const dir = dirname(start.path);
    const rotated = readdirSync(dir)
      .map((name) => join(dir, name))
      .find((file) => statSync(file).ino === start.inode);
    if (!rotated) throw new Error(`the audit log ${start.path} was rotated twice during the run: its events are lost`);
    text = readBytes(rotated, start.offset, statSync(rotated).size) + readBytes(end.path, 0, end.offset);
  }
  return text
    .split('\n')
    .filter((line) => line)
    .map((line) => JSON.parse(line) as AuditEvent);
}
