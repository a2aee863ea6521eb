/**
 * Redis with ioredis: a bounded connection pool, the per-client sliding-window
 * rate limit, the global LLM requests-per-minute limiter and the leaderboard cache.
 *
 * Connections per process (REDIS_MAX_CONNECTIONS = N, like redis-py's
 * ConnectionPool(max_connections=N)): one shared connection carries every
 * non-blocking command (ioredis pipelines concurrent commands on it), and at
 * most N - 1 more are opened on demand for blocking commands (XREADGROUP BLOCK,
 * BLPOP while `?sync=true` waits), each held by one caller at a time. So a
 * process never has more than N connections open, which is what the planner
 * counts (workers x REDIS_MAX_CONNECTIONS per pod). With N = 1 blocking waits
 * poll on the shared connection instead.
 */
import { Redis, type Result } from 'ioredis';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    arenaRateLimit(
      key: string,
      windowMs: number,
      limit: number,
      member: string,
    ): Result<[number, number, number], Context>;
    arenaGcra(key: string, intervalMs: number, maxWaitMs: number): Result<number, Context>;
    arenaCompleteTask(
      taskKey: string,
      notifyKey: string,
      stream: string,
      group: string,
      entryId: string,
      status: string,
      result: string,
      error: string,
      finishedAt: string,
      ttlSeconds: number,
      consumer: string,
    ): Result<number, Context>;
  }
}

/**
 * Sliding-window log: one sorted-set member per admitted request (score = ms).
 * Returns {allowed 1|0, remaining, retryAfterMs}. Rejected requests are not
 * recorded, so a client is admitted again as soon as its oldest request leaves
 * the window. Time comes from the Redis server (TIME), so every worker agrees.
 */
const RATE_LIMIT_LUA = `
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 1 then retry = 1 end
return {0, 0, retry}
`;

/**
 * GCRA (generic cell rate algorithm) without burst: calls are spaced
 * `interval` ms apart across every process, as a provider's RPM limit spaces
 * them (the planner's llmRateLimit queue, M/D/1). Returns the wait in ms before
 * the caller may start, or -1 when that wait would exceed maxWait (nothing reserved).
 */
const GCRA_LUA = `
local interval = tonumber(ARGV[1])
local maxWait = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > maxWait then return -1 end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(wait + interval) + 1000)
return math.ceil(wait)
`;

/**
 * Complete a task exactly once, atomically with its acknowledgement:
 * XACK + XDEL the entry; if the task is not yet done/failed, store the outcome,
 * count the completion, refresh the TTL and push a notification for `?sync=true`
 * waiters. Returns 1 (completed), 0 (already completed: a duplicate delivery),
 * -1 (task state expired).
 */
const COMPLETE_TASK_LUA = `
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -1 end
if st == 'done' or st == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'result', ARGV[4], 'error', ARGV[5], 'finished_at', ARGV[6], 'completed_by', ARGV[8])
redis.call('HINCRBY', KEYS[1], 'completions', 1)
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return 1
`;

function connect(url: string, name: string, lazyConnect = false): Redis {
  const r = new Redis(url, { connectionName: name, maxRetriesPerRequest: 2, enableReadyCheck: true, lazyConnect });
  r.defineCommand('arenaRateLimit', { numberOfKeys: 1, lua: RATE_LIMIT_LUA });
  r.defineCommand('arenaGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  r.defineCommand('arenaCompleteTask', { numberOfKeys: 3, lua: COMPLETE_TASK_LUA });
  r.on('error', (e) => process.stderr.write(`[redis] ${name}: ${e.message}\n`));
  return r;
}

/** No blocking connection became free in time. */
export class RedisPoolTimeoutError extends Error {
  constructor(max: number) {
    super(`no Redis connection free (REDIS_MAX_CONNECTIONS ${max} per process, all busy)`);
    this.name = 'RedisPoolTimeoutError';
  }
}

/** The pool described at the top of this file. */
export class RedisPool {
  /** The shared, pipelined connection for non-blocking commands. */
  readonly shared: Redis;
  private readonly idle: Redis[] = [];
  private readonly busy = new Set<Redis>();
  private readonly waiters: ((r: Redis | null) => void)[] = [];
  private opened = 1;
  private closed = false;

  /**
   * @param url redis://host:port/db
   * @param max REDIS_MAX_CONNECTIONS (>= 1)
   * @param name connection name prefix (CLIENT SETNAME), e.g. arena-api-1234
   * @param opts `lazyConnect`: the shared connection connects on its first
   *   command instead of at once (status `wait` until then; the HTTP tests
   *   build an app that never reaches Redis).
   */
  constructor(
    private readonly url: string,
    readonly max: number,
    private readonly name: string,
    opts: { lazyConnect?: boolean } = {},
  ) {
    this.shared = connect(url, `${name}-shared`, opts.lazyConnect);
  }

  /** Connections that may be used for blocking commands (max - 1). */
  get blockingMax(): number {
    return this.max - 1;
  }

  /** Open / in use / waiting figures for /health. */
  get stats() {
    return {
      max: this.max,
      open: this.opened,
      blocking_in_use: this.busy.size,
      waiting: this.waiters.length,
      status: this.shared.status,
    };
  }

  /**
   * Run `fn` on a dedicated connection (for a blocking command). If `signal`
   * aborts while `fn` runs, that connection is closed (a blocked command cannot
   * be cancelled otherwise) and not reused.
   * @throws RedisPoolTimeoutError when none frees within timeoutMs; RangeError when max is 1.
   */
  async withBlocking<T>(timeoutMs: number, signal: AbortSignal | undefined, fn: (r: Redis) => Promise<T>): Promise<T> {
    if (this.blockingMax < 1) throw new RangeError('REDIS_MAX_CONNECTIONS is 1: no connection for blocking commands');
    const conn = await this.take(timeoutMs);
    let dead = false;
    const onAbort = () => {
      dead = true;
      conn.disconnect();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn(conn);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.give(conn, dead);
    }
  }

  private take(timeoutMs: number): Promise<Redis> {
    const idle = this.idle.pop();
    if (idle) {
      this.busy.add(idle);
      return Promise.resolve(idle);
    }
    if (this.opened < this.max) {
      this.opened++;
      const r = connect(this.url, `${this.name}-blocking-${this.opened - 1}`);
      this.busy.add(r);
      return Promise.resolve(r);
    }
    return new Promise((resolve, reject) => {
      const w = (r: Redis | null) => {
        clearTimeout(timer);
        if (r) resolve(r);
        else reject(new RedisPoolTimeoutError(this.max));
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        w(null);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private give(conn: Redis, dead: boolean): void {
    this.busy.delete(conn);
    if (dead || this.closed || conn.status === 'end') {
      this.opened--;
      if (!dead) conn.disconnect();
      const next = this.waiters.shift();
      if (next && !this.closed) {
        this.opened++;
        const r = connect(this.url, `${this.name}-blocking-${this.opened - 1}`);
        this.busy.add(r);
        next(r);
      }
      return;
    }
    const next = this.waiters.shift();
    if (next) {
      this.busy.add(conn);
      next(conn);
    } else this.idle.push(conn);
  }

  /** Close every connection (QUIT, so pending replies arrive first). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(null);
    const all = [this.shared, ...this.idle, ...this.busy];
    await Promise.all(all.map((r) => r.quit().catch(() => r.disconnect())));
  }
}

/** Outcome of a rate-limit check. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the next request would be admitted (0 when allowed). */
  retryAfterMs: number;
}

/**
 * Requests admitted per window: RATE_LIMIT_PER_MINUTE scaled to the window
 * (window 60 s: exactly the per-minute figure), at least 1.
 */
export function rateLimitPerWindow(perMinute: number, windowSeconds: number): number {
  return Math.max(1, Math.round((perMinute * windowSeconds) / 60));
}

/** Check and record one request of `clientId` (sliding window, shared by every worker). */
export async function checkRateLimit(
  r: Redis,
  clientId: string,
  perMinute: number,
  windowSeconds: number,
): Promise<RateDecision> {
  const limit = rateLimitPerWindow(perMinute, windowSeconds);
  const member = `${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const windowMs = Math.round(windowSeconds * 1000);
  const [allowed, remaining, retry] = await r.arenaRateLimit(`arena:ratelimit:${clientId}`, windowMs, limit, member);
  return { allowed: allowed === 1, limit, remaining, retryAfterMs: retry };
}

/**
 * The per-client limit the HTTP layer asks before it serves `/api/*` and
 * `/chat/*` (its seam: the API uses `redisRateLimiter`; a rejection in
 * `check` lets the request through).
 */
export interface RateLimiter {
  /** Check and record one request of `clientId`. */
  check(clientId: string): Promise<RateDecision>;
}

/** The sliding-window limit through Redis (`checkRateLimit`): RATE_LIMIT_PER_MINUTE over RATE_LIMIT_WINDOW_SECONDS. */
export function redisRateLimiter(r: Redis, perMinute: number, windowSeconds: number): RateLimiter {
  return { check: (clientId) => checkRateLimit(r, clientId, perMinute, windowSeconds) };
}

/** Key of the cached leaderboard. */
export const LEADERBOARD_KEY = 'arena:cache:leaderboard';
/** Drop the cached leaderboard (after a saved match); a Redis error is ignored (the entry expires anyway). */
export const invalidateLeaderboard = (r: Redis): Promise<unknown> => r.del(LEADERBOARD_KEY).catch(() => undefined);
/** Key of the GCRA state of the LLM provider limit. */
export const LLM_GCRA_KEY = 'arena:llm:gcra';
