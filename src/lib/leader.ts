// Leader election on a coordination.k8s.io Lease, in client-go's way: one
// holder renews the lease; the others take it over once it has not been
// renewed for the lease duration. A leader that cannot renew in time stops.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from './log.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
}

/** A Lease's MicroTime as kube-apiserver takes it: exactly six fractional digits. */
export const microTime = (d: Date) => d.toISOString().replace('Z', '000Z') as unknown as Date;

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly duration: number;
  private readonly renewDeadline: number;
  private readonly retry: number;
  private readonly options: LeaderElectionOptions;
  private readonly log: Logger;
  private stopped = false;

  constructor(kc: KubeConfig, options: LeaderElectionOptions, log: Logger) {
    this.options = options;
    this.log = log;
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.duration = options.leaseDurationSeconds ?? 15;
    this.renewDeadline = options.renewDeadlineSeconds ?? 10;
    this.retry = options.retryPeriodSeconds ?? 2;
  }

  /** One attempt to take or renew the lease; true when this identity holds it afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    const spec = { holderIdentity: identity, leaseDurationSeconds: this.duration, renewTime: microTime(now) };
    if (!lease) {
      await this.api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } },
      });
      return true;
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const expired = renewed + (lease.spec?.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
    if (this.stopped) return false;
    if (holder && holder !== identity && !expired) return false;
    const takeover = holder !== identity;
    await this.api.replaceNamespacedLease({
      name,
      namespace,
      body: {
        ...lease,
        spec: {
          ...lease.spec,
          ...spec,
          ...(takeover ? { acquireTime: microTime(now), leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 } : {}),
        },
      },
    });
    return true;
  }

  /** Gives the lease up if this identity holds it, so another candidate need not wait for it to expire. */
  async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    this.stopped = true;
    const lease = await this.api.readNamespacedLease({ name, namespace }).catch(() => undefined);
    if (lease?.spec?.holderIdentity !== identity) return;
    await this.api.replaceNamespacedLease({
      name,
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
    });
  }

  /** Resolves once this process leads; then keeps renewing and calls onLost if it cannot. */
  async run(onLost: () => void): Promise<void> {
    const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
    for (;;) {
      const led = await this.tryAcquireOrRenew().catch((error: Error) => {
        this.log.warning('leader election attempt failed', { error: error.message.split('\n')[0] });
        return false;
      });
      if (led) break;
      await sleep(this.retry);
    }
    this.log.info('became the leader', { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity });
    let lastRenew = Date.now();
    const renew = async () => {
      if (this.stopped) return;
      const ok = await this.tryAcquireOrRenew().catch(() => false);
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadline * 1000) {
        this.log.error('lost the leader lease', { lease: `${this.options.namespace}/${this.options.name}` });
        onLost();
        return;
      }
      setTimeout(() => void renew(), this.retry * 1000);
    };
    setTimeout(() => void renew(), this.retry * 1000);
  }
}
