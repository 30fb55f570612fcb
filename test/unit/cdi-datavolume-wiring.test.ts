// DataVolumeController's wiring over seeded informers, for what the pure plan
// leaves to it: every pod it creates gets a serving certificate for its own
// name from the fill-pod CA (a clone's importer also the CA bundle, to check
// its source), the progress poll checks the fill pod's certificate, and a fill
// pod that says its work is complete has its claim marked filled before the
// kubelet reports the pod's exit.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import * as x509 from '@peculiar/x509';
import type { DataVolume } from '../../src/api/types.ts';
import { DataVolumeController, type FillProgress } from '../../src/cdi/datavolume-controller.ts';
import type { FillPodClientTls } from '../../src/cdi/fill-pod-client.ts';
import { fillPodTls } from '../../src/cdi/fill-pod-tls.ts';
import { CDI_TASK_ENV, CLAIM_ANNOTATIONS as A, FILL_POD_TLS_ENV } from '../../src/contract/cdi.ts';
import type { Typed } from '../../src/lib/kube.ts';
import { createCa } from '../../src/lib/pki.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { capturedEvents, capturedLog } from '../helpers/wiring.ts';

const params = { image: 'registry:5000/kubevirt-ts/virt-launcher:devel', imagePullPolicy: 'IfNotPresent' };
const ca = await createCa(new Date());
const other = await createCa(new Date());
/** After a rotation: the current CA signs, the bundle holds it and the one before. */
const bundle = ca.cert + other.cert;

class RecordingApi {
  readonly created: [string, V1Pod][] = [];
  readonly polled: [string, FillPodClientTls][] = [];
  readonly annotated: Record<string, string>[] = [];
  answer: FillProgress = { progress: 42, complete: false };
  async createClaim() {}
  async annotateClaim(_namespace: string, _name: string, annotations: Record<string, string>) {
    this.annotated.push(annotations);
  }
  async createPod(namespace: string, pod: V1Pod) {
    this.created.push([namespace, pod]);
  }
  async deletePod() {}
  async replaceDataVolumeStatus() {}
  async fetchProgress(url: string, tls: FillPodClientTls) {
    this.polled.push([url, tls]);
    return this.answer;
  }
}

const owner = { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'disk', uid: 'dv-uid' };
const claim = (namespace: string, name: string, annotations: Record<string, string>, owned = true): V1PersistentVolumeClaim => ({
  metadata: { name, namespace, uid: `${name}-uid`, annotations, ...(owned ? { ownerReferences: [owner] } : {}) },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeMode: 'Filesystem', storageClassName: 'sc' },
  status: { phase: 'Bound', capacity: { storage: '1Gi' } },
});
const dataVolume = (source: DataVolume['spec']['source']): Typed<DataVolume> =>
  ({
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: { source, storage: { storageClassName: 'sc', resources: { requests: { storage: '1Gi' } } } },
  }) as Typed<DataVolume>;

function setup(dvs: Typed<DataVolume>[], claims: V1PersistentVolumeClaim[], pods: V1Pod[] = []) {
  const informers = {
    dataVolumes: new SeededInformer<Typed<DataVolume>>(dvs),
    claims: new SeededInformer<V1PersistentVolumeClaim>(claims),
    pods: new SeededInformer<V1Pod>(pods),
    storageClasses: new SeededInformer<V1StorageClass>([{ metadata: { name: 'sc' }, provisioner: 'p', volumeBindingMode: 'Immediate' }]),
  };
  const api = new RecordingApi();
  const controller = new DataVolumeController({
    api,
    informers,
    queue: new WorkQueue(),
    now: () => new Date(),
    record: capturedEvents().record,
    log: capturedLog().log,
    params,
    podTokenKey: Buffer.from('key'),
    tls: fillPodTls(() => ({ signer: ca, bundle })),
  });
  return { informers, api, controller };
}

const envOf = (pod: V1Pod) => Object.fromEntries((pod.spec?.containers[0].env ?? []).map((e) => [e.name, e.value]));
const subject = (pem: string | undefined) => new x509.X509Certificate(pem!).subject;

test('wiring: the clone source pod and the clone importer get certificates for their own names; only the importer gets the CA bundle', async () => {
  const source = claim('images', 'golden', { [A.importSource]: 'http', [A.podPhase]: 'Succeeded' }, false);
  const { informers, api, controller } = setup(
    [dataVolume({ pvc: { name: 'golden', namespace: 'images' } })],
    [claim('ns', 'disk', {}), source],
  );
  await controller.reconcile('ns/disk');
  const [[sourceNs, sourcePod]] = api.created;
  assert.equal(sourceNs, 'images');
  const sourceEnv = envOf(sourcePod);
  assert.equal(subject(sourceEnv[FILL_POD_TLS_ENV.cert]), 'CN=dv-uid-source-pod.images.fill-pod.cdi.kubevirt.io');
  assert.equal(new x509.X509Certificate(sourceEnv[FILL_POD_TLS_ENV.cert]!).issuer, subject(ca.cert));
  assert.match(sourceEnv[FILL_POD_TLS_ENV.key] ?? '', /PRIVATE KEY/);
  assert.equal(sourceEnv[FILL_POD_TLS_ENV.ca], undefined, 'the source serves; it calls no fill pod');

  informers.pods.upsert({ ...sourcePod, status: { podIP: '10.244.0.9', conditions: [{ type: 'Ready', status: 'True' }] } });
  api.created.length = 0;
  await controller.reconcile('ns/disk');
  const [[importerNs, importer]] = api.created;
  assert.equal(importerNs, 'ns');
  const env = envOf(importer);
  assert.equal(subject(env[FILL_POD_TLS_ENV.cert]), 'CN=importer-disk.ns.fill-pod.cdi.kubevirt.io');
  assert.equal(env[FILL_POD_TLS_ENV.ca], bundle);
  assert.deepEqual(JSON.parse(env[CDI_TASK_ENV]!).source, {
    type: 'clone',
    url: 'https://10.244.0.9:8080/disk.img',
    serverName: 'dv-uid-source-pod.images.fill-pod.cdi.kubevirt.io',
  });
});

test("wiring: an upload server gets its certificate and no CA; the progress poll checks the running importer's certificate", async () => {
  const upload = setup([dataVolume({ upload: {} })], [claim('ns', 'disk', { [A.uploadTarget]: '' })]);
  await upload.controller.reconcile('ns/disk');
  const [[, server]] = upload.api.created;
  assert.equal(subject(envOf(server)[FILL_POD_TLS_ENV.cert]), 'CN=cdi-upload-disk.ns.fill-pod.cdi.kubevirt.io');
  assert.equal(envOf(server)[FILL_POD_TLS_ENV.ca], undefined);

  const running: V1Pod = {
    metadata: { name: 'importer-disk', namespace: 'ns', labels: { 'cdi.kubevirt.io/datavolume-uid': 'dv-uid' }, ownerReferences: [owner] },
    spec: { containers: [{ name: 'importer' }], restartPolicy: 'OnFailure' },
    status: {
      phase: 'Running',
      podIP: '10.244.0.7',
      containerStatuses: [{ name: 'importer', image: '', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
  const importing = setup(
    [dataVolume({ http: { url: 'http://example/disk.img' } })],
    [claim('ns', 'disk', { [A.importSource]: 'http', [A.podPhase]: 'Running' })],
    [running],
  );
  await importing.controller.reconcile('ns/disk');
  assert.equal(importing.api.polled.length, 1);
  const [[url, tls]] = importing.api.polled;
  assert.equal(url, 'https://10.244.0.7:8080/progress?wait=2000');
  assert.equal(tls.servername, 'importer-disk.ns.fill-pod.cdi.kubevirt.io');
  assert.equal(tls.ca, bundle);
  assert.equal(tls.rejectUnauthorized, true);
});

test('wiring: a fill pod that answers its held progress request with complete has its claim marked filled at once, before the kubelet reports its exit', async () => {
  const running: V1Pod = {
    metadata: {
      name: 'importer-disk',
      namespace: 'ns',
      uid: 'importer-uid',
      labels: { 'cdi.kubevirt.io/datavolume-uid': 'dv-uid' },
      ownerReferences: [owner],
    },
    spec: { containers: [{ name: 'importer' }], restartPolicy: 'OnFailure' },
    status: {
      phase: 'Running',
      podIP: '10.244.0.7',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'importer', image: '', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
  const { api, controller } = setup(
    [dataVolume({ http: { url: 'http://example/disk.img' } })],
    [claim('ns', 'disk', { [A.importSource]: 'http', [A.podPhase]: 'Running', [A.podReady]: 'true' })],
    [running],
  );
  api.answer = { progress: 99, complete: false };
  await controller.reconcile('ns/disk');
  await new Promise((r) => setImmediate(r));
  await controller.reconcile('ns/disk');
  assert.deepEqual(api.annotated, [], 'still running: nothing to mark');

  api.answer = { progress: 100, complete: true };
  await new Promise((r) => setImmediate(r));
  await controller.reconcile('ns/disk');
  await new Promise((r) => setImmediate(r));
  await controller.reconcile('ns/disk');
  assert.deepEqual(api.annotated, [{ [A.podPhase]: 'Succeeded' }]);
});
