// The generated CRDs in the real kube-apiserver, with virt-api's webhooks
// installed: accepted, upstream's examples admitted as upstream admits them and
// stored whole, and kubectl printing upstream's columns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deleteNamespace, eventually, kubectl, kubectlResult } from './kube.ts';
import { example, exampleNames, REJECTED_BY_UPSTREAM } from '../helpers/fixtures.ts';
import { CRDS, crdName } from '../../src/api/crds.ts';

const NS = 'kvts-crds';
const CRD_DIR = join(import.meta.dirname, '..', '..', 'manifests', 'crds');

before(async () => {
  // virt-operator installed them; applying the committed files over them proves they are the same CRDs.
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_DIR]);
  for (const def of CRDS) kubectl(['wait', '--for=condition=Established', `crd/${crdName(def)}`, '--timeout=60s']);
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});

after(() => deleteNamespace(NS));

test('kube-apiserver accepts every CRD as structural', () => {
  for (const def of CRDS) {
    const crd = JSON.parse(kubectl(['get', 'crd', crdName(def), '-o', 'json']));
    const bad = crd.status.conditions.find(
      (c: { type: string; status: string }) => c.type === 'NonStructuralSchema' && c.status === 'True',
    );
    assert.equal(bad, undefined, `${def.kind}: ${bad?.message}`);
  }
});

/** Paths in `original` whose values `stored` lacks or changed: what pruning (or a bad default) lost. */
function lost(original: unknown, stored: unknown, at = ''): string[] {
  if (original === null || typeof original !== 'object') return original === stored ? [] : [at];
  if (stored === null || typeof stored !== 'object') return [at];
  return Object.entries(original).flatMap(([k, v]) => lost(v, (stored as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
}

test('every upstream example is admitted as upstream admits it, and stored without losing a field', async () => {
  // Instance types and preferences first, so that VMs referring to them are checked against them;
  // the migration last, after the VMI it names (upstream refuses a migration of a VMI that does not exist).
  const first = (n: string) => (/^(csmall|cluster-csmall|virtio)\.yaml$/.test(n) ? 0 : n === 'migration-job.yaml' ? 2 : 1);
  const names = exampleNames().sort((a, b) => first(a) - first(b) || a.localeCompare(b));
  const created: string[][] = [];
  for (const name of names) {
    const obj = example<{ kind: string; metadata: { name: string }; spec: unknown }>(name);
    const clusterScoped = CRDS.find((d) => d.kind === obj.kind)?.scope === 'Cluster';
    const nsArgs = clusterScoped ? [] : ['-n', NS];
    const result = kubectlResult(['create', ...nsArgs, '-f', '-'], JSON.stringify(obj));
    const rejection = REJECTED_BY_UPSTREAM[name];
    if (rejection) {
      assert.notEqual(result.status, 0, `${name} was admitted`);
      assert.ok(result.stderr.includes(rejection.message), `${name}: ${result.stderr}`);
      continue;
    }
    assert.equal(result.status, 0, `${name}: ${result.stderr}`);
    created.push([...nsArgs, obj.kind, obj.metadata.name]);
    const stored = JSON.parse(kubectl(['get', ...nsArgs, obj.kind, obj.metadata.name, '-o', 'json']));
    assert.deepEqual(lost(obj.spec, stored.spec), [], name);
  }
  for (const args of created.reverse()) kubectl(['delete', ...args.slice(0, -2), args.at(-2)!, args.at(-1)!, '--wait=false']);
});

test("kubectl prints upstream's columns for vmi, vm and the other kinds", async () => {
  // Fresh names: the examples of the test before may still be finishing their deletion.
  for (const file of ['vmi-ephemeral.yaml', 'vm-cirros.yaml', 'vmi-replicaset-cirros.yaml']) {
    const obj = example<{ metadata: { name: string } }>(file);
    obj.metadata.name += '-cols';
    kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(obj));
  }
  const header = (resource: string) => kubectl(['get', resource, '-n', NS]).split('\n')[0].split(/\s+/).filter(Boolean);
  await eventually('the vmi to be listed', 30, () => kubectl(['get', 'vmi', '-n', NS]).includes('vmi-ephemeral-cols'));
  assert.deepEqual(header('vmi'), ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY']);
  assert.deepEqual(header('vm'), ['NAME', 'AGE', 'STATUS', 'READY']);
  assert.deepEqual(header('vmirs'), ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
  assert.deepEqual(kubectl(['get', 'vmis', '-n', NS, '-o', 'wide']).split('\n')[0].split(/\s+/).filter(Boolean), [
    'NAME',
    'AGE',
    'PHASE',
    'IP',
    'NODENAME',
    'READY',
    'LIVE-MIGRATABLE',
    'PAUSED',
  ]);
});

test('the deprecated v1alpha3 version serves the same objects', () => {
  const obj = JSON.parse(kubectl(['get', 'virtualmachines.v1alpha3.kubevirt.io', 'vm-cirros-cols', '-n', NS, '-o', 'json']));
  assert.equal(obj.apiVersion, 'kubevirt.io/v1alpha3');
  assert.equal(obj.spec.runStrategy, 'Halted');
});
