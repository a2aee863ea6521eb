/**
 * What the route plugins share: the worker's dependencies (`AppDeps`, given to
 * buildApp by main.ts, or by the tests), its live counters, and the type of
 * the app (fastify with the TypeBox type provider: a route's TypeBox schema
 * both validates the request and types the handler).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ApiConfig } from '../config.js';
import type { Pool } from '../db.js';
import type { ClusterInfo } from '../health-schema.js';
import type { SimulatedLlm } from '../llm.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter, RedisPool } from '../redis.js';
import type { Semaphore } from '../semaphore.js';

/** The worker's dependencies: one of each per HTTP worker process. */
export interface AppDeps {
  cfg: ApiConfig;
  pool: Pool;
  redis: RedisPool;
  slots: Semaphore;
  llm: SimulatedLlm;
  metrics: Metrics;
  /** The process group as the primary last announced it (/health `cluster`). */
  cluster: () => ClusterInfo;
  /** The /metrics body (merged over the group by the primary). */
  metricsText: () => Promise<{ contentType: string; text: string }>;
  isShuttingDown: () => boolean;
  /** The per-client limit of /api/* and /chat/*; default: the Redis sliding window on `redis.shared`. */
  rateLimiter?: RateLimiter;
}

/** Live counters of the worker, kept by the accounting hook and the LLM routes, read by /health. */
export interface WorkerGauges {
  /** Requests being served. */
  inFlight: number;
  /** Sessions on the LLM endpoints: waiting for a slot or holding one. */
  activeSessions: number;
}

/** The options every route plugin is registered with (`gauges` is one object the plugins share). */
export type RouteContext = { deps: AppDeps; gauges: WorkerGauges };

/** The API's fastify instance: TypeBox schemas type the handlers. */
export type ApiApp = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;
