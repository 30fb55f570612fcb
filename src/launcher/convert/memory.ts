// Guest memory: its size, the hugepages that back it, and the room to grow it
// (memory hotplug) up to spec.domain.memory.maxGuest, as upstream gives a guest
// a maxMemory with one slot and a virtio-mem device.
import type { VirtualMachineInstance } from '../../api/types.ts';
import { binaryQuantity, quantityValue } from '../../api/quantity.ts';
import { POD_PATHS } from '../../contract/launcher-pod.ts';
import { type Concern, type ConversionContext, ConversionError } from './plan.ts';
import { MiB, opts } from './qemu-options.ts';

/** The smallest block virtio-mem plugs: a transparent hugepage on x86_64, as upstream uses. */
const VIRTIO_MEM_BLOCK_BYTES = 2 * MiB;
const GUEST_RAM_BACKEND = 'pc.ram';
const HOTPLUG_BACKEND = 'mem-hotplug';

interface MemoryLayout {
  guestMiB: number;
  /** The hugepage size backing all guest memory, if any. */
  pageSize?: string;
  /** Set when the guest may grow past guestMiB. */
  hotplug?: { maxMiB: number; blockMiB: number };
}

/** The guest's memory as QEMU sizes it, refused where this node or QEMU cannot give it. */
function memoryLayout(vmi: VirtualMachineInstance, ctx: ConversionContext): MemoryLayout {
  const memory = vmi.spec.domain.memory;
  if (memory?.guest === undefined) throw new ConversionError('spec.domain.memory.guest', 'guest memory is not set');
  const guestBytes = quantityValue(memory.guest);
  const guestMiB = Math.floor(guestBytes / MiB);
  if (guestMiB < 1) throw new ConversionError('spec.domain.memory.guest', 'guest memory must be at least 1Mi');
  const pageSize = memory.hugepages?.pageSize;
  if (pageSize && !ctx.hugepageSizes.includes(pageSize)) {
    const offered = ctx.hugepageSizes.length > 0 ? `it offers: ${ctx.hugepageSizes.join(', ')}` : 'it offers none';
    throw new ConversionError('spec.domain.memory.hugepages.pageSize', `this node has no hugepages of size ${pageSize} (${offered})`);
  }
  const maxBytes = memory.maxGuest === undefined ? guestBytes : quantityValue(memory.maxGuest);
  if (maxBytes === guestBytes) return { guestMiB, pageSize };
  if (maxBytes < guestBytes) {
    throw new ConversionError('spec.domain.memory.maxGuest', `maxGuest ${memory.maxGuest} is less than the guest memory ${memory.guest}`);
  }
  // A block cannot be smaller than the pages behind it (1Gi hugepages make 1Gi blocks, as upstream's).
  const blockBytes = Math.max(VIRTIO_MEM_BLOCK_BYTES, pageSize ? quantityValue(pageSize) : 0);
  if (guestBytes % blockBytes !== 0 || maxBytes % blockBytes !== 0) {
    throw new ConversionError(
      'spec.domain.memory.maxGuest',
      `memory hotplug needs the guest memory (${memory.guest}) and maxGuest (${memory.maxGuest}) to be multiples of ` +
        `${binaryQuantity(blockBytes)}, the virtio-mem block size`,
    );
  }
  return { guestMiB, pageSize, hotplug: { maxMiB: maxBytes / MiB, blockMiB: blockBytes / MiB } };
}

/** Guest RAM from the pod's hugetlbfs mount (one page size per pod), or else anonymous RAM. */
function memoryBackend(id: string, sizeMiB: number, pageSize: string | undefined, allocation: Record<string, string>): string {
  const size = `${sizeMiB}M`;
  if (!pageSize) return opts('memory-backend-ram', { id, size, ...allocation });
  return opts('memory-backend-file', { id, size, 'mem-path': POD_PATHS.hugepages, share: 'on', ...allocation });
}

/** Hugepages: the guest's RAM is a backend that -machine names, defined before it. */
export const memoryBacking: Concern = (vmi, ctx) => {
  const { guestMiB, pageSize } = memoryLayout(vmi, ctx);
  if (!pageSize) return { argv: [] };
  return {
    argv: ['-object', memoryBackend(GUEST_RAM_BACKEND, guestMiB, pageSize, { prealloc: 'on' })],
    machine: { 'memory-backend': GUEST_RAM_BACKEND },
  };
};

export const guestMemory: Concern = (vmi, ctx) => {
  const { guestMiB, hotplug } = memoryLayout(vmi, ctx);
  // maxmem opens the region virtio-mem plugs into; one slot, as upstream's maxMemory has (virtio-mem needs none).
  const growth = hotplug ? { slots: 1, maxmem: `${hotplug.maxMiB}M` } : {};
  return { argv: ['-m', opts(`size=${guestMiB}M`, growth)] };
};

/**
 * Room to grow: a virtio-mem device over the memory between guest and maxGuest, none of it
 * plugged at boot (requested-size=0). Raising requested-size over QMP would hand it to the
 * guest; nothing does that yet (memory hotplug of a running VM is not implemented).
 */
export const memoryHotplug: Concern = (vmi, ctx) => {
  const { guestMiB, pageSize, hotplug } = memoryLayout(vmi, ctx);
  if (!hotplug) return { argv: [] };
  // reserve=off: the node commits (swap or hugepages) only what is plugged, not all of maxGuest at boot.
  // prealloc on the device, as the guest's own hugepages are: a block is populated when plugged, so a
  // node short of hugepages fails the plug rather than the running guest.
  const backend = memoryBackend(HOTPLUG_BACKEND, hotplug.maxMiB - guestMiB, pageSize, { reserve: 'off' });
  const device = opts('virtio-mem-pci', {
    id: 'virtio-mem0',
    memdev: HOTPLUG_BACKEND,
    'block-size': `${hotplug.blockMiB}M`,
    'requested-size': 0,
    prealloc: pageSize ? 'on' : undefined,
  });
  return { argv: ['-object', backend, '-device', device] };
};
