// VMI → QEMU conversion as a whole: the concerns' parts in argv order, what they
// share (sockets, environment, preparation), and every refusal with its field.
// Each concern's own mapping is tested in convert-<concern>.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, has, plan, refuses, vmi } from '../helpers/convert.ts';

test('the parts come in one order: emulator, memory backing, machine, memory, CPU, firmware, clock, disks, NICs, devices', () => {
  const p = plan(vmi());
  assert.equal(p.binary, 'qemu-system-x86_64');
  assert.deepEqual(p.argv, [
    '-name',
    'guest=ns_vmi-ephemeral,debug-threads=on',
    '-no-user-config',
    '-nodefaults',
    '-S',
    '-msg',
    'timestamp=on',
    '-qmp',
    'unix:/var/run/kubevirt/sockets/qmp.sock,server=on,wait=off',
    '-display',
    'none',
    '-machine',
    'q35',
    '-accel',
    'tcg,tb-size=32',
    '-m',
    'size=128M',
    '-smp',
    '1,sockets=4,cores=1,threads=1,maxcpus=4',
    '-cpu',
    'qemu64',
    '-uuid',
    '00000000-0000-4000-8000-000000000001',
    '-smbios',
    'type=1,manufacturer=KubeVirt,product=None,family=KubeVirt,uuid=00000000-0000-4000-8000-000000000001',
    '-rtc',
    'base=utc',
    '-drive',
    'file=/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2,if=none,id=drive-containerdisk,format=qcow2,cache=writeback,werror=stop,rerror=stop,discard=unmap',
    '-device',
    'virtio-blk-pci,drive=drive-containerdisk,id=ua-containerdisk',
    '-netdev',
    'tap,id=net-default,ifname=tap0,script=no,downscript=no',
    '-device',
    'virtio-net-pci,netdev=net-default,id=ua-default',
    '-chardev',
    'socket,id=charserial0,path=/var/run/kubevirt/sockets/virt-serial0,server=on,wait=off,logfile=/var/run/kubevirt/sockets/virt-serial0-log,logappend=on',
    '-serial',
    'chardev:charserial0',
    '-device',
    'VGA,id=video0',
    '-vnc',
    'unix:/var/run/kubevirt/sockets/virt-vnc',
    '-device',
    'virtio-balloon-pci,id=balloon0,free-page-reporting=on',
    '-device',
    'virtio-serial-pci,id=virtio-serial0',
    '-chardev',
    'socket,id=charchannel0,path=/var/run/kubevirt/sockets/qga.sock,server=on,wait=off',
    '-device',
    'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0',
  ]);
  assert.deepEqual(p.sockets, {
    qmp: '/var/run/kubevirt/sockets/qmp.sock',
    guestAgent: '/var/run/kubevirt/sockets/qga.sock',
    serial: '/var/run/kubevirt/sockets/virt-serial0',
    vnc: '/var/run/kubevirt/sockets/virt-vnc',
  });
  assert.equal(p.serialLog, '/var/run/kubevirt/sockets/virt-serial0-log');
  assert.deepEqual(p.env, {});
});

test('-machine carries the fields of the concerns before it: the hugepages backend defined just before it', () => {
  const p = plan(
    vmi((s) => {
      s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '2Mi' } };
      s.domain.features = { acpi: { enabled: false } };
    }),
    ctx({ hugepageSizes: ['2Mi'] }),
  );
  const object = p.argv.indexOf('memory-backend-file,id=pc.ram,size=128M,mem-path=/dev/hugepages,share=on,prealloc=on');
  assert.ok(object > 0 && p.argv[object + 1] === '-machine' && p.argv[object + 2] === 'q35,acpi=off,memory-backend=pc.ram');
  assert.ok(
    has(
      plan(
        vmi((s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '2Mi' } })),
        ctx({ hugepageSizes: ['2Mi'] }),
      ),
      '-machine',
      'q35,memory-backend=pc.ram',
    ),
  );
});

test('a guest that may grow gets its virtio-mem device last, so every other device keeps its PCI address', () => {
  const fixed = plan(vmi((s) => (s.domain.memory = { guest: '1Gi', maxGuest: '1Gi' })));
  const growing = plan(vmi((s) => (s.domain.memory = { guest: '1Gi', maxGuest: '4Gi' })));
  assert.deepEqual(growing.argv.slice(-4), [
    '-object',
    'memory-backend-ram,id=mem-hotplug,size=3072M,reserve=off',
    '-device',
    'virtio-mem-pci,id=virtio-mem0,memdev=mem-hotplug,block-size=2M,requested-size=0',
  ]);
  const withoutGrowth = growing.argv.slice(0, -4).map((a) => (a === 'size=1024M,slots=1,maxmem=4096M' ? 'size=1024M' : a));
  assert.deepEqual(withoutGrowth, fixed.argv);
});

test('maxGuest, as virt-api defaults it (guest × maxHotplugRatio), reaches QEMU', () => {
  const v = vmi((s) => (s.domain.memory = { guest: '1Gi' }));
  assert.equal(v.spec.domain.memory?.maxGuest, '4Gi');
  const p = plan(v);
  assert.ok(has(p, '-m', 'size=1024M,slots=1,maxmem=4096M'));
  assert.ok(has(p, '-device', /^virtio-mem-pci,.*memdev=mem-hotplug/));
});

test("preparation steps come in concern order: the NVRAM copy, then each disk's", () => {
  const p = plan(vmi((s) => (s.domain.firmware = { bootloader: { efi: { secureBoot: false } } }), 'vmi-nocloud.yaml'));
  assert.deepEqual(
    p.prepare.map((s) => s.kind),
    ['copy', 'containerDiskOverlay', 'iso', 'image'],
  );
});

test('rebootPolicy Terminate turns a guest reboot into an exit (-no-reboot); Reboot and no policy let the guest reboot', () => {
  assert.ok(plan(vmi((s) => (s.domain.rebootPolicy = 'Terminate'))).argv.includes('-no-reboot'));
  assert.ok(!plan(vmi((s) => (s.domain.rebootPolicy = 'Reboot'))).argv.includes('-no-reboot'));
  assert.ok(!plan(vmi()).argv.includes('-no-reboot'));
});

test("the time zone reaches QEMU's environment", () => {
  assert.deepEqual(plan(vmi((s) => (s.domain.clock = { timezone: 'Europe/Berlin' }))).env, { TZ: 'Europe/Berlin' });
});

test('what this host cannot do is refused with the field that asks for it', () => {
  const refused = (edit: Parameters<typeof vmi>[0], field: string, message: RegExp, c = ctx()) =>
    refuses(() => plan(vmi(edit), c), field, message);
  refused(
    (s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '1Gi' } }),
    'spec.domain.memory.hugepages.pageSize',
    /no hugepages of size 1Gi \(it offers none\)/,
  );
  refused(
    (s) => (s.domain.memory = { guest: '1Gi', hugepages: { pageSize: '1Gi' } }),
    'spec.domain.memory.hugepages.pageSize',
    /no hugepages of size 1Gi \(it offers: 2Mi\)/,
    ctx({ hugepageSizes: ['2Mi'] }),
  );
  refused((s) => (s.domain.memory = { guest: '1025Mi', maxGuest: '4Gi' }), 'spec.domain.memory.maxGuest', /multiples of 2Mi/);
  refused((s) => (s.domain.features = { hyperv: { relaxed: {} } }), 'spec.domain.features.hyperv', /need KVM/);
  refused((s) => (s.domain.cpu = { realtime: {} }), 'spec.domain.cpu.realtime', /dedicated host CPUs/);
  refused(
    (s) => (s.domain.cpu = { isolateEmulatorThread: true, dedicatedCpuPlacement: true }),
    'spec.domain.cpu.isolateEmulatorThread',
    /dedicated host CPUs/,
  );
  refused((s) => (s.domain.devices.gpus = [{ name: 'g', deviceName: 'nvidia' }]), 'spec.domain.devices.gpus', /host devices/);
  refused((s) => (s.domain.devices.tpm = {}), 'spec.domain.devices.tpm', /swtpm/);
  refused((s) => (s.domain.launchSecurity = { sev: {} }), 'spec.domain.launchSecurity', /encrypted/);
  refused((s) => (s.domain.machine = { type: 's390-ccw-virtio' }), 'spec.domain.machine.type', /q35 or pc/);
  refused((s) => (s.domain.devices.disks![0].io = 'native'), 'spec.domain.devices.disks[0].io', /cache: none/);
  refused(
    (s) => (s.domain.devices.interfaces = [{ name: 'default', sriov: {} }]),
    'spec.domain.devices.interfaces[0].sriov',
    /not available/,
  );
  refused(() => {}, 'spec.volumes[0].containerDisk', /not found on the node/, ctx({ volumes: {} }));
  refused(() => {}, 'spec.domain.devices.interfaces[0].name', /was not prepared/, ctx({ interfaces: {} }));
  refused((s) => (s.architecture = 'arm64'), 'spec.architecture', /amd64 guests only/);
});
