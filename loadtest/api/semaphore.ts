/**
 * The per-worker LLM semaphore (MAX_CONCURRENT_REQUESTS) of the design notes:
 * at most `max` holders, FIFO waiters, a wait timeout (the caller answers 503)
 * and cancellation when the client goes away.
 */

/** No slot freed within the wait timeout. */
export class SlotTimeoutError extends Error {
  constructor(
    readonly waitedMs: number,
    readonly max: number,
  ) {
    super(`no LLM slot freed within ${(waitedMs / 1000).toFixed(1)} s (${max} slots per worker, all busy)`);
    this.name = 'SlotTimeoutError';
  }
}

/** The wait was cancelled (client disconnected). */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'AbortedError';
  }
}

interface Waiter {
  grant: (release: () => void) => void;
  fail: (e: Error) => void;
}

/** A counting semaphore with FIFO waiters. */
export class Semaphore {
  private held = 0;
  private readonly waiters: Waiter[] = [];

  /** @param max slots (>= 1). */
  constructor(readonly max: number) {
    if (!(Number.isInteger(max) && max >= 1))
      throw new RangeError(`semaphore size must be an integer >= 1, got ${max}`);
  }

  /** Slots held now. */
  get inUse(): number {
    return this.held;
  }
  /** Free slots now. */
  get available(): number {
    return this.max - this.held;
  }
  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Take a slot, waiting at most `timeoutMs` (0 = do not wait).
   * @returns a release function (idempotent: calling it twice frees one slot).
   * @throws SlotTimeoutError after the timeout, AbortedError when `signal` aborts.
   */
  acquire(timeoutMs: number, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    if (this.held < this.max && this.waiters.length === 0) {
      this.held++;
      return Promise.resolve(this.releaser());
    }
    if (timeoutMs <= 0) return Promise.reject(new SlotTimeoutError(0, this.max));
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const w: Waiter = {
        grant: (release) => {
          done();
          resolve(release);
        },
        fail: (e) => {
          done();
          reject(e);
        },
      };
      const timer = setTimeout(() => w.fail(new SlotTimeoutError(Date.now() - started, this.max)), timeoutMs);
      const onAbort = () => w.fail(new AbortedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next)
        next.grant(this.releaser()); // hand the slot over: `held` stays the same
      else this.held--;
    };
  }
}
