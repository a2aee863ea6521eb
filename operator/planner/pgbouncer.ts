/**
 * PgBouncer pool sizing: the computed values of max_client_conn,
 * default_pool_size and reserve_pool_size when the spec leaves them unset.
 *
 * - default_pool_size (server connections per database/user pair per PgBouncer):
 *   the fewest servers whose queue keeps P(wait) <= PGBOUNCER_TARGET_PWAIT at
 *   the target load (Erlang C on each PgBouncer's share of the transactions;
 *   in session mode every client holds a server connection, so the need is the
 *   client count), at least PGBOUNCER_MIN_POOL, and at most what PostgreSQL's
 *   budget leaves per PgBouncer and pair after the reserve.
 * - reserve_pool_size: 10% of the pool (at least 1), trimmed to the budget.
 * - max_client_conn: the app's client connections at the replica count needed
 *   for the target, split over the PgBouncers, plus 20% for the uneven spread a
 *   Kubernetes Service gives, rounded up to a multiple of 100.
 *
 * Sources: PgBouncer configuration docs (max_client_conn, default_pool_size,
 * reserve_pool_size, pool_mode); Erlang C in erlang.ts.
 */
import { clientsPerPgBouncer, serverConnectionsPerPool } from './connections.js';
import { serversForWaitProbability } from './erlang.js';
import { ceilCount } from './ledger.js';

export const PGBOUNCER_TARGET_PWAIT = 0.1;
export const PGBOUNCER_MIN_POOL = 5;
export const PGBOUNCER_CLIENT_HEADROOM = 1.2;

export interface PgBouncerSizingInput {
  replicas: number;
  databaseUserPairs: number;
  poolMode: 'session' | 'transaction' | 'statement';
  maxClientConn?: number;
  defaultPoolSize?: number;
  reservePoolSize?: number;
  /** PostgreSQL connections open to the app (maxConnections - reservedConnections). */
  postgresBudget: number;
  /** App client connections at the replica count the target needs (replicas * perPod). */
  appClientConnections: number;
  /** Transactions per second through all PgBouncers at the target, and their mean hold time (ms). */
  transactionsPerSecond: number;
  transactionTimeMs: number;
}

export interface PgBouncerSizing {
  maxClientConn: number;
  defaultPoolSize: number;
  reservePoolSize: number;
  /** Which values were computed (false = taken from the spec). */
  computed: { maxClientConn: boolean; defaultPoolSize: boolean; reservePoolSize: boolean };
  /** Server connections one PgBouncer needs for the target (before the budget cap). */
  serversNeeded: number;
  /** Server connections PostgreSQL's budget leaves per PgBouncer and pair. */
  budgetPerPool: number;
}

/** Compute PgBouncer's pool settings; values set in the spec are kept as they are. */
export function sizePgBouncer(input: PgBouncerSizingInput): PgBouncerSizing {
  const perInstanceClients = clientsPerPgBouncer(input.appClientConnections, input.replicas);
  const serversNeeded =
    input.poolMode === 'session'
      ? perInstanceClients
      : input.transactionsPerSecond > 0
        ? serversForWaitProbability(
            input.transactionsPerSecond / input.replicas,
            input.transactionTimeMs,
            PGBOUNCER_TARGET_PWAIT,
          )
        : 1;
  const budgetPerPool = serverConnectionsPerPool(input.postgresBudget, input.replicas, input.databaseUserPairs);
  const poolWanted = Math.max(serversNeeded, PGBOUNCER_MIN_POOL);
  let reserve = input.reservePoolSize ?? Math.max(1, ceilCount(poolWanted * 0.1));
  const defaultPoolSize = input.defaultPoolSize ?? Math.max(1, Math.min(poolWanted, budgetPerPool - reserve));
  if (input.reservePoolSize === undefined && defaultPoolSize + reserve > budgetPerPool) {
    reserve = Math.max(0, budgetPerPool - defaultPoolSize);
  }
  const maxClientConn =
    input.maxClientConn ?? Math.max(100, ceilCount((perInstanceClients * PGBOUNCER_CLIENT_HEADROOM) / 100) * 100);
  return {
    maxClientConn,
    defaultPoolSize,
    reservePoolSize: reserve,
    computed: {
      maxClientConn: input.maxClientConn === undefined,
      defaultPoolSize: input.defaultPoolSize === undefined,
      reservePoolSize: input.reservePoolSize === undefined,
    },
    serversNeeded,
    budgetPerPool,
  };
}
