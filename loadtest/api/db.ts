/**
 * PostgreSQL access through PgBouncer with `pg`.
 *
 * Pool: one per worker process, at most DB_POOL_SIZE + DB_MAX_OVERFLOW
 * connections (SQLAlchemy's pool_size + max_overflow); connections above
 * DB_POOL_SIZE are closed after 10 s idle (SQLAlchemy closes overflow
 * connections on return); a checkout waits at most DB_POOL_TIMEOUT seconds,
 * then DbPoolTimeoutError (the HTTP layer answers 503).
 *
 * Transaction-pooling safe (PgBouncer pool_mode=transaction): no session state
 * (no SET, only SET LOCAL inside a transaction), no named prepared statements
 * (`pg` uses the unnamed statement unless a query has a `name`), advisory locks
 * only transaction-scoped (pg_advisory_xact_lock).
 */
import pg from 'pg';
import { sleep } from '../../lib/util.js';
import type { ApiConfig } from './config.js';
import { dbPoolMax } from './config.js';
import { INITIAL_RATING, K_FACTOR, type Winner } from './elo.js';

/** The worker's PostgreSQL pool (pg). */
export type Pool = pg.Pool;

/** No pooled connection became free within DB_POOL_TIMEOUT (or PgBouncer did not answer in time). */
export class DbPoolTimeoutError extends Error {
  constructor(
    readonly timeoutSeconds: number,
    readonly poolMax: number,
  ) {
    super(`no database connection free within ${timeoutSeconds} s (pool of ${poolMax} per worker, all busy)`);
    this.name = 'DbPoolTimeoutError';
  }
}

/** The database cannot be reached (connection refused, authentication, PgBouncer limits). */
export class DbUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbUnavailableError';
  }
}

/** Create the worker's pool. Errors of idle connections are logged, never thrown. */
export function createPool(cfg: ApiConfig, applicationName: string): Pool {
  const common = {
    max: dbPoolMax(cfg),
    min: 0,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: Math.max(1, Math.round(cfg.dbPoolTimeoutSeconds * 1000)),
    application_name: applicationName,
    keepAlive: true,
  };
  const pool =
    cfg.db.kind === 'fields'
      ? new pg.Pool({
          ...common,
          host: cfg.db.host,
          port: cfg.db.port,
          database: cfg.db.database,
          user: cfg.db.user,
          password: cfg.db.password,
        })
      : new pg.Pool({ ...common, connectionString: cfg.db.connectionString });
  pool.on('error', (e) => process.stderr.write(`[db] idle connection error: ${e.message}\n`));
  return pool;
}

/** Pool figures for /health and /metrics. */
export function poolStats(pool: Pool, cfg: ApiConfig) {
  return { max: dbPoolMax(cfg), total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
}

function mapConnectError(e: unknown, cfg: ApiConfig): Error {
  const msg = (e as Error).message ?? String(e);
  if (/timeout exceeded when trying to connect|connection timeout/i.test(msg)) {
    return new DbPoolTimeoutError(cfg.dbPoolTimeoutSeconds, dbPoolMax(cfg));
  }
  return new DbUnavailableError(`database unavailable: ${msg}`);
}

const checkoutObservers = new WeakMap<Pool, (waitSeconds: number) => void>();

/** Report every checkout's wait for a connection of `pool` (seconds, timeouts included) to `observe` (/metrics). */
export function observeCheckouts(pool: Pool, observe: (waitSeconds: number) => void): void {
  checkoutObservers.set(pool, observe);
}

/**
 * Run `fn` with a pooled connection, released afterwards (destroyed when `fn`
 * failed on the connection itself).
 * @throws DbPoolTimeoutError / DbUnavailableError when no connection is obtained.
 */
export async function withClient<T>(pool: Pool, cfg: ApiConfig, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  const asked = performance.now();
  try {
    client = await pool.connect();
  } catch (e) {
    throw mapConnectError(e, cfg);
  } finally {
    checkoutObservers.get(pool)?.((performance.now() - asked) / 1000);
  }
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (e) {
    // a query error leaves the connection usable; a socket error does not
    if (!(e as { code?: string }).code || (e as Error).message.includes('Connection terminated')) broken = e as Error;
    throw e;
  } finally {
    client.release(broken);
  }
}

/** Versioned, idempotent schema steps. */
const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE IF NOT EXISTS users (
        id text PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS elo_ratings (
        model_id text PRIMARY KEY,
        rating integer NOT NULL DEFAULT ${INITIAL_RATING},
        matches integer NOT NULL DEFAULT 0,
        wins integer NOT NULL DEFAULT 0,
        losses integer NOT NULL DEFAULT 0,
        draws integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS matches (
        id bigserial PRIMARY KEY,
        user_id text NOT NULL REFERENCES users(id),
        topic text NOT NULL,
        proponent_model text NOT NULL REFERENCES elo_ratings(model_id),
        opponent_model text NOT NULL REFERENCES elo_ratings(model_id),
        winner text NOT NULL CHECK (winner IN ('proponent', 'opponent', 'draw')),
        rating_delta integer NOT NULL,
        proponent_rating_before integer NOT NULL,
        proponent_rating_after integer NOT NULL,
        opponent_rating_before integer NOT NULL,
        opponent_rating_after integer NOT NULL,
        tokens integer,
        llm_latency_ms integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (proponent_model <> opponent_model)
      );
      CREATE INDEX IF NOT EXISTS matches_user_created ON matches (user_id, created_at DESC, id DESC);
      CREATE INDEX IF NOT EXISTS elo_ratings_rating ON elo_ratings (rating DESC, model_id);
    `,
  },
  {
    // The match save as one statement (saveMatch): one round trip while a connection is held. See SAVE_MATCH_SQL.
    version: 2,
    sql: `
      CREATE OR REPLACE FUNCTION arena_save_match(
        p_user_id text, p_topic text, p_proponent text, p_opponent text, p_winner text,
        p_tokens integer, p_llm_latency_ms integer
      ) RETURNS matches
      LANGUAGE plpgsql
      SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        p_before integer;
        o_before integer;
        score float8 := CASE p_winner WHEN 'proponent' THEN 1 WHEN 'opponent' THEN 0 ELSE 0.5 END;
        delta integer;
        saved matches;
      BEGIN
        INSERT INTO users (id) VALUES (p_user_id) ON CONFLICT (id) DO NOTHING;
        -- missing rows first, then both rows locked, always in model_id order: two saves cannot deadlock
        INSERT INTO elo_ratings (model_id)
          SELECT m FROM unnest(ARRAY[p_proponent, p_opponent]) AS m ORDER BY m
          ON CONFLICT (model_id) DO NOTHING;
        PERFORM 1 FROM elo_ratings WHERE model_id IN (p_proponent, p_opponent) ORDER BY model_id FOR UPDATE;
        SELECT rating INTO p_before FROM elo_ratings WHERE model_id = p_proponent;
        SELECT rating INTO o_before FROM elo_ratings WHERE model_id = p_opponent;
        -- elo.ts eloDelta: round(K * (score - 1 / (1 + 10^((Ro - Rp) / 400)))), rounding as Math.round
        delta := floor(${K_FACTOR} * (score - 1 / (1 + power(10::float8, (o_before - p_before) / 400::float8))) + 0.5);
        UPDATE elo_ratings SET rating = rating + delta, matches = matches + 1,
            wins = wins + (p_winner = 'proponent')::int, losses = losses + (p_winner = 'opponent')::int,
            draws = draws + (p_winner = 'draw')::int, updated_at = now()
          WHERE model_id = p_proponent;
        UPDATE elo_ratings SET rating = rating - delta, matches = matches + 1,
            wins = wins + (p_winner = 'opponent')::int, losses = losses + (p_winner = 'proponent')::int,
            draws = draws + (p_winner = 'draw')::int, updated_at = now()
          WHERE model_id = p_opponent;
        INSERT INTO matches (user_id, topic, proponent_model, opponent_model, winner, rating_delta,
            proponent_rating_before, proponent_rating_after, opponent_rating_before, opponent_rating_after,
            tokens, llm_latency_ms)
          VALUES (p_user_id, p_topic, p_proponent, p_opponent, p_winner, delta,
            p_before, p_before + delta, o_before, o_before - delta, p_tokens, p_llm_latency_ms)
          RETURNING * INTO saved;
        RETURN saved;
      END
      $fn$;
    `,
  },
];

/** Key of the transaction-scoped advisory lock that serialises migrations ('arena' in ASCII). */
const MIGRATION_LOCK = 0x6172656e61;

/**
 * Apply the missing schema steps. Safe when several workers start at once:
 * everything runs in one transaction holding pg_advisory_xact_lock, so one
 * worker migrates and the others wait, then find nothing to do.
 * @returns the versions applied by this call.
 */
export async function migrate(pool: Pool, cfg: ApiConfig): Promise<number[]> {
  return withClient(pool, cfg, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set(
        (await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
      );
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
        applied.push(m.version);
      }
      await c.query('COMMIT');
      return applied;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  });
}

/** A match as the API returns it. Ratings are integer ELO points. */
export interface MatchRow {
  id: number;
  user_id: string;
  topic: string;
  proponent_model: string;
  opponent_model: string;
  winner: Winner;
  rating_delta: number;
  proponent_rating_before: number;
  proponent_rating_after: number;
  opponent_rating_before: number;
  opponent_rating_after: number;
  tokens: number | null;
  llm_latency_ms: number | null;
  created_at: string;
}

/** A match to save (saveMatch); `tokens` and `llmLatencyMs` come from the debate's LLM call, when there was one. */
export interface NewMatch {
  userId: string;
  topic: string;
  proponentModel: string;
  opponentModel: string;
  winner: Winner;
  tokens?: number;
  llmLatencyMs?: number;
}

const MATCH_COLUMNS = `id::float8 AS id, user_id, topic, proponent_model, opponent_model, winner, rating_delta,
  proponent_rating_before, proponent_rating_after, opponent_rating_before, opponent_rating_after, tokens, llm_latency_ms,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at`;

/** SQLSTATEs worth retrying: serialization_failure, deadlock_detected, lock_not_available. */
export const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '55P03']);
/** Attempts of one match save (first try included). */
export const SAVE_ATTEMPTS = 5;

/** One match save, one statement (arena_save_match, migration 2): its columns as MATCH_COLUMNS. */
const SAVE_MATCH_SQL = `SELECT ${MATCH_COLUMNS} FROM arena_save_match($1, $2, $3, $4, $5, $6, $7)`;

/**
 * Save a match and update both ratings in one transaction, sent as one
 * statement (the PL/pgSQL function `arena_save_match` of migration 2), so the
 * pooled connection, and PgBouncer's server connection, is held for one round
 * trip instead of one per statement. Why it matters: under load each round trip
 * also waits for the API's busy event loop, and that wait, not PostgreSQL's work,
 * made most of the hold (docs/capacity-model.md, "Round trips").
 *
 * Inside the function: the user row and missing rating rows are created, then
 * both elo_ratings rows are locked (SELECT ... FOR UPDATE) in model_id order
 * (every save locks in the same order, so two saves cannot deadlock on them);
 * the delta is elo.ts's eloDelta, computed in SQL; `lock_timeout` is 5 s (the
 * function's own SET clause, restored when it returns: safe under transaction
 * pooling). On serialization failure, deadlock or lock timeout the statement is
 * rolled back and retried, at most SAVE_ATTEMPTS times, with jittered
 * exponential backoff (20 ms, 40 ms, ...).
 * @returns the saved row and the attempts it took.
 * @throws DbPoolTimeoutError, DbUnavailableError, or the last database error.
 */
export async function saveMatch(
  pool: Pool,
  cfg: ApiConfig,
  m: NewMatch,
): Promise<{ match: MatchRow; attempts: number }> {
  const params = [m.userId, m.topic, m.proponentModel, m.opponentModel, m.winner, m.tokens ?? null];
  params.push(m.llmLatencyMs ?? null);
  for (let attempt = 1; ; attempt++) {
    try {
      const match = await withClient(
        pool,
        cfg,
        async (c) => (await c.query<MatchRow>(SAVE_MATCH_SQL, params)).rows[0]!,
      );
      return { match, attempts: attempt };
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (!code || !RETRYABLE_SQLSTATES.has(code) || attempt >= SAVE_ATTEMPTS) throw e;
      await sleep(20 * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}

/** Most transactions one `GET /api/matches` may be split into (`db_tx`). */
export const MAX_DB_TRANSACTIONS = 10;

const LIST_MATCHES_SQL = `SELECT ${MATCH_COLUMNS} FROM matches WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`;
const SLEEP_SQL = 'SELECT pg_sleep($1::float8 / 1000)';
/**
 * The sleep and the read as one statement (one round trip, one transaction): the uncorrelated subquery is a
 * one-time filter PostgreSQL evaluates before it reads any row, so the sleep runs first even when no row matches.
 */
const SLEEP_THEN_LIST_SQL = `SELECT ${MATCH_COLUMNS} FROM matches
  WHERE (SELECT true FROM pg_sleep($3::float8 / 1000)) AND user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`;

/**
 * A user's matches, newest first. Every transaction is one statement, so a
 * checkout holds its connection for one round trip (see saveMatch for why).
 * @param sleepMs when > 0, the read first runs `pg_sleep` for that long (ms; simulates a slow query: holds a
 *   PgBouncer server connection).
 * @param transactions undefined or 1: one checkout, one statement that sleeps, then reads (one transaction).
 *   N (2..MAX_DB_TRANSACTIONS): N separate checkouts, each one transaction holding sleepMs / N: N - 1 run
 *   `SELECT pg_sleep`, the last sleeps and reads. So the app pool and PgBouncer each see exactly N visits per
 *   request (what spec.load.requestMix[].dbTransactions models).
 * @throws DbPoolTimeoutError / DbUnavailableError when no connection is obtained; RangeError for transactions
 *   outside 1..MAX_DB_TRANSACTIONS (the route's schema refuses them first).
 */
export async function listMatches(
  pool: Pool,
  cfg: ApiConfig,
  userId: string,
  limit: number,
  sleepMs = 0,
  transactions = 1,
): Promise<MatchRow[]> {
  if (!Number.isInteger(transactions) || transactions < 1 || transactions > MAX_DB_TRANSACTIONS)
    throw new RangeError(`transactions must be an integer in 1..${MAX_DB_TRANSACTIONS}, got ${transactions}`);
  const each = sleepMs / transactions;
  for (let i = 1; i < transactions; i++) await withClient(pool, cfg, (c) => c.query(SLEEP_SQL, [each]));
  return withClient(pool, cfg, async (c) => {
    const r =
      each > 0
        ? await c.query<MatchRow>(SLEEP_THEN_LIST_SQL, [userId, limit, each])
        : await c.query<MatchRow>(LIST_MATCHES_SQL, [userId, limit]);
    return r.rows;
  });
}

/** A leaderboard row. */
export interface RatingRow {
  model_id: string;
  rating: number;
  matches: number;
  wins: number;
  losses: number;
  draws: number;
}

/** Top competitors by rating (ties by model_id). */
export async function leaderboard(pool: Pool, cfg: ApiConfig, limit = 100): Promise<RatingRow[]> {
  return withClient(pool, cfg, async (c) => {
    const sql =
      'SELECT model_id, rating, matches, wins, losses, draws FROM elo_ratings ORDER BY rating DESC, model_id LIMIT $1';
    const r = await c.query<RatingRow>(sql, [limit]);
    return r.rows;
  });
}
