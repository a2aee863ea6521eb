/**
 * A coalescing, rate-limited work queue of object keys (`namespace/name`), in
 * the shape of client-go's workqueue as controller-runtime uses it:
 * - add(key) while the key waits is a no-op (events coalesce: reconcile is
 *   level-based, it reads the current state, so one pass covers many events);
 * - a key is never processed by two workers at once: an add() during
 *   processing marks it dirty and it runs again after the current pass;
 * - addRateLimited(key) requeues with per-key exponential backoff
 *   (base * 2^failures, capped), forget(key) resets it after a success;
 * - addAfter(key, ms) requeues after a delay (periodic resync).
 *
 * Like client-go's workqueue metrics, an optional observer gets each key's
 * queue wait (first add() while not waiting -> get(), ms) and work time
 * (get() -> done(), ms).
 */

export interface QueueOptions {
  /** First retry delay, ms (client-go: 5 ms). */
  baseDelayMs?: number;
  /** Retry delay cap, ms (client-go: 1000 s; here 5 min). */
  maxDelayMs?: number;
  /** Called with the queue wait of each key handed out (ms). */
  onQueued?: (waitMs: number) => void;
  /** Called with the processing time of each key marked done (ms). */
  onWorked?: (workMs: number) => void;
}

export type Handler = (key: string) => Promise<void>;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiters: (() => void)[] = [];
  /** When each waiting key was first added (performance.now(), ms). */
  private readonly addedAt = new Map<string, number>();
  /** When each key being processed was handed out (ms). */
  private readonly startedAt = new Map<string, number>();
  private shuttingDown = false;
  private readonly base: number;
  private readonly max: number;

  constructor(private readonly opts: QueueOptions = {}) {
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 300_000;
  }

  /** Keys waiting (not counting ones being processed): the queue depth metric. */
  get depth(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // re-queued when done()
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Add after `ms`; an earlier pending delayed add for the key is kept if it fires sooner. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    if (this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** Requeue after the key's backoff delay; returns the delay used (ms). */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.max, this.base * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** Number of consecutive failures recorded for a key. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Reset a key's backoff (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Wait for the next key; undefined once shut down. */
  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const key = this.queue.shift()!;
    this.dirty.delete(key);
    this.processing.add(key);
    const now = performance.now();
    this.opts.onQueued?.(now - (this.addedAt.get(key) ?? now));
    this.addedAt.delete(key);
    this.startedAt.set(key, now);
    return key;
  }

  /** Mark a key processed; if it was added meanwhile, queue it again. */
  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.opts.onWorked?.(performance.now() - started);
    this.startedAt.delete(key);
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.waiters.shift()?.();
    }
  }

  /** Stop handing out keys; workers finish their current key. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Run `workers` loops calling `handler` for each key. A handler that throws
   * is retried with backoff; one that resolves resets the backoff.
   * Resolves when the queue is shut down and every worker has finished.
   */
  async run(
    workers: number,
    handler: Handler,
    onError?: (key: string, err: unknown, retryInMs: number) => void,
  ): Promise<void> {
    const loop = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
          this.forget(key);
        } catch (err) {
          const delay = this.addRateLimited(key);
          onError?.(key, err, delay);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, loop));
  }
}
