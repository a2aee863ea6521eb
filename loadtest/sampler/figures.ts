/**
 * What the sampler's figures are measured against, as plain data: the report and the result
 * (loadtest/engine/result.ts) read it without loading the sampler's clients (pg, ioredis, undici).
 */

/** What the limit of each figure is (documentation for the summary). */
export const LIMIT_OF: Record<string, string> = {
  'pgbouncer.cl_active': 'max_client_conn',
  'pgbouncer.sv_active': '(default_pool_size + reserve_pool_size) x pools',
  'postgres.backends': 'max_connections',
  'postgres.active': 'max_connections',
  'redis.connected_clients': 'maxclients',
  'health.processing_count': 'sum of max_concurrent (LLM slots)',
  'health.db_pool_total': 'sum of db_pool.max',
  'health.db_pool_in_use': 'sum of db_pool.max (DB_POOL_SIZE + DB_MAX_OVERFLOW per worker)',
  'health.queue_in_flight': 'ASYNC_CONCURRENCY (queue worker consumers)',
  'host.cpu_busy': "this machine's cores (/proc/stat; the stack and the engine share them)",
};
