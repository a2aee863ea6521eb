/**
 * What every request goes through, installed on the root app by buildApp (so
 * every route plugin inherits it):
 * - accounting: the in-flight gauge and the duration histogram (by route
 *   pattern; `aborted` when the client left before the response completed);
 * - WORKER_CONCURRENCY: 503 `worker_busy` (uvicorn's --limit-concurrency);
 * - the per-client rate limit on /api/* and /chat/*: 429 `rate_limited` with
 *   Retry-After (fails open when the limiter errors);
 * - the error mapping of docs/reference-api.md: every error is JSON
 *   `{error, message}` (400, 404, 413, 415, 503 codes; 500 `internal`).
 * /health and /metrics are neither rate limited nor counted against WORKER_CONCURRENCY.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errText } from '../../../lib/errors.js';
import { DbPoolTimeoutError, DbUnavailableError } from '../db.js';
import { LlmRateLimitedError } from '../llm.js';
import { RedisPoolTimeoutError, type RateLimiter } from '../redis.js';
import { SlotTimeoutError } from '../semaphore.js';
import type { ApiApp, RouteContext } from './context.js';

/** Paths never rate-limited nor counted against WORKER_CONCURRENCY (probes and scrapes). */
export const OPS_PATHS: ReadonlySet<string> = new Set(['/health', '/metrics']);

const STATUS_NAMES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** The client a rate limit counts for: `X-Client-Id` (1..128 visible ASCII characters), else `ip:<address>`. */
export function clientIdOf(req: { headers: IncomingHttpHeaders; ip: string }): string {
  const header = req.headers['x-client-id'];
  return typeof header === 'string' && /^[\x21-\x7e]{1,128}$/.test(header) ? header : `ip:${req.ip}`;
}

/** Count the request in flight until its response closes, then observe its duration. */
function account({ deps, gauges }: RouteContext, req: FastifyRequest, reply: FastifyReply): void {
  const started = process.hrtime.bigint();
  const { metrics } = deps;
  gauges.inFlight++;
  metrics.httpInFlight.inc();
  reply.raw.once('close', () => {
    gauges.inFlight--;
    metrics.httpInFlight.dec();
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : 'aborted';
    metrics.httpDuration.observe(
      { method: req.method, route, status },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
  });
}

/** Ask the limiter for this request; answer 429 when it refuses. A limiter error lets the request through (logged). */
async function limitRate(ctx: RouteContext, limiter: RateLimiter, req: FastifyRequest, reply: FastifyReply) {
  const { cfg, metrics } = ctx.deps;
  const clientId = clientIdOf(req);
  try {
    const r = await limiter.check(clientId);
    reply.header('x-ratelimit-limit', r.limit).header('x-ratelimit-remaining', r.remaining);
    if (!r.allowed) {
      metrics.rateLimited.inc();
      const seconds = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      const message = `more than ${r.limit} requests in ${cfg.rateLimitWindowSeconds} s for client ${clientId}; retry after ${seconds} s`;
      return reply
        .code(429)
        .header('retry-after', String(seconds))
        .send({ error: 'rate_limited', message, retry_after_seconds: seconds });
    }
  } catch (e) {
    // fail open: a Redis hiccup must not take the API down
    process.stderr.write(`[http] rate limit check failed (allowed): ${errText(e)}\n`);
  }
  return undefined;
}

/** Install the onRequest hook: accounting, then WORKER_CONCURRENCY, then the rate limit of /api/* and /chat/*. */
export function installLimits(app: ApiApp, ctx: RouteContext, limiter: RateLimiter): void {
  const { cfg } = ctx.deps;
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?', 1)[0]!;
    account(ctx, req, reply);
    if (OPS_PATHS.has(path)) return;
    if (ctx.gauges.inFlight > cfg.workerConcurrency) {
      const message = `this worker already serves ${cfg.workerConcurrency} requests (WORKER_CONCURRENCY)`;
      return reply.code(503).header('retry-after', '1').send({ error: 'worker_busy', message });
    }
    if (path.startsWith('/api/') || path.startsWith('/chat/')) return limitRate(ctx, limiter, req, reply);
  });
}

type ApiError = Error & { statusCode?: number; validation?: unknown; code?: string };

/** A 503 answer: the `error` code, the body's extra fields and the Retry-After seconds (if any). */
type Unavailable = { error: string; extra?: object; retryAfter?: string };

/** The 503 for a dependency that refused or did not answer in time (counted in its metric), or null for other errors. */
function unavailable(err: Error, { metrics, slots }: RouteContext['deps']): Unavailable | null {
  if (err instanceof DbPoolTimeoutError) {
    metrics.dbPoolTimeouts.inc();
    return { error: 'db_pool_timeout', retryAfter: '1' };
  }
  if (err instanceof DbUnavailableError) return { error: 'db_unavailable' };
  if (err instanceof RedisPoolTimeoutError) return { error: 'redis_pool_timeout' };
  if (err instanceof SlotTimeoutError) {
    metrics.slotTimeouts.inc();
    return { error: 'llm_slots_busy', extra: { max_concurrent: slots.max, waited_ms: err.waitedMs }, retryAfter: '1' };
  }
  if (err instanceof LlmRateLimitedError) return { error: 'llm_rate_limited', retryAfter: '5' };
  return null;
}

/** Install the 404 handler and the error mapping (the table of docs/reference-api.md). */
export function installErrorHandlers(app: ApiApp, { deps }: RouteContext): void {
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?', 1)[0]}` });
  });
  app.setErrorHandler((err: ApiError, req, reply) => {
    const u = unavailable(err, deps);
    if (u) {
      if (u.retryAfter) reply.header('retry-after', u.retryAfter);
      return reply.code(503).send({ error: u.error, message: err.message, ...u.extra });
    }
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message });
    const sc = err.statusCode ?? 500;
    if (sc >= 400 && sc < 500) {
      return reply.code(sc).send({ error: STATUS_NAMES[sc] ?? 'bad_request', message: err.message });
    }
    process.stderr.write(`[http] ${req.method} ${req.url}: ${err.stack ?? err.message}\n`);
    return reply.code(500).send({ error: 'internal', message: 'internal error (see the API log)' });
  });
}
