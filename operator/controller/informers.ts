/**
 * Supervised informers. @kubernetes/client-node's informer stops for good on
 * any error other than 410 Gone (it relists on 410 by itself), and a watch can
 * stall silently (its request has no timeout). So each informer here:
 * - is restarted with exponential backoff (0.5 s .. 10 s) after an error;
 * - is replaced by a fresh one every `relistPeriodMs` (a full relist), the new
 *   cache taking over only once it has listed, so reads never see a half-empty cache;
 * - counts restarts in arena_operator_watch_restarts_total.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObj } from './kube.js';
import type { OperatorMetrics } from './metrics.js';

type Inf = k8s.Informer<KubeObj> & k8s.ObjectCache<KubeObj> & { latestResourceVersion?: () => string };

export interface InformerOptions {
  name: string;
  kc: k8s.KubeConfig;
  path: string;
  list: () => Promise<k8s.KubernetesListObject<KubeObj>>;
  labelSelector?: string;
  /** Called for every add, update and delete (after the cache is updated). */
  onEvent: (obj: KubeObj, type: 'add' | 'update' | 'delete') => void;
  relistPeriodMs: number;
  metrics: OperatorMetrics;
  log: Logger;
}

export class SupervisedInformer {
  private current?: Inf;
  private synced = false;
  private stopped = false;
  private failures = 0;
  private restartTimer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private syncWaiters: (() => void)[] = [];

  constructor(private readonly o: InformerOptions) {}

  /** Start and resolve once the first list has completed (WaitForCacheSync). */
  async start(): Promise<void> {
    this.spawn('start');
    this.relistTimer = setInterval(() => this.spawn('relist'), this.o.relistPeriodMs);
    this.relistTimer.unref();
    if (!this.synced) await new Promise<void>((r) => this.syncWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.relistTimer);
    void this.current?.stop().catch(() => undefined);
    for (const w of this.syncWaiters.splice(0)) w();
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(name: string, namespace?: string): KubeObj | undefined {
    return this.current?.get(name, namespace);
  }

  list(namespace?: string): readonly KubeObj[] {
    return this.current?.list(namespace) ?? [];
  }

  /** Create a fresh informer; it replaces the current one once it has listed. */
  private spawn(reason: 'start' | 'error' | 'relist'): void {
    if (this.stopped) return;
    if (reason !== 'start') this.o.metrics.watchRestarts.inc({ resource: this.o.name, reason });
    const inf = k8s.makeInformer(this.o.kc, this.o.path, this.o.list, this.o.labelSelector) as Inf;
    let active = false; // events are forwarded only once this informer serves reads
    const forward = (type: 'add' | 'update' | 'delete') => (obj: KubeObj) => {
      if (active || this.current === undefined) this.o.onEvent(obj, type);
    };
    inf.on('add', forward('add'));
    inf.on('update', forward('update'));
    inf.on('delete', forward('delete'));
    inf.on('error', (err: unknown) => {
      if (this.stopped || (inf !== this.current && active)) return;
      this.o.log.warn({ resource: this.o.name, err: errText(err) }, 'watch failed; restarting informer with backoff');
      void inf.stop().catch(() => undefined);
      this.scheduleRestart();
    });
    // start() resolves once the list is done and the watch is open (or after an error it reported).
    inf.start().then(
      () => this.takeOver(inf, () => (active = true)),
      (err: unknown) => {
        this.o.log.warn({ resource: this.o.name, err: errText(err) }, 'informer start failed; retrying with backoff');
        this.scheduleRestart();
      },
    );
  }

  /** Make `inf` the current informer once it has listed (resourceVersion known). */
  private takeOver(inf: Inf, activate: () => void): void {
    if (this.stopped || inf === this.current) return;
    if ((inf.latestResourceVersion?.() ?? '') === '') return;
    const old = this.current;
    this.current = inf;
    activate();
    this.failures = 0;
    if (old) void old.stop().catch(() => undefined);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    // Replay the cache so owners of everything listed are reconciled (a relist is a resync).
    for (const obj of inf.list()) this.o.onEvent(obj, 'add');
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    const delay = Math.min(10_000, 500 * 2 ** this.failures++);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.spawn('error');
    }, delay);
    this.restartTimer.unref();
  }
}

export function errText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object') return JSON.stringify(err).slice(0, 300);
  return String(err);
}
