/**
 * Leader election through a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does: acquire when the lease is free or expired
 * (renewTime + leaseDurationSeconds < now), renew every `retryPeriodMs`, and
 * give up (the process should exit) when a renewal has not succeeded within
 * `renewDeadlineMs`. Updates use the lease's resourceVersion (optimistic
 * concurrency), so two candidates cannot both win.
 */
import type { Logger } from 'pino';
import { microTime } from './conditions.js';
import type { Kube, Lease } from './kube.js';
import type { OperatorMetrics } from './metrics.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

const status = (e: unknown) =>
  (e as { code?: number; statusCode?: number })?.code ?? (e as { statusCode?: number })?.statusCode;

export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private stopped = false;
  private lastRenew = 0;

  constructor(
    private readonly kube: Kube,
    private readonly o: LeaderOptions,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
  ) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  /** Try once to acquire or renew. Returns true when we hold the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const { namespace, name } = this.o;
    const lease = await this.kube.getLease(namespace, name);
    const spec: NonNullable<Lease['spec']> = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.round(this.leaseMs / 1000),
      renewTime: microTime(now),
    };
    if (!lease) {
      try {
        await this.kube.createLease(namespace, {
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        });
        return true;
      } catch (e) {
        if (status(e) === 409) return false;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity;
    // renewTime is a metav1.MicroTime string (`2026-12-07T12:00:00.123456Z`); Date.parse reads it to the ms.
    const renewed = lease.spec?.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired =
      (Number.isNaN(renewed) ? 0 : renewed) + (lease.spec?.leaseDurationSeconds ?? 15) * 1000 < now.getTime();
    if (holder && holder !== this.o.identity && !expired) return false;
    const mine = holder === this.o.identity;
    try {
      await this.kube.replaceLease(namespace, name, {
        metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          ...spec,
          // kept as the apiserver stored it (a MicroTime string) while we stay the holder
          acquireTime: mine && lease.spec?.acquireTime ? lease.spec.acquireTime : microTime(now),
          leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      });
      return true;
    } catch (e) {
      if (status(e) === 409) return false; // someone else updated it first
      throw e;
    }
  }

  /** Block until we are the leader. */
  async acquire(): Promise<void> {
    this.log.info(
      { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity },
      'waiting for the leader lease',
    );
    while (!this.stopped) {
      try {
        if (await this.tryAcquireOrRenew()) {
          this.lastRenew = Date.now();
          this.metrics.isLeader.set(1);
          this.log.info({ identity: this.o.identity }, 'became leader');
          return;
        }
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'leader election request failed');
      }
      await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }

  /** Renew until stopped; calls onLost when the lease could not be renewed within the renew deadline. */
  renewLoop(onLost: () => void): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        this.renewing = this.tryAcquireOrRenew();
        if (await this.renewing) this.lastRenew = Date.now();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'lease renewal failed');
      }
      if (Date.now() - this.lastRenew > this.renewDeadlineMs) {
        this.metrics.isLeader.set(0);
        this.log.error({ identity: this.o.identity }, 'lost the leader lease');
        onLost();
        return;
      }
      setTimeout(() => void tick(), this.retryMs).unref();
    };
    setTimeout(() => void tick(), this.retryMs).unref();
  }

  /** A renewal in flight (release waits for it: its write would otherwise race the release's). */
  private renewing?: Promise<boolean>;

  /**
   * Stop renewing and release the lease (holderIdentity cleared) so a standby takes over at once.
   * Waits for a renewal in flight, and tries again (3 times) when the lease changed under it (409).
   */
  async release(): Promise<void> {
    this.stopped = true;
    this.metrics.isLeader.set(0);
    await this.renewing?.catch(() => false);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await this.releaseOnce()) return;
    }
  }

  /** One attempt: true when released (or not ours), false after a conflict. */
  private async releaseOnce(): Promise<boolean> {
    const { namespace, name } = this.o;
    try {
      const lease = await this.kube.getLease(namespace, name);
      if (lease?.spec?.holderIdentity !== this.o.identity) return true;
      await this.kube.replaceLease(namespace, name, {
        metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          leaseDurationSeconds: 1,
          leaseTransitions: lease.spec?.leaseTransitions,
          renewTime: microTime(new Date()),
        },
      });
      return true;
    } catch (e) {
      // a conflict: read again; anything else: best effort, the lease expires on its own
      return status(e) !== 409;
    }
  }
}
