// Whether the launcher logs its QEMU monitor traffic. Upstream's launcher hands log filters to
// libvirt, whose monitor category logs every QMP message at debug level; kubevirt-ts's launcher
// speaks QMP itself, so it reads the same settings the same way and logs the same messages:
// a VMI set up for upstream's debug logs gets them here too.
import { DEBUG_VERBOSITY_THRESHOLD } from '../contract/launcher-pod.ts';
import type { Logger } from '../lib/log.ts';
import type { MonitorTrace } from './qmp.ts';

/** libvirt's name for its QEMU monitor code, which the filters are matched against. */
const MONITOR_CATEGORY = 'qemu.qemu_monitor';
/** libvirt's debug priority: a filter at this level lets a category's debug messages through. */
const DEBUG_PRIORITY = 1;
/** The verbosity the debug switch stands for when no higher one is set (upstream's threshold + 5). */
const DEBUG_SWITCH_VERBOSITY = DEBUG_VERBOSITY_THRESHOLD + 5;
/**
 * Upstream's filters for the two verbosities just past the threshold keep the monitor at
 * warnings; from this one on they leave it at debug.
 */
const MONITOR_DEBUG_VERBOSITY = DEBUG_VERBOSITY_THRESHOLD + 2;

export interface LauncherLogSettings {
  /** The VMI's libvirt log filters (its annotation), if any. */
  filters?: string;
  /** VIRT_LAUNCHER_LOG_VERBOSITY as set, if set. */
  verbosity?: string;
  /** Whether LIBVIRT_DEBUG_LOGS is set. */
  debugSwitch: boolean;
}

/** A glob with `*` as its only wildcard (libvirt's filters use no other), as a regular expression over the whole name. */
const globPattern = (glob: string) =>
  new RegExp(
    `^${glob
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

/** The priority libvirt filters give a category: the first filter naming it (a substring or a glob) decides. */
export function filterPriority(filters: string, category: string): number | undefined {
  for (const filter of filters.trim().split(/\s+/)) {
    const match = /^(\d):\+?(.+)$/.exec(filter);
    if (!match) continue;
    const name = match[2];
    if (name.includes('*') ? globPattern(name).test(category) : category.includes(name)) return Number(match[1]);
  }
  return undefined;
}

/** Whether the monitor's messages are logged, under upstream's rules for the settings. */
export function monitorTrafficLogged(settings: LauncherLogSettings): boolean {
  if (settings.filters) return filterPriority(settings.filters, MONITOR_CATEGORY) === DEBUG_PRIORITY;
  const set = settings.verbosity === undefined ? Number.NaN : Number(settings.verbosity);
  let verbosity = Number.isInteger(set) ? set : -1;
  if (verbosity < DEBUG_VERBOSITY_THRESHOLD && settings.debugSwitch) verbosity = DEBUG_SWITCH_VERBOSITY;
  return verbosity >= MONITOR_DEBUG_VERBOSITY;
}

/**
 * Logs monitor traffic under the names libvirt's monitor gives it, at debug level, with the
 * subcomponent upstream's launcher gives libvirt's records: the layer that speaks to QEMU's
 * monitor, which is this client here. Tools and tests that follow a guest through those records
 * find them the same.
 */
export function monitorTraceLog(log: Logger): MonitorTrace {
  const names = {
    send: ['QEMU_MONITOR_SEND_MSG', 'msg'],
    reply: ['QEMU_MONITOR_RECV_REPLY', 'reply'],
    event: ['QEMU_MONITOR_RECV_EVENT', 'event'],
  };
  return (direction, msg) => {
    const [probe, field] = names[direction];
    log.debug(`${probe}: ${field}=${JSON.stringify(msg)}`);
  };
}
