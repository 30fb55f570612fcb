// The guest's clock: the RTC's base (UTC, an offset from it, or a time zone) and
// how timers catch up on ticks the guest missed.
import type { Concern } from './plan.ts';
import { opts } from './qemu-options.ts';

const PIT_TICK_POLICIES: Record<string, string> = { delay: 'delay', catchup: 'slew', discard: 'discard' };

export const clock: Concern = (vmi, ctx) => {
  const clock = vmi.spec.domain.clock;
  let base = 'utc';
  const env: Record<string, string> = {};
  if (clock?.timezone) {
    // QEMU's localtime is the time zone of its own process.
    base = 'localtime';
    env.TZ = clock.timezone;
  } else if (clock?.utc?.offsetSeconds) {
    base = new Date(ctx.now.getTime() + clock.utc.offsetSeconds * 1000).toISOString().slice(0, 19);
  }
  const rtc = clock?.timer?.rtc;
  const argv = [
    '-rtc',
    opts(`base=${base}`, {
      clock: rtc?.track === 'guest' ? 'vm' : undefined,
      driftfix: rtc?.tickPolicy === 'catchup' ? 'slew' : undefined,
    }),
  ];
  const pitPolicy = PIT_TICK_POLICIES[clock?.timer?.pit?.tickPolicy ?? ''];
  // The PIT's lost-tick policy is the in-kernel PIT's, which only KVM has.
  if (ctx.kvm && pitPolicy) argv.push('-global', `kvm-pit.lost_tick_policy=${pitPolicy}`);
  return { argv, env };
};
