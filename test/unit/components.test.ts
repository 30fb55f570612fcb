// The install objects agree with what virt-api serves and with each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MUTATING_HOOKS, VALIDATING_HOOKS, virtApiObjects } from '../../src/operator/components.ts';
import { WEBHOOK_PATHS } from '../../src/virt-api/admission.ts';

const objects = virtApiObjects({ namespace: 'kubevirt', image: 'registry:5000/kubevirt-ts/virt-ts:devel', imagePullPolicy: 'Always', caBundle: 'CA', servingCert: { cert: 'C', key: 'K' } }) as {
  kind: string; metadata: { name: string }; subjects?: { name: string }[]; roleRef?: { name: string }; spec?: { template: { spec: { serviceAccountName: string; automountServiceAccountToken?: boolean; containers: { securityContext: { capabilities: { drop: string[] } } }[] } } };
}[];

test('every webhook path virt-api serves is registered, and only those', () => {
  const registered = [...MUTATING_HOOKS, ...VALIDATING_HOOKS].map((h) => h.path).sort();
  assert.deepEqual(registered, [...WEBHOOK_PATHS].sort());
});

test('each component runs as its own service account, bound to its own role, without capabilities', () => {
  for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
    const sa = deployment.spec!.template.spec.serviceAccountName;
    assert.ok(objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa), sa);
    const binding = objects.find((o) => o.kind === 'ClusterRoleBinding' && o.subjects?.[0].name === sa);
    assert.equal(binding?.roleRef?.name, sa);
    for (const c of deployment.spec!.template.spec.containers) assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  }
});
