/**
 * The HTTP app of the reference arena API (fastify with the TypeBox type
 * provider). One instance per HTTP worker process; see docs/reference-api.md
 * for the endpoints.
 *
 * buildApp installs what every request goes through (routes/guards.ts:
 * accounting, WORKER_CONCURRENCY, the rate limit, the JSON error mapping) and
 * registers one plugin per route group:
 * - routes/ops.ts: GET /health, GET /metrics;
 * - routes/matches.ts: GET/POST /api/matches, GET /api/leaderboard;
 * - routes/streams.ts: the SSE streams POST /chat/stream and POST /api/tournament/match/stream;
 * - routes/tasks.ts: the queued LLM tasks POST /api/llmchat/prompts/{scene}/api, GET /api/llmchat/tasks/{task_id}.
 *
 * Errors are JSON `{error, message}`: 400 bad input (schema, malformed JSON),
 * 404 unknown route or task, 413 body over BODY_LIMIT_BYTES, 415 not JSON,
 * 429 rate limit (with Retry-After), 503 no LLM slot / no DB connection in
 * time / worker over WORKER_CONCURRENCY / shutting down.
 * Streams (SSE) send `data:` events, then a final named event; an error after
 * the stream started is an `event: error`. A client that disconnects aborts
 * its request: the LLM slot and any DB connection are released at once.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import { redisRateLimiter } from './redis.js';
import type { ApiApp, AppDeps, RouteContext } from './routes/context.js';
import { installErrorHandlers, installLimits } from './routes/guards.js';
import { matchRoutes } from './routes/matches.js';
import { opsRoutes } from './routes/ops.js';
import { streamRoutes } from './routes/streams.js';
import { taskRoutes } from './routes/tasks.js';

/** The process group's state (/health `cluster`), the app's type and its dependencies, for main.ts and the tests. */
export type { ClusterInfo } from './health-schema.js';
export type { ApiApp, AppDeps } from './routes/context.js';

/** Build the fastify app (not listening yet; the route plugins load on ready(), listen() or inject()). */
export function buildApp(deps: AppDeps): ApiApp {
  const { cfg } = deps;
  const app = Fastify({
    bodyLimit: cfg.bodyLimitBytes,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 5000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415
  const ctx: RouteContext = { deps, gauges: { inFlight: 0, activeSessions: 0 } };
  const limiter =
    deps.rateLimiter ?? redisRateLimiter(deps.redis.shared, cfg.rateLimitPerMinute, cfg.rateLimitWindowSeconds);
  installLimits(app, ctx, limiter);
  installErrorHandlers(app, ctx);
  void app.register(opsRoutes, ctx);
  void app.register(matchRoutes, ctx);
  void app.register(streamRoutes, ctx);
  void app.register(taskRoutes, ctx);
  return app;
}
