// Persistent storage on the local cluster: the default StorageClass
// (local-path-provisioner), DataVolumes imported over HTTP, from a registry,
// blank and uploaded, VMs that boot from them and keep what their guests
// wrote across restart and stop/start, and imports that fail with a reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  apply,
  deleteNamespace,
  eventually,
  KUBECONFIG,
  kubectl,
  kubectlResult,
  startImageServer,
  virtHandlerReady,
  vmiConsoleLog,
} from './kube.ts';

const NS = 'kvts-e2e-storage';
const SERVERS = 'registry:5000/kubevirt-ts/e2e-servers:devel';
const VIRTCTL = join(import.meta.dirname, '..', '..', 'bin', 'virtctl');
let imageServer = '';

const virtctl = (args: string[]) => spawnSync(VIRTCTL, ['-n', NS, ...args], { encoding: 'utf8', env: { ...process.env, KUBECONFIG } });
const json = <T>(args: string[]) => JSON.parse(kubectl([...args, '-n', NS, '-o', 'json'])) as T;
type DataVolume = {
  status?: { phase?: string; progress?: string; restartCount?: number; conditions?: { type: string; reason?: string; message?: string }[] };
};
const dv = (name: string) => json<DataVolume>(['get', 'datavolume', name]);
const phase = (name: string) => kubectlResult(['get', 'vmi', name, '-n', NS, '-o', 'jsonpath={.status.phase}']).stdout;
const vmiUid = (name: string) => kubectlResult(['get', 'vmi', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}']).stdout;
const consoleLog = (vmi: string) => vmiConsoleLog(NS, vmi);

// The guest counts its boots on its boot disk (the guest's init does); the script also writes to the data disk, formatting it first.
const USER_DATA = `#!/bin/sh
mkdir -p /mnt/b /mnt/d
mount -t vfat /dev/vda /mnt/b && echo "boot disk boots: $(wc -l < /mnt/b/boots.log)" && umount /mnt/b
if [ -b /dev/vdc ]; then
  mount -t vfat /dev/vdb /mnt/d 2>/dev/null || { mkdosfs -n KVTSDATA /dev/vdb >/dev/null && mount -t vfat /dev/vdb /mnt/d; }
  echo write >> /mnt/d/writes.log && sync && echo "data disk writes: $(wc -l < /mnt/d/writes.log)" && umount /mnt/d
fi
`;

function vm(name: string, source: Record<string, unknown>, options: { size?: string; blank?: boolean } = {}) {
  const disks = [{ name: 'rootdisk', disk: { bus: 'virtio' } }];
  const volumes: Record<string, unknown>[] = [{ name: 'rootdisk', dataVolume: { name: `${name}-root` } }];
  const templates: Record<string, unknown>[] = [
    { metadata: { name: `${name}-root` }, spec: { source, storage: { resources: { requests: { storage: options.size ?? '128Mi' } } } } },
  ];
  if (options.blank) {
    disks.push({ name: 'datadisk', disk: { bus: 'virtio' } });
    volumes.push({ name: 'datadisk', dataVolume: { name: `${name}-data` } });
    templates.push({
      metadata: { name: `${name}-data` },
      spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '64Mi' } } } },
    });
  }
  disks.push({ name: 'cloudinit', disk: { bus: 'virtio' } });
  volumes.push({ name: 'cloudinit', cloudInitNoCloud: { userData: USER_DATA } });
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NS },
    spec: {
      runStrategy: 'Always',
      dataVolumeTemplates: templates,
      template: {
        spec: { domain: { devices: { disks }, resources: { requests: { memory: '128Mi' } } }, volumes },
      },
    },
  };
}

before(async () => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  imageServer = startImageServer(NS);
});

after(() => deleteNamespace(NS));

test('the default StorageClass binds a claim when its first pod is scheduled, and the pod writes to it', async () => {
  const sc = kubectl([
    'get',
    'storageclass',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name} {.volumeBindingMode} {.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}{"\\n"}{end}',
  ]);
  assert.match(sc, /^local-path WaitForFirstConsumer true$/m);
  apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'plain', namespace: NS },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '16Mi' } } },
  });
  assert.equal(json<{ status: { phase: string } }>(['get', 'pvc', 'plain']).status.phase, 'Pending', 'waits for its first consumer');
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'writer', namespace: NS },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'c',
          image: SERVERS,
          command: ['sh', '-c', 'echo kept > /data/f && cat /data/f'],
          volumeMounts: [{ name: 'd', mountPath: '/data' }],
        },
      ],
      volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'plain' } }],
    },
  });
  await eventually(
    'the writer pod to finish',
    120,
    () => kubectlResult(['get', 'pod', 'writer', '-n', NS, '-o', 'jsonpath={.status.phase}']).stdout === 'Succeeded',
  );
  assert.equal(kubectl(['logs', 'writer', '-n', NS]).trim(), 'kept');
  assert.equal(json<{ status: { phase: string } }>(['get', 'pvc', 'plain']).status.phase, 'Bound');
});

test('a VM imports its root disk (qcow2 over HTTP) and a blank data disk, boots, and keeps what the guest wrote across restart, stop/start, a virt-handler restart and its launcher pod deleted', async () => {
  apply(vm('persist', { http: { url: `${imageServer}/disk.qcow2` } }, { blank: true }));
  // WaitForFirstConsumer: the DataVolumes wait until the VMI's pod needs them, then import on its node.
  await eventually('the root DataVolume to succeed', 300, () => dv('persist-root').status?.phase === 'Succeeded');
  const root = dv('persist-root').status!;
  assert.equal(root.progress, '100.0%');
  assert.deepEqual(
    root.conditions?.map((c) => [c.type, c.reason]),
    [
      ['Bound', 'Bound'],
      ['Ready', ''],
      ['Running', 'Completed'],
    ],
  );
  const columns = kubectl(['get', 'dv', '-n', NS]).split('\n')[0].trim().split(/\s+/);
  assert.deepEqual(columns, ['NAME', 'PHASE', 'PROGRESS', 'RESTARTS', 'AGE']);
  await eventually('the VMI to run', 240, () => phase('persist') === 'Running');
  await eventually(
    'the first boot and first write',
    180,
    () => /boot disk boots: 1\b/.test(consoleLog('persist')) && /data disk writes: 1\b/.test(consoleLog('persist')),
  );
  assert.equal(
    kubectlResult(['get', 'pods', '-n', NS, '-l', 'app=containerized-data-importer', '-o', 'name']).stdout.trim(),
    '',
    'no importer pod is left',
  );

  const first = vmiUid('persist');
  assert.equal(virtctl(['restart', 'persist']).status, 0);
  await eventually('a new VMI to run', 240, () => vmiUid('persist') !== first && phase('persist') === 'Running');
  await eventually(
    'the second boot, seeing the first write',
    180,
    () => /boot disk boots: 2\b/.test(consoleLog('persist')) && /data disk writes: 2\b/.test(consoleLog('persist')),
  );

  assert.equal(virtctl(['stop', 'persist']).status, 0);
  await eventually('the VMI to go', 180, () => kubectlResult(['get', 'vmi', 'persist', '-n', NS]).status !== 0);
  assert.equal(virtctl(['start', 'persist']).status, 0);
  await eventually(
    'the third boot',
    300,
    () => /boot disk boots: 3\b/.test(consoleLog('persist')) && /data disk writes: 3\b/.test(consoleLog('persist')),
  );

  // virt-handler restarted under the running guest: the guest runs on, on the same disks.
  const third = vmiUid('persist');
  kubectl(['delete', 'pod', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler', '--wait=true']);
  await virtHandlerReady();

  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(vmiUid('persist'), third, 'the same VMI');
  assert.equal(phase('persist'), 'Running');
  assert.match(consoleLog('persist'), /boot disk boots: 3\b/, 'the guest did not boot again');

  // Its launcher pod deleted: runStrategy Always starts a new VMI on the same claims, which hold every write.
  const launcher = kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/created-by=${third}`, '-o', 'name'])
    .split('\n')
    .filter(Boolean);
  kubectl(['delete', '-n', NS, ...launcher, '--wait=false']);
  await eventually('a new VMI after the launcher pod went', 240, () => vmiUid('persist') !== third && phase('persist') === 'Running');
  await eventually(
    'the fourth boot, seeing every earlier write',
    300,
    () => /boot disk boots: 4\b/.test(consoleLog('persist')) && /data disk writes: 4\b/.test(consoleLog('persist')),
  );

  kubectl(['delete', 'vm', 'persist', '-n', NS, '--wait=true', '--timeout=120s']);
  await eventually("the VM's DataVolumes and claims to go with it", 120, () => {
    const left = kubectlResult(['get', 'dv,pvc', '-n', NS, '-o', 'name']).stdout;
    return !/persist-/.test(left);
  });
  assert.match(kubectl(['get', 'pvc', '-n', NS, '-o', 'name']), /plain/, 'a claim the VM did not create stays');
});

test("a registry DataVolume takes the containerDisk image's disk, and a VM boots from it", async () => {
  apply(vm('fromregistry', { registry: { url: 'docker://registry:5000/kubevirt/cirros-container-disk-demo:devel' } }));
  await eventually('the registry DataVolume to succeed', 300, () => dv('fromregistry-root').status?.phase === 'Succeeded');
  await eventually('the guest to boot from it', 300, () => /boot disk boots: 1\b/.test(consoleLog('fromregistry')));
  kubectl(['delete', 'vm', 'fromregistry', '-n', NS, '--wait=false']);
});

const standalone = (name: string, url: string, size = '128Mi') => ({
  apiVersion: 'cdi.kubevirt.io/v1beta1',
  kind: 'DataVolume',
  metadata: { name, namespace: NS, annotations: { 'cdi.kubevirt.io/storage.bind.immediate.requested': 'true' } },
  spec: { source: { http: { url } }, storage: { resources: { requests: { storage: size } } } },
});
const runningMessage = (name: string) => dv(name).status?.conditions?.find((c) => c.type === 'Running' && c.reason === 'Error')?.message;

test('imports that fail say why in the Running condition and retry: a 404, a truncated qcow2, a DataVolume too small for the image', async () => {
  apply(standalone('missing', `${imageServer}/no-such-image.qcow2`));
  apply(standalone('truncated', `${imageServer}/truncated/disk.qcow2`));
  apply(standalone('toosmall', `${imageServer}/disk.qcow2`, '16Mi'));
  const missing = await eventually('the 404 to be reported', 180, () => runningMessage('missing'));
  assert.match(missing, /404/);
  const truncated = await eventually('the truncated image to be reported', 180, () => runningMessage('truncated'));
  assert.match(truncated, /qcow2|qemu-img|read|truncat|image/i);
  const small = await eventually('the too small claim to be reported', 180, () => runningMessage('toosmall'));
  assert.equal(small, 'DataVolume too small to contain image');
  await eventually('the failed import to be retried', 120, () => (dv('missing').status?.restartCount ?? 0) >= 1);
  assert.equal(dv('missing').status?.phase, 'ImportInProgress');
  kubectl(['delete', 'dv', 'missing', 'truncated', 'toosmall', '-n', NS, '--wait=true', '--timeout=60s']);
  await eventually(
    'their importer pods to go',
    60,
    () => kubectlResult(['get', 'pods', '-n', NS, '-l', 'app=containerized-data-importer', '-o', 'name']).stdout.trim() === '',
  );
});

test('a DataVolume created while cdi-controller is replaced is worked on once the new one leads', async () => {
  const old = kubectl([
    'get',
    'pods',
    '-n',
    'kubevirt',
    '-l',
    'kubevirt.io=cdi-controller',
    '-o',
    'jsonpath={.items[*].metadata.name}',
  ]).split(' ');
  // Killed without a chance to hand over its lease: the new pod runs a while before it may lead.
  kubectl(['delete', 'pod', '-n', 'kubevirt', ...old, '--grace-period=0', '--force', '--wait=false']);
  await eventually('a new cdi-controller pod running', 60, () => {
    const pods = JSON.parse(kubectl(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=cdi-controller', '-o', 'json'])).items as {
      metadata: { name: string };
      status: { phase: string };
    }[];
    return pods.some((p) => !old.includes(p.metadata.name) && p.status.phase === 'Running');
  });
  apply({
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: 'during-failover', namespace: NS, annotations: { 'cdi.kubevirt.io/storage.bind.immediate.requested': '' } },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '16Mi' } } } },
  });
  await eventually('the DataVolume filled by the new cdi-controller', 120, () => dv('during-failover').status?.phase === 'Succeeded');
  kubectl(['delete', 'datavolume', 'during-failover', '-n', NS]);
});

test('virtctl image-upload dv of the test guest (qcow2) through the upload proxy the CDIConfig names, then a VM boots from it', async () => {
  const guest = spawnSync('bash', [join(import.meta.dirname, '..', '..', 'images', 'guest', 'build.sh')], {
    encoding: 'utf8',
  }).stdout.trim();
  const proxy = kubectl(['get', 'cdiconfig', 'config', '-o', 'jsonpath={.status.uploadProxyURL}']);
  assert.match(proxy, /^\d+\.\d+\.\d+\.\d+:\d+$/, 'a node port on the node, reachable from here');
  const upload = virtctl(['image-upload', 'dv', 'uploaded', '--size', '128Mi', '--image-path', join(guest, 'disk.qcow2'), '--insecure']);
  assert.equal(upload.status, 0, upload.stderr + upload.stdout);
  assert.match(upload.stdout + upload.stderr, /completed successfully/);
  assert.equal(dv('uploaded').status?.phase, 'Succeeded');
  const booting = vm('uploadedvm', { blank: {} });
  booting.spec.dataVolumeTemplates = [];
  booting.spec.template.spec.volumes[0] = { name: 'rootdisk', dataVolume: { name: 'uploaded' } };
  apply(booting);
  await eventually('the guest to boot from the uploaded disk', 300, () => /boot disk boots: 1\b/.test(consoleLog('uploadedvm')));
  kubectl(['delete', 'vm', 'uploadedvm', '-n', NS, '--wait=false']);
});

test('a clone of the uploaded DataVolume into another namespace boots; a user who may not read the source gets the DataVolume refused with the reason', async () => {
  const other = `${NS}-clone`;
  deleteNamespace(other, true);
  kubectl(['create', 'namespace', other]);
  try {
    const clone = (name: string) => ({
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      metadata: { name, namespace: other },
      spec: { source: { pvc: { namespace: NS, name: 'uploaded' } }, storage: { resources: { requests: { storage: '128Mi' } } } },
    });
    // A user who may edit the target namespace only.
    kubectl(['create', 'rolebinding', 'cloner-edit', '--clusterrole=edit', '--user=cloner', '-n', other]);
    const refused = kubectlResult(['create', '--as', 'cloner', '-f', '-'], JSON.stringify(clone('refused')));
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, new RegExp(`User cloner has insufficient permissions in clone source namespace ${NS}`));
    kubectl(['create', 'rolebinding', 'cloner-source', '--clusterrole=edit', '--user=cloner', '-n', NS]);
    kubectl(['create', '--as', 'cloner', '-f', '-'], JSON.stringify(clone('cloned')));
    const booting = vm('clonedvm', { blank: {} });
    booting.metadata.namespace = other;
    booting.spec.dataVolumeTemplates = [];
    booting.spec.template.spec.volumes[0] = { name: 'rootdisk', dataVolume: { name: 'cloned' } };
    apply(booting);
    const phaseOf = () => kubectlResult(['get', 'dv', 'cloned', '-n', other, '-o', 'jsonpath={.status.phase}']).stdout;
    await eventually('the clone to succeed', 300, () => phaseOf() === 'Succeeded');
    const uid = () => kubectlResult(['get', 'vmi', 'clonedvm', '-n', other, '-o', 'jsonpath={.metadata.uid}']).stdout;
    await eventually('the guest to boot from the clone (its boot log came with the disk)', 300, () => {
      const pods = JSON.parse(kubectl(['get', 'pods', '-n', other, '-l', `kubevirt.io/created-by=${uid()}`, '-o', 'json'])) as {
        items: { metadata: { name: string }; spec: { containers: { name: string }[] } }[];
      };
      const pod = pods.items.find((p) => p.spec.containers.some((c) => c.name === 'guest-console-log'));
      const log = pod ? kubectlResult(['logs', '-n', other, pod.metadata.name, '-c', 'guest-console-log']).stdout : '';
      return /boot disk boots: 2\b/.test(log);
    });
    assert.equal(
      kubectlResult(['get', 'pods', '-n', NS, '-l', 'cdi.kubevirt.io=cdi-clone-source', '-o', 'name']).stdout.trim(),
      '',
      'the source pod is gone',
    );
  } finally {
    deleteNamespace(other);
  }
});
