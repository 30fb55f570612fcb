// How much RAM a guest has when memory.guest is not written, as upstream reads
// it: its memory request, else its limit, else one page of its hugepages size.
// virt-api writes the answer into memory.guest; virt-controller sizes the pod by it.
import type { VirtualMachineInstanceSpec } from './types.ts';
import { isZeroQuantity, parseQuantity } from './quantity.ts';

export function guestMemoryOf(spec: VirtualMachineInstanceSpec): string | number | undefined {
  const memory = spec.domain.memory;
  if (memory?.guest !== undefined) return memory.guest;
  const { requests, limits } = spec.domain.resources ?? {};
  if (!isZeroQuantity(requests?.memory)) return requests!.memory;
  if (!isZeroQuantity(limits?.memory)) return limits!.memory;
  if (!memory?.hugepages?.pageSize) return undefined;
  try {
    parseQuantity(memory.hugepages.pageSize);
    return memory.hugepages.pageSize;
  } catch {
    // an unparsable page size is reported by validation
    return undefined;
  }
}
