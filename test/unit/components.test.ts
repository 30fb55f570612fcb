// The install objects agree with what virt-api serves and with each other.
import { FILL_POD_CA_SECRET } from '../../src/contract/cdi.ts';
import { UPLOAD_TOKEN_SECRET } from '../../src/contract/upload-token.ts';
import { cdiObjects } from '../../src/operator/cdi-components.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  componentObjects,
  leafCertificates,
  MUTATING_HOOKS,
  NODE_RESTRICTION_POLICY,
  VALIDATING_HOOKS,
  withPlacement,
} from '../../src/operator/components.ts';
import { componentImages, desiredInstall, operatorManifest, workloadWaiting, kubevirtStatus } from '../../src/operator/install.ts';
import { WEBHOOK_PATHS } from '../../src/virt-api/admission.ts';

type PodSpec = {
  serviceAccountName: string;
  containers: { securityContext: { capabilities: { drop: string[] } }; volumeMounts?: { name: string }[] }[];
  volumes?: { name: string; secret?: { secretName: string } }[];
};
type O = {
  kind: string;
  metadata: { name: string; namespace?: string };
  subjects?: { name: string }[];
  roleRef?: { name: string };
  spec?: { template: { spec: PodSpec } };
};
const params = {
  namespace: 'kubevirt',
  image: 'registry:5000/kubevirt-ts/virt-ts:devel',
  launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: 'Always',
  caBundle: 'CA',
  cdi: true,
};
const objects = [...componentObjects(params), ...cdiObjects(params)] as O[];

test('every webhook path virt-api serves is registered, and only those', () => {
  const registered = [...MUTATING_HOOKS, ...VALIDATING_HOOKS].map((h) => h.path).sort();
  assert.deepEqual(registered, [...WEBHOOK_PATHS].sort());
});

test("kube-apiserver skips the VMI webhooks for kubevirt-ts's own status writes; virt-handler's node is checked by a bound policy", () => {
  const hooks = objects
    .filter((o) => o.kind.endsWith('WebhookConfiguration'))
    .flatMap((o) => (o as unknown as { webhooks: { name: string; matchConditions?: { expression: string }[] }[] }).webhooks);
  const condition = (name: string) => hooks.find((h) => h.name === name)?.matchConditions?.[0]?.expression ?? '';
  for (const hook of ['virtualmachineinstances-mutator.kubevirt.io', 'virtualmachineinstances-update-validator.kubevirt.io']) {
    assert.match(
      condition(hook),
      /^!\(request.operation == 'UPDATE' && request.userInfo.username in \[.*'system:serviceaccount:kubevirt:kubevirt-handler'.*\]\)$/,
    );
  }
  assert.equal(condition('virtualmachineinstances-create-validator.kubevirt.io'), '', 'creations are always checked');
  type Policy = {
    kind: string;
    metadata: { name: string };
    spec: {
      policyName?: string;
      validationActions?: string[];
      matchConditions?: { expression: string }[];
      validations?: { expression: string }[];
    };
  };
  const policy = (objects as unknown as Policy[]).find(
    (o) => o.kind === 'ValidatingAdmissionPolicy' && o.metadata.name === NODE_RESTRICTION_POLICY,
  )!;
  assert.equal(
    policy.spec.matchConditions?.[0].expression,
    "request.userInfo.username == 'system:serviceaccount:kubevirt:kubevirt-handler'",
  );
  assert.match(
    policy.spec.validations?.[0].expression ?? '',
    /^variables\.node != '' && \(.*oldObject\.status\.nodeName == variables\.node.*oldObject\.status\.migrationState\.targetNode == variables\.node.*\) && \(.*object\.status\.nodeName == variables\.node.*object\.status\.migrationState\.targetNode == variables\.node.*\)$/,
  );
  const binding = (objects as unknown as Policy[]).find((o) => o.kind === 'ValidatingAdmissionPolicyBinding')!;
  assert.deepEqual([binding.spec.policyName, binding.spec.validationActions], [NODE_RESTRICTION_POLICY, ['Deny']]);
});

test('each component runs as its own service account, bound to its own role, without capabilities', () => {
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
  assert.deepEqual(
    workloads.map((w) => w.metadata.name),
    ['virt-api', 'virt-controller', 'virt-handler', 'virt-console', 'cdi-controller'],
  );
  const accounts = new Set<string>();
  for (const workload of workloads) {
    const sa = workload.spec!.template.spec.serviceAccountName;
    accounts.add(sa);
    assert.ok(
      objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa),
      sa,
    );
    const binding = objects.find((o) => o.kind.endsWith('RoleBinding') && o.subjects?.[0].name === sa);
    // The web console acts only with its users' tokens: no role, and no token of its own in its pod.
    if (workload.metadata.name === 'virt-console') {
      assert.equal(binding, undefined);
      assert.equal((workload.spec!.template.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken, false);
    } else assert.equal(binding?.roleRef?.name, sa);
    // Only the node agent is privileged: it wires networks and mounts inside launcher pods.
    for (const c of workload.spec!.template.spec.containers) {
      if (workload.metadata.name === 'virt-handler') assert.equal((c.securityContext as { privileged?: boolean }).privileged, true);
      else assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    }
  }
  assert.equal(accounts.size, 5);
});

test('every Secret a component mounts is one the operator issues: certificates, the upload token key, the fill-pod CA', () => {
  const issued = new Set([...leafCertificates('kubevirt').map((l) => l.secret), UPLOAD_TOKEN_SECRET, FILL_POD_CA_SECRET]);
  for (const workload of objects.filter((o) => o.spec?.template)) {
    for (const volume of workload.spec!.template.spec.volumes ?? [])
      if (volume.secret) assert.ok(issued.has(volume.secret.secretName), volume.secret.secretName);
  }
});

test('the operator installs the CRDs except its own, the roles, components and registrations', () => {
  const kinds = desiredInstall(params).map((o) => `${o.kind}/${o.metadata?.name}`);
  assert.ok(!kinds.includes('CustomResourceDefinition/kubevirts.kubevirt.io'));
  assert.ok(kinds.includes('CustomResourceDefinition/virtualmachines.kubevirt.io'));
  assert.ok(kinds.includes('APIService/v1.subresources.kubevirt.io'));
  assert.ok(kinds.includes('ClusterRole/kubevirt.io:view'));
  const manifest = operatorManifest({
    namespace: 'kubevirt',
    image: 'r/kubevirt-ts/virt-ts:devel',
    launcherImage: 'r/kubevirt-ts/virt-launcher:devel',
    imagePullPolicy: 'Always',
  });
  assert.deepEqual(
    manifest.map((o) => o.kind),
    ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Deployment'],
  );
});

test('a KubeVirt CR may point the components at another registry or tag', () => {
  const defaults = {
    image: 'registry:5000/kubevirt-ts/virt-ts@sha256:abc',
    launcherImage: 'registry:5000/kubevirt-ts/virt-launcher@sha256:def',
    imagePullPolicy: 'IfNotPresent',
  };
  const kv = (spec: object) => ({ metadata: { name: 'kubevirt' }, spec }) as never;
  assert.deepEqual(componentImages(kv({}), defaults), defaults);
  assert.equal(componentImages(kv({ imageTag: 'v1' }), defaults).image, 'registry:5000/kubevirt-ts/virt-ts:v1');
  assert.equal(
    componentImages(kv({ imageRegistry: 'quay.example' }), defaults).launcherImage,
    'quay.example/kubevirt-ts/virt-launcher@sha256:def',
  );
  assert.equal(componentImages(kv({ imagePullPolicy: 'Always' }), defaults).imagePullPolicy, 'Always');
});

test('Deployed and Available only when every component is ready', () => {
  assert.equal(
    workloadWaiting(
      {
        metadata: { generation: 2 },
        spec: { replicas: 2 },
        status: { observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, replicas: 2 },
      },
      'Deployment',
      'virt-api',
    ),
    undefined,
  );
  assert.match(
    workloadWaiting(
      {
        metadata: { generation: 2 },
        spec: { replicas: 2 },
        status: { observedGeneration: 2, readyReplicas: 1, updatedReplicas: 2, replicas: 2 },
      },
      'Deployment',
      'virt-api',
    ) ?? '',
    /1\/2/,
  );
  assert.match(workloadWaiting(undefined, 'DaemonSet', 'virt-handler') ?? '', /missing/);
  const kv = { metadata: { name: 'kubevirt', generation: 1 }, spec: {} } as never;
  const images = { image: 'registry:5000/kubevirt-ts/virt-ts:devel', launcherImage: 'x', imagePullPolicy: 'Always' };
  const deploying = kubevirtStatus(kv, { waiting: ['DaemonSet virt-handler 0/1 ready'] }, images, '2026-11-22T10:00:00Z');
  assert.equal(deploying.phase, 'Deploying');
  assert.equal(deploying.conditions?.find((c) => c.type === 'Available')?.status, 'False');
  const deployed = kubevirtStatus(kv, { waiting: [] }, images, '2026-11-22T10:00:00Z');
  assert.equal(deployed.phase, 'Deployed');
  assert.deepEqual(
    deployed.conditions?.map((c) => `${c.type}=${c.status}`),
    ['Available=True', 'Progressing=False', 'Degraded=False', 'Created=True'],
  );
});

test("every component's container has a memory request and limit, and node's heap is sized within the limit", () => {
  const operator = operatorManifest({ namespace: 'kubevirt', image: 'i', launcherImage: 'l', imagePullPolicy: 'Always' }) as O[];
  const workloads = [...objects, ...operator].filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
  assert.deepEqual(workloads.map((o) => o.metadata.name).sort(), [
    'cdi-controller',
    'virt-api',
    'virt-console',
    'virt-controller',
    'virt-handler',
    'virt-operator',
  ]);
  const mebibytes = (q: string) => Number(q.replace(/Mi$/, ''));
  for (const w of workloads) {
    const [c] = w.spec!.template.spec.containers as unknown as {
      command: string[];
      resources: { requests: { memory: string }; limits: { memory: string } };
    }[];
    const limit = mebibytes(c.resources.limits.memory);
    const oldSpace = Number(c.command.find((a) => a.startsWith('--max-old-space-size='))?.split('=')[1]);
    // node, through the link named as upstream's binary: ps and pkill see the component by that name.
    assert.equal(c.command[0], w.metadata.name, w.metadata.name);
    assert.ok(mebibytes(c.resources.requests.memory) >= 64 && limit >= 160, w.metadata.name);
    // virt-operator's live heap is mostly its own code (see operatorNodeCommand): it gets half the others' old space.
    const least = w.metadata.name === 'virt-operator' ? 48 : 96;
    assert.ok(oldSpace >= least && oldSpace <= limit / 2, `${w.metadata.name}: old space ${oldSpace} MiB within a ${limit} MiB limit`);
    assert.ok(c.command.includes('--max-semi-space-size=2'), w.metadata.name);
    // Lite mode for virt-operator alone: the others are on the path of every VMI start. Every
    // component favours memory over speed in V8 and has one malloc arena.
    const operator = w.metadata.name === 'virt-operator';
    const env = (c as unknown as { env?: { name: string; value?: string }[] }).env ?? [];
    assert.equal(c.command.includes('--lite-mode'), operator, w.metadata.name);
    assert.ok(c.command.includes('--optimize-for-size'), w.metadata.name);
    assert.equal(env.find((e) => e.name === 'MALLOC_ARENA_MAX')?.value, '1', w.metadata.name);
  }
});

test('cdi-controller mounts the fill-pod CA and has no rights on Secrets: fill pods get their certificates in their environment', () => {
  const roles = (objects as unknown as { kind: string; metadata: { name: string }; rules?: { resources: string[] }[] }[]).filter(
    (o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && o.metadata.name === 'kubevirt-cdi-controller',
  );
  assert.equal(roles.length, 2);
  for (const role of roles) assert.ok(!role.rules?.some((r) => r.resources.includes('secrets')), role.kind);
  const cdi = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cdi-controller')!;
  const spec = cdi.spec!.template.spec;
  assert.ok(spec.volumes?.some((v) => v.secret?.secretName === FILL_POD_CA_SECRET));
  const mounts = (spec.containers[0] as unknown as { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] })
    .volumeMounts;
  assert.deepEqual(
    mounts.find((m) => m.name === FILL_POD_CA_SECRET),
    { name: FILL_POD_CA_SECRET, mountPath: '/etc/cdi-fill-pod-ca', readOnly: true },
  );
});

test("the KubeVirt CR's placement: workloads go to virt-handler, infra to virt-api and virt-controller, the pod's own settings first", () => {
  const affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['node01'] }] }],
      },
    },
  };
  const toleration = { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' };
  const placed = componentObjects({
    ...params,
    placement: { workloads: { affinity, nodeSelector: { zone: 'a' } }, infra: { tolerations: [toleration] } },
  }) as (O & { spec?: { template: { spec: Record<string, unknown> } } })[];
  const podOf = (name: string) =>
    placed.find((o) => (o.kind === 'Deployment' || o.kind === 'DaemonSet') && o.metadata.name === name)!.spec!.template.spec;
  assert.deepEqual(podOf('virt-handler').affinity, affinity);
  assert.deepEqual(podOf('virt-handler').nodeSelector, { zone: 'a' });
  assert.equal(podOf('virt-handler').tolerations, undefined);
  for (const name of ['virt-api', 'virt-controller']) {
    assert.deepEqual(podOf(name).tolerations, [toleration], name);
    assert.equal(podOf(name).affinity, undefined, name);
  }
  // The pod's own node selector keys and affinity kinds win; tolerations add up.
  const own = { nodeSelector: { zone: 'own' }, affinity: { podAntiAffinity: { x: 1 } }, tolerations: [{ key: 'own' }] };
  assert.deepEqual(withPlacement(own, { nodeSelector: { zone: 'a', disk: 'ssd' }, affinity, tolerations: [toleration] }), {
    nodeSelector: { zone: 'own', disk: 'ssd' },
    affinity: { ...affinity, podAntiAffinity: { x: 1 } },
    tolerations: [{ key: 'own' }, toleration],
  });
  assert.equal(withPlacement(own, undefined), own);
});
