// The filesystem overhead, read from the CDIConfig as CDI reads it: the status
// cdi-controller computes from the spec (per StorageClass), the share a claim
// of a class gets, and the claim sizes and disk sizes that follow from it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Node, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { CDIConfig, DataVolume } from '../../src/api/types.ts';
import { cdiConfigStatus, filesystemOverheadStatus, uploadProxyAddress } from '../../src/cdi/cdi-config.ts';
import { claimFor, planDataVolume, taskTarget } from '../../src/cdi/plan.ts';
import { CDI_TASK_ENV, type CdiTask, DEFAULT_FILESYSTEM_OVERHEAD, filesystemOverheadFor } from '../../src/contract/cdi.ts';

const config = (filesystemOverhead?: NonNullable<CDIConfig['spec']>['filesystemOverhead']): CDIConfig => ({
  metadata: { name: 'config' },
  spec: { ...(filesystemOverhead ? { filesystemOverhead } : {}) },
});

test("the status: CDI's default globally and for every StorageClass when the spec says nothing", () => {
  assert.deepEqual(filesystemOverheadStatus(config(), ['local-path', 'fast']), {
    global: '0.06',
    storageClass: { fast: '0.06', 'local-path': '0.06' },
  });
  assert.deepEqual(filesystemOverheadStatus(undefined, []), { global: DEFAULT_FILESYSTEM_OVERHEAD, storageClass: {} });
});

test("the status: the spec's global share for every class without its own; a class's own share; invalid shares ignored", () => {
  const status = filesystemOverheadStatus(config({ global: '0.1', storageClass: { fast: '0.02', bad: '1.5', gone: '0.3' } }), [
    'local-path',
    'fast',
    'bad',
  ]);
  // A class named in the spec but absent from the cluster is left out, as CDI lists the cluster's classes.
  assert.deepEqual(status, { global: '0.1', storageClass: { bad: '0.1', fast: '0.02', 'local-path': '0.1' } });
  assert.equal(filesystemOverheadStatus(config({ global: '12%' }), [])?.global, '0.06');
  assert.equal(filesystemOverheadStatus(config({ global: '1' }), [])?.global, '1');
  assert.equal(filesystemOverheadStatus(config({ global: '0.125' }), [])?.global, '0.125');
  assert.equal(filesystemOverheadStatus(config({ global: '0.1255' }), [])?.global, '0.06');
  assert.deepEqual(cdiConfigStatus(config({ global: '0.1' }), undefined, 'local-path', ['local-path']).filesystemOverhead, {
    global: '0.1',
    storageClass: { 'local-path': '0.1' },
  });
});

test("a claim's share: its class's, else the global one; none on a block device; CDI's default without a status", () => {
  const status = { global: '0.1', storageClass: { fast: '0.02' } };
  assert.equal(filesystemOverheadFor(status, 'fast'), '0.02');
  assert.equal(filesystemOverheadFor(status, 'other'), '0.1');
  assert.equal(filesystemOverheadFor(status, undefined), '0.1');
  assert.equal(filesystemOverheadFor(status, 'fast', 'Block'), '0');
  assert.equal(filesystemOverheadFor(undefined, 'fast'), '0.06');
  assert.equal(filesystemOverheadFor({}, 'fast'), '0.06');
});

test('the share sizes the claim of a spec.storage DataVolume and the disk its fill pod writes', () => {
  const dv: DataVolume = {
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '1Gi' } } } },
  };
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;
  assert.equal(claimFor(dv, '0.2').spec?.resources?.requests?.storage, String(Math.ceil(GiB / 0.8)));
  assert.equal(claimFor(dv).spec?.resources?.requests?.storage, String(Math.ceil(GiB / 0.94)));
  const claim = claimFor(dv, '0.2') as V1PersistentVolumeClaim;
  assert.equal(taskTarget(claim, '0.2', 'kubevirt').sizeBytes, Math.floor((Math.ceil(GiB / 0.8) * 0.8) / MiB) * MiB);
  // Through the plan: the params' share reaches the claim and the fill pod's task.
  const params = { image: 'img', imagePullPolicy: 'IfNotPresent', filesystemOverhead: '0.2' };
  const base = { dv, podToken: 't', now: '2026-01-01T00:00:00Z', params };
  assert.equal(planDataVolume(base).createClaim?.spec?.resources?.requests?.storage, String(Math.ceil(GiB / 0.8)));
  const bound: V1PersistentVolumeClaim = {
    ...claim,
    metadata: { ...claim.metadata, uid: 'pvc-uid' },
    status: { phase: 'Bound', capacity: { storage: String(Math.ceil(GiB / 0.8)) } },
  };
  const pod = planDataVolume({ ...base, claim: bound }).createPod!;
  const task = JSON.parse(pod.spec!.containers[0].env!.find((e) => e.name === CDI_TASK_ENV)!.value!) as CdiTask;
  assert.ok(task.kind === 'import');
  if (task.kind === 'import') assert.equal(task.target.sizeBytes, 1024 * MiB);
});

test("the upload proxy's address: the node port on a Ready node that takes pods, before a tainted one", () => {
  const service = { spec: { ports: [{ port: 443, nodePort: 31001 }] } };
  const node = (name: string, ip: string, ready: boolean, taint?: string): V1Node => ({
    metadata: { name },
    spec: taint ? { taints: [{ key: taint, effect: 'NoSchedule' }] } : {},
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      addresses: [{ type: 'InternalIP', address: ip }],
    },
  });
  const simulated = node('kwok-node-0', '10.244.0.9', true, 'kwok.x-k8s.io/node');
  assert.equal(uploadProxyAddress(service, [simulated, node('node01', '192.0.2.2', true)]), '192.0.2.2:31001');
  assert.equal(uploadProxyAddress(service, [node('node01', '192.0.2.2', false), simulated]), '10.244.0.9:31001');
  assert.equal(uploadProxyAddress({ spec: { ports: [{ port: 443 }] } }, [node('node01', '192.0.2.2', true)]), undefined);
});
