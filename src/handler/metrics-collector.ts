// virt-handler's metrics registry: at each scrape it asks the launcher of every
// VMI on this node for a stats snapshot (one request in flight per VMI, each
// scrape waiting at most `timeoutMs` for it: a VMI that does not answer in time
// is left out of that scrape) and builds every per-VMI family afresh from the
// answers, so a VMI that went away has no series left. Beside them: the console
// and VNC connections open through this handler, and what every component serves.
import type { Registry } from 'prom-client';
import type { VirtualMachineInstance } from '../api/types.ts';
import type { DomainStats } from '../contract/launcher-protocol.ts';
import type { InformerCache } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { componentMetrics, registerFamily, SampleFamily, sharedCollection, type ComponentMetrics } from '../lib/metrics.ts';
import { connectionSamples, mergeSamples, VMI_FAMILIES, vmiSamples, type VmiFamilyKey, type VmiSamples } from './metrics.ts';
import type { LauncherConnection } from './virt-handler.ts';

export const STATS_TIMEOUT_MS = 2000;

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
      request.then(settled, settled);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#deps.timeoutMs ?? STATS_TIMEOUT_MS);
    });
    try {
      const stats = await Promise.race([request, timeout]);
      if (!stats) this.#deps.log.debug('VMI stats not in time; left out of this scrape', { vmi: key });
      return stats;
    } catch (error) {
      this.#deps.log.debug('VMI stats failed', { vmi: key, error: (error as Error).message });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
