/**
 * Operations routes: GET /health (the worker's slot view; 200, or 503 while
 * shutting down or when Redis is not reachable; it never queries the
 * database, a probe must not wait in the pool) and GET /metrics (Prometheus
 * text, merged over the process group).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { poolStats } from '../db.js';
import { type Health, HealthSchema } from '../health-schema.js';
import type { RouteContext } from './context.js';

/** The /health body of this worker now. */
export function healthBody({ deps, gauges }: RouteContext): Health {
  const { cfg, pool, redis, slots } = deps;
  const down = deps.isShuttingDown() || redis.shared.status !== 'ready';
  return {
    status: deps.isShuttingDown() ? 'shutting_down' : down ? 'degraded' : 'ok',
    pid: process.pid,
    max_concurrent: slots.max,
    available_slots: slots.available,
    processing_count: slots.inUse,
    waiting_count: slots.waiting,
    active_sessions: gauges.activeSessions,
    in_flight: gauges.inFlight,
    worker_concurrency: cfg.workerConcurrency,
    db_pool: poolStats(pool, cfg),
    redis: redis.stats,
    cluster: deps.cluster(),
    uptime_seconds: Math.round(process.uptime()),
  };
}

/** GET /health and GET /metrics. */
export const opsRoutes: FastifyPluginAsyncTypebox<RouteContext> = async (app, ctx) => {
  app.get('/health', { schema: { response: { 200: HealthSchema, 503: HealthSchema } } }, async (_req, reply) => {
    const body = healthBody(ctx);
    reply.code(body.status === 'ok' ? 200 : 503);
    return body;
  });

  app.get('/metrics', async (_req, reply) => {
    const m = await ctx.deps.metricsText();
    reply.header('content-type', m.contentType);
    return m.text;
  });
};
