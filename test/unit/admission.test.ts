// AdmissionReview in, AdmissionReview out, as kube-apiserver talks to virt-api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import jsonpatch from 'fast-json-patch';
import { review, WEBHOOK_PATHS, type AdmissionEnvironment, type AdmissionReview } from '../../src/virt-api/admission.ts';
import { example, fixedContext, defaultConfig } from '../helpers/fixtures.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';

const CONTROLLER_SA = 'system:serviceaccount:kubevirt:kubevirt-controller';

function env(): AdmissionEnvironment {
  return { ...fixedContext(), config: defaultConfig, kubevirtServiceAccounts: new Set([CONTROLLER_SA]) };
}

function request(operation: 'CREATE' | 'UPDATE', object: unknown, oldObject?: unknown, username = 'alice'): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'req-1', operation, object, oldObject, userInfo: { username } },
  };
}

function applied<T>(original: T, answer: AdmissionReview): T {
  assert.equal(answer.response?.patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(answer.response!.patch!, 'base64').toString());
  return jsonpatch.applyPatch(structuredClone(original), ops, true, false).newDocument;
}

test('the VMI mutator answers with a JSONPatch that yields the defaulted VMI', () => {
  const vmi = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  const answer = review('/virtualmachineinstances-mutate', request('CREATE', vmi), env());
  assert.equal(answer.response?.uid, 'req-1');
  assert.equal(answer.response?.allowed, true);
  const result = applied(vmi, answer);
  assert.equal(result.spec.domain.machine?.type, 'q35');
  assert.equal(result.status?.phase, 'Pending');
  assert.deepEqual(result.metadata.finalizers, ['kubevirt.io/foregroundDeleteVirtualMachine']);
});

test('the VMI validator answers 422 with each cause and its field', () => {
  const vmi = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  vmi.spec.domain.devices.disks!.push({ name: 'testdisk', disk: {} }, { name: 'testdisk2', disk: {} });
  const answer = review('/virtualmachineinstances-validate-create', request('CREATE', vmi), env());
  assert.equal(answer.response?.allowed, false);
  assert.equal(answer.response?.status?.code, 422);
  assert.equal(answer.response?.status?.reason, 'Invalid');
  assert.deepEqual(
    answer.response?.status?.details?.causes.map((c) => c.field),
    ['spec.domain.devices.disks[1].name', 'spec.domain.devices.disks[2].name'],
  );
  assert.match(answer.response!.status!.message, /disks\[1\]\.Name 'testdisk' not found\., spec\.domain\.devices\.disks\[2\]/);
});

test('a status change by a plain user is reverted; by kubevirt-ts it stands', () => {
  const old = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  old.status = { phase: 'Running', nodeName: 'node01' };
  const changed = structuredClone(old);
  changed.status = { phase: 'Succeeded', nodeName: 'node01' };
  const byUser = review('/virtualmachineinstances-mutate', request('UPDATE', changed, old), env());
  assert.deepEqual(applied(changed, byUser).status, old.status);
  const byController = review('/virtualmachineinstances-mutate', request('UPDATE', changed, old, CONTROLLER_SA), env());
  assert.equal(byController.response?.allowed, true);
  assert.equal(byController.response?.patch, undefined);
});

test('a spec update is refused for users and allowed for kubevirt-ts', () => {
  const old = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  const changed = structuredClone(old);
  changed.spec.terminationGracePeriodSeconds = 60;
  const byUser = review('/virtualmachineinstances-validate-update', request('UPDATE', changed, old), env());
  assert.equal(byUser.response?.allowed, false);
  assert.equal(byUser.response?.status?.details?.causes[0].message, 'update of VMI object is restricted');
  const byController = review('/virtualmachineinstances-validate-update', request('UPDATE', changed, old, CONTROLLER_SA), env());
  assert.equal(byController.response?.allowed, true);
});

test('the VM validator checks instance type conflicts against the informer cache', () => {
  const vm = example('vm-cirros-csmall.yaml');
  const withType = { ...env(), findInstancetype: () => example<{ spec: never }>('csmall.yaml').spec };
  const answer = review('/virtualmachines-validate', request('CREATE', vm), withType);
  assert.equal(answer.response?.allowed, false);
  assert.equal(answer.response?.status?.details?.causes[0].field, 'spec.template.spec.domain.memory.guest');
  assert.equal(review('/virtualmachines-validate', request('CREATE', vm), env()).response?.allowed, true);
});

test('the migration mutator labels the migration with its VMI and adds the finalizer', () => {
  const migration = example('migration-job.yaml');
  const result = applied(migration, review('/migration-mutate-create', request('CREATE', migration), env())) as {
    metadata: { labels: Record<string, string>; finalizers: string[] };
  };
  assert.equal(result.metadata.labels['kubevirt.io/vmi-name'], 'vmi-migratable');
  assert.deepEqual(result.metadata.finalizers, ['kubevirt.io/migrationJobFinalize']);
});

test('every webhook path answers a valid example with allowed', () => {
  const samples: Record<string, string> = {
    '/virtualmachineinstances-validate-create': 'vmi-ephemeral.yaml',
    '/virtualmachines-validate': 'vm-cirros.yaml',
    '/virtualmachinereplicaset-validate': 'vmi-replicaset-cirros.yaml',
    '/virtualmachinepool-validate': 'vm-pool-cirros.yaml',
    '/migration-validate-create': 'migration-job.yaml',
    '/virtualmachineinstancetypes-validate': 'csmall.yaml',
    '/virtualmachineclusterinstancetypes-validate': 'cluster-csmall.yaml',
    '/virtualmachinepreferences-validate': 'virtio.yaml',
    '/migration-policy-validate-create': 'example-migration-policy.yaml',
  };
  for (const [path, file] of Object.entries(samples)) {
    assert.ok(WEBHOOK_PATHS.includes(path), path);
    let obj = example(file);
    if (path === '/virtualmachineinstances-validate-create')
      obj = applied(obj, review('/virtualmachineinstances-mutate', request('CREATE', obj), env()));
    assert.equal(review(path, request('CREATE', obj), env()).response?.allowed, true, path);
  }
});

test('an unknown path and a missing request are errors, not admissions', () => {
  assert.equal(review('/nope', request('CREATE', {}), env()).response?.status?.code, 404);
  const empty = review('/virtualmachines-validate', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, env());
  assert.equal(empty.response?.allowed, false);
});
