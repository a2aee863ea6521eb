/**
 * Unit tests of the HTTP app (buildApp) with fastify's inject(): no network,
 * no PostgreSQL or Redis. The app gets its real dependencies: a pg pool and a
 * Redis pool pointed at a port nothing listens on (the Redis pool connects
 * lazily, so it never does), the real LLM semaphore and simulated provider.
 * The tests cover what is answered before PostgreSQL or Redis would be asked
 * (400, 404, 413, 415), the semaphore's and WORKER_CONCURRENCY's 503s, the
 * pool refusing (503 db_unavailable), /health, and the 429 through the app's
 * rate-limit seam (`AppDeps.rateLimiter`; the Redis window itself runs in
 * loadtest/stack/stack.test.ts against a real Redis).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from './config.js';
import { createPool } from './db.js';
import { HealthSchema } from './health-schema.js';
import { SimulatedLlm } from './llm.js';
import { Metrics } from './metrics.js';
import { RedisPool, type RateDecision, type RateLimiter } from './redis.js';
import { clientIdOf } from './routes/guards.js';
import { Semaphore } from './semaphore.js';
import { type ApiApp, buildApp } from './server.js';

/** A port nothing listens on (taken from the kernel, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const NOWHERE = await closedPort();

/** The rate limiter the app asks: admits everything, records the clients it was asked about. */
function admitting(): RateLimiter & { clients: string[] } {
  const clients: string[] = [];
  return {
    clients,
    check: async (c) => (clients.push(c), { allowed: true, limit: 20, remaining: 19, retryAfterMs: 0 }),
  };
}

/** A rate limiter whose window is full: every request is refused for `retryAfterMs`. */
function full(retryAfterMs: number): RateLimiter & { clients: string[] } {
  const clients: string[] = [];
  const decision: RateDecision = { allowed: false, limit: 20, remaining: 0, retryAfterMs };
  return { clients, check: async (c) => (clients.push(c), decision) };
}

interface Built {
  app: ApiApp;
  pool: ReturnType<typeof createPool>;
  redis: RedisPool;
  slots: Semaphore;
  metrics: Metrics;
}
const built: Built[] = [];

/** The app with real dependencies that reach nothing (see the file comment). */
async function build(env: Record<string, string> = {}, o: { rateLimiter?: RateLimiter; shuttingDown?: boolean } = {}) {
  const cfg = loadConfig({
    DATABASE_URL: `postgres://arena@127.0.0.1:${NOWHERE}/arena`,
    REDIS_URL: `redis://127.0.0.1:${NOWHERE}/0`,
    BODY_LIMIT_BYTES: '1024',
    MAX_CONCURRENT_REQUESTS: '1',
    SLOT_WAIT_TIMEOUT_SECONDS: '0.05',
    LLM_TOKENS_PER_SECOND: '100',
    ...env,
  });
  const pool = createPool(cfg, 'server-test');
  const redis = new RedisPool(cfg.redisUrl, 2, 'server-test', { lazyConnect: true });
  const slots = new Semaphore(cfg.llmSlots);
  const metrics = new Metrics();
  const app = buildApp({
    cfg,
    pool,
    redis,
    slots,
    llm: new SimulatedLlm(cfg.llm, redis.shared),
    metrics,
    cluster: () => ({ primary_pid: 4242, http_workers_expected: 2, http_workers_ready: 1, queue_worker_pid: null }),
    metricsText: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', text: 'arena_up 1\n' }),
    isShuttingDown: () => o.shuttingDown ?? false,
    rateLimiter: o.rateLimiter ?? admitting(),
  });
  await app.ready();
  const b = { app, pool, redis, slots, metrics };
  built.push(b);
  return b;
}

after(async () => {
  for (const b of built) {
    await b.app.close();
    await b.pool.end();
    b.redis.shared.disconnect();
  }
});

const json = { 'content-type': 'application/json' };
const match = { user_id: 'u1', topic: 't', proponent_model: 'gpt', opponent_model: 'claude' };

/** Status, `error` code and content type of a JSON error answer. */
function assertError(
  r: { statusCode: number; headers: Record<string, unknown>; json(): any },
  status: number,
  error: string,
) {
  assert.equal(r.statusCode, status, JSON.stringify(r.json()));
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.json().error, error);
  assert.equal(typeof r.json().message, 'string');
}

test('400 bad_request: malformed JSON and schema violations, answered before the database or Redis is asked', async () => {
  const { app, pool, redis } = await build();
  const cases: [string, string, string | undefined, RegExp][] = [
    ['POST', '/api/matches', '{"user_id": ', /not valid JSON/],
    [
      'POST',
      '/api/matches',
      JSON.stringify({ ...match, winner: 'nobody' }),
      /^body\/winner must be equal to one of the allowed values$/,
    ],
    [
      'POST',
      '/api/matches',
      JSON.stringify({ ...match, opponent_model: 'gpt', winner: 'draw' }),
      /^proponent_model and opponent_model must differ$/,
    ],
    ['POST', '/api/matches', JSON.stringify(match), /^body must have required property 'winner'$/],
    [
      'POST',
      '/api/matches',
      JSON.stringify({ ...match, winner: 'draw', llm_latency_ms: -1 }),
      /^body\/llm_latency_ms must be >= 0$/,
    ],
    ['POST', '/api/tournament/match/stream', JSON.stringify({ ...match, opponent_model: 'gpt' }), /must differ/],
    ['GET', '/api/matches', undefined, /^querystring must have required property 'user_id'$/],
    ['GET', '/api/matches?user_id=u1&limit=101', undefined, /^querystring\/limit must be <= 100$/],
    ['GET', '/api/matches?user_id=%20u', undefined, /^querystring\/user_id must match pattern/],
    [
      'POST',
      '/chat/stream',
      JSON.stringify({ question: '' }),
      /^body\/question must NOT have fewer than 1 characters$/,
    ],
    ['GET', '/api/llmchat/tasks/not-a-uuid', undefined, /^params\/task_id must match pattern/],
    [
      'POST',
      '/api/llmchat/prompts/Bad%20Scene/api',
      JSON.stringify({ prompt: 'p' }),
      /^params\/scene must match pattern/,
    ],
    [
      'POST',
      '/api/llmchat/prompts/summary/api?sync=maybe',
      JSON.stringify({ prompt: 'p' }),
      /^querystring\/sync must be boolean$/,
    ],
    ['POST', '/api/llmchat/prompts/summary/api', '{}', /^body must have required property 'prompt'$/],
  ];
  for (const [method, url, payload, message] of cases) {
    const r = await app.inject({
      method: method as 'GET' | 'POST',
      url,
      payload,
      headers: payload === undefined ? {} : json,
    });
    assertError(r, 400, 'bad_request');
    assert.match(r.json().message, message, `${method} ${url}`);
  }
  assert.equal(pool.totalCount, 0, 'no database connection was attempted');
  assert.equal(redis.shared.status, 'wait', 'Redis was never asked');
});

test('404 not_found: unknown route or method; 413 payload_too_large; 415 unsupported_media_type', async () => {
  const { app } = await build();
  const nf = await app.inject({ method: 'GET', url: '/nope?x=1' });
  assertError(nf, 404, 'not_found');
  assert.equal(nf.json().message, 'no route GET /nope');
  assertError(await app.inject({ method: 'DELETE', url: '/api/matches' }), 404, 'not_found');
  assertError(await app.inject({ method: 'PUT', url: '/health' }), 404, 'not_found');

  const big = await app.inject({
    method: 'POST',
    url: '/chat/stream',
    headers: json,
    payload: JSON.stringify({ question: 'x'.repeat(2000) }),
  });
  assertError(big, 413, 'payload_too_large');
  for (const type of ['text/plain', 'application/xml']) {
    const r = await app.inject({
      method: 'POST',
      url: '/chat/stream',
      headers: { 'content-type': type },
      payload: 'hello',
    });
    assertError(r, 415, 'unsupported_media_type');
  }
});

test('429 rate_limited with Retry-After (whole seconds, rounded up) when the window is full; /health, /metrics not limited', async () => {
  const limiter = full(1200);
  const { app, metrics } = await build({}, { rateLimiter: limiter });
  const r = await app.inject({ method: 'GET', url: '/api/leaderboard', headers: { 'x-client-id': 'client-7' } });
  assertError(r, 429, 'rate_limited');
  assert.equal(r.headers['retry-after'], '2');
  assert.equal(r.json().retry_after_seconds, 2);
  assert.equal(r.headers['x-ratelimit-limit'], '20');
  assert.equal(r.headers['x-ratelimit-remaining'], '0');
  assert.equal(r.json().message, 'more than 20 requests in 60 s for client client-7; retry after 2 s');
  // refused before validation: a bad body is not even looked at
  assertError(
    await app.inject({ method: 'POST', url: '/chat/stream', headers: json, payload: '{' }),
    429,
    'rate_limited',
  );
  assert.deepEqual(limiter.clients, ['client-7', 'ip:127.0.0.1']);
  assert.equal((await metrics.rateLimited.get()).values[0]?.value, 2);

  for (const url of ['/health', '/metrics'])
    assert.notEqual((await app.inject({ method: 'GET', url })).statusCode, 429, url);
  assert.equal(limiter.clients.length, 2, '/health and /metrics never ask the limiter');
  const soon = await build({}, { rateLimiter: full(1) });
  assert.equal(
    (await soon.app.inject({ method: 'GET', url: '/api/leaderboard' })).headers['retry-after'],
    '1',
    'at least 1 s',
  );
});

test('rate limit: the client is X-Client-Id (1..128 visible ASCII) else the IP; a failing limiter lets requests through', async () => {
  assert.equal(clientIdOf({ headers: { 'x-client-id': 'a:b/c@d' }, ip: '10.0.0.1' }), 'a:b/c@d');
  assert.equal(clientIdOf({ headers: { 'x-client-id': 'has space' }, ip: '10.0.0.1' }), 'ip:10.0.0.1');
  assert.equal(clientIdOf({ headers: { 'x-client-id': 'x'.repeat(129) }, ip: '10.0.0.1' }), 'ip:10.0.0.1');
  assert.equal(clientIdOf({ headers: {}, ip: '10.0.0.1' }), 'ip:10.0.0.1');

  const broken: RateLimiter = { check: async () => Promise.reject(new Error('Connection is closed.')) };
  const { app } = await build({}, { rateLimiter: broken });
  const r = await app.inject({ method: 'GET', url: '/api/matches' });
  assertError(r, 400, 'bad_request'); // fail open: the request went on to validation
  assert.equal(r.headers['x-ratelimit-limit'], undefined);
});

test('503 llm_slots_busy with Retry-After when no LLM slot frees in time; then the stream runs (SSE framing)', async () => {
  const { app, slots, metrics } = await build();
  const release = await slots.acquire(0);
  const r = await app.inject({
    method: 'POST',
    url: '/chat/stream',
    headers: json,
    payload: JSON.stringify({ question: 'why?' }),
  });
  assertError(r, 503, 'llm_slots_busy');
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(r.json().max_concurrent, 1);
  assert.ok(r.json().waited_ms >= 40, `waited ${r.json().waited_ms} ms`);
  assert.equal((await metrics.slotTimeouts.get()).values[0]?.value, 1);
  release();

  const ok = await app.inject({
    method: 'POST',
    url: '/chat/stream',
    headers: json,
    payload: JSON.stringify({ question: 'why?', session_id: 's1', llm_latency_ms: 30 }),
  });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(ok.headers['cache-control'], 'no-cache, no-transform');
  const events = ok.body.split('\n\n').filter(Boolean);
  assert.match(events[0]!, /^event: start\ndata: \{"type":"start","session_id":"s1","worker_pid":\d+\}$/);
  assert.match(events[1]!, /^data: \{"type":"token","index":0,"text":"[a-z]+"\}$/);
  assert.match(events.at(-1)!, /^event: done\ndata: \{"type":"done","session_id":"s1","tokens":3,"latency_ms":\d+\}$/);
  assert.equal(events.length, 5);
  assert.equal(slots.inUse, 0, 'the slot is released');
});

test('503 worker_busy with Retry-After past WORKER_CONCURRENCY; /health still answers and shows the waiting session', async () => {
  const { app, slots } = await build({ WORKER_CONCURRENCY: '1', SLOT_WAIT_TIMEOUT_SECONDS: '0.3' });
  const release = await slots.acquire(0);
  const waiting = app.inject({
    method: 'POST',
    url: '/chat/stream',
    headers: json,
    payload: JSON.stringify({ question: 'q' }),
  });
  while (slots.waiting === 0) await new Promise((r) => setTimeout(r, 5));
  const busy = await app.inject({
    method: 'POST',
    url: '/chat/stream',
    headers: json,
    payload: JSON.stringify({ question: 'q' }),
  });
  assertError(busy, 503, 'worker_busy');
  assert.equal(busy.headers['retry-after'], '1');
  assert.equal(busy.json().message, 'this worker already serves 1 requests (WORKER_CONCURRENCY)');
  const h = (await app.inject({ method: 'GET', url: '/health' })).json();
  assert.equal(h.in_flight, 2, 'the waiting stream and the probe itself');
  assert.equal(h.active_sessions, 1);
  assert.equal(h.waiting_count, 1);
  assert.equal(h.processing_count, 1);
  assertError(await waiting, 503, 'llm_slots_busy');
  release();
});

test('503 db_unavailable when the pool cannot connect; a debate that cannot be saved ends with event: error', async () => {
  const { app } = await build();
  assertError(await app.inject({ method: 'GET', url: '/api/matches?user_id=u1' }), 503, 'db_unavailable');
  assertError(
    await app.inject({
      method: 'POST',
      url: '/api/matches',
      headers: json,
      payload: JSON.stringify({ ...match, winner: 'draw' }),
    }),
    503,
    'db_unavailable',
  );

  const r = await app.inject({
    method: 'POST',
    url: '/api/tournament/match/stream',
    headers: json,
    payload: JSON.stringify({ ...match, llm_latency_ms: 40 }),
  });
  assert.equal(r.statusCode, 200);
  const events = r.body.split('\n\n').filter(Boolean);
  assert.match(
    events[0]!,
    /^event: start\ndata: \{"type":"start","topic":"t","proponent_model":"gpt","opponent_model":"claude","worker_pid":\d+\}$/,
  );
  const turns = events
    .slice(1, -1)
    .map((e) => JSON.parse(e.slice('data: '.length)) as { speaker: string; turn: number });
  assert.deepEqual(
    turns.map((t) => `${t.speaker}${t.turn}`),
    ['proponent1', 'opponent2', 'proponent3', 'opponent4'],
  );
  assert.match(
    events.at(-1)!,
    /^event: error\ndata: \{"error":"db_unavailable","message":"database unavailable: .*"\}$/,
  );
});

test('GET /api/matches db_tx: 1..10 transactions, a one-line 400 otherwise; a valid value reaches the pool', async () => {
  const { app, pool } = await build();
  const cases: [string, RegExp][] = [
    ['0', /^querystring\/db_tx must be >= 1$/],
    ['11', /^querystring\/db_tx must be <= 10$/],
    ['two', /^querystring\/db_tx must be integer$/],
    ['1.5', /^querystring\/db_tx must be integer$/],
  ];
  for (const [value, message] of cases) {
    const r = await app.inject({ method: 'GET', url: `/api/matches?user_id=u1&db_sleep_ms=10&db_tx=${value}` });
    assertError(r, 400, 'bad_request');
    assert.match(r.json().message, message, `db_tx=${value}`);
    assert.doesNotMatch(r.json().message, /\n/, 'one line');
  }
  assert.equal(pool.totalCount, 0, 'refused before the database is asked');
  // accepted: the first checkout then fails on the unreachable database
  const ok = await app.inject({ method: 'GET', url: '/api/matches?user_id=u1&db_sleep_ms=10&db_tx=10' });
  assertError(ok, 503, 'db_unavailable');
});

test('GET /health: the body follows HealthSchema (key order included); 503 degraded without Redis, 503 shutting_down', async () => {
  const { app } = await build();
  const r = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(r.statusCode, 503);
  const h = r.json();
  assert.ok(
    Value.Check(HealthSchema, h),
    [...Value.Errors(HealthSchema, h)].map((e) => `${e.path}: ${e.message}`).join('; '),
  );
  assert.deepEqual(Object.keys(h), Object.keys(HealthSchema.properties));
  assert.equal(h.status, 'degraded');
  assert.equal(h.redis.status, 'wait');
  assert.equal(h.max_concurrent, 1);
  assert.equal(h.available_slots, 1);
  assert.equal(h.in_flight, 1);
  assert.deepEqual(h.db_pool, { max: 15, total: 0, idle: 0, waiting: 0 });
  assert.deepEqual(h.cluster, {
    primary_pid: 4242,
    http_workers_expected: 2,
    http_workers_ready: 1,
    queue_worker_pid: null,
  });

  const down = await build({}, { shuttingDown: true });
  const s = await down.app.inject({ method: 'GET', url: '/health' });
  assert.equal(s.statusCode, 503);
  assert.equal(s.json().status, 'shutting_down');
  assert.ok(Value.Check(HealthSchema, s.json()));

  const m = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(m.statusCode, 200);
  assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(m.body, 'arena_up 1\n');
});
