// The version every kubevirt-ts program reports, in the shape of upstream's
// version.Info (virtctl version prints it for the client and the server).
// Images carry the commit in their package.json; a source checkout asks git.
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
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string } & Partial<VersionInfo>;
  const git = pkg.gitCommit ? pkg : gitInfo(ROOT);
  cached = {
    gitVersion: `v${pkg.version}`,
    gitCommit: git?.gitCommit ?? '',
    gitTreeState: git?.gitTreeState ?? '',
    buildDate: git?.buildDate ?? '',
    // Upstream reports its Go toolchain here; ours is Node.js.
    goVersion: `node${process.versions.node}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
  return cached;
}
