/**
 * Supervised informers. @kubernetes/client-node's informer stops for good on
 * any error other than 410 Gone (it relists on 410 by itself), and a watch can
 * stall silently (its request has no timeout). So each informer here:
 * - is restarted with exponential backoff (0.5 s .. 10 s) after an error;
 * - is replaced by a fresh one every `relistPeriodMs` (a full relist; the first after
 *   `relistOffsetMs`, so the manager can spread its informers' relists over the period), the new
 *   cache taking over only once it has listed, so reads never see a half-empty cache;
 * - counts restarts in arena_operator_watch_restarts_total;
 * - passes every object through `transform` (when given) before it enters the
 *   cache, from the list and from watch events alike (transform.ts's
 *   `stripForCache`: the cache keeps only what the reconcilers read).
 *
 * client-node's informer (`ListWatch`) has no transform hook: it stores list
 * items as the list function returns them and watch objects as its `Watch`
 * hands them over. So an informer with a transform is the same `ListWatch`
 * `makeInformer` builds, given a list function that maps the items and a
 * `Watch` whose callback maps the object of ADDED, MODIFIED and DELETED events
 * (ERROR and BOOKMARK events pass unchanged: their resourceVersion and 410 code
 * drive the ListWatch). Its cache maps, resourceVersion tracking and relist on
 * 410 Gone stay client-node's own; a transform that throws leaves the object as
 * it came (logged), rather than losing it.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObj } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import type { CacheTransform } from './transform.js';

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
    const oldList = old?.list() ?? [];
    this.current = inf;
    activate();
    this.failures = 0;
    if (old) void old.stop().catch(() => undefined);
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

/** client-node's makeInformer, with `o.transform` (if any) applied to list items and watched objects. */
function makeInformer(o: InformerOptions): Inf {
  const t = o.transform;
  if (!t) return k8s.makeInformer(o.kc, o.path, o.list, o.labelSelector) as Inf;
  // A throwing transform must not lose the object (Watch swallows a callback's exception): cache it as is.
  const safe: CacheTransform = (obj) => {
    try {
      return t(obj);
    } catch (err) {
      o.log.warn({ resource: o.name, err: errText(err) }, 'cache transform failed; caching the object unchanged');
      return obj;
    }
  };
  const list = async () => {
    const l = await o.list();
    return { ...l, items: l.items.map(safe) };
  };
  return new k8s.ListWatch<KubeObj>(o.path, new TransformingWatch(o.kc, safe), list, false, o.labelSelector) as Inf;
}

/** Watch events whose object is a watched object (ERROR carries a Status, BOOKMARK only a resourceVersion). */
const OBJECT_EVENTS = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** client-node's Watch, handing the object of every ADDED, MODIFIED and DELETED event through a transform. */
class TransformingWatch extends k8s.Watch {
  constructor(
    kc: k8s.KubeConfig,
    private readonly transform: CacheTransform,
  ) {
    super(kc);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, obj, watchObj) => callback(phase, OBJECT_EVENTS.has(phase) ? this.transform(obj) : obj, watchObj),
      done,
    );
  }
}

export function errText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object') return JSON.stringify(err).slice(0, 300);
  return String(err);
}
