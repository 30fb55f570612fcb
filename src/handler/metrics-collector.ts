// virt-handler's metrics registry: at each scrape it asks the launcher of every
// VMI on this node for a stats snapshot (one request in flight per VMI, each
// scrape waiting at most `timeoutMs` for it: a VMI that does not answer in time
// is reported with its last answer, and one that never answered is left out)
// and builds every per-VMI family afresh from the answers of the VMIs running
// here now, so a VMI that went away has no series left. Beside them: the console
// and VNC connections open through this handler, and what every component serves.
import type { Registry } from 'prom-client';
import type { VirtualMachineInstance } from '../api/types.ts';
import type { DomainStats } from '../contract/launcher-protocol.ts';
import type { InformerCache } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { componentMetrics, registerFamily, SampleFamily, sharedCollection, type ComponentMetrics } from '../lib/metrics.ts';
import { connectionSamples, mergeSamples, VMI_FAMILIES, vmiSamples, type VmiFamilyKey, type VmiSamples } from './metrics.ts';
import type { LauncherConnection } from './virt-handler.ts';

/**
 * A scrape's wait for the launchers. With many guests sharing a few cores, a launcher can take
 * longer to answer than a scraper waits (the scrape must return within a second at 30 VMIs);
 * its answer still arrives and serves the next scrape.
 */
export const STATS_TIMEOUT_MS = 700;

export interface OpenStream {
  kind: 'console' | 'vnc';
  namespace: string;
  name: string;
}

export interface HandlerMetricsDeps {
  node: string;
  vmis: InformerCache<VirtualMachineInstance>;
  /** The open connection to a VMI's launcher on this node; throws when there is none. */
  launcherOf(namespace: string, name: string): { connection: Pick<LauncherConnection, 'request'> };
  /** The console and VNC streams open now. */
  openStreams(): readonly OpenStream[];
  log: Logger;
  timeoutMs?: number;
  /** A registry of componentMetrics('virt-handler') to add to; made here when absent. */
  base?: ComponentMetrics;
}

export class HandlerMetrics {
  readonly registry: Registry;
  readonly component: ComponentMetrics;
  readonly #deps: HandlerMetricsDeps;
  /** Each VMI's stats request still unanswered, by key: a scrape joins it instead of sending another. */
  readonly #inFlight = new Map<string, Promise<DomainStats>>();
  /** Each VMI's last answer, by key; dropped once the VMI no longer runs here. */
  readonly #lastAnswer = new Map<string, DomainStats>();

  constructor(deps: HandlerMetricsDeps) {
    this.#deps = deps;
    this.component = deps.base ?? componentMetrics('virt-handler');
    this.registry = this.component.registry;
    const snapshot = sharedCollection(() => this.collect());
    for (const [key, family] of Object.entries(VMI_FAMILIES) as [VmiFamilyKey, (typeof VMI_FAMILIES)[VmiFamilyKey]][]) {
      registerFamily(this.registry, new SampleFamily({ ...family, collect: async () => (await snapshot())[key] ?? [] }));
    }
    for (const kind of ['console', 'vnc'] as const) {
      registerFamily(
        this.registry,
        new SampleFamily({
          name: `kubevirt_${kind}_active_connections`,
          help: `Amount of active ${kind === 'vnc' ? 'VNC' : 'Console'} connections, broken down by namespace and vmi name.`,
          type: 'gauge',
          collect: () => connectionSamples(deps.openStreams().filter((s) => s.kind === kind)),
        }),
      );
    }
  }

  /** The samples of every VMI on this node that answered in time. */
  async collect(): Promise<VmiSamples> {
    const vmis = this.#deps.vmis.list().filter((vmi) => vmi.status?.nodeName === this.#deps.node && vmi.status?.phase === 'Running');
    const running = new Set(vmis.map((vmi) => `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`));
    for (const key of this.#lastAnswer.keys()) if (!running.has(key)) this.#lastAnswer.delete(key);
    const answers = await Promise.all(vmis.map(async (vmi) => ({ vmi, stats: await this.#statsOf(vmi) })));
    return mergeSamples(answers.flatMap(({ vmi, stats }) => (stats ? [vmiSamples(vmi, stats)] : [])));
  }

  async #statsOf(vmi: VirtualMachineInstance): Promise<DomainStats | undefined> {
    const { namespace = '', name = '' } = vmi.metadata;
    const key = `${namespace}/${name}`;
    let request = this.#inFlight.get(key);
    if (!request) {
      let connection: Pick<LauncherConnection, 'request'>;
      try {
        connection = this.#deps.launcherOf(namespace, name).connection;
      } catch {
        return undefined; // no launcher connected (yet): nothing to report
      }
      request = connection.request<DomainStats>({ command: 'stats' });
      this.#inFlight.set(key, request);
      const settled = () => {
        if (this.#inFlight.get(key) === request) this.#inFlight.delete(key);
      };
      request.then((stats) => {
        this.#lastAnswer.set(key, stats);
        settled();
      }, settled);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#deps.timeoutMs ?? STATS_TIMEOUT_MS);
    });
    try {
      const stats = await Promise.race([request, timeout]);
      if (stats) return stats;
      this.#deps.log.debug('VMI stats not in time; its last answer serves this scrape', { vmi: key });
      return this.#lastAnswer.get(key);
    } catch (error) {
      this.#deps.log.debug('VMI stats failed', { vmi: key, error: (error as Error).message });
      return this.#lastAnswer.get(key);
    } finally {
      clearTimeout(timer);
    }
  }
}
