// The web console's VMI figures, pure parts: the fixed PromQL templates (only
// a checked namespace and name go in), Prometheus' answers read, virt-handler's
// /metrics text read into per-VMI readings, the hour of history the console
// keeps without Prometheus (rates, counter resets, ageing), the metrics paths,
// and the chart geometry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rangePoints, readingsOf, usageQueries, valuesByName, VmiHistory, vmiQueries } from '../../src/console/metrics-sources.ts';
import { namespaceUsagePath, parseMetricsPath, vmiMetricsPath } from '../../src/console/vmi-metrics.ts';
import { chartLines, formatBytes, formatCores } from '../../src/console/web/plot.ts';
import { prometheusUrlOf } from '../../src/operator/monitoring.ts';

test("a VMI's queries select its namespace and name only; the namespace's select the namespace and group by VMI", () => {
  const queries = vmiQueries('team-a', 'vm-1');
  assert.equal(queries.cpu, 'sum by (name) (rate(kubevirt_vmi_cpu_usage_seconds_total{namespace="team-a",name="vm-1"}[1m]))');
  assert.equal(
    queries.memory,
    '(sum by (name) (kubevirt_vmi_memory_available_bytes{namespace="team-a",name="vm-1"} - kubevirt_vmi_memory_usable_bytes{namespace="team-a",name="vm-1"}) > 0) or sum by (name) (kubevirt_vmi_memory_resident_bytes{namespace="team-a",name="vm-1"})',
  );
  assert.match(
    queries.networkReceive,
    /^sum by \(name\) \(rate\(kubevirt_vmi_network_receive_bytes_total\{namespace="team-a",name="vm-1"\}\[1m\]\)\)$/,
  );
  assert.match(queries.diskWrite, /kubevirt_vmi_storage_write_traffic_bytes_total\{namespace="team-a",name="vm-1"\}/);
  for (const query of Object.values(queries)) assert.doesNotMatch(query, /namespace="(?!team-a")/);
  const usage = usageQueries('team-a');
  assert.equal(usage.cpu, 'sum by (name) (rate(kubevirt_vmi_cpu_usage_seconds_total{namespace="team-a"}[1m]))');
  assert.match(usage.memory, /^\(sum by \(name\) \(kubevirt_vmi_memory_available_bytes\{namespace="team-a"\}/);
});

test('a namespace or name that is not a DNS name never reaches a query', () => {
  assert.throws(() => vmiQueries('a"} or up{x="', 'vm'), /^Error: namespace: .* is not a DNS name$/);
  assert.throws(() => vmiQueries('team-a', 'Vm'), /^Error: name: "Vm" is not a DNS name$/);
  assert.throws(() => usageQueries(''), /namespace/);
});

test('the metrics paths: a namespace, or a VMI of it; anything else is not one', () => {
  assert.deepEqual(parseMetricsPath(namespaceUsagePath('team-a')), { namespace: 'team-a' });
  assert.deepEqual(parseMetricsPath(vmiMetricsPath('team-a', 'vm-1').split('?')[0]), { namespace: 'team-a', name: 'vm-1' });
  for (const path of [
    '/console/v1/namespaces/team-a/virtualmachineinstances/vm-1',
    '/console/v1/namespaces/A/usage',
    '/console/v1/namespaces/a%22/usage',
    '/console/v1/namespaces/../usage',
    '/api/v1/namespaces/a/usage',
  ])
    assert.equal(parseMetricsPath(path), undefined, path);
});

test("Prometheus' answers: a range's points, an instant query's values by VMI, its error as an error", () => {
  const range = {
    status: 'success',
    data: {
      resultType: 'matrix',
      result: [
        {
          metric: { name: 'vm-1' },
          values: [
            [100, '0.5'],
            [115, 'NaN'],
            [130, '0.25'],
          ] as [number, string][],
        },
      ],
    },
  };
  assert.deepEqual(rangePoints(range), [
    [100, 0.5],
    [130, 0.25],
  ]);
  assert.deepEqual(rangePoints({ status: 'success', data: { result: [] } }), []);
  const instant = {
    status: 'success',
    data: {
      result: [
        { metric: { name: 'vm-1' }, value: [100, '0.02'] as [number, string] },
        { metric: { name: 'vm-2' }, value: [100, '3'] as [number, string] },
      ],
    },
  };
  assert.deepEqual(
    [...valuesByName(instant)],
    [
      ['vm-1', 0.02],
      ['vm-2', 3],
    ],
  );
  assert.throws(() => rangePoints({ status: 'error', error: 'parse error' }), /^Error: Prometheus: parse error$/);
});

const exposition = (cpu: number, rx: number, extra = '') => `# HELP kubevirt_vmi_cpu_usage_seconds_total CPU
# TYPE kubevirt_vmi_cpu_usage_seconds_total counter
kubevirt_vmi_cpu_usage_seconds_total{node="n1",namespace="team-a",name="vm-1"} ${cpu}
kubevirt_vmi_memory_resident_bytes{node="n1",namespace="team-a",name="vm-1"} 104857600
kubevirt_vmi_network_receive_bytes_total{node="n1",namespace="team-a",name="vm-1",interface="default"} ${rx}
kubevirt_vmi_network_receive_bytes_total{node="n1",namespace="team-a",name="vm-1",interface="second"} 100
kubevirt_vmi_memory_available_bytes{node="n1",namespace="team-b",name="vm-2",kubernetes_vmi_label_x="a\\"b"} 1000
kubevirt_vmi_memory_usable_bytes{node="n1",namespace="team-b",name="vm-2"} 400
kubevirt_vmi_vcpu_seconds_total{node="n1",namespace="team-a",name="vm-1",id="0",state="running"} 5
process_cpu_seconds_total 3
${extra}`;

test("virt-handler's /metrics read into each VMI's readings: only the series graphed, summed over interfaces and drives", () => {
  const readings = readingsOf(exposition(12.5, 900));
  assert.deepEqual(Object.fromEntries(readings), {
    'team-a/vm-1': { cpu: 12.5, resident: 104857600, networkReceive: 1000 },
    'team-b/vm-2': { available: 1000, usable: 400 },
  });
});

test('the history: counters become rates between readings, memory the guest use else the resident size; a reset gives no rate', () => {
  const history = new VmiHistory(3600);
  history.record(1000, readingsOf(exposition(10, 100)));
  history.record(1015, readingsOf(exposition(13, 1600)));
  // QEMU started again: its counters are back near 0.
  history.record(1030, readingsOf(exposition(0.5, 200)));
  history.record(1045, readingsOf(exposition(2, 500)));
  const { source, series } = history.series('team-a', 'vm-1', 60, 1045);
  assert.equal(source, 'console');
  assert.deepEqual(series.cpu, [
    [1015, 0.2],
    [1045, 0.1],
  ]);
  assert.deepEqual(series.networkReceive, [
    [1015, 100],
    [1045, 20],
  ]);
  assert.equal(series.memory.length, 4);
  assert.deepEqual(series.memory[0], [1000, 104857600]);
  assert.deepEqual(series.diskRead, []);
  assert.deepEqual(history.series('team-b', 'vm-2', 60, 1045).series.memory.at(-1), [1045, 600]);
  assert.deepEqual(history.usage('team-a'), { source: 'console', usage: { 'vm-1': { cpu: 0.1, memory: 104857600 } } });
  assert.deepEqual(Object.keys(history.usage('team-b').usage), ['vm-2']);
  // Only the window asked for.
  assert.equal(history.series('team-a', 'vm-1', 1, 1045).series.memory.length, 4);
  assert.equal(history.series('team-a', 'vm-1', 1, 1100).series.memory.length, 1);
  // A guest reporting all of its memory available (its balloon driver just loaded): QEMU's resident size, not 0.
  history.record(
    1060,
    readingsOf(
      exposition(
        3,
        600,
        'kubevirt_vmi_memory_available_bytes{namespace="team-a",name="vm-1"} 2000\nkubevirt_vmi_memory_usable_bytes{namespace="team-a",name="vm-1"} 2000',
      ),
    ),
  );
  assert.deepEqual(history.series('team-a', 'vm-1', 60, 1060).series.memory.at(-1), [1060, 104857600]);
});

test('the history keeps an hour: older readings go, and a VMI with none left is forgotten', () => {
  const history = new VmiHistory(3600);
  history.record(0, readingsOf(exposition(1, 1)));
  for (let at = 15; at <= 3600; at += 15) history.record(at, readingsOf(exposition(at, at)));
  assert.equal(history.series('team-a', 'vm-1', 60, 3600).series.memory.length, 241);
  history.record(3615, new Map());
  assert.equal(history.series('team-a', 'vm-1', 60, 3615).series.memory.length, 240);
  history.record(7300, new Map());
  assert.deepEqual(history.usage('team-a').usage, {});
});

test('the chart: points scaled to the window and the largest value; an empty series draws nothing', () => {
  const { max, lines } = chartLines(
    [
      [
        [100, 0],
        [160, 2],
        [40, 9],
      ],
      [],
    ],
    100,
    160,
  );
  assert.equal(max, 9);
  assert.equal(lines[0], `0.0,120.0 420.0,${(120 - (2 / 9) * 120).toFixed(1)}`);
  assert.equal(lines[1], '');
  assert.equal(chartLines([[[100, 0]]], 0, 200).max, 1);
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(100 * 1024 * 1024), '100.0 MiB');
  assert.equal(formatBytes(12), '12 B');
  assert.equal(formatCores(0.0123), '12m');
  assert.equal(formatCores(1.5), '1.50');
});

test("virt-operator's console Prometheus address: the Service's web port, else 9090, else none", () => {
  const service = (ports: { name?: string; port: number }[]) => ({
    metadata: { name: 'prometheus', namespace: 'monitoring' },
    spec: { ports },
  });
  assert.equal(prometheusUrlOf(service([{ name: 'web', port: 9090 }])), 'http://prometheus.monitoring.svc:9090');
  assert.equal(prometheusUrlOf(service([{ name: 'reloader', port: 8080 }, { port: 9090 }])), 'http://prometheus.monitoring.svc:9090');
  assert.equal(prometheusUrlOf(service([{ name: 'https', port: 9091 }])), '');
});
