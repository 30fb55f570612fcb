// The VirtualMachineInstanceReplicaSet plan: claiming VMIs, scaling up and
// down in upstream's order, replacing ended VMIs, and the status it reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../../src/api/types.ts';
import { selectorString } from '../../src/api/selector.ts';
import { invalidSpec, planReplicaSet, replicaSetStatus, vmiFromTemplate } from '../../src/controller/replicaset.ts';
import { example } from '../helpers/fixtures.ts';

const NOW = '2026-11-22T10:00:00Z';
const LABEL = 'kubevirt.io/vmReplicaSet';

function replicaSet(replicas?: number): VirtualMachineInstanceReplicaSet {
  const rs = example<VirtualMachineInstanceReplicaSet>('vmi-replicaset-cirros.yaml');
  rs.metadata = { ...rs.metadata, namespace: 'ns', uid: 'rs-uid' };
  if (replicas === undefined) delete rs.spec.replicas;
  else rs.spec.replicas = replicas;
  return rs;
}

let serial = 0;
function vmi(phase: string, options: { ready?: boolean; created?: string; owner?: string | null; labels?: Record<string, string> } = {}) {
  const name = `vmi-${++serial}`;
  const owner = options.owner === undefined ? 'rs-uid' : options.owner;
  const result: VirtualMachineInstance = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name,
      namespace: 'ns',
      uid: `uid-${name}`,
      labels: options.labels ?? { [LABEL]: 'vmi-replicaset-cirros' },
      creationTimestamp: options.created ?? '2026-11-22T09:00:00Z',
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'kubevirt.io/v1',
                kind: 'VirtualMachineInstanceReplicaSet',
                name: 'vmi-replicaset-cirros',
                uid: owner,
                controller: true,
              },
            ],
          }
        : {}),
    },
    spec: { domain: { devices: {} } },
    status: {
      phase,
      ...(options.ready ? { conditions: [{ type: 'Ready', status: 'True' }] } : {}),
    },
  };
  return result;
}

test('the upstream example is a valid replica set; VMIs come from its template, named from its name, owned by it', () => {
  const rs = replicaSet();
  assert.equal(invalidSpec(rs), undefined);
  const made = vmiFromTemplate(rs);
  assert.equal(made.metadata.generateName, 'vmi-replicaset-cirros');
  assert.equal(made.metadata.name, undefined);
  assert.deepEqual(made.metadata.labels, { [LABEL]: 'vmi-replicaset-cirros' });
  assert.deepEqual(made.metadata.ownerReferences, [
    {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceReplicaSet',
      name: 'vmi-replicaset-cirros',
      uid: 'rs-uid',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(made.spec.domain.memory?.guest, '128Mi');
});

test('a template without labels, or a selector that does not match them, is not acted on', () => {
  const unlabelled = replicaSet();
  delete unlabelled.spec.template.metadata;
  assert.match(invalidSpec(unlabelled)!, /invalid controller spec/);
  const mismatched = replicaSet();
  mismatched.spec.selector = { matchLabels: { other: 'x' } };
  assert.match(invalidSpec(mismatched)!, /does not match/);
});

test('scaling up creates the missing VMIs; an unset replicas means one', () => {
  assert.equal(planReplicaSet(replicaSet(3), [vmi('Running')]).create.length, 2);
  assert.equal(planReplicaSet(replicaSet(), []).create.length, 1);
  assert.equal(planReplicaSet(replicaSet(300), []).create.length, 250, 'upstream bursts at most 250');
  assert.equal(planReplicaSet(replicaSet(3), [], { sync: true, burst: 2 }).create.length, 2);
});

test('scaling down deletes VMIs not yet running first, then the not ready, then the newest', () => {
  const running = vmi('Running', { ready: true, created: '2026-11-22T09:00:00Z' });
  const newerRunning = vmi('Running', { ready: true, created: '2026-11-22T09:30:00Z' });
  const notReady = vmi('Running');
  const scheduled = vmi('Scheduled');
  const pending = vmi('Pending');
  const plan = planReplicaSet(replicaSet(1), [running, newerRunning, notReady, scheduled, pending]);
  assert.deepEqual(
    plan.scaleDown.map((v) => v.metadata.name),
    [pending, scheduled, notReady, newerRunning].map((v) => v.metadata.name),
  );
  assert.equal(plan.create.length, 0);
});

test('ended VMIs are not counted: they are replaced and cleaned up', () => {
  const failed = vmi('Failed');
  const succeeded = vmi('Succeeded');
  const plan = planReplicaSet(replicaSet(2), [vmi('Running'), failed, succeeded]);
  assert.equal(plan.active.length, 1);
  assert.equal(plan.create.length, 1);
  assert.deepEqual(
    plan.cleanUp.map((v) => v.metadata.name),
    [failed.metadata.name, succeeded.metadata.name],
  );
});

test('VMIs being deleted, or whose pod is terminating, are not counted', () => {
  const deleting = vmi('Running');
  deleting.metadata.deletionTimestamp = NOW;
  const terminating = vmi('Running');
  terminating.status!.conditions = [{ type: 'Ready', status: 'False', reason: 'PodTerminating' }];
  const plan = planReplicaSet(replicaSet(2), [deleting, terminating]);
  assert.equal(plan.active.length, 0);
  assert.equal(plan.create.length, 2);
  assert.deepEqual(
    plan.cleanUp.map((v) => v.metadata.name),
    [terminating.metadata.name],
  );
});

test('paused, being deleted or with expectations pending: nothing is created or deleted', () => {
  const paused = replicaSet(3);
  paused.spec.paused = true;
  assert.equal(planReplicaSet(paused, []).create.length, 0);
  const deleted = replicaSet(3);
  deleted.metadata.deletionTimestamp = NOW;
  assert.equal(planReplicaSet(deleted, []).create.length, 0);
  assert.equal(planReplicaSet(replicaSet(3), [], { sync: false }).create.length, 0);
  assert.equal(planReplicaSet(replicaSet(0), [vmi('Running')], { sync: false }).scaleDown.length, 0);
});

test('orphans the selector matches are adopted over their owners as read; owned VMIs that no longer match are released', () => {
  const orphan = vmi('Running', { owner: null });
  const strayLabels = vmi('Running', { labels: { other: 'x' } });
  const foreign = vmi('Running', { owner: 'another-uid' });
  const plan = planReplicaSet(replicaSet(1), [orphan, strayLabels, foreign]);
  assert.deepEqual(
    plan.adopt.map((a) => a.vmi.metadata.name),
    [orphan.metadata.name],
  );
  assert.deepEqual(plan.adopt[0].patch[0], { op: 'test', path: '/metadata/uid', value: orphan.metadata.uid });
  assert.equal(plan.adopt[0].patch.at(-1)?.op, 'add');
  assert.deepEqual(
    plan.release.map((r) => r.vmi.metadata.name),
    [strayLabels.metadata.name],
  );
  assert.deepEqual(plan.release[0].patch.at(-1), { op: 'replace', path: '/metadata/ownerReferences', value: [] });
  assert.equal(plan.active.length, 1, 'the adopted orphan counts');
  assert.equal(plan.create.length, 0);
});

test('the status counts active and ready VMIs and carries the selector as text for the scale subresource', () => {
  const rs = replicaSet(3);
  const status = replicaSetStatus(rs, [vmi('Running', { ready: true }), vmi('Scheduling')], undefined, NOW);
  assert.deepEqual(status, { replicas: 2, readyReplicas: 1, labelSelector: `${LABEL}=vmi-replicaset-cirros` });
  assert.equal(
    replicaSetStatus({ ...rs, status }, [vmi('Running', { ready: true }), vmi('Scheduling')], undefined, NOW),
    undefined,
    'unchanged',
  );
});

test('ReplicaFailure while scaling fails, ReplicaPaused while paused, both gone when they no longer hold', () => {
  const rs = replicaSet(3);
  rs.spec.paused = true;
  const failed = replicaSetStatus(rs, [], { reason: 'FailedCreate', message: '403 quota exceeded' }, NOW)!;
  assert.deepEqual(failed.conditions, [
    { type: 'ReplicaPaused', status: 'True', reason: 'Paused', message: 'Controller got paused', lastTransitionTime: NOW },
    { type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: '403 quota exceeded', lastTransitionTime: NOW },
  ]);
  const resumed = { ...rs, spec: { ...rs.spec, paused: false }, status: failed };
  assert.equal(replicaSetStatus(resumed, [], undefined, NOW)!.conditions, undefined);
});

test('selectors as labels.Selector prints them: sorted by key, set operators in parentheses', () => {
  assert.equal(
    selectorString({
      matchLabels: { b: '2', a: '1' },
      matchExpressions: [
        { key: 'c', operator: 'In', values: ['y', 'x'] },
        { key: 'd', operator: 'NotIn', values: ['z'] },
        { key: 'e', operator: 'Exists' },
        { key: 'f', operator: 'DoesNotExist' },
      ],
    }),
    'a=1,b=2,c in (x,y),d notin (z),e,!f',
  );
});
