// The generated CRDs in the real kube-apiserver: accepted, nothing of upstream's
// examples pruned, and kubectl printing upstream's columns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { eventually, kubectl, kubectlResult } from './kube.ts';
import { example, exampleNames } from '../helpers/fixtures.ts';
import { CRDS, crdName } from '../../src/api/crds.ts';

const NS = 'kvts-crds';
const CRD_DIR = join(import.meta.dirname, '..', '..', 'manifests', 'crds');

before(async () => {
  kubectl(['apply', '--server-side', '-f', CRD_DIR]);
  for (const def of CRDS) kubectl(['wait', '--for=condition=Established', `crd/${crdName(def)}`, '--timeout=60s']);
  kubectlResult(['delete', 'namespace', NS, '--wait=true', '--timeout=60s']);
  kubectl(['create', 'namespace', NS]);
});

after(() => {
  kubectlResult(['delete', 'namespace', NS, '--wait=false']);
});

test('kube-apiserver accepts every CRD as structural', () => {
  for (const def of CRDS) {
    const crd = JSON.parse(kubectl(['get', 'crd', crdName(def), '-o', 'json']));
    const bad = crd.status.conditions.find((c: { type: string; status: string }) => c.type === 'NonStructuralSchema' && c.status === 'True');
    assert.equal(bad, undefined, `${def.kind}: ${bad?.message}`);
  }
});

test('every upstream example is stored without losing a field', async () => {
  for (const name of exampleNames()) {
    const obj = example<{ kind: string; metadata: { name: string }; spec: unknown }>(name);
    const clusterScoped = CRDS.find((d) => d.kind === obj.kind)?.scope === 'Cluster';
    const nsArgs = clusterScoped ? [] : ['-n', NS];
    kubectl(['apply', ...nsArgs, '-f', '-'], JSON.stringify(obj));
    const stored = JSON.parse(kubectl(['get', ...nsArgs, obj.kind, obj.metadata.name, '-o', 'json']));
    assert.deepEqual(stored.spec, obj.spec, name);
    kubectl(['delete', ...nsArgs, obj.kind, obj.metadata.name, '--wait=false']);
  }
});

test('kubectl prints upstream\'s columns for vmi, vm and the other kinds', async () => {
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('vmi-ephemeral.yaml')));
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('vm-cirros.yaml')));
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(example('vmi-replicaset-cirros.yaml')));
  const header = (resource: string) => kubectl(['get', resource, '-n', NS]).split('\n')[0].split(/\s+/).filter(Boolean);
  await eventually('the vmi to be listed', 30, () => kubectl(['get', 'vmi', '-n', NS]).includes('vmi-ephemeral'));
  assert.deepEqual(header('vmi'), ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY']);
  assert.deepEqual(header('vm'), ['NAME', 'AGE', 'STATUS', 'READY']);
  assert.deepEqual(header('vmirs'), ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
  assert.deepEqual(kubectl(['get', 'vmis', '-n', NS, '-o', 'wide']).split('\n')[0].split(/\s+/).filter(Boolean),
    ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY', 'LIVE-MIGRATABLE', 'PAUSED']);
});

test('the deprecated v1alpha3 version serves the same objects', () => {
  const obj = JSON.parse(kubectl(['get', 'virtualmachines.v1alpha3.kubevirt.io', 'vm-cirros', '-n', NS, '-o', 'json']));
  assert.equal(obj.apiVersion, 'kubevirt.io/v1alpha3');
  assert.equal(obj.spec.runStrategy, 'Halted');
});
