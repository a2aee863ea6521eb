/**
 * The body of `GET /health` (docs/reference-api.md): one TypeBox schema gives
 * the route's response schema (200 and 503), the TypeScript type of what the
 * handler returns, and the JSON Schema published as
 * `docs/schemas/health.schema.json` (schema-file.ts; a test fails when they differ).
 * Every figure is the answering worker's own (one HTTP worker of the group).
 */
import { Type, type Static } from '@sinclair/typebox';

const Pid = Type.Integer({ minimum: 1 });

/** What the primary tells each worker about the process group (as last broadcast). */
export const ClusterInfoSchema = Type.Object(
  {
    primary_pid: Type.Union([Pid, Type.Null()], {
      description: 'The cluster primary; null before its first broadcast.',
    }),
    http_workers_expected: Type.Integer({ minimum: 0, description: 'WEB_CONCURRENCY.' }),
    http_workers_ready: Type.Integer({ minimum: 0, description: 'HTTP workers listening now.' }),
    queue_worker_pid: Type.Union([Pid, Type.Null()], {
      description: 'The queue worker once it consumes; null without one.',
    }),
  },
  { description: "The process group as the primary last announced it (the 'cluster' object)." },
);

/** What the primary tells each worker about the process group. */
export type ClusterInfo = Static<typeof ClusterInfoSchema>;

/** The worker's PostgreSQL pool (pg). */
export const DbPoolStatsSchema = Type.Object(
  {
    max: Type.Integer({ minimum: 1, description: 'DB_POOL_SIZE + DB_MAX_OVERFLOW.' }),
    total: Type.Integer({ minimum: 0, description: 'Connections open.' }),
    idle: Type.Integer({ minimum: 0, description: 'Connections idle in the pool.' }),
    waiting: Type.Integer({ minimum: 0, description: 'Requests waiting for a connection.' }),
  },
  { description: "The worker's PostgreSQL pool." },
);

/** The worker's Redis connections (RedisPool). */
export const RedisStatsSchema = Type.Object(
  {
    max: Type.Integer({ minimum: 1, description: 'REDIS_MAX_CONNECTIONS.' }),
    open: Type.Integer({
      minimum: 0,
      description: 'Connections open: the shared one plus those for blocking commands.',
    }),
    blocking_in_use: Type.Integer({
      minimum: 0,
      description: 'Connections held for a blocking command (BLPOP of ?sync=true).',
    }),
    waiting: Type.Integer({ minimum: 0, description: 'Callers waiting for a blocking connection.' }),
    status: Type.String({
      description:
        "ioredis status of the shared connection: 'ready' when healthy (connecting, reconnecting, end, ...).",
    }),
  },
  { description: "The worker's Redis connections." },
);

/** The body of GET /health, 200 or 503. */
export const HealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('shutting_down')], {
      description: 'ok (200); degraded (503: Redis is not reachable); shutting_down (503: the worker drains).',
    }),
    pid: Pid,
    max_concurrent: Type.Integer({
      minimum: 1,
      description: 'LLM semaphore slots of this worker (MAX_CONCURRENT_REQUESTS).',
    }),
    available_slots: Type.Integer({ minimum: 0, description: 'Slots free now.' }),
    processing_count: Type.Integer({ minimum: 0, description: 'Slots held now.' }),
    waiting_count: Type.Integer({ minimum: 0, description: 'Requests waiting for a slot.' }),
    active_sessions: Type.Integer({ minimum: 0, description: 'Open LLM sessions: waiting for a slot or holding one.' }),
    in_flight: Type.Integer({ minimum: 0, description: 'Requests being served by this worker (this one included).' }),
    worker_concurrency: Type.Integer({
      minimum: 1,
      description: 'WORKER_CONCURRENCY: in-flight requests before 503 worker_busy.',
    }),
    db_pool: DbPoolStatsSchema,
    redis: RedisStatsSchema,
    cluster: ClusterInfoSchema,
    uptime_seconds: Type.Integer({ minimum: 0, description: 'Seconds since the worker process started.' }),
  },
  { $id: 'https://arena.dev/schemas/health.schema.json', title: 'arena reference API: GET /health (one worker)' },
);

/** The body of GET /health. */
export type Health = Static<typeof HealthSchema>;
