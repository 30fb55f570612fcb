// virt-handler's per-VMI metrics: the launcher's parsers of /proc and QMP answers,
// and the pure mapping from a VMI and its stats snapshot to upstream's samples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import type { DomainStats } from '../../src/contract/launcher-protocol.ts';
import { connectionSamples, mergeSamples, vmiLabelName, vmiLabels, vmiSamples } from '../../src/handler/metrics.ts';
import {
  balloonMemory,
  blockStats,
  collectDomainStats,
  collectGuestAgentFigures,
  filesystemStats,
  GuestLoad,
  guestView,
  parseLoadavg,
  parseNetDev,
  parseProcStat,
  parseResidentBytes,
} from '../../src/launcher/stats.ts';
import { QmpError } from '../../src/launcher/qmp.ts';

const vmi = {
  metadata: { name: 'vm1', namespace: 'ns', labels: { 'kubevirt.io/domain': 'vm1', 'app.example-x': 'web', ok_label: 'y' } },
  spec: { domain: { devices: {} } },
  status: { phase: 'Running', nodeName: 'node01' },
} as unknown as VirtualMachineInstance;

test('VMI labels become kubernetes_vmi_label_* with ".", "/" and "-" made "_", beside node, namespace and name', () => {
  assert.equal(vmiLabelName('kubevirt.io/domain'), 'kubernetes_vmi_label_kubevirt_io_domain');
  assert.deepEqual(vmiLabels(vmi), {
    kubernetes_vmi_label_kubevirt_io_domain: 'vm1',
    kubernetes_vmi_label_app_example_x: 'web',
    kubernetes_vmi_label_ok_label: 'y',
    node: 'node01',
    namespace: 'ns',
    name: 'vm1',
  });
});

test('a label key still outside the label alphabet is left out rather than breaking the scrape', () => {
  const odd = { ...vmi, metadata: { ...vmi.metadata, labels: { 'a:b': 'x' } } } as VirtualMachineInstance;
  assert.equal(Object.keys(vmiLabels(odd)).filter((k) => k.startsWith('kubernetes_vmi_label_')).length, 0);
});

const snapshot: DomainStats = {
  cpu: { userSeconds: 3, systemSeconds: 1.5 },
  vcpus: [
    { id: 0, state: 'running', seconds: 2 },
    { id: 1, state: 'running', seconds: 1 },
  ],
  memory: {
    domainBytes: 134217728,
    residentBytes: 200e6,
    actualBalloonBytes: 134217728,
    availableBytes: 120e6,
    usableBytes: 90e6,
    unusedBytes: 80e6,
  },
  blocks: [
    {
      drive: 'containerdisk',
      readBytes: 10,
      writeBytes: 20,
      readOps: 1,
      writeOps: 2,
      flushOps: 3,
      readSeconds: 0.1,
      writeSeconds: 0.2,
      flushSeconds: 0.3,
    },
  ],
  networks: [
    { interface: 'default', rxBytes: 100, rxPackets: 10, rxErrors: 0, rxDropped: 1, txBytes: 50, txPackets: 5, txErrors: 0, txDropped: 0 },
  ],
  filesystems: [{ diskName: 'vda1', mountPoint: '/', type: 'ext4', capacityBytes: 1000, usedBytes: 400 }],
  load: { load1m: 0.5, load5m: 0.25 },
};

test('a snapshot maps to upstream families, labels and units', () => {
  const out = vmiSamples(vmi, snapshot);
  const base = vmiLabels(vmi);
  assert.deepEqual(out.cpuUsage, [{ labels: base, value: 4.5 }]);
  assert.deepEqual(out.cpuUser, [{ labels: base, value: 3 }]);
  assert.deepEqual(
    out.vcpuSeconds?.map((s) => [s.labels.id, s.labels.state, s.value]),
    [
      ['0', 'running', 2],
      ['1', 'running', 1],
    ],
  );
  assert.equal(out.memoryDomain?.[0].value, 134217728);
  assert.equal(out.memoryResident?.[0].value, 200e6);
  assert.equal(out.memoryAvailable?.[0].value, 120e6);
  assert.equal(out.memoryUsable?.[0].value, 90e6);
  assert.equal(out.memoryUnused?.[0].value, 80e6);
  assert.deepEqual(out.netRxBytes, [{ labels: { ...base, interface: 'default' }, value: 100 }]);
  assert.equal(out.netRxDropped?.[0].value, 1);
  assert.equal(out.netTxPackets?.[0].value, 5);
  assert.deepEqual(out.storageFlushTimes, [{ labels: { ...base, drive: 'containerdisk' }, value: 0.3 }]);
  assert.equal(out.storageWriteOps?.[0].value, 2);
  assert.deepEqual(out.fsUsed, [{ labels: { ...base, disk_name: 'vda1', mount_point: '/', file_system_type: 'ext4' }, value: 400 }]);
  assert.equal(out.load1m?.[0].value, 0.5);
  assert.equal(out.load15m, undefined, 'a figure the agent did not report makes no sample');
});

test('an empty snapshot makes no samples; merged VMIs keep every sample', () => {
  assert.deepEqual(vmiSamples(vmi, {}), {});
  const other = { ...vmi, metadata: { ...vmi.metadata, name: 'vm2' } } as VirtualMachineInstance;
  const merged = mergeSamples([vmiSamples(vmi, snapshot), vmiSamples(other, snapshot)]);
  assert.deepEqual(
    merged.cpuUsage?.map((s) => s.labels.name),
    ['vm1', 'vm2'],
  );
});

test('open streams are counted per VMI with labels namespace and vmi', () => {
  assert.deepEqual(
    connectionSamples([
      { namespace: 'ns', name: 'a' },
      { namespace: 'ns', name: 'a' },
      { namespace: 'ns', name: 'b' },
    ]),
    [
      { labels: { namespace: 'ns', vmi: 'a' }, value: 2 },
      { labels: { namespace: 'ns', vmi: 'b' }, value: 1 },
    ],
  );
});

test('/proc stat lines: state and CPU seconds, with spaces and parentheses in the command name', () => {
  const line = '1234 (qemu (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 5 0 100 1000 50';
  assert.deepEqual(parseProcStat(line), { state: 'S', userSeconds: 2.5, systemSeconds: 0.75 });
  assert.equal(parseProcStat('garbage'), undefined);
  assert.equal(parseResidentBytes('Name:\tqemu\nVmRSS:\t  2048 kB\n'), 2048 * 1024);
});

test('/proc/net/dev counters, turned into what the guest received and sent', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  tap0:    1000      10    1    2    0     0          0         0     5000      50    3    4    0     0       0          0
`;
  const devices = parseNetDev(text);
  assert.deepEqual(devices.get('tap0'), {
    rxBytes: 1000,
    rxPackets: 10,
    rxErrors: 1,
    rxDropped: 2,
    txBytes: 5000,
    txPackets: 50,
    txErrors: 3,
    txDropped: 4,
  });
  assert.deepEqual(guestView('default', devices.get('tap0')!), {
    interface: 'default',
    rxBytes: 5000,
    rxPackets: 50,
    rxErrors: 3,
    rxDropped: 4,
    txBytes: 1000,
    txPackets: 10,
    txErrors: 1,
    txDropped: 2,
  });
});

test('QMP block stats by VMI disk name (times in seconds), balloon figures named as libvirt names them, filesystems with sizes', () => {
  assert.deepEqual(
    blockStats([
      {
        device: 'drive-rootdisk',
        stats: {
          rd_bytes: 1,
          wr_bytes: 2,
          rd_operations: 3,
          wr_operations: 4,
          flush_operations: 5,
          rd_total_time_ns: 1e9,
          wr_total_time_ns: 2e9,
          flush_total_time_ns: 5e8,
        },
      },
      { device: '', qdev: 'something-else', stats: {} },
    ]),
    [
      {
        drive: 'rootdisk',
        readBytes: 1,
        writeBytes: 2,
        readOps: 3,
        writeOps: 4,
        flushOps: 5,
        readSeconds: 1,
        writeSeconds: 2,
        flushSeconds: 0.5,
      },
    ],
  );
  assert.deepEqual(balloonMemory(100, { stats: { 'stat-total-memory': 90, 'stat-available-memory': 70, 'stat-free-memory': -1 } }), {
    actualBalloonBytes: 100,
    availableBytes: 90,
    usableBytes: 70,
    unusedBytes: undefined,
  });
  assert.deepEqual(
    filesystemStats([
      { name: 'vda1', mountpoint: '/', type: 'ext4', 'used-bytes': 5, 'total-bytes': 10 },
      { name: 'sr0', mountpoint: '/mnt', type: 'iso9660' },
    ]),
    [{ diskName: 'vda1', mountPoint: '/', type: 'ext4', capacityBytes: 10, usedBytes: 5 }],
  );
});

test('a snapshot asks every source at once and leaves out what fails or does not answer in time', async () => {
  const files: Record<string, string> = {
    '/proc/42/stat': '42 (qemu) S 1 1 1 0 -1 0 0 0 0 0 100 50 0 0',
    '/proc/42/status': 'VmRSS:\t1024 kB\n',
    '/proc/42/task/43/stat': '43 (CPU 0/TCG) R 1 1 1 0 -1 0 0 0 0 0 30 10 0 0',
    '/proc/net/dev': '  tap0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n',
  };
  const qmp: Record<string, unknown> = {
    'query-blockstats': [{ device: 'drive-disk0', stats: { rd_bytes: 7 } }],
    'query-balloon': { actual: 128 },
    'query-memory-size-summary': { 'base-memory': 128 },
    'query-cpus-fast': [{ 'cpu-index': 0, 'thread-id': 43 }],
  };
  const stats = await collectDomainStats({
    qmp: async (command) => {
      if (command === 'qom-get') return new Promise(() => undefined); // never answers
      if (!(command in qmp)) throw new Error('unknown');
      return qmp[command];
    },
    agent: { load: { load1m: 0.5 } },
    readFile: async (path) => {
      if (!(path in files)) throw new Error('ENOENT');
      return files[path];
    },
    pid: 42,
    taps: { default: 'tap0', missing: 'tap9' },
    running: true,
  });
  assert.deepEqual(stats.cpu, { userSeconds: 1, systemSeconds: 0.5 });
  assert.deepEqual(stats.vcpus, [{ id: 0, state: 'running', seconds: 0.4 }]);
  assert.equal(stats.memory?.domainBytes, 128);
  assert.equal(stats.memory?.residentBytes, 1024 * 1024);
  assert.equal(stats.memory?.actualBalloonBytes, 128);
  assert.equal(stats.memory?.availableBytes, undefined);
  assert.equal(stats.blocks?.[0].readBytes, 7);
  assert.deepEqual(
    stats.networks?.map((n) => [n.interface, n.rxBytes, n.txBytes]),
    [['default', 3, 1]],
  );
  assert.equal(stats.filesystems, undefined);
  assert.deepEqual(stats.load, { load1m: 0.5 }, 'the guest agent figures as last read');
});

/** qemu-ga's answer to a command it lacks or has disabled. */
const notFound = (command: string) => new QmpError('CommandNotFound', `The command ${command} has not been found`);

test('the guest agent figures keep what the agent answered and leave out what it refused', async () => {
  const figures = await collectGuestAgentFigures(async (command) => {
    if (command === 'guest-get-fsinfo') return [{ name: 'vda1', mountpoint: '/', type: 'ext4', 'used-bytes': 5, 'total-bytes': 10 }];
    throw notFound(command);
  }, new GuestLoad());
  assert.deepEqual(figures, { filesystems: [{ diskName: 'vda1', mountPoint: '/', type: 'ext4', capacityBytes: 10, usedBytes: 5 }] });
});

test('/proc/loadavg: the first three fields are the 1, 5 and 15 minute load', () => {
  assert.deepEqual(parseLoadavg('0.52 0.31 0.07 2/113 1234\n'), { load1m: 0.52, load5m: 0.31, load15m: 0.07 });
  assert.equal(parseLoadavg(''), undefined);
  assert.equal(parseLoadavg('0.5 x 0.1'), undefined);
});

/** An agent of the given commands that records what it is asked; the guest's /proc/loadavg is open as handle 7. */
function agentWith(commands: string[]) {
  const asked: string[] = [];
  const agent = async (command: string, args?: Record<string, unknown>) => {
    asked.push(command);
    if (!commands.includes(command)) throw notFound(command);
    switch (command) {
      case 'guest-get-load':
        return { load1m: 1, load5m: 2, load15m: 3 };
      case 'guest-file-open':
        assert.deepEqual(args, { path: '/proc/loadavg', mode: 'r' });
        return 7;
      case 'guest-file-read':
        assert.equal(args?.handle, 7);
        return { count: 27, 'buf-b64': Buffer.from('0.25 0.50 0.75 1/80 4242\n').toString('base64'), eof: true };
      case 'guest-file-close':
        assert.deepEqual(args, { handle: 7 });
        return {};
    }
  };
  return { agent, asked };
}

test('an agent with guest-get-load is asked for the load with it', async () => {
  const { agent, asked } = agentWith(['guest-get-load', 'guest-file-open', 'guest-file-read', 'guest-file-close']);
  const load = new GuestLoad();
  assert.deepEqual(await load.read(agent), { load1m: 1, load5m: 2, load15m: 3 });
  assert.deepEqual(asked, ['guest-get-load']);
});

test("an agent without guest-get-load (qemu-ga before 10.0) gives the load from the guest's /proc/loadavg, and is not asked guest-get-load again", async () => {
  const { agent, asked } = agentWith(['guest-file-open', 'guest-file-read', 'guest-file-close']);
  const load = new GuestLoad();
  assert.deepEqual(await load.read(agent), { load1m: 0.25, load5m: 0.5, load15m: 0.75 });
  assert.deepEqual(await load.read(agent), { load1m: 0.25, load5m: 0.5, load15m: 0.75 });
  assert.deepEqual(asked, [
    'guest-get-load',
    ...['guest-file-open', 'guest-file-read', 'guest-file-close'],
    ...['guest-file-open', 'guest-file-read', 'guest-file-close'],
  ]);
  const figures = await collectGuestAgentFigures(agent, load);
  assert.deepEqual(figures.load, { load1m: 0.25, load5m: 0.5, load15m: 0.75 });
});

test('a guest file read that fails still closes its handle', async () => {
  const asked: string[] = [];
  const load = new GuestLoad();
  const agent = async (command: string) => {
    asked.push(command);
    if (command === 'guest-get-load') throw notFound(command);
    if (command === 'guest-file-open') return 7;
    if (command === 'guest-file-read') throw new QmpError('GenericError', 'read failed');
    return {};
  };
  await assert.rejects(load.read(agent), /read failed/);
  assert.deepEqual(asked, ['guest-get-load', 'guest-file-open', 'guest-file-read', 'guest-file-close']);
});

test('an agent that cannot give the load either way is asked nothing more for it; one that did not answer is asked again', async () => {
  const { agent, asked } = agentWith([]);
  const load = new GuestLoad();
  await assert.rejects(load.read(agent), /guest-file-open has not been found/);
  assert.equal(await load.read(agent), undefined);
  assert.deepEqual(asked, ['guest-get-load', 'guest-file-open']);

  const silent = new GuestLoad();
  let calls = 0;
  const unreachable = async () => {
    calls++;
    throw new Error('the guest agent did not answer guest-get-load within 1000ms');
  };
  await assert.rejects(silent.read(unreachable));
  await assert.rejects(silent.read(unreachable));
  assert.equal(calls, 2, 'a guest agent not up yet says nothing of what it lacks');
});
