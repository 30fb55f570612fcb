// Our virtctl against the cluster, every command on the test guest: a VM made
// by `virtctl create vm`, its console driven through a pty (script), VNC's RFB
// handshake, port-forward, ssh and scp through it, expose, the guest agent
// commands, the lifecycle commands, and RBAC on console and start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, deleteNamespace, eventually, getFromPod, KUBECONFIG, kubectl, kubectlResult } from './kube.ts';
import { Session, VIRTCTL } from './session.ts';

const NS = 'kvts-virtctl';
const SERVERS = 'registry:5000/kubevirt-ts/e2e-servers:devel';
const work = mkdtempSync(join(tmpdir(), 'kvts-virtctl-'));
const key = join(work, 'id_ed25519');

/** virtctl in the test namespace, optionally as another user. */
function virtctl(args: string[], as?: string) {
  const r = spawnSync(VIRTCTL, ['-n', NS, ...(as ? ['--as', as] : []), ...args], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const ok = (args: string[], as?: string) => {
  const r = virtctl(args, as);
  assert.equal(r.status, 0, `virtctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const vmi = () => {
  const r = kubectlResult(['get', 'vmi', 'guest', '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const condition = (type: string) => vmi()?.status?.conditions?.find((c: { type: string }) => c.type === type)?.status;

const userData = (publicKey: string) => `#!/bin/sh
mkdir -p /root/.ssh && echo '${publicKey}' > /root/.ssh/authorized_keys
mkdir -p /tmp/www && echo "hello from the guest" > /tmp/www/index.html && httpd -p 8080 -h /tmp/www
# Late enough that a console attached as the VMI turns Running sees it.
sleep 3
echo "user-data says hello"
`;

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
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
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: NS },
    spec: { containers: [{ name: 'client', image: SERVERS, command: ['sleep', 'infinity'] }], terminationGracePeriodSeconds: 0 },
  });
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
});
after(() => {
  deleteNamespace(NS);
  rmSync(work, { recursive: true, force: true });
});

test('create vm prints a VirtualMachine from flags, which the cluster accepts; version shows client and server', () => {
  const manifest = ok([
    'create',
    'vm',
    '--name',
    'guest',
    '--run-strategy',
    'Halted',
    '--termination-grace-period',
    '5',
    '--memory',
    '256Mi',
    '--volume-containerdisk',
    'src:registry:5000/kubevirt-ts/test-guest-container-disk:devel,bootorder:1',
    '--cloud-init-user-data',
    Buffer.from(userData(readFileSync(`${key}.pub`, 'utf8').trim())).toString('base64'),
  ]);
  assert.match(manifest, /^apiVersion: kubevirt.io\/v1\nkind: VirtualMachine\n/);
  kubectl(['create', '-n', NS, '-f', '-'], manifest);
  assert.equal(
    JSON.parse(kubectl(['get', 'vm', 'guest', '-n', NS, '-o', 'json'])).spec.template.spec.volumes[0].containerDisk.image,
    'registry:5000/kubevirt-ts/test-guest-container-disk:devel',
  );
  const version = ok(['version']);
  assert.match(version, /^Client Version: version.Info\{GitVersion:"v[^"]+", GitCommit:"[0-9a-f]*"/m);
  assert.match(version, /^Server Version: version.Info\{GitVersion:"v[^"]+"/m);
  assert.match(ok(['expand', '--vm', 'guest']), /kind: VirtualMachine/);
});

test('RBAC: kubevirt.io:view gets 403 on start and console, kubevirt.io:edit may start', () => {
  const start = virtctl(['start', 'guest'], 'viewer');
  assert.equal(start.status, 1);
  assert.match(
    start.stderr,
    /User "viewer" cannot update resource "virtualmachines\/start" in API group "subresources.kubevirt.io".*: ask an administrator for the kubevirt.io:edit role/,
  );
  const console = virtctl(['console', '--timeout', '1', 'guest'], 'viewer');
  assert.equal(console.status, 1);
  assert.match(console.stderr, /403|forbidden/i);
  assert.match(ok(['start', '--dry-run', 'guest'], 'editor'), /Dry Run execution: VM guest was scheduled to start/);
});

test('console waits for the VMI (--timeout), shows the user-data output and the login prompt, logs in, and Ctrl+] leaves it', async () => {
  ok(['start', 'guest']);
  const console = Session.onPty(NS, ['console', '--timeout', '3', 'guest']);
  try {
    await console.waitFor(/Successfully connected to guest console/, 180);
    await console.waitFor(/user-data says hello/, 120);
    await console.waitFor(/login: $/m, 60);
    console.write('cirros\r');
    await console.waitFor(/Password: $/m, 30);
    console.write('gocubsgo\r');
    await console.waitFor(/~ \$ /, 30);
    console.write('echo "console works: $((6*7))"\r');
    await console.waitFor(/console works: 42/, 30);
    console.write('\x1d');
    assert.equal(await console.exited, 0);
  } finally {
    console.child.kill();
  }
});

test('one console per VMI: a second connection ends the first', async () => {
  const first = Session.onPty(NS, ['console', 'guest']);
  let second: Session | undefined;
  try {
    await first.waitFor(/Successfully connected/, 60);
    second = Session.onPty(NS, ['console', 'guest']);
    await second.waitFor(/Successfully connected/, 60);
    assert.notEqual(
      await Promise.race([first.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000))]),
      'still running',
      'the first console was ended',
    );
    second.write('\r');
    // The shell the previous test logged in to is still there.
    await second.waitFor(/~ \$ /, 30);
    second.write('\x1d');
    assert.equal(await second.exited, 0);
  } finally {
    first.child.kill();
    second?.child.kill();
  }
});

/** Open sockets of virt-handler and each virt-api (they run on this host). */
function componentSockets(): number[] {
  const pids = spawnSync('pgrep', ['-f', '/app/src/(handler|virt-api)/main.js'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .sort();
  return pids.map(
    (pid) =>
      readdirSync(`/proc/${pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
        } catch {
          return false;
        }
      }).length,
  );
}

test('closing either end closes the whole chain: after many consoles, virt-api and virt-handler hold no more sockets', async () => {
  const before = componentSockets();
  for (let i = 0; i < 4; i++) {
    // A client that leaves with Ctrl+], and one that is killed mid-session.
    const left = spawnSync(VIRTCTL, ['-n', NS, 'console', 'guest'], {
      input: '\x1d',
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG },
      timeout: 60_000,
    });
    assert.equal(left.status, 0, left.stderr);
    const killed = new Session(VIRTCTL, ['-n', NS, 'console', 'guest']);
    await killed.waitFor(/Successfully connected/, 60);
    killed.child.kill('SIGKILL');
    await killed.exited;
  }
  // Allow for a watch the components may reconnect meanwhile; 8 leaked sessions would be 16 or more sockets.
  await eventually(`no sockets left behind (before ${before})`, 30, () => componentSockets().every((n, i) => n <= before[i] + 2));
});

test('vnc --proxy-only prints the port, and an RFB handshake completes through it', async () => {
  const vnc = new Session(VIRTCTL, ['-n', NS, 'vnc', '--proxy-only', 'guest']);
  try {
    await vnc.waitFor(/^\{"port":\d+\}$/m, 60);
    const port = JSON.parse(vnc.output.split('\n')[0]).port;
    const socket = createConnection(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    await eventually("the server's protocol version", 30, () => Buffer.concat(received).length >= 12);
    assert.match(Buffer.concat(received).toString('latin1'), /^RFB 003\.00\d\n/);
    socket.write('RFB 003.008\n');
    await eventually('the security types', 30, () => Buffer.concat(received).length > 12);
    const types = Buffer.concat(received).subarray(12);
    assert.ok(types[0] > 0, 'at least one security type');
    socket.end();
    assert.equal(await vnc.exited, 0, 'the proxy ends with its client');
  } finally {
    vnc.child.kill();
  }
});

test('port-forward reaches a port the guest listens on', async () => {
  const forward = new Session(VIRTCTL, ['-n', NS, 'port-forward', 'vmi/guest', '0:8080']);
  try {
    await forward.waitFor(/Forwarding from 127.0.0.1:\d+ -> 8080/, 60);
    const port = /127.0.0.1:(\d+)/.exec(forward.output)![1];
    await eventually("the guest's web server", 60, async () =>
      (
        await fetch(`http://127.0.0.1:${port}/`).then(
          (r) => r.text(),
          () => '',
        )
      ).includes('hello from the guest'),
    );
  } finally {
    forward.child.kill('SIGINT');
  }
  assert.equal(await forward.exited, 0);
});

// The guest makes new host keys at every boot.
const sshFlags = ['-i', key, '--known-hosts', '/dev/null', '-t', '-o StrictHostKeyChecking=no', '-t', '-o BatchMode=yes'];

test("ssh and scp go through port-forward to the guest's SSH server", async () => {
  const whoami = await eventually('an ssh session', 120, () => {
    const r = virtctl(['ssh', ...sshFlags, 'root@vmi/guest', '-c', 'id -un; cat /etc/os-release']);
    return r.status === 0 && r.stdout;
  });
  assert.match(whoami, /^root$/m);
  assert.match(whoami, /ID=kvts-guest/);
  const local = join(work, 'payload.txt');
  writeFileSync(local, `payload ${Date.now()}\n`);
  ok(['scp', ...sshFlags, local, `root@vmi/guest/${NS}:/tmp/payload.txt`]);
  const back = join(work, 'back.txt');
  ok(['scp', ...sshFlags, 'root@vm/guest:/tmp/payload.txt', back]);
  assert.equal(readFileSync(back, 'utf8'), readFileSync(local, 'utf8'));
});

test('expose creates a Service that reaches the guest from a pod', async () => {
  assert.match(
    ok(['expose', 'vmi', 'guest', '--name', 'guest-http', '--port', '80', '--target-port', '8080']),
    /Service guest-http successfully created for vmi guest/,
  );
  const service = JSON.parse(kubectl(['get', 'service', 'guest-http', '-n', NS, '-o', 'json']));
  assert.deepEqual(service.spec.selector, { 'vmi.kubevirt.io/id': 'guest' });
  assert.equal(service.metadata.ownerReferences[0].kind, 'VirtualMachineInstance');
  kubectl(['wait', '--for=condition=Ready', 'pod/client', '-n', NS, '--timeout=120s']);
  // By its name, as a pod of the namespace reaches a Service on any cluster.
  await eventually('the guest through the Service', 60, () =>
    getFromPod(NS, 'client', 'http://guest-http/')?.includes('hello from the guest'),
  );
});

test("guestosinfo, userlist and fslist print the guest agent's answers; the kubeconfig is read as kubectl reads it", async () => {
  await eventually('the guest agent', 120, () => condition('AgentConnected') === 'True');
  // Another kubeconfig whose current context names the namespace: no -n needed.
  const config = join(work, 'kubeconfig');
  writeFileSync(config, readFileSync(KUBECONFIG));
  const kc = (args: string[]) => kubectlResult(['--kubeconfig', config, 'config', ...args]);
  const cluster = kc(['view', '-o', 'jsonpath={.contexts[0].context.cluster}']).stdout;
  const user = kc(['view', '-o', 'jsonpath={.contexts[0].context.user}']).stdout;
  assert.equal(kc(['set-context', 'tests', `--cluster=${cluster}`, `--user=${user}`, `--namespace=${NS}`]).status, 0);
  const viaContext = spawnSync(VIRTCTL, ['--kubeconfig', config, '--context', 'tests', 'userlist', 'guest'], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '/nonexistent' },
  });
  assert.equal(viaContext.status, 0, viaContext.stderr);
  assert.equal(JSON.parse(ok(['guestosinfo', 'guest'])).os.id, 'kvts-guest');
  assert.equal(JSON.parse(ok(['userlist', 'guest'])).kind, 'VirtualMachineInstanceGuestOSUserList');
  assert.ok(Array.isArray(JSON.parse(ok(['fslist', 'guest'])).items));
});

test('pause vm, unpause vmi, soft-reboot and reset; migrate and migrate-cancel refuse clearly', async () => {
  assert.match(ok(['pause', 'vm', 'guest']), /VMI guest was scheduled to pause/);
  await eventually('Paused', 60, () => condition('Paused') === 'True');
  const again = virtctl(['pause', 'vmi', 'guest']);
  assert.match(again.stderr, /VMI is already paused: resume it with virtctl unpause vmi guest -n kvts-virtctl/);
  ok(['unpause', 'vmi', 'guest']);
  await eventually('running again', 60, () => condition('Paused') !== 'True');
  // Both restart the guest inside the same VMI: its uptime starts again.
  const uid = vmi().metadata.uid;
  const uptime = () => {
    const r = virtctl(['ssh', ...sshFlags, 'root@vmi/guest', '-c', 'cut -d. -f1 /proc/uptime']);
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  for (const [command, said] of [
    ['soft-reboot', /VMI guest was scheduled to softreboot/],
    ['reset', /VMI guest was reset/],
  ] as const) {
    const before = await eventually("the guest's uptime", 120, uptime);
    const measuredAt = Date.now();
    assert.match(ok([command, 'guest']), said);
    // Restarted: its uptime has grown less than the time that passed since.
    await eventually(
      `the guest restarted by ${command}`,
      180,
      () => (uptime() ?? Infinity) < before + (Date.now() - measuredAt) / 1000 - 3,
    );
    assert.equal(vmi().metadata.uid, uid, 'the same VMI');
  }
  assert.match(virtctl(['migrate-cancel', 'guest']).stderr, /Found no migration to cancel for guest/);
});

test('restart makes a new VMI; stop halts the VM; console then says how to start it', async () => {
  const before = vmi().metadata.uid;
  ok(['restart', 'guest']);
  await eventually('a new running VMI', 180, () => vmi()?.metadata.uid !== before && vmi()?.status?.phase === 'Running');
  assert.match(ok(['stop', '--force', '--grace-period', '0', 'guest']), /VM guest was scheduled to stop/);
  await eventually('the VMI gone at once', 60, () => !vmi());
  const console = virtctl(['console', '--timeout', '0', 'guest']);
  assert.equal(console.status, 1);
  assert.match(console.stderr, /not found: start it with virtctl start guest -n kvts-virtctl/);
});
