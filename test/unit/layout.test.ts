// The layout rule of README's "What is here": a component imports only the
// shared layers (api/, contract/, lib/) and its own folder, and never an
// entry point (main.ts). The shared layers import no component.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, normalize, relative } from 'node:path';

const SRC = join(import.meta.dirname, '../../src');
const COMPONENTS = ['cdi', 'console', 'controller', 'handler', 'launcher', 'operator', 'virt-api', 'virtctl'];
/** What each shared layer may import besides itself. */
const SHARED: Record<string, string[]> = { api: [], contract: ['api'], lib: ['api', 'contract'] };

/** Every module specifier a source file names: static imports, re-exports and dynamic imports. */
function specifiers(source: string): string[] {
  const found = [
    ...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s+['"]([^'"]+)['"]/g),
    ...source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
  ];
  return found.map((m) => m[1]);
}

/** The rule's violations over a tree of sources keyed by their path under src/. */
function layoutViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    const folder = file.split('/')[0];
    for (const specifier of specifiers(source)) {
      if (!specifier.startsWith('.')) continue;
      const target = normalize(join(dirname(file), specifier));
      const targetFolder = target.split('/')[0];
      if (basename(target) === 'main.ts') violations.push(`${file} imports the entry point ${target}`);
      if (targetFolder === folder) continue;
      const allowed = folder in SHARED ? SHARED[folder] : ['api', 'contract', 'lib'];
      if (!allowed.includes(targetFolder)) violations.push(`${file} imports ${target}, which belongs to ${targetFolder}/`);
    }
  }
  return violations;
}

function readTree(dir: string, into = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) readTree(path, into);
    else if (entry.name.endsWith('.ts')) into.set(relative(SRC, path), readFileSync(path, 'utf8'));
  }
  return into;
}

test('every component imports only api/, contract/, lib/ and itself, and no entry point', () => {
  const tree = readTree(SRC);
  for (const component of COMPONENTS)
    assert.ok(
      [...tree.keys()].some((f) => f.startsWith(`${component}/`)),
      `src/${component}/ exists`,
    );
  assert.deepEqual(layoutViolations(tree), []);
});

test('the rule catches virt-handler importing virt-controller or an entry point, and a shared layer importing a component', () => {
  const violating = new Map([
    ['handler/reconcile.ts', "import { planVmi } from '../controller/vmi.ts';\n"],
    ['handler/other.ts', "import type { X } from '../launcher/main.ts';\n"],
    ['virt-api/streams.ts', "const server = await import('../handler/server.ts');\n"],
    ['contract/pod.ts', "export { renderLauncherPod } from '../controller/launcher-pod.ts';\n"],
    ['launcher/supervisor.ts', "import { onQmpEvent } from './domain.ts';\n"],
    [
      'handler/ok.ts',
      "import { POD_PATHS } from '../contract/launcher-pod.ts';\nimport { log } from '../lib/log.ts';\nimport { x } from './disks.ts';\n",
    ],
  ]);
  assert.deepEqual(layoutViolations(violating), [
    'handler/reconcile.ts imports controller/vmi.ts, which belongs to controller/',
    'handler/other.ts imports the entry point launcher/main.ts',
    'handler/other.ts imports launcher/main.ts, which belongs to launcher/',
    'virt-api/streams.ts imports handler/server.ts, which belongs to handler/',
    'contract/pod.ts imports controller/launcher-pod.ts, which belongs to controller/',
  ]);
});
