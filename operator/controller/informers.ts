/**
 * Supervised informers. The list-watch cache (operator/kube/informer.ts, on
 * the operator's KubeClient) relists by itself on 410 Gone, but stops for
 * good on any other error (for example when the apiserver restarts), as
 * client-node's did; and although each watch asks the apiserver to end it
 * (timeoutSeconds) and is cut as stalled a minute past that, a relist is the
 * only sure way back to the truth. So each informer here:
 * - is restarted with exponential backoff (0.5 s .. 10 s) after an error;
 * - is replaced by a fresh one every `relistPeriodMs` (a full relist; the first after
 *   `relistOffsetMs`, so the manager can spread its informers' relists over the period), the new
 *   cache taking over only once it has listed, so reads never see a half-empty cache; the new list
 *   is replayed as adds, and what the old cache held that the new one lacks as deletes;
 * - counts restarts in arena_operator_watch_restarts_total;
 * - passes every object through `transform` (when given) before it enters the
 *   cache, from the list and from watch events alike (transform.ts's
 *   `stripForCache`: the cache keeps only what the reconcilers read). ERROR and
 *   BOOKMARK events are not transformed (they carry a Status and a
 *   resourceVersion). A transform that throws leaves the object as it came
 *   (logged), rather than losing it.
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { ListWatch } from '../kube/informer.js';
import type { KindInfo } from './kinds.js';
import type { KubeObj } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import type { CacheTransform } from './transform.js';

type Inf = ListWatch<KubeObj>;

export interface InformerOptions {
  name: string;
  client: KubeClient;
  kind: KindInfo;
  /** Watch one namespace (default: all). */
  namespace?: string;
  labelSelector?: string;
  /** Called for every add, update and delete (after the cache is updated). */
  onEvent: (obj: KubeObj, type: 'add' | 'update' | 'delete') => void;
  relistPeriodMs: number;
  /**
   * When the first relist happens, ms after start (default: one period). The manager spreads its
   * informers over the period, so their relists, each of which holds a second copy of its cache until
   * the new list takes over, never all happen at once.
   */
  relistOffsetMs?: number;
  metrics: OperatorMetrics;
  log: Logger;
  /**
   * Applied to every object before it enters the cache (list items and watch events); what
   * get(), list() and onEvent see. Must keep metadata.name, namespace and resourceVersion.
   * Default: none (objects are cached as the apiserver sends them).
   */
  transform?: CacheTransform;
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
    const relist = () => {
      this.spawn('relist');
      this.relistTimer = setTimeout(relist, this.o.relistPeriodMs);
      this.relistTimer.unref();
    };
    this.relistTimer = setTimeout(relist, this.o.relistOffsetMs ?? this.o.relistPeriodMs);
    this.relistTimer.unref();
    if (!this.synced) await new Promise<void>((r) => this.syncWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    this.current?.stop();
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
    const inf = makeInformer(this.o);
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
      inf.stop();
      this.scheduleRestart();
    });
    // start() resolves once the list is done and the watch is open (or after an error it reported).
    inf.start().then(
      () => this.takeOver(inf, () => (active = true)),
      (err: unknown) => {
        if (this.stopped) return;
        this.o.log.warn({ resource: this.o.name, err: errText(err) }, 'informer start failed; retrying with backoff');
        this.scheduleRestart();
      },
    );
  }

  /** Make `inf` the current informer once it has listed (resourceVersion known). */
  private takeOver(inf: Inf, activate: () => void): void {
    if (this.stopped) {
      inf.stop();
      return;
    }
    if (inf === this.current || inf.latestResourceVersion() === '') return;
    const old = this.current;
    const oldList = old?.list() ?? [];
    this.current = inf;
    activate();
    this.failures = 0;
    old?.stop();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    // Replay the new list as adds (the manager enqueues those that changed, predicates.ts), and
    // what the old cache held that the new list lacks as deletes (deleted while no watch saw it), as
    // client-go's DeltaFIFO Replace does.
    for (const obj of inf.list()) this.o.onEvent(obj, 'add');
    for (const obj of oldList) {
      const now = inf.get(obj.metadata!.name!, obj.metadata?.namespace);
      if (!now || now.metadata?.uid !== obj.metadata?.uid) this.o.onEvent(obj, 'delete');
    }
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

/** A list-watch cache as `o` describes, with `o.transform` (if any) made safe: an object it throws on is cached as it came. */
function makeInformer(o: InformerOptions): Inf {
  const t = o.transform;
  const safe: CacheTransform | undefined =
    t &&
    ((obj) => {
      try {
        return t(obj);
      } catch (err) {
        o.log.warn({ resource: o.name, err: errText(err) }, 'cache transform failed; caching the object unchanged');
        return obj;
      }
    });
  return new ListWatch<KubeObj>(o.client, {
    kind: o.kind,
    namespace: o.namespace,
    labelSelector: o.labelSelector,
    transform: safe,
  });
}

export function errText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object') return JSON.stringify(err).slice(0, 300);
  return String(err);
}
