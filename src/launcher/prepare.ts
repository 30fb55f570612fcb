// Carries out the steps of a QEMU plan that touch the file system: overlays,
// disk images, ISOs and firmware copies. The edge around the pure conversion.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, statfs, truncate, writeFile, access, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { PrepareStep } from './convert.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/**
 * QEMU 7.2's block migration moves a disk in 1 MiB chunks and fails on a disk whose size is not
 * a whole number of them: the disks the launcher makes, which migrate with the guest, are such.
 */
const MIGRATION_CHUNK = MiB;
const wholeChunks = (bytes: number) => Math.ceil(bytes / MIGRATION_CHUNK) * MIGRATION_CHUNK;
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** Upstream's limits on reading a containerDisk's image: 10 s of CPU and 2000 MiB of address space. */
export const DISK_VERIFICATION = { cpuSeconds: 10, memoryLimitBytes: 2000 * MiB };

/**
 * What qemu-img info says of a containerDisk's image, run under the verification limits as upstream's
 * launcher runs it (a crafted image cannot make it spin or balloon), and what upstream requires of
 * the image: raw, or qcow2 with no backing file. Errors in upstream's words.
 */
export async function containerDiskFormat(volume: string, image: string, limits = DISK_VERIFICATION): Promise<'qcow2' | 'raw'> {
  const script = `ulimit -t ${limits.cpuSeconds} && ulimit -v ${Math.floor(limits.memoryLimitBytes / 1024)} && exec qemu-img info --output json "$0"`;
  const info = await run('sh', ['-c', script, image]).then(
    ({ stdout }) => JSON.parse(stdout) as { format?: string; 'backing-filename'?: string },
    (error: { stderr?: string; message: string }) => {
      const stderr = error.stderr?.trim();
      throw new Error(`failed to get container disk info: failed to invoke qemu-img: ${stderr ? `'${stderr}'` : error.message}`);
    },
  );
  const invalid = (why: string) => new Error(`invalid image in containerDisk ${volume}: ${why}`);
  if (info.format === 'raw') return 'raw';
  if (info.format !== 'qcow2') throw invalid(`unsupported image format: ${info.format}`);
  if (info['backing-filename']) throw invalid(`expected no backing file, but found ${info['backing-filename']}`);
  return 'qcow2';
}

export async function prepareStep(step: PrepareStep, scratch: string): Promise<void> {
  await mkdir(dirname(step.kind === 'copy' ? step.to : step.path), { recursive: true });
  switch (step.kind) {
    case 'overlay':
    case 'containerDiskOverlay': {
      const format =
        step.kind === 'overlay'
          ? step.backingFormat
          : await containerDiskFormat(step.volume, step.backing, {
              ...DISK_VERIFICATION,
              memoryLimitBytes: step.memoryLimitBytes ?? DISK_VERIFICATION.memoryLimitBytes,
            });
      await rm(step.path, { force: true });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', step.backing, step.path]);
      // The guest's writes: the launcher's alone, as upstream keeps them (no access for others).
      await chmod(step.path, 0o640);
      return;
    }
    case 'image': {
      if (step.keepExisting && (await exists(step.path))) return;
      if (step.format === 'qcow2') {
        await run('qemu-img', ['create', '-q', '-f', 'qcow2', step.path, String(wholeChunks(step.sizeBytes))]);
        return;
      }
      // A sparse raw file, no larger than the file system can hold.
      const fs = await statfs(dirname(step.path));
      const size = Math.floor(Math.min(step.sizeBytes, fs.bavail * fs.bsize) / MiB) * MiB;
      await (await open(step.path, 'a')).close();
      await truncate(step.path, size);
      return;
    }
    case 'iso': {
      let source = step.fromDir;
      let temp: string | undefined;
      if (!source) {
        temp = await mkdtemp(join(scratch, 'iso-'));
        for (const [name, content] of Object.entries(step.files)) {
          await mkdir(dirname(join(temp, name)), { recursive: true });
          await writeFile(join(temp, name), content);
        }
        source = temp;
      }
      try {
        // -f follows the symlinks Kubernetes uses in projected volumes; their ..data dirs stay out.
        await run('genisoimage', ['-quiet', '-o', step.path, '-V', step.label, '-J', '-r', '-f', '-m', '..*', source]);
        const { size } = await stat(step.path);
        await truncate(step.path, wholeChunks(size));
      } finally {
        if (temp) await rm(temp, { recursive: true, force: true });
      }
      return;
    }
    case 'copy':
      if (step.keepExisting && (await exists(step.to))) return;
      await mkdir(dirname(step.to), { recursive: true });
      await copyFile(step.from, step.to);
      return;
  }
}

export async function prepareAll(steps: PrepareStep[], scratch: string): Promise<void> {
  await mkdir(scratch, { recursive: true });
  await Promise.all(steps.map((step) => prepareStep(step, scratch)));
}
