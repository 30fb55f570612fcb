// Loads the upstream example manifests that ship beside the repo in ../shared.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { DefaultingContext } from '../../src/api/defaults/vmi.ts';

export const EXAMPLES_DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'upstream-examples');

export function exampleNames(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

export function example<T = Record<string, unknown>>(name: string): T {
  return parse(readFileSync(join(EXAMPLES_DIR, name), 'utf8')) as T;
}

/** Deterministic UUIDs and clock, so defaulted objects can be compared whole. */
export function fixedContext(): DefaultingContext {
  let n = 0;
  return {
    newUUID: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    now: () => '2026-01-01T00:00:00Z',
  };
}

export const defaultConfig = () => new ClusterConfig();

/**
 * Examples upstream itself rejects with its default configuration, and the cause it gives.
 * vmi-host-disk needs the HostDisk gate; the instance-type VMs set memory.guest, which the
 * referenced instance type also sets (so they are refused once that instance type exists).
 */
export const REJECTED_BY_UPSTREAM: Record<string, { field: string; message: string }> = {
  'vmi-host-disk.yaml': { field: 'spec.volumes[0]', message: 'HostDisk feature gate is not enabled' },
  'vm-cirros-csmall.yaml': {
    field: 'spec.template.spec.domain.memory.guest',
    message: 'VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type',
  },
  'vm-cirros-cluster-csmall.yaml': {
    field: 'spec.template.spec.domain.memory.guest',
    message: 'VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type',
  },
};
