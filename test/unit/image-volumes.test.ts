// containerDisks as image volumes (ImageVolume): the launcher pod mounts each image read-only where
// upstream's does, with no holder containers, only where kube-apiserver serves image volumes and the
// gate is on; virt-handler finds the disk inside the compute container's view of the mount, refusing
// what it refuses in a holder's image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { launcherPodAsRead } from '../../src/contract/launcher-pod.ts';
import { renderLauncherPod, renderTemporaryPod } from '../../src/controller/launcher-pod.ts';
import { prepareImageVolumes } from '../../src/handler/disks.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const params = { launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent', config };

function vmi(name: string): VirtualMachineInstance {
  const v = defaultNewVmi({ ...example<VirtualMachineInstance>(name), metadata: { name: 'v', namespace: 'ns' } }, config, fixedContext());
  v.metadata.uid = 'vmi-uid';
  return v;
}

/** A VMI with a second containerDisk after a cloud-init volume, so the mount's index is the volume's place in the spec. */
function twoDisks(): VirtualMachineInstance {
  const v = vmi('vmi-nocloud.yaml');
  v.spec.domain.devices.disks = [...(v.spec.domain.devices.disks ?? []), { name: 'extra', disk: { bus: 'virtio' } }];
  v.spec.volumes = [
    ...(v.spec.volumes ?? []),
    { name: 'extra', containerDisk: { image: 'registry:5000/extra:1', imagePullPolicy: 'Always', path: '/custom/extra.qcow2' } },
  ];
  return v;
}

const compute = (pod: V1Pod) => pod.spec!.containers.find((c) => c.name === 'compute')!;

test('served and gated on: each containerDisk is an image volume named as the VMI volume, mounted read-only at disk_<place in spec>; no holders, no hook', () => {
  const v = twoDisks();
  const indexOf = (name: string) => v.spec.volumes!.findIndex((volume) => volume.name === name);
  const pod = renderLauncherPod(v, { ...params, imageVolumesServed: true });
  assert.deepEqual(
    pod.spec!.containers.map((c) => c.name),
    ['compute', 'guest-console-log'],
  );
  assert.equal(compute(pod).lifecycle, undefined);
  assert.deepEqual(
    pod.spec!.volumes!.filter((volume) => volume.image),
    [
      {
        name: 'containerdisk',
        image: { reference: 'registry:5000/kubevirt/cirros-container-disk-demo:devel', pullPolicy: 'IfNotPresent' },
      },
      { name: 'extra', image: { reference: 'registry:5000/extra:1', pullPolicy: 'Always' } },
    ],
  );
  const mounts = compute(pod).volumeMounts!.filter((m) => m.name === 'containerdisk' || m.name === 'extra');
  assert.deepEqual(mounts, [
    { name: 'containerdisk', mountPath: `/var/run/kubevirt-image-volume/disk_${indexOf('containerdisk')}`, readOnly: true },
    { name: 'extra', mountPath: `/var/run/kubevirt-image-volume/disk_${indexOf('extra')}`, readOnly: true },
  ]);
  assert.ok(indexOf('extra') > indexOf('containerdisk') + 1, 'a volume of another kind lies between them');
  assert.ok(!pod.spec!.volumes!.some((volume) => volume.name === 'virt-bin-share-dir'));
});

test('the kernel-boot image is an image volume at /var/run/kubevirt-kernel-boot', () => {
  const pod = renderLauncherPod(vmi('vmi-kernel-boot.yaml'), { ...params, imageVolumesServed: true });
  assert.ok(!pod.spec!.containers.some((c) => c.name === 'kernel-boot'));
  assert.deepEqual(
    pod.spec!.volumes!.find((volume) => volume.name === 'kernel-boot-volume'),
    {
      name: 'kernel-boot-volume',
      image: { reference: 'registry:5000/kubevirt/alpine-ext-kernel-boot-demo:devel', pullPolicy: 'IfNotPresent' },
    },
  );
  assert.deepEqual(
    compute(pod).volumeMounts!.find((m) => m.name === 'kernel-boot-volume'),
    { name: 'kernel-boot-volume', mountPath: '/var/run/kubevirt-kernel-boot', readOnly: true },
  );
});

test('holder containers stay where kube-apiserver drops image volumes, or where the KubeVirt CR disables the gate', () => {
  const holders = (pod: V1Pod) => pod.spec!.containers.map((c) => c.name).filter((n) => n.startsWith('volume'));
  const imageVolumes = (pod: V1Pod) => pod.spec!.volumes!.filter((volume) => volume.image);
  for (const p of [
    params,
    { ...params, imageVolumesServed: false },
    {
      ...params,
      imageVolumesServed: true,
      config: new ClusterConfig({ developerConfiguration: { useEmulation: true, disabledFeatureGates: ['ImageVolume'] } }),
    },
  ]) {
    const pod = renderLauncherPod(twoDisks(), p);
    assert.deepEqual(holders(pod), ['volumecontainerdisk', 'volumeextra']);
    assert.deepEqual(imageVolumes(pod), []);
  }
});

test('the temporary pod that only binds claims mounts no image', () => {
  const pod = renderTemporaryPod(twoDisks(), { ...params, imageVolumesServed: true });
  assert.deepEqual(
    pod.spec!.volumes!.filter((volume) => volume.image),
    [],
  );
  assert.ok(!compute(pod).volumeMounts!.some((m) => m.mountPath.startsWith('/var/run/kubevirt-image-volume')));
});

/**
 * The compute container's root with the images mounted as the kubelet mounts them, and the pod that
 * says so, as virt-handler's informer keeps it.
 */
function computeView(v: VirtualMachineInstance) {
  const root = mkdtempSync(join(tmpdir(), 'kvts-compute-'));
  const mount = (index: number) => join(root, 'var/run/kubevirt-image-volume', `disk_${index}`);
  const rendered = renderLauncherPod(v, { ...params, imageVolumesServed: true });
  const pod = launcherPodAsRead({ ...rendered, metadata: { ...rendered.metadata, uid: 'pod-uid' } });
  return { root, mount, pod };
}

const noCommands = async (argv: string[]) => assert.fail(`nothing is mounted for an image volume, but ran ${argv.join(' ')}`);

test("virt-handler hands the launcher the one file under /disk, or the volume's path, as the compute container sees it; nothing is mounted", async () => {
  const v = twoDisks();
  const { root, mount, pod } = computeView(v);
  const [first, extra] = ['containerdisk', 'extra'].map((name) => v.spec.volumes!.findIndex((volume) => volume.name === name));
  mkdirSync(join(mount(first), 'disk'), { recursive: true });
  writeFileSync(join(mount(first), 'disk', 'cirros.img'), 'qcow2');
  mkdirSync(join(mount(extra), 'custom'), { recursive: true });
  writeFileSync(join(mount(extra), 'custom', 'extra.qcow2'), 'qcow2');
  const paths = await prepareImageVolumes(v, pod, noCommands, root);
  assert.deepEqual(paths.containerDisks, {
    containerdisk: `/var/run/kubevirt-image-volume/disk_${first}/disk/cirros.img`,
    extra: `/var/run/kubevirt-image-volume/disk_${extra}/custom/extra.qcow2`,
  });
});

test('a symbolic link, no disk, or more than one file in an image volume is refused, naming the volume', async () => {
  const v = vmi('vmi-nocloud.yaml');
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'link',
      (dir) => symlinkSync('/etc/shadow', join(dir, 'disk', 'evil.img')),
      /volume containerdisk: \/disk\/evil.img is a symbolic link/,
    ],
    ['empty', () => undefined, /volume containerdisk: no file found in folder \/disk/],
    [
      'two',
      (dir) => {
        writeFileSync(join(dir, 'disk', 'a.img'), '');
        writeFileSync(join(dir, 'disk', 'b.img'), '');
      },
      /volume containerdisk: more than one file found/,
    ],
  ];
  for (const [name, fill, message] of cases) {
    const { root, mount, pod } = computeView(v);
    mkdirSync(join(mount(0), 'disk'), { recursive: true });
    fill(mount(0));
    await assert.rejects(prepareImageVolumes(v, pod, noCommands, root), message, name);
  }
});

test("the kernel and initrd are the kernel-boot image volume's files at the paths the VMI names", async () => {
  const v = vmi('vmi-kernel-boot.yaml');
  const { root, pod } = computeView(v);
  const boot = join(root, 'var/run/kubevirt-kernel-boot/boot');
  mkdirSync(boot, { recursive: true });
  writeFileSync(join(boot, 'vmlinuz-virt'), 'kernel');
  writeFileSync(join(boot, 'initramfs-virt'), 'initrd');
  const paths = await prepareImageVolumes(v, pod, noCommands, root);
  assert.equal(paths.kernel, '/var/run/kubevirt-kernel-boot/boot/vmlinuz-virt');
  assert.equal(paths.initrd, '/var/run/kubevirt-kernel-boot/boot/initramfs-virt');
});
