// Bare upload claims (virtctl image-upload pvc): planUploadClaim, and the
// UploadClaimController's wiring over seeded informers, as CDI's upload
// controller: an upload server owned by the claim, the claim annotated with
// its phase and readiness, the server removed once the upload succeeded.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import * as x509 from '@peculiar/x509';
import { podToken } from '../../src/cdi/datavolume-controller.ts';
import { fillPodSubjectUid, isBareUploadClaim, planUploadClaim, type UploadClaimInput } from '../../src/cdi/plan.ts';
import { fillPodTls } from '../../src/cdi/fill-pod-tls.ts';
import { UploadClaimController } from '../../src/cdi/upload-claim-controller.ts';
import {
  CDI_TASK_ENV,
  CLAIM_ANNOTATIONS as A,
  type CdiTask,
  DATAVOLUME_UID_LABEL,
  FILL_POD_TLS_ENV,
  POD_TOKEN_ENV,
} from '../../src/contract/cdi.ts';
import { createCa } from '../../src/lib/pki.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { capturedEvents, capturedLog } from '../helpers/wiring.ts';

const params = { image: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent' };
const fillPodCa = await createCa(new Date());

/** The claim virtctl image-upload pvc makes (no DataVolume, no CDI label). */
function bareClaim(annotations: Record<string, string> = {}, phase: 'Pending' | 'Bound' = 'Pending'): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'up',
      namespace: 'ns',
      uid: 'pvc-uid',
      annotations: { [A.uploadTarget]: '', [A.contentType]: 'kubevirt', ...annotations },
      labels: { 'cdi.kubevirt.io/applyStorageProfile': 'true' },
    },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'local-path' },
    status: { phase },
  };
}

function server(
  phase: string,
  extra: { ready?: boolean; restarts?: number; terminated?: { exitCode: number; reason: string; message?: string } } = {},
): V1Pod {
  return {
    metadata: {
      name: 'cdi-upload-up',
      namespace: 'ns',
      labels: { app: 'containerized-data-importer', [DATAVOLUME_UID_LABEL]: 'pvc-uid' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'up', uid: 'pvc-uid', controller: true }],
    },
    spec: { restartPolicy: 'OnFailure', containers: [] },
    status: {
      phase,
      podIP: '10.244.0.9',
      conditions: [{ type: 'Ready', status: extra.ready ? 'True' : 'False' }],
      containerStatuses: [
        {
          name: 'cdi-upload-server',
          image: '',
          imageID: '',
          ready: !!extra.ready,
          restartCount: extra.restarts ?? 0,
          state: extra.terminated
            ? { terminated: extra.terminated }
            : phase === 'Running'
              ? { running: {} }
              : { waiting: { reason: 'ContainerCreating' } },
        },
      ],
    },
  };
}

const plan = (rest: Partial<UploadClaimInput> & { claim: V1PersistentVolumeClaim }) =>
  planUploadClaim({ podToken: 'secret', params, ...rest });

test('a bare upload claim is one with the upload-target annotation and no DataVolume owner', () => {
  assert.equal(isBareUploadClaim(bareClaim()), true);
  const ofDv = bareClaim();
  ofDv.metadata!.ownerReferences = [{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'up', uid: 'dv-uid' }];
  assert.equal(isBareUploadClaim(ofDv), false);
  assert.equal(fillPodSubjectUid(ofDv), 'dv-uid');
  assert.equal(fillPodSubjectUid(bareClaim()), 'pvc-uid');
  const plain = bareClaim();
  delete plain.metadata!.annotations![A.uploadTarget];
  assert.equal(isBareUploadClaim(plain), false);
});

test('without a server: an upload server owned by the claim is made at once, even while a WaitForFirstConsumer claim is Pending', () => {
  const p = plan({ claim: bareClaim({ [A.contentType]: 'archive' }), params: { ...params, filesystemOverhead: '0.1' } });
  const pod = p.createPod!;
  assert.equal(pod.metadata?.name, 'cdi-upload-up');
  assert.deepEqual(pod.metadata?.ownerReferences, [
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'up', uid: 'pvc-uid', controller: true, blockOwnerDeletion: true },
  ]);
  assert.equal(pod.metadata?.labels?.[DATAVOLUME_UID_LABEL], 'pvc-uid');
  assert.equal(pod.metadata?.labels?.['cdi.kubevirt.io'], 'cdi-upload-server');
  assert.equal(pod.metadata?.labels?.app, 'containerized-data-importer');
  assert.deepEqual(pod.spec?.volumes?.[0], { name: 'cdi-data-vol', persistentVolumeClaim: { claimName: 'up' } });
  const env = pod.spec?.containers[0].env ?? [];
  assert.equal(env.find((e) => e.name === POD_TOKEN_ENV)?.value, 'secret');
  const task = JSON.parse(env.find((e) => e.name === CDI_TASK_ENV)!.value!) as CdiTask;
  assert.equal(task.kind, 'upload');
  if (task.kind !== 'upload') return;
  assert.equal(task.contentType, 'archive');
  // 1Gi less the CDIConfig's 10%, rounded down to MiB.
  assert.equal(task.target.sizeBytes, Math.floor((1024 ** 3 * 0.9) / 1024 ** 2) * 1024 ** 2);
  assert.deepEqual(p.annotateClaim, { [A.uploadPodName]: 'cdi-upload-up', [A.podPhase]: 'Pending', [A.podReady]: 'false' });
});

test('a server running and ready: the claim says so (what virtctl waits for), and nothing is made twice', () => {
  const p = plan({
    claim: bareClaim({ [A.uploadPodName]: 'cdi-upload-up', [A.podPhase]: 'Pending', [A.podReady]: 'false' }),
    pod: server('Running', { ready: true }),
  });
  assert.equal(p.createPod, undefined);
  assert.equal(p.deletePod, undefined);
  assert.deepEqual(p.annotateClaim, {
    [A.podPhase]: 'Running',
    [A.podReady]: 'true',
    [A.running]: 'true',
    [A.runningMessage]: '',
    [A.runningReason]: 'Pod is running',
  });
  // Once written, the same state asks for nothing.
  const again = plan({ claim: bareClaim({ ...p.annotateClaim }), pod: server('Running', { ready: true }) });
  assert.equal(again.annotateClaim, undefined);
  assert.deepEqual(again.events, []);
});

test('the server exits 0: Succeeded is written, the upload reported, and the server removed; the claim keeps Succeeded after', () => {
  const done = server('Running', { terminated: { exitCode: 0, reason: 'Completed' } });
  const p = plan({ claim: bareClaim({ [A.podPhase]: 'Running', [A.podReady]: 'true' }), pod: done });
  assert.equal(p.annotateClaim?.[A.podPhase], 'Succeeded');
  assert.equal(p.annotateClaim?.[A.podReady], 'false');
  assert.equal(p.deletePod, 'cdi-upload-up');
  assert.deepEqual(p.events, [{ type: 'Normal', reason: 'UploadSucceeded', message: 'Upload Successful' }]);
  // Afterwards: nothing is made again, a leftover server is removed.
  const after = bareClaim({ [A.podPhase]: 'Succeeded' }, 'Bound');
  assert.deepEqual(plan({ claim: after }), { events: [] });
  assert.equal(plan({ claim: after, pod: done }).deletePod, 'cdi-upload-up');
});

test('a failed upload server: restarts counted on the claim, the failure written and reported once', () => {
  const failing = server('Running', { restarts: 2, terminated: { exitCode: 1, reason: 'Error', message: 'no space left on device\n' } });
  const p = plan({ claim: bareClaim({ [A.podPhase]: 'Running', [A.podRestarts]: '1' }), pod: failing });
  assert.equal(p.annotateClaim?.[A.podRestarts], '2');
  assert.equal(p.annotateClaim?.[A.running], 'false');
  assert.equal(p.annotateClaim?.[A.runningMessage], 'DataVolume too small to contain image');
  assert.deepEqual(p.events, [{ type: 'Warning', reason: 'Error', message: 'DataVolume too small to contain image' }]);
  assert.deepEqual(plan({ claim: bareClaim({ ...p.annotateClaim, [A.podPhase]: 'Running' }), pod: failing }).events, []);
  // The restart count on the claim never goes down.
  assert.equal(plan({ claim: bareClaim({ [A.podRestarts]: '5' }), pod: failing }).annotateClaim?.[A.podRestarts], undefined);
});

test('a claim going away, or no longer an upload target, has its server removed and nothing made', () => {
  const going = bareClaim();
  going.metadata!.deletionTimestamp = new Date();
  assert.deepEqual(plan({ claim: going, pod: server('Running') }), { events: [], deletePod: 'cdi-upload-up' });
  const plain = bareClaim();
  delete plain.metadata!.annotations![A.uploadTarget];
  assert.deepEqual(plan({ claim: plain, pod: server('Running') }), { events: [], deletePod: 'cdi-upload-up' });
  assert.deepEqual(plan({ claim: plain }), { events: [] });
});

// ---------------------------------------------------------------------------------------------
// Wiring

class RecordingApi {
  readonly calls: [string, ...unknown[]][] = [];
  async annotateClaim(...args: unknown[]) {
    this.calls.push(['annotateClaim', ...args]);
  }
  async createPod(...args: unknown[]) {
    this.calls.push(['createPod', ...args]);
  }
  async deletePod(...args: unknown[]) {
    this.calls.push(['deletePod', ...args]);
  }
}

function setup(claims: V1PersistentVolumeClaim[] = [], pods: V1Pod[] = []) {
  const informers = { claims: new SeededInformer<V1PersistentVolumeClaim>(claims), pods: new SeededInformer<V1Pod>(pods) };
  const api = new RecordingApi();
  const queue = new WorkQueue();
  const { record, events } = capturedEvents();
  const key = Buffer.from('token-key');
  const controller = new UploadClaimController({
    api,
    informers,
    queue,
    record,
    log: capturedLog().log,
    params,
    filesystemOverhead: () => '0.06',
    podTokenKey: key,
    tls: fillPodTls(() => ({ signer: fillPodCa, bundle: fillPodCa.cert })),
  });
  return { informers, api, queue, events, controller, key };
}

test('wiring: a bare upload claim is queued and gets its server, with the token derived from the claim UID', async () => {
  const { informers, api, queue, controller, key } = setup();
  const ofDv = bareClaim();
  ofDv.metadata = {
    ...ofDv.metadata,
    name: 'dv-claim',
    uid: 'other',
    ownerReferences: [{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'dv-claim', uid: 'dv' }],
  };
  informers.claims.upsert(ofDv);
  informers.claims.upsert({ metadata: { name: 'plain', namespace: 'ns', uid: 'p' } });
  assert.equal(queue.length, 0, "a DataVolume's claim and a plain claim are not this controller's");
  informers.claims.upsert(bareClaim());
  assert.equal(await queue.get(), 'ns/up');
  await controller.reconcile('ns/up');
  const [annotate, create] = api.calls;
  assert.deepEqual(annotate, [
    'annotateClaim',
    'ns',
    'up',
    { [A.uploadPodName]: 'cdi-upload-up', [A.podPhase]: 'Pending', [A.podReady]: 'false' },
  ]);
  assert.equal(create[0], 'createPod');
  const pod = create[2] as V1Pod;
  assert.equal(pod.spec?.containers[0].env?.find((e) => e.name === POD_TOKEN_ENV)?.value, podToken(key, 'pvc-uid'));
  // Its serving certificate, for its own name, from the fill-pod CA; a server needs no CA of its own.
  const env = Object.fromEntries((pod.spec?.containers[0].env ?? []).map((e) => [e.name, e.value]));
  const cert = new x509.X509Certificate(env[FILL_POD_TLS_ENV.cert]!);
  assert.equal(cert.subject, 'CN=cdi-upload-up.ns.fill-pod.cdi.kubevirt.io');
  assert.equal(cert.issuer, new x509.X509Certificate(fillPodCa.cert).subject);
  assert.match(env[FILL_POD_TLS_ENV.key] ?? '', /BEGIN PRIVATE KEY/);
  assert.equal(env[FILL_POD_TLS_ENV.ca], undefined);
  assert.equal(pod.spec?.containers[0].readinessProbe?.httpGet?.scheme, 'HTTPS');
});

test('wiring: the server changing queues its claim; ready is written; success writes, reports and removes the server', async () => {
  const claim = bareClaim({ [A.uploadPodName]: 'cdi-upload-up', [A.podPhase]: 'Pending', [A.podReady]: 'false' });
  const { informers, api, queue, events, controller } = setup([claim]);
  informers.pods.upsert(server('Running', { ready: true }));
  assert.equal(await queue.get(), 'ns/up');
  await controller.reconcile('ns/up');
  assert.deepEqual(
    api.calls.map((c) => c[0]),
    ['annotateClaim'],
  );
  assert.equal((api.calls[0][3] as Record<string, string>)[A.podReady], 'true');
  api.calls.length = 0;
  informers.pods.upsert(server('Running', { terminated: { exitCode: 0, reason: 'Completed' } }));
  await controller.reconcile('ns/up');
  assert.deepEqual(
    api.calls.map((c) => c[0]),
    ['annotateClaim', 'deletePod'],
  );
  assert.equal((api.calls[0][3] as Record<string, string>)[A.podPhase], 'Succeeded');
  assert.deepEqual(api.calls[1], ['deletePod', 'ns', 'cdi-upload-up']);
  assert.deepEqual(events, [{ name: 'up', type: 'Normal', reason: 'UploadSucceeded', message: 'Upload Successful' }]);
});
