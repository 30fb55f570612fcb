// virt-handler's node facts: the emulation mode follows the KVM probe and the
// cluster's useEmulation as it is now; a launcher retries a sync refused
// before QEMU ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { NodeReporter } from '../../src/handler/node-reporter.ts';
import { Supervisor } from '../../src/launcher/supervisor.ts';
import { createLogger } from '../../src/lib/log.ts';

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
