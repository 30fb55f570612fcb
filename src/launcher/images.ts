// Reads container images without a container runtime, for standalone mode:
// skopeo copies the image into an OCI layout, and its layers are unpacked in order.
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, access } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CONTAINER_DISK_DIR, containerDiskFileIn } from '../contract/launcher-pod.ts';

const run = promisify(execFile);

/** Unpacks `ref` (registry:5000/... or oci:<dir>[:tag]) under cacheDir and returns the root directory. */
export async function imageRootfs(ref: string, cacheDir: string): Promise<string> {
  const key = createHash('sha256').update(ref).digest('hex').slice(0, 16);
  const layout = join(cacheDir, 'layouts', key);
  const source = ref.startsWith('oci:') ? ref : `docker://${ref}`;
  await rm(layout, { recursive: true, force: true });
  await mkdir(layout, { recursive: true });
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', source, `oci:${layout}:image`]);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const root = join(cacheDir, 'rootfs', `${key}-${manifest.config.digest.slice(7, 23)}`);
  const done = join(root, '.kvts-unpacked');
  if (
    await access(done).then(
      () => true,
      () => false,
    )
  )
    return root;
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  for (const layer of manifest.layers) await run('tar', ['-xzf', blob(layer.digest), '-C', root, '--no-same-owner']);
  await run('touch', [done]);
  return root;
}

/** The disk image a containerDisk image carries: `path`, or the one file under /disk. */
export async function containerDiskImage(root: string, path?: string): Promise<string> {
  if (path) return join(root, path);
  const dir = join(root, CONTAINER_DISK_DIR);
  return join(dir, containerDiskFileIn(await readdir(dir)));
}
