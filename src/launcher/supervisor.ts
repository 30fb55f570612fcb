// Runs one VMI's QEMU: prepares its files, starts it paused, connects QMP,
// keeps the domain status from QMP events and the process exit, and carries
// out lifecycle commands. Exits are reported, never guessed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import { setPriority } from 'node:os';
import type { VirtualMachineInstance } from '../api/types.ts';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../api/constants.ts';
import type { Logger } from '../lib/log.ts';
import { convertVmiToQemu, type ConversionContext, type QemuPlan } from './convert.ts';
import { prepareAll } from './prepare.ts';
import { QmpClient, guestAgentCommand, type MonitorTrace, type QmpEvent } from './qmp.ts';
import { isFinal, type DomainStats, type DomainStatus, type GuestInfo } from '../contract/launcher-protocol.ts';
import { collectDomainStats, collectGuestAgentFigures, GuestLoad, type GuestAgentFigures } from './stats.ts';
import { INITIAL_DOMAIN, onQemuExit, onQmpEvent } from './domain.ts';
import { FilesystemFreezer } from './fsfreeze.ts';
import { MIGRATION_IN_SOCKET, type MigrationOptions, type MigrationOutcome } from '../contract/migration.ts';
import { migrateOut, type Qmp } from './migration.ts';
import { vmiIsPaused } from '../contract/vmi.ts';

/** How often the guest agent is asked for the figures the snapshots carry (filesystems, load). */
const AGENT_FIGURES_PERIOD_MS = 10_000;

export interface SupervisorOptions {
  /** What this node offers the VMI: paths, accelerator, networks. */
  context: (vmi: VirtualMachineInstance) => ConversionContext;
  log: Logger;
  memBalloonStatsPeriod?: number;
  /** Sees the QEMU monitor's traffic, when its debug log is on. */
  monitorTrace?: MonitorTrace;
}

export class Supervisor extends EventEmitter<{ domain: [DomainStatus]; qemuOutput: [string] }> {
  private readonly options: SupervisorOptions;
  private qemu?: ChildProcess;
  private qmp?: QmpClient;
  private plan?: QemuPlan;
  private vmi?: VirtualMachineInstance;
  private starting?: Promise<void>;
  private killedByUs = false;
  /** Each interface's tap, from the node context QEMU was started with. */
  private taps: Record<string, string> = {};
  /** The snapshot being read, if any: one at a time. */
  private statsInFlight?: Promise<DomainStats>;
  /**
   * The guest agent's figures for the snapshots, read apart from them and at most every
   * AGENT_FIGURES_PERIOD_MS: an agent answers at the guest's pace or not at all (a guest without
   * one, or whose agent lacks a command, costs each request its whole deadline), and a scrape
   * must not wait for it.
   */
  private agentFigures: GuestAgentFigures = {};
  private agentFiguresAsked = Number.NEGATIVE_INFINITY;
  private readonly guestLoad = new GuestLoad();
  private graceTimer?: NodeJS.Timeout;
  /** Stops the guest when virt-handler's node lease runs out unrenewed (self-fencing). */
  private fenceTimer?: NodeJS.Timeout;
  /** An ACPI reboot under way: the guest's power-off is to be a reset (libvirt's fake reboot). */
  private acpiRebooting = false;
  /** The outgoing migration under way or last ended, by its ID. */
  private outgoing?: { id: string; outcome: Promise<MigrationOutcome>; cancelRequested: boolean; running: boolean };
  /** The guest runs in software emulation (TCG), not under KVM. */
  private emulated = false;
  /** A migration target whose guest is to run once it has arrived, even when it left its source paused. */
  private resumeOnArrival = false;
  /** The guest's filesystems, frozen and thawed through its agent. */
  readonly filesystems = new FilesystemFreezer(() => {
    if (!this.plan || isFinal(this.status)) throw new Error('the domain is not running');
    return this.plan.sockets.guestAgent;
  });
  status: DomainStatus = INITIAL_DOMAIN;
  /** Resolves with the final status once QEMU has exited. */
  readonly exited: Promise<DomainStatus>;
  private resolveExit!: (status: DomainStatus) => void;

  constructor(options: SupervisorOptions) {
    super();
    this.options = options;
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get sockets(): QemuPlan['sockets'] | undefined {
    return this.plan?.sockets;
  }

  private setStatus(status: DomainStatus) {
    if (status.state === this.status.state && status.reason === this.status.reason) return;
    this.status = status;
    this.options.log.info('domain status changed', { state: status.state, reason: status.reason });
    this.emit('domain', status);
  }

  /** Starts the VMI's QEMU if it is not running yet. Safe to call again. */
  sync(vmi: VirtualMachineInstance): Promise<void> {
    return this.startOnce(vmi, false);
  }

  /** Starts the VMI's QEMU as a migration target, waiting for the guest's state. Safe to call again (and a later sync is a no-op). */
  prepareMigrationTarget(vmi: VirtualMachineInstance, allowPostCopy: boolean): Promise<void> {
    return this.startOnce(vmi, true, allowPostCopy);
  }

  private startOnce(vmi: VirtualMachineInstance, incoming: boolean, allowPostCopy = false): Promise<void> {
    this.starting ??= this.start(vmi, incoming, allowPostCopy).catch((error) => {
      // Refused before QEMU ran (a conversion error, a missing Secret key): the next sync tries again.
      if (!this.qemu) this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  private async start(vmi: VirtualMachineInstance, incoming: boolean, allowPostCopy: boolean): Promise<void> {
    const log = this.options.log;
    this.vmi = vmi;
    const ctx = { ...this.options.context(vmi), ...(incoming ? { incomingMigration: true } : {}) };
    const plan = convertVmiToQemu(vmi, ctx);
    this.plan = plan;
    this.emulated = !ctx.kvm;
    this.taps = Object.fromEntries(
      Object.entries(ctx.interfaces).flatMap(([name, attachment]) => ('tap' in attachment ? [[name, attachment.tap]] : [])),
    );
    await prepareAll(plan.prepare, ctx.workdir);
    log.info('starting QEMU', { accelerator: ctx.kvm ? 'kvm' : 'tcg', argv: plan.argv.join(' ') });
    const qemu = spawn(plan.binary, plan.argv, { env: { ...process.env, ...plan.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.qemu = qemu;
    for (const stream of [qemu.stdout!, qemu.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        for (const line of text.split('\n').filter(Boolean)) {
          log.info('qemu', { output: line });
          this.emit('qemuOutput', line);
        }
      });
    }
    const spawned = new Promise<void>((resolve, reject) => {
      qemu.once('spawn', resolve);
      qemu.once('error', reject);
    });
    // Emulated guests are CPU-hungry: below everything else on the node, so booting many never starves the control plane.
    if (!ctx.kvm) spawned.then(() => setPriority(qemu.pid!, 10)).catch(() => undefined);
    qemu.on('exit', (code, signal) => {
      clearTimeout(this.graceTimer);
      this.qmp?.close();
      const final = onQemuExit(this.status, { code, signal, killedByUs: this.killedByUs });
      log.info('QEMU exited', { code, signal });
      this.setStatus(final);
      this.resolveExit(final);
    });
    const lastOutput: string[] = [];
    this.on('qemuOutput', (line) => {
      lastOutput.push(line);
      if (lastOutput.length > 4) lastOutput.shift();
    });
    await spawned;
    // Upstream's launcher logs this once it sees QEMU's process; its tests look for it.
    log.info(`Found PID for ${vmi.metadata.namespace}_${vmi.metadata.name}: ${qemu.pid}`);
    const qmp = await Promise.race([
      QmpClient.connect(plan.sockets.qmp, undefined, this.options.monitorTrace),
      this.exited.then(() => {
        throw new Error(`QEMU exited while starting: ${lastOutput.join(' / ')}`);
      }),
    ]);
    this.qmp = qmp;
    qmp.on('event', (event: QmpEvent) => {
      if (this.acpiRebooting && (event.event === 'SHUTDOWN' || event.event === 'STOP')) {
        if (event.event === 'SHUTDOWN') void this.finishAcpiReboot();
        return;
      }
      if (event.event === 'MIGRATION' && event.data?.status === 'completed' && this.resumeOnArrival) {
        this.resumeOnArrival = false;
        // Running already when it left a running source; a no-op then.
        qmp.execute('cont').catch((error: Error) => log.warning('cannot resume the guest that arrived', { error: error.message }));
      }
      this.setStatus(onQmpEvent(this.status, event, this.outgoing?.running));
    });
    if (incoming) {
      this.setStatus({ state: 'Paused', reason: 'Migration' });
      // An emulated source pauses its guest for the move (see migrate); one the user paused stays so.
      this.resumeOnArrival = !vmiIsPaused(vmi);
      // Post-copy needs the capability on both ends before the stream starts.
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'events', state: true }, ...(allowPostCopy ? [{ capability: 'postcopy-ram', state: true }] : [])],
      });
      const uri = `unix:${ctx.socketDir}/${MIGRATION_IN_SOCKET}`;
      await qmp.execute('migrate-incoming', { uri });
      log.info('waiting for the incoming migration', { uri });
      return;
    }
    this.setStatus({ state: 'Paused', reason: 'StartingUp' });
    const period = this.options.memBalloonStatsPeriod ?? 10;
    if (vmi.spec.domain.devices?.autoattachMemBalloon !== false && period > 0) {
      await qmp
        .execute('qom-set', { path: '/machine/peripheral/balloon0', property: 'guest-stats-polling-interval', value: period })
        .catch(() => undefined);
    }
    if (vmi.spec.startStrategy === 'Paused') this.setStatus({ state: 'Paused', reason: 'User' });
    else await qmp.execute('cont');
  }

  private requireQmp(): QmpClient {
    if (!this.qmp || isFinal(this.status)) throw new Error('the domain is not running');
    return this.qmp;
  }

  async pause(): Promise<void> {
    await this.requireQmp().execute('stop');
    this.setStatus({ ...this.status, state: 'Paused', reason: 'User' });
  }

  async unpause(): Promise<void> {
    await this.requireQmp().execute('cont');
  }

  async reset(): Promise<void> {
    await this.requireQmp().execute('system_reset');
  }

  /**
   * A reboot from inside the guest, as upstream's: through its agent when one answers, else
   * through ACPI, where the guest's power-off is turned into a reset (libvirt's fake reboot).
   */
  async softReboot(): Promise<void> {
    if (!this.plan) throw new Error('the domain is not running');
    const agent = this.plan.sockets.guestAgent;
    const agentAnswers = await guestAgentCommand(agent, 'guest-ping', 1000).then(
      () => true,
      () => false,
    );
    if (agentAnswers) {
      await guestAgentCommand(agent, 'guest-shutdown', 3000, { mode: 'reboot' }).catch((error: Error) => {
        // The agent goes away mid-reply when the guest reboots at once.
        if (!/closed|ECONNRESET|did not answer/.test(error.message)) throw new Error(`soft reboot failed: ${error.message}`);
      });
      return;
    }
    if (this.vmi?.spec.domain.features?.acpi?.enabled === false) {
      throw new Error('VMI neither have the agent connected nor the ACPI feature enabled');
    }
    const qmp = this.requireQmp();
    // Paused instead of gone when the guest powers off, so that it can be reset and go on.
    await qmp.execute('set-action', { shutdown: 'pause' });
    this.acpiRebooting = true;
    this.options.log.info('soft reboot through ACPI: the guest agent does not answer');
    await qmp.execute('system_powerdown');
  }

  private async finishAcpiReboot(): Promise<void> {
    const qmp = this.requireQmp();
    try {
      await qmp.execute('system_reset');
      await qmp.execute('cont');
    } finally {
      this.acpiRebooting = false;
      await qmp.execute('set-action', { shutdown: 'poweroff' }).catch(() => undefined);
    }
  }

  /**
   * ACPI power-off, then a kill when the grace period (the VMI's, unless given)
   * runs out. Resolves when QEMU has exited.
   */
  async shutdown(gracePeriodSeconds?: number): Promise<DomainStatus> {
    if (!this.qemu || isFinal(this.status)) return this.status;
    const grace = gracePeriodSeconds ?? this.vmi?.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
    this.status = { ...this.status, gracefulShutdownRequested: true };
    if (grace <= 0) return this.kill();
    if (this.acpiRebooting) {
      // The power-off asked for now is one: no longer a reboot.
      this.acpiRebooting = false;
      await this.qmp?.execute('set-action', { shutdown: 'poweroff' }).catch(() => undefined);
    }
    this.options.log.info('shutting the guest down (ACPI power button)', { gracePeriodSeconds: grace });
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => {
      this.options.log.info('grace period over: killing QEMU', { gracePeriodSeconds: grace });
      void this.kill();
    }, grace * 1000);
    await this.qmp?.execute('system_powerdown').catch(() => undefined);
    return this.exited;
  }

  /**
   * virt-handler holds its node's lease until `validUntil`: past that with no renewal, the node
   * may be cut off and the VMI restarted elsewhere, so the guest must not run on here.
   */
  extendLease(validUntil: number): void {
    clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(
      () => {
        if (!this.qemu || isFinal(this.status)) return;
        this.options.log.error("virt-handler's node lease ran out unrenewed: stopping the guest (self-fencing)", {
          validUntil: new Date(validUntil).toISOString(),
        });
        void this.kill();
      },
      Math.max(0, validUntil - Date.now()),
    );
    this.fenceTimer.unref();
  }

  async kill(): Promise<DomainStatus> {
    if (!this.qemu || isFinal(this.status)) return this.status;
    this.killedByUs = true;
    this.qemu.kill('SIGKILL');
    return this.exited;
  }

  /**
   * Sends the guest to a migration target. Once it has arrived there QEMU here is told to quit
   * (the domain is Shutoff, Migrated); a failed or cancelled migration leaves the guest running here.
   */
  migrate(options: MigrationOptions): Promise<MigrationOutcome> {
    if (this.outgoing?.id === options.id) return this.outgoing.outcome;
    if (this.outgoing?.running) throw new Error('a migration of this guest is already under way');
    const qmp = this.requireQmp();
    const outgoing = { id: options.id, cancelRequested: false, running: true, outcome: Promise.resolve({} as MigrationOutcome) };
    this.outgoing = outgoing;
    // Under TCG, QEMU loses some of the writes a running guest makes while its memory is copied,
    // and the guest hangs or panics on its target with stale memory. An emulated guest is paused
    // for the move: its downtime is the whole migration, and nothing it wrote is lost.
    const pauseForMove = this.emulated && this.status.state === 'Running';
    const migration = async (): Promise<MigrationOutcome> => {
      const qmpCommand: Qmp = (command, args) => qmp.execute(command, args);
      if (!pauseForMove) return migrateOut(qmpCommand, options, this.options.log, () => outgoing.cancelRequested);
      await qmp.execute('stop');
      this.options.log.info('the guest is paused for its migration (software emulation)');
      return migrateOut(qmpCommand, { ...options, allowPostCopy: false }, this.options.log, () => outgoing.cancelRequested, Date.now());
    };
    outgoing.outcome = migration()
      .catch((error: Error): MigrationOutcome => ({ completed: false, mode: 'PreCopy', failureReason: error.message }))
      .then(async (outcome) => {
        outgoing.running = false;
        // Paused for the move, it runs on here; unless the user paused it meanwhile.
        const pausedByUser = this.status.state === 'Paused' && this.status.reason === 'User';
        if (!outcome.completed && pauseForMove && !pausedByUser) await qmp.execute('cont').catch(() => undefined);
        if (outcome.completed) {
          this.setStatus({ state: 'Shutoff', reason: 'Migrated' });
          await qmp.execute('quit').catch(() => undefined);
        } else if (this.status.state === 'Paused' && this.status.reason === 'Migration') {
          // QEMU runs the guest on after a failed migration; its RESUME may come before or after this.
          this.setStatus({ state: 'Running', reason: 'Unpaused' });
        }
        return outcome;
      });
    return outgoing.outcome;
  }

  async cancelMigration(): Promise<void> {
    if (!this.outgoing?.running) throw new Error('no migration of this guest is under way');
    this.outgoing.cancelRequested = true;
    await this.requireQmp().execute('migrate_cancel');
  }

  /** A snapshot of the domain's figures for virt-handler's metrics; callers while one is read share it. */
  stats(): Promise<DomainStats> {
    const qmp = this.requireQmp();
    const pid = this.qemu?.pid;
    const agent = this.plan?.sockets.guestAgent;
    if (!pid) throw new Error('the domain is not running');
    if (agent && performance.now() - this.agentFiguresAsked >= AGENT_FIGURES_PERIOD_MS) {
      this.agentFiguresAsked = performance.now();
      void collectGuestAgentFigures((command, args) => guestAgentCommand(agent, command, 1000, args), this.guestLoad).then((figures) => {
        this.agentFigures = figures;
      });
    }
    this.statsInFlight ??= collectDomainStats({
      qmp: (command, args) => qmp.execute(command, args),
      agent: this.agentFigures,
      readFile: (path) => readFile(path, 'utf8'),
      pid,
      taps: this.taps,
      running: this.status.state === 'Running',
    }).finally(() => {
      this.statsInFlight = undefined;
    });
    return this.statsInFlight;
  }

  async guestInfo(): Promise<GuestInfo> {
    if (!this.plan) throw new Error('the domain is not running');
    const agent = this.plan.sockets.guestAgent;
    const [os, hostname, users, filesystems, fsFreezeStatus] = await Promise.all([
      guestAgentCommand<GuestInfo['os']>(agent, 'guest-get-osinfo').catch(() => undefined),
      guestAgentCommand<{ 'host-name': string }>(agent, 'guest-get-host-name').catch(() => undefined),
      guestAgentCommand<GuestInfo['users']>(agent, 'guest-get-users').catch(() => undefined),
      guestAgentCommand<GuestInfo['filesystems']>(agent, 'guest-get-fsinfo').catch(() => undefined),
      guestAgentCommand<GuestInfo['fsFreezeStatus']>(agent, 'guest-fsfreeze-status').catch(() => undefined),
    ]);
    if (!os && !hostname && !fsFreezeStatus) throw new Error('the guest agent is not connected');
    return { os, hostname: hostname?.['host-name'], users, filesystems, fsFreezeStatus };
  }
}
