/**
 * Redis saturation: INFO clients (connected_clients, blocked_clients) against
 * CONFIG GET maxclients (null where CONFIG is disabled, as on some managed
 * Redis), and optionally a stream's length and pending count (the API's queue).
 */
import type { Redis } from 'ioredis';

export interface RedisReading {
  connected_clients: number | null;
  blocked_clients: number | null;
  maxclients: number | null;
  queue_length?: number;
  queue_pending?: number;
}

/** Parse the `key:value` lines of an INFO answer. */
export function parseInfo(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

const num = (v: string | undefined) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));

/** Read INFO clients and maxclients (and a stream's XLEN / XPENDING when `queue` is given). */
export async function readRedis(r: Redis, queue?: { stream: string; group: string }): Promise<RedisReading> {
  const info = parseInfo(await r.info('clients'));
  let maxclients: number | null = null;
  try {
    const c = (await r.config('GET', 'maxclients')) as string[];
    maxclients = num(c[1]);
  } catch {
    maxclients = null; // CONFIG disabled or renamed
  }
  const out: RedisReading = {
    connected_clients: num(info['connected_clients']),
    blocked_clients: num(info['blocked_clients']),
    maxclients,
  };
  if (queue) {
    const [len, pending] = await Promise.all([
      r.xlen(queue.stream).catch(() => 0),
      r
        .xpending(queue.stream, queue.group)
        .then((x) => Number((x as unknown[])[0] ?? 0))
        .catch(() => 0),
    ]);
    out.queue_length = len;
    out.queue_pending = pending;
  }
  return out;
}
