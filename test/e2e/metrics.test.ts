// Metrics in the cluster: virt-handler's /metrics (HTTPS on its metrics port)
// serves a running VMI's figures with upstream's names and its node, namespace,
// name and kubernetes_vmi_label_* labels, and drops them once the VMI is gone;
// the leading virt-controller serves kubevirt_vmi_info for it; every component
// serves kubevirt_info; the kubevirt-prometheus-metrics Service selects them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually } from './kube.ts';

const NS = 'kvts-metrics';
const KV_NS = 'kubevirt';
const VMI = 'metrics-vmi';

/** GET https://127.0.0.1:8443/metrics from inside a component pod, with the image's Node (the certificate is not checked, as Prometheus' scrape config for it does not). */
function scrape(pod: string): string | undefined {
  const script = [
    "require('node:https').get(process.argv[1], { rejectUnauthorized: false, timeout: 10000 }, (res) => {",
    "  let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d));",
    "  res.on('end', () => { if (res.statusCode !== 200) { console.error(`HTTP ${res.statusCode}`); process.exit(1); } process.stdout.write(body); });",
    "}).on('error', (e) => { console.error(String(e)); process.exit(1); });",
  ].join('\n');
  const r = kubectlResult(['exec', '-n', KV_NS, pod, '--', 'node', '-e', script, 'https://127.0.0.1:8443/metrics']);
  return r.status === 0 ? r.stdout : undefined;
}

const podsOf = (component: string) =>
  kubectl([
    'get',
    'pods',
    '-n',
    KV_NS,
    '-l',
    `kubevirt.io=${component}`,
    '--field-selector',
    'status.phase=Running',
    '-o',
    'jsonpath={.items[*].metadata.name}',
  ])
    .split(/\s+/)
    .filter(Boolean);

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const m of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

const ofVmi = (series: Series[], name: string) =>
  series.filter((s) => s.labels.namespace === NS && s.labels.name === VMI && s.name === name);

/** The virt-handler pod on the VMI's node. */
function handlerPodOn(node: string): string {
  const pods = JSON.parse(kubectl(['get', 'pods', '-n', KV_NS, '-l', 'kubevirt.io=virt-handler', '-o', 'json'])).items as {
    metadata: { name: string };
    spec: { nodeName: string };
  }[];
  const pod = pods.find((p) => p.spec.nodeName === node);
  assert.ok(pod, `no virt-handler on ${node}`);
  return pod.metadata.name;
}

/** Every family the brief names, with the labels beyond node/namespace/name each must carry. */
const HANDLER_FAMILIES: [string, string[]][] = [
  ['kubevirt_vmi_cpu_usage_seconds_total', []],
  ['kubevirt_vmi_vcpu_seconds_total', ['id', 'state']],
  ['kubevirt_vmi_memory_domain_bytes', []],
  ['kubevirt_vmi_memory_resident_bytes', []],
  ['kubevirt_vmi_network_receive_bytes_total', ['interface']],
  ['kubevirt_vmi_network_transmit_bytes_total', ['interface']],
  ['kubevirt_vmi_network_receive_packets_total', ['interface']],
  ['kubevirt_vmi_network_transmit_packets_total', ['interface']],
  ['kubevirt_vmi_network_receive_errors_total', ['interface']],
  ['kubevirt_vmi_network_transmit_errors_total', ['interface']],
  ['kubevirt_vmi_network_receive_packets_dropped_total', ['interface']],
  ['kubevirt_vmi_network_transmit_packets_dropped_total', ['interface']],
  ['kubevirt_vmi_storage_read_traffic_bytes_total', ['drive']],
  ['kubevirt_vmi_storage_write_traffic_bytes_total', ['drive']],
  ['kubevirt_vmi_storage_iops_read_total', ['drive']],
  ['kubevirt_vmi_storage_iops_write_total', ['drive']],
  ['kubevirt_vmi_storage_read_times_seconds_total', ['drive']],
  ['kubevirt_vmi_storage_write_times_seconds_total', ['drive']],
  ['kubevirt_vmi_storage_flush_times_seconds_total', ['drive']],
];
/** From the balloon's guest statistics: there once the guest's balloon driver has reported (every 10 s by default). */
const BALLOON_FAMILIES = ['kubevirt_vmi_memory_available_bytes', 'kubevirt_vmi_memory_usable_bytes', 'kubevirt_vmi_memory_unused_bytes'];
/** From the guest agent: the filesystems it sizes (the guest mounts one from a disk), read every 10 s. */
const FILESYSTEM_FAMILIES: [string, string[]][] = [
  ['kubevirt_vmi_filesystem_capacity_bytes', ['disk_name', 'mount_point', 'file_system_type']],
  ['kubevirt_vmi_filesystem_used_bytes', ['disk_name', 'mount_point', 'file_system_type']],
];
/**
 * From the guest agent: the test guest's qemu-ga (Debian 12's 7.2) lacks guest-get-load (10.0 and
 * later), so these come from its /proc/loadavg, read through the agent's file commands.
 */
const LOAD_FAMILIES: [string, string[]][] = [
  ['kubevirt_vmi_guest_load_1m', []],
  ['kubevirt_vmi_guest_load_5m', []],
  ['kubevirt_vmi_guest_load_15m', []],
];

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
});
after(() => deleteNamespace(NS));

test('the kubevirt-prometheus-metrics Service selects the component pods on their metrics port', () => {
  const svc = JSON.parse(kubectl(['get', 'service', 'kubevirt-prometheus-metrics', '-n', KV_NS, '-o', 'json']));
  assert.deepEqual(svc.spec.selector, { 'prometheus.kubevirt.io': 'true' });
  assert.equal(svc.spec.ports[0].name, 'metrics');
  assert.equal(svc.spec.ports[0].port, 443);
  assert.equal(svc.spec.ports[0].targetPort, 8443);
  const selected = kubectl([
    'get',
    'pods',
    '-n',
    KV_NS,
    '-l',
    'prometheus.kubevirt.io=true',
    '-o',
    'jsonpath={.items[*].metadata.labels.kubevirt\\.io}',
  ]);
  for (const component of ['virt-api', 'virt-controller', 'virt-handler', 'virt-operator'])
    assert.match(selected, new RegExp(`\\b${component}\\b`));
  assert.doesNotMatch(selected, /cdi-controller/, 'its 8443 is the upload proxy, which serves no /metrics');
});

test('every component serves kubevirt_info and its status gauges over TLS on 8443', async () => {
  for (const [component, status] of [
    ['virt-api', 'kubevirt_virt_api_ready_status'],
    ['virt-controller', 'kubevirt_virt_controller_ready_status'],
    ['virt-handler', 'kubevirt_virt_handler_ready_status'],
    ['virt-operator', 'kubevirt_virt_operator_leading_status'],
  ]) {
    const text = await eventually(`${component}'s metrics`, 60, () => {
      const pod = podsOf(component)[0];
      return pod ? scrape(pod) : undefined;
    });
    const series = parse(text);
    const info = series.find((s) => s.name === 'kubevirt_info');
    assert.ok(info?.labels.goversion && info.labels.kubeversion, `${component}: kubevirt_info ${JSON.stringify(info)}`);
    assert.ok(
      series.some((s) => s.name === status),
      `${component}: no ${status}`,
    );
    assert.ok(
      series.some((s) => s.name === 'kubevirt_rest_client_requests_total' && s.labels.code && s.labels.verb),
      `${component}: no kubevirt_rest_client_requests_total`,
    );
  }
});

let node = '';
test("virt-handler serves a running VMI's figures with its node, namespace, name and labels", async () => {
  kubectl(
    ['create', '-n', NS, '-f', '-'],
    JSON.stringify({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: VMI, labels: { 'app.example.com/tier': 'web' } },
      spec: {
        domain: {
          devices: {
            disks: [
              { name: 'containerdisk', disk: { bus: 'virtio' } },
              { name: 'cloudinit', disk: { bus: 'virtio' } },
            ],
            interfaces: [{ name: 'default', masquerade: {} }],
          },
          resources: { requests: { memory: '128Mi' } },
        },
        networks: [{ name: 'default', pod: {} }],
        terminationGracePeriodSeconds: 0,
        volumes: [
          { name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel' } },
          // A filesystem on a disk, which the guest agent sizes (the guest's root is in memory).
          { name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\nmkdir -p /mnt/boot\nmount -t vfat -o ro /dev/vda /mnt/boot\n' } },
        ],
      },
    }),
  );
  node = await eventually('the VMI Running', 180, () => {
    const vmi = JSON.parse(kubectl(['get', 'vmi', VMI, '-n', NS, '-o', 'json']));
    return vmi.status?.phase === 'Running' ? (vmi.status.nodeName as string) : undefined;
  });
  const handler = handlerPodOn(node);
  const REQUIRED = [...HANDLER_FAMILIES, ...FILESYSTEM_FAMILIES, ...LOAD_FAMILIES].map(([n]) => n).concat(BALLOON_FAMILIES);
  const bootFilesystem = (all: ReturnType<typeof parse>) =>
    ofVmi(all, 'kubevirt_vmi_filesystem_capacity_bytes').find((s) => s.labels.mount_point === '/mnt/boot');
  // The balloon's guest statistics and the agent's filesystems and load arrive some seconds after boot, and
  // the user-data script mounts /mnt/boot after the agent's first answer: wait for all of those.
  const series = await eventually('the VMI in virt-handler metrics', 120, () => {
    const text = scrape(handler);
    if (!text) return undefined;
    const all = parse(text);
    const complete = REQUIRED.every((n) => ofVmi(all, n).length > 0) && bootFilesystem(all) !== undefined;
    return complete ? all : undefined;
  }).catch(async (error) => {
    const all = parse(scrape(handler) ?? '');
    const missing = REQUIRED.filter((n) => ofVmi(all, n).length === 0).concat(bootFilesystem(all) ? [] : ['the /mnt/boot filesystem']);
    throw new Error(`${(error as Error).message}; missing: ${missing.join(', ')}`);
  });
  for (const [name, extra] of [...HANDLER_FAMILIES, ...LOAD_FAMILIES]) {
    for (const sample of ofVmi(series, name)) {
      assert.equal(sample.labels.node, node, name);
      assert.equal(sample.labels.kubernetes_vmi_label_app_example_com_tier, 'web', name);
      for (const label of extra) assert.ok(sample.labels[label] !== undefined, `${name} lacks ${label}`);
      assert.ok(Number.isFinite(sample.value), name);
    }
  }
  assert.ok(ofVmi(series, 'kubevirt_vmi_cpu_usage_seconds_total')[0].value > 0);
  assert.equal(ofVmi(series, 'kubevirt_vmi_memory_domain_bytes')[0].value, 128 * 1024 * 1024);
  assert.deepEqual(
    ofVmi(series, 'kubevirt_vmi_network_receive_bytes_total').map((s) => s.labels.interface),
    ['default'],
  );
  assert.ok(ofVmi(series, 'kubevirt_vmi_storage_read_traffic_bytes_total').some((s) => s.labels.drive === 'containerdisk' && s.value > 0));
  assert.ok(ofVmi(series, 'kubevirt_vmi_vcpu_seconds_total').every((s) => s.labels.state === 'running'));
  for (const [name, extra] of FILESYSTEM_FAMILIES)
    for (const sample of ofVmi(series, name))
      for (const label of extra) assert.ok(sample.labels[label] !== undefined, `${name} lacks ${label}`);
  const boot = bootFilesystem(series);
  assert.ok(boot && boot.value > 0 && boot.labels.file_system_type === 'vfat', 'the disk filesystem the guest mounted, sized');
  for (const [name] of LOAD_FAMILIES) {
    const [load, ...more] = ofVmi(series, name);
    assert.equal(more.length, 0, `one ${name} series`);
    assert.ok(load.value >= 0, `${name} is a load average: ${load.value}`);
  }
  for (const family of ['kubevirt_console_active_connections', 'kubevirt_vnc_active_connections']) {
    assert.match(scrape(handler) ?? '', new RegExp(`# TYPE ${family} gauge`));
  }
});

test('the leading virt-controller serves kubevirt_vmi_info for the VMI', async () => {
  await eventually('kubevirt_vmi_info in the leading virt-controller', 60, () => {
    for (const pod of podsOf('virt-controller')) {
      const series = parse(scrape(pod) ?? '');
      if (!series.some((s) => s.name === 'kubevirt_virt_controller_leading_status' && s.value === 1)) continue;
      const info = series.find((s) => s.name === 'kubevirt_vmi_info' && s.labels.namespace === NS && s.labels.name === VMI);
      if (!info) return undefined;
      assert.equal(info.labels.phase, 'running');
      assert.equal(info.labels.node, node);
      assert.match(info.labels.vmi_pod, /^virt-launcher-metrics-vmi-/);
      assert.ok(series.some((s) => s.name === 'kubevirt_vmi_phase_transition_time_from_creation_seconds_count'));
      assert.ok(series.some((s) => s.name === 'kubevirt_vmi_migrations_in_pending_phase' && s.value === 0));
      return true;
    }
    return undefined;
  });
});

test("once the VMI is deleted, virt-handler's next scrape has none of its series", async () => {
  kubectl(['delete', 'vmi', VMI, '-n', NS, '--wait=true', '--timeout=120s']);
  const handler = handlerPodOn(node);
  // Deleted means its launcher pod is gone too; the very next scrape after the VMI left the cache has nothing of it.
  await eventually('the VMI out of virt-handler metrics', 30, () => {
    const text = scrape(handler);
    return text !== undefined && !parse(text).some((s) => s.labels.namespace === NS && s.labels.name === VMI);
  });
});
