// The console server's two sources of VMI figures (see ./metrics-sources.ts):
// a Prometheus, asked with fixed queries over HTTP, or virt-handler's /metrics,
// scraped every 15 s into an hour of history kept in memory. Neither is
// reached before the server has checked the user may read the VMI(s).
import { lookup } from 'node:dns/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet, type RequestOptions } from 'node:https';
import type { Logger } from '../lib/log.ts';
import { readText } from '../lib/raw-request.ts';
import {
  rangePoints,
  readingsOf,
  STEP_SECONDS,
  type PrometheusAnswer,
  type Reading,
  usageQueries,
  valuesByName,
  VmiHistory,
  vmiQueries,
} from './metrics-sources.ts';
import { type NamespaceUsage, SERIES_KEYS, type VmiMetrics } from './vmi-metrics.ts';

export interface VmiMetricsSource {
  vmi(namespace: string, name: string, minutes: number): Promise<VmiMetrics>;
  usage(namespace: string): Promise<NamespaceUsage>;
}

const TIMEOUT_MS = 10_000;

/**
 * A GET's status and body, bounded in time. node:http rather than fetch: fetch loads undici,
 * ~17 MiB more memory in a process that needs none of it (see hack/bundle.ts).
 */
export function getText(url: URL, options: RequestOptions = {}): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const request = get(url, { timeout: TIMEOUT_MS, ...options }, (response) => {
      readText(response).then((body) => resolve({ code: response.statusCode ?? 502, body }), reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** Prometheus' HTTP API at `url` (e.g. http://prometheus.monitoring.svc:9090). */
export function prometheusSource(url: string): VmiMetricsSource {
  const ask = async (path: string, params: Record<string, string>): Promise<PrometheusAnswer> => {
    const { code, body } = await getText(new URL(`${path}?${new URLSearchParams(params)}`, url));
    try {
      return JSON.parse(body) as PrometheusAnswer;
    } catch {
      throw new Error(`Prometheus answered HTTP ${code}: ${body.slice(0, 200)}`);
    }
  };
  return {
    async vmi(namespace, name, minutes) {
      const end = Math.floor(Date.now() / 1000);
      const range = { start: String(end - minutes * 60), end: String(end), step: String(STEP_SECONDS) };
      const queries = vmiQueries(namespace, name);
      const answers = await Promise.all(SERIES_KEYS.map((key) => ask('/api/v1/query_range', { ...range, query: queries[key] })));
      const series = Object.fromEntries(SERIES_KEYS.map((key, i) => [key, rangePoints(answers[i])])) as VmiMetrics['series'];
      return { source: 'prometheus', minutes, series };
    },
    async usage(namespace) {
      const { cpu, memory } = usageQueries(namespace);
      const [cpuByName, memoryByName] = (
        await Promise.all([ask('/api/v1/query', { query: cpu }), ask('/api/v1/query', { query: memory })])
      ).map(valuesByName);
      const usage: NamespaceUsage['usage'] = {};
      for (const name of new Set([...cpuByName.keys(), ...memoryByName.keys()]))
        usage[name] = { cpu: cpuByName.get(name), memory: memoryByName.get(name) };
      return { source: 'prometheus', usage };
    },
  };
}

export interface HandlerScraperOptions {
  /** The headless Service of virt-handler's metrics port, host:port: its DNS name lists every ready virt-handler pod. */
  handlers: string;
  /** The CA of virt-handler's serving certificate (kubevirt-ca), and the name the certificate carries. */
  ca: () => Buffer;
  serverName: string;
  log: Logger;
}

/** virt-handler's /metrics of every node, scraped every STEP_SECONDS into the console's own hour of history. */
export class HandlerScraper implements VmiMetricsSource {
  readonly #options: HandlerScraperOptions;
  readonly #history = new VmiHistory();
  #timer?: ReturnType<typeof setInterval>;

  constructor(options: HandlerScraperOptions) {
    this.#options = options;
  }

  start(): void {
    void this.scrape();
    this.#timer = setInterval(() => void this.scrape(), STEP_SECONDS * 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round: every virt-handler's readings, recorded at one time; a handler that does not answer is logged and skipped. */
  async scrape(): Promise<void> {
    const at = Math.floor(Date.now() / 1000);
    const { handlers, log } = this.#options;
    const separator = handlers.lastIndexOf(':');
    const [host, port] = [handlers.slice(0, separator), Number(handlers.slice(separator + 1))];
    let addresses: string[];
    try {
      addresses = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (error) {
      return log.warning('virt-handler addresses not found', { host, error: (error as Error).message });
    }
    const readings = new Map<string, Reading>();
    await Promise.all(
      addresses.map(async (address) => {
        try {
          for (const [key, reading] of readingsOf(await this.#metricsText(address, port))) readings.set(key, reading);
        } catch (error) {
          log.warning('virt-handler metrics not read', { address, error: (error as Error).message });
        }
      }),
    );
    this.#history.record(at, readings);
  }

  async #metricsText(address: string, port: number): Promise<string> {
    const host = address.includes(':') ? `[${address}]` : address;
    const { code, body } = await getText(new URL(`https://${host}:${port}/metrics`), {
      ca: this.#options.ca(),
      servername: this.#options.serverName,
    });
    if (code !== 200) throw new Error(`HTTP ${code}`);
    return body;
  }

  async vmi(namespace: string, name: string, minutes: number): Promise<VmiMetrics> {
    return this.#history.series(namespace, name, minutes, Math.floor(Date.now() / 1000));
  }

  async usage(namespace: string): Promise<NamespaceUsage> {
    return this.#history.usage(namespace);
  }
}
