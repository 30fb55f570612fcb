// KubeVirt's Prometheus rules as data: what each alert carries, and that every
// recorded series an expression reads is one the rules record. (That they parse
// and load is promtool's check in CI, and the local Prometheus' in e2e.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kubevirtAlertNames, kubevirtRuleGroups, type AlertingRule, type RecordingRule } from '../../src/operator/monitoring-rules.ts';

const groups = kubevirtRuleGroups('kv-system');
const rules = groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is AlertingRule => 'alert' in r);
const records = rules.filter((r): r is RecordingRule => 'record' in r);

test("every alert carries upstream's labels and annotations; the install's own carry its namespace", () => {
  for (const a of alerts) {
    assert.match(a.labels.severity, /^(info|warning|critical)$/, a.alert);
    assert.match(a.labels.operator_health_impact, /^(none|warning|critical)$/, a.alert);
    assert.equal(a.labels.kubernetes_operator_part_of, 'kubevirt', a.alert);
    assert.ok(a.annotations.summary, a.alert);
    assert.equal(a.annotations.runbook_url, `https://kubevirt.io/monitoring/runbooks/${a.alert}`);
  }
  const byName = (name: string) => alerts.find((a) => a.alert === name)!;
  assert.equal(byName('VirtHandlerDown').labels.namespace, 'kv-system');
  assert.match(byName('VirtHandlerDown').expr, /cluster:kubevirt_virt_handler_pods_running:count == 0/);
  assert.equal(byName('VMCannotBeEvicted').labels.namespace, undefined, "a VM's alert has the VM's namespace from its series");
  assert.equal(kubevirtAlertNames('kv-system').length, 38);
  assert.equal(alerts.filter((a) => a.alert === 'GuestFilesystemAlmostOutOfSpace').length, 2, 'a warning and a critical level');
});

test('every recorded series an expression reads is recorded by these rules, before the alerts that read it', () => {
  const recorded = new Set(records.map((r) => r.record));
  assert.ok(groups[0].rules.every((r) => 'record' in r));
  for (const r of rules) {
    // Outside string literals (label values, regular expressions).
    for (const [name] of r.expr.replace(/"[^"]*"/g, '""').matchAll(/\b[a-z_]+:[a-z_:0-9]+/g)) {
      assert.ok(recorded.has(name), `${'alert' in r ? r.alert : r.record} reads ${name}, which nothing records`);
    }
  }
});

test('the component rules select the install namespace', () => {
  const up = records.find((r) => r.record === 'cluster:kubevirt_virt_api_up:sum')!;
  assert.match(up.expr, /namespace="kv-system", pod=~"virt-api-\.\+"/);
  assert.equal(records.filter((r) => r.record === 'container:kubevirt_memory_delta_from_requested_bytes:max').length, 2);
});
