// Whether hardware virtualisation really works here. /dev/kvm can exist and
// still hang (nested KVM on this kind of host): a guest can pass a trivial
// test and then stall in the kernel's early boot. So the probe boots a real
// Linux kernel to its panic-and-power-off, and gives up after a bound.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Boots `kernel` with no root file system and panic=-1: a working accelerator
 * reaches the panic and QEMU exits 0 (with -no-reboot); a broken one hangs or
 * stops with an internal error, and the bound ends it.
 */
export function probeAccelerator(accel: 'kvm' | 'tcg', kernel: string, timeoutMs: number, qemu = 'qemu-system-x86_64'): Promise<boolean> {
  if (accel === 'kvm' && !existsSync('/dev/kvm')) return Promise.resolve(false);
  if (!existsSync(kernel)) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const child = spawn(
      qemu,
      [
        '-machine',
        `q35,accel=${accel}`,
        '-cpu',
        accel === 'kvm' ? 'host' : 'qemu64',
        '-m',
        '128',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-serial',
        'none',
        '-no-reboot',
        '-kernel',
        kernel,
        '-append',
        'panic=-1 quiet loglevel=0',
      ],
      { stdio: 'ignore' },
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(false);
    }, timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

export class AcceleratorError extends Error {}

/** KVM when it works; otherwise software emulation, but only where the cluster allows it. */
export function chooseAccelerator(kvmUsable: boolean, useEmulation: boolean): 'kvm' | 'tcg' {
  if (kvmUsable) return 'kvm';
  if (useEmulation) return 'tcg';
  throw new AcceleratorError(
    'KVM is not usable on this node and the cluster does not allow software emulation (set spec.configuration.developerConfiguration.useEmulation in the KubeVirt CR)',
  );
}

/** KVM usability on this host, probed once per boot and remembered in `cacheDir`. */
export async function kvmUsable(cacheDir: string): Promise<boolean> {
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const memo = join(cacheDir, 'kvm-probe.json');
  try {
    const cached = JSON.parse(readFileSync(memo, 'utf8'));
    if (cached.bootId === bootId) return cached.usable;
  } catch {
    // no probe yet on this boot
  }
  // The host's own kernel, or the one the virt-launcher image carries for this probe.
  const hostKernels = existsSync('/boot')
    ? readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .sort()
        .map((f) => join('/boot', f))
    : [];
  const kernel = hostKernels.pop() ?? '/usr/share/kubevirt-ts/probe-vmlinuz';
  const usable = await probeAccelerator('kvm', kernel, 8000);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(memo, JSON.stringify({ bootId, usable }));
  return usable;
}
