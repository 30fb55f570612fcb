// virtctl image-upload pvc: a bare claim (no DataVolume) annotated as an upload
// target gets an upload server from cdi-controller, as CDI's upload
// controller gives one; the test guest's qcow2 goes through the upload proxy,
// the claim keeps podPhase Succeeded with its server gone, a second upload
// onto it is refused, and a VM with the claim as persistentVolumeClaim boots.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apply, deleteNamespace, eventually, KUBECONFIG, kubectl, kubectlResult, storageDiagnostics, vmiConsoleLog } from './kube.ts';

const NS = 'kvts-e2e-upload-pvc';
const VIRTCTL = join(import.meta.dirname, '..', '..', 'bin', 'virtctl');

const virtctl = (args: string[]) => spawnSync(VIRTCTL, ['-n', NS, ...args], { encoding: 'utf8', env: { ...process.env, KUBECONFIG } });
const json = <T>(args: string[]) => JSON.parse(kubectl([...args, '-n', NS, '-o', 'json'])) as T;
type Claim = {
  metadata: { uid: string; annotations?: Record<string, string>; labels?: Record<string, string>; ownerReferences?: unknown[] };
  status?: { phase?: string };
};
const claim = (name: string) => json<Claim>(['get', 'pvc', name]);
const consoleLog = (vmi: string) => vmiConsoleLog(NS, vmi);

/** The guest's init counts its boots on its boot disk (a vfat filesystem on the test guest's image). */
const USER_DATA = `#!/bin/sh
mkdir -p /mnt/b
mount -t vfat /dev/vda /mnt/b && echo "boot disk boots: $(wc -l < /mnt/b/boots.log)" && umount /mnt/b
`;

let guestDisk = '';

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  // The test guest's qcow2, built (or taken from ~/.cache) as storage.test.ts takes it.
  const guest = spawnSync('bash', [join(import.meta.dirname, '..', '..', 'images', 'guest', 'build.sh')], { encoding: 'utf8' });
  assert.equal(guest.status, 0, guest.stderr);
  guestDisk = join(guest.stdout.trim(), 'disk.qcow2');
});

after(() => deleteNamespace(NS));

test('virtctl image-upload pvc fills a bare claim through an upload server owned by the claim; the claim keeps Succeeded and the server goes', async () => {
  const upload = virtctl(['image-upload', 'pvc', 'bare', '--size', '128Mi', '--image-path', guestDisk, '--insecure']);
  if (upload.status !== 0) assert.fail(`${upload.stderr}${upload.stdout}\n${storageDiagnostics(NS)}`);
  assert.match(upload.stdout + upload.stderr, /Processing completed successfully/);
  const filled = claim('bare');
  assert.equal(filled.metadata.annotations?.['cdi.kubevirt.io/storage.upload.target'], '');
  assert.equal(filled.metadata.annotations?.['cdi.kubevirt.io/storage.pod.phase'], 'Succeeded');
  assert.equal(filled.metadata.ownerReferences, undefined, 'no DataVolume: the claim is the user’s');
  assert.equal(filled.status?.phase, 'Bound', 'the upload server was the claim’s first consumer');
  await eventually(
    'the upload server to be removed',
    60,
    () =>
      kubectlResult([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        `cdi.kubevirt.io/datavolume-uid=${filled.metadata.uid}`,
        '-o',
        'name',
      ]).stdout.trim() === '',
  );
  const events = kubectl([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    'involvedObject.kind=PersistentVolumeClaim,involvedObject.name=bare',
  ]);
  assert.match(events, /UploadSucceeded/);
});

test('a second image-upload pvc --no-create onto the filled claim is refused as upstream refuses it', () => {
  const again = virtctl(['image-upload', 'pvc', 'bare', '--no-create', '--image-path', guestDisk, '--insecure']);
  assert.notEqual(again.status, 0);
  assert.match(again.stdout + again.stderr, /PVC bare already successfully imported\/cloned\/updated/);
  assert.equal(claim('bare').metadata.annotations?.['cdi.kubevirt.io/storage.pod.phase'], 'Succeeded');
});

test('a VM with the uploaded claim as a persistentVolumeClaim volume boots from it', async () => {
  apply({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'frompvc', namespace: NS },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          domain: {
            devices: {
              disks: [
                { name: 'rootdisk', disk: { bus: 'virtio' } },
                { name: 'cloudinit', disk: { bus: 'virtio' } },
              ],
            },
            resources: { requests: { memory: '128Mi' } },
          },
          volumes: [
            { name: 'rootdisk', persistentVolumeClaim: { claimName: 'bare' } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: USER_DATA } },
          ],
        },
      },
    },
  });
  await eventually('the guest to boot from the uploaded claim', 300, () => /boot disk boots: 1\b/.test(consoleLog('frompvc')));
  const overhead = kubectl([
    'get',
    'vmi',
    'frompvc',
    '-n',
    NS,
    '-o',
    'jsonpath={.status.volumeStatus[?(@.name=="rootdisk")].persistentVolumeClaimInfo.filesystemOverhead}',
  ]);
  const configured = kubectl(['get', 'cdiconfig', 'config', '-o', 'jsonpath={.status.filesystemOverhead.global}']);
  assert.equal(overhead, configured, "volumeStatus reports the CDIConfig's overhead");
  kubectl(['delete', 'vm', 'frompvc', '-n', NS, '--wait=false']);
});
