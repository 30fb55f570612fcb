// The disks concern and the volumes behind them: buses and controllers, cdrom,
// lun, readonly, boot order, serial, cache, IO and error policy; overlays, images and ISOs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { disks } from '../../src/launcher/convert/disks.ts';
import { emptyPlan } from '../../src/launcher/convert/plan.ts';
import { diskBacking } from '../../src/launcher/convert/volumes.ts';
import { ctx, has, part, refuses, values, vmi } from '../helpers/convert.ts';

test('disks: buses, cdrom, lun, readonly, bootOrder, serial, cache, io, error policy', () => {
  const p = part(
    disks,
    vmi((s) => {
      s.domain.devices.disks = [
        { name: 'containerdisk', disk: { bus: 'virtio' }, bootOrder: 1, serial: 'abc', cache: 'none', io: 'native' },
        { name: 'cd', cdrom: { bus: 'sata' } },
        { name: 'sata', disk: { bus: 'sata' } },
        { name: 'scsi', disk: { bus: 'scsi' } },
        { name: 'usb', disk: { bus: 'usb' } },
        { name: 'pvcdisk', lun: { bus: 'scsi' }, errorPolicy: 'report' },
      ];
      s.volumes = [
        ...s.volumes!,
        { name: 'cd', cloudInitNoCloud: { userData: '#!/bin/sh\n' } },
        { name: 'sata', emptyDisk: { capacity: '1Gi' } },
        { name: 'scsi', emptyDisk: { capacity: '1Gi' } },
        { name: 'usb', emptyDisk: { capacity: '1Gi' } },
        { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'c' } },
      ];
    }),
  );
  assert.ok(
    has(
      p,
      '-drive',
      'file=/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2,if=none,id=drive-containerdisk,format=qcow2,cache=none,aio=native,werror=stop,rerror=stop,discard=unmap',
    ),
  );
  assert.ok(has(p, '-device', 'virtio-blk-pci,drive=drive-containerdisk,id=ua-containerdisk,bootindex=1,serial=abc'));
  assert.ok(has(p, '-device', 'ide-cd,drive=drive-cd,id=ua-cd,bus=ide.0'));
  assert.ok(has(p, '-drive', /id=drive-cd,format=raw,cache=writeback,readonly=on,rerror=stop$/), 'a cdrom is read-only by default');
  assert.ok(has(p, '-device', 'ide-hd,drive=drive-sata,id=ua-sata,bus=ide.1'));
  assert.ok(has(p, '-device', 'virtio-scsi-pci,id=scsi0'));
  assert.ok(has(p, '-device', 'scsi-hd,drive=drive-scsi,id=ua-scsi,bus=scsi0.0,channel=0,scsi-id=0,lun=0'));
  assert.ok(has(p, '-device', 'scsi-hd,drive=drive-pvcdisk,id=ua-pvcdisk,bus=scsi0.0,channel=0,scsi-id=0,lun=1'));
  assert.ok(has(p, '-device', 'qemu-xhci,id=usb'));
  assert.ok(has(p, '-device', 'usb-storage,drive=drive-usb,id=ua-usb'));
  assert.ok(has(p, '-drive', /id=drive-pvcdisk,format=raw,cache=writethrough,werror=report,rerror=report$/), 'claims are written through');
  assert.equal(values(p, '-device').filter((d) => d === 'virtio-scsi-pci,id=scsi0').length, 1, 'one SCSI controller for both SCSI disks');
  assert.ok(
    has(
      part(
        disks,
        vmi((s) => (s.domain.devices.disks![0].disk!.readonly = true)),
      ),
      '-drive',
      /id=drive-containerdisk,.*readonly=on/,
    ),
  );
});

test('disks: multi-queue virtio gets a queue per vCPU; pc puts SATA on an added AHCI controller', () => {
  const mq = part(
    disks,
    vmi((s) => {
      s.domain.devices.blockMultiQueue = true;
      s.domain.cpu = { cores: 2 };
    }),
  );
  assert.ok(has(mq, '-device', 'virtio-blk-pci,drive=drive-containerdisk,id=ua-containerdisk,num-queues=2'));
  const pc = part(
    disks,
    vmi((s) => {
      s.domain.machine = { type: 'pc' };
      s.domain.devices.disks![0].disk = { bus: 'sata' };
    }),
  );
  assert.deepEqual(values(pc, '-device'), ['ahci,id=ahci0', 'ide-hd,drive=drive-containerdisk,id=ua-containerdisk,bus=ahci0.0']);
});

test('disks: a controller the plan so far already has is not added again', () => {
  const c = ctx();
  const sofar = { ...emptyPlan(c), argv: ['-device', 'qemu-xhci,id=usb'] };
  const p = part(
    disks,
    vmi((s) => (s.domain.devices.disks![0].disk = { bus: 'usb' })),
    c,
    sofar,
  );
  assert.deepEqual(values(p, '-device'), ['usb-storage,drive=drive-containerdisk,id=ua-containerdisk']);
});

test('disks: what cannot be attached is refused with its field', () => {
  refuses(
    () =>
      part(
        disks,
        vmi((s) => (s.domain.devices.disks![0].io = 'native')),
      ),
    'spec.domain.devices.disks[0].io',
    /cache: none/,
  );
  refuses(
    () =>
      part(
        disks,
        vmi((s) => (s.domain.devices.disks![0] = { name: 'containerdisk', cdrom: { bus: 'virtio' } })),
      ),
    'spec.domain.devices.disks[0].cdrom.bus',
    /virtio bus/,
  );
  refuses(
    () =>
      part(
        disks,
        vmi((s) => (s.domain.devices.disks![0].name = 'nothing')),
      ),
    'spec.domain.devices.disks[0].name',
    /no volume named nothing/,
  );
  refuses(() => part(disks, vmi(), ctx({ volumes: {} })), 'spec.volumes[0].containerDisk', /not found on the node/);
  refuses(
    () =>
      part(
        disks,
        vmi((s) => {
          s.domain.devices.filesystems = [{ name: 'shared', virtiofs: {} }];
          s.volumes!.push({ name: 'shared', persistentVolumeClaim: { claimName: 'c' } });
        }),
      ),
    'spec.domain.devices.filesystems[0]',
    /virtiofsd/,
  );
});

test('volumes become overlays, images and ISOs', () => {
  const scratch = '/var/run/kubevirt-private/vmi/disks';
  const p = part(
    disks,
    vmi(() => {}, 'vmi-nocloud.yaml'),
  );
  // A containerDisk's format is read from its image when the overlay is made, not from its name.
  assert.deepEqual(p.prepare?.[0], {
    kind: 'containerDiskOverlay',
    volume: 'containerdisk',
    path: '/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2',
    backing: '/var/run/kubevirt/container-disks/disk_0.img',
  });
  // The cloud-init ISO is where upstream's launcher writes it: its tests check it there.
  assert.deepEqual(p.prepare?.[1], {
    kind: 'iso',
    path: '/var/run/kubevirt-ephemeral-disks/cloud-init-data/ns/vmi-nocloud/noCloud.iso',
    label: 'cidata',
    files: {
      'meta-data': 'instance-id: vmi-nocloud.ns\nlocal-hostname: vmi-nocloud\n',
      'user-data': "#!/bin/sh\n\necho 'printed from cloud-init userdata'\n",
    },
  });
  assert.deepEqual(p.prepare?.[2], {
    kind: 'image',
    path: `${scratch}/emptydisk.qcow2`,
    format: 'qcow2',
    sizeBytes: 2 * 1024 ** 3,
    keepExisting: false,
  });
  const drive = part(
    disks,
    vmi((s) => {
      const userDataBase64 = Buffer.from('#!/bin/sh\necho hi\n').toString('base64');
      s.volumes![0] = { name: 'containerdisk', cloudInitConfigDrive: { userDataBase64, networkData: 'v2' } };
    }),
  ).prepare?.[0];
  assert.equal(drive?.kind, 'iso');
  assert.ok(drive?.kind === 'iso' && drive.label === 'config-2');
  assert.equal(drive.files['openstack/latest/user_data'], '#!/bin/sh\necho hi\n');
  assert.equal(drive.files['openstack/latest/network_data.json'], 'v2');
  const pvc = part(
    disks,
    vmi(() => {}, 'vmi-pvc.yaml'),
  );
  assert.deepEqual(pvc.prepare?.[0], {
    kind: 'image',
    path: '/var/run/kubevirt-private/vmi-disks/pvcdisk/disk.img',
    format: 'raw',
    sizeBytes: 1 << 30,
    keepExisting: true,
  });
  const blockClaim = ctx({ volumes: { claims: { pvcdisk: { path: '/dev/pvcdisk', mode: 'Block' } } } });
  const block = part(
    disks,
    vmi(() => {}, 'vmi-pvc.yaml'),
    blockClaim,
  );
  assert.ok(has(block, '-drive', /^file=\/dev\/pvcdisk,if=none,id=drive-pvcdisk,format=raw/));
  const eph = part(
    disks,
    vmi((s) => (s.volumes![0] = { name: 'containerdisk', ephemeral: { persistentVolumeClaim: { claimName: 'c' } } })),
    ctx({ volumes: { claims: { containerdisk: { path: '/pvc', mode: 'Filesystem' } } } }),
  );
  const overlay = {
    kind: 'overlay',
    path: '/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2',
    backing: '/pvc/disk.img',
    backingFormat: 'raw',
  };
  assert.deepEqual(eph.prepare?.[0], overlay);
  const host = part(
    disks,
    vmi(() => {}, 'vmi-host-disk.yaml'),
  );
  const image = { kind: 'image', path: '/var/data/disk.img', format: 'raw', sizeBytes: 1024 ** 3, keepExisting: true };
  assert.deepEqual(host.prepare?.[0], image);
  const tree = '/var/run/kubevirt-private/config-map/containerdisk';
  const cm = part(
    disks,
    vmi((s) => (s.volumes![0] = { name: 'containerdisk', configMap: { name: 'cm', volumeLabel: 'CFG' } })),
    ctx({ volumes: { fileTrees: { containerdisk: tree } } }),
  );
  assert.deepEqual(cm.prepare?.[0], { kind: 'iso', path: `${scratch}/containerdisk.iso`, label: 'CFG', files: {}, fromDir: tree });
});

test("diskBacking: where each volume's data is, whether the guest may write it and whether that outlives the VMI", () => {
  const v = vmi((s) => s.volumes!.push({ name: 'pvcdisk', persistentVolumeClaim: { claimName: 'c', readOnly: true } }));
  const backing = (name: string, c = ctx()) => diskBacking(v, v.spec.volumes!.find((vol) => vol.name === name)!, c);
  // Where upstream keeps a containerDisk's writable layer, which its tests look at.
  const overlay = '/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2';
  assert.deepEqual(backing('containerdisk'), {
    path: overlay,
    format: 'qcow2',
    readonly: false,
    persistent: false,
    prepare: {
      kind: 'containerDiskOverlay',
      volume: 'containerdisk',
      path: overlay,
      backing: '/var/run/kubevirt/container-disks/disk_0.img',
    },
  });
  // The KubeVirt CR's diskVerification limit goes with it.
  assert.deepEqual(backing('containerdisk', ctx({ diskVerificationMemoryLimitBytes: 42_000 })).prepare, {
    kind: 'containerDiskOverlay',
    volume: 'containerdisk',
    path: overlay,
    backing: '/var/run/kubevirt/container-disks/disk_0.img',
    memoryLimitBytes: 42_000,
  });
  const claim = backing('pvcdisk', ctx({ volumes: { claims: { pvcdisk: { path: '/dev/sdb', mode: 'Block' } } } }));
  assert.deepEqual(claim, { path: '/dev/sdb', format: 'raw', readonly: true, persistent: true });
  refuses(() => backing('pvcdisk', ctx({ volumes: {} })), 'spec.volumes[1].persistentVolumeClaim', /not mounted/);
  const unattachable = vmi((s) => (s.volumes![0] = { name: 'containerdisk', memoryDump: { claimName: 'c' } }));
  refuses(
    () => diskBacking(unattachable, unattachable.spec.volumes![0], ctx()),
    'spec.volumes[0].memoryDump',
    /cannot be attached as disks/,
  );
});

test("a ConfigDrive's meta_data.json is upstream's, field for field and in its order: instance type, id, hostname, firmware UUID, tagged NICs", () => {
  const v = vmi((s) => {
    s.volumes![1] = { name: 'cloudinitdisk', cloudInitConfigDrive: { userData: '#!/bin/sh\n' } };
    s.domain.firmware = { uuid: '588de568-3769-40de-8528-ff4c5ca293e0' };
    s.domain.devices.interfaces = [
      { name: 'default', masquerade: {}, tag: 'specialNet', pciAddress: '0000:01:00.0', macAddress: '9a:50:e8:6f:f3:fe' },
    ];
  }, 'vmi-nocloud.yaml');
  v.metadata.annotations = { ...v.metadata.annotations, 'kubevirt.io/instancetype-name': 'testInstancetype' };
  const backing = diskBacking(v, v.spec.volumes!.find((vol) => vol.name === 'cloudinitdisk')!, ctx());
  const files = (backing.prepare as { files: Record<string, string> }).files;
  assert.equal(
    files['openstack/latest/meta_data.json'],
    '{"instance_type":"testInstancetype","instance_id":"vmi-nocloud.ns","hostname":"vmi-nocloud","uuid":"588de568-3769-40de-8528-ff4c5ca293e0","devices":[{"type":"nic","bus":"pci","address":"0000:01:00.0","mac":"9a:50:e8:6f:f3:fe","tags":["specialNet"]}]}',
  );
});
