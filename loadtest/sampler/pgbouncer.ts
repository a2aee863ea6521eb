/**
 * PgBouncer saturation from its admin console (database `pgbouncer`, as an
 * admin or stats user): SHOW POOLS, SHOW STATS and SHOW CONFIG over the simple
 * query protocol. Columns are read BY NAME, so versions that add, drop or
 * rename columns (maxwait_us appeared in 1.8, cl_*_cancel_req in 1.18,
 * total_requests became total_query_count in 1.8) parse; a missing column or
 * a NULL reads as null, never a crash.
 */
import pg from 'pg';

/** One SHOW POOLS row (one pool = one database/user pair). */
export interface PoolRow {
  database: string | null;
  user: string | null;
  cl_active: number | null;
  cl_waiting: number | null;
  sv_active: number | null;
  sv_idle: number | null;
  sv_used: number | null;
  sv_tested: number | null;
  sv_login: number | null;
  /** Oldest client wait, seconds part (PgBouncer's `maxwait`). */
  maxwait: number | null;
  /** Microseconds part (`maxwait_us`, 1.8+). */
  maxwait_us: number | null;
  /** maxwait + maxwait_us in ms (maxwait alone when maxwait_us is missing). */
  maxwait_ms: number | null;
  pool_mode: string | null;
}

/** One SHOW STATS row (per database). */
export interface StatsRow {
  database: string | null;
  total_xact_count: number | null;
  /** total_query_count (1.8+) or total_requests (older). */
  total_query_count: number | null;
  total_wait_time_us: number | null;
  /** Cumulative time spent in transactions (server connection held), us (SHOW STATS total_xact_time). */
  total_xact_time_us: number | null;
  avg_xact_time_us: number | null;
  avg_query_time_us: number | null;
  avg_wait_time_us: number | null;
}

/** The SHOW CONFIG values that bound the pools. */
export interface PgbouncerLimits {
  max_client_conn: number | null;
  default_pool_size: number | null;
  reserve_pool_size: number | null;
}

/** A cell as a number: null for NULL, a missing column, '' or not a number. */
export function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Rows (array mode) + column names -> objects keyed by column name. */
export function byName(fields: readonly string[], rows: readonly unknown[][]): Record<string, unknown>[] {
  return rows.map((r) => Object.fromEntries(fields.map((f, i) => [f, r[i]])));
}

/** Parse SHOW POOLS (columns by name). */
export function parsePools(fields: readonly string[], rows: readonly unknown[][]): PoolRow[] {
  return byName(fields, rows).map((r) => {
    const maxwait = num(r['maxwait']);
    const maxwaitUs = num(r['maxwait_us']);
    return {
      database: str(r['database']),
      user: str(r['user']),
      cl_active: num(r['cl_active']),
      cl_waiting: num(r['cl_waiting']),
      sv_active: num(r['sv_active']),
      sv_idle: num(r['sv_idle']),
      sv_used: num(r['sv_used']),
      sv_tested: num(r['sv_tested']),
      sv_login: num(r['sv_login']),
      maxwait,
      maxwait_us: maxwaitUs,
      maxwait_ms: maxwait === null && maxwaitUs === null ? null : (maxwait ?? 0) * 1000 + (maxwaitUs ?? 0) / 1000,
      pool_mode: str(r['pool_mode']),
    };
  });
}

/** Parse SHOW STATS (columns by name; total_requests is the pre-1.8 name of total_query_count). */
export function parseStats(fields: readonly string[], rows: readonly unknown[][]): StatsRow[] {
  return byName(fields, rows).map((r) => ({
    database: str(r['database']),
    total_xact_count: num(r['total_xact_count']),
    total_query_count: num(r['total_query_count'] ?? r['total_requests']),
    total_wait_time_us: num(r['total_wait_time']),
    total_xact_time_us: num(r['total_xact_time']),
    avg_xact_time_us: num(r['avg_xact_time']),
    avg_query_time_us: num(r['avg_query_time']),
    avg_wait_time_us: num(r['avg_wait_time']),
  }));
}

/** Parse SHOW CONFIG (key, value, ... columns). */
export function parseConfig(fields: readonly string[], rows: readonly unknown[][]): PgbouncerLimits {
  const kv = new Map(byName(fields, rows).map((r) => [str(r['key']), r['value']]));
  return {
    max_client_conn: num(kv.get('max_client_conn')),
    default_pool_size: num(kv.get('default_pool_size')),
    reserve_pool_size: num(kv.get('reserve_pool_size')),
  };
}

/** Sum of a column over rows; null when no row has it. */
export function sumOf<T>(rows: readonly T[], k: keyof T): number | null {
  const vs = rows.map((r) => r[k]).filter((v): v is T[keyof T] & number => typeof v === 'number');
  return vs.length ? vs.reduce((a, b) => a + b, 0) : null;
}

/** Max of a column over rows; null when no row has it. */
export function maxOf<T>(rows: readonly T[], k: keyof T): number | null {
  const vs = rows.map((r) => r[k]).filter((v): v is T[keyof T] & number => typeof v === 'number');
  return vs.length ? Math.max(...vs) : null;
}

/** The pools that are not the admin console itself, optionally only one database's. */
export function userPools(rows: readonly PoolRow[], database?: string): PoolRow[] {
  return rows.filter((r) => r.database !== 'pgbouncer' && (database === undefined || r.database === database));
}

async function show(
  client: pg.Client,
  what: 'POOLS' | 'STATS' | 'CONFIG',
): Promise<{ fields: string[]; rows: unknown[][] }> {
  // no parameters: node-postgres sends a simple Query message, which is all the console speaks
  const r = await client.query({ text: `SHOW ${what}`, rowMode: 'array' });
  return { fields: r.fields.map((f) => f.name), rows: r.rows as unknown[][] };
}

export async function showPools(client: pg.Client): Promise<PoolRow[]> {
  const r = await show(client, 'POOLS');
  return parsePools(r.fields, r.rows);
}

export async function showStats(client: pg.Client): Promise<StatsRow[]> {
  const r = await show(client, 'STATS');
  return parseStats(r.fields, r.rows);
}

export async function showConfig(client: pg.Client): Promise<PgbouncerLimits> {
  const r = await show(client, 'CONFIG');
  return parseConfig(r.fields, r.rows);
}

/** One PgBouncer reading: the pools summed (admin console excluded), stats summed, the limits. */
export interface PgbouncerReading {
  pools: PoolRow[];
  cl_active: number | null;
  cl_waiting: number | null;
  sv_active: number | null;
  sv_idle: number | null;
  sv_used: number | null;
  /** Longest client wait over the pools, ms. */
  maxwait_ms: number | null;
  total_xact_count: number | null;
  total_query_count: number | null;
  /** Cumulative client wait summed over the pools, us (SHOW STATS total_wait_time): its per-tick delta / the delta of total_xact_count is the mean wait per transaction. */
  total_wait_time_us: number | null;
  /** Cumulative time in transactions summed over the pools, us (SHOW STATS total_xact_time): its delta / the delta of total_xact_count is the mean transaction (server hold) time. */
  total_xact_time_us: number | null;
  avg_wait_time_us: number | null;
  limits: PgbouncerLimits;
  /** Server connections one pool may open: default_pool_size + reserve_pool_size, times the pools read. */
  serverLimit: number | null;
}

/**
 * Read SHOW POOLS, SHOW STATS (when `stats`) and SHOW CONFIG (when `limits`
 * is not given) on an open admin-console client.
 */
export async function readPgbouncer(
  client: pg.Client,
  o: { database?: string; stats?: boolean; limits?: PgbouncerLimits } = {},
): Promise<PgbouncerReading> {
  const pools = userPools(await showPools(client), o.database);
  const stats =
    o.stats === false
      ? []
      : (await showStats(client)).filter(
          (r) => r.database !== 'pgbouncer' && (o.database === undefined || r.database === o.database),
        );
  const limits = o.limits ?? (await showConfig(client));
  const perPool = limits.default_pool_size === null ? null : limits.default_pool_size + (limits.reserve_pool_size ?? 0);
  return {
    pools,
    cl_active: sumOf(pools, 'cl_active'),
    cl_waiting: sumOf(pools, 'cl_waiting'),
    sv_active: sumOf(pools, 'sv_active'),
    sv_idle: sumOf(pools, 'sv_idle'),
    sv_used: sumOf(pools, 'sv_used'),
    maxwait_ms: maxOf(pools, 'maxwait_ms'),
    total_xact_count: sumOf(stats, 'total_xact_count'),
    total_query_count: sumOf(stats, 'total_query_count'),
    total_wait_time_us: sumOf(stats, 'total_wait_time_us'),
    total_xact_time_us: sumOf(stats, 'total_xact_time_us'),
    avg_wait_time_us: maxOf(stats, 'avg_wait_time_us'),
    limits,
    serverLimit: perPool === null ? null : perPool * Math.max(1, pools.length),
  };
}
