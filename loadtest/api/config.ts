/**
 * Configuration of the reference arena API: environment variables only, with
 * the names the rendered Kubernetes Deployment sets (operator/render/env.ts
 * `ENV`) plus the reference-only settings (`REFERENCE_ENV`). See
 * docs/reference-api.md for every variable, its unit and its default.
 */
import { ENV, REFERENCE_ENV } from '../../operator/render/env.js';

/** A bad environment variable: the message names it and says what is expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Where the API reaches PostgreSQL (normally PgBouncer). */
export type DbTarget =
  | { kind: 'fields'; host: string; port: number; database: string; user: string; password: string | undefined }
  | { kind: 'url'; connectionString: string };

/** Everything the API reads from the environment. Units are in the names. */
export interface ApiConfig {
  host: string;
  port: number;
  /** HTTP worker processes (WEB_CONCURRENCY). */
  workers: number;
  /** In-flight requests one worker accepts before answering 503 (WORKER_CONCURRENCY). */
  workerConcurrency: number;
  db: DbTarget;
  dbPoolSize: number;
  dbMaxOverflow: number;
  dbPoolTimeoutSeconds: number;
  redisUrl: string;
  /** Redis connections per process: 1 shared (pipelined) + up to N-1 for blocking commands. */
  redisMaxConnections: number;
  /** LLM semaphore slots per worker (MAX_CONCURRENT_REQUESTS). */
  llmSlots: number;
  slotWaitTimeoutSeconds: number;
  /** Task-queue entries processed at once by the queue worker (0 = no queue worker). */
  asyncConcurrency: number;
  rateLimitPerMinute: number;
  rateLimitWindowSeconds: number;
  llm: {
    p50Ms: number;
    p99Ms: number;
    tokensPerSecond: number;
    errorRate: number;
    /** Provider limit shared by every process (null = unlimited). */
    requestsPerMinute: number | null;
  };
  leaderboardCacheTtlSeconds: number;
  taskResultTtlSeconds: number;
  taskSyncTimeoutSeconds: number;
  queueClaimMinIdleMs: number;
  queueMaxDeliveries: number;
  shutdownGraceSeconds: number;
  bodyLimitBytes: number;
}

type Env = Record<string, string | undefined>;

function num(
  env: Env,
  name: string,
  dflt: number | undefined,
  check: { int?: boolean; min?: number; max?: number } = {},
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    if (dflt === undefined) throw new ConfigError(`${name}: required (not set)`);
    return dflt;
  }
  const n = Number(raw);
  const kind = check.int ? 'an integer' : 'a number';
  if (!Number.isFinite(n) || (check.int && !Number.isInteger(n)))
    throw new ConfigError(`${name}: must be ${kind}, got '${raw}'`);
  if (check.min !== undefined && n < check.min) throw new ConfigError(`${name}: must be >= ${check.min}, got ${raw}`);
  if (check.max !== undefined && n > check.max) throw new ConfigError(`${name}: must be <= ${check.max}, got ${raw}`);
  return n;
}

const int = (env: Env, name: string, dflt: number | undefined, min = 1, max = 1_000_000_000) =>
  num(env, name, dflt, { int: true, min, max });

/**
 * Read and check the configuration.
 * @param env the environment (process.env by default).
 * @throws ConfigError naming the first bad variable.
 */
export function loadConfig(env: Env = process.env): ApiConfig {
  const R = REFERENCE_ENV;
  const db: DbTarget = env[ENV.dbHost]
    ? {
        kind: 'fields',
        host: env[ENV.dbHost]!,
        port: int(env, ENV.dbPort, 5432, 1, 65535),
        database: env[ENV.dbName] || 'arena',
        user: env[ENV.dbUser] || 'arena',
        password: env[ENV.dbPassword],
      }
    : env[ENV.databaseUrl]
      ? { kind: 'url', connectionString: env[ENV.databaseUrl]! }
      : (() => {
          throw new ConfigError(`${ENV.dbHost} or ${ENV.databaseUrl}: one of them is required`);
        })();
  const p50 = num(env, ENV.llmLatencyP50Ms, 8000, { min: 0.001, max: 3_600_000 });
  const p99 = num(env, ENV.llmLatencyP99Ms, Math.max(p50, 30000), { min: 0.001, max: 3_600_000 });
  if (p50 > p99) throw new ConfigError(`${ENV.llmLatencyP50Ms}: must be <= ${ENV.llmLatencyP99Ms} (${p50} > ${p99})`);
  const rpm = env[ENV.llmRequestsPerMinute];
  return {
    host: env[R.host] || '0.0.0.0',
    port: int(env, ENV.port, 8000, 0, 65535),
    workers: int(env, ENV.workers, 1, 1, 1024),
    workerConcurrency: int(env, ENV.concurrencyPerWorker, 100),
    db,
    dbPoolSize: int(env, ENV.dbPoolSize, 5),
    dbMaxOverflow: int(env, ENV.dbMaxOverflow, 10, 0),
    dbPoolTimeoutSeconds: num(env, ENV.dbPoolTimeoutSeconds, 30, { min: 0.001, max: 3600 }),
    redisUrl: env[ENV.redisUrl] || 'redis://127.0.0.1:6379/0',
    redisMaxConnections: int(env, ENV.redisMaxConnections, 50),
    llmSlots: int(env, ENV.llmSlots, 3),
    slotWaitTimeoutSeconds: num(env, ENV.llmSlotWaitTimeoutSeconds, 300, { min: 0, max: 86400 }),
    asyncConcurrency: int(env, ENV.asyncConcurrency, 8, 0),
    rateLimitPerMinute: int(env, ENV.rateLimitPerMinute, 100),
    rateLimitWindowSeconds: num(env, R.rateLimitWindowSeconds, 60, { min: 0.1, max: 86400 }),
    llm: {
      p50Ms: p50,
      p99Ms: p99,
      tokensPerSecond: num(env, R.llmTokensPerSecond, 40, { min: 0.001, max: 100000 }),
      errorRate: num(env, R.llmErrorRate, 0, { min: 0, max: 1 }),
      requestsPerMinute: rpm === undefined || rpm.trim() === '' ? null : int(env, ENV.llmRequestsPerMinute, undefined),
    },
    leaderboardCacheTtlSeconds: int(env, R.leaderboardCacheTtlSeconds, 30),
    taskResultTtlSeconds: int(env, R.taskResultTtlSeconds, 3600),
    taskSyncTimeoutSeconds: num(env, R.taskSyncTimeoutSeconds, 300, { min: 0.1, max: 86400 }),
    queueClaimMinIdleMs: int(env, R.queueClaimMinIdleMs, 60000, 100),
    queueMaxDeliveries: int(env, R.queueMaxDeliveries, 5),
    shutdownGraceSeconds: num(env, R.shutdownGraceSeconds, 30, { min: 0, max: 3600 }),
    bodyLimitBytes: int(env, R.bodyLimitBytes, 65536, 64),
  };
}

/** Per-process DB pool size: SQLAlchemy's pool_size + max_overflow. */
export const dbPoolMax = (c: ApiConfig) => c.dbPoolSize + c.dbMaxOverflow;
