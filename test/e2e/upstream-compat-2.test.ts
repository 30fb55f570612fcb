// More behaviour upstream KubeVirt's functional tests check, found missing by running them
// against kubevirt-ts (issue 17): the side kinds its namespace cleanup deletes (presets,
// snapshots, exports, clones, backups) and the status saying kubevirt-ts does not carry them
// out yet; freeze without a guest agent, and fsFreezeStatus with one; the alpine guest's
// greeting; the eviction of an External VMI's launcher pod; a second console connection ending
// the first; and a VMI that waited for its user-data Secret starting once the Secret is there.
// Guests are the small cirros or alpine demo disks (128Mi) or none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { apply, deleteNamespace, eventually, KUBECONFIG, kubectl, kubectlResult } from './kube.ts';

const NS = 'kvts-upstream-compat-2';
const IMAGE = 'registry:5000/kubevirt/cirros-container-disk-demo:devel';
const VIRTCTL = join(import.meta.dirname, '..', '..', 'bin', 'virtctl');
/** Guests run under TCG on two cores, several at once: every wait is generous. */
const RUNNING_SECONDS = 300;

type Condition = { type: string; status: string; reason?: string; message?: string };
type Obj = {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec?: Record<string, unknown> & { nodeName?: string };
  status?: Record<string, unknown> & { phase?: string; conditions?: Condition[]; nodeName?: string; evacuationNodeName?: string };
};

const get = (resource: string, name: string): Obj | undefined => {
  const r = kubectlResult(['get', resource, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const vmiRunning = (name: string) =>
  eventually(`the VMI ${name} Running`, RUNNING_SECONDS, () => {
    const vmi = get('vmi', name);
    return vmi?.status?.phase === 'Running' ? vmi : undefined;
  });
const launcherPod = (vmiUid: string): Obj | undefined =>
  (JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${vmiUid}`, '-o', 'json'])).items as Obj[]).find(
    (p) => !p.metadata.deletionTimestamp,
  );
const eventsOf = (name: string): { reason: string; type: string; message: string; involvedObject: { uid?: string } }[] =>
  JSON.parse(kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])).items;
const deleteVmi = (name: string) => kubectlResult(['delete', 'vmi', name, '-n', NS, '--wait=false']);

/** A VMI of the cirros demo disk, small, stopped at once when deleted. */
function cirrosVmi(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: NS },
    spec: {
      terminationGracePeriodSeconds: 0,
      domain: { devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' } },
      volumes: [{ name: 'containerdisk', containerDisk: { image: IMAGE } }],
      ...spec,
    },
  };
}

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

// --- 1 -----------------------------------------------------------------------------------------

const SIDE_RESOURCES: [group: string, version: string, plural: string][] = [
  ['kubevirt.io', 'v1', 'virtualmachineinstancepresets'],
  ['snapshot.kubevirt.io', 'v1beta1', 'virtualmachinesnapshots'],
  ['snapshot.kubevirt.io', 'v1beta1', 'virtualmachinesnapshotcontents'],
  ['snapshot.kubevirt.io', 'v1beta1', 'virtualmachinerestores'],
  ['export.kubevirt.io', 'v1', 'virtualmachineexports'],
  ['clone.kubevirt.io', 'v1beta1', 'virtualmachineclones'],
  ['backup.kubevirt.io', 'v1alpha1', 'virtualmachinebackups'],
  ['backup.kubevirt.io', 'v1alpha1', 'virtualmachinebackuptrackers'],
];

test("the kinds upstream's namespace cleanup deletes are served: list and delete-collection answer, not 404", () => {
  for (const [group, version, plural] of SIDE_RESOURCES) {
    const path = `/apis/${group}/${version}/namespaces/${NS}/${plural}`;
    const list = kubectlResult(['get', '--raw', path]);
    assert.equal(list.status, 0, `GET ${path}: ${list.stderr}`);
    const cleared = kubectlResult(['delete', '--raw', path]);
    assert.equal(cleared.status, 0, `DELETE ${path}: ${cleared.stderr}`);
  }
  // The alpha and beta versions upstream still serves.
  for (const path of ['/apis/snapshot.kubevirt.io/v1alpha1', '/apis/clone.kubevirt.io/v1alpha1', '/apis/export.kubevirt.io/v1beta1']) {
    assert.equal(kubectlResult(['get', '--raw', path]).status, 0, path);
  }
});

test('presets are admitted as upstream admits them, with its deprecation warning', () => {
  const preset = (spec: object) => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstancePreset',
    metadata: { name: 'small', namespace: NS },
    spec,
  });
  const refused = kubectlResult(['create', '-f', '-'], JSON.stringify(preset({ selector: { matchLabels: { size: 'small' } } })));
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /missing domain/);
  const created = kubectlResult(
    ['create', '-f', '-'],
    JSON.stringify(preset({ selector: { matchLabels: { size: 'small' } }, domain: { cpu: { cores: 1 }, devices: {} } })),
  );
  assert.equal(created.status, 0, created.stderr);
  assert.match(created.stderr, /VirtualMachineInstancePresets is now deprecated and will be removed in v2/);
  assert.equal(kubectlResult(['delete', 'vmipreset', 'small', '-n', NS]).status, 0);
});

test('a clone, an export and a snapshot say kubevirt-ts does not support them yet, and go when deleted', async () => {
  const source = { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'some-vm' };
  apply({
    apiVersion: 'clone.kubevirt.io/v1beta1',
    kind: 'VirtualMachineClone',
    metadata: { name: 'c1', namespace: NS },
    spec: { source },
  });
  apply({ apiVersion: 'export.kubevirt.io/v1', kind: 'VirtualMachineExport', metadata: { name: 'e1', namespace: NS }, spec: { source } });
  apply({
    apiVersion: 'snapshot.kubevirt.io/v1beta1',
    kind: 'VirtualMachineSnapshot',
    metadata: { name: 's1', namespace: NS },
    spec: { source },
  });
  const notSupported = (resource: string, name: string, phase: string) =>
    eventually(`${resource} ${name} marked not supported`, 60, () => {
      const o = get(resource, name);
      const ready = o?.status?.conditions?.find((c) => c.type === 'Ready');
      return o?.status?.phase === phase && ready?.status === 'False' && ready.reason === 'NotSupported' ? o : undefined;
    });
  const clone = await notSupported('virtualmachineclones.clone.kubevirt.io', 'c1', 'Failed');
  assert.match(clone.status!.conditions!.find((c) => c.type === 'Ready')!.message!, /kubevirt-ts does not support VM clones yet/);
  await notSupported('virtualmachineexports.export.kubevirt.io', 'e1', 'Skipped');
  const snapshot = await notSupported('virtualmachinesnapshots.snapshot.kubevirt.io', 's1', 'Failed');
  assert.match((snapshot.status!.error as { message: string }).message, /does not support VM snapshots yet/);
  // kubectl shows upstream's columns.
  assert.match(kubectl(['get', 'vmclone', 'c1', '-n', NS]), /PHASE\s+SOURCEVIRTUALMACHINE\s+TARGETVIRTUALMACHINE/);
  for (const resource of ['vmclone/c1', 'vmexport/e1', 'vmsnapshot/s1']) {
    assert.equal(kubectlResult(['delete', resource, '-n', NS, '--timeout=60s']).status, 0, resource);
  }
});

// --- 2 -----------------------------------------------------------------------------------------

test("freeze and unfreeze of a VMI without a guest agent fail with upstream's error", async () => {
  // upstream's libvmifact.NewGuestless: no disk, nothing boots, no agent ever answers.
  apply({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'guestless', namespace: NS },
    spec: { terminationGracePeriodSeconds: 0, domain: { devices: {}, memory: { guest: '128Mi' } } },
  });
  await vmiRunning('guestless');
  const put = (action: string, body: object) =>
    kubectlResult(
      ['replace', '--raw', `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/guestless/${action}`, '-f', '-'],
      JSON.stringify(body),
    );
  const freeze = put('freeze', { unfreezeTimeout: '0s' });
  assert.notEqual(freeze.status, 0);
  assert.match(freeze.stderr, /Internal error occurred:.*command Freeze failed:.*QEMU guest agent is not connected/);
  const unfreeze = put('unfreeze', {});
  assert.notEqual(unfreeze.status, 0);
  assert.match(unfreeze.stderr, /Internal error occurred:.*command Unfreeze failed:.*QEMU guest agent is not connected/);
  deleteVmi('guestless');
});

test('while the guest agent holds the filesystems frozen the VMI says so (status.fsFreezeStatus), until unfreeze or the unfreeze timeout', async () => {
  apply(cirrosVmi('frozen'));
  await vmiRunning('frozen');
  await eventually('the guest agent connected', RUNNING_SECONDS, () =>
    get('vmi', 'frozen')?.status?.conditions?.some((c) => c.type === 'AgentConnected' && c.status === 'True'),
  );
  const put = (action: string, body: object) =>
    kubectl(
      ['replace', '--raw', `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/frozen/${action}`, '-f', '-'],
      JSON.stringify(body),
    );
  const freezeStatus = (expected: string | undefined) =>
    // upstream's tests give the status 30 s to show.
    eventually(`fsFreezeStatus ${expected ?? 'gone'}`, 30, () => get('vmi', 'frozen')?.status?.fsFreezeStatus === expected);
  put('freeze', { unfreezeTimeout: '0s' });
  await freezeStatus('frozen');
  put('unfreeze', {});
  await freezeStatus(undefined);
  put('freeze', { unfreezeTimeout: '10s' });
  await freezeStatus('frozen');
  await freezeStatus(undefined);
  deleteVmi('frozen');
});

test("with no cloud-init data the alpine guest greets as localhost, as upstream's image does; cirros takes the name DHCP offers", async () => {
  const alpine = cirrosVmi('greeting-alpine');
  alpine.spec.volumes = [{ name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/alpine-container-disk-demo:devel' } }];
  apply(alpine);
  apply(cirrosVmi('greeting-cirros'));
  // Through the console, as upstream's test reads it: the prompt ends no line, so no log shows it.
  const greeting = async (name: string) => {
    await vmiRunning(name);
    const console = openConsole(name);
    try {
      return await eventually(`the login prompt of ${name}`, 120, () => {
        console.child.stdin.write('\n');
        return /(\S+) login: *$/.exec(console.output)?.[1];
      });
    } finally {
      console.child.kill();
    }
  };
  assert.equal(await greeting('greeting-alpine'), 'localhost');
  assert.equal(await greeting('greeting-cirros'), 'greeting-cirros');
  deleteVmi('greeting-alpine');
  deleteVmi('greeting-cirros');
});

test("upstream's virtio-win image attached as a SATA CD-ROM is the guest's /dev/cdrom, mounted as its tests mount it", async () => {
  apply(
    cirrosVmi('virtio-cdrom', {
      domain: {
        devices: {
          disks: [
            { name: 'containerdisk', disk: { bus: 'virtio' } },
            { name: 'virtio', cdrom: { bus: 'sata' } },
          ],
        },
        memory: { guest: '128Mi' },
      },
      volumes: [
        { name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/alpine-container-disk-demo:devel' } },
        { name: 'virtio', containerDisk: { image: 'registry:5000/kubevirt/virtio-container-disk:devel' } },
      ],
    }),
  );
  await vmiRunning('virtio-cdrom');
  const shell = await rootShell('virtio-cdrom');
  try {
    // The file system type is upstream's typo: busybox takes the type from /etc/fstab.
    // The end marker is computed, so that the echo of the typed line does not match it.
    const said = await shell.run('mount -t iso9600 /dev/cdrom; echo mount=$?; ls /media/cdrom; echo listed-$((6*7))', /listed-42/);
    assert.match(said, /mount=0/);
    assert.match(said, /guest-agent/);
    assert.match(said, /virtio-win_license\.txt/);
  } finally {
    shell.close();
    deleteVmi('virtio-cdrom');
  }
});

test('a guest kernel panic with a panic device fails the VMI, with the Stopped and GuestPanicked warnings upstream gives', async () => {
  apply(
    cirrosVmi('panicking', {
      domain: {
        devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }], panicDevices: [{ model: 'isa' }] },
        memory: { guest: '128Mi' },
      },
      volumes: [{ name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/alpine-container-disk-demo:devel' } }],
    }),
  );
  const vmi = await vmiRunning('panicking');
  const shell = await rootShell('panicking');
  try {
    await shell.run('echo c > /proc/sysrq-trigger', /sysrq triggered crash/);
  } finally {
    shell.close();
  }
  await eventually('the VMI Failed', 60, () => get('vmi', 'panicking')?.status?.phase === 'Failed');
  const warnings = await eventually('both warnings', 30, () => {
    const events = eventsOf('panicking').filter((e) => e.involvedObject.uid === vmi.metadata.uid && e.type === 'Warning');
    const reasons = new Set(events.map((e) => e.reason));
    return reasons.has('Stopped') && reasons.has('GuestPanicked') ? events : undefined;
  });
  assert.match(warnings.find((e) => e.reason === 'Stopped')!.message, /The VirtualMachineInstance crashed/);
  deleteVmi('panicking');
});

test("a VMI labelled debugLogs gets its launcher's QEMU monitor traffic in its logs, as upstream's libvirt records; one without does not", async () => {
  const debug = cirrosVmi('debug-logs');
  apply({ ...debug, metadata: { ...debug.metadata, labels: { debugLogs: 'true' } } });
  apply(cirrosVmi('quiet-logs'));
  const launcherLog = async (name: string) => {
    const vmi = await vmiRunning(name);
    const pod = launcherPod(vmi.metadata.uid)!.metadata.name;
    return kubectl(['logs', '-n', NS, pod, '-c', 'compute']);
  };
  const debugLines = (await launcherLog('debug-logs')).split('\n').filter((l) => l.includes('QEMU_MONITOR_SEND_MSG'));
  assert.ok(debugLines.length > 0, 'monitor commands logged');
  assert.ok(
    debugLines.every((l) => l.includes('"subcomponent":"libvirt"') && l.includes('"level":"debug"')),
    debugLines[0],
  );
  assert.doesNotMatch(await launcherLog('quiet-logs'), /QEMU_MONITOR_SEND_MSG/);
  deleteVmi('debug-logs');
  // Deleted with no grace period, the guest is stopped at once, and virt-handler says so as upstream's does.
  const quiet = get('vmi', 'quiet-logs')!;
  deleteVmi('quiet-logs');
  await eventually('the Deleted event', 60, () =>
    eventsOf('quiet-logs').some((e) => e.involvedObject.uid === quiet.metadata.uid && e.reason === 'Deleted'),
  );
});

test('the node carries the CPU models QEMU offers here; a VMI naming one runs, one naming a model no node offers is Unschedulable', async () => {
  const labels = JSON.parse(kubectl(['get', 'node', 'node01', '-o', 'json'])).metadata.labels as Record<string, string>;
  const models = Object.keys(labels)
    .filter((l) => l.startsWith('cpu-model.node.kubevirt.io/'))
    .map((l) => l.slice('cpu-model.node.kubevirt.io/'.length));
  // Under software emulation: Nehalem, Penryn and Westmere, each also as -v1; obsolete models are left out.
  assert.ok(models.length >= 2, models.join());
  assert.ok(!models.includes('486') && !models.includes('qemu64'), models.join());
  const withModel = (name: string, model: string) =>
    cirrosVmi(name, {
      domain: { cpu: { model }, devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' } },
    });
  apply(withModel('offered-model', models[0]));
  apply(withModel('obsolete-model', '486'));
  await vmiRunning('offered-model');
  await eventually('the 486 VMI Unschedulable', 60, () => {
    const scheduled = get('vmi', 'obsolete-model')?.status?.conditions?.find((c) => c.type === 'PodScheduled');
    return scheduled?.status === 'False' && scheduled.reason === 'Unschedulable';
  });
  deleteVmi('offered-model');
  deleteVmi('obsolete-model');
});

test("a containerDisk's base is the launcher's to read and no one's to write; the guest's writable layer is where upstream keeps it, not world-readable", async () => {
  apply(cirrosVmi('disk-modes'));
  const vmi = await vmiRunning('disk-modes');
  const pod = launcherPod(vmi.metadata.uid)!.metadata.name;
  const mode = (path: string) => kubectl(['exec', '-n', NS, pod, '-c', 'compute', '--', 'stat', '-c', '%a', path]).trim();
  assert.equal(mode('/var/run/kubevirt-ephemeral-disks/disk-data/containerdisk/disk.qcow2'), '640');
  assert.equal(mode('/var/run/kubevirt/container-disks/disk_0.img'), '440');
  deleteVmi('disk-modes');
});

test("on the node, components go by upstream's process names, and a VMI's launcher is found by its UID (as pkill -f finds it)", async () => {
  apply(cirrosVmi('named'));
  const vmi = await vmiRunning('named');
  const pids = (...args: string[]) => execFileSync('pgrep', args, { encoding: 'utf8' }).split('\n').filter(Boolean);
  assert.ok(pids('-x', 'virt-handler').length > 0, 'virt-handler');
  assert.ok(pids('-x', 'virt-controller').length > 0, 'virt-controller');
  const launchers = pids('-x', 'virt-launcher');
  const byUid = pids('-f', vmi.metadata.uid);
  assert.ok(
    byUid.some((pid) => launchers.includes(pid)),
    `launchers ${launchers}, by UID ${byUid}`,
  );
  deleteVmi('named');
});

// --- 3 -----------------------------------------------------------------------------------------

const evict = (pod: string) =>
  kubectlResult(
    // -v=6 logs the answer's status line, where the 429 shows (kubectl prints only the message).
    ['create', '-v=6', '--raw', `/api/v1/namespaces/${NS}/pods/${pod}/eviction`, '-f', '-'],
    JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: NS } }),
  );

test('evicting the launcher pod of an External VMI is refused with 429 and marks the VMI for evacuation; with None it goes', async () => {
  apply(cirrosVmi('external', { evictionStrategy: 'External' }));
  apply(cirrosVmi('none', { evictionStrategy: 'None' }));
  const external = await vmiRunning('external');
  const refused = evict(launcherPod(external.metadata.uid)!.metadata.name);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, new RegExp(`Eviction triggered evacuation of VMI "${NS}/external"`));
  assert.match(refused.stderr, /TooManyRequests|429/);
  const marked = get('vmi', 'external');
  assert.equal(marked?.status?.evacuationNodeName, marked?.status?.nodeName);
  assert.equal(get('vmi', 'external')?.status?.phase, 'Running', 'the guest runs on');
  // Once marked, a new eviction is refused as an evacuation in progress.
  assert.match(evict(launcherPod(external.metadata.uid)!.metadata.name).stderr, /Evacuation in progress/);

  const none = await vmiRunning('none');
  const pod = launcherPod(none.metadata.uid)!.metadata.name;
  const allowed = evict(pod);
  assert.equal(allowed.status, 0, allowed.stderr);
  await eventually(
    'the evicted launcher pod going',
    120,
    () => get('pod', pod)?.metadata.deletionTimestamp !== undefined || !get('pod', pod),
  );
  deleteVmi('external');
  deleteVmi('none');
});

// --- 5 -----------------------------------------------------------------------------------------

/** A root shell on the alpine guest's serial console (root needs no password there, as on upstream's image). */
async function rootShell(name: string) {
  const console = openConsole(name);
  // ash ends its prompt with a cursor-position query (ESC [6n), which is left out before matching.
  const atShellPrompt = () => /~# $/.test(console.output.replaceAll('\u001b[6n', ''));
  const waitFor = (what: string, pattern: RegExp, from: number) =>
    eventually(`${what}; the console said: ${console.output.slice(-300)}`, 120, () => pattern.test(console.output.slice(from)));
  // getty drops what was typed before it asks (input sent while the guest boots, or during its
  // prompt), so the user name is typed again at each prompt until the shell answers.
  await eventually(`a root shell; the console said: ${console.output.slice(-300)}`, 120, () => {
    if (atShellPrompt()) return true;
    console.child.stdin.write(/ login: *$/.test(console.output) ? 'root\n' : '\n');
    return false;
  });
  return {
    /** Runs a command line and resolves to what the console printed once `until` shows. */
    async run(line: string, until: RegExp): Promise<string> {
      const at = console.output.length;
      console.child.stdin.write(`${line}\n`);
      await waitFor(`the output of ${line}`, until, at);
      return console.output.slice(at);
    },
    close: () => console.child.kill(),
  };
}

/** A virtctl console without a terminal, its output collected. */
function openConsole(name: string) {
  const child = spawn(VIRTCTL, ['-n', NS, 'console', '--timeout', '5', name], { env: { ...process.env, KUBECONFIG } });
  const session = { output: '', exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))), child };
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (d: Buffer) => (session.output += d.toString('utf8')));
  return session;
}

test('a second console connection ends the first, whose client reports the disconnection as upstream clients do', async () => {
  apply(cirrosVmi('consoled'));
  await vmiRunning('consoled');
  const first = openConsole('consoled');
  await eventually('the first console connected', 120, () => /Successfully connected/.test(first.output));
  const second = openConsole('consoled');
  try {
    await eventually('the second console connected', 120, () => /Successfully connected/.test(second.output));
    // Dropped without a close frame, as upstream's virt-handler drops it: an unexpected EOF (1006) for the client.
    await eventually(`the first console ended; it said: ${first.output.slice(-300)}`, 60, () =>
      /You were disconnected from the console/.test(first.output),
    );
    await Promise.race([first.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    assert.notEqual(first.child.exitCode, null, 'the first virtctl exited');
    assert.doesNotMatch(second.output, /You were disconnected/, 'the second one stays');
  } finally {
    first.child.kill();
    second.child.kill();
    deleteVmi('consoled');
  }
});

// --- 6 -----------------------------------------------------------------------------------------

test('a VMI whose user-data Secret is missing waits (FailedMount) and is Started once the Secret is created', async () => {
  apply(
    cirrosVmi('late-secret', {
      domain: {
        devices: {
          disks: [
            { name: 'containerdisk', disk: { bus: 'virtio' } },
            { name: 'cloudinit', disk: { bus: 'virtio' } },
          ],
        },
        memory: { guest: '128Mi' },
      },
      volumes: [
        { name: 'containerdisk', containerDisk: { image: IMAGE } },
        { name: 'cloudinit', cloudInitNoCloud: { secretRef: { name: 'late-userdata' } } },
      ],
    }),
  );
  const vmi = await eventually('the VMI Scheduling', 120, () => {
    const v = get('vmi', 'late-secret');
    return v?.status?.phase === 'Scheduling' ? v : undefined;
  });
  const pod = await eventually('its launcher pod', 60, () => launcherPod(vmi.metadata.uid));
  await eventually('FailedMount on the launcher pod', 120, () =>
    eventsOf(pod.metadata.name).some((e) => e.reason === 'FailedMount' && /late-userdata.*not found/.test(e.message)),
  );
  assert.notEqual(get('vmi', 'late-secret')?.status?.phase, 'Running');
  kubectl(['create', 'secret', 'generic', 'late-userdata', '-n', NS, '--from-literal=userdata=#cloud-config']);
  // Upstream's test allows 60 s after the Secret; the kubelet's mount retry and a TCG start get more here.
  await eventually('the Started event of the VMI', 240, () =>
    eventsOf('late-secret').some((e) => e.type === 'Normal' && e.reason === 'Started' && e.involvedObject.uid === vmi.metadata.uid),
  );
  assert.equal(get('vmi', 'late-secret')?.status?.phase, 'Running');
  deleteVmi('late-secret');
});
