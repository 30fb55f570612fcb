// A guest on hugepages: its launcher pod asks the kubelet for the pages as upstream's does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { POD_PATHS } from '../../src/contract/launcher-pod.ts';
import { memoryOverheadBytes, renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { binaryQuantity } from '../../src/api/quantity.ts';

const vmi = (memory: VirtualMachineInstance['spec']['domain']['memory']): VirtualMachineInstance =>
  ({ metadata: { name: 'huge', namespace: 'ns', uid: 'u' }, spec: { domain: { devices: {}, memory } } }) as VirtualMachineInstance;
const render = (v: VirtualMachineInstance) =>
  renderLauncherPod(v, { launcherImage: 'img', imagePullPolicy: 'IfNotPresent', config: new ClusterConfig() });

test('a hugepages guest: the pod requests its RAM as hugepages-2Mi (request = limit), memory only for the overhead, and mounts hugetlbfs', () => {
  const v = vmi({ guest: '128Mi', hugepages: { pageSize: '2Mi' } });
  const pod = render(v);
  const compute = pod.spec!.containers[0];
  assert.equal(compute.resources?.requests?.['hugepages-2Mi'], '128Mi');
  assert.equal(compute.resources?.limits?.['hugepages-2Mi'], '128Mi');
  assert.equal(compute.resources?.requests?.memory, binaryQuantity(memoryOverheadBytes(v)));
  assert.deepEqual(
    compute.volumeMounts?.find((m) => m.name === 'hugepages'),
    { name: 'hugepages', mountPath: POD_PATHS.hugepages },
  );
  assert.deepEqual(
    pod.spec!.volumes?.find((m) => m.name === 'hugepages'),
    { name: 'hugepages', emptyDir: { medium: 'HugePages' } },
  );
});

test('a guest without hugepages gets neither the resource nor the mount', () => {
  const pod = render(vmi({ guest: '128Mi' }));
  assert.equal(
    Object.keys(pod.spec!.containers[0].resources?.requests ?? {}).some((r) => r.startsWith('hugepages-')),
    false,
  );
  assert.equal(
    pod.spec!.volumes?.some((m) => m.name === 'hugepages'),
    false,
  );
});
