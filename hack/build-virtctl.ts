// Builds virtctl as one minified ES module, dist/virtctl.mjs (or the path given), with esbuild
// (./bundle.ts): src/virtctl/main.ts and everything it imports. The modules only some commands
// import (streams and ws, image-upload, yaml) stay in the file but are evaluated only when imported. The build's
// version and commit are written in, as a Go build's ldflags do: the bundle reads no
// package.json and runs no git. bin/virtctl runs this when the bundle is missing or older than
// its sources.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { buildInfo } from '../src/lib/version.ts';
import { bundleProgram } from './bundle.ts';

const ROOT = join(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'dist', 'virtctl.mjs'));

const contents = await bundleProgram({
  entry: join(ROOT, 'src', 'virtctl', 'main.ts'),
  shebang: '#!/usr/bin/env node',
  define: { KVTS_BUILD_INFO: JSON.stringify(buildInfo(ROOT)) },
});

// Written aside and renamed, so a virtctl starting meanwhile never reads half a file.
mkdirSync(dirname(out), { recursive: true });
const temporary = `${out}.${process.pid}.tmp`;
writeFileSync(temporary, contents, { mode: 0o755 });
renameSync(temporary, out);
