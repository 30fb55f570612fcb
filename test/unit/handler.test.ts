// virt-handler's pure parts and its path checks: the pod network plan, the
// DHCP answers, VMI status from domain events, and symlink refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { answer, DHCP, parseRequest } from '../../src/launcher/dhcp.ts';
import { generatedMac, networkScript, parsePodInterface, planPodNetwork } from '../../src/handler/network.ts';
import { resolveInside, UnsafePathError } from '../../src/handler/paths.ts';
import { checkClaimImages, claimImageBytes } from '../../src/handler/disks.ts';
import { podVolumePaths } from '../../src/handler/launcher-host.ts';
import { cgroupOf, controllerMountOf } from '../../src/handler/cgroup.ts';
import { commandRunner } from '../../src/handler/runner.ts';
import { phaseOf, statusChanged, withObservedStatus, type Observed } from '../../src/handler/status.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
const vmi = (name: string): VirtualMachineInstance => {
  const v = defaultNewVmi(
    {
      ...example<VirtualMachineInstance>(name),
      metadata: { ...example<VirtualMachineInstance>(name).metadata, namespace: 'ns', uid: 'uid-1' },
    },
    config,
    fixedContext(),
  );
  v.status = { ...v.status, phase: 'Scheduled', nodeName: 'node01' };
  return v;
};
const pod = { ip: '10.244.0.7', prefixLength: 24, gateway: '10.244.0.1', mac: '9a:00:00:00:00:07', mtu: 1450 };

test('masquerade: bridge, tap for UID 107, NAT of only the declared ports, DHCP for 10.0.2.2', () => {
  const plan = planPodNetwork(vmi('vmi-masquerade.yaml'), pod);
  const text = plan.commands.map((c) => c.join(' '));
  assert.ok(text.includes('ip tuntap add dev tap0 mode tap user 107 group 107'));
  assert.ok(text.includes('iptables -t nat -A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 10.0.2.2'));
  assert.ok(!text.some((c) => /PREROUTING -i eth0 -j DNAT/.test(c)), 'only the declared port is forwarded');
  const mac = generatedMac('uid-1', 'testmasquerade');
  assert.deepEqual(plan.attachments, { testmasquerade: { tap: 'tap0', mac } }, 'the guest NIC gets the leased MAC');
  assert.match(mac, /^02(:[0-9a-f]{2}){5}$/);
  assert.deepEqual(plan.dhcp, [
    { mac, ip: '10.0.2.2', prefixLength: 24, router: '10.0.2.1', serverIp: '10.0.2.1', hostname: 'vmi-masquerade', mtu: 1450 },
  ]);
  assert.equal(plan.interfaces[0].ipAddress, '10.244.0.7', 'the VMI reports the pod IP');
  const all = vmi('vmi-masquerade.yaml');
  delete all.spec.domain.devices.interfaces![0].ports;
  assert.ok(
    planPodNetwork(all, pod).commands.some(
      (c) => c.join(' ') === 'iptables -t nat -A PREROUTING -i eth0 -j DNAT --to-destination 10.0.2.2',
    ),
  );
});

test("the network plan runs as one script with one ip -batch and one iptables-restore, in the plan's order", () => {
  const plan = planPodNetwork(vmi('vmi-masquerade.yaml'), pod);
  const script = networkScript(plan.commands, (tool) => `/bin/${tool}`);
  assert.equal(script.match(/^\/bin\/ip -batch - <<'EOF'$/gm)?.length, 1);
  assert.equal(script.match(/^\/bin\/iptables-restore --noflush <<'EOF'$/gm)?.length, 1);
  assert.ok(!/^\/bin\/(sysctl|iptables) /m.test(script), 'sysctls by the shell, rules in one restore');
  assert.match(script, /^echo 0 > \/proc\/sys\/net\/ipv4\/ip_unprivileged_port_start$/m);
  assert.match(script, /^tuntap add dev tap0 mode tap user 107 group 107$/m);
  assert.match(
    script,
    /^\*nat\n-A POSTROUTING -s 10\.0\.2\.2 -o eth0 -j MASQUERADE\n-A PREROUTING -i eth0 -p tcp --dport 80 -j DNAT --to-destination 10\.0\.2\.2\nCOMMIT$/m,
  );
  const order = ['ip_forward', 'link add k6t-eth0', 'neigh replace', '*nat'].map((text) => script.indexOf(text));
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
  );
  assert.throws(() => networkScript([['ethtool', '-K', 'eth0']], (t) => t), /no way to run ethtool/);
});

test("bridge: the guest takes the pod's IP and MAC; eth0 gets another MAC", () => {
  const plan = planPodNetwork(vmi('vmi-nocloud.yaml'), pod);
  const text = plan.commands.map((c) => c.join(' '));
  assert.ok(text.includes('ip addr flush dev eth0'));
  assert.ok(text.includes('ip link set eth0 master k6t-eth0 up'));
  assert.ok(
    text.indexOf('ip link set dev eth0 type bridge_slave learning off') > text.indexOf('ip link set eth0 master k6t-eth0 up'),
    "the guest's MAC is never learned on the pod side",
  );
  assert.deepEqual(plan.dhcp[0], {
    mac: '9a:00:00:00:00:07',
    ip: '10.244.0.7',
    prefixLength: 24,
    router: '10.244.0.1',
    serverIp: '169.254.75.10',
    hostname: 'vmi-nocloud',
    mtu: 1450,
  });
});

test('the pod interface is read from ip -j output', () => {
  const addr = JSON.stringify([
    {
      ifname: 'eth0',
      mtu: 1450,
      address: '9a:00:00:00:00:07',
      addr_info: [
        { family: 'inet', local: '10.244.0.7', prefixlen: 24 },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
      ],
    },
  ]);
  assert.deepEqual(parsePodInterface(addr, JSON.stringify([{ dst: 'default', gateway: '10.244.0.1' }])), pod);
});

function dhcpPacket(type: number, mac: number[], requested?: number[]): Buffer {
  const b = Buffer.alloc(300);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0xdeadbeef, 4);
  Buffer.from(mac).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const options = [53, 1, type, ...(requested ? [50, 4, ...requested] : []), 255];
  Buffer.from(options).copy(b, 240);
  return b;
}

test("DHCP: an offer and an ack of the lease for the guest's MAC, a NAK for another address, silence for strangers", () => {
  const lease = {
    mac: '02:00:00:00:00:01',
    ip: '10.0.2.2',
    prefixLength: 24,
    router: '10.0.2.1',
    serverIp: '10.0.2.1',
    dns: ['10.96.0.10'],
    searchDomains: ['ns.svc.cluster.local'],
    hostname: 'g',
    mtu: 1450,
  };
  const discover = parseRequest(dhcpPacket(DHCP.DISCOVER, [2, 0, 0, 0, 0, 1]))!;
  assert.equal(discover.mac, '02:00:00:00:00:01');
  const offer = answer(discover, [lease])!;
  assert.equal(offer.to, '10.0.2.2');
  assert.equal(offer.reply[0], 2);
  assert.deepEqual([...offer.reply.subarray(16, 20)], [10, 0, 2, 2]);
  assert.deepEqual([...offer.reply.subarray(240, 243)], [53, 1, DHCP.OFFER]);
  const opts = offer.reply.subarray(240);
  assert.ok(opts.includes(Buffer.from([1, 4, 255, 255, 255, 0])), 'subnet mask');
  assert.ok(opts.includes(Buffer.from([3, 4, 10, 0, 2, 1])), 'router');
  assert.ok(opts.includes(Buffer.from([6, 4, 10, 96, 0, 10])), 'DNS');
  assert.ok(opts.includes(Buffer.from([26, 2, 1450 >> 8, 1450 & 255])), 'MTU');
  const ack = answer(parseRequest(dhcpPacket(DHCP.REQUEST, [2, 0, 0, 0, 0, 1], [10, 0, 2, 2]))!, [lease])!;
  assert.deepEqual([...ack.reply.subarray(240, 243)], [53, 1, DHCP.ACK]);
  const nak = answer(parseRequest(dhcpPacket(DHCP.REQUEST, [2, 0, 0, 0, 0, 1], [10, 0, 2, 9]))!, [lease])!;
  assert.deepEqual([...nak.reply.subarray(240, 243)], [53, 1, DHCP.NAK]);
  assert.equal(answer(parseRequest(dhcpPacket(DHCP.DISCOVER, [2, 0, 0, 0, 0, 9]))!, [lease]), undefined);
});

test('VMI phase from the domain: Running, Succeeded for a shutdown or a requested stop, Failed for a crash or a kill', () => {
  assert.equal(phaseOf({ state: 'Paused', reason: 'StartingUp' }), undefined);
  assert.equal(phaseOf({ state: 'Running', reason: 'Booted' }), 'Running');
  assert.equal(phaseOf({ state: 'Shutoff', reason: 'Shutdown' }), 'Succeeded');
  assert.equal(phaseOf({ state: 'Shutoff', reason: 'Destroyed', gracefulShutdownRequested: true }), 'Succeeded');
  assert.equal(phaseOf({ state: 'Shutoff', reason: 'Destroyed' }), 'Failed');
  assert.equal(phaseOf({ state: 'Crashed', reason: 'Failed' }), 'Failed');
});

test('status: Running with Paused, LiveMigratable, AgentConnected, interfaces and guest OS; a gone launcher decides by its exit code', () => {
  const v = vmi('vmi-masquerade.yaml');
  const interfaces = [{ name: 'testmasquerade', mac: '02:00:00:00:00:01', ipAddress: '10.244.0.7' }];
  const next = withObservedStatus(
    v,
    {
      domain: { state: 'Paused', reason: 'User' },
      guest: { hostname: 'g', os: { id: 'kvts-guest', 'kernel-release': '6.1' } },
      interfaces,
    },
    'T',
  );
  assert.equal(next.status?.phase, 'Running');
  assert.deepEqual(next.status?.phaseTransitionTimestamps?.at(-1), { phase: 'Running', phaseTransitionTimestamp: 'T' });
  const types = Object.fromEntries(next.status!.conditions!.map((c) => [c.type, c.status]));
  // A masqueraded guest on containerDisks can move.
  assert.deepEqual([types.Paused, types.LiveMigratable, types.AgentConnected], ['True', 'True', 'True']);
  assert.equal(next.status?.interfaces?.[0].infoSource, 'domain, guest-agent');
  assert.deepEqual(next.status?.guestOSInfo, { id: 'kvts-guest', kernelRelease: '6.1' });
  const running = { ...v, status: { ...v.status, phase: 'Running' } };
  assert.equal(withObservedStatus(running, { launcherExitCode: 137 }, 'T').status?.phase, 'Failed');
  assert.equal(withObservedStatus(running, { launcherExitCode: 0 }, 'T').status?.phase, 'Succeeded');
  const failedSync = withObservedStatus(
    v,
    { syncError: 'volumecontainerdisk: /disk/disk.qcow2 is a symbolic link; refusing to follow it' },
    'T',
  );
  assert.equal(
    failedSync.status?.conditions?.find((c) => c.type === 'Synchronized')?.message,
    'volumecontainerdisk: /disk/disk.qcow2 is a symbolic link; refusing to follow it',
  );
});

test("status: fsFreezeStatus is 'frozen' while the agent says so, gone once it says thawed or the guest stops, kept while it is silent", () => {
  const v = vmi('vmi-masquerade.yaml');
  const running = { state: 'Running', reason: 'Booted' } as const;
  const frozen = withObservedStatus(v, { domain: running, guest: { fsFreezeStatus: 'frozen' } }, 'T');
  assert.equal(frozen.status?.fsFreezeStatus, 'frozen');
  assert.equal(withObservedStatus(frozen, { domain: running }, 'T').status?.fsFreezeStatus, 'frozen');
  assert.equal(withObservedStatus(frozen, { domain: running, guest: { fsFreezeStatus: 'thawed' } }, 'T').status?.fsFreezeStatus, undefined);
  assert.equal(withObservedStatus(frozen, { domain: { state: 'Shutoff', reason: 'Shutdown' } }, 'T').status?.fsFreezeStatus, undefined);
});

/** An object as kube-apiserver returns it: every object's keys sorted. */
const asStored = <T>(value: T): T =>
  JSON.parse(
    JSON.stringify(value, (_key, v) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
    ),
  );

test('a status kube-apiserver stored (keys sorted) is no change, so a running VMI is not written again on every reconcile', () => {
  const observed: Observed = {
    domain: { state: 'Running', reason: 'Unknown' },
    guest: { hostname: 'g', os: { id: 'kvts-guest', 'kernel-release': '6.1' } },
    podReady: 'True',
    interfaces: planPodNetwork(vmi('vmi-masquerade.yaml'), pod).interfaces,
  };
  const written = asStored(withObservedStatus(vmi('vmi-masquerade.yaml'), observed, 'T1'));
  assert.notEqual(
    JSON.stringify(written.status?.interfaces),
    JSON.stringify(withObservedStatus(written, observed, 'T2').status?.interfaces),
    'the keys come back in another order',
  );
  assert.equal(statusChanged(written, withObservedStatus(written, observed, 'T2')), false);
  assert.equal(
    statusChanged(written, withObservedStatus(written, { ...observed, domain: { state: 'Paused', reason: 'User' } }, 'T2')),
    true,
  );
});

test("a container's CPU and devices cgroups are found from the process's cgroups and the host's mounts, v1 and v2", () => {
  const v1 =
    '12:pids:/kubepods/burstable/podU/C\n4:cpu:/kubepods/burstable/podU/C\n3:cpuacct:/kubepods/burstable/podU/C\n1:name=systemd:/kubepods/burstable/podU/C\n';
  assert.deepEqual(cgroupOf(v1, 'cpu'), { path: '/kubepods/burstable/podU/C', v2: false });
  assert.deepEqual(cgroupOf(`5:devices:/kubepods/burstable/podU/D\n${v1}`, 'devices'), { path: '/kubepods/burstable/podU/D', v2: false });
  assert.equal(cgroupOf(v1, 'devices'), undefined);
  assert.deepEqual(cgroupOf('0::/kubepods.slice/kubepods-burstable.slice/x.slice/cri-containerd-C.scope\n', 'cpu'), {
    path: '/kubepods.slice/kubepods-burstable.slice/x.slice/cri-containerd-C.scope',
    v2: true,
  });
  assert.equal(cgroupOf('9:name=systemd:/\n', 'cpu'), undefined);
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '34 31 0:31 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
  ].join('\n');
  assert.equal(controllerMountOf(mountinfo, 'cpu', false), '/sys/fs/cgroup/cpu');
  assert.equal(controllerMountOf(mountinfo, 'devices', false), '/sys/fs/cgroup/devices');
  assert.equal(controllerMountOf(mountinfo, 'pids', false), undefined);
  assert.equal(controllerMountOf('40 23 0:27 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw,nsdelegate', 'cpu', true), '/sys/fs/cgroup');
  assert.equal(controllerMountOf(mountinfo, 'cpu', true), undefined);
});

test('paths inside pods are refused at the first symbolic link, and must be of the expected kind', () => {
  const root = mkdtempSync(join(tmpdir(), 'kvts-paths-'));
  mkdirSync(join(root, 'disk'));
  writeFileSync(join(root, 'disk', 'good.qcow2'), '');
  symlinkSync('/etc/shadow', join(root, 'disk', 'evil.qcow2'));
  symlinkSync('/etc', join(root, 'linkdir'));
  assert.equal(resolveInside(root, 'disk/good.qcow2', 'file'), join(root, 'disk', 'good.qcow2'));
  assert.throws(
    () => resolveInside(root, 'disk/evil.qcow2', 'file'),
    (e: Error) => e instanceof UnsafePathError && /disk\/evil.qcow2 is a symbolic link/.test(e.message),
  );
  assert.throws(() => resolveInside(root, 'linkdir/shadow', 'file'), /\/linkdir is a symbolic link/);
  assert.throws(() => resolveInside(root, '../etc/passwd', 'file'), /".." is not allowed/);
  assert.throws(() => resolveInside(root, 'disk', 'file'), /is a directory, not a file/);
});

test("the heartbeat labels the node schedulable with its CPU vendor and features, and advertises KVM as upstream's resource", async () => {
  const { cpuLabels, heartbeatPatch, kvmCapacityPatch } = await import('../../src/handler/heartbeat.ts');
  const cpu = cpuLabels('vendor_id\t: GenuineIntel\nflags\t\t: fpu sse4_2 avx2 aes hypervisor\n');
  assert.deepEqual(cpu, {
    'cpu-vendor.node.kubevirt.io/Intel': 'true',
    'cpu-feature.node.kubevirt.io/aes': 'true',
    'cpu-feature.node.kubevirt.io/avx2': 'true',
    'cpu-feature.node.kubevirt.io/sse4_2': 'true',
  });
  assert.deepEqual(heartbeatPatch(new Date('2026-11-22T10:00:00.123Z'), true, cpu, true), {
    metadata: {
      labels: { ...cpu, 'kubevirt.io/schedulable': 'true' },
      annotations: { 'kubevirt.io/heartbeat': '2026-11-22T10:00:00Z', 'kubevirt.io/software-emulation': 'true' },
    },
  });
  assert.deepEqual(kvmCapacityPatch(false), {
    status: { capacity: { 'devices.kubevirt.io/kvm': '0' }, allocatable: { 'devices.kubevirt.io/kvm': '0' } },
  });
});

test('commands run on worker threads: stdout back, a failure names the command and its stderr, and commands overlap', async () => {
  const run = commandRunner(2, 300);
  assert.equal(run.workers(), 0, 'no worker before the first command');
  assert.equal(await run(['sh', '-c', 'echo "$0"', 'hello']), 'hello\n');
  await assert.rejects(run(['sh', '-c', 'echo broken >&2; exit 3']), /^Error: sh -c echo broken >&2; exit 3: broken$/);
  const started = performance.now();
  await Promise.all([run(['sleep', '1']), run(['sleep', '1']), run(['sleep', '1'])]);
  assert.ok(performance.now() - started < 1900, 'three one-second commands on two workers end together');
  assert.equal(run.workers(), 2);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(run.workers(), 0, 'idle workers end');
  assert.equal(await run(['echo', 'again']), 'again\n');
});

/** vmi-pvc with a DataVolume's claim besides its own, and the claim info virt-controller wrote. */
function vmiOnClaims(info: Record<string, Record<string, unknown> | undefined>): VirtualMachineInstance {
  const v = vmi('vmi-pvc.yaml');
  v.spec.volumes = [
    { name: 'pvcdisk', persistentVolumeClaim: { claimName: 'disk-alpine' } },
    { name: 'rootdisk', dataVolume: { name: 'root-dv' } },
    { name: 'scratch', ephemeral: { persistentVolumeClaim: { claimName: 'golden' } } },
  ];
  v.status!.volumeStatus = Object.entries(info).map(([name, persistentVolumeClaimInfo]) => ({
    name,
    target: '',
    ...(persistentVolumeClaimInfo ? { persistentVolumeClaimInfo } : {}),
  }));
  return v;
}

test("claims as the launcher gets them: dataVolume volumes too; a Block claim is its device; a Filesystem one's disk.img is sized from the claim", () => {
  const Mi = 1024 * 1024;
  const paths = podVolumePaths(
    vmiOnClaims({
      pvcdisk: { claimName: 'disk-alpine', volumeMode: 'Block', capacity: { storage: '2Gi' } },
      rootdisk: { claimName: 'root-dv', volumeMode: 'Filesystem', requests: { storage: '1Gi' }, capacity: { storage: '2Gi' } },
    }),
  );
  assert.deepEqual(paths.claims, {
    pvcdisk: { path: '/dev/pvcdisk', mode: 'Block' },
    rootdisk: { path: '/var/run/kubevirt-private/vmi-disks/rootdisk', mode: 'Filesystem', capacityBytes: 1024 * Mi },
    scratch: { path: '/var/run/kubevirt-private/vmi-disks/scratch', mode: 'Filesystem' },
  });
  const unknown = podVolumePaths(vmiOnClaims({}));
  assert.deepEqual(
    unknown.claims?.rootdisk,
    { path: '/var/run/kubevirt-private/vmi-disks/rootdisk', mode: 'Filesystem' },
    'without the claim info the image must exist, as upstream leaves the volume be',
  );
  // The request when smaller, else the capacity; aligned down to 1 MiB; neither, or under 1 MiB, is an error.
  assert.equal(claimImageBytes('v', { requests: { storage: '3Gi' }, capacity: { storage: '2Gi' } }), 2048 * Mi);
  assert.equal(claimImageBytes('v', { requests: { storage: '1G' } }), Math.floor(1e9 / Mi) * Mi);
  assert.equal(claimImageBytes('v', { capacity: { storage: `${5 * Mi + 123}` } }), 5 * Mi);
  assert.throws(
    () => claimImageBytes('v', {}),
    /volume v: unable to size its disk image: its PVC provides no storage capacity or requests/,
  );
  assert.throws(() => claimImageBytes('v', { requests: { storage: '1Ki' } }), /less than 1 MiB/);
});

test("claim checks: a disk.img may be missing but never a link; a claim's device must be a block device, not a link to one", () => {
  const root = mkdtempSync(join(tmpdir(), 'kvts-compute-'));
  const blockInfo = { pvcdisk: { volumeMode: 'Block' }, rootdisk: { volumeMode: 'Filesystem', requests: { storage: '1Gi' } } };
  checkClaimImages(vmiOnClaims(blockInfo), root);
  mkdirSync(join(root, 'var/run/kubevirt-private/vmi-disks/rootdisk'), { recursive: true });
  symlinkSync('/etc/shadow', join(root, 'var/run/kubevirt-private/vmi-disks/rootdisk/disk.img'));
  assert.throws(() => checkClaimImages(vmiOnClaims(blockInfo), root), /volume rootdisk: .*symbolic link/);
  const clean = mkdtempSync(join(tmpdir(), 'kvts-compute-'));
  mkdirSync(join(clean, 'dev'));
  symlinkSync('/dev/sda', join(clean, 'dev/pvcdisk'));
  assert.throws(() => checkClaimImages(vmiOnClaims(blockInfo), clean), /volume pvcdisk: \/dev\/pvcdisk is a symbolic link/);
  const file = mkdtempSync(join(tmpdir(), 'kvts-compute-'));
  mkdirSync(join(file, 'dev'));
  writeFileSync(join(file, 'dev/pvcdisk'), '');
  assert.throws(() => checkClaimImages(vmiOnClaims(blockInfo), file), /\/dev\/pvcdisk is not a block device/);
  // As a Filesystem claim the same volume is only a mount with a disk.img in it.
  checkClaimImages(vmiOnClaims({ pvcdisk: { volumeMode: 'Filesystem', capacity: { storage: '1Gi' } } }), file);
});
