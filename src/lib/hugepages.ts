// The hugepage sizes this host's kernel has pages reserved for, as Kubernetes
// names them (hugepages-2048kB → 2Mi). Read by virt-handler for the node's
// guests and by standalone virt-launcher for its own.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function hugepageSizes(dir = '/sys/kernel/mm/hugepages'): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((d) => {
    const kb = Number(/hugepages-(\d+)kB/.exec(d)?.[1]);
    if (!kb) return [];
    const reserved = Number(readFileSync(join(dir, d, 'nr_hugepages'), 'utf8'));
    if (reserved <= 0) return [];
    return [kb % (1024 * 1024) === 0 ? `${kb / 1024 / 1024}Gi` : `${kb / 1024}Mi`];
  });
}
