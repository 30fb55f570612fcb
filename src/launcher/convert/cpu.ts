// vCPUs: topology (with room for hotplugged sockets), model and features, Hyper-V
// enlightenments and KVM's paravirtual flags.
import type { VirtualMachineInstance } from '../../api/types.ts';
import { type Concern, type ConversionContext, ConversionError, refuseAny } from './plan.ts';
import { esc, opts } from './qemu-options.ts';

const topology = (vmi: VirtualMachineInstance) => {
  const cpu = vmi.spec.domain.cpu ?? {};
  return { sockets: cpu.sockets || 1, cores: cpu.cores || 1, threads: cpu.threads || 1 };
};

/** The vCPUs present at boot. */
export function vcpuCount(vmi: VirtualMachineInstance): number {
  const { sockets, cores, threads } = topology(vmi);
  return sockets * cores * threads;
}

function modelAndFeatures(vmi: VirtualMachineInstance, ctx: ConversionContext): string[] {
  const cpu = vmi.spec.domain.cpu ?? {};
  const model = cpu.model ?? 'host-model';
  // Without KVM there is no host CPU to pass through: TCG's qemu64 stands in.
  const qemuModel = model === 'host-model' || model === 'host-passthrough' ? (ctx.kvm ? 'host' : 'qemu64') : model;
  const features = (cpu.features ?? []).map((feature, i) => {
    if (!/^[a-z0-9_.-]+$/i.test(feature.name)) {
      throw new ConversionError(`spec.domain.cpu.features[${i}].name`, `${feature.name} is not a CPU feature name`);
    }
    const off = feature.policy === 'disable' || feature.policy === 'forbid';
    return `${off ? '-' : '+'}${feature.name}`;
  });
  return [qemuModel, ...features];
}

function hypervFlags(vmi: VirtualMachineInstance, ctx: ConversionContext): string[] {
  const { features, clock } = vmi.spec.domain;
  const hv = features?.hyperv;
  if (!hv) return [];
  if (!ctx.kvm) {
    throw new ConversionError(
      'spec.domain.features.hyperv',
      'Hyper-V enlightenments need KVM, and this node runs guests in software emulation',
    );
  }
  const switches: [boolean | undefined, string][] = [
    [hv.relaxed?.enabled, 'hv-relaxed'],
    [hv.vapic?.enabled, 'hv-vapic'],
    [hv.vpindex?.enabled, 'hv-vpindex'],
    [hv.runtime?.enabled, 'hv-runtime'],
    [hv.synic?.enabled, 'hv-synic'],
    [hv.synictimer?.enabled, 'hv-stimer'],
    [hv.reset?.enabled, 'hv-reset'],
    [hv.frequencies?.enabled, 'hv-frequencies'],
    [hv.reenlightenment?.enabled, 'hv-reenlightenment'],
    [hv.tlbflush?.enabled, 'hv-tlbflush'],
    [hv.ipi?.enabled, 'hv-ipi'],
    [hv.evmcs?.enabled, 'hv-evmcs'],
    [clock?.timer?.hyperv?.present, 'hv-time'],
  ];
  const flags = switches.filter(([on]) => on).map(([, flag]) => `${flag}=on`);
  if (hv.spinlocks?.enabled) flags.push(`hv-spinlocks=0x${(hv.spinlocks.spinlocks ?? 4096).toString(16)}`);
  if (hv.vendorid?.enabled && hv.vendorid.vendorid) flags.push(`hv-vendor-id=${esc(hv.vendorid.vendorid)}`);
  return flags;
}

function kvmFlags(vmi: VirtualMachineInstance, ctx: ConversionContext): string[] {
  if (!ctx.kvm) return [];
  const { features, clock } = vmi.spec.domain;
  const flags: string[] = [];
  if (features?.kvm?.hidden) flags.push('kvm=off');
  if (features?.pvspinlock?.enabled === false) flags.push('kvm-pv-unhalt=off');
  if (clock?.timer?.kvm?.present === false) flags.push('kvmclock=off');
  return flags;
}

export const cpu: Concern = (vmi, ctx) => {
  const spec = vmi.spec.domain.cpu ?? {};
  const dedicatedCpus = 'dedicated host CPUs, which this node does not offer';
  refuseAny([
    [spec.realtime, 'spec.domain.cpu.realtime', `realtime vCPUs need ${dedicatedCpus}`],
    [spec.numa?.guestMappingPassthrough, 'spec.domain.cpu.numa.guestMappingPassthrough', `NUMA passthrough needs ${dedicatedCpus}`],
    [spec.isolateEmulatorThread, 'spec.domain.cpu.isolateEmulatorThread', `an isolated emulator thread needs ${dedicatedCpus}`],
  ]);
  const { sockets, cores, threads } = topology(vmi);
  const maxSockets = Math.max(spec.maxSockets || sockets, sockets);
  return {
    argv: [
      // QEMU's sockets count is the most the guest can ever have; the first vcpus are present at boot.
      '-smp',
      opts(String(vcpuCount(vmi)), { sockets: maxSockets, cores, threads, maxcpus: maxSockets * cores * threads }),
      '-cpu',
      [...modelAndFeatures(vmi, ctx), ...hypervFlags(vmi, ctx), ...kvmFlags(vmi, ctx)].join(','),
    ],
  };
};
