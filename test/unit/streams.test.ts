// Which VMIs the streaming subresources reach, with upstream's codes and
// messages, and the migrate subresource's refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import { checkConsole, checkOnNode, checkVmStarted, checkVnc, portForwardTarget } from '../../src/virt-api/streams.ts';
import { checkMigrate } from '../../src/virt-api/lifecycle.ts';

const vmi = (phase: string, extra: Partial<VirtualMachineInstance['status']> = {}, devices: object = {}): VirtualMachineInstance =>
  ({ metadata: { name: 'v' }, spec: { domain: { devices } }, status: { phase, ...extra } }) as VirtualMachineInstance;
const running = (extra = {}) => vmi('Running', { interfaces: [{ name: 'default', ipAddress: '10.244.0.7' }], ...extra });

test('console: 400 while not running (virtctl waits on it), 409 once failed, 400 without a serial console', () => {
  assert.equal(checkConsole(running()), undefined);
  assert.deepEqual(checkConsole(vmi('Scheduling')), { code: 400, reason: 'BadRequest', message: 'VMI is not running' });
  assert.deepEqual(checkConsole(vmi('Failed')), {
    code: 409,
    reason: 'Conflict',
    message: 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "v": VMI is in failed status',
  });
  assert.equal(checkConsole(vmi('Running', {}, { autoattachSerialConsole: false }))?.message, 'No serial consoles are present.');
});

test('vnc needs a display and a running VMI; the handler is reached only once the VMI is on its node', () => {
  assert.equal(checkVnc(running()), undefined);
  assert.equal(checkVnc(vmi('Running', {}, { autoattachGraphicsDevice: false }))?.message, 'No graphics devices are present.');
  assert.equal(checkVnc(vmi('Pending'))?.code, 400);
  assert.equal(checkOnNode(vmi('Scheduled')), undefined);
  assert.equal(
    checkOnNode(vmi('Succeeded'))?.message,
    'Unable to connect to VirtualMachineInstance because phase is Succeeded instead of Running or Scheduled',
  );
});

test("portforward goes to the first interface's address; paused VMIs and bad ports are refused", () => {
  assert.deepEqual(portForwardTarget(running(), '22'), { host: '10.244.0.7', port: 22 });
  assert.equal(
    (portForwardTarget(running({ conditions: [{ type: 'Paused', status: 'True' }] }), '22') as { message: string }).message,
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "v": VMI is paused',
  );
  assert.equal((portForwardTarget(vmi('Running'), '22') as { message: string }).message, 'no network interfaces are present');
  assert.equal((portForwardTarget(running(), '') as { message: string }).message, 'port must not be empty');
  assert.equal((portForwardTarget(running(), '70000') as { code: number }).code, 400);
  assert.match((portForwardTarget(running(), '53', 'udp') as { message: string }).message, /protocol udp is not supported/);
  assert.equal(
    checkVmStarted({ metadata: { name: 'v' }, spec: {}, status: { created: false } } as VirtualMachine)?.message,
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "v": VMI is not started',
  );
});

test('migrate: 409 VM is not running, and a running VMI that cannot migrate says why', () => {
  assert.equal(
    checkMigrate('v', vmi('Scheduled'))?.message,
    'Operation cannot be fulfilled on virtualmachine.kubevirt.io "v": VM is not running',
  );
  const notMigratable = running({
    conditions: [
      {
        type: 'LiveMigratable',
        status: 'False',
        reason: 'DisksNotLiveMigratable',
        message:
          'cannot migrate VMI: PVC data is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)',
      },
    ],
  });
  assert.deepEqual(checkMigrate('v', notMigratable), {
    code: 409,
    reason: 'Conflict',
    message:
      'Operation cannot be fulfilled on virtualmachine.kubevirt.io "v": Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: cannot migrate VMI: PVC data is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)',
  });
  assert.equal(checkMigrate('v', running({ conditions: [{ type: 'LiveMigratable', status: 'True' }] })), undefined);
});
