/**
 * The saturation sampler: every `intervalMs` it reads every configured target
 * (PgBouncer, PostgreSQL, Redis, the API's /health, this machine's CPUs) concurrently and appends
 * one point per figure. A target that fails in a tick (refused, timed out,
 * connection lost) records an error entry and null points for that tick; its
 * connection is dropped and opened again at the next tick. Ticks are
 * scheduled at start + k x interval (no drift); a tick that overruns delays
 * the next one, it never overlaps.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { Redis } from 'ioredis';
import { errText } from '../../lib/errors.js';
import { roundTo, sleep } from '../../lib/util.js';
import { readHealth } from './health.js';
import { readPgbouncer, type PgbouncerLimits } from './pgbouncer.js';
import { readPostgres } from './postgres.js';
import { readRedis } from './redis.js';
import { scrape } from './prometheus.js';
import type { FigureSummary, Point, SampleResult, TargetReport } from './result-schema.js';
import { saturatesFirst, summarize } from './series.js';

export type { SampleResult, TargetReport } from './result-schema.js';

/** What a target is: PgBouncer's admin console, PostgreSQL, Redis, the API's /health, or this machine's CPUs. */
export type TargetKind = 'pgbouncer' | 'postgres' | 'redis' | 'health' | 'host';
/** Every target kind, in the order results list them. */
export const TARGET_KINDS: readonly TargetKind[] = ['pgbouncer', 'postgres', 'redis', 'health', 'host'];

/** The figures each target yields (series names are `<target>.<figure>`). */
export const FIGURES: Record<TargetKind, readonly string[]> = {
  pgbouncer: [
    'cl_active',
    'cl_waiting',
    'sv_active',
    'sv_idle',
    'sv_used',
    'maxwait_ms',
    'avg_wait_time_us',
    'total_xact_count',
    'total_wait_time_us',
    'total_xact_time_us',
  ],
  postgres: ['backends', 'active', 'idle', 'idle_in_transaction', 'waiting_on_locks'],
  redis: ['connected_clients', 'blocked_clients'],
  health: [
    'processing_count',
    'available_slots',
    'waiting_count',
    'in_flight',
    'db_pool_total',
    'db_pool_idle',
    'db_pool_waiting',
    'db_pool_in_use',
    'queue_in_flight',
    'queue_concurrency',
  ],
  host: ['cpu_busy'],
};

// LIMIT_OF lives in figures.ts (no database or HTTP clients: result.ts, and so the operator, load it).
export { LIMIT_OF } from './figures.js';

/** One read of a target: values and limits by series name (`<target>.<figure>`), null where unknown. */
export interface Reading {
  values: Record<string, number | null>;
  limits: Record<string, number | null>;
}

/** One target: read() is called once per tick; close() at the end. */
export interface Target {
  kind: TargetKind;
  /** The URL with any password replaced by `***`. */
  url: string;
  read(timeoutMs: number): Promise<Reading>;
  close(): Promise<void>;
}

/** A URL with its password hidden. */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return u;
  }
}

/** The URL with `password` set (kept in memory only; `redactUrl` hides it wherever it is printed). */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** A reusable pg client: connected on first use, dropped after an error. */
function pgConnection(config: string | pg.ClientConfig) {
  let client: pg.Client | null = null;
  return {
    async get(timeoutMs: number): Promise<pg.Client> {
      if (client) return client;
      const base: pg.ClientConfig = typeof config === 'string' ? { connectionString: config } : config;
      const c = new pg.Client({
        ...base,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
        application_name: 'arena-sampler',
      });
      c.on('error', () => {
        if (client === c) client = null;
      });
      await c.connect().catch(async (e: unknown) => {
        await c.end().catch(() => undefined);
        throw e;
      });
      client = c;
      return c;
    },
    async drop(): Promise<void> {
      const c = client;
      client = null;
      if (c) await c.end().catch(() => undefined);
    },
  };
}

/** Run `fn` on the connection (opened when needed); any failure drops it, so the next tick reconnects. */
async function withPg<T>(
  conn: ReturnType<typeof pgConnection>,
  timeoutMs: number,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  try {
    return await fn(await conn.get(timeoutMs));
  } catch (e) {
    await conn.drop();
    throw e;
  }
}

/** `{figure: v}` -> `{'<kind>.<figure>': v}`. */
const prefixed = (kind: TargetKind, o: Record<string, number | null>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [`${kind}.${k}`, v]));

/** PgBouncer admin console (URL to database `pgbouncer`); SHOW CONFIG read once per connection. */
export function pgbouncerTarget(url: string, o: { database?: string; password?: string } = {}): Target {
  const conn = pgConnection(withPassword(url, o.password));
  let limits: PgbouncerLimits | undefined;
  return {
    kind: 'pgbouncer',
    url: redactUrl(url),
    read: (timeoutMs) =>
      withPg(conn, timeoutMs, async (c) => {
        const r = await readPgbouncer(c, { database: o.database, limits });
        limits = r.limits;
        const values = {
          cl_active: r.cl_active,
          cl_waiting: r.cl_waiting,
          sv_active: r.sv_active,
          sv_idle: r.sv_idle,
          sv_used: r.sv_used,
          maxwait_ms: r.maxwait_ms,
          avg_wait_time_us: r.avg_wait_time_us,
          total_xact_count: r.total_xact_count,
          total_wait_time_us: r.total_wait_time_us,
          total_xact_time_us: r.total_xact_time_us,
        };
        return {
          values: prefixed('pgbouncer', values),
          limits: { 'pgbouncer.cl_active': r.limits.max_client_conn, 'pgbouncer.sv_active': r.serverLimit },
        };
      }),
    close: () => conn.drop(),
  };
}

/** PostgreSQL (URL to the database): client backends by state vs max_connections, from pg_stat_activity. */
export function postgresTarget(url: string, o: { password?: string } = {}): Target {
  const conn = pgConnection(withPassword(url, o.password));
  return {
    kind: 'postgres',
    url: redactUrl(url),
    read: (timeoutMs) =>
      withPg(conn, timeoutMs, async (c) => {
        const r = await readPostgres(c);
        const values = {
          backends: r.backends,
          active: r.active,
          idle: r.idle,
          idle_in_transaction: r.idle_in_transaction,
          waiting_on_locks: r.waiting_on_locks,
        };
        return {
          values: prefixed('postgres', values),
          limits: { 'postgres.backends': r.max_connections, 'postgres.active': r.max_connections },
        };
      }),
    close: () => conn.drop(),
  };
}

/** Redis (redis:// URL): connected and blocked clients vs maxclients; the connection is kept across ticks. */
export function redisTarget(url: string): Target {
  let client: Redis | null = null;
  const drop = () => {
    client?.disconnect();
    client = null;
  };
  return {
    kind: 'redis',
    url: redactUrl(url),
    async read(timeoutMs) {
      try {
        if (!client) {
          const c = new Redis(url, {
            lazyConnect: true,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            enableOfflineQueue: false,
            connectTimeout: timeoutMs,
            commandTimeout: timeoutMs,
            connectionName: 'arena-sampler',
          });
          let cause: Error | undefined;
          c.on('error', (e: Error) => (cause = e)); // reported by the failing command
          client = c;
          await c.connect().catch((e: Error) => {
            throw cause ?? e; // "Connection is closed." hides why: ECONNREFUSED, ENOTFOUND, ...
          });
        }
        const r = await readRedis(client);
        return {
          values: prefixed('redis', { connected_clients: r.connected_clients, blocked_clients: r.blocked_clients }),
          limits: { 'redis.connected_clients': r.maxclients },
        };
      } catch (e) {
        drop();
        throw e;
      }
    },
    close: async () => drop(),
  };
}

/**
 * The queue worker's busy consumers and its ASYNC_CONCURRENCY from the API's
 * /metrics (`arena_queue_in_flight`, `arena_queue_concurrency`); nulls when
 * /metrics does not answer (an API without it still gives its /health figures).
 */
async function readQueueGauges(
  metricsUrl: string,
  timeoutMs: number,
): Promise<{ queue_in_flight: number | null; queue_concurrency: number | null }> {
  try {
    const g = (await scrape(metricsUrl, timeoutMs)).gauges;
    return {
      queue_in_flight: g['arena_queue_in_flight'] ?? null,
      queue_concurrency: g['arena_queue_concurrency'] ?? null,
    };
  } catch {
    return { queue_in_flight: null, queue_concurrency: null };
  }
}

/** The API's /health (http(s) URL): LLM slots and DB pool summed over every worker, plus the queue worker's gauges from /metrics; fresh connections per read. */
export function healthTarget(url: string): Target {
  const u = new URL(url);
  const metricsUrl = new URL('/metrics', u).toString();
  return {
    kind: 'health',
    url: redactUrl(url),
    async read(timeoutMs) {
      const h = await readHealth(u, { timeoutMs });
      const values = {
        processing_count: h.processing_count,
        available_slots: h.available_slots,
        waiting_count: h.waiting_count,
        in_flight: h.in_flight,
        db_pool_total: h.db_pool_total,
        db_pool_idle: h.db_pool_idle,
        db_pool_waiting: h.db_pool_waiting,
        db_pool_in_use: h.db_pool_total - h.db_pool_idle,
        ...(await readQueueGauges(metricsUrl, timeoutMs)),
      };
      return {
        values: prefixed('health', values),
        limits: {
          'health.processing_count': h.max_concurrent || null,
          'health.db_pool_total': h.db_pool_max || null,
          'health.db_pool_in_use': h.db_pool_max || null,
          'health.queue_in_flight': values.queue_concurrency || null,
        },
      };
    },
    close: async () => undefined,
  };
}

/** The aggregate `cpu` line of /proc/stat: busy and total jiffies, and the number of `cpuN` lines. */
export function parseProcStat(text: string): { busy: number; total: number; cores: number } {
  const line = /^cpu\s+(.+)$/m.exec(text);
  if (!line) throw new Error('no cpu line in /proc/stat');
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line[1]!.trim().split(/\s+/).map(Number);
  const busy = user! + nice! + system! + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + idle! + (iowait ?? 0), cores: (text.match(/^cpu\d+\s/gm) ?? []).length };
}

/**
 * This machine's CPUs (file:///proc/stat, Linux): `host.cpu_busy` = busy cores since the previous read
 * (delta busy jiffies / delta all jiffies x cores), against the number of cores. The first read counts
 * from when the target was made. Everything on the machine counts: on the local stack that is the stack
 * and the load engine sharing the cores.
 */
export function hostTarget(url = 'file:///proc/stat'): Target {
  const path = new URL(url).pathname;
  let last: ReturnType<typeof parseProcStat> | null = null;
  const readStat = async () => parseProcStat(await readFile(path, 'utf8'));
  const first = readStat().then(
    (s) => (last = s),
    () => null,
  );
  return {
    kind: 'host',
    url,
    async read() {
      await first;
      let now = await readStat();
      // /proc/stat counts in clock ticks (10 ms): right after the baseline, wait for one to pass
      for (let i = 0; i < 5 && last && now.total === last.total; i++) {
        await sleep(20);
        now = await readStat();
      }
      const prev = last;
      last = now;
      const dt = prev ? now.total - prev.total : 0;
      const busy = prev && dt > 0 ? roundTo(((now.busy - prev.busy) / dt) * now.cores, 3) : null;
      return { values: { 'host.cpu_busy': busy }, limits: { 'host.cpu_busy': now.cores || null } };
    },
    close: async () => undefined,
  };
}

/**
 * A target of `kind` at `url`. `password` (PostgreSQL and PgBouncer) keeps a
 * password off the URL (and so off the command line); without it, and without
 * one in the URL, pg falls back to the PGPASSWORD environment variable.
 * `database` (PgBouncer) counts only that database's pools.
 */
export function makeTarget(kind: TargetKind, url: string, o: { password?: string; database?: string } = {}): Target {
  switch (kind) {
    case 'pgbouncer':
      return pgbouncerTarget(url, o);
    case 'postgres':
      return postgresTarget(url, o.password === undefined ? {} : { password: o.password });
    case 'redis':
      return redisTarget(url);
    case 'health':
      return healthTarget(url);
    case 'host':
      return hostTarget(url);
  }
}

/** Options of `sample`. */
export interface SampleOptions {
  intervalMs?: number;
  durationMs: number;
  signal?: AbortSignal;
  /** Bound on one target's read per tick (default: the interval, at least 250 ms, at most 5 s). */
  readTimeoutMs?: number;
  /** Called after each tick with its errors and the utilisation (value / limit) of each figure with a limit. */
  onTick?: (tick: number, tMs: number, errors: TickError[], utilization: Record<string, number>) => void;
}

/** A target that failed in a tick, and why. */
export interface TickError {
  kind: TargetKind;
  error: string;
}

/** `p`, or a rejection `no answer within <ms> ms` after `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  );
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One target's outcome in one tick: its reading or its error, and how long the read took. */
type TickRead = { t: Target; r: Reading; ms: number } | { t: Target; error: string; ms: number };

/** Read every target once, concurrently, each bounded by `readTimeoutMs` (+ 250 ms); never rejects. */
function readAll(targets: readonly Target[], readTimeoutMs: number): Promise<TickRead[]> {
  return Promise.all(
    targets.map(async (t) => {
      const s = performance.now();
      try {
        const r = await withTimeout(t.read(readTimeoutMs), readTimeoutMs + 250);
        return { t, r, ms: performance.now() - s };
      } catch (e) {
        return { t, error: errText(e), ms: performance.now() - s };
      }
    }),
  );
}

/** What a run accumulates: the series per figure, the latest limit per figure, a report per target. */
interface Recording {
  series: Record<string, Point[]>;
  limits: Record<string, number | null>;
  reports: Partial<Record<TargetKind, TargetReport & { readMs: number[] }>>;
}

/** Empty series for every figure of every target, and empty reports. */
function startRecording(targets: readonly Target[]): Recording {
  const rec: Recording = { series: {}, limits: {}, reports: {} };
  for (const t of targets) for (const f of FIGURES[t.kind]) rec.series[`${t.kind}.${f}`] = [];
  for (const t of targets)
    rec.reports[t.kind] = { url: t.url, ok: 0, failed: 0, errors: [], meanReadMs: null, maxReadMs: null, readMs: [] };
  return rec;
}

/**
 * Append one tick at `tMs`: a point per figure (null for a target that failed), the limits read,
 * the reports. @returns the tick's errors.
 */
function record(rec: Recording, tMs: number, results: readonly TickRead[]): TickError[] {
  const errors: TickError[] = [];
  for (const x of results) {
    const kind = x.t.kind;
    const rep = rec.reports[kind]!;
    rep.readMs.push(x.ms);
    if ('r' in x && x.r) {
      rep.ok++;
      for (const f of FIGURES[kind]) rec.series[`${kind}.${f}`]!.push([tMs, x.r.values[`${kind}.${f}`] ?? null]);
      for (const [f, l] of Object.entries(x.r.limits)) if (l !== null) rec.limits[f] = l;
    } else {
      rep.failed++;
      const error = 'error' in x ? x.error : 'no reading';
      rep.errors.push({ tMs, error });
      errors.push({ kind, error });
      for (const f of FIGURES[kind]) rec.series[`${kind}.${f}`]!.push([tMs, null]);
    }
  }
  return errors;
}

/** Utilisation (value / limit) of the latest point of every figure with a limit > 0 and a value. */
function latestUtilization(rec: Recording): Record<string, number> {
  const util: Record<string, number> = {};
  for (const [f, l] of Object.entries(rec.limits)) {
    const v = rec.series[f]?.[rec.series[f]!.length - 1]?.[1];
    if (l !== null && l > 0 && typeof v === 'number') util[f] = v / l;
  }
  return util;
}

/** The reports without their raw read times: mean and max read time, ms (2 decimals). */
function targetReports(rec: Recording): SampleResult['targets'] {
  const out: SampleResult['targets'] = {};
  for (const [k, r] of Object.entries(rec.reports) as [TargetKind, TargetReport & { readMs: number[] }][]) {
    const { readMs, ...rest } = r;
    const mean = readMs.length ? roundTo(readMs.reduce((a, b) => a + b, 0) / readMs.length, 2) : null;
    out[k] = { ...rest, meanReadMs: mean, maxReadMs: readMs.length ? roundTo(Math.max(...readMs), 2) : null };
  }
  return out;
}

/**
 * Sample the targets: ticks at t = 0, interval, 2 x interval, ... while
 * t <= durationMs (floor(duration / interval) + 1 ticks), or until `signal`
 * aborts. Closes the targets at the end. Never throws for a target's failure.
 */
export async function sample(targets: readonly Target[], o: SampleOptions): Promise<SampleResult> {
  const intervalMs = o.intervalMs ?? 1000;
  const readTimeoutMs = o.readTimeoutMs ?? Math.min(Math.max(intervalMs, 250), 5000);
  const rec = startRecording(targets);
  const startedAt = new Date();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let ticks = 0;
  let wallMs = 0;
  try {
    for (let k = 0; k * intervalMs <= o.durationMs && !o.signal?.aborted; k++) {
      await sleep(t0 + k * intervalMs - performance.now(), o.signal);
      if (o.signal?.aborted) break;
      const tMs = Math.round(performance.now() - t0);
      const tickStart = performance.now();
      const results = await readAll(targets, readTimeoutMs);
      wallMs += performance.now() - tickStart;
      ticks++;
      const errors = record(rec, tMs, results);
      o.onTick?.(ticks, tMs, errors, latestUtilization(rec));
    }
  } finally {
    await Promise.all(targets.map((t) => t.close().catch(() => undefined)));
  }
  const cpu = process.cpuUsage(cpu0);
  const summary: Record<string, FigureSummary> = {};
  for (const [f, s] of Object.entries(rec.series)) summary[f] = summarize(s, rec.limits[f] ?? null);
  return {
    startedAt: startedAt.toISOString(),
    intervalMs,
    durationMs: o.durationMs,
    ticks,
    aborted: !!o.signal?.aborted,
    targets: targetReports(rec),
    series: rec.series,
    summary,
    saturatesFirst: saturatesFirst(summary),
    cost: {
      cpuMsPerTick: ticks ? roundTo((cpu.user + cpu.system) / 1000 / ticks, 2) : 0,
      wallMsPerTick: ticks ? roundTo(wallMs / ticks, 2) : 0,
    },
  };
}
