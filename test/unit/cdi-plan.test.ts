// planDataVolume: every phase CDI reports on the way from a DataVolume to a filled claim.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { DataVolume } from '../../src/api/types.ts';
import { CDI_TASK_ENV, CLAIM_ANNOTATIONS as A } from '../../src/contract/cdi.ts';
import { claimSize, planDataVolume, type DataVolumeInput } from '../../src/cdi/plan.ts';

const NOW = '2026-12-03T10:00:00Z';
const params = { image: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent' };
const wffc = { metadata: { name: 'local-path' }, provisioner: 'rancher.io/local-path', volumeBindingMode: 'WaitForFirstConsumer' };

const dataVolume = (source: DataVolume['spec']['source'], annotations: Record<string, string> = {}): DataVolume => ({
  metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid', annotations },
  spec: { source, storage: { resources: { requests: { storage: '1Gi' } } } },
});
const HTTP = { http: { url: 'http://10.96.0.9:8080/disk.qcow2' } };

function claim(phase: 'Pending' | 'Bound', annotations: Record<string, string> = {}): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      uid: 'pvc-uid',
      annotations,
      ownerReferences: [{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'disk', uid: 'dv-uid' }],
    },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1142278537' } }, volumeMode: 'Filesystem' },
    status: { phase, ...(phase === 'Bound' ? { capacity: { storage: '1142278537' } } : {}) },
  };
}

function pod(phase: string, extra: { restarts?: number; message?: string; ready?: boolean } = {}): V1Pod {
  return {
    metadata: { name: 'importer-disk', namespace: 'ns', labels: { 'cdi.kubevirt.io/datavolume-uid': 'dv-uid' } },
    status: {
      phase,
      podIP: '10.244.0.7',
      conditions: [{ type: 'Ready', status: extra.ready ? 'True' : 'False' }],
      containerStatuses: [
        {
          name: 'importer',
          image: '',
          imageID: '',
          ready: !!extra.ready,
          restartCount: extra.restarts ?? 0,
          ...(extra.message ? { lastState: { terminated: { exitCode: 1, message: extra.message } } } : {}),
          state: phase === 'Running' ? { running: {} } : {},
        },
      ],
    },
  };
}

const plan = (dv: DataVolume, rest: Partial<DataVolumeInput> = {}) =>
  planDataVolume({ dv, storageClass: wffc, now: NOW, params, podToken: 'secret', ...rest });
const reasons = (p: ReturnType<typeof plan>) => p.status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`);

test('without a claim: the claim is made, grown by the filesystem overhead, owned by the DataVolume, annotated as CDI does', () => {
  const p = plan(dataVolume(HTTP, { [A.bindImmediate]: '' }));
  assert.equal(p.status.phase, 'Pending');
  const made = p.createClaim!;
  assert.equal(made.spec?.resources?.requests?.storage, '1142278537', '1Gi, of which the filesystem keeps 6%');
  assert.deepEqual(made.spec?.accessModes, ['ReadWriteOnce']);
  assert.equal(made.metadata?.ownerReferences?.[0].uid, 'dv-uid');
  assert.equal(made.metadata?.annotations?.[A.importEndpoint], HTTP.http.url);
  assert.equal(made.metadata?.annotations?.[A.bindImmediate], '', 'force-bind is carried over whatever its value');
  assert.equal(
    claimSize({ ...dataVolume(HTTP), spec: { pvc: { resources: { requests: { storage: '1Gi' } } } } }, '0.06'),
    '1Gi',
    'spec.pvc as given',
  );
});

test('a claim waiting for its first consumer: no importer until one is scheduled or binding is forced', () => {
  const waiting = plan(dataVolume(HTTP), { claim: claim('Pending') });
  assert.equal(waiting.status.phase, 'WaitForFirstConsumer');
  assert.equal(waiting.createPod, undefined);
  assert.deepEqual(reasons(waiting)?.[0], 'Bound=False/Pending');
  const consumer = plan(dataVolume(HTTP), { claim: claim('Pending', { [A.selectedNode]: 'node01' }) });
  assert.ok(consumer.createPod, 'the scheduler chose a node: the importer goes there');
  const forced = plan(dataVolume(HTTP), { claim: claim('Pending', { [A.bindImmediate]: '' }) });
  assert.ok(forced.createPod);
});

test('a bound claim gets its importer, told the task; running, it reports progress as CDI formats it', () => {
  const scheduled = plan(dataVolume(HTTP), { claim: claim('Bound') });
  assert.equal(scheduled.status.phase, 'ImportScheduled');
  const env = scheduled.createPod!.spec!.containers[0].env!;
  const task = JSON.parse(env.find((e) => e.name === CDI_TASK_ENV)!.value!);
  assert.deepEqual(task.source, { type: 'http', url: HTTP.http.url });
  assert.equal(task.target.volumeMode, 'Filesystem');
  assert.equal(task.target.sizeBytes, 1073741824, 'capacity less the overhead, in whole MiB');
  assert.equal(scheduled.createPod!.metadata!.ownerReferences![0].kind, 'DataVolume', 'it goes with its DataVolume');
  assert.deepEqual(scheduled.annotateClaim, { [A.podPhase]: 'Pending' });
  assert.deepEqual(
    scheduled.events.map((e) => e.reason),
    ['ImportScheduled', 'Bound'],
  );
  const running = plan(dataVolume(HTTP), {
    claim: claim('Bound', { [A.podPhase]: 'Pending' }),
    pod: pod('Running', { ready: true }),
    progress: 45.5,
  });
  assert.equal(running.status.phase, 'ImportInProgress');
  assert.equal(running.status.progress, '45.50%');
  assert.equal(running.pollProgress, true);
  assert.equal(reasons(running)?.[2], 'Running=True/Pod is running');
  assert.equal(running.annotateClaim?.[A.podPhase], 'Running');
});

test('a failing importer: the Running condition carries its message (a claim too small said as CDI says it), with an event, and the restarts count', () => {
  const message = 'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found';
  const failing = plan(dataVolume(HTTP), {
    claim: claim('Bound', { [A.podPhase]: 'Running' }),
    pod: pod('Running', { restarts: 2, message }),
  });
  assert.equal(failing.status.phase, 'ImportInProgress');
  assert.equal(failing.status.restartCount, 2);
  assert.deepEqual(failing.status.conditions?.[2], { ...failing.status.conditions?.[2], status: 'False', reason: 'Error', message });
  assert.deepEqual(
    failing.events.filter((e) => e.type === 'Warning').map((e) => [e.reason, e.message]),
    [['Error', message]],
  );
  assert.equal(failing.annotateClaim?.[A.runningMessage], message);
  const tooSmall = plan(dataVolume(HTTP), {
    claim: claim('Bound', { [A.podPhase]: 'Running' }),
    pod: pod('Running', {
      restarts: 1,
      message: 'virtual image size 67108864 is larger than the reported available storage 15728640. A larger PVC is required',
    }),
  });
  assert.equal(tooSmall.status.conditions?.[2].message, 'DataVolume too small to contain image');
});

test('done: the claim remembers it, the DataVolume Succeeds at 100.0% and the importer is removed', () => {
  const finished = plan(dataVolume(HTTP), { claim: claim('Bound', { [A.podPhase]: 'Running' }), pod: pod('Succeeded') });
  assert.equal(finished.annotateClaim?.[A.podPhase], 'Succeeded');
  const dv = { ...dataVolume(HTTP), status: { phase: 'ImportInProgress' } };
  const succeeded = plan(dv, { claim: claim('Bound', { [A.podPhase]: 'Succeeded' }), pod: pod('Succeeded') });
  assert.equal(succeeded.status.phase, 'Succeeded');
  assert.equal(succeeded.status.progress, '100.0%');
  assert.deepEqual(reasons(succeeded), ['Bound=True/Bound', 'Ready=True/', 'Running=False/Completed']);
  assert.equal(succeeded.status.conditions?.[2].message, 'Import Complete');
  assert.equal(succeeded.deletePod, 'importer-disk');
  assert.deepEqual(
    succeeded.events.filter((e) => e.reason !== 'Bound').map((e) => [e.reason, e.message]),
    [['ImportSucceeded', 'Successfully imported into PVC disk']],
  );
});

test('a fill container that exited 0 is done at once, before the kubelet turns the pod Succeeded', () => {
  const exited = (exitCode: number, restartPolicy: string): V1Pod => {
    const p = pod('Running');
    return {
      ...p,
      spec: { restartPolicy, containers: [] },
      status: { ...p.status, containerStatuses: [{ ...p.status!.containerStatuses![0], state: { terminated: { exitCode } } }] },
    };
  };
  const running = claim('Bound', { [A.podPhase]: 'Running' });
  assert.equal(plan(dataVolume(HTTP), { claim: running, pod: exited(0, 'OnFailure') }).annotateClaim?.[A.podPhase], 'Succeeded');
  assert.equal(plan(dataVolume(HTTP), { claim: running, pod: exited(0, 'Always') }).annotateClaim?.[A.podPhase], undefined, 'restarted');
  const failed = plan(dataVolume(HTTP), { claim: running, pod: exited(1, 'OnFailure') });
  assert.equal(failed.annotateClaim?.[A.podPhase], undefined, 'exit 1 is retried by the kubelet');
  assert.notEqual(failed.status.phase, 'Succeeded');
});

test('a fill pod that said its work is complete is done at once, before the kubelet reports its exit; one that did not finish is not', () => {
  const running = claim('Bound', { [A.podPhase]: 'Running' });
  const told = plan(dataVolume(HTTP), { claim: running, pod: pod('Running', { ready: true }), progress: 100, fillComplete: true });
  assert.equal(told.annotateClaim?.[A.podPhase], 'Succeeded');
  assert.equal(
    plan(dataVolume(HTTP), { claim: running, pod: pod('Running', { ready: true }), progress: 100 }).annotateClaim?.[A.podPhase],
    undefined,
  );
  const upload = plan(dataVolume({ upload: {} }), {
    claim: claim('Bound', { [A.podPhase]: 'Running', [A.uploadTarget]: '' }),
    pod: pod('Running', { ready: true }),
    fillComplete: true,
  });
  assert.equal(upload.annotateClaim?.[A.podPhase], 'Succeeded');
  const failed = plan(dataVolume(HTTP), { claim: running, pod: pod('Failed'), fillComplete: true });
  assert.notEqual(failed.annotateClaim?.[A.podPhase], 'Succeeded', 'a pod the kubelet reports failed is not taken for done');
});

test('an upload: the upload server starts at once (it is the first consumer), UploadReady once it is ready, no progress figure', () => {
  const upload = dataVolume({ upload: {} });
  const scheduled = plan(upload, { claim: claim('Pending') });
  assert.equal(scheduled.status.phase, 'UploadScheduled');
  assert.equal(scheduled.createPod!.metadata!.name, 'cdi-upload-disk');
  const ready = plan(upload, {
    claim: claim('Bound', { [A.podPhase]: 'Running', [A.uploadTarget]: '' }),
    pod: pod('Running', { ready: true }),
    progress: 10,
  });
  assert.equal(ready.status.phase, 'UploadReady');
  assert.equal(ready.status.progress, 'N/A');
  assert.equal(ready.annotateClaim?.[A.podReady], 'true', 'the upload proxy waits for this');
});

test('a registry source is copied out of the image by the node (init containers), then converted', () => {
  const registry = dataVolume({ registry: { url: 'docker://registry:5000/kubevirt/cirros-container-disk-demo:devel' } });
  const p = plan(registry, { claim: claim('Bound') });
  const init = p.createPod!.spec!.initContainers!;
  assert.deepEqual(
    init.map((c) => c.image),
    [params.image, 'registry:5000/kubevirt/cirros-container-disk-demo:devel'],
  );
  const task = JSON.parse(p.createPod!.spec!.containers[0].env!.find((e) => e.name === CDI_TASK_ENV)!.value!);
  assert.equal(task.source.type, 'registry');
});

test('a source kubevirt-ts does not fill yet fails with a message saying so', () => {
  const s3 = plan(dataVolume({ s3: { url: 's3://bucket/disk.img' } }));
  assert.equal(s3.status.phase, 'Failed');
  assert.match(s3.status.conditions?.[1].message ?? '', /not supported yet/);
});

test('a clone waits for its source claim to exist and be filled, has the source served by a pod in its namespace, then imports from it', () => {
  const clone = dataVolume({ pvc: { name: 'golden', namespace: 'images' } });
  const source = (annotations: Record<string, string>): V1PersistentVolumeClaim => ({
    metadata: { name: 'golden', namespace: 'images', annotations },
    spec: { volumeMode: 'Filesystem' },
    status: { phase: 'Bound' },
  });
  const missing = plan(clone, { claim: claim('Bound'), cloneSource: {} });
  assert.equal(missing.status.phase, 'CloneScheduled');
  assert.deepEqual(
    missing.events.filter((e) => e.type === 'Warning').map((e) => [e.reason, e.message]),
    [['CloneWithoutSource', "The source pvc golden doesn't exist"]],
  );
  assert.equal(missing.requeueAfterMs, 2000);
  const importing = plan(clone, {
    claim: claim('Bound'),
    cloneSource: { claim: source({ [A.importSource]: 'http', [A.podPhase]: 'Running' }) },
  });
  assert.equal(importing.createSourcePod, undefined, 'the source is still being filled');
  const filled = plan(clone, {
    claim: claim('Bound'),
    cloneSource: { claim: source({ [A.importSource]: 'http', [A.podPhase]: 'Succeeded' }) },
  });
  const served = filled.createSourcePod!;
  assert.equal(served.metadata!.namespace, 'images');
  assert.equal(served.spec!.volumes![0].persistentVolumeClaim!.readOnly, true);
  const sourcePod: V1Pod = { ...served, status: { podIP: '10.244.0.9', conditions: [{ type: 'Ready', status: 'True' }] } };
  const started = plan(clone, { claim: claim('Bound'), cloneSource: { claim: source({}), pod: sourcePod } });
  const task = JSON.parse(started.createPod!.spec!.containers[0].env!.find((e) => e.name === CDI_TASK_ENV)!.value!);
  // Over TLS, by IP, checking the name the source pod's certificate is issued for; the executor gives the importer the CA.
  assert.deepEqual(task.source, {
    type: 'clone',
    url: 'https://10.244.0.9:8080/disk.img',
    serverName: 'dv-uid-source-pod.images.fill-pod.cdi.kubevirt.io',
  });
  assert.equal(started.createPodTrustsFillPods, true);
  assert.equal(filled.createPodTrustsFillPods, undefined);
  assert.equal(started.status.phase, 'CloneScheduled');
  const done = plan(
    { ...clone, status: { phase: 'CloneInProgress' } },
    {
      claim: claim('Bound', { [A.podPhase]: 'Succeeded' }),
      cloneSource: { claim: source({}), pod: sourcePod },
    },
  );
  assert.equal(done.status.phase, 'Succeeded');
  assert.deepEqual(done.deleteSourcePod, { namespace: 'images', name: 'dv-uid-source-pod' });
  assert.ok(done.events.some((e) => e.reason === 'CloneSucceeded' && e.message === 'Successfully cloned from images/golden into ns/disk'));
});

test('a fill pod named after a long DataVolume is cut to 63 characters without a trailing dash', () => {
  const long = dataVolume(HTTP);
  long.metadata.name = `${'a'.repeat(53)}-bcdefgh`;
  const made = plan(long, { claim: claim('Bound') }).createPod!.metadata!.name!;
  assert.equal(made, `importer-${'a'.repeat(53)}`);
});
