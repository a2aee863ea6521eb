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

/**
 * Settings of the reference arena API (loadtest/api/) that have no field in the
 * ArenaDeployment spec, so the rendered Deployment does not set them and the
 * API falls back to the defaults documented in docs/reference-api.md. The local
 * stack (`arena stack up --api-env KEY=VALUE`) and the tests set them.
 */
export const REFERENCE_ENV = {
  /** Bind address (default 0.0.0.0). */
  host: 'HOST',
  /** Simulated LLM: streamed tokens per second (default 40). */
  llmTokensPerSecond: 'LLM_TOKENS_PER_SECOND',
  /** Simulated LLM: fraction of calls that fail, 0..1 (default 0). */
  llmErrorRate: 'LLM_ERROR_RATE',
  /** Sliding window of the per-client rate limit, seconds (default 60). */
  rateLimitWindowSeconds: 'RATE_LIMIT_WINDOW_SECONDS',
  /** TTL of the cached leaderboard, seconds (default 30). */
  leaderboardCacheTtlSeconds: 'LEADERBOARD_CACHE_TTL_SECONDS',
  /** TTL of async task state and results, seconds (default 3600). */
  taskResultTtlSeconds: 'TASK_RESULT_TTL_SECONDS',
  /** How long `?sync=true` waits for an async task, seconds (default 300). */
  taskSyncTimeoutSeconds: 'TASK_SYNC_TIMEOUT_SECONDS',
  /** Idle time after which a pending queue entry is reclaimed with XAUTOCLAIM, ms (default 60000). */
  queueClaimMinIdleMs: 'QUEUE_CLAIM_MIN_IDLE_MS',
  /** Deliveries after which a queue entry is marked failed (default 5). */
  queueMaxDeliveries: 'QUEUE_MAX_DELIVERIES',
  /** How long SIGTERM waits for in-flight requests and tasks, seconds (default 30). */
  shutdownGraceSeconds: 'SHUTDOWN_GRACE_SECONDS',
  /** Largest accepted request body, bytes (default 65536; larger gets 413). */
  bodyLimitBytes: 'BODY_LIMIT_BYTES',
} as const;
