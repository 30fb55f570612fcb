// The version every kubevirt-ts program reports, in the shape of upstream's
// version.Info (virtctl version prints it for the client and the server).
// Images carry the commit in their package.json; a source checkout asks git;
// the virtctl bundle (hack/build-virtctl.ts) carries what it was built from.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface VersionInfo {
  gitVersion: string;
  gitCommit: string;
  gitTreeState: string;
  buildDate: string;
  goVersion: string;
  compiler: string;
  platform: string;
}

const ROOT = join(import.meta.dirname, '..', '..');

/** The build's version and checkout, replaced with a literal by the virtctl bundle's build; absent otherwise. */
declare const KVTS_BUILD_INFO: BuildInfo | undefined;
export type BuildInfo = Pick<VersionInfo, 'gitVersion' | 'gitCommit' | 'gitTreeState' | 'buildDate'>;

/** The version of the package at `root` and the checkout it is in (or the commit its package.json carries). */
export function buildInfo(root: string): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string } & Partial<VersionInfo>;
  const git = pkg.gitCommit ? pkg : gitInfo(root);
  return {
    gitVersion: `v${pkg.version}`,
    gitCommit: git?.gitCommit ?? '',
    gitTreeState: git?.gitTreeState ?? '',
    buildDate: git?.buildDate ?? '',
  };
}

/** The commit, tree state and commit date of the checkout at `root`, if it is one. */
export function gitInfo(root: string): Pick<VersionInfo, 'gitCommit' | 'gitTreeState' | 'buildDate'> | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return {
      gitCommit: git('rev-parse', 'HEAD'),
      gitTreeState: git('status', '--porcelain', '--untracked-files=no') ? 'dirty' : 'clean',
      buildDate: git('log', '-1', '--format=%cI'),
    };
  } catch {
    return undefined;
  }
}

let cached: VersionInfo | undefined;
export function versionInfo(): VersionInfo {
  if (cached) return cached;
  cached = {
    ...(typeof KVTS_BUILD_INFO === 'object' ? KVTS_BUILD_INFO : buildInfo(ROOT)),
    // Upstream reports its Go toolchain here; ours is Node.js.
    goVersion: `node${process.versions.node}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
  return cached;
}
