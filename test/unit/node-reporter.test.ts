// virt-handler's node facts: the emulation mode follows the KVM probe and the
// cluster's useEmulation as it is now; a launcher retries a sync refused
// before QEMU ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterConfig, DEFAULT_OBSOLETE_CPU_MODELS } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { NodeReporter } from '../../src/handler/node-reporter.ts';
import { Supervisor } from '../../src/launcher/supervisor.ts';
import { createLogger } from '../../src/lib/log.ts';
import { usableCpuModels } from '../../src/lib/cpu-models.ts';

const quiet = createLogger('test', {}, () => undefined);

test('emulation is unknown until the KVM probe has run, then follows useEmulation as the cluster sets it', async () => {
  let config = new ClusterConfig({ developerConfiguration: { useEmulation: true } });
  const patches: object[] = [];
  const reporter = new NodeReporter({
    node: 'node01',
    patchNode: async (body) => patches.push(body),
    patchNodeStatus: async (body) => patches.push(body),
    cpuLabels: {},
    probeKvm: async () => true,
    probeCpuModels: async () => [],
    readNodeLabels: async () => ({}),
    config: () => config,
    log: quiet,
  });
  assert.equal(reporter.emulation, undefined);
  reporter.probeKvm();
  assert.equal(await reporter.useKvm(), false, 'useEmulation: guests run in emulation');
  assert.equal(reporter.emulation, true);
  config = new ClusterConfig({});
  assert.equal(reporter.emulation, false, 'KVM works and emulation is no longer asked for');
  assert.equal(await reporter.useKvm(), true);
  assert.ok(
    patches.some((p) => JSON.stringify(p).includes('devices.kubevirt.io/kvm')),
    'the KVM device advertised',
  );
});

test("the node is labelled with the CPU models QEMU offers under the guests' accelerator; a model no longer offered loses its label", async () => {
  const patches: object[] = [];
  const asked: { accel: string; obsolete: ReadonlySet<string> }[] = [];
  const reporter = new NodeReporter({
    node: 'node01',
    patchNode: async (body) => patches.push(body),
    patchNodeStatus: async () => undefined,
    cpuLabels: { 'cpu-feature.node.kubevirt.io/aes': 'true' },
    probeKvm: async () => false,
    probeCpuModels: async (accel, obsolete) => {
      asked.push({ accel, obsolete });
      return ['Nehalem', 'Penryn'];
    },
    readNodeLabels: async () => ({ 'cpu-model.node.kubevirt.io/Skylake-Client': 'true', 'kubernetes.io/os': 'linux' }),
    config: () => new ClusterConfig({ developerConfiguration: { useEmulation: true }, obsoleteCPUModels: { Conroe: true } }),
    log: quiet,
  });
  reporter.probeKvm();
  await reporter.useKvm();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(asked, [{ accel: 'tcg', obsolete: new Set(['Conroe']) }]);
  const labels = (patches.at(-1) as { metadata: { labels: Record<string, string | null> } }).metadata.labels;
  assert.equal(labels['cpu-model.node.kubevirt.io/Nehalem'], 'true');
  assert.equal(labels['cpu-model.node.kubevirt.io/Penryn'], 'true');
  assert.equal(labels['cpu-model.node.kubevirt.io/Skylake-Client'], null);
  assert.equal(labels['cpu-feature.node.kubevirt.io/aes'], 'true');
  assert.ok(!('kubernetes.io/os' in labels));
});

test("QEMU's CPU models worth a label: runnable in full here, migration-safe, not static, not obsolete", () => {
  const definitions = [
    { name: 'Nehalem', 'unavailable-features': [], 'migration-safe': true, static: false },
    { name: 'Skylake-Client', 'unavailable-features': ['avx512f'], 'migration-safe': true, static: false },
    { name: 'max', 'unavailable-features': [], 'migration-safe': false, static: false },
    { name: 'base', 'unavailable-features': [], 'migration-safe': true, static: true },
    { name: 'qemu64', 'unavailable-features': [], 'migration-safe': true, static: false },
    { name: 'Penryn-v1', 'unavailable-features': [], 'migration-safe': true, static: false },
  ];
  assert.deepEqual(usableCpuModels(definitions, DEFAULT_OBSOLETE_CPU_MODELS), ['Nehalem', 'Penryn-v1']);
  assert.deepEqual(usableCpuModels(definitions, new Set(['Nehalem'])), ['Penryn-v1', 'qemu64']);
  assert.deepEqual([...new ClusterConfig({}).obsoleteCpuModels], [...DEFAULT_OBSOLETE_CPU_MODELS]);
});

test('a sync refused before QEMU started is tried again on the next sync', async () => {
  let calls = 0;
  const supervisor = new Supervisor({
    context: () => {
      calls += 1;
      throw new Error(`refused ${calls}`);
    },
    log: quiet,
  });
  const vmi = { metadata: { name: 'v', namespace: 'ns' }, spec: { domain: { devices: {} } } } as VirtualMachineInstance;
  await assert.rejects(supervisor.sync(vmi), /refused 1/);
  await assert.rejects(supervisor.sync(vmi), /refused 2/);
});
