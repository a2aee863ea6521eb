/**
 * The HTTP routes of the reference arena API (fastify). One instance per HTTP
 * worker process; see docs/reference-api.md for the endpoints.
 *
 * Errors are JSON `{error, message}`: 400 bad input (schema, malformed JSON),
 * 404 unknown route or task, 413 body over BODY_LIMIT_BYTES, 415 not JSON,
 * 429 rate limit (with Retry-After), 503 no LLM slot / no DB connection in
 * time / worker over WORKER_CONCURRENCY / shutting down.
 * Streams (SSE) send `data:` events, then a final named event; an error after
 * the stream started is an `event: error`. A client that disconnects aborts
 * its request: the LLM slot and any DB connection are released at once.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { ApiConfig } from './config.js';
import { DbPoolTimeoutError, DbUnavailableError, leaderboard, listMatches, poolStats, saveMatch, type Pool } from './db.js';
import type { Winner } from './elo.js';
import { LlmError, LlmRateLimitedError, MAX_LATENCY_OVERRIDE_MS, type SimulatedLlm } from './llm.js';
import type { Metrics } from './metrics.js';
import { enqueueTask, getTask, waitForTask } from './queue.js';
import { checkRateLimit, LEADERBOARD_KEY, RedisPoolTimeoutError, type RedisPool } from './redis.js';
import { AbortedError, type Semaphore, SlotTimeoutError } from './semaphore.js';

/** What the primary tells each worker about the process group. */
export interface ClusterInfo {
  primary_pid: number | null;
  http_workers_expected: number;
  http_workers_ready: number;
  queue_worker_pid: number | null;
}

export interface AppDeps {
  cfg: ApiConfig;
  pool: Pool;
  redis: RedisPool;
  slots: Semaphore;
  llm: SimulatedLlm;
  metrics: Metrics;
  cluster: () => ClusterInfo;
  metricsText: () => Promise<{ contentType: string; text: string }>;
  isShuttingDown: () => boolean;
}

const ID = '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$';
const MODEL = '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$';
const latencyOverride = { type: 'integer', minimum: 0, maximum: MAX_LATENCY_OVERRIDE_MS } as const;
/** Paths never rate-limited nor counted against WORKER_CONCURRENCY (probes and scrapes). */
const OPS_PATHS = new Set(['/health', '/metrics']);

const STATUS_NAMES: Record<number, string> = { 400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 413: 'payload_too_large', 415: 'unsupported_media_type' };

/** Abort when the client goes away before the response is complete. */
function abortOnClose(res: ServerResponse): AbortController {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac;
}

/** Start an SSE response on the raw socket (fastify no longer manages the reply). */
function startSse(reply: FastifyReply) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  return {
    send(data: unknown, event?: string) {
      if (!res.writableEnded && !res.destroyed) res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (!res.writableEnded) res.end();
    },
  };
}

/** Build the fastify app (not listening yet). */
export function buildApp(d: AppDeps): FastifyInstance {
  const { cfg, pool, redis, slots, llm, metrics } = d;
  const app = Fastify({
    bodyLimit: cfg.bodyLimitBytes,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 5000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415
  let inFlight = 0;
  /** Sessions on the LLM endpoints of this worker: waiting for a slot or holding one. */
  let activeSessions = 0;

  // ---------------------------------------------------------------- accounting, limits
  app.addHook('onRequest', async (req, reply) => {
    const started = process.hrtime.bigint();
    const path = req.url.split('?', 1)[0]!;
    const ops = OPS_PATHS.has(path);
    inFlight++;
    metrics.httpInFlight.inc();
    reply.raw.once('close', () => {
      inFlight--;
      metrics.httpInFlight.dec();
      const route = req.routeOptions.url ?? 'unmatched';
      const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : 'aborted';
      metrics.httpDuration.observe({ method: req.method, route, status }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    if (ops) return;
    if (inFlight > cfg.workerConcurrency) {
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'worker_busy', message: `this worker already serves ${cfg.workerConcurrency} requests (WORKER_CONCURRENCY)` });
    }
    if (path.startsWith('/api/') || path.startsWith('/chat/')) {
      const header = req.headers['x-client-id'];
      const clientId = typeof header === 'string' && /^[\x21-\x7e]{1,128}$/.test(header) ? header : `ip:${req.ip}`;
      try {
        const r = await checkRateLimit(redis.shared, clientId, cfg.rateLimitPerMinute, cfg.rateLimitWindowSeconds);
        reply.header('x-ratelimit-limit', r.limit).header('x-ratelimit-remaining', r.remaining);
        if (!r.allowed) {
          metrics.rateLimited.inc();
          const seconds = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
          return reply
            .code(429)
            .header('retry-after', String(seconds))
            .send({ error: 'rate_limited', message: `more than ${r.limit} requests in ${cfg.rateLimitWindowSeconds} s for client ${clientId}; retry after ${seconds} s`, retry_after_seconds: seconds });
        }
      } catch (e) {
        // fail open: a Redis hiccup must not take the API down
        process.stderr.write(`[http] rate limit check failed (allowed): ${(e as Error).message}\n`);
      }
    }
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?', 1)[0]}` });
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    if (err instanceof DbPoolTimeoutError) {
      metrics.dbPoolTimeouts.inc();
      return reply.code(503).header('retry-after', '1').send({ error: 'db_pool_timeout', message: err.message });
    }
    if (err instanceof DbUnavailableError) return reply.code(503).send({ error: 'db_unavailable', message: err.message });
    if (err instanceof RedisPoolTimeoutError) return reply.code(503).send({ error: 'redis_pool_timeout', message: err.message });
    if (err instanceof SlotTimeoutError) {
      metrics.slotTimeouts.inc();
      return reply.code(503).header('retry-after', '1').send({ error: 'llm_slots_busy', message: err.message, max_concurrent: slots.max, waited_ms: err.waitedMs });
    }
    if (err instanceof LlmRateLimitedError) return reply.code(503).header('retry-after', '5').send({ error: 'llm_rate_limited', message: err.message });
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message });
    const sc = err.statusCode ?? 500;
    if (sc >= 400 && sc < 500) return reply.code(sc).send({ error: STATUS_NAMES[sc] ?? 'bad_request', message: err.message });
    process.stderr.write(`[http] ${req.method} ${req.url}: ${err.stack ?? err.message}\n`);
    return reply.code(500).send({ error: 'internal', message: 'internal error (see the API log)' });
  });

  // ---------------------------------------------------------------- operations
  app.get('/health', async (_req, reply) => {
    const down = d.isShuttingDown() || redis.shared.status !== 'ready';
    reply.code(down ? 503 : 200);
    return {
      status: d.isShuttingDown() ? 'shutting_down' : down ? 'degraded' : 'ok',
      pid: process.pid,
      max_concurrent: slots.max,
      available_slots: slots.available,
      processing_count: slots.inUse,
      waiting_count: slots.waiting,
      active_sessions: activeSessions,
      in_flight: inFlight,
      worker_concurrency: cfg.workerConcurrency,
      db_pool: poolStats(pool, cfg),
      redis: redis.stats,
      cluster: d.cluster(),
      uptime_seconds: Math.round(process.uptime()),
    };
  });

  app.get('/metrics', async (_req, reply) => {
    const m = await d.metricsText();
    reply.header('content-type', m.contentType);
    return m.text;
  });

  // ---------------------------------------------------------------- reads
  app.get<{ Querystring: { user_id: string; limit: number; db_sleep_ms: number } }>(
    '/api/matches',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['user_id'],
          properties: {
            user_id: { type: 'string', pattern: ID },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            db_sleep_ms: { type: 'integer', minimum: 0, maximum: 10000, default: 0 },
          },
        },
      },
    },
    async (req) => {
      const rows = await listMatches(pool, cfg, req.query.user_id, req.query.limit, req.query.db_sleep_ms);
      return { user_id: req.query.user_id, matches: rows };
    },
  );

  app.get('/api/leaderboard', async (_req, reply) => {
    const cached = await redis.shared.get(LEADERBOARD_KEY).catch(() => null);
    if (cached) {
      reply.header('x-cache', 'HIT');
      return { ...(JSON.parse(cached) as object), cached: true };
    }
    const body = { generated_at: new Date().toISOString(), ttl_seconds: cfg.leaderboardCacheTtlSeconds, models: await leaderboard(pool, cfg) };
    await redis.shared.set(LEADERBOARD_KEY, JSON.stringify(body), 'EX', cfg.leaderboardCacheTtlSeconds).catch(() => undefined);
    reply.header('x-cache', 'MISS');
    return { ...body, cached: false };
  });

  // ---------------------------------------------------------------- writes
  const matchBody = {
    type: 'object',
    required: ['user_id', 'topic', 'proponent_model', 'opponent_model'],
    properties: {
      user_id: { type: 'string', pattern: ID },
      topic: { type: 'string', minLength: 1, maxLength: 500 },
      proponent_model: { type: 'string', pattern: MODEL },
      opponent_model: { type: 'string', pattern: MODEL },
      winner: { type: 'string', enum: ['proponent', 'opponent', 'draw'] },
      llm_latency_ms: latencyOverride,
    },
  } as const;
  interface MatchBody {
    user_id: string;
    topic: string;
    proponent_model: string;
    opponent_model: string;
    winner?: Winner;
    llm_latency_ms?: number;
  }
  const sameModels = (b: MatchBody, reply: FastifyReply) =>
    b.proponent_model === b.opponent_model ? reply.code(400).send({ error: 'bad_request', message: 'proponent_model and opponent_model must differ' }) : null;

  const invalidateLeaderboard = () => redis.shared.del(LEADERBOARD_KEY).catch(() => undefined);

  /** Save a judged match (no LLM call): the match save + ELO update transaction. */
  app.post<{ Body: MatchBody }>('/api/matches', { schema: { body: { ...matchBody, required: [...matchBody.required, 'winner'] } } }, async (req, reply) => {
    if (sameModels(req.body, reply)) return reply;
    const b = req.body;
    const saved = await saveMatch(pool, cfg, { userId: b.user_id, topic: b.topic, proponentModel: b.proponent_model, opponentModel: b.opponent_model, winner: b.winner! });
    metrics.matchSaveAttempts.observe(saved.attempts);
    await invalidateLeaderboard();
    return reply.code(201).send({ match: saved.match, attempts: saved.attempts });
  });

  /**
   * Acquire an LLM slot and a provider permit for an LLM endpoint, before the
   * response starts (so failures are plain JSON errors).
   * @returns the release function, or null when the client went away.
   */
  async function llmAdmission(reply: FastifyReply, signal: AbortSignal): Promise<(() => void) | null> {
    let release: (() => void) | undefined;
    try {
      release = await slots.acquire(cfg.slotWaitTimeoutSeconds * 1000, signal);
      const waited = await llm.reservePermit(signal);
      metrics.llmPermitWait.observe(waited / 1000);
      return release;
    } catch (e) {
      release?.();
      if (e instanceof AbortedError) {
        reply.hijack();
        reply.raw.destroy();
        return null;
      }
      if (e instanceof LlmRateLimitedError) metrics.llmCalls.inc({ outcome: 'rate_limited' });
      throw e;
    }
  }

  // ---------------------------------------------------------------- streams
  app.post<{ Body: { question: string; session_id?: string; llm_latency_ms?: number } }>(
    '/chat/stream',
    {
      schema: {
        body: {
          type: 'object',
          required: ['question'],
          properties: { question: { type: 'string', minLength: 1, maxLength: 4000 }, session_id: { type: 'string', pattern: ID }, llm_latency_ms: latencyOverride },
        },
      },
    },
    async (req, reply) => {
      const ac = abortOnClose(reply.raw);
      activeSessions++;
      let release: (() => void) | null = null;
      try {
        release = await llmAdmission(reply, ac.signal);
        if (!release) return reply;
        const sse = startSse(reply);
        const sessionId = req.body.session_id ?? randomUUID();
        sse.send({ type: 'start', session_id: sessionId, worker_pid: process.pid }, 'start');
        try {
          const r = await llm.generate({ latencyMs: req.body.llm_latency_ms, signal: ac.signal, onToken: (text, index) => sse.send({ type: 'token', index, text }) });
          metrics.llmCalls.inc({ outcome: 'ok' });
          sse.send({ type: 'done', session_id: sessionId, tokens: r.tokens, latency_ms: r.latencyMs }, 'done');
        } catch (e) {
          if (e instanceof AbortedError) metrics.llmCalls.inc({ outcome: 'aborted' });
          else if (e instanceof LlmError) {
            metrics.llmCalls.inc({ outcome: 'error' });
            sse.send({ error: 'llm_error', message: e.message }, 'error');
          } else throw e;
        }
        sse.end();
        return reply;
      } finally {
        release?.();
        activeSessions--;
      }
    },
  );

  app.post<{ Body: MatchBody }>('/api/tournament/match/stream', { schema: { body: matchBody } }, async (req, reply) => {
    if (sameModels(req.body, reply)) return reply;
    const b = req.body;
    const ac = abortOnClose(reply.raw);
    activeSessions++;
    let release: (() => void) | null = null;
    try {
      release = await llmAdmission(reply, ac.signal);
      if (!release) return reply;
      const sse = startSse(reply);
      sse.send({ type: 'start', topic: b.topic, proponent_model: b.proponent_model, opponent_model: b.opponent_model, worker_pid: process.pid }, 'start');
      const turns = 4; // proponent, opponent, proponent, opponent
      let result;
      try {
        result = await llm.generate({
          latencyMs: b.llm_latency_ms,
          signal: ac.signal,
          onToken: (text, index, total) => {
            const turn = Math.min(turns - 1, Math.floor((index * turns) / total));
            sse.send({ type: 'token', speaker: turn % 2 === 0 ? 'proponent' : 'opponent', turn: turn + 1, index, text });
          },
        });
        metrics.llmCalls.inc({ outcome: 'ok' });
      } catch (e) {
        if (e instanceof AbortedError) {
          metrics.llmCalls.inc({ outcome: 'aborted' });
          sse.end();
          return reply; // the client left: nothing is saved
        }
        if (e instanceof LlmError) {
          metrics.llmCalls.inc({ outcome: 'error' });
          sse.send({ error: 'llm_error', message: e.message }, 'error');
          sse.end();
          return reply;
        }
        throw e;
      }
      release();
      release = null; // the judge's verdict is saved without holding the LLM slot
      if (ac.signal.aborted) return reply;
      const r = Math.random();
      const winner: Winner = b.winner ?? (r < 0.1 ? 'draw' : r < 0.55 ? 'proponent' : 'opponent');
      try {
        const saved = await saveMatch(pool, cfg, { userId: b.user_id, topic: b.topic, proponentModel: b.proponent_model, opponentModel: b.opponent_model, winner, tokens: result.tokens, llmLatencyMs: result.latencyMs });
        metrics.matchSaveAttempts.observe(saved.attempts);
        await invalidateLeaderboard();
        sse.send({ type: 'match', match: saved.match, attempts: saved.attempts }, 'match');
      } catch (e) {
        const code = e instanceof DbPoolTimeoutError ? 'db_pool_timeout' : e instanceof DbUnavailableError ? 'db_unavailable' : 'internal';
        if (code === 'internal') process.stderr.write(`[http] match save failed: ${(e as Error).stack}\n`);
        sse.send({ error: code, message: code === 'internal' ? 'match could not be saved' : (e as Error).message }, 'error');
      }
      sse.end();
      return reply;
    } finally {
      release?.();
      activeSessions--;
    }
  });

  // ---------------------------------------------------------------- async queue
  app.post<{ Params: { scene: string }; Querystring: { sync: boolean }; Body: { prompt: string; user_id?: string; llm_latency_ms?: number } }>(
    '/api/llmchat/prompts/:scene/api',
    {
      schema: {
        params: { type: 'object', properties: { scene: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' } } },
        querystring: { type: 'object', properties: { sync: { type: 'boolean', default: false } } },
        body: {
          type: 'object',
          required: ['prompt'],
          properties: { prompt: { type: 'string', minLength: 1, maxLength: 8000 }, user_id: { type: 'string', pattern: ID }, llm_latency_ms: latencyOverride },
        },
      },
    },
    async (req, reply) => {
      const id = await enqueueTask(redis.shared, { scene: req.params.scene, prompt: req.body.prompt, userId: req.body.user_id, latencyMs: req.body.llm_latency_ms }, cfg.taskResultTtlSeconds);
      const statusUrl = `/api/llmchat/tasks/${id}`;
      if (!req.query.sync) return reply.code(202).header('location', statusUrl).send({ task_id: id, status: 'queued', status_url: statusUrl });
      const ac = abortOnClose(reply.raw);
      const v = await waitForTask(redis, id, cfg.taskSyncTimeoutSeconds * 1000, ac.signal).catch((e) => {
        if (ac.signal.aborted) return null;
        throw e;
      });
      if (ac.signal.aborted) {
        reply.hijack();
        reply.raw.destroy();
        return reply;
      }
      if (v && v.status === 'done') return reply.code(200).send(v);
      if (v && v.status === 'failed') return reply.code(502).send({ ...v, error: v.error ?? 'llm_error' });
      return reply.code(504).send({ error: 'task_timeout', message: `task not finished within ${cfg.taskSyncTimeoutSeconds} s; poll ${statusUrl}`, task_id: id, status_url: statusUrl });
    },
  );

  app.get<{ Params: { task_id: string } }>(
    '/api/llmchat/tasks/:task_id',
    { schema: { params: { type: 'object', properties: { task_id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } } } } },
    async (req, reply) => {
      const v = await getTask(redis.shared, req.params.task_id);
      if (!v) return reply.code(404).send({ error: 'not_found', message: `no task ${req.params.task_id} (unknown, or expired after ${cfg.taskResultTtlSeconds} s)` });
      return v;
    },
  );

  return app;
}
