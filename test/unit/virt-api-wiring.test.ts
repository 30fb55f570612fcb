// virt-api's wiring: the server on 127.0.0.1 with a real TLS handshake,
// seeded instance type informers, and a recording fake of the API. The
// front proxy is played by a client certificate of the requestheader CA.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import type { V1ConfigMap, V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstancetype,
  VirtualMachinePreference,
} from '../../src/api/types.ts';
import type { JsonPatchOperation, Typed } from '../../src/lib/kube.ts';
import { readText } from '../../src/lib/raw-request.ts';
import { createCa, createLeaf, type KeyPair } from '../../src/operator/certs.ts';
import { healthEndpoints } from '../../src/lib/health.ts';
import { VirtApiServer, type VirtApiServerApi } from '../../src/virt-api/server.ts';
import { example } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { apiError, capturedLog } from '../helpers/wiring.ts';

import { verifyUploadToken } from '../../src/contract/upload-token.ts';
const UPLOAD_KEY = Buffer.from('upload token key');
const issued = new Date();
const ca = await createCa(issued);
const serving = await createLeaf(ca, { secret: 'virt-api', commonName: 'virt-api', dnsNames: ['localhost'], usage: 'server' }, issued);
const frontProxy = await createLeaf(ca, { secret: 'front-proxy', commonName: 'front-proxy-client', dnsNames: [], usage: 'client' }, issued);
const otherCa = await createCa(issued);
const impostor = await createLeaf(otherCa, { secret: 'impostor', commonName: 'front-proxy-client', dnsNames: [], usage: 'client' }, issued);

const REQUEST_HEADER = {
  'requestheader-client-ca-file': ca.cert,
  'requestheader-allowed-names': '["front-proxy-client"]',
  'requestheader-username-headers': '["X-Remote-User"]',
  'requestheader-group-headers': '["X-Remote-Group"]',
  'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
};
const SUBRESOURCES = '/apis/subresources.kubevirt.io/v1/namespaces/ns';

interface Write {
  method: string;
  namespace: string;
  name?: string;
  body: JsonPatchOperation[] | VirtualMachineInstanceMigration;
  dryRun?: 'All';
}

/** VMs and VMIs to read, by namespace/name; every write recorded. A failure set with failNext is thrown once by the next write. */
class RecordingApi implements VirtApiServerApi {
  /** Who may do what: the SubjectAccessReviews answered. */
  readonly grants = new Set<string>();
  async canI(q: { user: string; namespace: string; resource: string; subresource?: string; verb: string }): Promise<boolean> {
    return this.grants.has(`${q.user} ${q.verb} ${q.resource}${q.subresource ? `/${q.subresource}` : ''} in ${q.namespace}`);
  }

  readonly vms = new Map<string, VirtualMachine>();
  readonly vmis = new Map<string, VirtualMachineInstance>();
  readonly pods = new Map<string, V1Pod>();
  readonly writes: Write[] = [];
  #failure: Error | undefined;

  failNext(error: Error): void {
    this.#failure = error;
  }

  #write(write: Write): void {
    this.writes.push(write);
    const failure = this.#failure;
    this.#failure = undefined;
    if (failure) throw failure;
  }

  async getVm(namespace: string, name: string): Promise<VirtualMachine> {
    const vm = this.vms.get(`${namespace}/${name}`);
    if (!vm) throw apiError(404);
    return vm;
  }

  async getVmi(namespace: string, name: string): Promise<VirtualMachineInstance> {
    const vmi = this.vmis.get(`${namespace}/${name}`);
    if (!vmi) throw apiError(404);
    return vmi;
  }

  async patchVm(namespace: string, name: string, body: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    this.#write({ method: 'patchVm', namespace, name, body, dryRun });
  }

  async patchVmStatus(namespace: string, name: string, body: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    this.#write({ method: 'patchVmStatus', namespace, name, body, dryRun });
  }

  async patchVmi(namespace: string, name: string, body: JsonPatchOperation[], dryRun?: 'All'): Promise<void> {
    this.#write({ method: 'patchVmi', namespace, name, body, dryRun });
  }

  async deleteLauncherPods(namespace: string, vmiUid: string, gracePeriodSeconds: number, dryRun?: 'All'): Promise<string[]> {
    this.#write({
      method: 'deleteLauncherPods',
      namespace,
      name: vmiUid,
      body: [{ op: 'test', path: '/grace', value: gracePeriodSeconds }],
      dryRun,
    });
    return [`virt-launcher-of-${vmiUid}`];
  }

  async createMigration(namespace: string, body: VirtualMachineInstanceMigration, dryRun?: 'All'): Promise<void> {
    this.#write({ method: 'createMigration', namespace, body, dryRun });
  }

  async getPod(namespace: string, name: string): Promise<V1Pod> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw apiError(404);
    return pod;
  }

  async readConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    if (`${namespace}/${name}` !== 'kube-system/extension-apiserver-authentication') throw apiError(404);
    return { data: REQUEST_HEADER };
  }

  async handlerAddress(node: string): Promise<string> {
    throw new Error(`no virt-handler runs on node ${node} in this test`);
  }
}

async function serve(t: TestContext) {
  const informers = {
    instancetypes: new SeededInformer<Typed<VirtualMachineInstancetype>>(),
    clusterInstancetypes: new SeededInformer<Typed<VirtualMachineInstancetype>>(),
    preferences: new SeededInformer<Typed<VirtualMachinePreference>>(),
    clusterPreferences: new SeededInformer<Typed<VirtualMachinePreference>>(),
  };
  const api = new RecordingApi();
  const { log, lines } = capturedLog('virt-api');
  const server = new VirtApiServer({
    api,
    informers,
    config: () => new ClusterConfig(),
    namespace: 'kubevirt',
    log,
    servingCertificate: () => ({ cert: Buffer.from(serving.cert), key: Buffer.from(serving.key) }),
    handlerClientTls: () => assert.fail('no call to virt-handler is expected'),
    now: () => new Date('2026-11-22T10:00:00Z'),
    newUUID: () => '00000000-0000-4000-8000-000000000001',
    uploadTokenKey: () => UPLOAD_KEY,
    health: healthEndpoints({ apiserverVersion: async () => ({ gitVersion: 'v1.34.4' }), configResourceVersion: () => '777' }),
  });
  const { port } = await server.start(0, '127.0.0.1');
  t.after(() => server.close());
  /** One request over TLS; `as` is the client certificate presented, with X-Remote-User alice. */
  const call = (method: string, path: string, options: { body?: unknown; as?: KeyPair } = {}) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', ...(options.as ? { 'x-remote-user': 'alice', 'x-remote-group': 'dev' } : {}) };
      const client = options.as ? { cert: options.as.cert, key: options.as.key } : {};
      const target = { host: '127.0.0.1', port, servername: 'localhost', ca: ca.cert, method, path, headers, agent: false };
      const req = httpsRequest({ ...target, ...client }, (res) => {
        readText(res).then((text) => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : {} }), reject);
      });
      req.on('error', reject);
      req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
    });
  return { informers, api, lines, call };
}

const inNamespace = <T extends { metadata: object }>(object: T): T => ({ ...object, metadata: { ...object.metadata, namespace: 'ns' } });
const csmall = () => inNamespace(example<Typed<VirtualMachineInstancetype>>('csmall.yaml'));

test("/healthz answers as the other components do, with the KubeVirt CR's resourceVersion, also at upstream's //healthz", async (t) => {
  const { call } = await serve(t);
  for (const path of ['/healthz', '//healthz']) {
    const health = await call('GET', path);
    assert.equal(health.status, 200, path);
    assert.deepEqual(health.body, {
      apiserver: { connectivity: 'ok', version: { gitVersion: 'v1.34.4' } },
      'config-resource-version': '777',
    });
  }
});

test('an admission review is answered from the seeded instance types: a VM setting what its instance type sets is refused', async (t) => {
  const { informers, call } = await serve(t);
  const vm = inNamespace(example<VirtualMachine>('vm-cirros-csmall.yaml'));
  const request = { uid: 'r1', operation: 'CREATE', object: vm };
  const admissionReview = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
  const before = await call('POST', '/virtualmachines-validate', { body: admissionReview });
  const allowed = (before.body.response as { allowed: boolean }).allowed;
  assert.deepEqual([before.status, allowed], [200, true], 'an instance type not in the cache is not checked');
  informers.instancetypes.upsert(csmall());
  const after = await call('POST', '/virtualmachines-validate', { body: admissionReview });
  const response = after.body.response as { uid: string; allowed: boolean; status: { details: { causes: { field: string }[] } } };
  assert.deepEqual([response.uid, response.allowed], ['r1', false]);
  assert.equal(response.status.details.causes[0].field, 'spec.template.spec.domain.memory.guest');
});

test('expand-spec writes the seeded instance type into the stored VM, for a user the front proxy vouches for', async (t) => {
  const { informers, api, call } = await serve(t);
  const vm = inNamespace(example<VirtualMachine>('vm-cirros-csmall.yaml'));
  delete vm.spec.template.spec!.domain.memory;
  api.vms.set('ns/vm-cirros-csmall', vm);
  const path = `${SUBRESOURCES}/virtualmachines/vm-cirros-csmall/expand-spec`;
  const missing = await call('GET', path, { as: frontProxy });
  assert.deepEqual([missing.status, missing.body.message], [500, 'virtualmachineinstancetype.instancetype.kubevirt.io "csmall" not found']);
  informers.instancetypes.upsert(csmall());
  const expanded = await call('GET', path, { as: frontProxy });
  assert.equal(expanded.status, 200);
  const spec = expanded.body.spec as VirtualMachine['spec'];
  assert.equal(spec.instancetype, undefined);
  assert.equal(spec.template.spec?.domain.memory?.guest, '128Mi');
});

test('start of a Halted VM is the patch planStart plans, dry run passed on; a failed test operation is a 409', async (t) => {
  const { api, lines, call } = await serve(t);
  api.vms.set('ns/vm-cirros', inNamespace(example<VirtualMachine>('vm-cirros.yaml')));
  const path = `${SUBRESOURCES}/virtualmachines/vm-cirros/start`;
  assert.equal((await call('PUT', path, { as: frontProxy, body: {} })).status, 202);
  assert.equal((await call('PUT', path, { as: frontProxy, body: { dryRun: ['All'] } })).status, 202);
  const patch = [
    { op: 'test', path: '/spec/runStrategy', value: 'Halted' },
    { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
  ];
  assert.deepEqual(api.writes, [
    { method: 'patchVm', namespace: 'ns', name: 'vm-cirros', body: patch, dryRun: undefined },
    { method: 'patchVm', namespace: 'ns', name: 'vm-cirros', body: patch, dryRun: 'All' },
  ]);
  assert.equal(lines.find((l) => l.msg === 'start accepted')?.user, 'alice');
  api.failNext(apiError(422, 'the server rejected our request: test operation failed'));
  const conflict = await call('PUT', path, { as: frontProxy, body: {} });
  assert.deepEqual([conflict.status, conflict.body.reason], [409, 'Conflict']);
});

test('a forced restart (gracePeriodSeconds 0) deletes the launcher pod at once, after the grace and status patches', async (t) => {
  const { api, call } = await serve(t);
  const vm = inNamespace(example<VirtualMachine>('vm-cirros.yaml'));
  vm.spec.runStrategy = 'Always';
  api.vms.set('ns/vm-cirros', vm);
  api.vmis.set('ns/vm-cirros', {
    ...inNamespace({ metadata: { name: 'vm-cirros', uid: 'vmi-uid' } }),
    spec: { ...vm.spec.template.spec!, terminationGracePeriodSeconds: 600 },
    status: { phase: 'Running' },
  } as VirtualMachineInstance);
  const path = `${SUBRESOURCES}/virtualmachines/vm-cirros/restart`;
  assert.equal((await call('PUT', path, { as: frontProxy, body: { gracePeriodSeconds: 0 } })).status, 202);
  assert.deepEqual(
    api.writes.map((w) => [w.method, w.name]),
    [
      ['patchVmi', 'vm-cirros'],
      ['patchVmStatus', 'vm-cirros'],
      ['deleteLauncherPods', 'vmi-uid'],
    ],
  );
  assert.deepEqual(api.writes[2].body, [{ op: 'test', path: '/grace', value: 0 }]);
  // A plain restart leaves the pod to the VMI's graceful end.
  api.writes.length = 0;
  api.vms.set('ns/vm-cirros', { ...vm, status: {} });
  assert.equal((await call('PUT', path, { as: frontProxy, body: {} })).status, 202);
  assert.deepEqual(
    api.writes.map((w) => w.method),
    ['patchVmStatus'],
  );
});

test("a subresource request is refused without the front proxy's certificate, and answers 404 for a VM that does not exist", async (t) => {
  const { api, call } = await serve(t);
  const path = `${SUBRESOURCES}/virtualmachines/nope/start`;
  for (const as of [undefined, impostor]) {
    const refused = await call('PUT', path, { as, body: {} });
    assert.deepEqual([refused.status, refused.body.reason], [401, 'Unauthorized']);
  }
  const missing = await call('PUT', path, { as: frontProxy, body: {} });
  assert.deepEqual([missing.status, missing.body.message], [404, 'virtualmachine.kubevirt.io "nope" not found']);
  assert.deepEqual(api.writes, []);
});

test('an UploadTokenRequest is answered with a token the upload proxy accepts for that claim alone; discovery names the resource', async (t) => {
  const { call } = await serve(t);
  const path = '/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/ns/uploadtokenrequests';
  const body = {
    apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
    kind: 'UploadTokenRequest',
    metadata: { name: 'disk' },
    spec: { pvcName: 'disk' },
  };
  assert.equal((await call('POST', path, { body })).status, 401, 'only through the front proxy');
  const answer = await call('POST', path, { body, as: frontProxy });
  assert.equal(answer.status, 201);
  const token = (answer.body.status as { token: string }).token;
  const claims = verifyUploadToken(UPLOAD_KEY, token, new Date('2026-11-22T10:04:00Z').getTime());
  assert.deepEqual(claims, { operation: 'Upload', namespace: 'ns', name: 'disk', expires: new Date('2026-11-22T10:05:00Z').getTime() });
  assert.deepEqual(verifyUploadToken(UPLOAD_KEY, token, new Date('2026-11-22T10:06:00Z').getTime()), { error: 'token expired' });
  assert.deepEqual(verifyUploadToken(Buffer.from('another key'), token, 0), { error: 'invalid token signature' });
  const missing = await call('POST', path, { body: { spec: {} }, as: frontProxy });
  assert.deepEqual([missing.status, missing.body.message], [422, 'spec.pvcName: Required value: the claim to upload into']);
  const resources = await call('GET', '/apis/upload.cdi.kubevirt.io/v1beta1', { as: frontProxy });
  assert.deepEqual(
    (resources.body.resources as { name: string; verbs: string[] }[]).map((r) => [r.name, r.verbs]),
    [['uploadtokenrequests', ['create']]],
  );
});

test('a DataVolume cloning a claim from another namespace is admitted only for a user who may create datavolumes/source there', async (t) => {
  const { api, call } = await serve(t);
  const review = (namespace: string) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'r1',
      operation: 'CREATE',
      userInfo: { username: 'alice', groups: ['dev'] },
      object: { metadata: { name: 'copy', namespace: 'ns' }, spec: { source: { pvc: { name: 'golden', namespace } } } },
    },
  });
  const answer = async (namespace: string) =>
    (await call('POST', '/datavolume-validate', { body: review(namespace) })).body.response as {
      allowed: boolean;
      status?: { message: string };
    };
  assert.equal((await answer('ns')).allowed, true, 'within its own namespace');
  const refused = await answer('images');
  assert.equal(refused.allowed, false);
  assert.equal(refused.status?.message, 'User alice has insufficient permissions in clone source namespace images');
  api.grants.add('alice create datavolumes/source in images');
  assert.equal((await answer('images')).allowed, true);
});

test("evicting a launcher pod of an External VMI marks the VMI for evacuation and answers 429 with upstream's message", async (t) => {
  const { api, call } = await serve(t);
  const launcher = (name: string, vmi: string, node = 'node01'): V1Pod => ({
    metadata: {
      name,
      namespace: 'ns',
      labels: { 'kubevirt.io': 'virt-launcher' },
      annotations: { 'kubevirt.io/domain': vmi },
    },
    spec: { nodeName: node, containers: [] },
    status: { phase: 'Running' },
  });
  const vmi = (name: string, evictionStrategy: string | undefined, status: object = { phase: 'Running', nodeName: 'node01' }) =>
    inNamespace({
      ...example<VirtualMachineInstance>('vmi-ephemeral.yaml'),
      metadata: { name, namespace: 'ns' },
      spec: { ...example<VirtualMachineInstance>('vmi-ephemeral.yaml').spec, ...(evictionStrategy ? { evictionStrategy } : {}) },
      status,
    }) as VirtualMachineInstance;
  api.pods.set('ns/virt-launcher-ext-abcde', launcher('virt-launcher-ext-abcde', 'ext'));
  api.pods.set('ns/virt-launcher-none-abcde', launcher('virt-launcher-none-abcde', 'none'));
  api.pods.set('ns/virt-launcher-lm-abcde', launcher('virt-launcher-lm-abcde', 'lm'));
  api.vmis.set('ns/ext', vmi('ext', 'External'));
  api.vmis.set('ns/none', vmi('none', 'None'));
  api.vmis.set('ns/lm', vmi('lm', 'LiveMigrate'));
  const evict = async (pod: string, dryRun = false) => {
    const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: 'ns' } };
    const request = { uid: 'e1', operation: 'CREATE', name: pod, namespace: 'ns', subResource: 'eviction', object: eviction, dryRun };
    const answer = await call('POST', '/pod-eviction-validate', {
      body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request },
    });
    return answer.body.response as { uid: string; allowed: boolean; status?: { code: number; message: string } };
  };
  assert.deepEqual(await evict('virt-launcher-ext-abcde'), {
    uid: 'e1',
    allowed: false,
    status: { code: 429, message: 'Eviction triggered evacuation of VMI "ns/ext"' },
  });
  assert.deepEqual(
    api.writes.map((w) => [w.method, w.name, w.body, w.dryRun]),
    [['patchVmi', 'ext', [{ op: 'add', path: '/status/evacuationNodeName', value: 'node01' }], undefined]],
  );
  await evict('virt-launcher-ext-abcde', true);
  assert.equal(api.writes.at(-1)?.dryRun, 'All');
  // Once marked, another eviction is refused without writing again.
  api.vmis.set('ns/ext', vmi('ext', 'External', { phase: 'Running', nodeName: 'node01', evacuationNodeName: 'node01' }));
  const again = await evict('virt-launcher-ext-abcde');
  assert.equal(again.status?.message, 'Evacuation in progress: Eviction triggered evacuation of VMI "ns/ext"');
  assert.equal(api.writes.length, 2);
  // None lets the pod go; LiveMigrate holds on to a VMI that cannot move; any pod that is not a launcher goes.
  assert.deepEqual(await evict('virt-launcher-none-abcde'), { uid: 'e1', allowed: true });
  assert.deepEqual(await evict('virt-launcher-lm-abcde'), {
    uid: 'e1',
    allowed: false,
    status: { code: 429, message: 'VMI ns/lm is configured with an eviction strategy but is not live-migratable' },
  });
  assert.deepEqual(await evict('virt-launcher-gone-abcde'), { uid: 'e1', allowed: true });
  assert.equal(api.writes.length, 2);
});
