/**
 * The environment variables the rendered API Deployment sets, and that the
 * reference arena API reads. One list, so the two cannot drift apart.
 */
export const ENV = {
  port: 'PORT',
  workers: 'WEB_CONCURRENCY',
  concurrencyPerWorker: 'WORKER_CONCURRENCY',
  databaseUrl: 'DATABASE_URL',
  dbHost: 'DB_HOST',
  dbPort: 'DB_PORT',
  dbName: 'DB_NAME',
  dbUser: 'DB_USER',
  dbPassword: 'DB_PASSWORD',
  dbPoolSize: 'DB_POOL_SIZE',
  dbMaxOverflow: 'DB_MAX_OVERFLOW',
  dbPoolTimeoutSeconds: 'DB_POOL_TIMEOUT',
  redisUrl: 'REDIS_URL',
  redisMaxConnections: 'REDIS_MAX_CONNECTIONS',
  llmSlots: 'MAX_CONCURRENT_REQUESTS',
  llmSlotWaitTimeoutSeconds: 'SLOT_WAIT_TIMEOUT_SECONDS',
  asyncConcurrency: 'ASYNC_CONCURRENCY',
  rateLimitPerMinute: 'RATE_LIMIT_PER_MINUTE',
  llmRequestsPerMinute: 'LLM_REQUESTS_PER_MINUTE',
  llmLatencyP50Ms: 'LLM_LATENCY_P50_MS',
  llmLatencyP99Ms: 'LLM_LATENCY_P99_MS',
} as const;
