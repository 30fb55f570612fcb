// Fixtures for the VMI → QEMU conversion tests: a node, defaulted example VMIs,
// and ways to call one concern and read the options it gave.
import assert from 'node:assert/strict';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceSpec } from '../../src/api/types.ts';
import { convertVmiToQemu, ConversionError, type ConversionContext } from '../../src/launcher/convert.ts';
import { type Concern, emptyPlan, type PlanPart, type PlanSoFar } from '../../src/launcher/convert/plan.ts';
import { defaultConfig, example, fixedContext } from './fixtures.ts';

export function ctx(over: Partial<ConversionContext> = {}): ConversionContext {
  return {
    workdir: '/var/run/kubevirt-private/vmi',
    ephemeralDisks: '/var/run/kubevirt-ephemeral-disks',
    socketDir: '/var/run/kubevirt/sockets',
    kvm: false,
    hugepageSizes: [],
    firmware: {
      ovmfCode: '/ovmf/CODE.fd',
      ovmfSecureCode: '/ovmf/CODE.secboot.fd',
      ovmfVars: '/ovmf/VARS.fd',
      ovmfSecureVars: '/ovmf/VARS.ms.fd',
    },
    interfaces: { default: { tap: 'tap0' } },
    volumes: {
      containerDisks: { containerdisk: '/var/run/kubevirt/container-disks/disk_0.img' },
      claims: { pvcdisk: { path: '/var/run/kubevirt-private/vmi-disks/pvcdisk', mode: 'Filesystem', capacityBytes: 1 << 30 } },
      kernel: '/kernel/vmlinuz',
      initrd: '/kernel/initrd',
    },
    smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' },
    now: new Date('2026-01-01T00:00:00Z'),
    ...over,
  };
}

/** An upstream example VMI in namespace ns, edited, then defaulted as virt-api would. */
export function vmi(edit: (spec: VirtualMachineInstanceSpec) => void = () => {}, file = 'vmi-ephemeral.yaml'): VirtualMachineInstance {
  const v = example<VirtualMachineInstance>(file);
  v.metadata.namespace = 'ns';
  edit(v.spec);
  return defaultNewVmi(v, defaultConfig(), fixedContext());
}

/** What one concern adds, after the given plan (by default, the plan before any concern). */
export const part = (concern: Concern, v: VirtualMachineInstance, c = ctx(), plan: PlanSoFar = emptyPlan(c)): PlanPart =>
  concern(v, c, plan);

/** The value following each occurrence of an option, e.g. every -device. */
export const values = (p: { argv: readonly string[] }, option: string) => p.argv.flatMap((a, i) => (a === option ? [p.argv[i + 1]] : []));

export const has = (p: { argv: readonly string[] }, option: string, pattern: RegExp | string) =>
  values(p, option).some((v) => (typeof pattern === 'string' ? v === pattern : pattern.test(v)));

/** That the conversion (whole, or one concern of it) refuses with this field and a message like this. */
export function refuses(convert: () => unknown, field: string, message: RegExp) {
  assert.throws(convert, (e: unknown) => e instanceof ConversionError && e.field === field && message.test(e.message));
}

export const plan = (v: VirtualMachineInstance, c = ctx()) => convertVmiToQemu(v, c);
