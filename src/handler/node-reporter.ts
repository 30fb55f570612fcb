// virt-handler's node: the heartbeat that keeps launcher pods schedulable here,
// and the KVM probe, run once in the background. A working /dev/kvm is
// advertised as upstream's extended resource, and the node's annotation says
// whether guests here run in software emulation.
import type { ClusterConfig } from '../api/cluster-config.ts';
import { apiErrorMessage } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { cpuModelLabels, heartbeatPatch, kvmCapacityPatch, unschedulablePatch } from './heartbeat.ts';

export interface NodeReporterDeps {
  node: string;
  /** Merge patches of the node's metadata and of its status. */
  patchNode: (body: object) => Promise<unknown>;
  patchNodeStatus: (body: object) => Promise<unknown>;
  cpuLabels: Record<string, string>;
  probeKvm: () => Promise<boolean>;
  /** The CPU models QEMU runs in full under the accelerator. */
  probeCpuModels: (accel: 'kvm' | 'tcg', obsolete: ReadonlySet<string>) => Promise<string[]>;
  readNodeLabels: () => Promise<Record<string, string>>;
  config: () => ClusterConfig;
  log: Logger;
}

export class NodeReporter {
  readonly #deps: NodeReporterDeps;
  #kvmUsable: boolean | undefined;
  #kvmProbe: Promise<boolean> | undefined;
  /** The CPU model labels to write (and stale ones to remove), once QEMU was asked. */
  #modelLabels: Record<string, string | null> = {};
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(deps: NodeReporterDeps) {
    this.#deps = deps;
  }

  /** Whether guests here run in software emulation: known once the KVM probe has run, and following useEmulation. */
  get emulation(): boolean | undefined {
    return this.#kvmUsable === undefined ? undefined : !this.#kvmUsable || this.#deps.config().useEmulation;
  }

  /** Heartbeats now and every `intervalMs`. */
  async heartbeatEvery(intervalMs: number): Promise<void> {
    await this.heartbeat();
    if (!this.#stopped) this.#timer = setInterval(() => void this.heartbeat(), intervalMs);
  }

  /**
   * virt-handler is going away (its pod deleted, the DaemonSet rolling): no launcher pod may land
   * here until a handler runs again. As upstream's, it labels its node unschedulable on the way
   * out, instead of leaving that to the node controller once the heartbeat is stale.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#deps
      .patchNode(unschedulablePatch())
      .then(() => this.#deps.log.info('node marked unschedulable: virt-handler is stopping', { node: this.#deps.node }))
      .catch((error) =>
        this.#deps.log.warning('cannot mark the node unschedulable', { node: this.#deps.node, error: apiErrorMessage(error) }),
      );
  }

  /** Starts the KVM probe; call once the cluster configuration is read, which the emulation mode depends on. */
  probeKvm(): void {
    this.#kvmProbe = this.#deps.probeKvm().then(async (usable) => {
      this.#kvmUsable = usable;
      if (!usable) {
        this.#deps.log.warning(
          'KVM is not usable on this node: guests can run only in software emulation (developerConfiguration.useEmulation)',
          { node: this.#deps.node },
        );
      }
      await this.#deps
        .patchNodeStatus(kvmCapacityPatch(usable))
        .catch((error) => this.#deps.log.warning('cannot advertise the KVM device', { error: apiErrorMessage(error) }));
      await this.#labelCpuModels(this.emulation ? 'tcg' : 'kvm');
      await this.heartbeat();
      return usable;
    });
  }

  /** Asks QEMU which CPU models it offers here; the next heartbeat writes them, and takes off those it no longer offers. */
  async #labelCpuModels(accel: 'kvm' | 'tcg'): Promise<void> {
    try {
      const models = await this.#deps.probeCpuModels(accel, this.#deps.config().obsoleteCpuModels);
      this.#modelLabels = cpuModelLabels(models, await this.#deps.readNodeLabels());
      this.#deps.log.info('CPU models offered', { node: this.#deps.node, accel, models });
    } catch (error) {
      this.#deps.log.warning('cannot list the CPU models; the node gets no model labels', { error: apiErrorMessage(error) });
    }
  }

  async heartbeat(): Promise<void> {
    if (this.#stopped) return;
    await this.#deps
      .patchNode(heartbeatPatch(new Date(), true, { ...this.#deps.cpuLabels, ...this.#modelLabels }, this.emulation))
      .catch((error) => this.#deps.log.warning('heartbeat failed', { node: this.#deps.node, error: apiErrorMessage(error) }));
  }

  /** Whether a guest synced now uses KVM; rejects when the node can run it in neither mode. */
  async useKvm(): Promise<boolean> {
    if (this.#deps.config().useEmulation) return false;
    if (!this.#kvmProbe) throw new Error('virt-handler has not probed KVM yet');
    if (!(await this.#kvmProbe)) {
      throw new Error(
        `KVM is not usable on node ${this.#deps.node} and developerConfiguration.useEmulation is false: enable useEmulation in the KubeVirt CR to run in software emulation`,
      );
    }
    return true;
  }
}
