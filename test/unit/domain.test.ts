// The domain status the launcher reports, from QMP events and QEMU's exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFinal, type DomainStatus } from '../../src/contract/launcher-protocol.ts';
import { INITIAL_DOMAIN, onQemuExit, onQmpEvent } from '../../src/launcher/domain.ts';
import { phaseOf } from '../../src/handler/status.ts';

const apply = (events: [string, Record<string, unknown>?][], from: DomainStatus = { state: 'Paused', reason: 'StartingUp' }) =>
  events.reduce((s, [event, data]) => onQmpEvent(s, { event, data }), from);

test('boot, pause, unpause and reset', () => {
  assert.deepEqual(apply([['RESUME']]), { state: 'Running', reason: 'Booted' });
  assert.deepEqual(apply([['RESUME'], ['STOP']]), { state: 'Paused', reason: 'User' });
  assert.deepEqual(apply([['RESUME'], ['STOP'], ['RESUME']]), { state: 'Running', reason: 'Unpaused' });
  assert.deepEqual(apply([['RESUME'], ['RESET', { guest: false }]]), { state: 'Running', reason: 'Reset' });
  assert.deepEqual(apply([['RESUME'], ['BLOCK_IO_ERROR', { action: 'stop' }], ['STOP']]), { state: 'Paused', reason: 'IOError' });
  assert.deepEqual(apply([['RESUME'], ['BLOCK_IO_ERROR', { action: 'report' }]]), { state: 'Running', reason: 'Booted' });
});

test('a guest power-off ends Shutoff/Shutdown; a kill after the grace period, Shutoff/Destroyed', () => {
  const shuttingDown = apply([['RESUME'], ['SHUTDOWN', { guest: true, reason: 'guest-shutdown' }]]);
  assert.deepEqual(shuttingDown, { state: 'Shutdown', reason: 'GuestShutdown' });
  assert.deepEqual(onQemuExit(shuttingDown, { code: 0, signal: null, killedByUs: false }), { state: 'Shutoff', reason: 'Shutdown' });
  const running = apply([['RESUME']]);
  const killed = onQemuExit({ ...running, gracefulShutdownRequested: true }, { code: null, signal: 'SIGKILL', killedByUs: true });
  assert.deepEqual(killed, { state: 'Shutoff', reason: 'Destroyed', gracefulShutdownRequested: true });
  assert.ok(isFinal(killed));
});

test('a guest reboot under -no-reboot (rebootPolicy Terminate) ends as a power-off does: Shutoff/Shutdown, the VMI Succeeded', () => {
  const resetting = apply([['RESUME'], ['SHUTDOWN', { guest: true, reason: 'guest-reset' }]]);
  assert.deepEqual(resetting, { state: 'Shutdown', reason: 'GuestShutdown' });
  const ended = onQemuExit(resetting, { code: 0, signal: null, killedByUs: false });
  assert.deepEqual(ended, { state: 'Shutoff', reason: 'Shutdown' });
  assert.equal(phaseOf(ended), 'Succeeded');
});

test('a QEMU that dies on its own has crashed; a guest panic is Crashed/Panicked', () => {
  const running = apply([['RESUME']]);
  assert.deepEqual(onQemuExit(running, { code: null, signal: 'SIGKILL', killedByUs: false }), { state: 'Crashed', reason: 'Failed' });
  const panicked = onQmpEvent(running, { event: 'GUEST_PANICKED', data: { action: 'pause' } });
  assert.deepEqual(panicked, { state: 'Crashed', reason: 'Panicked' });
  assert.equal(INITIAL_DOMAIN.state, 'NoState');
});

test('KVM when it works, emulation only where the cluster allows it', async () => {
  const { chooseAccelerator, AcceleratorError } = await import('../../src/lib/kvm.ts');
  assert.equal(chooseAccelerator(true, false), 'kvm');
  assert.equal(chooseAccelerator(true, true), 'kvm');
  assert.equal(chooseAccelerator(false, true), 'tcg');
  assert.throws(
    () => chooseAccelerator(false, false),
    (e: unknown) => e instanceof AcceleratorError && /useEmulation/.test((e as Error).message),
  );
});
