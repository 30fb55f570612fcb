// Autoscaling on the cluster (issue 18): metrics-server (hack/cluster/metrics-server.ts) serves
// the resource metrics API, and a HorizontalPodAutoscaler (autoscaling/v2) on a
// VirtualMachineInstanceReplicaSet scales it up when its guest burns CPU. The HPA reads the
// replica set's scale subresource (its status.labelSelector selects the launcher pods, which carry
// the VMI's labels) and the CPU use of those pods against their requests. Under TCG a guest's busy
// loop is a busy QEMU on the host, so the load is real.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually, apply } from './kube.ts';
import { example } from '../helpers/fixtures.ts';

const NS = 'kvts-autoscaling';
const RS = 'vmi-replicaset-cirros';
type Obj = { metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, any>; status?: Record<string, any> };
const get = (kind: string, name: string): Obj => JSON.parse(kubectl(['get', kind, name, '-n', NS, '-o', 'json']));

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test('metrics-server serves the resource metrics API: kubectl top node and kubectl top pod -A', async () => {
  const nodes = kubectl(['top', 'node', '--no-headers']);
  assert.match(nodes, /^node01\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%/m);
  // The components' pods are measured too, once metrics-server has scraped them (a pod just (re)started has none yet).
  await eventually('kubectl top pod -A to list metrics-server and virt-handler', 90, () => {
    const r = kubectlResult(['top', 'pod', '-A', '--no-headers']);
    return (
      r.status === 0 &&
      /^kube-system\s+metrics-server-\S+\s+\d+m\s+\d+Mi/m.test(r.stdout) &&
      /^kubevirt\s+virt-handler-\S+\s+\d+m/m.test(r.stdout)
    );
  });
});

test('an HPA on a VMIRS scales it up when its guest burns CPU', async (t) => {
  // upstream's example, with one replica and a user-data script: the test guest runs it at boot,
  // and it leaves a busy loop behind.
  const rs = example<Obj>('vmi-replicaset-cirros.yaml');
  rs.spec.replicas = 1;
  const guest = rs.spec.template.spec;
  guest.domain.devices.disks.push({ name: 'cloudinit', disk: { bus: 'virtio' } });
  guest.volumes.push({ name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\n(while :; do :; done) &\n' } });
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(rs));
  apply({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: RS, namespace: NS },
    spec: {
      scaleTargetRef: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceReplicaSet', name: RS },
      minReplicas: 1,
      maxReplicas: 2,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    },
  });
  const pod = await eventually('the launcher pod of the first VMI to run', 120, () => {
    const pods: Obj[] = JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `kubevirt.io/vmReplicaSet=${RS}`, '-o', 'json'])).items;
    return pods.length === 1 && pods[0].status?.phase === 'Running' ? pods[0] : undefined;
  });
  // What makes the replica set's selector select it, and a Utilization target computable.
  assert.equal(pod.metadata.labels?.['kubevirt.io/vmReplicaSet'], RS);
  const compute = pod.spec.containers.find((c: { name: string }) => c.name === 'compute');
  assert.equal(compute.resources.requests.cpu, '100m', 'one vCPU asks for 1/10 of a CPU, as upstream (cpuAllocationRatio 10)');

  const hpa = await eventually('the HPA to scale the replica set to 2', 150, () => {
    const h = get('hpa', RS);
    return h.status?.desiredReplicas === 2 ? h : undefined;
  });
  const cpu = hpa.status?.currentMetrics?.find((m: { type: string }) => m.type === 'Resource')?.resource?.current;
  // An idle guest's launcher uses ~15% of its request here (15m of 106m), and the HPA keeps it at one.
  assert.ok(cpu.averageUtilization > 50, `a busy guest is well above the target: ${JSON.stringify(cpu)}`);
  t.diagnostic(`CPU of the busy replica: ${JSON.stringify(cpu)}`);
  const scaled = hpa.status?.conditions?.find((c: { type: string }) => c.type === 'AbleToScale');
  assert.equal(scaled?.status, 'True', JSON.stringify(scaled));
  await eventually('the replica set to make its second VMI', 60, () => {
    const rs = get('vmirs', RS);
    return rs.spec.replicas === 2 && rs.status?.replicas === 2;
  });
  const vmis = kubectl(['get', 'vmi', '-n', NS, '-l', `kubevirt.io/vmReplicaSet=${RS}`, '-o', 'name'])
    .trim()
    .split('\n');
  assert.equal(vmis.length, 2, vmis.join(', '));
});
