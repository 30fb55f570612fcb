// virt-operator and the control plane it installs, in the real cluster:
// Available only when ready, short-lived certificates, components put back,
// nothing lost when virt-controller or virt-api die, leader hand-over, the
// node controller, and a clean uninstall (then the install again).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { kubectl, kubectlResult, deleteNamespace, eventually, virtHandlerReady } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-operator';
const KV = ['kubevirt', 'kubevirt', '-n', 'kubevirt'];
const json = (args: string[]) => JSON.parse(kubectl([...args, '-o', 'json']));
const exists = (args: string[]) => kubectlResult(['get', ...args]).status === 0;
const available = () => json(['get', ...KV]).status?.conditions?.find((c: { type: string }) => c.type === 'Available')?.status === 'True';
const leader = () => json(['get', 'lease', 'virt-controller', '-n', 'kubevirt']).spec.holderIdentity as string;

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test('the KubeVirt CR is Deployed and Available, with every component ready', () => {
  const kv = json(['get', ...KV]);
  assert.equal(kv.status.phase, 'Deployed');
  assert.deepEqual(
    kv.status.conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`),
    ['Available=True', 'Progressing=False', 'Degraded=False', 'Created=True'],
  );
  assert.equal(kv.status.conditions.find((c: { type: string }) => c.type === 'Created').message, 'All resources were created.');
  assert.match(kubectl(['get', 'kubevirt', '-n', 'kubevirt']), /kubevirt\s+\S+\s+Deployed/);
  for (const name of ['virt-api', 'virt-controller']) {
    const d = json(['get', 'deployment', name, '-n', 'kubevirt']);
    assert.equal(d.status.readyReplicas, 2, name);
  }
  assert.equal(json(['get', 'daemonset', 'virt-handler', '-n', 'kubevirt']).status.numberReady, 1);
  assert.equal(json(['get', 'apiservice', 'v1.subresources.kubevirt.io']).status.conditions[0].status, 'True');
  assert.equal(json(['get', 'node', 'node01']).metadata.labels['kubevirt.io/schedulable'], 'true');
});

test('certificates: a 7-day CA and 24-hour leaves, each signed by a CA of the published bundle', () => {
  const read = (secret: string) =>
    new X509Certificate(Buffer.from(json(['get', 'secret', secret, '-n', 'kubevirt']).data['tls.crt'], 'base64'));
  const ca = read('kubevirt-ca');
  const days = (c: X509Certificate) => (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 86400e3;
  assert.ok(Math.abs(days(ca) - 7) < 0.01, `CA lifetime ${days(ca)} days`);
  const bundle = json(['get', 'configmap', 'kubevirt-ca', '-n', 'kubevirt']).data['ca-bundle'];
  assert.ok(bundle.includes(ca.toString().trim().split('\n')[1]));
  for (const secret of [
    'kubevirt-virt-api-certs',
    'kubevirt-controller-certs',
    'kubevirt-virt-handler-server-certs',
    'kubevirt-virt-handler-certs',
    'kubevirt-virt-console-certs',
  ]) {
    const leaf = read(secret);
    assert.ok(Math.abs(days(leaf) * 24 - 24) < 0.1, `${secret}: ${days(leaf) * 24} hours`);
    assert.ok(leaf.verify(ca.publicKey), secret);
  }
});

test('aggregated requests are trusted only from the front proxy', () => {
  // Through kube-apiserver (the front proxy's certificate): served.
  assert.equal(JSON.parse(kubectl(['get', '--raw', '/apis/subresources.kubevirt.io/v1'])).groupVersion, 'subresources.kubevirt.io/v1');
  // Straight to virt-api, with only X-Remote-User claimed: refused.
  const direct = kubectlResult([
    'exec',
    '-n',
    'kubevirt',
    'deploy/virt-api',
    '--',
    'node',
    '-e',
    `
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    fetch('https://127.0.0.1:8443/apis/subresources.kubevirt.io/v1', { headers: { 'X-Remote-User': 'system:admin', 'X-Remote-Group': 'system:masters' } })
      .then(async (r) => console.log(r.status, await r.text()));`,
  ]);
  assert.match(direct.stdout, /^401 .*no client certificate signed by the requestheader client CA/);
});

test('a component deleted from under the operator comes back', async () => {
  kubectl(['delete', 'deployment', 'virt-api', '-n', 'kubevirt', '--wait=true']);
  await eventually('virt-api to be put back', 60, () => exists(['deployment', 'virt-api', '-n', 'kubevirt']));
  // The CR may still say Available from before the deletion: wait for the pods themselves.
  await eventually('virt-api ready again', 120, () => {
    const deployment = json(['get', 'deployment', 'virt-api', '-n', 'kubevirt']);
    return deployment.status?.readyReplicas === deployment.spec.replicas;
  });
  await eventually('the CR to be Available again', 120, available);
});

function createVm(name: string, runStrategy = 'Always') {
  const vm = example<{ metadata: { name: string }; spec: { runStrategy: string } }>('vm-cirros.yaml');
  vm.metadata.name = name;
  vm.spec.runStrategy = runStrategy;
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vm));
}

test('killing virt-controller loses nothing: a VM created meanwhile gets its VMI when it returns', async () => {
  kubectl(['scale', 'deployment', 'virt-operator', '-n', 'kubevirt', '--replicas=0']);
  try {
    kubectl(['scale', 'deployment', 'virt-controller', '-n', 'kubevirt', '--replicas=0']);
    await eventually(
      'virt-controller to be gone',
      60,
      () => kubectl(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-controller', '-o', 'name']).trim() === '',
    );
    createVm('while-down');
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(exists(['vmi', 'while-down', '-n', NS]), false);
  } finally {
    kubectl(['scale', 'deployment', 'virt-operator', '-n', 'kubevirt', '--replicas=1']);
  }
  // The operator puts the replicas back.
  await eventually(
    'the VMI once virt-controller is back',
    120,
    () => json(['get', 'vmi', 'while-down', '-n', NS]).status?.phase === 'Running',
  );
  await eventually('the CR to be Available again', 120, available);
});

test('with two virt-controllers, killing the leader hands the lease over and work goes on', async () => {
  const first = leader();
  kubectl(['delete', 'pod', first, '-n', 'kubevirt', '--grace-period=0', '--force', '--wait=false']);
  const next = await eventually('another holder of the lease', 60, () => {
    const holder = leader();
    return holder !== first ? holder : undefined;
  });
  assert.ok(next.startsWith('virt-controller-'));
  createVm('after-handover');
  await eventually('the VMI from the new leader', 60, () => exists(['vmi', 'after-handover', '-n', NS]));
});

test('killing virt-api loses nothing: the webhooks guard again and the subresource API is back once it returns', async () => {
  kubectl(['delete', 'pod', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-api', '--grace-period=0', '--force', '--wait=false']);
  await eventually('virt-api to be ready again', 120, () => {
    const d = json(['get', 'deployment', 'virt-api', '-n', 'kubevirt']);
    return d.status.readyReplicas === 2 && d.status.unavailableReplicas === undefined;
  });
  const bad = example<{ spec: { runStrategy?: string; running?: boolean } }>('vm-cirros.yaml');
  bad.spec.running = true;
  const r = await eventually('the webhook to refuse again', 60, () => {
    const out = kubectlResult(['apply', '--dry-run=server', '-n', NS, '-f', '-'], JSON.stringify(bad));
    return out.stderr.includes('spec.running') ? out : undefined;
  });
  assert.notEqual(r.status, 0);
  await eventually(
    'the APIService to be Available',
    60,
    () => json(['get', 'apiservice', 'v1.subresources.kubevirt.io']).status.conditions[0].status === 'True',
  );
});

test('node controller: a stale virt-handler heartbeat makes the node unschedulable; a live handler makes it schedulable again', async () => {
  kubectl(['annotate', 'node', 'node01', '--overwrite', 'kubevirt.io/heartbeat=2026-01-01T00:00:00Z']);
  await eventually(
    'kubevirt.io/schedulable=false',
    30,
    () => json(['get', 'node', 'node01']).metadata.labels['kubevirt.io/schedulable'] === 'false',
  );
  // A VMI whose launcher pod still runs is not failed.
  assert.equal(json(['get', 'vmi', 'while-down', '-n', NS]).status.phase, 'Running');
  kubectl(['delete', 'pod', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler', '--wait=false']);
  await eventually(
    'kubevirt.io/schedulable=true',
    90,
    () => json(['get', 'node', 'node01']).metadata.labels['kubevirt.io/schedulable'] === 'true',
  );
});

const catalogueDeployment = (setting: object | null) =>
  kubectl([
    'patch',
    ...KV,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { configuration: { commonInstancetypesDeployment: setting } } }),
  ]);

test('commonInstancetypesDeployment.enabled false removes the catalogue, not a cluster instance type users made; removing the setting brings it back', async (t) => {
  const own = { apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineClusterInstancetype', metadata: { name: 'kvts-own' } };
  kubectl(['apply', '-f', '-'], JSON.stringify({ ...own, spec: { cpu: { guest: 1 }, memory: { guest: '64Mi' } } }));
  t.after(() => {
    catalogueDeployment(null);
    kubectl(['delete', 'virtualmachineclusterinstancetype', 'kvts-own', '--ignore-not-found']);
  });
  assert.ok(exists(['virtualmachineclusterinstancetype', 'u1.medium']));
  catalogueDeployment({ enabled: false });
  await eventually('the catalogue to be removed', 60, () => !exists(['virtualmachineclusterinstancetype', 'u1.medium']));
  await eventually('its preferences too', 30, () => !exists(['virtualmachineclusterpreference', 'fedora']));
  assert.ok(exists(['virtualmachineclusterinstancetype', 'kvts-own']), "the user's own stays");
  catalogueDeployment(null);
  await eventually('the catalogue to be back', 60, () => exists(['virtualmachineclusterpreference', 'fedora']));
  assert.ok(exists(['virtualmachineclusterinstancetype', 'u1.medium']));
});

test("the KubeVirt CR's placement moves the components: workloads place virt-handler, infra virt-api and virt-controller", async (t) => {
  const placement = (spec: object) => kubectl(['patch', ...KV, '--type', 'merge', '-p', JSON.stringify({ spec })]);
  const reset = () => placement({ workloads: null, infra: null });
  t.after(async () => {
    reset();
    await virtHandlerReady();
  });
  const handlerPods = () => json(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler']).items.length as number;
  assert.ok(handlerPods() > 0);
  // Upstream's suite keeps virt-handler off a node this way, to let its heartbeat go stale.
  const nodes = json(['get', 'nodes']).items.map((n: { metadata: { name: string } }) => n.metadata.name) as string[];
  const away = { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: nodes }] };
  const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [away] } } };
  placement({ workloads: { nodePlacement: { affinity } } });
  await eventually('virt-handler gone from every node', 120, () => handlerPods() === 0);
  reset();
  await eventually('virt-handler back', 120, () => handlerPods() > 0);
  await virtHandlerReady();
  // infra: a toleration reaches virt-api's and virt-controller's pods, and goes again.
  const toleration = { key: 'example.com/dedicated', operator: 'Exists', effect: 'NoSchedule' };
  placement({ infra: { nodePlacement: { tolerations: [toleration] } } });
  const tolerates = (name: string) =>
    (json(['get', 'deployment', name, '-n', 'kubevirt']).spec.template.spec.tolerations ?? []).some(
      (t: { key?: string }) => t.key === toleration.key,
    ) as boolean;
  await eventually('the toleration on virt-api and virt-controller', 60, () => tolerates('virt-api') && tolerates('virt-controller'));
  assert.equal(json(['get', 'daemonset', 'virt-handler', '-n', 'kubevirt']).spec.template.spec.tolerations, undefined);
  reset();
  await eventually('the toleration gone', 60, () => !tolerates('virt-api') && !tolerates('virt-controller'));
});

test('deleting the KubeVirt CR waits for the VMIs to go, then uninstalls everything; applying it again reinstalls', async () => {
  const cr = json(['get', ...KV]);
  createVm('blocker');
  await eventually('a VMI to block the uninstall', 60, () => exists(['vmi', 'blocker', '-n', NS]));
  kubectl(['delete', ...KV, '--wait=false']);
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(exists(['deployment', 'virt-api', '-n', 'kubevirt']), 'blocked while VMIs exist');
  kubectl(['delete', 'vm', '--all', '-n', NS, '--wait=true', '--timeout=120s']);
  await eventually('the VMIs to be gone', 120, () => kubectl(['get', 'vmi', '-A', '-o', 'name']).trim() === '');
  await eventually('the CR to be gone', 120, () => !exists(KV));
  for (const what of [
    ['deployment', 'virt-api', '-n', 'kubevirt'],
    ['deployment', 'virt-controller', '-n', 'kubevirt'],
    ['daemonset', 'virt-handler', '-n', 'kubevirt'],
    ['deployment', 'virt-console', '-n', 'kubevirt'],
    ['apiservice', 'v1.subresources.kubevirt.io'],
    ['validatingwebhookconfiguration', 'virt-api-validator'],
    ['mutatingwebhookconfiguration', 'virt-api-mutator'],
    ['crd', 'virtualmachines.kubevirt.io'],
    ['crd', 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io'],
    ['clusterrole', 'kubevirt.io:view'],
    ['secret', 'kubevirt-virt-api-certs', '-n', 'kubevirt'],
  ]) {
    await eventually(`${what.join(' ')} to be removed`, 60, () => !exists(what));
  }
  assert.ok(exists(['deployment', 'virt-operator', '-n', 'kubevirt']), 'the operator itself stays');
  assert.ok(exists(['crd', 'kubevirts.kubevirt.io']));
  const again = { apiVersion: cr.apiVersion, kind: cr.kind, metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: cr.spec };
  kubectl(['create', '-f', '-'], JSON.stringify(again));
  await eventually('the reinstall to be Available', 180, available);
  assert.ok(exists(['crd', 'virtualmachines.kubevirt.io']));
});
