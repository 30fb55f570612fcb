// virt-handler's reconcile of the VMIs on its node: it observes a VMI, its
// launcher pod and what it last did (the situation), asks the pure plan
// (./plan.ts) what to do, and carries that out: the thin executor around
// planLauncher, as virt-controller's reconcile is around planVmi.
import type { V1Pod } from '@kubernetes/client-node';
import { jsonEqual } from '../api/json-equal.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import {
  type DomainEvent,
  type DomainStatus,
  type GuestInfo,
  type LauncherCommand,
  upstreamDomainStatus,
} from '../contract/launcher-protocol.ts';
import { apiTimestamp, isEphemeralProvisioningPod, launcherPodsOf, podIsFinal, podIsReady, vmiOwnerOf } from '../contract/vmi.ts';
import { POD_PATHS } from '../contract/launcher-pod.ts';
import type { EventRecorder } from '../lib/events.ts';
import { UpdateExpectations } from '../lib/expectations.ts';
import type { InformerCache } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { runReconciler } from '../lib/reconciler.ts';
import type { MigrationSettings } from '../api/cluster-config.ts';
import { isPendingMigrationTarget, MIGRATION_IN_SOCKET, MIGRATION_OUT_SOCKET, type MigrationOutcome } from '../contract/migration.ts';
import { planMigrationTarget, type TargetAction, type TargetRecord, type TargetSituation } from './migration-target.ts';
import type { WorkQueue } from '../lib/workqueue.ts';
import type { LauncherHost } from './launcher-host.ts';
import { UnsafePathError } from './paths.ts';
import {
  guestInfoIntervalMs,
  LAUNCHER_INIT_TIMEOUT_MS,
  newLauncherRecord,
  planLauncher,
  type LauncherAction,
  type LauncherRecord,
  type LauncherSituation,
} from './plan.ts';

/** An open connection to a launcher's command socket (LauncherClient, or a stand-in in tests). */
export interface LauncherConnection {
  request<T = unknown>(command: LauncherCommand): Promise<T>;
  on(event: 'domain', listener: (event: DomainEvent) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  close(): void;
}

/** This node's ends of migration streams (./migration-proxy.ts, or a stand-in in tests). */
export interface MigrationStreams {
  /** Opens a TLS port on this node that passes the stream to the target pod's MIGRATION_IN_SOCKET. */
  listen(podUid: string, socket: string): Promise<{ port: number; close(): void }>;
  /** Listens on the source pod's MIGRATION_OUT_SOCKET and carries what QEMU sends there to the target's port. */
  forward(podUid: string, socket: string, target: { host: string; port: number }): Promise<{ close(): void }>;
}

/** The API calls virt-handler makes for VMIs. */
export interface HandlerApi {
  /** The VMI as kube-apiserver has it now, or undefined when there is none. */
  readVmi(namespace: string, name: string): Promise<VirtualMachineInstance | undefined>;
  /** Writes the VMI (status included) and returns what was stored. */
  replaceVmi(vmi: VirtualMachineInstance): Promise<VirtualMachineInstance>;
}

export interface VirtHandlerDeps {
  node: string;
  /** VMIs whose kubevirt.io/nodeName is this node. */
  vmis: InformerCache<VirtualMachineInstance>;
  /** VMIs being migrated to this node (their kubevirt.io/migrationTargetNodeName). */
  migrationTargets: InformerCache<VirtualMachineInstance>;
  /** Launcher pods, of every node. */
  pods: InformerCache<V1Pod>;
  /** This virt-handler's pod address: where migration streams to this node arrive. */
  address: string;
  migrations: () => MigrationSettings;
  streams: MigrationStreams;
  api: HandlerApi;
  /** Connects to the command socket of the launcher in the pod of this UID. */
  dial: (podUid: string) => Promise<LauncherConnection>;
  host: LauncherHost;
  /** Whether this node runs guests in software emulation; undefined until the KVM probe has run. */
  emulation: () => boolean | undefined;
  queue: WorkQueue;
  record: EventRecorder;
  log: Logger;
  now?: () => number;
}

export class VirtHandler {
  readonly #deps: VirtHandlerDeps;
  readonly #now: () => number;
  readonly #records = new Map<string, LauncherRecord>();
  readonly #connections = new Map<string, LauncherConnection>();
  readonly #vmiUpdates: UpdateExpectations;
  readonly #targets = new Map<string, TargetRecord>();
  readonly #targetConnections = new Map<string, LauncherConnection>();
  /** Open ends of migration streams, by VMI: the target's port, the source's forwarder. */
  readonly #streams = new Map<string, { close(): void }>();
  /** Until when this handler holds its node's lease: what the launchers may run their guests until. */
  #leaseValidUntil?: number;
  /** Pods on their way out whose image mounts were released without a record of them. */
  readonly #swept = new Set<string>();
  /** VMIs this handler took over as migration target, until its cache shows them on this node. */
  readonly #takenOver = new Map<string, VirtualMachineInstance>();

  constructor(deps: VirtHandlerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#vmiUpdates = new UpdateExpectations(this.#now);
    deps.pods.on('update', (pod) => this.#sweep(pod));
    deps.pods.on('delete', (pod) => this.#swept.delete(pod.metadata?.uid ?? ''));
    for (const verb of ['add', 'update', 'delete'] as const) {
      deps.vmis.on(verb, (vmi) => deps.queue.add(`${vmi.metadata.namespace}/${vmi.metadata.name}`));
      deps.migrationTargets.on(verb, (vmi) => deps.queue.add(`${vmi.metadata.namespace}/${vmi.metadata.name}`));
      deps.pods.on(verb, (pod) => {
        const owner = vmiOwnerOf(pod);
        if (owner && pod.spec?.nodeName === deps.node) deps.queue.add(`${pod.metadata?.namespace}/${owner.name}`);
      });
    }
  }

  run(workers = 16): Promise<void> {
    return runReconciler(this.#deps.queue, workers, this, this.#deps.log, 'VMI');
  }

  /** The open connection to the launcher of a VMI on this node, and its pod's UID. */
  launcherOf(namespace: string, name: string): { connection: LauncherConnection; podUid: string } {
    const key = `${namespace}/${name}`;
    const connection = this.#connections.get(key);
    const record = this.#records.get(key);
    if (!connection || !record) throw new Error(`VMI ${key} has no running launcher on node ${this.#deps.node}`);
    return { connection, podUid: record.podUid };
  }

  /**
   * A launcher pod on this node that ends or is being deleted, and that no record tracks (a
   * failed migration's target, any pod after a restart of this handler), still has the image
   * mounts a handler made in it; they would keep the kubelet from removing its volumes.
   */
  #sweep(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid || pod.spec?.nodeName !== this.#deps.node || this.#swept.has(uid)) return;
    if (!pod.metadata?.deletionTimestamp && !podIsFinal(pod)) return;
    const tracked = [...this.#records.values(), ...this.#targets.values()].some((r) => r.podUid === uid);
    if (tracked) return;
    this.#swept.add(uid);
    this.#deps.host
      .releaseImages(uid)
      .catch((error: Error) =>
        this.#deps.log.warning('cannot release the image mounts of an ending pod', { pod: pod.metadata?.name, error: error.message }),
      );
  }

  /** The node lease was renewed: every launcher hears of it. */
  extendLease(validUntil: number): void {
    this.#leaseValidUntil = validUntil;
    for (const connection of [...this.#connections.values(), ...this.#targetConnections.values()])
      connection.request({ command: 'lease', validUntil }).catch(() => undefined);
  }

  /** The guest agent is asked again at once: an action (a freeze) changed what it answers. */
  askGuestAgain(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const record = this.#records.get(key);
    if (!record) return;
    record.guestAskedAt = undefined;
    this.#deps.queue.add(key);
  }

  /**
   * A plan ends at a connect or a sync, since what follows depends on how it went; the next plan
   * is made at once, not behind every other key in the queue (connect, then sync, then the status).
   */
  async reconcile(key: string): Promise<void> {
    for (let pass = 0; pass < 3; pass++) {
      const situation = await this.#observe(key);
      const actions = planLauncher(situation);
      for (const action of actions) await this.#execute(key, situation, action);
      const last = actions.at(-1)?.type;
      if (last !== 'sync' && !(last === 'connect' && this.#records.get(key)?.connected)) break;
    }
    // Each step of a target's preparation depends on the one before: planned again at once, up to the status write.
    for (let pass = 0; pass < 6; pass++) {
      const situation = this.#observeTarget(key);
      const actions = planMigrationTarget(situation);
      for (const action of actions) await this.#executeTarget(key, situation, action);
      const last = actions.at(-1)?.type;
      if (!last || last === 'writeStatus' || last === 'takeOver' || last === 'releaseTarget') return;
    }
  }

  async #observe(key: string): Promise<LauncherSituation> {
    const [namespace, name] = key.split('/');
    let cached = this.#deps.vmis.get(name, namespace);
    const takenOver = this.#takenOver.get(key);
    if (cached && takenOver && cached.metadata.uid === takenOver.metadata.uid) this.#takenOver.delete(key);
    else if (!cached && takenOver) cached = takenOver;
    const vmi = cached ?? (await this.#vmiOfReadyPod(namespace, name));
    return {
      node: this.#deps.node,
      vmi,
      early: !cached,
      stale: vmi !== undefined && this.#vmiUpdates.stale(key, vmi.metadata.resourceVersion),
      pod: vmi && this.#launcherPodOf(vmi),
      record: this.#records.get(key),
      emulation: this.#deps.emulation(),
      migrations: this.#deps.migrations(),
      now: this.#now(),
    };
  }

  #observeTarget(key: string): TargetSituation {
    const [namespace, name] = key.split('/');
    const vmi = this.#deps.migrationTargets.get(name, namespace) ?? this.#deps.vmis.get(name, namespace);
    const targetPod = vmi?.status?.migrationState?.targetPod;
    const pod =
      vmi && targetPod
        ? launcherPodsOf(vmi, this.#deps.pods.list(namespace)).find(
            (p) => p.metadata?.name === targetPod && p.spec?.nodeName === this.#deps.node && !podIsFinal(p),
          )
        : undefined;
    return { node: this.#deps.node, address: this.#deps.address, vmi, pod, record: this.#targets.get(key), now: this.#now() };
  }

  #launcherPodOf(vmi: VirtualMachineInstance): V1Pod | undefined {
    return launcherPodsOf(vmi, this.#deps.pods.list(vmi.metadata.namespace))
      .filter((p) => p.spec?.nodeName === this.#deps.node && !podIsFinal(p) && !isPendingMigrationTarget(vmi, p))
      .sort((a, b) => String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)))[0];
  }

  /**
   * A VMI whose launcher pod is Ready on this node but which is not Scheduled here yet, read from
   * kube-apiserver (the cache holds only VMIs on this node). virt-controller marks a VMI Scheduled
   * on exactly this signal, so its guest may start while that write is on its way.
   */
  async #vmiOfReadyPod(namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
    const owned = this.#deps.pods
      .list(namespace)
      .find(
        (p) =>
          p.spec?.nodeName === this.#deps.node &&
          !p.metadata?.deletionTimestamp &&
          !isEphemeralProvisioningPod(p) &&
          podIsReady(p) &&
          vmiOwnerOf(p)?.name === name,
      );
    if (!owned) return undefined;
    const vmi = await this.#deps.api.readVmi(namespace, name);
    if (!vmi || vmi.metadata.uid !== vmiOwnerOf(owned)?.uid) return undefined;
    const phase = vmi.status?.phase;
    return phase === 'Scheduling' || (phase === 'Scheduled' && vmi.status?.nodeName === this.#deps.node) ? vmi : undefined;
  }

  async #execute(key: string, situation: LauncherSituation, action: LauncherAction): Promise<void> {
    if (action.type === 'release') return this.#release(key);
    const { host, log, record: recordEvent } = this.#deps;
    const vmi = situation.vmi!;
    const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
    const subject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata };
    const record = this.#records.get(key)!;
    switch (action.type) {
      case 'track':
        this.#records.set(key, newLauncherRecord(action.podUid));
        return;
      case 'releaseImages':
        record.imagesReleased = true;
        return host.releaseImages(record.podUid);
      case 'connect':
        return this.#connect(key, record).catch((error) => {
          // A launcher never reached is given up on once the timeout runs out, whatever the retries' backoff by then.
          if (!record.domain && record.unreachableSince === undefined) {
            record.unreachableSince = this.#now();
            this.#deps.queue.addAfter(key, LAUNCHER_INIT_TIMEOUT_MS);
          }
          // Being deleted, a launcher that no longer answers has ended or is ending: the pod's next
          // status says which, and queues the VMI again. Retrying sooner only fails again.
          if (!action.quiet) throw error;
        });
      case 'shutdown': {
        const connection = this.#connectionOf(key);
        record.shutdownSent = true;
        vmiLog.info('shutting the guest down', { gracePeriodSeconds: action.gracePeriodSeconds });
        recordEvent(subject, action.event.type, action.event.reason, action.event.message);
        // Not awaited: the launcher answers once the guest is down, which may take the whole grace period.
        connection.request({ command: 'shutdown', gracePeriodSeconds: action.gracePeriodSeconds }).catch((error: Error) => {
          vmiLog.warning('shutdown failed; will ask again', { error: error.message });
          record.shutdownSent = false;
          this.#deps.queue.addAfter(key, 1000);
        });
        return;
      }
      case 'sync':
        return this.#sync(key, vmi, situation.pod!, record, vmiLog, subject);
      case 'lowerCpuPriority':
        record.cpuIdle = true;
        try {
          host.lowerCpuPriority(situation.pod!);
        } catch (error) {
          vmiLog.warning("cannot lower the emulated guest's CPU priority", { error: (error as Error).message });
        }
        return;
      case 'askGuestInfo':
        this.#askGuestInfo(key, record);
        return;
      case 'migrate':
        return this.#migrate(key, situation.pod!, record, action, vmiLog);
      case 'cancelMigration':
        record.migration!.cancelSent = true;
        vmiLog.info('cancelling the migration');
        await this.#connectionOf(key).request({ command: 'cancelMigration' });
        return;
      case 'writeStatus': {
        if (action.phase) vmiLog.info('phase changed', { from: action.phase.from, to: action.phase.to, domain: record.domain });
        for (const event of action.events) recordEvent(subject, event.type, event.reason, event.message);
        const written = await this.#deps.api.replaceVmi(action.vmi);
        this.#vmiUpdates.wrote(key, vmi.metadata.resourceVersion, written.metadata.resourceVersion);
        return;
      }
    }
  }

  /** Upstream's virt-handler logs each change of a domain's state or reason, as about the Domain; its tests read that line. */
  #logDomain(key: string, before: DomainStatus | undefined, after: DomainStatus): void {
    const [namespace, name] = key.split('/');
    const [was, is] = [before && upstreamDomainStatus(before), upstreamDomainStatus(after)];
    if (was?.state === is.state && was.reason === is.reason) return;
    const uid = this.#deps.vmis.get(name, namespace)?.metadata.uid;
    this.#deps.log
      .object({ kind: 'Domain', metadata: { namespace, name, uid } })
      .info(`Domain is in state ${is.state} reason ${is.reason}`);
  }

  /** The launcher's connection; it can close between the plan and the step that uses it. */
  #connectionOf(key: string): LauncherConnection {
    const connection = this.#connections.get(key);
    if (!connection) throw new Error('the connection to the launcher closed');
    return connection;
  }

  async #release(key: string): Promise<void> {
    this.#vmiUpdates.forget(key);
    const record = this.#records.get(key);
    if (!record) return;
    this.#records.delete(key);
    this.#connections.get(key)?.close();
    this.#connections.delete(key);
    this.#closeStream(key);
    await this.#deps.host.releaseImages(record.podUid);
  }

  #closeStream(key: string) {
    this.#streams.get(key)?.close();
    this.#streams.delete(key);
  }

  /**
   * Opens this node's end of the stream and asks the launcher to migrate. The launcher answers
   * when the migration has ended, which may take minutes: not awaited, its outcome is recorded
   * for the plan to write.
   */
  async #migrate(
    key: string,
    pod: V1Pod,
    record: LauncherRecord,
    action: Extract<LauncherAction, { type: 'migrate' }>,
    vmiLog: Logger,
  ): Promise<void> {
    const { targetNodeAddress, targetDirectMigrationNodePorts } = action.state;
    const port = Number(Object.keys(targetDirectMigrationNodePorts ?? {})[0]);
    if (!targetNodeAddress || !port) throw new Error('the migration target has not said where to send the guest');
    const connection = this.#connectionOf(key);
    this.#closeStream(key);
    this.#streams.set(key, await this.#deps.streams.forward(pod.metadata!.uid!, MIGRATION_OUT_SOCKET, { host: targetNodeAddress, port }));
    const id = action.options.id;
    record.migration = { id, startedAt: apiTimestamp(new Date(this.#now())), cancelSent: false };
    vmiLog.info('migrating', { target: `${targetNodeAddress}:${port}`, targetNode: action.state.targetNode, block: action.options.block });
    // The URI is the launcher's view: QEMU reaches the forwarder in its own socket directory.
    const uri = `unix:${POD_PATHS.sockets}/${MIGRATION_OUT_SOCKET}`;
    connection
      .request<MigrationOutcome>({ command: 'migrate', options: { ...action.options, uri } })
      .catch((error: Error): MigrationOutcome => ({ completed: false, mode: 'PreCopy', failureReason: error.message }))
      .then((outcome) => {
        if (record.migration?.id !== id) return;
        record.migration.outcome = outcome;
        if (outcome.completed) vmiLog.info('migration completed', { downtimeMs: outcome.downtimeMs, totalTimeMs: outcome.totalTimeMs });
        else vmiLog.warning('migration failed', { reason: outcome.failureReason, aborted: outcome.aborted });
        this.#closeStream(key);
        this.#deps.queue.add(key);
      });
  }

  async #executeTarget(key: string, situation: TargetSituation, action: TargetAction): Promise<void> {
    const { log, host } = this.#deps;
    if (action.type === 'releaseTarget') return this.#releaseTarget(key);
    const vmi = situation.vmi!;
    const vmiLog = log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata });
    if (action.type === 'trackTarget') {
      this.#targets.set(key, { podUid: action.podUid, connected: false, prepared: false });
      return;
    }
    const record = this.#targets.get(key)!;
    switch (action.type) {
      case 'connectTarget': {
        const connection = await this.#deps.dial(record.podUid);
        connection.on('domain', (event) => {
          record.domain = event.domain;
          this.#deps.queue.add(key);
        });
        connection.on('close', () => {
          if (this.#targetConnections.get(key) !== connection) return;
          this.#targetConnections.delete(key);
          record.connected = false;
          this.#deps.queue.addAfter(key, 500);
        });
        this.#targetConnections.set(key, connection);
        record.domain = await connection.request<DomainStatus>({ command: 'watch' });
        if (this.#leaseValidUntil !== undefined) await connection.request({ command: 'lease', validUntil: this.#leaseValidUntil });
        record.connected = true;
        return;
      }
      case 'prepareTarget': {
        const connection = this.#targetConnections.get(key);
        if (!connection) throw new Error('the connection to the target launcher closed');
        try {
          const prepared = await host.prepare(vmi, situation.pod!, record.network);
          record.network = prepared.network;
          record.emulated = !prepared.context.kvm;
          const allowPostCopy = this.#deps.migrations().allowPostCopy;
          const context = { ...prepared.context, leaseValidUntil: this.#leaseValidUntil };
          await connection.request({ command: 'prepareMigrationTarget', vmi, context, allowPostCopy });
          record.prepared = true;
          record.prepareError = undefined;
          vmiLog.info('migration target prepared', { pod: situation.pod?.metadata?.name });
        } catch (error) {
          record.prepareError = (error as Error).message;
          record.retryPrepareAt = this.#now() + 2000;
          this.#deps.queue.addAfter(key, 2000);
          vmiLog.warning('preparing the migration target failed', { error: record.prepareError });
        }
        return;
      }
      case 'listen': {
        this.#closeStream(`${key}#target`);
        const listener = await this.#deps.streams.listen(record.podUid, MIGRATION_IN_SOCKET);
        this.#streams.set(`${key}#target`, listener);
        record.port = listener.port;
        return;
      }
      case 'writeStatus': {
        await this.#deps.api.replaceVmi(action.vmi);
        return;
      }
      case 'takeOver': {
        const written = await this.#deps.api.replaceVmi(action.vmi);
        vmiLog.info('the guest arrived: this node runs the VMI now', { pod: situation.pod?.metadata?.name });
        this.#deps.record(
          { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: vmi.metadata },
          'Normal',
          'Migrated',
          `The VirtualMachineInstance migrated to node ${this.#deps.node}.`,
        );
        // The source's launcher on this node, when the migration stayed on it, is done with.
        await this.#release(key);
        this.#takenOver.set(key, written);
        await this.#releaseTarget(key, true);
        // Its launcher from now on: connected again as any launcher found running (no sync: the guest runs).
        this.#records.set(key, { ...newLauncherRecord(record.podUid), synced: true, network: record.network, emulated: record.emulated });
        this.#vmiUpdates.wrote(key, vmi.metadata.resourceVersion, written.metadata.resourceVersion);
        this.#deps.queue.add(key);
        return;
      }
    }
  }

  /** Forgets a target pod; its image mounts go too unless its launcher becomes the VMI's (a takeover). */
  async #releaseTarget(key: string, keepImages = false): Promise<void> {
    const record = this.#targets.get(key);
    this.#targets.delete(key);
    this.#targetConnections.get(key)?.close();
    this.#targetConnections.delete(key);
    this.#closeStream(`${key}#target`);
    if (record && !keepImages) await this.#deps.host.releaseImages(record.podUid);
  }

  async #connect(key: string, record: LauncherRecord): Promise<void> {
    const { queue } = this.#deps;
    const connection = await this.#deps.dial(record.podUid);
    connection.on('domain', (event) => {
      this.#logDomain(key, record.domain, event.domain);
      record.domain = event.domain;
      queue.add(key);
    });
    connection.on('close', () => {
      if (this.#connections.get(key) !== connection) return;
      this.#connections.delete(key);
      record.connected = false;
      queue.addAfter(key, 500);
    });
    this.#connections.set(key, connection);
    try {
      const domain = await connection.request<DomainStatus>({ command: 'watch' });
      this.#logDomain(key, record.domain, domain);
      record.domain = domain;
      if (this.#leaseValidUntil !== undefined) await connection.request({ command: 'lease', validUntil: this.#leaseValidUntil });
    } catch (error) {
      if (this.#connections.get(key) === connection) this.#connections.delete(key);
      connection.close();
      throw error;
    }
    record.connected = true;
  }

  async #sync(
    key: string,
    vmi: VirtualMachineInstance,
    pod: V1Pod,
    record: LauncherRecord,
    vmiLog: Logger,
    subject: Parameters<EventRecorder>[0],
  ) {
    const { queue, record: recordEvent } = this.#deps;
    try {
      const prepared = await this.#deps.host.prepare(vmi, pod, record.network);
      record.network = prepared.network;
      record.emulated = !prepared.context.kvm;
      const context = { ...prepared.context, leaseValidUntil: this.#leaseValidUntil };
      await this.#connectionOf(key).request({ command: 'sync', vmi, context });
      record.synced = true;
      record.syncError = undefined;
      record.syncBackoffMs = undefined;
      record.retrySyncAt = undefined;
      vmiLog.info('launcher synced');
      recordEvent(subject, 'Normal', 'Created', 'VirtualMachineInstance defined.');
    } catch (error) {
      record.syncError = (error as Error).message.replace(/\/proc\/\d+\/fd\/\d+/g, '<fd>');
      record.syncBackoffMs = Math.min(30_000, (record.syncBackoffMs ?? 500) * 2);
      record.retrySyncAt = this.#now() + record.syncBackoffMs;
      queue.addAfter(key, record.syncBackoffMs);
      vmiLog.warning('sync failed', {
        error: record.syncError,
        unsafePath: error instanceof UnsafePathError,
        retryInMs: record.syncBackoffMs,
      });
      recordEvent(subject, 'Warning', 'SyncFailed', record.syncError);
    }
  }

  /** The agent may take seconds to answer, or never: asked in the background, never holding up the status. */
  #askGuestInfo(key: string, record: LauncherRecord) {
    const { queue } = this.#deps;
    record.guestPending = true;
    record.guestAskedAt = this.#now();
    void Promise.resolve()
      .then(() => this.#connectionOf(key).request<GuestInfo>({ command: 'guestInfo' }))
      .catch(() => undefined)
      .then((guest) => {
        record.guestPending = false;
        const changed = !jsonEqual(guest, record.guest);
        record.guest = guest;
        if (changed) queue.add(key);
        // Measured from the ask, and a timer may fire a millisecond early by Date.now: a little later, so the plan finds the interval over.
        queue.addAfter(key, guestInfoIntervalMs(guest) + 100);
      });
  }
}
