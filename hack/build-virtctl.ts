// Builds virtctl as one minified ES module, dist/virtctl.mjs (or the path given), with esbuild:
// src/virtctl/main.ts and everything it imports, npm packages included, so it runs on a bare
// Node.js 24 with nothing beside it. The modules only some commands import (streams and ws,
// image-upload, yaml) stay in the file but are evaluated only when imported. The build's
// version and commit are written in, as a Go build's ldflags do: the bundle reads no
// package.json and runs no git. bin/virtctl runs this when the bundle is missing or older than
// its sources.
import { renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { buildInfo } from '../src/lib/version.ts';

const ROOT = join(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'dist', 'virtctl.mjs'));

/** The packages written as CommonJS require Node's own modules: `require` is made for them. */
const BANNER = `#!/usr/bin/env node
import { createRequire as __kvtsCreateRequire } from 'node:module';
const require = __kvtsCreateRequire(import.meta.url);`;

/**
 * Node's own modules, imported as CommonJS: an ES import of one reads every export, and node:http's
 * exports include getters that load undici (its WebSocket and fetch classes), 17 MiB of memory
 * that virtctl never uses. A require reads only what the code uses, when it uses it.
 */
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const builtinsRequired: Plugin = {
  name: 'node-builtins-required',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
      BUILTINS.has(args.path) && args.kind !== 'require-call' ? { path: args.path, namespace: 'node-builtin' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: [join(ROOT, 'src', 'virtctl', 'main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // Dynamic imports stay in the one file, each evaluated on its first import.
  splitting: false,
  write: false,
  legalComments: 'none',
  banner: { js: BANNER },
  // The libraries' optional native helpers (ws's bufferutil and utf-8-validate) are not installed.
  external: ['bufferutil', 'utf-8-validate'],
  define: { KVTS_BUILD_INFO: JSON.stringify(buildInfo(ROOT)) },
  plugins: [builtinsRequired],
  logLevel: 'warning',
});

// Written aside and renamed, so a virtctl starting meanwhile never reads half a file.
mkdirSync(dirname(out), { recursive: true });
const temporary = `${out}.${process.pid}.tmp`;
writeFileSync(temporary, result.outputFiles[0].contents, { mode: 0o755 });
renameSync(temporary, out);
