/**
 * Connection-count formulas. Each is one line; they live here so a reader finds
 * every connection budget in one place.
 *
 * Sources:
 * - SQLAlchemy QueuePool: at most pool_size + max_overflow connections per engine,
 *   one engine per worker process (docs: "Connection Pooling", QueuePool).
 * - PostgreSQL: max_connections minus superuser_reserved_connections (and
 *   reserved_connections, PG 16+) are open to ordinary roles (docs: "Connections and Authentication").
 * - PgBouncer: max_client_conn is per process; server connections are
 *   default_pool_size (+ reserve_pool_size) per database/user pair; file
 *   descriptors needed are max_client_conn + (max pool_size * databases * users)
 *   (docs: pgbouncer.ini, "max_client_conn").
 * - Redis: maxclients; Redis keeps 32 file descriptors for internal use, so it
 *   needs maxclients + 32 (docs: "Redis client handling", maximum number of clients).
 */

/** Clients kept free in Redis for the operator's and the saturation sampler's own connections. */
export const RESERVED_REDIS_CLIENTS = 2;
/** File descriptors Redis reserves for itself beyond maxclients. */
export const REDIS_RESERVED_FDS = 32;

/** Database connections one API pod may open: workersPerPod * (poolSize + maxOverflow). */
export function dbConnectionsPerPod(workersPerPod: number, poolSize: number, maxOverflow: number): number {
  return workersPerPod * (poolSize + maxOverflow);
}

/** Database client connections all API pods open at a replica count: replicas * perPod. */
export function appDbConnections(replicas: number, perPod: number): number {
  return replicas * perPod;
}

/** Connections PostgreSQL accepts from ordinary roles: maxConnections - reservedConnections. */
export function postgresBudget(maxConnections: number, reservedConnections: number): number {
  return Math.max(0, maxConnections - reservedConnections);
}

/** Server connections all PgBouncers may open: replicas * (defaultPoolSize + reservePoolSize) * databaseUserPairs. */
export function pgbouncerServerConnections(
  replicas: number,
  defaultPoolSize: number,
  reservePoolSize: number,
  databaseUserPairs: number,
): number {
  return replicas * (defaultPoolSize + reservePoolSize) * databaseUserPairs;
}

/**
 * Server connections PostgreSQL's budget leaves one PgBouncer for one database/user pair
 * (default_pool_size + reserve_pool_size): floor(postgresBudget / (replicas * databaseUserPairs)).
 */
export function serverConnectionsPerPool(postgresBudget: number, replicas: number, databaseUserPairs: number): number {
  return Math.floor(postgresBudget / (replicas * databaseUserPairs));
}

/** Client connections all PgBouncers accept: replicas * maxClientConn. */
export function pgbouncerClientCapacity(replicas: number, maxClientConn: number): number {
  return replicas * maxClientConn;
}

/** Client connections one PgBouncer receives when a Service spreads them evenly: ceil(clients / replicas). */
export function clientsPerPgBouncer(clientConnections: number, replicas: number): number {
  return Math.ceil(clientConnections / replicas);
}

/** Redis connections one API pod may open: workersPerPod * redis.maxConnections. */
export function redisConnectionsPerPod(workersPerPod: number, maxConnections: number): number {
  return workersPerPod * maxConnections;
}

/** Redis clients at a replica count: replicas * perPod + RESERVED_REDIS_CLIENTS. */
export function redisClients(replicas: number, perPod: number): number {
  return replicas * perPod + RESERVED_REDIS_CLIENTS;
}

/** Most replicas whose Redis clients fit maxclients: floor((maxClients - RESERVED_REDIS_CLIENTS) / perPod). */
export function redisReplicaCap(maxClients: number, perPod: number): number {
  return replicasWithin(maxClients - RESERVED_REDIS_CLIENTS, perPod);
}

/** File descriptors one PgBouncer needs: maxClientConn + (defaultPoolSize + reservePoolSize) * databaseUserPairs. */
export function pgbouncerFileDescriptors(
  maxClientConn: number,
  defaultPoolSize: number,
  reservePoolSize: number,
  databaseUserPairs: number,
): number {
  return maxClientConn + (defaultPoolSize + reservePoolSize) * databaseUserPairs;
}

/** File descriptors Redis needs: maxClients + 32. */
export function redisFileDescriptors(maxClients: number): number {
  return maxClients + REDIS_RESERVED_FDS;
}

/** Largest replica count whose connections fit a budget: floor(budget / perPod), or Infinity without a budget. */
export function replicasWithin(budget: number, perPod: number): number {
  if (!Number.isFinite(budget)) return Infinity;
  return perPod > 0 ? Math.floor(budget / perPod) : Infinity;
}

/** Share of a connection budget in use: used / limit (a limit below 1 counts as 1; > 1 means over budget). */
export function budgetUtilization(used: number, limit: number): number {
  return used / Math.max(1, limit);
}
