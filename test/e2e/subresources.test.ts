// The VM lifecycle subresources through the aggregated API: start, stop and
// restart obey the runStrategy with upstream's answers, and RBAC on the
// subresource decides who may call them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apply, deleteNamespace, eventually, kubectl, kubectlResult } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-subresources';
const url = (action: string) => `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachines/vm-cirros/${action}`;
/** PUT to a subresource, as virtctl does, optionally as another user. */
const put = (action: string, body: object = {}, as?: string) =>
  kubectlResult(['replace', '--raw', url(action), '-f', '-', ...(as ? ['--as', as] : [])], JSON.stringify(body));
const get = (kind: string) => {
  const r = kubectlResult(['get', kind, 'vm-cirros', '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(example('vm-cirros.yaml')));
  for (const [user, role] of [
    ['viewer', 'kubevirt.io:view'],
    ['editor', 'kubevirt.io:edit'],
  ]) {
    apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: user, namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
  }
});
after(() => deleteNamespace(NS));

test('RBAC on the subresource: kubevirt.io:view gets 403 on start; kubevirt.io:edit may (dry run changes nothing)', () => {
  const denied = put('start', {}, 'viewer');
  assert.notEqual(denied.status, 0);
  assert.match(
    denied.stderr,
    /forbidden: User "viewer" cannot update resource "virtualmachines\/start" in API group "subresources.kubevirt.io"/,
  );
  const allowed = put('start', { dryRun: ['All'] }, 'editor');
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.equal(get('vm').spec.runStrategy, 'Halted', 'dry run');
});

test("start turns a Halted VM Always and it runs; starting a running VM is refused with upstream's 409", async () => {
  const r = put('start');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(get('vm').spec.runStrategy, 'Always');
  await eventually('the VM Running', 120, () => get('vm')?.status?.printableStatus === 'Running');
  const again = put('start');
  assert.notEqual(again.status, 0);
  assert.match(
    again.stderr,
    /\(Conflict\): Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm-cirros": VM is already running/,
  );
});

test('pause and unpause go through virt-handler (mutual TLS) to the guest; repeated, they are refused as upstream refuses them', async () => {
  const vmiUrl = (action: string) => `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/vm-cirros/${action}`;
  const putVmi = (action: string, as?: string) =>
    kubectlResult(['replace', '--raw', vmiUrl(action), '-f', '-', ...(as ? ['--as', as] : [])], '{}');
  assert.match(putVmi('pause', 'viewer').stderr, /forbidden/);
  const paused = putVmi('pause');
  assert.equal(paused.status, 0, paused.stderr);
  await eventually('the VM Paused', 60, () => get('vm')?.status?.printableStatus === 'Paused');
  assert.equal(get('vmi').status.conditions.find((c: { type: string }) => c.type === 'Paused')?.status, 'True');
  assert.match(
    putVmi('pause').stderr,
    /Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "vm-cirros": VMI is already paused/,
  );
  const unpaused = putVmi('unpause', 'editor');
  assert.equal(unpaused.status, 0, unpaused.stderr);
  await eventually('the VM Running again', 60, () => get('vm')?.status?.printableStatus === 'Running');
  assert.match(putVmi('unpause').stderr, /VMI is not paused/);
});

test('guestosinfo, userlist and filesystemlist come from the guest agent; a viewer may read them', async () => {
  const base = `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/vm-cirros`;
  await eventually('the guest agent', 120, () =>
    get('vmi')?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'AgentConnected' && c.status === 'True'),
  );
  const info = JSON.parse(kubectl(['get', '--raw', `${base}/guestosinfo`, '--as', 'viewer']));
  assert.equal(info.kind, 'VirtualMachineInstanceGuestAgentInfo');
  assert.equal(info.os.id, 'kvts-guest');
  assert.ok(info.hostname);
  assert.equal(JSON.parse(kubectl(['get', '--raw', `${base}/userlist`])).kind, 'VirtualMachineInstanceGuestOSUserList');
  assert.ok(Array.isArray(JSON.parse(kubectl(['get', '--raw', `${base}/filesystemlist`])).items));
});

test('restart replaces the VMI through stop and start requests', async () => {
  const before = get('vmi').metadata.uid;
  const r = put('restart');
  assert.equal(r.status, 0, r.stderr);
  await eventually('a new running VMI', 120, () => {
    const v = get('vmi');
    return v && v.metadata.uid !== before && v.status?.phase === 'Running';
  });
  await eventually('the requests to be consumed', 30, () => get('vm').status.stateChangeRequests === undefined);
});

test('stop turns the VM Halted and its VMI goes; a stopped VM cannot be restarted', async () => {
  const r = put('stop', { gracePeriod: 0 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(get('vm').spec.runStrategy, 'Halted');
  await eventually('the VMI to be gone', 120, () => get('vmi') === undefined);
  const restart = put('restart');
  assert.match(restart.stderr, /RunStategy Halted does not support manual restart requests/);
  assert.match(put('stop').stderr, /VM is not running/);
});
