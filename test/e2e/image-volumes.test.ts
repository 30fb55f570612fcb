// containerDisks and kernel-boot images as image volumes (upstream's ImageVolume gate), on a cluster
// whose kube-apiserver and runtime serve them (KVTS_CONTAINERD=2 npm start): guests boot from them
// with no holder container in their pods, and an image's planted symbolic link is refused as in a
// holder. On a cluster that drops image volumes (the default local one) every test here skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apply, deleteNamespace, eventually, kubectl, kubectlResult, virtHandlerReady, vmiConsoleLog } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-image-volumes';
type Obj = { metadata: { name: string; namespace?: string }; spec: Record<string, any> };

/** Whether kube-apiserver keeps a pod's image volume (a server-side dry run stores nothing). */
function clusterServesImageVolumes(): boolean {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'image-volume-probe', namespace: 'default' },
    spec: {
      containers: [{ name: 'c', image: 'registry:5000/kubevirt-ts/pause:devel', volumeMounts: [{ name: 'v', mountPath: '/v' }] }],
      volumes: [{ name: 'v', image: { reference: 'registry:5000/kubevirt-ts/pause:devel' } }],
    },
  };
  const created = JSON.parse(kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(pod)));
  return created.spec.volumes.some((v: { name: string; image?: unknown }) => v.name === 'v' && v.image);
}
const skip = clusterServesImageVolumes()
  ? false
  : "this cluster's kube-apiserver drops image volumes (Kubernetes' ImageVolume gate is off): KVTS_CONTAINERD=2 npm start serves them";

const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const launcherPod = (vmi: string) =>
  JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `vm.kubevirt.io/name=${vmi}`, '-o', 'json'])).items[0] as {
    spec: { containers: { name: string }[]; volumes: { name: string; image?: { reference: string } }[] };
  };

function testGuest(name: string, image: string): Obj {
  const vmi = example<Obj>('vmi-masquerade.yaml');
  vmi.metadata = { name, namespace: NS };
  vmi.spec.domain.memory.guest = '128Mi';
  vmi.spec.volumes[0].containerDisk.image = image;
  vmi.spec.volumes[1].cloudInitNoCloud = { userData: '#!/bin/sh\necho "from an image volume"' };
  return vmi;
}

before(async () => {
  if (skip) return;
  await virtHandlerReady();
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => {
  if (!skip) deleteNamespace(NS);
});

test('a containerDisk guest boots from an image volume: no holder container, its user-data on the console log', { skip }, async () => {
  apply(testGuest('from-image', 'registry:5000/kubevirt-ts/test-guest-container-disk:devel'));
  await eventually('the VMI to run', 180, () => get('vmi', 'from-image')?.status?.phase === 'Running');
  const pod = launcherPod('from-image');
  assert.deepEqual(
    pod.spec.containers.map((c) => c.name),
    ['compute', 'guest-console-log'],
  );
  assert.deepEqual(
    pod.spec.volumes.filter((v) => v.image).map((v) => [v.name, v.image!.reference]),
    [['containerdisk', 'registry:5000/kubevirt-ts/test-guest-container-disk:devel']],
  );
  await eventually('the user-data on the console log', 240, () => vmiConsoleLog(NS, 'from-image').includes('from an image volume'));
});

test("upstream's vmi-kernel-boot.yaml runs with its kernel and initrd from an image volume", { skip }, async () => {
  const vmi = example<Obj>('vmi-kernel-boot.yaml');
  vmi.metadata = { name: 'kernel-boot', namespace: NS };
  apply(vmi);
  await eventually('the VMI to run', 180, () => get('vmi', 'kernel-boot')?.status?.phase === 'Running');
  const pod = launcherPod('kernel-boot');
  assert.ok(!pod.spec.containers.some((c) => c.name === 'kernel-boot'), 'no kernel-boot holder');
  assert.ok(pod.spec.volumes.some((v) => v.name === 'kernel-boot-volume' && v.image));
});

test("an image volume's disk that is a symbolic link is refused, naming the reason", { skip }, async () => {
  apply(testGuest('evil-image', 'registry:5000/kubevirt-ts/evil-container-disk:devel'));
  const events = () =>
    kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=evil-image', '-o', 'jsonpath={.items[*].message}']);
  await eventually('the refusal', 180, () => /symbolic link/.test(events()));
  assert.notEqual(get('vmi', 'evil-image')?.status?.phase, 'Running');
});
