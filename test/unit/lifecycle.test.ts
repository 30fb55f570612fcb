// The start/stop/restart subresources: what each runStrategy allows, and the
// patch virt-api sends (upstream's rules and messages).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualMachine, VirtualMachineInstance } from '../../src/api/types.ts';
import { planRestart, planStart, planStop } from '../../src/virt-api/lifecycle.ts';
import { example } from '../helpers/fixtures.ts';

const vm = (runStrategy: string, status?: VirtualMachine['status']): VirtualMachine => {
  const v = example<VirtualMachine>('vm-cirros.yaml');
  v.spec.runStrategy = runStrategy;
  v.status = status;
  return v;
};
const vmi = (phase: string): VirtualMachineInstance =>
  ({ metadata: { name: 'vm-cirros', uid: 'vmi-1' }, spec: { domain: { devices: {} } }, status: { phase } }) as VirtualMachineInstance;
const message = (r: ReturnType<typeof planStart>) => ('error' in r ? `${r.error.code} ${r.error.message}` : '');

test('start: Halted turns Always; Manual sends a start request; Always and Once refuse; a running VM refuses', () => {
  assert.deepEqual(planStart(vm('Halted'), undefined, {}), {
    plan: {
      vm: [
        { op: 'test', path: '/spec/runStrategy', value: 'Halted' },
        { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
      ],
    },
  });
  assert.deepEqual(planStart(vm('Manual', { created: false }), undefined, { paused: true }), {
    plan: {
      vmStatus: [
        { op: 'test', path: '/status/stateChangeRequests', value: null },
        { op: 'add', path: '/status/stateChangeRequests', value: [{ action: 'Start', data: { paused: 'true' } }] },
      ],
    },
  });
  assert.equal(
    message(planStart(vm('Always'), undefined, {})),
    '409 Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm-cirros": Always does not support manual start requests',
  );
  assert.match(message(planStart(vm('Once'), undefined, {})), /Once does not support manual start requests/);
  assert.match(message(planStart(vm('Manual'), vmi('Running'), {})), /VM is already running/);
  assert.match(
    message(planStart(vm('RerunOnFailure'), vmi('Failed'), {})),
    /RerunOnFailure does not support starting VM from failed state/,
  );
  const again = planStart(vm('Manual', { created: true }), vmi('Succeeded'), {});
  assert.ok('plan' in again && JSON.stringify(again.plan.vmStatus).includes('"action":"Stop","uid":"vmi-1"'), 'a finished VMI is replaced');
});

test('stop: Always turns Halted; Manual sends a stop request for the VMI; a stopped VM refuses; Halted only with a shorter grace period', () => {
  const always = planStop(vm('Always'), vmi('Running'), { gracePeriod: 5 });
  assert.ok('plan' in always);
  assert.deepEqual(always.plan.vm?.at(-1), { op: 'replace', path: '/spec/runStrategy', value: 'Halted' });
  assert.deepEqual(always.plan.vmi, [{ op: 'add', path: '/spec/terminationGracePeriodSeconds', value: 5 }]);
  const manual = planStop(vm('Manual', { created: true, stateChangeRequests: [{ action: 'Start' }] }), vmi('Running'), {});
  assert.ok('plan' in manual);
  assert.deepEqual(manual.plan.vmStatus, [
    { op: 'test', path: '/status/stateChangeRequests', value: [{ action: 'Start' }] },
    { op: 'replace', path: '/status/stateChangeRequests', value: [{ action: 'Stop', uid: 'vmi-1' }] },
  ]);
  assert.match(message(planStop(vm('Manual'), undefined, {})), /: VM is not running$/);
  assert.match(message(planStop(vm('Halted'), vmi('Running'), {})), /Halted only supports manual stop requests with a shorter graceperiod/);
});

test('restart: stop and start requests for the running VMI; Halted refuses; only grace period 0 forces', () => {
  const r = planRestart(vm('Always', { created: true, startFailure: { consecutiveFailCount: 2 } }), vmi('Running'), {});
  assert.ok('plan' in r);
  assert.deepEqual(r.plan.vmStatus, [
    { op: 'test', path: '/status/stateChangeRequests', value: null },
    { op: 'add', path: '/status/stateChangeRequests', value: [{ action: 'Stop', uid: 'vmi-1' }, { action: 'Start' }] },
    { op: 'remove', path: '/status/startFailure' },
  ]);
  assert.match(message(planRestart(vm('Halted'), vmi('Running'), {})), /RunStategy Halted does not support manual restart requests/);
  assert.match(message(planRestart(vm('Always'), undefined, {})), /VM is not running: Halted/);
  assert.equal(
    message(planRestart(vm('Always'), vmi('Running'), { gracePeriodSeconds: 5 })),
    '400 For force restart, only gracePeriod=0 is supported for now',
  );
  const forced = planRestart(vm('Always'), vmi('Running'), { gracePeriodSeconds: 0 });
  assert.ok('plan' in forced && forced.plan.vmi?.[0].value === 1);
});

test('VMI actions: pause needs a running, unpaused VMI; unpause a paused one; reset a running one', async () => {
  const { checkVmiAction } = await import('../../src/virt-api/lifecycle.ts');
  const running = vmi('Running');
  const paused = { ...running, status: { phase: 'Running', conditions: [{ type: 'Paused', status: 'True' }] } };
  assert.equal(checkVmiAction(running, 'pause'), undefined);
  assert.equal(
    checkVmiAction(paused, 'pause')?.message,
    'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "vm-cirros": VMI is already paused',
  );
  assert.equal(checkVmiAction(paused, 'unpause'), undefined);
  assert.match(checkVmiAction(running, 'unpause')?.message ?? '', /VMI is not paused/);
  assert.match(checkVmiAction(vmi('Scheduled'), 'unpause')?.message ?? '', /VMI is not running/);
  assert.match(checkVmiAction(paused, 'softreboot')?.message ?? '', /VMI is paused/);
  assert.equal(checkVmiAction(vmi('Succeeded'), 'reset')?.message, 'Failed to reset non-running VMI with phase Succeeded');
});

test("guest agent answers in upstream's shapes; refused without a connected agent", async () => {
  const { checkGuestInfo, guestInfoAnswer } = await import('../../src/virt-api/guestinfo.ts');
  const info = {
    hostname: 'g',
    os: { id: 'kvts-guest', 'kernel-release': '6.1' },
    users: [{ user: 'root', 'login-time': 5 }],
    filesystems: [{ name: 'vda1', mountpoint: '/', type: 'ext4', 'used-bytes': 1, 'total-bytes': 2 }],
  };
  assert.deepEqual(guestInfoAnswer('userlist', info), {
    kind: 'VirtualMachineInstanceGuestOSUserList',
    apiVersion: 'kubevirt.io/v1',
    metadata: {},
    items: [{ userName: 'root', loginTime: 5 }],
  });
  assert.deepEqual((guestInfoAnswer('filesystemlist', info) as { items: unknown[] }).items, [
    { diskName: 'vda1', mountPoint: '/', fileSystemType: 'ext4', usedBytes: 1, totalBytes: 2 },
  ]);
  const os = guestInfoAnswer('guestosinfo', info) as { hostname: string; os: { id: string; kernelRelease: string } };
  assert.deepEqual([os.hostname, os.os.id, os.os.kernelRelease], ['g', 'kvts-guest', '6.1']);
  assert.match(checkGuestInfo(vmi('Running'))?.message ?? '', /VMI does not have guest agent connected/);
});
