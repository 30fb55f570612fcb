// virt-launcher reads the cloud-init data a VMI keeps in Secrets from where
// virt-controller mounts them in the pod, under either key name upstream reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { cloudInitSecretMountPath } from '../../src/contract/launcher-pod.ts';
import { renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { readCloudInitSecrets } from '../../src/launcher/cloud-init-secrets.ts';
import { hugepageSizes } from '../../src/lib/hugepages.ts';

const vmi = (volumes: VirtualMachineInstance['spec']['volumes']): VirtualMachineInstance =>
  ({ metadata: { name: 'v', namespace: 'ns', uid: 'u' }, spec: { domain: { devices: {} }, volumes } }) as VirtualMachineInstance;

function podRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'kvts-pod-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('cloud-init user data and network data come from the Secrets mounted where the launcher pod puts them', () => {
  const withSecrets = vmi([{ name: 'cloudinit', cloudInitNoCloud: { secretRef: { name: 'ud' }, networkDataSecretRef: { name: 'nd' } } }]);
  const pod = renderLauncherPod(withSecrets, {
    launcherImage: 'img',
    imagePullPolicy: 'IfNotPresent',
    config: new ClusterConfig(),
  }) as V1Pod;
  const mounts = pod.spec!.containers[0].volumeMounts!.map((m) => m.mountPath);
  assert.ok(
    mounts.includes(cloudInitSecretMountPath('cloudinit', 'userdata')) &&
      mounts.includes(cloudInitSecretMountPath('cloudinit', 'networkdata')),
  );
  const root = podRoot({
    [`${cloudInitSecretMountPath('cloudinit', 'userdata')}/userdata`]: '#cloud-config\nhostname: from-secret\n',
    [`${cloudInitSecretMountPath('cloudinit', 'networkdata')}/networkData`]: 'version: 2\n',
  });
  assert.deepEqual(readCloudInitSecrets(withSecrets, root), {
    cloudinit: { userData: '#cloud-config\nhostname: from-secret\n', networkData: 'version: 2\n' },
  });
});

test('a cloud-init Secret without a user data key is refused naming the field; volumes without Secrets need none', () => {
  const configDrive = vmi([
    { name: 'disk', containerDisk: { image: 'x' } },
    { name: 'cd', cloudInitConfigDrive: { secretRef: { name: 'ud' } } },
  ]);
  assert.throws(
    () => readCloudInitSecrets(configDrive, podRoot({ [`${cloudInitSecretMountPath('cd', 'userdata')}/other`]: 'x' })),
    /^Error: spec\.volumes\[1\]\.cloudInitConfigDrive\.secretRef: the Secret has no userdata or userData key$/,
  );
  assert.deepEqual(readCloudInitSecrets(vmi([{ name: 'c', cloudInitNoCloud: { userData: '#!/bin/sh' } }]), podRoot({})), {});
});

test("the node's hugepage sizes are those with pages reserved, named as Kubernetes names them", () => {
  const root = podRoot({ 'hugepages-2048kB/nr_hugepages': '64\n', 'hugepages-1048576kB/nr_hugepages': '0\n' });
  assert.deepEqual(hugepageSizes(root), ['2Mi']);
  writeFileSync(join(root, 'hugepages-1048576kB/nr_hugepages'), '1\n');
  assert.deepEqual(hugepageSizes(root).sort(), ['1Gi', '2Mi']);
  assert.deepEqual(hugepageSizes(join(root, 'absent')), []);
});
