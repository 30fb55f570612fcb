// The clock concern: the RTC's base and drift handling, the PIT's lost ticks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clock } from '../../src/launcher/convert/clock.ts';
import { ctx, has, part, values, vmi } from '../helpers/convert.ts';

test('UTC, or an offset from it at start, with catch-up and guest tracking', () => {
  assert.deepEqual(part(clock, vmi()), { argv: ['-rtc', 'base=utc'], env: {} });
  const offset = vmi((s) => (s.domain.clock = { utc: { offsetSeconds: 3600 }, timer: { rtc: { tickPolicy: 'catchup', track: 'guest' } } }));
  const p = part(clock, offset);
  assert.ok(has(p, '-rtc', 'base=2026-01-01T01:00:00,clock=vm,driftfix=slew'));
});

test("a time zone is QEMU's local time", () => {
  const tz = part(
    clock,
    vmi((s) => (s.domain.clock = { timezone: 'Europe/Berlin' })),
  );
  assert.ok(has(tz, '-rtc', 'base=localtime'));
  assert.deepEqual(tz.env, { TZ: 'Europe/Berlin' });
});

test("the PIT's lost-tick policy, on KVM only", () => {
  const pit = vmi((s) => (s.domain.clock = { timer: { pit: { tickPolicy: 'catchup' } } }));
  assert.deepEqual(values(part(clock, pit, ctx({ kvm: true })), '-global'), ['kvm-pit.lost_tick_policy=slew']);
  assert.deepEqual(values(part(clock, pit), '-global'), []);
});
