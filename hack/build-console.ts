// Bundles the web console's page (src/console/web) with esbuild into a folder
// of static files: index.html, app.js (an ES module: noVNC awaits at its top
// level) and app.css (xterm.js's styles and ours). Everything the page loads
// is in that folder, so it works with no network beyond the console server.
// images/build.ts puts it into the component image; run alone, it writes
// dist/console-web (or the folder given).
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

const WEB = join(import.meta.dirname, '..', 'src', 'console', 'web');

export function buildConsole(outDir: string): void {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  buildSync({
    entryPoints: { app: join(WEB, 'main.ts') },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    outdir: outDir,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  copyFileSync(join(WEB, 'index.html'), join(outDir, 'index.html'));
}

if (import.meta.main) buildConsole(resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'dist', 'console-web')));
