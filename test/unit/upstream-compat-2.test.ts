// More gaps found by running upstream KubeVirt's functional tests against kubevirt-ts (issue 17),
// each pinned on the pure plan, render or wiring that closes it.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { freezeTimeoutOf, parseGoDuration } from '../../src/contract/handler-api.ts';
import { LauncherCommandError } from '../../src/contract/launcher-client.ts';
import type { LauncherCommand } from '../../src/contract/launcher-protocol.ts';
import { NodeReporter } from '../../src/handler/node-reporter.ts';
import { virtApiRelay } from '../../src/handler/relay.ts';
import { AGENT_NOT_CONNECTED, FilesystemFreezer } from '../../src/launcher/fsfreeze.ts';
import { decideEviction, evacuationPatch, evictionDryRun, launcherVmiName } from '../../src/virt-api/eviction.ts';
import { checkVmiAction, handlerRefusal } from '../../src/virt-api/lifecycle.ts';
import { renderedCrdFiles } from '../../src/api/manifests.ts';
import { parse } from 'yaml';
import { NOT_SUPPORTED_KINDS, notSupportedMessage } from '../../src/contract/not-supported.ts';
import { renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { planNotSupported, type NotSupportedObject } from '../../src/controller/not-supported.ts';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS } from '../../src/controller/node.ts';
import { planVmi } from '../../src/controller/vmi.ts';
import { NotSupportedController } from '../../src/controller/not-supported-controller.ts';
import type { JsonPatchOperation } from '../../src/lib/kube.ts';
import { type Relay, relaySockets, relayStream } from '../../src/lib/stream-relay.ts';
import { WorkQueue } from '../../src/lib/workqueue.ts';
import { WebSocket, WebSocketServer } from 'ws';
import { componentObjects, VALIDATING_HOOKS } from '../../src/operator/components.ts';
import { userClusterRoles } from '../../src/operator/rbac.ts';
import { review, type AdmissionReview } from '../../src/virt-api/admission.ts';
import { CONTAINER_DISK_NAMES } from '../../images/build.ts';
import { defaultConfig, example, fixedContext } from '../helpers/fixtures.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';
import { capturedEvents, capturedLog } from '../helpers/wiring.ts';

const NOW = '2026-11-22T10:00:00Z';
const installParams = {
  namespace: 'kubevirt',
  image: 'registry:5000/kubevirt-ts/virt-ts:devel',
  launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: 'Always',
  caBundle: 'CA',
  cdi: true,
};

type Crd = {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; shortNames?: string[]; categories?: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      deprecated?: boolean;
      deprecationWarning?: string;
      subresources?: { status?: object };
      additionalPrinterColumns?: { name: string; jsonPath: string }[];
    }[];
  };
};
const crd = (name: string): Crd => parse(renderedCrdFiles()[`${name}.yaml`]);

// --- 1. the CRDs upstream's namespace cleanup deletes from -----------------------------------

test("upstream's side kinds are served with its groups, versions, names and columns", () => {
  const expected: [string, string, string[], string[]][] = [
    // CRD name, storage version, served versions, short names
    ['virtualmachineinstancepresets.kubevirt.io', 'v1alpha3', ['v1', 'v1alpha3'], ['vmipreset', 'vmipresets']],
    ['virtualmachinesnapshots.snapshot.kubevirt.io', 'v1beta1', ['v1alpha1', 'v1beta1'], ['vmsnapshot', 'vmsnapshots']],
    [
      'virtualmachinesnapshotcontents.snapshot.kubevirt.io',
      'v1beta1',
      ['v1alpha1', 'v1beta1'],
      ['vmsnapshotcontent', 'vmsnapshotcontents'],
    ],
    ['virtualmachinerestores.snapshot.kubevirt.io', 'v1beta1', ['v1alpha1', 'v1beta1'], ['vmrestore', 'vmrestores']],
    ['virtualmachineexports.export.kubevirt.io', 'v1', ['v1', 'v1beta1'], ['vmexport', 'vmexports']],
    ['virtualmachineclones.clone.kubevirt.io', 'v1beta1', ['v1alpha1', 'v1beta1'], ['vmclone', 'vmclones']],
    ['virtualmachinebackups.backup.kubevirt.io', 'v1alpha1', ['v1alpha1'], ['vmbackup', 'vmbackups']],
    ['virtualmachinebackuptrackers.backup.kubevirt.io', 'v1alpha1', ['v1alpha1'], ['vmbackuptracker', 'vmbackuptrackers']],
  ];
  for (const [name, storage, served, shortNames] of expected) {
    const c = crd(name);
    assert.equal(c.spec.scope, 'Namespaced', name);
    assert.deepEqual(c.spec.names.shortNames, shortNames, name);
    assert.deepEqual(c.spec.names.categories, ['all'], name);
    assert.deepEqual(c.spec.versions.map((v) => v.name).sort(), served, name);
    assert.ok(
      c.spec.versions.every((v) => v.served),
      name,
    );
    assert.deepEqual(
      c.spec.versions.filter((v) => v.storage).map((v) => v.name),
      [storage],
      name,
    );
    if (!name.startsWith('virtualmachineinstancepresets'))
      assert.ok(
        c.spec.versions.every((v) => v.subresources?.status),
        name,
      );
  }
  // Presets: both versions deprecated with upstream's warnings (its test suite filters on that text).
  for (const v of crd('virtualmachineinstancepresets.kubevirt.io').spec.versions) {
    assert.equal(v.deprecated, true);
    assert.equal(v.deprecationWarning, `kubevirt.io/${v.name} VirtualMachineInstancePresets is now deprecated and will be removed in v2.`);
  }
  // Snapshots' and clones' alpha versions are served without a deprecation; export's v1beta1 is deprecated.
  assert.ok(crd('virtualmachinesnapshots.snapshot.kubevirt.io').spec.versions.every((v) => !v.deprecated));
  assert.ok(crd('virtualmachineclones.clone.kubevirt.io').spec.versions.every((v) => !v.deprecated));
  const exportV1beta1 = crd('virtualmachineexports.export.kubevirt.io').spec.versions.find((v) => v.name === 'v1beta1')!;
  assert.equal(exportV1beta1.deprecated, true);
  assert.match(exportV1beta1.deprecationWarning!, /export.kubevirt.io\/v1beta1 VirtualMachineExport is now deprecated/);
  const columns = (name: string) => crd(name).spec.versions[0].additionalPrinterColumns!.map((c) => `${c.name}=${c.jsonPath}`);
  assert.deepEqual(columns('virtualmachinesnapshots.snapshot.kubevirt.io'), [
    'SourceKind=.spec.source.kind',
    'SourceName=.spec.source.name',
    'Phase=.status.phase',
    'ReadyToUse=.status.readyToUse',
    'CreationTime=.status.creationTime',
    'Error=.status.error.message',
  ]);
  assert.deepEqual(columns('virtualmachineclones.clone.kubevirt.io'), [
    'Phase=.status.phase',
    'SourceVirtualMachine=.spec.source.name',
    'TargetVirtualMachine=.spec.target.name',
  ]);
});

function presetReview(object: unknown): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'req-1', operation: 'CREATE', object, userInfo: { username: 'alice' } },
  };
}

test('presets are admitted as upstream admits them: a domain is required, disks are checked', () => {
  assert.ok(VALIDATING_HOOKS.some((h) => h.path === '/vmipreset-validate' && h.resources.includes('virtualmachineinstancepresets')));
  const env = { ...fixedContext(), config: defaultConfig, kubevirtServiceAccounts: new Set<string>() };
  const preset = (spec: unknown) => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstancePreset', metadata: { name: 'p' }, spec });
  const selector = { matchLabels: { 'kubevirt.io/os': 'win10' } };
  const ok = review('/vmipreset-validate', presetReview(preset({ selector, domain: { cpu: { cores: 2 }, devices: {} } })), env);
  assert.equal(ok.response?.allowed, true);
  const noDomain = review('/vmipreset-validate', presetReview(preset({ selector })), env);
  assert.equal(noDomain.response?.allowed, false);
  assert.deepEqual(
    noDomain.response?.status?.details?.causes.map((c) => [c.field, c.message]),
    [['spec.domain', 'missing domain.']],
  );
  const twoSameDisks = preset({ selector, domain: { devices: { disks: [{ name: 'a' }, { name: 'a' }] } } });
  assert.equal(review('/vmipreset-validate', presetReview(twoSameDisks), env).response?.allowed, false);
});

const object = (kind: string, status?: Record<string, unknown>): NotSupportedObject => ({
  metadata: { name: `my-${kind.toLowerCase()}`, namespace: 'ns', uid: 'u1', generation: 2 },
  ...(status ? { status } : {}),
});
const kindOf = (name: string) => NOT_SUPPORTED_KINDS.find((k) => k.kind === name)!;

test('snapshots, restores, exports, clones and backups say they are not supported, with a phase where upstream has one', () => {
  const plan = (name: string) => planNotSupported(kindOf(name), object(name), NOW) as Record<string, unknown> & { conditions?: object[] };
  const message = (name: string) => notSupportedMessage(kindOf(name));
  assert.equal(message('VirtualMachineClone'), 'kubevirt-ts does not support VM clones yet');

  const snapshot = plan('VirtualMachineSnapshot');
  assert.equal(snapshot.phase, 'Failed');
  assert.equal(snapshot.readyToUse, false);
  assert.deepEqual(snapshot.error, { time: NOW, message: message('VirtualMachineSnapshot') });
  assert.deepEqual(
    snapshot.conditions!.map((c) => Object.values(c).join('|')),
    ['Progressing', 'Ready']
      .map((t) => `${t}|False||${NOW}|NotSupported|${message('VirtualMachineSnapshot')}`)
      .concat(`Failure|True||${NOW}|NotSupported|${message('VirtualMachineSnapshot')}`),
  );
  assert.deepEqual(plan('VirtualMachineSnapshotContent'), {
    readyToUse: false,
    error: { time: NOW, message: message('VirtualMachineSnapshotContent') },
  });
  assert.equal(plan('VirtualMachineRestore').complete, false);
  assert.equal(plan('VirtualMachineExport').phase, 'Skipped');
  assert.equal(plan('VirtualMachineClone').phase, 'Failed');
  const clone = plan('VirtualMachineClone').conditions as { type: string; status: string; reason: string }[];
  assert.deepEqual(
    clone.map((c) => [c.type, c.status, c.reason]),
    [
      ['Progressing', 'False', 'NotSupported'],
      ['Ready', 'False', 'NotSupported'],
    ],
  );
  // Backups carry metav1.Conditions: the observed generation, no probe time.
  assert.deepEqual(plan('VirtualMachineBackup').conditions, [
    {
      type: 'Progressing',
      status: 'False',
      observedGeneration: 2,
      lastTransitionTime: NOW,
      reason: 'NotSupported',
      message: message('VirtualMachineBackup'),
    },
    {
      type: 'Failed',
      status: 'True',
      observedGeneration: 2,
      lastTransitionTime: NOW,
      reason: 'NotSupported',
      message: message('VirtualMachineBackup'),
    },
  ]);
  // Once written, nothing more; nor on an object being deleted.
  for (const kind of NOT_SUPPORTED_KINDS) {
    const written = planNotSupported(kind, object(kind.kind), NOW)!;
    assert.equal(planNotSupported(kind, object(kind.kind, written), '2026-11-22T11:00:00Z'), undefined, kind.kind);
    const deleting = { ...object(kind.kind), metadata: { ...object(kind.kind).metadata, deletionTimestamp: NOW } };
    assert.equal(planNotSupported(kind, deleting, NOW), undefined, kind.kind);
  }
});

test('virt-controller writes the not-supported status once per object, guarded by the status it read', async () => {
  const informers = Object.fromEntries(NOT_SUPPORTED_KINDS.map((k) => [k.kind, new SeededInformer<NotSupportedObject>()]));
  const queue = new WorkQueue();
  const calls: [string, string, string, JsonPatchOperation[]][] = [];
  const { record, events } = capturedEvents();
  const controller = new NotSupportedController({
    api: {
      async patchCustomStatus(kind, namespace, name, patch) {
        calls.push([kind.plural, namespace, name, patch]);
      },
    },
    informers,
    queue,
    now: () => new Date(NOW),
    record,
    log: capturedLog().log,
  });
  informers.VirtualMachineClone.upsert(object('VirtualMachineClone', { phase: '' }));
  informers.VirtualMachineExport.upsert(object('VirtualMachineExport'));
  assert.equal(queue.length, 2);
  await controller.reconcile('VirtualMachineClone/ns/my-virtualmachineclone');
  await controller.reconcile('VirtualMachineExport/ns/my-virtualmachineexport');
  assert.deepEqual(
    calls.map(([plural, , , patch]) => [plural, patch.map((op) => `${op.op} ${op.path}`)]),
    [
      ['virtualmachineclones', ['test /status', 'add /status']],
      ['virtualmachineexports', ['add /status']],
    ],
  );
  assert.deepEqual(
    events.map((e) => [e.type, e.reason]),
    [
      ['Warning', 'NotSupported'],
      ['Warning', 'NotSupported'],
    ],
  );
  // The written status comes back through the informer: nothing more to write.
  const written = calls[0][3].at(-1)!.value as Record<string, unknown>;
  informers.VirtualMachineClone.upsert(object('VirtualMachineClone', written));
  await controller.reconcile('VirtualMachineClone/ns/my-virtualmachineclone');
  assert.equal(calls.length, 2);
});

test('virt-controller may list and watch those kinds and patch only their status; users get upstream roles on them', () => {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
  const role = (name: string) =>
    (componentObjects(installParams) as { kind: string; metadata: { name: string }; rules?: Rule[] }[]).find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === name,
    )!;
  const rules = role('kubevirt-controller').rules!;
  const verbs = (group: string, resource: string) =>
    rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);
  for (const k of NOT_SUPPORTED_KINDS) {
    assert.deepEqual(verbs(k.group, k.plural), ['list', 'watch'], k.kind);
    assert.deepEqual(verbs(k.group, `${k.plural}/status`), ['patch'], k.kind);
  }
  const userRole = (name: string) =>
    userClusterRoles().find((r) => (r as { metadata: { name: string } }).metadata.name === name) as {
      rules: Rule[];
    };
  const userVerbs = (name: string, group: string, resource: string) =>
    userRole(name)
      .rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
      .flatMap((r) => r.verbs);
  assert.ok(userVerbs('kubevirt.io:admin', 'snapshot.kubevirt.io', 'virtualmachinesnapshots').includes('deletecollection'));
  assert.ok(!userVerbs('kubevirt.io:edit', 'clone.kubevirt.io', 'virtualmachineclones').includes('deletecollection'));
  assert.ok(userVerbs('kubevirt.io:edit', 'export.kubevirt.io', 'virtualmachineexports').includes('create'));
  assert.deepEqual(userVerbs('kubevirt.io:view', 'backup.kubevirt.io', 'virtualmachinebackups'), ['get', 'list', 'watch']);
});

// --- 2. freeze and unfreeze, through the guest agent -----------------------------------------

test('freeze and unfreeze: virt-api checks the phase with upstream words and wraps a refusal as upstream does', () => {
  const vmi = (phase: string) =>
    ({ metadata: { name: 'v' }, spec: { domain: { devices: {} } }, status: { phase } }) as VirtualMachineInstance;
  assert.equal(checkVmiAction(vmi('Running'), 'freeze'), undefined);
  assert.equal(checkVmiAction(vmi('Running'), 'unfreeze'), undefined);
  assert.equal(
    checkVmiAction(vmi('Scheduled'), 'freeze')?.message,
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "v": VM is not running',
  );
  assert.equal(
    checkVmiAction(vmi('Scheduled'), 'unfreeze')?.message,
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "v": VMI is not running',
  );
  const refusal = handlerRefusal(400, 'Bad Request', `server error. command Freeze failed: "${AGENT_NOT_CONNECTED}"`);
  assert.equal(refusal.code, 500);
  assert.equal(refusal.reason, 'InternalError');
  // upstream's functional test matches exactly this.
  assert.match(refusal.message, /Internal error occurred:.*command Freeze failed:.*QEMU guest agent is not connected/);
});

test("virt-handler reads freeze's unfreezeTimeout as a Go duration, and refuses a request without one as upstream", () => {
  assert.deepEqual(freezeTimeoutOf('{"unfreezeTimeout":"0s"}'), { seconds: 0 });
  assert.deepEqual(freezeTimeoutOf('{"unfreezeTimeout":"10s"}'), { seconds: 10 });
  assert.deepEqual(freezeTimeoutOf('{"unfreezeTimeout":"5m0s"}'), { seconds: 300 });
  assert.deepEqual(freezeTimeoutOf('{"unfreezeTimeout":"1h0m30.5s"}'), { seconds: 3630 });
  assert.deepEqual(freezeTimeoutOf(''), { error: 'Unfreeze timeout in freeze request is not set' });
  assert.deepEqual(freezeTimeoutOf('{}'), { error: 'Unfreeze timeout in freeze request is not set' });
  assert.deepEqual(freezeTimeoutOf('{"unfreezeTimeout":"soon"}'), { error: 'failed to unmarshal unfreeze timeout' });
  assert.deepEqual(freezeTimeoutOf('not json'), { error: 'failed to unmarshal unfreeze timeout' });
  assert.equal(parseGoDuration('300ms'), 0.3);
});

test("virt-handler relays freeze with its timeout to the launcher, and words the launcher's refusal as upstream's handler", async () => {
  const sent: LauncherCommand[] = [];
  let refuse: string | undefined;
  const connection = {
    async request(command: LauncherCommand) {
      sent.push(command);
      if (refuse) throw new LauncherCommandError(refuse);
      return undefined;
    },
  };
  const launchers = { launcherOf: () => ({ connection, podUid: 'pod-1' }), askGuestAgain: () => undefined } as unknown as Parameters<
    typeof virtApiRelay
  >[0];
  const relay = virtApiRelay(launchers, async () => new PassThrough(), capturedLog('virt-handler').log);
  await relay.act('ns', 'v', 'freeze', { unfreezeTimeoutSeconds: 10 });
  await relay.act('ns', 'v', 'unfreeze');
  assert.deepEqual(sent, [{ command: 'freeze', unfreezeTimeoutSeconds: 10 }, { command: 'unfreeze' }]);
  refuse = AGENT_NOT_CONNECTED;
  await assert.rejects(relay.act('ns', 'v', 'freeze'), {
    message: `server error. command Freeze failed: "Guest agent is not responding: QEMU guest agent is not connected"`,
  });
  await assert.rejects(relay.act('ns', 'v', 'unfreeze'), /^Error: server error\. command Unfreeze failed: "Guest agent is not responding/);
});

/** A guest agent on a unix socket: answers guest-sync with its id and every other command with `answers[command]` (called, if a function). */
async function fakeAgent(t: TestContext, answers: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-'));
  const path = join(dir, 'agent.sock');
  const commands: string[] = [];
  const server = createServer((socket) => {
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += Buffer.from(chunk.filter((byte: number) => byte !== 0xff)).toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        commands.push(message.execute);
        const answer = answers[message.execute];
        const reply = message.execute === 'guest-sync' ? message.arguments.id : typeof answer === 'function' ? answer() : answer;
        socket.write(`${JSON.stringify({ return: reply })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, commands };
}

test('the launcher freezes and thaws through the guest agent, thaws by itself after the timeout, and says so when there is no agent', async (t) => {
  const none = new FilesystemFreezer(() => join(tmpdir(), 'no-such-agent.sock'));
  await assert.rejects(none.freeze(0), { message: AGENT_NOT_CONNECTED });
  await assert.rejects(none.unfreeze(), { message: AGENT_NOT_CONNECTED });
  let state = 'thawed';
  const agent = await fakeAgent(t, {
    'guest-ping': {},
    'guest-fsfreeze-status': () => state,
    'guest-fsfreeze-freeze': () => {
      state = 'frozen';
      return 2;
    },
    'guest-fsfreeze-thaw': () => {
      state = 'thawed';
      return 2;
    },
  });
  const freezer = new FilesystemFreezer(() => agent.path);
  const changes = () => agent.commands.filter((c) => c === 'guest-fsfreeze-freeze' || c === 'guest-fsfreeze-thaw');
  await freezer.freeze(0);
  await freezer.unfreeze();
  assert.deepEqual(changes(), ['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
  // Again and again, as upstream's "should succeed multiple times": a frozen guest is left frozen, a thawed one thawed.
  await freezer.freeze(0);
  await freezer.freeze(0);
  await freezer.unfreeze();
  await freezer.unfreeze();
  assert.deepEqual(changes().slice(2), ['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
  await freezer.freeze(1);
  assert.deepEqual(changes().slice(4), ['guest-fsfreeze-freeze']);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(changes().slice(4), ['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
});

// --- 3. evictionStrategy External holds a launcher pod's eviction -----------------------------

test("a launcher pod's eviction follows the VMI's eviction strategy, else the cluster's; the webhook is registered as upstream's", () => {
  const pod = (node: string): V1Pod => ({
    metadata: { name: 'virt-launcher-v-x', labels: { 'kubevirt.io': 'virt-launcher' }, annotations: { 'kubevirt.io/domain': 'v' } },
    spec: { nodeName: node, containers: [] },
    status: { phase: 'Running' },
  });
  const vmi = (evictionStrategy?: string) =>
    ({
      metadata: { name: 'v', namespace: 'ns' },
      spec: { domain: { devices: {} }, ...(evictionStrategy ? { evictionStrategy } : {}) },
      status: { phase: 'Running', nodeName: 'node01' },
    }) as VirtualMachineInstance;
  const external = new ClusterConfig({ evictionStrategy: 'External' });
  const none = new ClusterConfig({});
  assert.deepEqual(decideEviction(pod('node01'), vmi(), external), {
    mark: { nodeName: 'node01', message: 'Eviction triggered evacuation of VMI "ns/v"' },
  });
  assert.deepEqual(decideEviction(pod('node01'), vmi('None'), external), { allow: true });
  assert.deepEqual(decideEviction(pod('node01'), vmi(), none), { allow: true });
  assert.deepEqual(decideEviction(pod('node02'), vmi('External'), none), { deny: 'Eviction request for target Pod' });
  assert.equal(launcherVmiName(pod('node01')), 'v');
  assert.equal(launcherVmiName({ ...pod('node01'), status: { phase: 'Succeeded' } }), undefined);
  assert.equal(launcherVmiName({ ...pod('node01'), metadata: { name: 'other' } }), undefined);
  // descheduler's evictions are recorded on the VMI; dry runs from either place are honoured.
  const deschedulerEviction = { metadata: { annotations: { 'requested-by': 'sigs.k8s.io/descheduler' } } };
  assert.deepEqual(evacuationPatch(vmi(), 'node01', deschedulerEviction), [
    { op: 'add', path: '/status/evacuationNodeName', value: 'node01' },
    { op: 'add', path: '/metadata/annotations', value: { 'kubevirt.io/eviction-source': 'descheduler' } },
  ]);
  assert.equal(evictionDryRun(false, { deleteOptions: { dryRun: ['All'] } }), true);
  assert.equal(evictionDryRun(undefined, {}), false);

  const hooks = (componentObjects(installParams) as { kind: string; webhooks?: Record<string, unknown>[] }[])
    .filter((o) => o.kind === 'ValidatingWebhookConfiguration')
    .flatMap((o) => o.webhooks!);
  const hook = hooks.find((h) => h.name === 'virt-launcher-eviction-interceptor.kubevirt.io')!;
  assert.deepEqual(hook.rules, [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods/eviction'], operations: ['*'], scope: '*' }]);
  assert.equal(hook.sideEffects, 'NoneOnDryRun');
  assert.deepEqual(hook.matchConditions, [{ name: 'only-vms', expression: 'object.metadata.name.startsWith("virt-launcher")' }]);
  assert.equal((hook.clientConfig as { service: { path: string } }).service.path, '/pod-eviction-validate');
});

// --- 4. kubevirt.io/func-test-virt-launcher-fail-fast -----------------------------------------

const launcherParams = {
  launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
  imagePullPolicy: 'Always',
  config: new ClusterConfig({ developerConfiguration: { useEmulation: true } }),
};
function exampleVmi(annotations?: Record<string, string>): VirtualMachineInstance {
  const source = example<VirtualMachineInstance>('vmi-nocloud.yaml');
  const vmi = defaultNewVmi(
    { ...source, metadata: { ...source.metadata, namespace: 'ns', annotations } },
    launcherParams.config,
    fixedContext(),
  );
  vmi.metadata.uid = 'vmi-uid';
  return vmi;
}

test("the fail-fast annotation makes the launcher crash at once, as upstream's --simulate-crash; a pod whose compute exited fails its VMI", () => {
  const args = (vmi: VirtualMachineInstance) =>
    renderLauncherPod(vmi, launcherParams).spec!.containers.find((c) => c.name === 'compute')!.args!;
  assert.ok(args(exampleVmi({ 'kubevirt.io/func-test-virt-launcher-fail-fast': 'true' })).includes('--simulate-crash'));
  assert.ok(!args(exampleVmi()).includes('--simulate-crash'));
  // The launcher's command line names its VMI, as upstream's: the suite kills a VMI's processes with pkill -f <uid>.
  const named = exampleVmi();
  const line = args(named).join(' ');
  assert.ok(line.includes(`--uid ${named.metadata.uid}`), line);
  assert.ok(line.includes(`--name ${named.metadata.name} --namespace ${named.metadata.namespace}`), line);
  // The crashed compute container leaves the pod Running (the console log goes on), never Ready: the VMI fails.
  const vmi = exampleVmi({ 'kubevirt.io/func-test-virt-launcher-fail-fast': '' });
  vmi.status = { ...vmi.status, phase: 'Scheduling' };
  const pod = renderLauncherPod(vmi, launcherParams);
  pod.metadata!.name = 'virt-launcher-vmi-nocloud-abcde';
  pod.spec!.nodeName = 'node01';
  pod.status = {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'False' }],
    containerStatuses: [
      { name: 'compute', image: '', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2 } } },
      { name: 'guest-console-log', image: '', imageID: '', ready: true, restartCount: 0, state: { running: {} } },
    ],
  };
  assert.equal(planVmi(vmi, [pod], launcherParams, NOW).update?.status?.phase, 'Failed');
});

test("the keep-launcher-alive-after-failure annotation keeps a failed launcher's container running until it is stopped, as upstream's --keep-after-failure", async (t) => {
  const args = (annotations?: Record<string, string>) =>
    renderLauncherPod(exampleVmi(annotations), launcherParams).spec!.containers.find((c) => c.name === 'compute')!.args!;
  for (const value of ['', 'true', 'truely'])
    assert.ok(args({ 'kubevirt.io/keep-launcher-alive-after-failure': value }).includes('--keep-after-failure'), value);
  assert.ok(args({ 'kubevirt.io/keep-launcher-alive-after-failure-x': '' }).includes('--keep-after-failure'), 'a key it begins');
  assert.ok(!args({ 'kubevirt.io/keep-launcher-alive-after-failure': 'false' }).includes('--keep-after-failure'));
  assert.ok(!args().includes('--keep-after-failure'));
  // Its VMI failed, the pod is kept: virt-controller deletes a failed VMI's pod only when not asked to keep it.
  const failed = exampleVmi({ 'kubevirt.io/keep-launcher-alive-after-failure': 'true' });
  failed.status = { ...failed.status, phase: 'Failed' };
  const kept = renderLauncherPod(failed, launcherParams);
  kept.metadata!.name = 'virt-launcher-vmi-nocloud-abcde';
  kept.status = { phase: 'Running' };
  assert.equal(planVmi(failed, [kept], launcherParams, NOW).deletePods, undefined);
  delete failed.metadata.annotations;
  assert.equal(planVmi(failed, [kept], launcherParams, NOW).deletePods?.length, 1);
  // The launcher itself: crashed at once, it stays up until SIGTERM and then exits with the failure's code.
  const launcher = spawn(
    process.execPath,
    [fileURLToPath(new URL('../../src/launcher/main.ts', import.meta.url)), '--simulate-crash', '--keep-after-failure'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => launcher.kill('SIGKILL'));
  let output = '';
  for (const stream of [launcher.stdout, launcher.stderr]) stream.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(launcher.exitCode, null, 'still running after the crash');
  assert.match(output, /keeping virt-launcher container alive since --keep-after-failure is set to true/);
  launcher.kill('SIGTERM');
  assert.equal(await exited, 2);
});

// --- 5. a second console connection ends the first as upstream's does -------------------------

test("a replaced console stream is dropped without a close frame, and virt-api passes that on: the client sees upstream's unexpected EOF", async (t) => {
  const listening = (wss: WebSocketServer) =>
    new Promise<number>((resolve) => wss.once('listening', () => resolve((wss.address() as AddressInfo).port)));
  const closeOf = (ws: WebSocket) =>
    new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  const opened = (ws: WebSocket) => new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));

  // virt-handler's end: a relay of a console socket, aborted as StreamSessions drops a replaced session.
  const handlerRelays: Relay[] = [];
  const handler = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  handler.on('connection', (ws) => handlerRelays.push(relayStream(ws, new PassThrough())));
  // virt-api's: each client joined to a WebSocket to virt-handler.
  const handlerPort = await listening(handler);
  const api = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  api.on('connection', (client) => {
    client.pause();
    const upstream = new WebSocket(`ws://127.0.0.1:${handlerPort}`);
    upstream.once('open', () => relaySockets(client, upstream));
  });
  const apiPort = await listening(api);
  t.after(() => {
    handler.close();
    api.close();
  });

  const first = new WebSocket(`ws://127.0.0.1:${apiPort}`);
  await opened(first);
  while (handlerRelays.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const ended = closeOf(first);
  handlerRelays[0].abort();
  assert.deepEqual(await ended, [1006, '']);

  // A close frame from virt-handler reaches the client as it was sent.
  const second = new WebSocket(`ws://127.0.0.1:${apiPort}`);
  await opened(second);
  while (handlerRelays.length === 1) await new Promise((resolve) => setTimeout(resolve, 10));
  const closed = closeOf(second);
  handlerRelays[1].close();
  assert.deepEqual(await closed, [1000, '']);
});

// --- 6. the VMI waiting for its user-data Secret starts once the Secret is there --------------

test("the test guest is published under every containerDisk name upstream's VMI factories use", () => {
  // upstream's test (test_id:1630) boots libvmifact.NewAlpineWithTestTooling; without its image the pod,
  // once its Secret was mounted, only got as far as ImagePullBackOff and never Started.
  for (const name of [
    'cirros-container-disk-demo',
    'alpine-container-disk-demo',
    'alpine-with-test-tooling-container-disk',
    'fedora-with-test-tooling-container-disk',
  ])
    assert.ok(CONTAINER_DISK_NAMES.includes(`kubevirt/${name}`), name);
});

// --- 8. a virt-handler going away takes its node out of VMI scheduling -----------------------

test('virt-handler stopping labels its node kubevirt.io/schedulable=false at once, and heartbeats no more', async () => {
  const patches: object[] = [];
  const reporter = new NodeReporter({
    node: 'node01',
    patchNode: async (body) => patches.push(body),
    patchNodeStatus: async () => undefined,
    cpuLabels: {},
    probeKvm: async () => true,
    probeCpuModels: async () => [],
    readNodeLabels: async () => ({}),
    config: () => new ClusterConfig({}),
    log: capturedLog('virt-handler').log,
  });
  await reporter.heartbeatEvery(60_000);
  const label = (p: object) => (p as { metadata: { labels: Record<string, string> } }).metadata.labels['kubevirt.io/schedulable'];
  assert.equal(label(patches.at(-1)!), 'true');
  await reporter.stop();
  assert.deepEqual(patches.at(-1), { metadata: { labels: { 'kubevirt.io/schedulable': 'false' } } });
  await reporter.heartbeat();
  assert.equal(patches.length, 2, 'no heartbeat puts it back');
  // The node controller's own backstop keeps upstream's timing: five minutes without a heartbeat.
  assert.equal(DEFAULT_HEARTBEAT_TIMEOUT_MS, 5 * 60 * 1000);
});
