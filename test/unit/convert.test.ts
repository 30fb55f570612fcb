// VMI → QEMU conversion: every mapped field, and every refusal with its field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertVmiToQemu, ConversionError, type ConversionContext, type QemuPlan } from '../../src/launcher/convert.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import { example, fixedContext, defaultConfig } from '../helpers/fixtures.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceSpec } from '../../src/api/types.ts';

function ctx(over: Partial<ConversionContext> = {}): ConversionContext {
  return {
    workdir: '/var/run/kubevirt-private/vmi', socketDir: '/var/run/kubevirt/sockets', kvm: false, hugepageSizes: [],
    firmware: { ovmfCode: '/ovmf/CODE.fd', ovmfSecureCode: '/ovmf/CODE.secboot.fd', ovmfVars: '/ovmf/VARS.fd', ovmfSecureVars: '/ovmf/VARS.ms.fd' },
    interfaces: { default: { tap: 'tap0' } },
    volumes: {
      containerDisks: { containerdisk: '/var/run/kubevirt/container-disks/disk_0.img' },
      claims: { pvcdisk: { path: '/var/run/kubevirt-private/vmi-disks/pvcdisk', mode: 'Filesystem', capacityBytes: 1 << 30 } },
      kernel: '/kernel/vmlinuz', initrd: '/kernel/initrd',
    },
    smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' },
    now: new Date('2026-01-01T00:00:00Z'),
    ...over,
  };
}

function vmi(edit: (spec: VirtualMachineInstanceSpec) => void = () => {}, file = 'vmi-ephemeral.yaml'): VirtualMachineInstance {
  const v = example<VirtualMachineInstance>(file);
  v.metadata.namespace = 'ns';
  edit(v.spec);
  return defaultNewVmi(v, defaultConfig(), fixedContext());
}

const plan = (v: VirtualMachineInstance, c = ctx()) => convertVmiToQemu(v, c);
/** The value following each occurrence of an option, e.g. every -device. */
const values = (p: QemuPlan, option: string) => p.argv.flatMap((a, i) => (a === option ? [p.argv[i + 1]] : []));
const has = (p: QemuPlan, option: string, pattern: RegExp | string) =>
  values(p, option).some((v) => (typeof pattern === 'string' ? v === pattern : pattern.test(v)));

function refuses(v: () => VirtualMachineInstance, field: string, message: RegExp, c = ctx()) {
  assert.throws(() => convertVmiToQemu(v(), c), (e: unknown) => e instanceof ConversionError && e.field === field && message.test(e.message));
}

test('machine, accelerator, memory and CPU topology', () => {
  const p = plan(vmi());
  assert.ok(has(p, '-machine', 'q35'));
  assert.ok(has(p, '-accel', 'tcg,tb-size=32'));
  assert.ok(has(p, '-m', 'size=128M'));
  assert.ok(has(p, '-smp', '1,sockets=4,cores=1,threads=1,maxcpus=4'));
  assert.ok(has(p, '-cpu', 'qemu64'), 'host-model becomes a TCG model without KVM');
  assert.ok(p.argv.includes('-S'), 'QEMU starts paused until the launcher says cont');
  assert.ok(has(p, '-name', 'guest=ns_vmi-ephemeral,debug-threads=on'));
  const kvm = plan(vmi(), ctx({ kvm: true }));
  assert.ok(has(kvm, '-accel', 'kvm'));
  assert.ok(has(kvm, '-cpu', 'host'));
  assert.ok(has(plan(vmi((s) => (s.domain.machine = { type: 'pc' }))), '-machine', 'pc'));
  const topo = plan(vmi((s) => (s.domain.cpu = { sockets: 2, cores: 2, threads: 1, model: 'Haswell', features: [{ name: 'pcid', policy: 'require' }, { name: 'x2apic', policy: 'disable' }] })));
  assert.ok(has(topo, '-smp', '4,sockets=8,cores=2,threads=1,maxcpus=16'));
  assert.ok(has(topo, '-cpu', 'Haswell,+pcid,-x2apic'));
});

test('firmware: SMBIOS, EFI with and without secure boot, BIOS serial, kernel boot', () => {
  const p = plan(vmi((s) => (s.domain.firmware = { uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223', serial: 'e4686d2c' })));
  assert.ok(has(p, '-uuid', '5d307ca9-b3ef-428c-8861-06e72d69f223'));
  assert.ok(has(p, '-smbios', 'type=1,manufacturer=KubeVirt,product=None,family=KubeVirt,serial=e4686d2c,uuid=5d307ca9-b3ef-428c-8861-06e72d69f223'));
  const efi = plan(vmi((s) => (s.domain.firmware = { bootloader: { efi: { secureBoot: false } } })));
  assert.ok(has(efi, '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/CODE.fd'));
  assert.ok(has(efi, '-drive', /^if=pflash,format=raw,unit=1,file=\/var\/run\/kubevirt-private\/vmi\/nvram\/ns_vmi-ephemeral_VARS.fd$/));
  assert.ok(has(efi, '-device', 'bochs-display,id=video0'), 'EFI guests get bochs, as upstream');
  assert.deepEqual(efi.prepare.find((s) => s.kind === 'copy'), { kind: 'copy', from: '/ovmf/VARS.fd', to: '/var/run/kubevirt-private/vmi/nvram/ns_vmi-ephemeral_VARS.fd', keepExisting: false });
  const secure = plan(vmi((s) => {
    s.domain.firmware = { bootloader: { efi: {} } };
    s.domain.features = { smm: { enabled: true } };
  }));
  assert.ok(has(secure, '-machine', 'q35,smm=on'));
  assert.ok(has(secure, '-drive', /file=\/ovmf\/CODE.secboot.fd/));
  assert.ok(has(secure, '-global', 'driver=cfi.pflash01,property=secure,value=on'));
  assert.ok(has(plan(vmi((s) => (s.domain.firmware = { bootloader: { bios: { useSerial: true } } }))), '-fw_cfg', 'name=etc/sercon-port,string=0x3f8'));
  const kb = plan(vmi(() => {}, 'vmi-kernel-boot.yaml'));
  assert.ok(has(kb, '-kernel', '/kernel/vmlinuz'));
  assert.ok(has(kb, '-initrd', '/kernel/initrd'));
  assert.ok(has(kb, '-append', 'console=ttyS0'));
});

test('disks: buses, cdrom, lun, readonly, bootOrder, serial, cache, io, error policy', () => {
  const p = plan(vmi((s) => {
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
  }));
  assert.ok(has(p, '-drive', 'file=/var/run/kubevirt-private/vmi/disks/containerdisk.qcow2,if=none,id=drive-containerdisk,format=qcow2,cache=none,aio=native,werror=stop,rerror=stop,discard=unmap'));
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
  assert.ok(has(plan(vmi((s) => (s.domain.devices.disks![0].disk!.readonly = true))), '-drive', /id=drive-containerdisk,.*readonly=on/));
});

test('volumes become overlays, images and ISOs', () => {
  const p = plan(vmi(() => {}, 'vmi-nocloud.yaml'));
  assert.deepEqual(p.prepare[0], { kind: 'overlay', path: '/var/run/kubevirt-private/vmi/disks/containerdisk.qcow2', backing: '/var/run/kubevirt/container-disks/disk_0.img', backingFormat: 'raw' });
  assert.deepEqual(p.prepare[1], {
    kind: 'iso', path: '/var/run/kubevirt-private/vmi/disks/cloudinitdisk.iso', label: 'cidata',
    files: { 'meta-data': 'instance-id: vmi-nocloud.ns\nlocal-hostname: vmi-nocloud\n', 'user-data': "#!/bin/sh\n\necho 'printed from cloud-init userdata'\n" },
  });
  assert.deepEqual(p.prepare[2], { kind: 'image', path: '/var/run/kubevirt-private/vmi/disks/emptydisk.qcow2', format: 'qcow2', sizeBytes: 2 * 1024 ** 3, keepExisting: false });
  const drive = plan(vmi((s) => {
    s.volumes![0] = { name: 'containerdisk', cloudInitConfigDrive: { userDataBase64: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'), networkData: 'v2' } };
  })).prepare[0];
  assert.equal(drive.kind, 'iso');
  assert.ok(drive.kind === 'iso' && drive.label === 'config-2' && drive.files['openstack/latest/user_data'] === '#!/bin/sh\necho hi\n' && drive.files['openstack/latest/network_data.json'] === 'v2');
  const pvc = plan(vmi(() => {}, 'vmi-pvc.yaml'));
  assert.deepEqual(pvc.prepare[0], { kind: 'image', path: '/var/run/kubevirt-private/vmi-disks/pvcdisk/disk.img', format: 'raw', sizeBytes: 1 << 30, keepExisting: true });
  const block = plan(vmi(() => {}, 'vmi-pvc.yaml'), ctx({ volumes: { claims: { pvcdisk: { path: '/dev/pvcdisk', mode: 'Block' } } } }));
  assert.ok(has(block, '-drive', /^file=\/dev\/pvcdisk,if=none,id=drive-pvcdisk,format=raw/));
  const eph = plan(vmi((s) => (s.volumes![0] = { name: 'containerdisk', ephemeral: { persistentVolumeClaim: { claimName: 'c' } } })),
    ctx({ volumes: { claims: { containerdisk: { path: '/pvc', mode: 'Filesystem' } } } }));
  assert.deepEqual(eph.prepare[0], { kind: 'overlay', path: '/var/run/kubevirt-private/vmi/disks/containerdisk.qcow2', backing: '/pvc/disk.img', backingFormat: 'raw' });
  const host = plan(vmi(() => {}, 'vmi-host-disk.yaml'));
  assert.deepEqual(host.prepare[0], { kind: 'image', path: '/var/data/disk.img', format: 'raw', sizeBytes: 1024 ** 3, keepExisting: true });
  const cm = plan(vmi((s) => (s.volumes![0] = { name: 'containerdisk', configMap: { name: 'cm', volumeLabel: 'CFG' } })),
    ctx({ volumes: { fileTrees: { containerdisk: '/var/run/kubevirt-private/config-map/containerdisk' } } }));
  assert.deepEqual(cm.prepare[0], { kind: 'iso', path: '/var/run/kubevirt-private/vmi/disks/containerdisk.iso', label: 'CFG', files: {}, fromDir: '/var/run/kubevirt-private/config-map/containerdisk' });
});

test('interfaces: model, MAC, boot order, tap or user networking', () => {
  const p = plan(vmi((s) => {
    s.domain.devices.interfaces = [{ name: 'default', masquerade: {}, model: 'e1000', macAddress: '02:00:00:00:00:01', bootOrder: 2 }];
  }));
  assert.ok(has(p, '-netdev', 'tap,id=net-default,ifname=tap0,script=no,downscript=no'));
  assert.ok(has(p, '-device', 'e1000,netdev=net-default,id=ua-default,mac=02:00:00:00:00:01,bootindex=2'));
  const user = plan(vmi(), ctx({ interfaces: { default: { user: { hostForwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] } } } }));
  assert.ok(has(user, '-netdev', 'user,id=net-default,hostfwd=tcp:127.0.0.1:2222-:22'));
  assert.ok(has(user, '-device', 'virtio-net-pci,netdev=net-default,id=ua-default'));
});

test('console, VNC, inputs, balloon, rng, watchdog, guest agent, sound, panic device', () => {
  const p = plan(vmi((s) => {
    s.domain.devices.inputs = [{ name: 'tablet', type: 'tablet', bus: 'usb' }, { name: 'vt', type: 'tablet', bus: 'virtio' }];
    s.domain.devices.rng = {};
    s.domain.devices.watchdog = { name: 'wd', i6300esb: { action: 'poweroff' } };
    s.domain.devices.sound = { name: 'audio', model: 'ich9' };
    s.domain.devices.panicDevices = [{ model: 'isa' }];
  }));
  assert.ok(has(p, '-chardev', 'socket,id=charserial0,path=/var/run/kubevirt/sockets/virt-serial0,server=on,wait=off,logfile=/var/run/kubevirt/sockets/virt-serial0-log,logappend=on'));
  assert.ok(has(p, '-serial', 'chardev:charserial0'));
  assert.ok(has(p, '-vnc', 'unix:/var/run/kubevirt/sockets/virt-vnc'));
  assert.ok(has(p, '-device', 'VGA,id=video0'));
  assert.ok(has(p, '-device', 'usb-tablet,id=input-tablet'));
  assert.ok(has(p, '-device', 'virtio-tablet-pci,id=input-vt'));
  assert.ok(has(p, '-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on'));
  assert.ok(has(p, '-device', 'virtio-rng-pci,rng=rng0,id=rng'));
  assert.ok(has(p, '-device', 'i6300esb,id=watchdog-wd'));
  assert.ok(has(p, '-action', 'watchdog=poweroff'));
  assert.ok(has(p, '-device', 'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0'));
  assert.ok(has(p, '-device', 'ich9-intel-hda,id=sound0'));
  assert.ok(has(p, '-device', 'pvpanic'));
  assert.deepEqual(p.sockets, {
    qmp: '/var/run/kubevirt/sockets/qmp.sock', guestAgent: '/var/run/kubevirt/sockets/qga.sock',
    serial: '/var/run/kubevirt/sockets/virt-serial0', vnc: '/var/run/kubevirt/sockets/virt-vnc',
  });
  const headless = plan(vmi((s) => {
    s.domain.devices.autoattachSerialConsole = false;
    s.domain.devices.autoattachGraphicsDevice = false;
    s.domain.devices.autoattachMemBalloon = false;
  }));
  assert.equal(values(headless, '-serial').length, 0);
  assert.equal(values(headless, '-vnc').length, 0);
  assert.ok(!has(headless, '-device', /virtio-balloon/));
  assert.equal(headless.serialLog, undefined);
});

test('features and clock', () => {
  const p = plan(vmi((s) => {
    s.domain.features = { acpi: { enabled: false }, smm: { enabled: false } };
    s.domain.clock = { utc: { offsetSeconds: 3600 }, timer: { hpet: { present: false }, rtc: { tickPolicy: 'catchup', track: 'guest' } } };
  }));
  assert.ok(has(p, '-machine', 'q35,acpi=off,smm=off,hpet=off'));
  assert.ok(has(p, '-rtc', 'base=2026-01-01T01:00:00,clock=vm,driftfix=slew'));
  const tz = plan(vmi((s) => (s.domain.clock = { timezone: 'Europe/Berlin' })));
  assert.ok(has(tz, '-rtc', 'base=localtime'));
  assert.deepEqual(tz.env, { TZ: 'Europe/Berlin' });
  const hv = plan(vmi((s) => (s.domain.features = { hyperv: { relaxed: { enabled: true }, spinlocks: { enabled: true, spinlocks: 8191 } } })), ctx({ kvm: true }));
  assert.ok(has(hv, '-cpu', 'host,hv-relaxed=on,hv-spinlocks=0x1fff'));
  const hugepages = plan(vmi((s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '2Mi' } })), ctx({ hugepageSizes: ['2Mi'] }));
  assert.ok(has(hugepages, '-object', 'memory-backend-file,id=pc.ram,size=128M,mem-path=/dev/hugepages,share=on,prealloc=on'));
  assert.ok(has(hugepages, '-machine', 'q35,memory-backend=pc.ram'));
});

test('what this host cannot do is refused with the field that asks for it', () => {
  refuses(() => vmi((s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '1Gi' } })), 'spec.domain.memory.hugepages.pageSize', /no hugepages of size 1Gi/);
  refuses(() => vmi((s) => (s.domain.features = { hyperv: { relaxed: {} } })), 'spec.domain.features.hyperv', /need KVM/);
  refuses(() => vmi((s) => (s.domain.cpu = { realtime: {} })), 'spec.domain.cpu.realtime', /dedicated host CPUs/);
  refuses(() => vmi((s) => (s.domain.cpu = { isolateEmulatorThread: true, dedicatedCpuPlacement: true })), 'spec.domain.cpu.isolateEmulatorThread', /dedicated host CPUs/);
  refuses(() => vmi((s) => (s.domain.devices.gpus = [{ name: 'g', deviceName: 'nvidia' }])), 'spec.domain.devices.gpus', /host devices/);
  refuses(() => vmi((s) => (s.domain.devices.tpm = {})), 'spec.domain.devices.tpm', /swtpm/);
  refuses(() => vmi((s) => (s.domain.launchSecurity = { sev: {} })), 'spec.domain.launchSecurity', /encrypted/);
  refuses(() => vmi((s) => (s.domain.machine = { type: 's390-ccw-virtio' })), 'spec.domain.machine.type', /q35 or pc/);
  refuses(() => vmi((s) => (s.domain.devices.disks![0].io = 'native')), 'spec.domain.devices.disks[0].io', /cache: none/);
  refuses(() => vmi((s) => (s.domain.devices.interfaces = [{ name: 'default', sriov: {} }])), 'spec.domain.devices.interfaces[0].sriov', /not available/);
  refuses(() => vmi(), 'spec.volumes[0].containerDisk', /not found on the node/, ctx({ volumes: {} }));
  refuses(() => vmi(), 'spec.domain.devices.interfaces[0].name', /was not prepared/, ctx({ interfaces: {} }));
  refuses(() => vmi((s) => (s.architecture = 'arm64')), 'spec.architecture', /amd64 guests only/);
});
