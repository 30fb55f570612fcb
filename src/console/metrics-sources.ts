// Where the console's VMI figures come from, pure: the fixed PromQL templates
// it runs against Prometheus for one namespace (and VMI), and, when there is
// no Prometheus, the history it keeps itself from virt-handler's /metrics
// text. Both give the same series: CPU and memory use, network and disk
// throughput. Only the namespace and name, checked DNS names, are put into a
// query; nothing else the user sends reaches Prometheus.
import type { NamespaceUsage, Points, SeriesKey, VmiMetrics } from './vmi-metrics.ts';

/** A counter shown as its rate, summed over the VMI's interfaces or drives. */
const COUNTERS: Record<Exclude<SeriesKey, 'memory'>, string> = {
  cpu: 'kubevirt_vmi_cpu_usage_seconds_total',
  networkReceive: 'kubevirt_vmi_network_receive_bytes_total',
  networkTransmit: 'kubevirt_vmi_network_transmit_bytes_total',
  diskRead: 'kubevirt_vmi_storage_read_traffic_bytes_total',
  diskWrite: 'kubevirt_vmi_storage_write_traffic_bytes_total',
};
/** Memory in use: what the guest uses (available - usable, from the balloon's statistics), else QEMU's resident memory. */
const MEMORY = {
  available: 'kubevirt_vmi_memory_available_bytes',
  usable: 'kubevirt_vmi_memory_usable_bytes',
  resident: 'kubevirt_vmi_memory_resident_bytes',
};
/** The window a rate is taken over: Prometheus scrapes every 5 s, so it holds several samples. */
const RATE_WINDOW = '1m';
/** The graphs' resolution, as the console's own history samples. */
export const STEP_SECONDS = 15;

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** A PromQL label matcher for a namespace (and VMI); a value that is not a DNS name is refused, not escaped. */
function selector(namespace: string, name?: string): string {
  for (const [field, value] of [
    ['namespace', namespace],
    ['name', name],
  ] as const)
    if (value !== undefined && !DNS_NAME.test(value)) throw new Error(`${field}: ${JSON.stringify(value)} is not a DNS name`);
  return name === undefined ? `{namespace="${namespace}"}` : `{namespace="${namespace}",name="${name}"}`;
}

function seriesQueries(sel: string): Record<SeriesKey, string> {
  const rate = (metric: string) => `sum by (name) (rate(${metric}${sel}[${RATE_WINDOW}]))`;
  return {
    cpu: rate(COUNTERS.cpu),
    memory: `(sum by (name) (${MEMORY.available}${sel} - ${MEMORY.usable}${sel}) > 0) or sum by (name) (${MEMORY.resident}${sel})`,
    networkReceive: rate(COUNTERS.networkReceive),
    networkTransmit: rate(COUNTERS.networkTransmit),
    diskRead: rate(COUNTERS.diskRead),
    diskWrite: rate(COUNTERS.diskWrite),
  };
}

/** The range queries of one VMI's graphs. */
export const vmiQueries = (namespace: string, name: string) => seriesQueries(selector(namespace, name));

/** The instant queries of a namespace's VM list: CPU and memory use by VMI name. */
export function usageQueries(namespace: string): { cpu: string; memory: string } {
  const { cpu, memory } = seriesQueries(selector(namespace));
  return { cpu, memory };
}

export interface PrometheusAnswer {
  status?: string;
  error?: string;
  data?: { resultType?: string; result?: { metric?: Record<string, string>; value?: [number, string]; values?: [number, string][] }[] };
}

/** The result of a Prometheus API answer, or an error with Prometheus' own message. */
function resultOf(answer: PrometheusAnswer) {
  if (answer.status !== 'success') throw new Error(`Prometheus: ${answer.error ?? 'no answer'}`);
  return answer.data?.result ?? [];
}

const finite = (pairs: [number, string][]): Points =>
  pairs.map(([t, v]) => [t, Number(v)] as [number, number]).filter(([, v]) => Number.isFinite(v));

/** A range query's points (its one series, the VMI's), or none. */
export const rangePoints = (answer: PrometheusAnswer): Points => finite(resultOf(answer)[0]?.values ?? []);

/** An instant query's value by VMI name. */
export function valuesByName(answer: PrometheusAnswer): Map<string, number> {
  const out = new Map<string, number>();
  for (const { metric, value } of resultOf(answer)) {
    const [point] = value ? finite([value]) : [];
    if (metric?.name && point) out.set(metric.name, point[1]);
  }
  return out;
}

/** One scrape's readings of a VMI: the counters' totals and the memory gauges, each summed over its series. */
export type Reading = Partial<Record<keyof typeof COUNTERS | keyof typeof MEMORY, number>>;

const FIELD_OF = new Map<string, keyof Reading>([
  ...Object.entries(COUNTERS).map(([field, metric]) => [metric, field as keyof Reading] as const),
  ...Object.entries(MEMORY).map(([field, metric]) => [metric, field as keyof Reading] as const),
]);
const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The readings of every VMI in a Prometheus text exposition (virt-handler's /metrics), keyed `namespace/name`. */
export function readingsOf(exposition: string): Map<string, Reading> {
  const out = new Map<string, Reading>();
  for (const line of exposition.split('\n')) {
    const match = SAMPLE_LINE.exec(line);
    const field = match && FIELD_OF.get(match[1]);
    if (!match || !field) continue;
    const labels = new Map([...(match[2] ?? '').matchAll(LABEL)].map(([, key, value]) => [key, value]));
    const value = Number(match[3]);
    const [namespace, name] = [labels.get('namespace'), labels.get('name')];
    if (!namespace || !name || !Number.isFinite(value)) continue;
    const key = `${namespace}/${name}`;
    const reading = out.get(key) ?? {};
    reading[field] = (reading[field] ?? 0) + value;
    out.set(key, reading);
  }
  return out;
}

type Stamped = { at: number; reading: Reading };

/** A counter's rate between two readings; none across a counter that went back (a new QEMU: the VMI restarted). */
function rateBetween(before: Stamped | undefined, after: Stamped, key: keyof typeof COUNTERS): number | undefined {
  const [from, to] = [before?.reading[key], after.reading[key]];
  if (!before || from === undefined || to === undefined || to < from || after.at <= before.at) return undefined;
  return (to - from) / (after.at - before.at);
}

// A guest that has just loaded its balloon driver can report its whole memory as available: no use is not a reading.
const memoryOf = (r: Reading) =>
  r.available !== undefined && r.usable !== undefined && r.usable < r.available ? r.available - r.usable : r.resident;

/**
 * The last hour (or `keepSeconds`) of readings per VMI, as the console samples them when there is no Prometheus.
 * A VMI's readings age out like any others; once none is left, the VMI is forgotten.
 */
export class VmiHistory {
  readonly #keepSeconds: number;
  readonly #byVmi = new Map<string, Stamped[]>();

  constructor(keepSeconds = 3600) {
    this.#keepSeconds = keepSeconds;
  }

  /** One scrape's readings, taken at `at` (unix seconds). */
  record(at: number, readings: Map<string, Reading>): void {
    for (const [key, reading] of readings) {
      const list = this.#byVmi.get(key) ?? [];
      list.push({ at, reading });
      this.#byVmi.set(key, list);
    }
    for (const [key, list] of this.#byVmi) {
      while (list.length && list[0].at < at - this.#keepSeconds) list.shift();
      if (!list.length) this.#byVmi.delete(key);
    }
  }

  /** The VMI's series over the last `minutes` before `now`: counters as rates between consecutive readings. */
  series(namespace: string, name: string, minutes: number, now: number): VmiMetrics {
    const list = (this.#byVmi.get(`${namespace}/${name}`) ?? []).filter((s) => s.at >= now - minutes * 60);
    const series = { memory: [] as Points } as VmiMetrics['series'];
    for (const key of Object.keys(COUNTERS) as (keyof typeof COUNTERS)[]) series[key] = [];
    list.forEach(({ at, reading }, i) => {
      const memory = memoryOf(reading);
      if (memory !== undefined) series.memory.push([at, memory]);
      for (const key of Object.keys(COUNTERS) as (keyof typeof COUNTERS)[]) {
        const rate = rateBetween(list[i - 1], list[i], key);
        if (rate !== undefined) series[key].push([at, rate]);
      }
    });
    return { source: 'console', minutes, series };
  }

  /** The latest CPU and memory use of each VMI of `namespace` with readings. */
  usage(namespace: string): NamespaceUsage {
    const usage: NamespaceUsage['usage'] = {};
    for (const [key, list] of this.#byVmi) {
      const [ns, name] = key.split('/');
      if (ns !== namespace) continue;
      const last = list[list.length - 1];
      usage[name] = { cpu: rateBetween(list[list.length - 2], last, 'cpu'), memory: memoryOf(last.reading) };
    }
    return { source: 'console', usage };
  }
}
