// The generated CRDs: structural, complete, committed, and shaped as upstream's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CRDS, crdName, objectSchema, renderCrd } from '../../src/api/crds.ts';
import { renderedCrdFiles } from '../../src/api/manifests.ts';
import { prunedPaths, structuralProblems, type JSONSchemaProps } from '../../src/api/openapi.ts';
import { example, exampleNames, fixedContext, defaultConfig } from '../helpers/fixtures.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';

const CRD_DIR = join(import.meta.dirname, '..', '..', 'manifests', 'crds');
const byKind = (kind: string) => CRDS.find((d) => d.kind === kind)!;

test('every CRD schema passes the structural-schema rules', () => {
  for (const def of CRDS) assert.deepEqual(structuralProblems(objectSchema(def)), [], def.kind);
});

test('the structural check catches what kube-apiserver rejects', () => {
  const bad: JSONSchemaProps = {
    type: 'object',
    properties: {
      noType: { properties: {} },
      both: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } },
      list: {
        type: 'array',
        items: { type: 'object', properties: { k: { type: 'string' } } },
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['k'],
      },
      typed: { anyOf: [{ type: 'string', description: 'x' }] },
    },
  };
  const problems = structuralProblems(bad);
  assert.ok(
    problems.some((p) => p.includes('[noType].type')),
    problems.join('\n'),
  );
  assert.ok(problems.some((p) => p.includes('mutually exclusive')));
  assert.ok(problems.some((p) => p.includes('must be required or have a default')));
  assert.ok(problems.some((p) => p.includes('anyOf[0].description')));
});

test('no CRD preserves unknown fields at its top or its spec', () => {
  for (const def of CRDS) {
    const schema = objectSchema(def);
    assert.equal(schema['x-kubernetes-preserve-unknown-fields'], undefined, def.kind);
    assert.equal(schema.properties!.spec['x-kubernetes-preserve-unknown-fields'], undefined, def.kind);
  }
});

test('committed manifests/crds match the generator', () => {
  const wanted = renderedCrdFiles();
  assert.deepEqual(readdirSync(CRD_DIR).sort(), Object.keys(wanted).sort());
  for (const [file, text] of Object.entries(wanted)) {
    assert.equal(readFileSync(join(CRD_DIR, file), 'utf8'), text, `${file} is stale: run npm run generate`);
  }
});

test("printer columns are upstream's", () => {
  const names = (kind: string) => (renderCrd(byKind(kind)).spec.versions[0].additionalPrinterColumns ?? []).map((c) => c.name);
  assert.deepEqual(names('VirtualMachineInstance'), ['Age', 'Phase', 'IP', 'NodeName', 'Ready', 'Live-Migratable', 'Paused']);
  assert.deepEqual(names('VirtualMachine'), ['Age', 'Status', 'Ready']);
  assert.deepEqual(names('VirtualMachineInstanceReplicaSet'), ['Desired', 'Current', 'Ready', 'Age']);
  assert.deepEqual(names('VirtualMachineInstanceMigration'), ['Phase', 'VMI']);
  assert.deepEqual(names('KubeVirt'), ['Age', 'Phase']);
  assert.deepEqual(names('VirtualMachinePool'), ['Desired', 'Current', 'Ready', 'Age']);
  const vm = renderCrd(byKind('VirtualMachine')).spec.versions[0].additionalPrinterColumns!;
  assert.equal(vm[1].jsonPath, '.status.printableStatus');
  assert.equal(vm[2].jsonPath, ".status.conditions[?(@.type=='Ready')].status");
});

test("names, scopes and subresources are upstream's", () => {
  const vmi = renderCrd(byKind('VirtualMachineInstance'));
  assert.equal(vmi.metadata.name, 'virtualmachineinstances.kubevirt.io');
  assert.deepEqual(vmi.spec.names.shortNames, ['vmi', 'vmis']);
  assert.deepEqual(vmi.spec.names.categories, ['all']);
  assert.equal(vmi.spec.versions[0].subresources, undefined, 'the VMI status is guarded by the webhook, not a subresource');
  assert.deepEqual(
    vmi.spec.versions.map((v) => [v.name, v.served, v.storage]),
    [
      ['v1', true, true],
      ['v1alpha3', true, false],
    ],
  );
  assert.deepEqual(renderCrd(byKind('VirtualMachine')).spec.versions[0].subresources, { status: {} });
  for (const kind of ['VirtualMachineInstanceReplicaSet', 'VirtualMachinePool']) {
    assert.deepEqual(renderCrd(byKind(kind)).spec.versions[0].subresources?.scale, {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.labelSelector',
    });
  }
  assert.equal(renderCrd(byKind('VirtualMachineClusterInstancetype')).spec.scope, 'Cluster');
  assert.equal(renderCrd(byKind('MigrationPolicy')).spec.scope, 'Cluster');
  assert.equal(crdName(byKind('VirtualMachinePool')), 'virtualmachinepools.pool.kubevirt.io');
});

test('no field of any upstream example is pruned', () => {
  for (const name of exampleNames()) {
    const obj = example<{ kind: string }>(name);
    const def = byKind(obj.kind);
    assert.deepEqual(prunedPaths(objectSchema(def), obj), [], name);
  }
});

test('a defaulted VMI loses nothing to pruning, status included', () => {
  const vmi = defaultNewVmi(example<VirtualMachineInstance>('vmi-masquerade.yaml'), defaultConfig(), fixedContext());
  assert.deepEqual(prunedPaths(objectSchema(byKind('VirtualMachineInstance')), vmi), []);
});

test('a VMI using most of the spec loses nothing to pruning', () => {
  const vmi = parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'vmi-kitchen-sink.yaml'), 'utf8'));
  assert.deepEqual(prunedPaths(objectSchema(byKind('VirtualMachineInstance')), vmi), []);
});

test('unknown fields are pruned, so typos do not pass silently', () => {
  const vmi = { spec: { domain: { devices: {}, cpuu: { cores: 2 } } } };
  assert.deepEqual(prunedPaths(objectSchema(byKind('VirtualMachineInstance')), vmi), ['spec.domain.cpuu']);
});
