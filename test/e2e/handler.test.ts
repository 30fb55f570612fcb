// virt-handler in the cluster: upstream's examples boot to Running with their
// user-data on the console log, the guest is on the pod network both ways,
// shutdown is graceful, faults are reported truthfully, and paths planted in
// images or volumes are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { apply, deleteNamespace, eventually, getFromPod, kubectl, kubectlResult, virtHandlerReady } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-handler';
const SERVERS = 'registry:5000/kubevirt-ts/e2e-servers:devel';
type Obj = { metadata: { name: string; namespace?: string }; spec: Record<string, any> };
const get = (kind: string, name: string) => {
  const r = kubectlResult(['get', kind, name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
};
const phase = (name: string) => get('vmi', name)?.status?.phase as string | undefined;
const launcherPod = (vmi: string) =>
  kubectl([
    'get',
    'pods',
    '-n',
    NS,
    '-l',
    `vm.kubevirt.io/name=${vmi}`,
    '-o',
    'jsonpath={.items[?(@.status.phase=="Running")].metadata.name}',
  ])
    .trim()
    .split(' ')[0];
const consoleLog = (vmi: string) => kubectlResult(['logs', '-n', NS, launcherPod(vmi), '-c', 'guest-console-log']).stdout;
const events = (name: string) =>
  kubectl([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.name=${name}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
  ]);
/** Runs a shell command in the launcher's compute container. */
const inLauncher = (vmi: string, script: string) =>
  kubectl(['exec', '-n', NS, launcherPod(vmi), '-c', 'compute', '--', 'sh', '-c', script]);
const killQemu = (vmi: string) =>
  inLauncher(vmi, 'for p in /proc/[0-9]*; do case "$(cat "$p/comm" 2>/dev/null)" in qemu-system*) kill -9 "${p#/proc/}";; esac; done');

/** The test guest with user-data of our own and the given interface. */
function guest(name: string, userData: string, extra: (spec: Record<string, any>) => void = () => undefined): Obj {
  const vmi = example<Obj>('vmi-masquerade.yaml');
  vmi.metadata = { name, namespace: NS };
  vmi.spec.domain.memory.guest = '128Mi';
  vmi.spec.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
  vmi.spec.networks = [{ name: 'default', pod: {} }];
  vmi.spec.volumes[0].containerDisk.image = 'registry:5000/kubevirt-ts/test-guest-container-disk:devel';
  vmi.spec.volumes[1].cloudInitNoCloud = { userData };
  extra(vmi.spec);
  return vmi;
}

let serviceIp = '';
before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: NS, labels: { app: 'client' } },
    spec: {
      containers: [
        {
          name: 'server',
          image: SERVERS,
          command: ['node', '-e', `require('http').createServer((q, s) => s.end('hello from client\\n')).listen(8080)`],
          ports: [{ containerPort: 8080 }],
        },
      ],
      terminationGracePeriodSeconds: 0,
    },
  });
  apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'client', namespace: NS },
    spec: { selector: { app: 'client' }, ports: [{ port: 8080, targetPort: 8080 }] },
  });
  kubectl(['wait', '--for=condition=Ready', 'pod/client', '-n', NS, '--timeout=120s']);
  serviceIp = kubectl(['get', 'service', 'client', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}']);
});
after(() => deleteNamespace(NS));

for (const file of ['vmi-ephemeral.yaml', 'vmi-nocloud.yaml', 'vmi-masquerade.yaml']) {
  test(`upstream's ${file} runs unchanged${file === 'vmi-nocloud.yaml' ? ', its user-data on the console log' : ''}`, async () => {
    const vmi = example<Obj>(file);
    kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(vmi));
    await eventually(`${vmi.metadata.name} Running`, 120, () => phase(vmi.metadata.name) === 'Running');
    const status = get('vmi', vmi.metadata.name).status;
    assert.equal(status.conditions.find((c: { type: string }) => c.type === 'Ready')?.status, 'True');
    assert.match(status.interfaces[0].ipAddress, /^10\.244\./);
    assert.match(status.interfaces[0].mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    if (file === 'vmi-nocloud.yaml')
      await eventually('the user-data output on the console log', 90, () =>
        consoleLog(vmi.metadata.name).includes('printed from cloud-init userdata'),
      );
    await eventually('the guest agent', 90, () => get('vmi', vmi.metadata.name).status.guestOSInfo?.id === 'kvts-guest');
    assert.match(kubectl(['get', 'vmi', vmi.metadata.name, '-n', NS]), /Running\s+10\.244\.\S+\s+node01\s+True/);
    kubectl(['delete', 'vmi', vmi.metadata.name, '-n', NS, '--wait=true', '--timeout=120s']);
  });
}

test('user-data kept in a Secret (cloudInitNoCloud.secretRef) runs in the guest', async () => {
  apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'secret-userdata', namespace: NS },
    stringData: { userdata: '#!/bin/sh\necho "user-data from the secret ran"\n' },
  });
  const vmi = guest('from-secret', '');
  vmi.spec.volumes[1].cloudInitNoCloud = { secretRef: { name: 'secret-userdata' } };
  kubectl(['create', '-f', '-'], JSON.stringify(vmi));
  await eventually('from-secret Running', 120, () => phase('from-secret') === 'Running');
  await eventually("the secret's user-data output on the console log", 90, () =>
    consoleLog('from-secret').includes('user-data from the secret ran'),
  );
  kubectl(['delete', 'vmi', 'from-secret', '-n', NS, '--wait=true', '--timeout=120s']);
});

test("a guest backed by 2 MiB hugepages starts on the node's reserved pages", async () => {
  const vmi = guest(
    'hugepages',
    '#!/bin/sh\necho "running on hugepages"\n',
    (spec) => (spec.domain.memory.hugepages = { pageSize: '2Mi' }),
  );
  kubectl(['create', '-f', '-'], JSON.stringify(vmi));
  await eventually('hugepages Running', 120, () => phase('hugepages') === 'Running');
  await eventually("the guest's user-data output", 90, () => consoleLog('hugepages').includes('running on hugepages'));
  const pod = JSON.parse(kubectl(['get', 'pod', launcherPod('hugepages'), '-n', NS, '-o', 'json']));
  assert.equal(pod.spec.containers[0].resources.limits['hugepages-2Mi'], '128Mi');
  assert.match(inLauncher('hugepages', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "'), /mem-path=\/dev\/hugepages/);
  kubectl(['delete', 'vmi', 'hugepages', '-n', NS, '--wait=true', '--timeout=120s']);
});

test("upstream's vm-cirros.yaml starts and runs, its user-data on the console log", async () => {
  kubectl(['create', '-n', NS, '-f', '-'], JSON.stringify(example('vm-cirros.yaml')));
  kubectl(['patch', 'vm', 'vm-cirros', '-n', NS, '--type', 'merge', '-p', '{"spec":{"runStrategy":"Always"}}']);
  await eventually('vm-cirros Running', 120, () => get('vm', 'vm-cirros')?.status?.printableStatus === 'Running');
  await eventually('the user-data output', 90, () => consoleLog('vm-cirros').includes('printed from cloud-init userdata'));
  assert.equal(get('vm', 'vm-cirros').status.ready, true);
  kubectl(['delete', 'vm', 'vm-cirros', '-n', NS, '--wait=true', '--timeout=120s']);
});

test('the guest is on the pod network: a pod reaches its port by the VMI IP and a Service; it reaches a ClusterIP Service', async () => {
  const userData = `#!/bin/sh
for i in $(seq 60); do ip route | grep -q default && break; sleep 1; done
mkdir -p /tmp/www && echo "hello from the guest" > /tmp/www/index.html && httpd -p 80 -h /tmp/www
echo "from the service: $(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc ${serviceIp} 8080 | tail -n 1)"
`;
  const vmi = guest('web', userData, (spec) => (spec.domain.devices.interfaces[0].ports = [{ name: 'http', port: 80 }]));
  (vmi.metadata as Record<string, unknown>).labels = { app: 'web' };
  kubectl(['create', '-f', '-'], JSON.stringify(vmi));
  await eventually('web Running', 120, () => phase('web') === 'Running');
  await eventually('the guest to reach the Service', 120, () => consoleLog('web').includes('from the service: hello from client'));
  const ip = get('vmi', 'web').status.interfaces[0].ipAddress;
  const direct = await eventually("the guest's port 80 by the VMI IP", 60, () => getFromPod(NS, 'client', `http://${ip}:80/index.html`));
  assert.equal(direct, 'hello from the guest');
  apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: NS },
    spec: { selector: { 'vm.kubevirt.io/name': 'web' }, ports: [{ port: 8000, targetPort: 80 }] },
  });
  const svc = kubectl(['get', 'service', 'web', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}']);
  const viaService = await eventually('the guest through a Service', 60, () => getFromPod(NS, 'client', `http://${svc}:8000/index.html`));
  assert.equal(viaService, 'hello from the guest');
});

test('killing QEMU fails the VMI, with an event', async () => {
  killQemu('web');
  await eventually('web Failed', 60, () => phase('web') === 'Failed');
  assert.match(events('web'), /Stopped: The VirtualMachineInstance crashed/);
  kubectl(['delete', 'vmi', 'web', '-n', NS, '--wait=true', '--timeout=120s']);
});

test('deleting a VM shuts its guest down gracefully within the grace period, then the VMI and pod go', async () => {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'graceful', namespace: NS },
    spec: { runStrategy: 'Always', template: { metadata: {}, spec: guest('x', '#!/bin/sh\necho up').spec } },
  };
  vm.spec.template.spec.terminationGracePeriodSeconds = 60;
  kubectl(['create', '-f', '-'], JSON.stringify(vm));
  await eventually('graceful Running', 120, () => phase('graceful') === 'Running');
  await eventually('the guest to be up', 90, () => consoleLog('graceful').includes('kubevirt-ts test guest ready'));
  const pod = launcherPod('graceful');
  const started = Date.now();
  kubectl(['delete', 'vm', 'graceful', '-n', NS, '--wait=true', '--timeout=120s']);
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 60, `took ${seconds}s, beyond the 60s grace period`);
  await eventually('the launcher pod to be gone', 60, () => kubectlResult(['get', 'pod', pod, '-n', NS]).status !== 0);
  assert.match(events('graceful'), /ShuttingDown: Signaled Graceful Shutdown/);
  assert.match(events('graceful'), /Stopped: The VirtualMachineInstance was shut down/);
});

test('a guest powering itself off: Always starts it again, RerunOnFailure leaves it stopped', async () => {
  for (const [runStrategy, restarts] of [
    ['Always', true],
    ['RerunOnFailure', false],
  ] as const) {
    const name = `poweroff-${runStrategy.toLowerCase()}`;
    const vm = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name, namespace: NS },
      spec: { runStrategy, template: { metadata: {}, spec: guest('x', '#!/bin/sh\nsleep 3\necho powering off\npoweroff -f').spec } },
    };
    kubectl(['create', '-f', '-'], JSON.stringify(vm));
    const first = await eventually(`${name} Running`, 120, () => (phase(name) === 'Running' ? get('vmi', name).metadata.uid : undefined));
    if (restarts) {
      await eventually('a new VMI after the power-off', 180, () => {
        const v = get('vmi', name);
        return v && v.metadata.uid !== first && v.status?.phase === 'Running';
      });
    } else {
      await eventually('the VM to be Stopped', 180, () => get('vm', name)?.status?.printableStatus === 'Stopped');
      await new Promise((r) => setTimeout(r, 5000));
      assert.equal(get('vmi', name), undefined, 'no new VMI');
      assert.equal(get('vm', name).status.printableStatus, 'Stopped');
    }
    kubectl(['delete', 'vm', name, '-n', NS, '--wait=true', '--timeout=120s']);
  }
});

test('killing virt-handler leaves the guest running; its status catches up when it returns', async () => {
  kubectl(['create', '-f', '-'], JSON.stringify(guest('steady', '#!/bin/sh\necho up')));
  await eventually('steady Running', 120, () => phase('steady') === 'Running');
  await eventually('the guest to be up', 90, () => consoleLog('steady').includes('kubevirt-ts test guest ready'));
  const pod = launcherPod('steady');
  kubectl(['delete', 'pod', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler', '--grace-period=0', '--force', '--wait=true']);
  await virtHandlerReady(60);

  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(phase('steady'), 'Running');
  assert.equal(launcherPod('steady'), pod);
  assert.equal(consoleLog('steady').match(/kubevirt-ts test guest: kernel/g)?.length, 1, 'the guest did not boot again');

  // With no virt-handler on the node, a crash cannot be reported ...
  kubectl(['scale', 'deployment', 'virt-operator', '-n', 'kubevirt', '--replicas=0']);
  try {
    kubectl([
      'patch',
      'daemonset',
      'virt-handler',
      '-n',
      'kubevirt',
      '--type',
      'merge',
      '-p',
      '{"spec":{"template":{"spec":{"nodeSelector":{"kubevirt-ts.io/no-such-node":"x"}}}}}',
    ]);
    await eventually(
      'virt-handler to be gone',
      60,
      () => kubectl(['get', 'pods', '-n', 'kubevirt', '-l', 'kubevirt.io=virt-handler', '-o', 'name']).trim() === '',
    );
    killQemu('steady');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(phase('steady'), 'Running', 'nobody has seen the crash yet');
  } finally {
    // ... and once virt-handler is back, it is.
    kubectl([
      'patch',
      'daemonset',
      'virt-handler',
      '-n',
      'kubevirt',
      '--type',
      'json',
      '-p',
      '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]',
    ]);
    kubectl(['scale', 'deployment', 'virt-operator', '-n', 'kubevirt', '--replicas=1']);
  }
  await eventually('steady Failed', 120, () => phase('steady') === 'Failed');
  kubectl(['delete', 'vmi', 'steady', '-n', NS, '--wait=true', '--timeout=120s']);
});

test('a containerDisk whose disk is a symlink to a host path is refused, naming the reason; no host file is read', async () => {
  // An image whose only disk is a symbolic link to a host file.
  const image = 'registry:5000/kubevirt-ts/evil-container-disk:devel';
  kubectl(
    ['create', '-f', '-'],
    JSON.stringify(guest('evil-disk', '#!/bin/sh\necho up', (spec) => (spec.volumes[0].containerDisk.image = image))),
  );
  const condition = await eventually('the sync to be refused', 120, () =>
    get('vmi', 'evil-disk')?.status?.conditions?.find((c: { type: string }) => c.type === 'Synchronized'),
  );
  assert.equal(condition.status, 'False');
  assert.match(condition.message, /volumecontainerdisk: \/disk\/disk\.qcow2 is a symbolic link; refusing to follow it/);
  assert.equal(phase('evil-disk'), 'Scheduled');
  assert.match(events('evil-disk'), /SyncFailed: .*symbolic link/);
  kubectl(['delete', 'vmi', 'evil-disk', '-n', NS, '--wait=true', '--timeout=120s']);
});

test('a PVC whose disk.img is a symlink is refused, naming the reason; the target is not touched', async () => {
  const hostFile = '/var/lib/kvts-e2e-host-secret';
  kubectl(
    ['create', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${NS}-evil` },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        hostPath: { path: '/var/lib/kvts-e2e-evil-pv', type: 'DirectoryOrCreate' },
        storageClassName: 'manual',
        claimRef: { namespace: NS, name: 'evil' },
      },
    }),
  );
  kubectl(
    ['create', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'evil', namespace: NS },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        storageClassName: 'manual',
        volumeName: `${NS}-evil`,
      },
    }),
  );
  // What a tenant with access to the claim can plant there.
  kubectl(
    ['create', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'plant', namespace: NS },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'plant',
            image: SERVERS,
            command: [
              'node',
              '-e',
              `require('fs').rmSync('/pvc/disk.img', { force: true }); require('fs').symlinkSync(${JSON.stringify(hostFile)}, '/pvc/disk.img')`,
            ],
            volumeMounts: [{ name: 'pvc', mountPath: '/pvc' }],
          },
        ],
        volumes: [{ name: 'pvc', persistentVolumeClaim: { claimName: 'evil' } }],
      },
    }),
  );
  await eventually('the link to be planted', 60, () => get('pod', 'plant')?.status?.phase === 'Succeeded');
  kubectl(['delete', 'pod', 'plant', '-n', NS]);
  kubectl(
    ['create', '-f', '-'],
    JSON.stringify(
      guest('evil-pvc', '#!/bin/sh\necho up', (spec) => {
        spec.domain.devices.disks.push({ name: 'data', disk: { bus: 'virtio' } });
        spec.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: 'evil' } });
      }),
    ),
  );
  const condition = await eventually('the sync to be refused', 120, () =>
    get('vmi', 'evil-pvc')?.status?.conditions?.find((c: { type: string }) => c.type === 'Synchronized'),
  );
  assert.match(
    condition.message,
    /volume data: \/var\/run\/kubevirt-private\/vmi-disks\/data\/disk\.img is a symbolic link; refusing to follow it/,
  );
  assert.equal(existsSync(hostFile), false, 'nothing was created at the link target');
  kubectl(['delete', 'vmi', 'evil-pvc', '-n', NS, '--wait=true', '--timeout=120s']);
  kubectl(['delete', 'pvc', 'evil', '-n', NS, '--wait=false']);
  kubectl(['delete', 'pv', `${NS}-evil`, '--wait=false']);
});
