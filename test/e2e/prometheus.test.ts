// The local cluster's Prometheus (hack/cluster/prometheus.ts): it finds and
// scrapes every component through Kubernetes service discovery, answers
// queries of a running VMI's metrics, and has KubeVirt's rules loaded. And
// virt-operator with a Prometheus Operator in the cluster (its CRDs, minimal
// here): the ServiceMonitor, the prometheus-kubevirt-rules PrometheusRule with
// the same alerts the local Prometheus evaluates, and the monitoring account's Role.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace, eventually } from './kube.ts';
import { kubevirtAlertNames } from '../../src/operator/monitoring-rules.ts';

const NS = 'kvts-prometheus';
const KV_NS = 'kubevirt';
const VMI = 'prometheus-vmi';
const KV = ['kubevirt', 'kubevirt', '-n', KV_NS];
const CRDS = ['servicemonitors', 'prometheusrules'].map((plural) => `${plural}.monitoring.coreos.com`);

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query of the local Prometheus, through the API server's service proxy. */
function query(promql: string): Sample[] {
  const path = `/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query=${encodeURIComponent(promql)}`;
  const answer = JSON.parse(kubectl(['get', '--raw', path]));
  assert.equal(answer.status, 'success', JSON.stringify(answer));
  return answer.data.result as Sample[];
}

interface LoadedGroup {
  name: string;
  rules: { type: 'alerting' | 'recording'; name: string; health: string; lastError?: string }[];
}

function loadedRules(): LoadedGroup[] {
  const path = '/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/rules';
  return JSON.parse(kubectl(['get', '--raw', path])).data.groups as LoadedGroup[];
}

/** A minimal CRD of monitoring.coreos.com/v1 for `kind`, any content allowed (the Prometheus Operator's own are much larger). */
function monitoringCrd(kind: string, plural: string) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

const unmonitor = () => {
  for (const crd of CRDS) kubectlResult(['delete', 'crd', crd, '--wait=true', '--timeout=60s']);
  const kv = JSON.parse(kubectl(['get', ...KV, '-o', 'json']));
  const remove = ['monitorNamespace', 'monitorAccount']
    .filter((f) => kv.spec?.[f] !== undefined)
    .map((f) => ({ op: 'remove', path: `/spec/${f}` }));
  if (remove.length) kubectl(['patch', ...KV, '--type', 'json', '-p', JSON.stringify(remove)]);
};

before(() => {
  deleteNamespace(NS, true);
  kubectl(['create', 'namespace', NS]);
  unmonitor();
});
after(() => {
  deleteNamespace(NS);
  unmonitor();
});

test('the local Prometheus finds and scrapes every component behind kubevirt-prometheus-metrics', async () => {
  const up = await eventually('every component up in Prometheus', 60, () => {
    const samples = query('up{job="kubevirt-prometheus-metrics"} == 1');
    const pods = samples.map((s) => s.metric.pod).join(' ');
    return ['virt-api', 'virt-controller', 'virt-handler', 'virt-operator'].every((c) => pods.includes(`${c}-`)) ? samples : undefined;
  });
  for (const sample of up) {
    assert.equal(sample.metric.namespace, KV_NS);
    assert.equal(sample.metric.service, 'kubevirt-prometheus-metrics');
  }
});

test("the local Prometheus answers a running VMI's memory and CPU usage rate", async () => {
  kubectl(
    ['create', '-n', NS, '-f', '-'],
    JSON.stringify({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: VMI },
      spec: {
        domain: { devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] }, resources: { requests: { memory: '128Mi' } } },
        terminationGracePeriodSeconds: 0,
        volumes: [{ name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel' } }],
      },
    }),
  );
  const node = await eventually('the VMI Running', 180, () => {
    const vmi = JSON.parse(kubectl(['get', 'vmi', VMI, '-n', NS, '-o', 'json']));
    return vmi.status?.phase === 'Running' ? (vmi.status.nodeName as string) : undefined;
  });
  const [memory] = await eventually('the VMI memory in Prometheus', 60, () => {
    const samples = query(`kubevirt_vmi_memory_domain_bytes{name="${VMI}"}`);
    return samples.length ? samples : undefined;
  });
  assert.equal(Number(memory.value[1]), 128 * 1024 * 1024);
  // honor_labels: the VMI's namespace, not virt-handler's, and virt-handler's node.
  assert.equal(memory.metric.namespace, NS);
  assert.equal(memory.metric.node, node);
  assert.match(memory.metric.pod, /^virt-handler-/);
  // A rate needs two scrapes of the counter in the window: 5 s apart here.
  const cpu = await eventually('the VMI CPU usage rate in Prometheus', 60, () =>
    query('rate(kubevirt_vmi_cpu_usage_seconds_total[1m])').find((s) => s.metric.namespace === NS && s.metric.name === VMI),
  );
  const rate = Number(cpu.value[1]);
  assert.ok(rate > 0 && rate < 8, `CPU seconds per second ${rate}`);
});

test("the local Prometheus evaluates KubeVirt's rules over the components' metrics", async () => {
  const groups = loadedRules();
  const rules = groups.flatMap((g) => g.rules);
  const loadedAlerts = new Set(rules.filter((r) => r.type === 'alerting').map((r) => r.name));
  assert.deepEqual([...loadedAlerts].sort(), kubevirtAlertNames(KV_NS).sort());
  assert.ok(rules.some((r) => r.name === 'vmi:kubevirt_vmi_memory_used_bytes:sum'));
  // Recording rules over what is scraped here (the kube_* ones need kube-state-metrics, which this cluster has not).
  const handlers = await eventually('cluster:kubevirt_virt_handler_up:sum', 30, () => {
    const [sample] = query('cluster:kubevirt_virt_handler_up:sum');
    return sample && Number(sample.value[1]) > 0 ? sample : undefined;
  });
  assert.equal(
    Number(handlers.value[1]),
    Number(kubectl(['get', 'daemonset', 'virt-handler', '-n', KV_NS, '-o', 'jsonpath={.status.numberReady}'])),
  );
  const [leading] = query('cluster:kubevirt_virt_controller_leading:sum');
  assert.equal(Number(leading.value[1]), 1, 'one virt-controller leads');
  for (const rule of rules) assert.notEqual(rule.health, 'err', `${rule.name}: ${rule.lastError}`);
});

test("with the Prometheus Operator's CRDs and the CR naming the monitoring account, virt-operator installs the ServiceMonitor, rules and Role", async () => {
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [monitoringCrd('ServiceMonitor', 'servicemonitors'), monitoringCrd('PrometheusRule', 'prometheusrules')],
    }),
  );
  for (const crd of CRDS) kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=30s']);
  kubectl([
    'patch',
    ...KV,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { monitorNamespace: 'monitoring', monitorAccount: 'prometheus-k8s' } }),
  ]);

  const monitor = await eventually('the ServiceMonitor', 60, () => {
    const r = kubectlResult(['get', 'servicemonitor', 'prometheus-kubevirt-rules', '-n', 'monitoring', '-o', 'json']);
    return r.status === 0 ? JSON.parse(r.stdout) : undefined;
  });
  assert.deepEqual(monitor.spec.selector, { matchLabels: { 'prometheus.kubevirt.io': 'true' } });
  assert.deepEqual(monitor.spec.namespaceSelector, { matchNames: [KV_NS] });
  assert.equal(monitor.spec.endpoints[0].port, 'metrics');
  assert.equal(monitor.spec.endpoints[0].scheme, 'https');
  // It selects the Service the local Prometheus scrapes.
  const service = JSON.parse(kubectl(['get', 'service', 'kubevirt-prometheus-metrics', '-n', KV_NS, '-o', 'json']));
  assert.equal(service.metadata.labels['prometheus.kubevirt.io'], 'true');

  const rule = await eventually('the PrometheusRule', 60, () => {
    const r = kubectlResult(['get', 'prometheusrule', 'prometheus-kubevirt-rules', '-n', KV_NS, '-o', 'json']);
    return r.status === 0 ? JSON.parse(r.stdout) : undefined;
  });
  const alerts = new Set<string>(
    (rule.spec.groups as { rules: { alert?: string }[] }[]).flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))),
  );
  const loaded = new Set(
    loadedRules()
      .flatMap((g) => g.rules)
      .filter((r) => r.type === 'alerting')
      .map((r) => r.name),
  );
  assert.deepEqual([...alerts].sort(), [...loaded].sort(), 'the local Prometheus has loaded the alerts the PrometheusRule carries');
  for (const name of ['VirtHandlerDown', 'NoLeadingVirtController', 'VirtApiRESTErrorsBurst', 'KubeVirtVMGuestMemoryPressure'])
    assert.ok(alerts.has(name), name);

  const binding = JSON.parse(kubectl(['get', 'rolebinding', 'kubevirt-monitoring', '-n', KV_NS, '-o', 'json']));
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', namespace: 'monitoring', name: 'prometheus-k8s' }]);
  assert.equal(binding.roleRef.name, 'kubevirt-monitoring');
  const role = JSON.parse(kubectl(['get', 'role', 'kubevirt-monitoring', '-n', KV_NS, '-o', 'json']));
  assert.deepEqual(role.rules[0].resources, ['services', 'endpoints', 'pods']);

  // Without the CRDs and the CR's account, virt-operator takes its Role and binding away again.
  unmonitor();
  await eventually(
    'the monitoring Role removed',
    60,
    () => kubectlResult(['get', 'role', 'kubevirt-monitoring', '-n', KV_NS]).status !== 0,
  );
  assert.notEqual(kubectlResult(['get', 'rolebinding', 'kubevirt-monitoring', '-n', KV_NS]).status, 0);
});
