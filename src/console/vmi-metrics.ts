// What the console server answers about VMI metrics, shared by the server and
// the page: the series a VM page graphs, the CPU and memory figures of the VM
// list, and the paths they are asked at. Pure.

/** The series of one VMI: CPU in cores, memory in bytes, the rest in bytes per second. */
export const SERIES_KEYS = ['cpu', 'memory', 'networkReceive', 'networkTransmit', 'diskRead', 'diskWrite'] as const;
export type SeriesKey = (typeof SERIES_KEYS)[number];

/** Where the figures come from: the configured Prometheus, or the history the console server keeps itself. */
export type MetricsSource = 'prometheus' | 'console';

/** [unix seconds, value] pairs, oldest first. */
export type Points = [number, number][];

export interface VmiMetrics {
  source: MetricsSource;
  /** The window asked for, ending now. */
  minutes: number;
  series: Record<SeriesKey, Points>;
}

/** The latest CPU (cores) and memory (bytes) use of each running VMI of a namespace that has figures. */
export interface NamespaceUsage {
  source: MetricsSource;
  usage: Record<string, { cpu?: number; memory?: number }>;
}

/** The window the VM page graphs, and the most a request may ask for. */
export const GRAPH_MINUTES = 60;

const METRICS_PREFIX = '/console/v1/namespaces/';
const enc = encodeURIComponent;
export const namespaceUsagePath = (ns: string) => `${METRICS_PREFIX}${enc(ns)}/usage`;
export const vmiMetricsPath = (ns: string, name: string, minutes = GRAPH_MINUTES) =>
  `${METRICS_PREFIX}${enc(ns)}/virtualmachineinstances/${enc(name)}/metrics?minutes=${minutes}`;

const DNS_NAME = '[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?';
const METRICS_PATH = new RegExp(`^/console/v1/namespaces/(${DNS_NAME})/(?:usage|virtualmachineinstances/(${DNS_NAME})/metrics)$`);

/** The namespace (and VMI name) a metrics request is about, or undefined when the path is not a metrics path. */
export function parseMetricsPath(path: string): { namespace: string; name?: string } | undefined {
  const match = METRICS_PATH.exec(path);
  if (!match) return undefined;
  return match[2] === undefined ? { namespace: match[1] } : { namespace: match[1], name: match[2] };
}
