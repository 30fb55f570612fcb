// One program of ours as one minified ES module, with esbuild: its entry and everything it
// imports, npm packages included, so it runs on a bare Node.js 24 with nothing beside it. virtctl
// (hack/build-virtctl.ts) and every component in the images (images/build.ts) are built so: a
// process then holds one module's source instead of hundreds (@kubernetes/client-node's models
// alone cost a component ~35 MiB unbundled).
import { mkdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { build, type Plugin } from 'esbuild';

/** The packages written as CommonJS require Node's own modules: `require` is made for them. */
const REQUIRE_BANNER = `import { createRequire as __kvtsCreateRequire } from 'node:module';
const require = __kvtsCreateRequire(import.meta.url);`;

/**
 * Node's own modules, imported as CommonJS: an ES import of one reads every export, and node:http's
 * exports include getters that load undici (its WebSocket and fetch classes), 17 MiB of memory
 * that our programs never use. A require reads only what the code uses, when it uses it.
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

export interface BundleOptions {
  entry: string;
  /** A line before everything else, e.g. a #! line. */
  shebang?: string;
  /** Identifiers replaced by these JSON values at build time. */
  define?: Record<string, string>;
  /**
   * Keep class and function names, which logs and errors print; a long-running component wants
   * them, virtctl's start-up time does not.
   */
  keepNames?: boolean;
}

/** The bundle's text. */
export async function bundleProgram(options: BundleOptions): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [options.entry],
    bundle: true,
    minify: true,
    keepNames: options.keepNames ?? false,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // Dynamic imports stay in the one file, each evaluated on its first import.
    splitting: false,
    write: false,
    legalComments: 'none',
    banner: { js: options.shebang ? `${options.shebang}\n${REQUIRE_BANNER}` : REQUIRE_BANNER },
    // The libraries' optional native helpers (ws's bufferutil and utf-8-validate) are not installed.
    external: ['bufferutil', 'utf-8-validate'],
    ...(options.define ? { define: options.define } : {}),
    plugins: [builtinsRequired],
    logLevel: 'warning',
  });
  return result.outputFiles[0].contents;
}

// node hack/bundle.ts OUT_DIR ENTRY...: each entry (a path from the repository's root) bundled to
// the same path under OUT_DIR, with .js for .ts. images/build.ts runs this for the component images.
if (import.meta.main) {
  const [outDir, ...entries] = process.argv.slice(2);
  if (!outDir || entries.length === 0) throw new Error('usage: node hack/bundle.ts OUT_DIR ENTRY...');
  const root = join(import.meta.dirname, '..');
  await Promise.all(
    entries.map(async (entry) => {
      const out = join(outDir, entry.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, await bundleProgram({ entry: join(root, entry), keepNames: true }));
    }),
  );
}
