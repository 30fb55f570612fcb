// Defaults a VirtualMachine on create and update, as upstream's VM mutating webhook does.
import type { VirtualMachine } from '../types.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import { PCI_TOPOLOGY_VERSION, PCI_TOPOLOGY_VERSION_ANNOTATION } from '../constants.ts';
import { VirtualMachineSpec as SpecSchema } from '../schema/kinds.ts';
import { canonicalizeQuantities } from './quantities.ts';
import { settingsArchitecture, type DefaultingContext } from './vmi.ts';

export function defaultVm(
  vm: VirtualMachine,
  config: ClusterConfig,
  ctx: DefaultingContext,
  operation: 'CREATE' | 'UPDATE',
): VirtualMachine {
  const out = structuredClone(vm);
  if (out.metadata.deletionTimestamp) return out;
  const template = out.spec.template;
  if (!template?.spec) return out;
  const spec = template.spec;
  spec.domain ??= { devices: {} };
  if (operation === 'CREATE') {
    const firmware = (spec.domain.firmware ??= {});
    firmware.uuid ||= ctx.newUUID();
    firmware.serial ||= ctx.newUUID();
  }
  spec.architecture ||= config.defaultArchitecture;
  spec.domain.machine ??= {};
  spec.domain.machine.type ||= config.machineType(settingsArchitecture(spec.architecture));
  if (operation === 'CREATE') {
    const type = spec.domain.machine.type;
    if (['amd64', 'arm64'].includes(spec.architecture) && (type.includes('q35') || type.startsWith('virt'))) {
      template.metadata ??= {};
      template.metadata.annotations ??= {};
      template.metadata.annotations[PCI_TOPOLOGY_VERSION_ANNOTATION] ??= PCI_TOPOLOGY_VERSION;
    }
  }
  out.spec = canonicalizeQuantities(SpecSchema(), out.spec);
  return out;
}
