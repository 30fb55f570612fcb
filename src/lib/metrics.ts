// Prometheus metrics every component serves, with upstream's names: the
// version (kubevirt_info), the API client's requests and latencies
// (kubevirt_rest_client_*), readiness and leadership. Also the pieces the
// components build theirs from: a family whose samples (and label names) are
// computed afresh at each scrape, so nothing stale outlives the object it
// describes, and a once-per-scrape memo for a collection several families share.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { setRequestObserver, type RequestRecord } from './raw-request.ts';
import { versionInfo } from './version.ts';

export type Labels = Record<string, string>;

/** One sample of a family: its labels and value. */
export interface Sample {
  labels: Labels;
  value: number;
}

export type FamilyType = 'gauge' | 'counter';

/**
 * A metric family whose samples come from `collect` at each scrape, with whatever
 * labels each sample carries (upstream's per-VMI series add `kubernetes_vmi_label_*`
 * labels of their own). prom-client's own metrics fix their label names up front.
 */
export class SampleFamily {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  readonly aggregator = 'sum' as const;
  readonly #collect: () => Promise<readonly Sample[]> | readonly Sample[];

  constructor(options: { name: string; help: string; type: FamilyType; collect: () => Promise<readonly Sample[]> | readonly Sample[] }) {
    this.name = options.name;
    this.help = options.help;
    this.type = options.type;
    this.#collect = options.collect;
  }

  /** What prom-client's registry reads of a metric at a scrape. */
  async get(): Promise<{ name: string; help: string; type: FamilyType; aggregator: 'sum'; values: Sample[] }> {
    const samples = await this.#collect();
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: samples.map((s) => ({ labels: s.labels, value: s.value })),
    };
  }

  /** prom-client's registry clears a metric with reset(); these hold nothing between scrapes. */
  reset(): void {}
}

/** Registers a family on `registry` (its registerMetric is typed for prom-client's own metrics). */
export function registerFamily(registry: Registry, family: SampleFamily): void {
  registry.registerMetric(family as unknown as Parameters<Registry['registerMetric']>[0]);
}

/**
 * `collect` run at most once at a time: callers while one runs share its result, the
 * next call after it settles starts a new one. The families of one scrape ask at the same
 * moment, so they share one collection.
 */
export function sharedCollection<T>(collect: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    if (!running) {
      running = collect().finally(() => {
        running = undefined;
      });
    }
    return running;
  };
}

export type Component = 'virt-api' | 'virt-controller' | 'virt-handler' | 'virt-operator';

/** The metric-name fragment of a component (virt_controller). */
const fragment = (component: Component) => component.replace('-', '_');

/** Buckets of upstream's request latency histogram (those of kube-apiserver's request duration). */
export const REQUEST_LATENCY_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
];

export interface ComponentMetrics {
  registry: Registry;
  /** Sets kubevirt_<component>_ready_status. */
  setReady(ready: boolean): void;
  /** Sets kubevirt_<component>_leading_status (virt-controller and virt-operator). */
  setLeading(leading: boolean): void;
}

/**
 * A registry with what every component serves: kubevirt_info, its readiness (and for the
 * elected components, leadership) and the API client's request count and latency, fed by
 * every request the component's kubeconfig sends (see setRequestObserver).
 */
export function componentMetrics(component: Component, options: { observeRequests?: boolean } = {}): ComponentMetrics {
  const registry = new Registry();
  const info = new Gauge({
    name: 'kubevirt_info',
    help: 'Version information.',
    labelNames: ['goversion', 'kubeversion'],
    registers: [registry],
  });
  const version = versionInfo();
  info.set({ goversion: version.goVersion, kubeversion: version.gitVersion }, 1);
  const ready = new Gauge({
    name: `kubevirt_${fragment(component)}_ready_status`,
    help: readyHelp[component],
    registers: [registry],
  });
  ready.set(0);
  let leading: Gauge | undefined;
  if (component === 'virt-controller' || component === 'virt-operator') {
    leading = new Gauge({
      name: `kubevirt_${fragment(component)}_leading_status`,
      help: `Indication for an operating ${component}.`,
      registers: [registry],
    });
    leading.set(0);
  }
  const requests = new Counter({
    name: 'kubevirt_rest_client_requests_total',
    help: 'Number of HTTP requests, partitioned by status code, method, and host.',
    labelNames: ['code', 'method', 'host', 'resource', 'verb'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'kubevirt_rest_client_request_latency_seconds',
    help: 'Request latency in seconds. Broken down by verb and URL.',
    labelNames: ['verb', 'url'],
    buckets: REQUEST_LATENCY_BUCKETS,
    registers: [registry],
  });
  if (options.observeRequests !== false) {
    setRequestObserver((record) => {
      const labels = requestLabels(record);
      requests.inc(labels.count);
      if (record.seconds !== undefined) latency.observe(labels.latency, record.seconds);
    });
  }
  return {
    registry,
    setReady: (value) => ready.set(value ? 1 : 0),
    setLeading: (value) => leading?.set(value ? 1 : 0),
  };
}

const readyHelp: Record<Component, string> = {
  'virt-api': 'Indication for a virt-api server that is ready to serve requests.',
  'virt-controller': 'Indication for a virt-controller that is ready to take the lead.',
  'virt-handler': 'Indication for a virt-handler that is ready to serve requests.',
  'virt-operator': 'Indication for a virt-operator that is ready to take the lead.',
};

const SEGMENT = '[A-Za-z0-9.\\-]*';
/** Where the resource is in an API path, tried in order, as upstream's client metrics find it. */
const RESOURCE_PATTERNS = [
  `^/api/${SEGMENT}/watch/namespaces/${SEGMENT}/(${SEGMENT})`,
  `^/api/${SEGMENT}/watch/(${SEGMENT})`,
  `^/apis/${SEGMENT}/${SEGMENT}/watch/namespaces/${SEGMENT}/(${SEGMENT})`,
  `^/apis/${SEGMENT}/${SEGMENT}/watch/(${SEGMENT})`,
  `^/api/${SEGMENT}/namespaces/${SEGMENT}/(${SEGMENT})`,
  `^/apis/${SEGMENT}/${SEGMENT}/namespaces/${SEGMENT}/(${SEGMENT})`,
  `^/api/${SEGMENT}/(${SEGMENT})`,
  `^/apis/${SEGMENT}/${SEGMENT}/(${SEGMENT})`,
].map((p) => new RegExp(p));

/** The resource an API path names ("" for none). */
export function resourceOf(path: string): string {
  for (const pattern of RESOURCE_PATTERNS) {
    const match = pattern.exec(path);
    if (match?.[1]) return match[1];
  }
  return '';
}

/** The API verb of a request, as upstream's client metrics name it (LIST, WATCH, GET, CREATE, UPDATE, PATCH, DELETE). */
export function apiVerbOf(method: string, url: URL): string {
  const resource = resourceOf(url.pathname);
  if (!resource) return 'none';
  switch (method) {
    case 'GET':
      if (url.pathname.includes('/watch/') || url.searchParams.get('watch') === 'true') return 'WATCH';
      return url.pathname.endsWith(resource) ? 'LIST' : 'GET';
    case 'PUT':
      return 'UPDATE';
    case 'POST':
      return 'CREATE';
    default:
      return method;
  }
}

/**
 * The URL of a request with the namespace and object name replaced by placeholders and the
 * query left out, as client-go's latency metric reports it: a bounded set of label values.
 */
export function urlTemplate(url: URL): string {
  const parts = url.pathname.split('/');
  const root = parts[1] === 'api' ? 3 : parts[1] === 'apis' ? 4 : parts.length;
  const out = parts.slice(0, root);
  const rest = parts.slice(root);
  if (rest[0] === 'watch') out.push(rest.shift()!);
  if (rest[0] === 'namespaces' && rest.length > 2) {
    out.push(rest.shift()!, '{namespace}');
    rest.shift();
  }
  // What is left is resource, name, subresource.
  for (const [i, segment] of rest.entries()) out.push(i === 1 && segment ? '{name}' : segment);
  return `${url.protocol}//${url.host}${out.join('/')}`;
}

/** The labels of one finished request for the count and for the latency. */
export function requestLabels(record: RequestRecord): { count: Labels; latency: Labels } {
  const url = new URL(record.url);
  const resource = resourceOf(url.pathname);
  return {
    count: {
      code: record.status === undefined ? '<error>' : String(record.status),
      method: record.method,
      host: url.host || 'none',
      resource: resource || 'none',
      verb: resource ? apiVerbOf(record.method, url) : 'none',
    },
    latency: { verb: record.method, url: urlTemplate(url) },
  };
}

/** The text of a registry's metrics and its content type, for a /metrics answer. */
export async function exposition(registry: Registry): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
