/**
 * PostgreSQL saturation: client backends from pg_stat_activity by state
 * against max_connections. A role without pg_read_all_stats (or superuser)
 * sees other roles' backends without their state: they count in `backends`
 * but in no state column.
 */
import type pg from 'pg';

export interface PostgresReading {
  /** Client backends (backend_type = 'client backend'). */
  backends: number;
  active: number;
  idle: number;
  idle_in_transaction: number;
  /** Backends waiting on a heavyweight lock (wait_event_type = 'Lock'). */
  waiting_on_locks: number;
  /** Backends of `user`, when given. */
  user_backends: number | null;
  max_connections: number;
  superuser_reserved_connections: number;
}

export const POSTGRES_QUERY = `SELECT count(*) AS backends,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')) AS idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_locks,
       count(*) FILTER (WHERE usename = $1) AS user_backends,
       current_setting('max_connections') AS max_connections,
       current_setting('superuser_reserved_connections') AS reserved
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'`;

/** Read pg_stat_activity on an open client; `user` counts that role's backends too. */
export async function readPostgres(client: pg.Client, user?: string): Promise<PostgresReading> {
  const r = await client.query<Record<string, string>>(POSTGRES_QUERY, [user ?? null]);
  const row = r.rows[0]!;
  const n = (k: string) => Number(row[k] ?? 0);
  return {
    backends: n('backends'),
    active: n('active'),
    idle: n('idle'),
    idle_in_transaction: n('idle_in_transaction'),
    waiting_on_locks: n('waiting_on_locks'),
    user_backends: user === undefined ? null : n('user_backends'),
    max_connections: n('max_connections'),
    superuser_reserved_connections: n('reserved'),
  };
}
