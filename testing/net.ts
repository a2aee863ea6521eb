/** Small helpers for tests and benchmarks that start real servers. */
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port free on 127.0.0.1 right now: the stack's own helper. */
export { freePort } from '../loadtest/stack/procs.js';

/**
 * Poll `fn` every `everyMs` until it returns something other than undefined/false.
 * @throws Error naming `what` (and the last error thrown by `fn`) after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
