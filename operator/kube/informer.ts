/**
 * A list-watch cache of one kind, as client-go's reflector and client-node's
 * ListWatch keep one, on `KubeClient`:
 *
 * - list (paginated, with the label selector) into a cache keyed by
 *   namespace/name, then watch from the list's resourceVersion with
 *   allowWatchBookmarks and a timeoutSeconds drawn from 5..10 min (as
 *   client-go does, so watches of many informers do not all end at once);
 * - when the apiserver ends a watch, watch again from the last resourceVersion
 *   seen (of an event or a bookmark);
 * - on 410 Gone (the HTTP status, or an ERROR event with code 410: that
 *   resourceVersion is no longer in the apiserver's window) list again; the
 *   new list replaces the cache: objects it lacks are emitted as deletes, new
 *   ones as adds, changed ones (another resourceVersion) as updates;
 * - on any other error (a network error, an ERROR event, a watch cut as stalled)
 *   emit `error` and stop: the owner (operator/controller/informers.ts)
 *   restarts it with backoff.
 *
 * Every object from a list or an ADDED / MODIFIED / DELETED event passes
 * through `transform` (when given) before it enters the cache or reaches a
 * listener. List items get the kind's apiVersion and kind (the apiserver leaves
 * them out). A listener's exception does not stop the informer.
 */
import type { KindInfo } from '../controller/kinds.js';
import { KubeApiError, resourcePath, type KubeClient, type KubeObject, type WatchEventType } from './client.js';

export type InformerEvent = 'add' | 'update' | 'delete' | 'error';

export interface ListWatchOptions<T extends KubeObject> {
  kind: KindInfo;
  /** One namespace; all when undefined. */
  namespace?: string;
  labelSelector?: string;
  /** Applied to every listed and watched object before it enters the cache. Must keep name, namespace and resourceVersion. */
  transform?: (obj: T) => T;
  /** Objects per list request (limit/continue; default 500). */
  pageSize?: number;
  /** The timeoutSeconds of the next watch (default: uniformly 300..600). */
  watchTimeoutSeconds?: () => number;
}

type Listener<T> = (obj: T) => void;
type ErrorListener = (err: unknown) => void;

/** A list-watch cache of one kind (see the file comment). */
export class ListWatch<T extends KubeObject = KubeObject> {
  private objects = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  private stopped = true;
  private abort?: AbortController;
  private readonly listeners = {
    add: [] as Listener<T>[],
    update: [] as Listener<T>[],
    delete: [] as Listener<T>[],
    error: [] as ErrorListener[],
  };
  private listCount = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly o: ListWatchOptions<T>,
  ) {}

  /** Call `cb` for every add, update or delete (after the cache is updated), or error (the informer has stopped). */
  on(event: 'add' | 'update' | 'delete', cb: Listener<T>): void;
  on(event: 'error', cb: ErrorListener): void;
  on(event: InformerEvent, cb: Listener<T> | ErrorListener): void {
    (this.listeners[event] as (Listener<T> | ErrorListener)[]).push(cb);
  }

  /**
   * List, then open the watch. Resolves once the list is in the cache and the apiserver has accepted the
   * watch; the informer then runs until stop() or an error (emitted as `error`).
   * @throws KubeApiError or Error when the list or the first watch fails (nothing is emitted then).
   */
  async start(): Promise<void> {
    this.stopped = false;
    await this.relist();
    await new Promise<void>((resolve, reject) => void this.run(resolve, reject));
  }

  /** Stop watching (the cache stays as it is). */
  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /** The cached object `namespace/name` (`name` for a cluster-scoped kind). */
  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  /** The cached objects, of one namespace or all. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.objects.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const m of this.objects.values()) out.push(...m.values());
    return out;
  }

  /** How many lists this informer has done: its first, and one after each 410 Gone. */
  get lists(): number {
    return this.listCount;
  }

  /** The resourceVersion the cache is at ('' before the first list). */
  latestResourceVersion(): string {
    return this.resourceVersion;
  }

  private emit(event: 'add' | 'update' | 'delete', obj: T): void {
    for (const cb of this.listeners[event]) {
      try {
        cb(obj);
      } catch {
        // a listener's exception does not stop the informer
      }
    }
  }

  private transform(obj: T): T {
    return this.o.transform ? this.o.transform(obj) : obj;
  }

  /** List and replace the cache, emitting the differences. */
  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.client.list<T>(this.o.kind, {
      namespace: this.o.namespace,
      labelSelector: this.o.labelSelector,
      pageSize: this.o.pageSize,
    });
    this.listCount++;
    const old = this.objects;
    this.objects = new Map();
    const changes: ['add' | 'update', T][] = [];
    for (const raw of items) {
      const obj = this.transform(raw);
      const prev = old.get(ns(obj))?.get(name(obj));
      this.put(obj);
      if (!prev) changes.push(['add', obj]);
      else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) changes.push(['update', obj]);
    }
    this.resourceVersion = resourceVersion;
    for (const m of old.values())
      for (const obj of m.values()) if (!this.get(name(obj), ns(obj))) this.emit('delete', obj);
    for (const [type, obj] of changes) this.emit(type, obj);
  }

  private put(obj: T): void {
    let m = this.objects.get(ns(obj));
    if (!m) this.objects.set(ns(obj), (m = new Map()));
    m.set(name(obj), obj);
  }

  /** Apply one watch event to the cache. @throws KubeApiError for an ERROR event (410: relist). */
  private onEvent(type: WatchEventType, object: any): void {
    if (type === 'ERROR') {
      const s = (object ?? {}) as { code?: number; message?: string };
      throw new KubeApiError(s.code ?? 500, s.message ?? 'watch ERROR event', object);
    }
    const rv = (object as KubeObject | undefined)?.metadata?.resourceVersion;
    if (type === 'ADDED' || type === 'MODIFIED') {
      const obj = this.transform(object as T);
      const prev = this.get(name(obj), ns(obj));
      if (!prev) {
        this.put(obj);
        this.emit('add', obj);
      } else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
        this.put(obj);
        this.emit('update', obj);
      }
    } else if (type === 'DELETED') {
      const obj = this.transform(object as T);
      const m = this.objects.get(ns(obj));
      if (m?.delete(name(obj))) {
        if (m.size === 0) this.objects.delete(ns(obj));
        this.emit('delete', obj);
      }
    }
    if (rv) this.resourceVersion = rv;
  }

  /**
   * Watch until stopped: again from the last resourceVersion when the apiserver ends a watch, after a
   * relist on 410. `opened` / `failed` settle start() (the first watch); later errors are emitted.
   */
  private async run(opened: () => void, failed: (err: unknown) => void): Promise<void> {
    let first = true;
    const open = () => {
      if (first) opened();
      first = false;
    };
    while (!this.stopped) {
      const ac = new AbortController();
      this.abort = ac;
      const began = Date.now();
      try {
        const timeoutSeconds = this.o.watchTimeoutSeconds?.() ?? Math.floor(300 * (1 + Math.random()));
        const query = {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.o.labelSelector,
        };
        const path = resourcePath(this.o.kind, this.o.namespace);
        await this.client.watch(path, query, (t, obj) => this.onEvent(t, obj), ac.signal, open);
      } catch (watchErr) {
        if (this.stopped) break;
        let err = watchErr;
        if (err instanceof KubeApiError && err.code === 410) {
          try {
            await this.relist();
            continue;
          } catch (e) {
            err = e;
          }
        }
        this.stopped = true;
        if (first) failed(err);
        else
          for (const cb of this.listeners.error) {
            try {
              cb(err);
            } catch {
              // as for the other listeners
            }
          }
        return;
      }
      // The apiserver ended the watch (timeoutSeconds): watch again from where it ended, at most once a second.
      const wait = began + 1000 - Date.now();
      if (wait > 0 && !this.stopped) await sleep(wait, ac.signal);
    }
    if (first) opened(); // stopped before the watch opened
  }
}

/** Resolve after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

const ns = (o: KubeObject) => o.metadata?.namespace ?? '';
const name = (o: KubeObject) => o.metadata?.name ?? '';
