// Writes manifests/crds/ from src/api (one YAML file per CRD),
// manifests/kubevirt-operator.yaml from src/operator, and the rules of the
// prometheus-kubevirt-rules PrometheusRule as a plain Prometheus rules file,
// manifests/kubevirt-prometheus-rules.yaml (for the kubevirt namespace).
// `--check` compares instead of writing and exits 1 on any difference.
import { mkdirSync, readFileSync, readdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { HEADER, renderedCrdFiles } from '../src/api/manifests.ts';
import { renderedOperatorManifest } from '../src/operator/install.ts';
import { renderedRulesFile } from '../src/operator/monitoring-rules.ts';

const dir = join(import.meta.dirname, '..', 'manifests', 'crds');
const operatorFile = join(import.meta.dirname, '..', 'manifests', 'kubevirt-operator.yaml');
const rulesFile = join(import.meta.dirname, '..', 'manifests', 'kubevirt-prometheus-rules.yaml');
const check = process.argv.includes('--check');
const wanted = renderedCrdFiles();
const operator = renderedOperatorManifest();
const rules = HEADER.replace('src/api', 'src/operator/monitoring-rules.ts') + renderedRulesFile('kubevirt');

if (check) {
  const present = existsSync(dir) ? readdirSync(dir).sort() : [];
  const stale = present.filter((f) => !(f in wanted));
  const differing = Object.entries(wanted)
    .filter(([file, text]) => !existsSync(join(dir, file)) || readFileSync(join(dir, file), 'utf8') !== text)
    .map(([file]) => file);
  if (!existsSync(operatorFile) || readFileSync(operatorFile, 'utf8') !== operator) differing.push('../kubevirt-operator.yaml');
  if (!existsSync(rulesFile) || readFileSync(rulesFile, 'utf8') !== rules) differing.push('../kubevirt-prometheus-rules.yaml');
  if (stale.length || differing.length) {
    console.error(`manifests/crds is out of date (run npm run generate): ${[...differing, ...stale].join(', ')}`);
    process.exit(1);
  }
  console.log(`manifests/crds: ${present.length} files up to date`);
} else {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(wanted)) writeFileSync(join(dir, file), text);
  writeFileSync(operatorFile, operator);
  writeFileSync(rulesFile, rules);
  console.log(`wrote ${Object.keys(wanted).length} CRDs to ${dir}, ${operatorFile} and ${rulesFile}`);
}
