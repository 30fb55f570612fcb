// Carries out the steps of a QEMU plan that touch the file system: overlays,
// disk images, ISOs and firmware copies. The edge around the pure conversion.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, stat, statfs, truncate, writeFile, access, open } from 'node:fs/promises';
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

export async function prepareStep(step: PrepareStep, scratch: string): Promise<void> {
  await mkdir(dirname(step.kind === 'copy' ? step.to : step.path), { recursive: true });
  switch (step.kind) {
    case 'overlay':
      await rm(step.path, { force: true });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', step.backingFormat, '-b', step.backing, step.path]);
      return;
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
