// The memory concerns: guest memory size, hugepages backing, and room to grow
// up to maxGuest (memory hotplug through virtio-mem).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestMemory, memoryBacking, memoryHotplug } from '../../src/launcher/convert/memory.ts';
import { ctx, has, part, refuses, values, vmi } from '../helpers/convert.ts';

const hugepages2Mi = ctx({ hugepageSizes: ['2Mi'] });

test('guest memory: -m in MiB; no backend or growth unless asked for', () => {
  const v = vmi();
  assert.deepEqual(part(guestMemory, v).argv, ['-m', 'size=128M']);
  assert.deepEqual(part(memoryBacking, v), { argv: [] });
  assert.deepEqual(part(memoryHotplug, v), { argv: [] });
  assert.deepEqual(
    part(
      memoryHotplug,
      vmi((s) => (s.domain.memory = { guest: '1Gi', maxGuest: '1Gi' })),
    ),
    { argv: [] },
  );
  refuses(
    () =>
      part(
        guestMemory,
        vmi((s) => (s.domain.memory = { guest: '512Ki' })),
      ),
    'spec.domain.memory.guest',
    /at least 1Mi/,
  );
});

test('hugepages: the guest RAM is a preallocated hugetlbfs backend, named for -machine', () => {
  const p = part(
    memoryBacking,
    vmi((s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '2Mi' } })),
    hugepages2Mi,
  );
  assert.ok(has(p, '-object', 'memory-backend-file,id=pc.ram,size=128M,mem-path=/dev/hugepages,share=on,prealloc=on'));
  assert.deepEqual(p.machine, { 'memory-backend': 'pc.ram' });
  const gigantic = part(
    memoryBacking,
    vmi((s) => (s.domain.memory = { guest: '1Gi', hugepages: { pageSize: '1Gi' } })),
    ctx({ hugepageSizes: ['2Mi', '1Gi'] }),
  );
  assert.ok(has(gigantic, '-object', /mem-path=\/dev\/hugepages,/), 'one hugetlbfs per pod, whatever its page size');
});

test('hugepages of a size the node does not have are refused, naming the sizes it has', () => {
  const onGigantic = () => vmi((s) => (s.domain.memory = { guest: '128Mi', hugepages: { pageSize: '1Gi' } }));
  const field = 'spec.domain.memory.hugepages.pageSize';
  refuses(
    () => part(memoryBacking, onGigantic()),
    field,
    /^spec.domain.memory.hugepages.pageSize: this node has no hugepages of size 1Gi \(it offers none\)$/,
  );
  refuses(() => part(memoryBacking, onGigantic(), hugepages2Mi), field, /no hugepages of size 1Gi \(it offers: 2Mi\)$/);
  refuses(() => part(memoryBacking, onGigantic(), ctx({ hugepageSizes: ['2Mi', '16Gi'] })), field, /\(it offers: 2Mi, 16Gi\)$/);
});

test('maxGuest above guest: one slot and maxmem, and a virtio-mem device over the difference, none of it plugged', () => {
  const v = vmi((s) => (s.domain.memory = { guest: '1Gi', maxGuest: '4Gi' }));
  assert.deepEqual(part(guestMemory, v).argv, ['-m', 'size=1024M,slots=1,maxmem=4096M']);
  assert.deepEqual(part(memoryHotplug, v).argv, [
    '-object',
    'memory-backend-ram,id=mem-hotplug,size=3072M,reserve=off',
    '-device',
    'virtio-mem-pci,id=virtio-mem0,memdev=mem-hotplug,block-size=2M,requested-size=0',
  ]);
});

test('on hugepages the growth comes from the same hugepages, in blocks no smaller than a page, preallocated when plugged', () => {
  const on2Mi = vmi((s) => (s.domain.memory = { guest: '1Gi', maxGuest: '2Gi', hugepages: { pageSize: '2Mi' } }));
  assert.deepEqual(part(memoryHotplug, on2Mi, hugepages2Mi).argv, [
    '-object',
    'memory-backend-file,id=mem-hotplug,size=1024M,mem-path=/dev/hugepages,share=on,reserve=off',
    '-device',
    'virtio-mem-pci,id=virtio-mem0,memdev=mem-hotplug,block-size=2M,requested-size=0,prealloc=on',
  ]);
  const on1Gi = vmi((s) => (s.domain.memory = { guest: '2Gi', maxGuest: '8Gi', hugepages: { pageSize: '1Gi' } }));
  const gigantic = ctx({ hugepageSizes: ['1Gi'] });
  assert.deepEqual(part(guestMemory, on1Gi, gigantic).argv, ['-m', 'size=2048M,slots=1,maxmem=8192M']);
  const p = part(memoryHotplug, on1Gi, gigantic);
  assert.equal(values(p, '-object')[0], 'memory-backend-file,id=mem-hotplug,size=6144M,mem-path=/dev/hugepages,share=on,reserve=off');
  assert.ok(has(p, '-device', /,block-size=1024M,/));
});

test('maxGuest QEMU cannot give is refused: below guest, or guest or maxGuest not a whole number of blocks', () => {
  const field = 'spec.domain.memory.maxGuest';
  const memory = (m: { guest: string; maxGuest: string; hugepages?: { pageSize: string } }) => vmi((s) => (s.domain.memory = m));
  refuses(() => part(guestMemory, memory({ guest: '2Gi', maxGuest: '1Gi' })), field, /maxGuest 1Gi is less than the guest memory 2Gi/);
  refuses(
    () => part(guestMemory, memory({ guest: '1025Mi', maxGuest: '4Gi' })),
    field,
    /the guest memory \(1025Mi\) and maxGuest \(4Gi\) to be multiples of 2Mi, the virtio-mem block size/,
  );
  refuses(() => part(memoryHotplug, memory({ guest: '1Gi', maxGuest: '4097Mi' })), field, /multiples of 2Mi/);
  const onGigantic = memory({ guest: '1Gi', maxGuest: '3584Mi', hugepages: { pageSize: '1Gi' } });
  refuses(() => part(memoryHotplug, onGigantic, ctx({ hugepageSizes: ['1Gi'] })), field, /multiples of 1Gi/);
});
