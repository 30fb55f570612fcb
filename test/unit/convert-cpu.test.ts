// The CPU concern: topology with room for hotplugged sockets, model and features,
// Hyper-V enlightenments and KVM flags, and what needs dedicated host CPUs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpu, vcpuCount } from '../../src/launcher/convert/cpu.ts';
import { ctx, has, part, refuses, vmi } from '../helpers/convert.ts';

const kvm = ctx({ kvm: true });

test('topology: the sockets at boot, and as many as the guest may ever have', () => {
  assert.ok(has(part(cpu, vmi()), '-smp', '1,sockets=4,cores=1,threads=1,maxcpus=4'));
  const topo = vmi((s) => (s.domain.cpu = { sockets: 2, cores: 2, threads: 1 }));
  assert.ok(has(part(cpu, topo), '-smp', '4,sockets=8,cores=2,threads=1,maxcpus=16'));
  assert.equal(vcpuCount(topo), 4);
});

test('model: host-model is the host CPU on KVM and qemu64 on TCG; features are switched on and off', () => {
  assert.ok(has(part(cpu, vmi()), '-cpu', 'qemu64'), 'host-model becomes a TCG model without KVM');
  assert.ok(has(part(cpu, vmi(), kvm), '-cpu', 'host'));
  const features = [
    { name: 'pcid', policy: 'require' },
    { name: 'x2apic', policy: 'disable' },
  ];
  const haswell = vmi((s) => (s.domain.cpu = { model: 'Haswell', features }));
  assert.ok(has(part(cpu, haswell), '-cpu', 'Haswell,+pcid,-x2apic'));
  refuses(
    () =>
      part(
        cpu,
        vmi((s) => (s.domain.cpu = { features: [{ name: 'a,b' }] })),
      ),
    'spec.domain.cpu.features[0].name',
    /not a CPU feature name/,
  );
});

test('Hyper-V enlightenments and KVM flags, on KVM only', () => {
  const hv = vmi((s) => (s.domain.features = { hyperv: { relaxed: { enabled: true }, spinlocks: { enabled: true, spinlocks: 8191 } } }));
  assert.ok(has(part(cpu, hv, kvm), '-cpu', 'host,hv-relaxed=on,hv-spinlocks=0x1fff'));
  const timed = vmi((s) => {
    s.domain.features = { hyperv: { vendorid: { enabled: true, vendorid: 'a,b' } }, kvm: { hidden: true }, pvspinlock: { enabled: false } };
    s.domain.clock = { timer: { hyperv: { present: true }, kvm: { present: false } } };
  });
  assert.ok(has(part(cpu, timed, kvm), '-cpu', 'host,hv-time=on,hv-vendor-id=a,,b,kvm=off,kvm-pv-unhalt=off,kvmclock=off'));
  refuses(
    () =>
      part(
        cpu,
        vmi((s) => (s.domain.features = { hyperv: { relaxed: {} } })),
      ),
    'spec.domain.features.hyperv',
    /need KVM/,
  );
  const hidden = vmi((s) => (s.domain.features = { kvm: { hidden: true } }));
  assert.ok(has(part(cpu, hidden), '-cpu', 'qemu64'), 'no KVM flags without KVM');
});

test('what needs dedicated host CPUs is refused', () => {
  refuses(
    () =>
      part(
        cpu,
        vmi((s) => (s.domain.cpu = { realtime: {} })),
      ),
    'spec.domain.cpu.realtime',
    /dedicated host CPUs/,
  );
  refuses(
    () =>
      part(
        cpu,
        vmi((s) => (s.domain.cpu = { isolateEmulatorThread: true, dedicatedCpuPlacement: true })),
      ),
    'spec.domain.cpu.isolateEmulatorThread',
    /dedicated host CPUs/,
  );
  refuses(
    () =>
      part(
        cpu,
        vmi((s) => (s.domain.cpu = { numa: { guestMappingPassthrough: {} } })),
      ),
    'spec.domain.cpu.numa.guestMappingPassthrough',
    /dedicated host CPUs/,
  );
});
