// virt-handler's metrics wiring against a seeded VMI informer and stand-in
// launchers: what a scrape asks the launchers, what it serves, and that a VMI
// that does not answer in time, or is gone, has no series.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import type { DomainStats, LauncherCommand } from '../../src/contract/launcher-protocol.ts';
import { HandlerMetrics, type OpenStream } from '../../src/handler/metrics-collector.ts';
import { createLogger } from '../../src/lib/log.ts';
import { componentMetrics } from '../../src/lib/metrics.ts';
import { observeRequest } from '../../src/lib/raw-request.ts';
import { SeededInformer } from '../helpers/seeded-informer.ts';

const NODE = 'node01';
const log = createLogger('test', {}, () => undefined);

const runningVmi = (name: string, node = NODE): VirtualMachineInstance =>
  ({
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { 'kubevirt.io/domain': name } },
    spec: { domain: { devices: {} } },
    status: { phase: 'Running', nodeName: node },
  }) as VirtualMachineInstance;

const stats: DomainStats = {
  cpu: { userSeconds: 1, systemSeconds: 1 },
  vcpus: [{ id: 0, state: 'running', seconds: 1 }],
  memory: { domainBytes: 128 * 1024 * 1024, residentBytes: 1 },
  blocks: [
    { drive: 'disk0', readBytes: 1, writeBytes: 1, readOps: 1, writeOps: 1, flushOps: 1, readSeconds: 0, writeSeconds: 0, flushSeconds: 0 },
  ],
  networks: [
    { interface: 'default', rxBytes: 1, rxPackets: 1, rxErrors: 0, rxDropped: 0, txBytes: 1, txPackets: 1, txErrors: 0, txDropped: 0 },
  ],
};

/** A launcher answering `stats` after `delayMs` (never, for Infinity), counting the requests. */
class StandInLauncher {
  requests = 0;
  delayMs: number;
  constructor(delayMs = 0) {
    this.delayMs = delayMs;
  }
  request<T>(command: LauncherCommand): Promise<T> {
    assert.equal(command.command, 'stats');
    this.requests++;
    if (this.delayMs === Infinity) return new Promise(() => undefined);
    return new Promise((resolve) => setTimeout(() => resolve(stats as T), this.delayMs));
  }
}

function setup(launchers: Record<string, StandInLauncher>, vmis: VirtualMachineInstance[], streams: OpenStream[] = []) {
  const informer = new SeededInformer<VirtualMachineInstance>(vmis);
  const metrics = new HandlerMetrics({
    node: NODE,
    vmis: informer,
    launcherOf: (namespace, name) => {
      const launcher = launchers[`${namespace}/${name}`];
      if (!launcher) throw new Error('no launcher');
      return { connection: launcher };
    },
    openStreams: () => streams,
    log,
    timeoutMs: 200,
    base: componentMetrics('virt-handler', { observeRequests: false }),
  });
  return { informer, metrics };
}

const seriesOf = (text: string, name: string) =>
  text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));

test('a scrape serves every VMI on this node that is Running, with node, namespace, name and its labels', async () => {
  const { metrics } = setup({ 'ns/a': new StandInLauncher(), 'ns/b': new StandInLauncher() }, [
    runningVmi('a'),
    runningVmi('b'),
    runningVmi('elsewhere', 'node02'),
    { ...runningVmi('pending'), status: { phase: 'Scheduled', nodeName: NODE } } as VirtualMachineInstance,
  ]);
  const text = await metrics.registry.metrics();
  const cpu = seriesOf(text, 'kubevirt_vmi_cpu_usage_seconds_total');
  assert.equal(cpu.length, 2);
  assert.match(cpu[0], /kubernetes_vmi_label_kubevirt_io_domain="a"/);
  assert.match(cpu[0], /node="node01"/);
  assert.match(cpu[0], /namespace="ns"/);
  assert.match(cpu[0], /name="a"/);
  assert.match(text, /# TYPE kubevirt_vmi_cpu_usage_seconds_total counter/);
  assert.match(text, /kubevirt_vmi_vcpu_seconds_total\{[^}]*id="0"[^}]*state="running"/);
  assert.match(text, /kubevirt_vmi_network_receive_bytes_total\{[^}]*interface="default"/);
  assert.match(text, /kubevirt_vmi_storage_read_traffic_bytes_total\{[^}]*drive="disk0"/);
  assert.match(text, /kubevirt_vmi_memory_domain_bytes\{[^}]*\} 134217728/);
  assert.match(text, /kubevirt_virt_handler_ready_status 0/);
  assert.match(text, /kubevirt_info\{goversion="node[^"]+",kubeversion="v[^"]+"\} 1/);
});

test('one stats request per VMI per scrape, shared by every family; concurrent scrapes share one in flight', async () => {
  const launcher = new StandInLauncher(50);
  const { metrics } = setup({ 'ns/a': launcher }, [runningVmi('a')]);
  await Promise.all([metrics.registry.metrics(), metrics.registry.metrics()]);
  assert.equal(launcher.requests, 1);
  await metrics.registry.metrics();
  assert.equal(launcher.requests, 2);
});

test('a VMI whose launcher does not answer in time is left out of that scrape, and its request is not repeated while unanswered', async () => {
  const slow = new StandInLauncher(Infinity);
  const { metrics } = setup({ 'ns/a': new StandInLauncher(), 'ns/slow': slow }, [runningVmi('a'), runningVmi('slow')]);
  const started = Date.now();
  const text = await metrics.registry.metrics();
  assert.ok(Date.now() - started < 1000, 'the scrape is bounded');
  const names = seriesOf(text, 'kubevirt_vmi_cpu_usage_seconds_total').map((l) => /name="([^"]+)"/.exec(l)?.[1]);
  assert.deepEqual(names, ['a']);
  await metrics.registry.metrics();
  assert.equal(slow.requests, 1, 'at most one collection in flight per VMI');
});

test('a VMI that answered before but is late now is reported with its last answer, until it no longer runs here', async () => {
  const launcher = new StandInLauncher();
  const { informer, metrics } = setup({ 'ns/a': launcher }, [runningVmi('a')]);
  const resident = async () => seriesOf(await metrics.registry.metrics(), 'kubevirt_vmi_memory_resident_bytes').length;
  assert.equal(await resident(), 1);
  launcher.delayMs = Infinity;
  assert.equal(await resident(), 1, 'its last answer');
  informer.remove(runningVmi('a'));
  assert.equal(await resident(), 0);
});

test('a VMI that went away has no series at the next scrape', async () => {
  const { informer, metrics } = setup({ 'ns/a': new StandInLauncher(), 'ns/b': new StandInLauncher() }, [runningVmi('a'), runningVmi('b')]);
  assert.equal(seriesOf(await metrics.registry.metrics(), 'kubevirt_vmi_memory_resident_bytes').length, 2);
  informer.remove(runningVmi('b'));
  const text = await metrics.registry.metrics();
  assert.equal(seriesOf(text, 'kubevirt_vmi_memory_resident_bytes').length, 1);
  assert.doesNotMatch(text, /name="b"/);
});

test('console and VNC connections are counted per VMI', async () => {
  const { metrics } = setup(
    {},
    [],
    [
      { kind: 'console', namespace: 'ns', name: 'a' },
      { kind: 'vnc', namespace: 'ns', name: 'a' },
    ],
  );
  const text = await metrics.registry.metrics();
  assert.match(text, /kubevirt_console_active_connections\{namespace="ns",vmi="a"\} 1/);
  assert.match(text, /kubevirt_vnc_active_connections\{namespace="ns",vmi="a"\} 1/);
});

test('API requests are counted by code, method, host, resource and verb, with their latency by verb and URL template', async () => {
  const component = componentMetrics('virt-controller');
  component.setLeading(true);
  component.setReady(true);
  observeRequest({
    method: 'GET',
    url: 'https://10.0.0.1:6443/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1',
    status: 200,
    seconds: 0.01,
  });
  observeRequest({ method: 'GET', url: 'https://10.0.0.1:6443/api/v1/pods?labelSelector=x&watch=true', status: 200, seconds: 0.02 });
  observeRequest({ method: 'PUT', url: 'https://10.0.0.1:6443/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1' });
  const text = await component.registry.metrics();
  assert.match(
    text,
    /kubevirt_rest_client_requests_total\{code="200",method="GET",host="10.0.0.1:6443",resource="virtualmachineinstances",verb="GET"\} 1/,
  );
  assert.match(text, /kubevirt_rest_client_requests_total\{code="200",method="GET",host="10.0.0.1:6443",resource="pods",verb="WATCH"\} 1/);
  assert.match(text, /kubevirt_rest_client_requests_total\{code="<error>",method="PUT",[^}]*verb="UPDATE"\} 1/);
  assert.match(
    text,
    /kubevirt_rest_client_request_latency_seconds_count\{verb="GET",url="https:\/\/10.0.0.1:6443\/apis\/kubevirt.io\/v1\/namespaces\/\{namespace\}\/virtualmachineinstances\/\{name\}"\} 1/,
  );
  assert.match(text, /kubevirt_virt_controller_leading_status 1/);
  assert.match(text, /kubevirt_virt_controller_ready_status 1/);
});
