// Assembles OCI images from directory trees without a container daemon, and
// pushes them with skopeo. Layers are reproducible tarballs (sorted entries,
// zero mtimes, root ownership), so an unchanged layer keeps its digest and a
// push uploads only the layers that changed.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, linkSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE = process.env.KVTS_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'kubevirt-ts');
const BLOBS = join(CACHE, 'oci', 'blobs');

export interface Blob {
  digest: string;
  size: number;
}

export interface LayerBlob extends Blob {
  diffId: string;
}

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function putBlob(data: Buffer | string): Blob {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const hex = createHash('sha256').update(buf).digest('hex');
  mkdirSync(BLOBS, { recursive: true });
  const path = join(BLOBS, hex);
  if (!existsSync(path)) writeFileSync(path, buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

/** Packs a directory into a gzipped layer blob, its files owned by `owner`; the same tree always yields the same digest. */
export function layerFromDir(dir: string, owner = 0): LayerBlob {
  mkdirSync(BLOBS, { recursive: true });
  const tar = join(BLOBS, `.tmp-${process.pid}.tar`);
  execFileSync('tar', [
    '--sort=name',
    '--mtime=@0',
    `--owner=${owner}`,
    `--group=${owner}`,
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '-C',
    dir,
    '-cf',
    tar,
    '.',
  ]);
  const diffHex = sha256File(tar);
  const index = join(BLOBS, `diffid-${diffHex}`);
  if (existsSync(index)) {
    rmSync(tar);
    const gzHex = readFileSync(index, 'utf8').trim();
    return { digest: `sha256:${gzHex}`, size: statSync(join(BLOBS, gzHex)).size, diffId: `sha256:${diffHex}` };
  }
  execFileSync('gzip', ['-n', '-6', '-f', tar]);
  const gzHex = sha256File(`${tar}.gz`);
  renameSync(`${tar}.gz`, join(BLOBS, gzHex));
  writeFileSync(index, gzHex);
  return { digest: `sha256:${gzHex}`, size: statSync(join(BLOBS, gzHex)).size, diffId: `sha256:${diffHex}` };
}

/** The OCI image layout directory an image named `ref` is written to. */
export function layoutDir(ref: string): string {
  return join(CACHE, 'oci', 'layouts', ref.replace(/[^A-Za-z0-9._-]/g, '_'));
}

/**
 * Writes an OCI image layout for the layers and config (tag `latest`), and
 * unless `push` is false copies it to `ref` with skopeo. Returns the manifest digest.
 */
export function pushImage(ref: string, layers: LayerBlob[], config: ImageConfig, push = true): string {
  const configBlob = putBlob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = putBlob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  const layout = layoutDir(ref);
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  for (const blob of [configBlob, manifest, ...layers]) {
    const hex = blob.digest.slice('sha256:'.length);
    const target = join(layout, 'blobs', 'sha256', hex);
    try {
      linkSync(join(BLOBS, hex), target);
    } catch {
      copyFileSync(join(BLOBS, hex), target);
    }
  }
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  if (!push) return manifest.digest;
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:latest`, `docker://${ref}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return manifest.digest;
}
