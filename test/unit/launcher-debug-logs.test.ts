// A VMI's launcher debug logs, asked for as upstream's are (a debugLogs or logVerbosity label, the
// KubeVirt CR's verbosity, libvirt log filters in an annotation): what virt-controller passes to
// the launcher, when the launcher logs its QEMU monitor traffic, and how that traffic reads.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { logSettingsEnv, renderLauncherPod } from '../../src/controller/launcher-pod.ts';
import { filterPriority, monitorTraceLog, monitorTrafficLogged } from '../../src/launcher/monitor-log.ts';
import { QmpClient } from '../../src/launcher/qmp.ts';
import { createLogger } from '../../src/lib/log.ts';
import { example } from '../helpers/fixtures.ts';

const vmiWith = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}): VirtualMachineInstance => {
  const vmi = example<VirtualMachineInstance>('vmi-ephemeral.yaml');
  vmi.metadata = { ...vmi.metadata, uid: 'vmi-uid', namespace: 'ns', labels, annotations };
  return vmi;
};
const envOf = (vmi: VirtualMachineInstance, config = new ClusterConfig({})) =>
  Object.fromEntries(logSettingsEnv(vmi, config).map((e) => [e.name, e.value]));

test("virt-controller gives the launcher upstream's verbosity and debug switch: the label first, then the KubeVirt CR", () => {
  assert.deepEqual(envOf(vmiWith()), {});
  assert.deepEqual(envOf(vmiWith({ debugLogs: 'True' })), { LIBVIRT_DEBUG_LOGS: '1' });
  assert.deepEqual(envOf(vmiWith({ logVerbosity: '10' })), { VIRT_LAUNCHER_LOG_VERBOSITY: '10', LIBVIRT_DEBUG_LOGS: '1' });
  assert.deepEqual(envOf(vmiWith({ logVerbosity: '2' })), { VIRT_LAUNCHER_LOG_VERBOSITY: '2' });
  const verbose = new ClusterConfig({ developerConfiguration: { logVerbosity: { virtLauncher: 7 } } });
  assert.deepEqual(envOf(vmiWith(), verbose), { VIRT_LAUNCHER_LOG_VERBOSITY: '7', LIBVIRT_DEBUG_LOGS: '1' });
  assert.deepEqual(envOf(vmiWith({ logVerbosity: '3' }), verbose), { VIRT_LAUNCHER_LOG_VERBOSITY: '3' });
});

test('the log filters annotation reaches the launcher as its --libvirt-log-filters flag', () => {
  const params = {
    launcherImage: 'registry:5000/kubevirt-ts/virt-launcher:devel',
    imagePullPolicy: 'IfNotPresent',
    config: new ClusterConfig({}),
  };
  const compute = (vmi: VirtualMachineInstance) => renderLauncherPod(vmi, params).spec!.containers.find((c) => c.name === 'compute')!;
  const args = compute(vmiWith({}, { 'kubevirt.io/libvirt-log-filters': '1:qemu 3:*' })).args!;
  assert.deepEqual(args.slice(args.indexOf('--libvirt-log-filters'), args.indexOf('--libvirt-log-filters') + 2), [
    '--libvirt-log-filters',
    '1:qemu 3:*',
  ]);
  assert.ok(!compute(vmiWith()).args!.includes('--libvirt-log-filters'));
});

test("libvirt's filters: the first that names the category (a substring or a glob) decides its priority", () => {
  const upstreamTestFilters = '3:remote 4:event 3:util.json 3:util.object 3:util.dbus 3:util.netlink 3:node_device 3:rpc 3:access 1:*';
  assert.equal(filterPriority(upstreamTestFilters, 'qemu.qemu_monitor'), 1);
  assert.equal(filterPriority(upstreamTestFilters, 'util.json'), 3);
  assert.equal(filterPriority('3:qemu 1:*', 'qemu.qemu_monitor'), 3);
  assert.equal(filterPriority('1:qemu.qemu_mon*', 'qemu.qemu_monitor'), 1);
  assert.equal(filterPriority('3:remote 2:util', 'qemu.qemu_monitor'), undefined);
});

test("the launcher logs the monitor's traffic under upstream's rules: filters, else a verbosity of 7 or more, else the switch", () => {
  const logged = (verbosity: string | undefined, debugSwitch = false, filters?: string) =>
    monitorTrafficLogged({ verbosity, debugSwitch, filters });
  assert.equal(logged(undefined), false);
  assert.equal(logged(undefined, true), true, 'the debugLogs label');
  assert.equal(logged('10', true), true, 'logVerbosity 10');
  assert.equal(logged('2'), false, 'logVerbosity 2');
  // Just past the threshold upstream's filters hold the monitor at warnings, switch or not.
  assert.equal(logged('5', true), false);
  assert.equal(logged('6', true), false);
  assert.equal(logged('7'), true);
  assert.equal(logged('not a number', true), true);
  assert.equal(logged(undefined, false, '3:remote 1:*'), true, 'custom filters');
  assert.equal(logged('10', true, '3:qemu 1:*'), false, 'filters that hold the monitor back win');
});

test("monitor traffic is logged at debug level with libvirt's probe names, as the libvirt subcomponent", async (t: TestContext) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvts-qmp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'qmp.sock');
  // A QMP server as QEMU's: a greeting, then an answer to each command and one event.
  const server = createServer((socket) => {
    socket.write('{"QMP":{"version":{},"capabilities":[]}}\n');
    socket.on('data', (data) => {
      for (const line of data.toString().split('\n').filter(Boolean)) {
        const { id } = JSON.parse(line) as { id: number };
        socket.write(`${JSON.stringify({ return: {}, id })}\n`);
        socket.write('{"event":"RESUME","timestamp":{"seconds":1,"microseconds":0}}\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => server.close());
  const lines: string[] = [];
  const log = createLogger('virt-launcher', { subcomponent: 'libvirt' }, (l) => lines.push(l), { debug: true });
  const client = await QmpClient.connect(path, 1000, monitorTraceLog(log));
  await client.execute('query-status');
  await new Promise((resolve) => setTimeout(resolve, 50));
  client.close();
  const records = lines.map((l) => JSON.parse(l) as Record<string, string>);
  assert.ok(records.every((r) => r.level === 'debug' && r.subcomponent === 'libvirt'));
  const messages = records.map((r) => r.msg);
  assert.ok(messages.includes('QEMU_MONITOR_SEND_MSG: msg={"execute":"query-status","id":2}'), messages.join('\n'));
  assert.ok(messages.includes('QEMU_MONITOR_RECV_REPLY: reply={"return":{},"id":2}'));
  assert.ok(messages.some((m) => m.startsWith('QEMU_MONITOR_RECV_EVENT: event={"event":"RESUME"')));
  // Without the trace nothing is logged, and a logger's debug records stay off unless asked for.
  const quiet: string[] = [];
  createLogger('virt-launcher', {}, (l) => quiet.push(l), { debug: false }).debug('hidden');
  assert.deepEqual(quiet, []);
});
