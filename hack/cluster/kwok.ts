// Simulated nodes on the local cluster, on demand (bench/scale.ts adds and removes them): KWOK
// (built from its Go module, image from images/build.ts) as a Deployment in kube-system, with its
// default fast stages, looks after the nodes annotated kwok.x-k8s.io/node=fake: they are Ready
// and keep their leases, and a pod bound to one is Running and Ready at once, and gone once
// deleted. A taint keeps every pod off them that does not tolerate it (virt-handler's DaemonSet
// among them); a VMI that does, and selects them, gets its launcher pod there. No virt-handler
// heartbeats on them, so virt-controller's node controller leaves them alone, as upstream's does.
//   node hack/cluster/kwok.ts add N [--registry registry:5000]   (N fake nodes kwok-node-0..N-1, and KWOK)
//   node hack/cluster/kwok.ts remove                              (every fake node, and KWOK)
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_SCHEDULABLE_LABEL } from '../../src/api/constants.ts';

const NAMESPACE = 'kube-system';
const NAME = 'kwok-controller';
const NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** Selects the fake nodes (upstream's KWOK job labels its nodes so too). */
export const FAKE_NODE_SELECTOR = { type: 'kwok' };
/** Lets a pod onto the fake nodes. */
export const FAKE_NODE_TOLERATION = { key: NODE_ANNOTATION, operator: 'Exists', effect: 'NoSchedule' };
const fakeNodeName = (i: number) => `kwok-node-${i}`;

/**
 * A fake node with room for 110 launcher pods (the kubelet's default pod limit) of any size a
 * benchmark asks for, and the extended resources a virt-handler would advertise.
 */
function fakeNode(name: string) {
  const resources = {
    cpu: '32',
    memory: '256Gi',
    'ephemeral-storage': '100Gi',
    pods: '110',
    ...Object.fromEntries(['kvm', 'tun', 'vhost-net'].map((device) => [`devices.kubevirt.io/${device}`, '1k'])),
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        ...FAKE_NODE_SELECTOR,
        'kubernetes.io/hostname': name,
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        [NODE_SCHEDULABLE_LABEL]: 'true',
      },
    },
    spec: { taints: [{ key: NODE_ANNOTATION, value: 'fake', effect: 'NoSchedule' }] },
    status: { allocatable: resources, capacity: resources },
  };
}

/** KWOK and what it may do: read nodes and pods, write their status, keep node leases, remove deleted pods. */
function controller(image: string) {
  const serviceAccount = { kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: NAME },
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete'] },
        { apiGroups: [''], resources: ['nodes/status', 'pods/status'], verbs: ['patch', 'update'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: NAME },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
      subjects: [serviceAccount],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: NAME, namespace: NAMESPACE },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: NAME } },
        template: {
          metadata: { labels: { app: NAME } },
          spec: {
            serviceAccountName: NAME,
            containers: [
              {
                name: 'kwok',
                image,
                imagePullPolicy: 'IfNotPresent',
                args: [
                  `--manage-nodes-with-annotation-selector=${NODE_ANNOTATION}=fake`,
                  // As the kubelet's default, and kwokctl's.
                  '--node-lease-duration-seconds=40',
                  '--node-ip=$(POD_IP)',
                ],
                env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
                resources: { requests: { cpu: '10m', memory: '32Mi' } },
                securityContext: {
                  runAsNonRoot: true,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    },
  ];
}

const kubectl = (args: string[], input?: string) =>
  execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'] });
const list = (items: object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

/** Builds and pushes KWOK's image, runs it, and makes sure the fake nodes kwok-node-0..count-1 exist and are Ready. */
export function addFakeNodes(count: number, registry = 'registry:5000'): string[] {
  execFileSync('node', [join(import.meta.dirname, '..', '..', 'images', 'build.ts'), 'kwok', '--registry', registry], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Pinned to the digest images/build.ts pushed, so a rebuilt image replaces the running one.
  const repository = `${registry}/kubevirt-ts/kwok`;
  const inspected = execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${repository}:devel`], { encoding: 'utf8' });
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], list(controller(`${repository}@${JSON.parse(inspected).Digest}`)));
  kubectl(['rollout', 'status', `deployment/${NAME}`, '-n', NAMESPACE, '--timeout=120s']);
  const names = Array.from({ length: count }, (_, i) => fakeNodeName(i));
  const existing = new Set(kubectl(['get', 'nodes', '-o', 'name']).split('\n'));
  const missing = names.filter((name) => !existing.has(`node/${name}`));
  // Created, not applied: a node's status (its allocatable resources) is taken only on creation.
  if (missing.length) kubectl(['create', '-f', '-'], list(missing.map(fakeNode)));
  kubectl(['wait', '--for=condition=Ready', '--timeout=120s', ...names.map((name) => `node/${name}`)]);
  return names;
}

/** Removes every fake node and KWOK; the pods bound to the nodes are left to kube-controller-manager's pod GC. */
export function removeFakeNodes(): void {
  const nodes = kubectl(['get', 'nodes', '-o', 'json']);
  const fake = (JSON.parse(nodes) as { items: { metadata: { name: string; annotations?: Record<string, string> } }[] }).items
    .filter((n) => n.metadata.annotations?.[NODE_ANNOTATION] === 'fake')
    .map((n) => `node/${n.metadata.name}`);
  if (fake.length) kubectl(['delete', '--wait=true', ...fake]);
  kubectl(['delete', '--ignore-not-found', '--wait=true', '-f', '-'], list(controller('unused')));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { registry: { type: 'string', default: 'registry:5000' } },
  });
  const [command, count] = positionals;
  if (command === 'add') {
    if (!/^[1-9]\d*$/.test(count ?? '')) throw new Error(`kwok: add N: N (how many fake nodes) must be a positive integer, got ${count}`);
    console.log(addFakeNodes(Number(count), values.registry).join('\n'));
  } else if (command === 'remove') {
    removeFakeNodes();
  } else {
    throw new Error(`kwok: unknown command ${command}; usage: kwok.ts add N [--registry R] | kwok.ts remove`);
  }
}
