// The CPU models a node can give its guests, asked of QEMU itself under the accelerator the
// guests will run with (software emulation offers fewer than KVM): upstream's node labeller asks
// libvirt for the same list, and labels the node with each model, so that a VMI naming a model
// only lands where it can run.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface CpuDefinition {
  name: string;
  'unavailable-features'?: string[];
  'migration-safe'?: boolean;
  static?: boolean;
}

/**
 * The models worth a label: those QEMU can run here in full (no unavailable feature), that a
 * guest can migrate with (which leaves out `max` and the host's own), named as a label may be,
 * and not obsolete.
 */
export function usableCpuModels(definitions: readonly CpuDefinition[], obsolete: ReadonlySet<string>): string[] {
  return definitions
    .filter((d) => !d['unavailable-features']?.length && d['migration-safe'] && !d.static && !obsolete.has(d.name))
    .map((d) => d.name)
    .filter((name) => /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(name))
    .sort();
}

/** QEMU's CPU definitions under the accelerator: a QEMU with no machine, asked over QMP on its standard streams. */
export function queryCpuDefinitions(accel: 'kvm' | 'tcg', timeoutMs = 10_000, qemu = 'qemu-system-x86_64'): Promise<CpuDefinition[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(qemu, ['-machine', `none,accel=${accel}`, '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`QEMU did not list its CPU models within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (settle: () => void) => {
      clearTimeout(timer);
      settle();
    };
    child.on('error', (error) => done(() => reject(error)));
    child.on('exit', (code) => done(() => reject(new Error(`QEMU exited (${code}) before listing its CPU models`))));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
      if (msg.QMP) child.stdin.write('{"execute":"qmp_capabilities"}\n{"execute":"query-cpu-definitions"}\n');
      else if (msg.error) done(() => reject(new Error(msg.error!.desc)));
      else if (Array.isArray(msg.return)) {
        child.stdin.end('{"execute":"quit"}\n');
        done(() => resolve(msg.return as CpuDefinition[]));
      }
    });
  });
}
