// A VMI's CPU in its launcher pod's scheduling, as upstream's: a named model and each required
// feature in the node selector (the node labeller's labels), a forbidden feature's label
// required absent in every affinity term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { example } from '../helpers/fixtures.ts';

const params = {
  launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: 'IfNotPresent',
  config: new ClusterConfig({}),
};
const withCpu = (cpu: VirtualMachineInstance['spec']['domain']['cpu'], affinity?: VirtualMachineInstance['spec']['affinity']) => {
  const vmi = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  vmi.metadata = { ...vmi.metadata, uid: 'vmi-uid', namespace: 'ns' };
  vmi.spec.domain.cpu = cpu;
  if (affinity) vmi.spec.affinity = affinity;
  return renderLauncherPod(vmi, params).spec!;
};

test("a named CPU model and the features it requires go into the launcher pod's node selector; the host's modes add nothing", () => {
  const spec = withCpu({
    model: 'Nehalem',
    features: [{ name: 'aes' }, { name: 'avx', policy: 'require' }, { name: 'svm', policy: 'optional' }, { name: 'vmx', policy: 'forbid' }],
  });
  assert.equal(spec.nodeSelector?.['cpu-model.node.kubevirt.io/Nehalem'], 'true');
  assert.equal(spec.nodeSelector?.['cpu-feature.node.kubevirt.io/aes'], 'true');
  assert.equal(spec.nodeSelector?.['cpu-feature.node.kubevirt.io/avx'], 'true');
  assert.equal(spec.nodeSelector?.['cpu-feature.node.kubevirt.io/svm'], undefined);
  assert.equal(spec.nodeSelector?.['cpu-feature.node.kubevirt.io/vmx'], undefined);
  for (const model of ['host-model', 'host-passthrough']) {
    assert.deepEqual(
      Object.keys(withCpu({ model }).nodeSelector ?? {}).filter((k) => k.startsWith('cpu-')),
      [],
      model,
    );
  }
});

test("a forbidden feature's label must be absent, in every term of the VMI's own node affinity", () => {
  const absent = { key: 'cpu-feature.node.kubevirt.io/vmx', operator: 'DoesNotExist' };
  const alone = withCpu({ features: [{ name: 'vmx', policy: 'forbid' }] });
  assert.deepEqual(alone.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
    { matchExpressions: [absent] },
  ]);
  const onNode = { key: 'kubernetes.io/hostname', operator: 'In', values: ['node01'] };
  const inZone = { key: 'zone', operator: 'In', values: ['a'] };
  const own = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [onNode] }, { matchExpressions: [inZone] }],
      },
    },
    podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
  };
  const merged = withCpu({ features: [{ name: 'vmx', policy: 'forbid' }] }, own).affinity!;
  assert.deepEqual(merged.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
    { matchExpressions: [onNode, absent] },
    { matchExpressions: [inZone, absent] },
  ]);
  assert.deepEqual(merged.podAntiAffinity, own.podAntiAffinity);
  assert.deepEqual(withCpu({ model: 'Nehalem' }, own).affinity, own, 'nothing forbidden: the affinity is the VMI’s own');
});
