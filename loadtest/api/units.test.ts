/**
 * Unit tests of the reference API's pure parts: the LLM semaphore, ELO,
 * the simulated LLM's latency model and token stream, the rate-limit window
 * and the configuration parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, dbPoolMax, loadConfig } from './config.js';
import { eloDelta, expectedScore, INITIAL_RATING, K_FACTOR } from './elo.js';
import { LlmError, SimulatedLlm } from './llm.js';
import { rateLimitPerWindow } from './redis.js';
import { AbortedError, Semaphore, SlotTimeoutError } from './semaphore.js';

/** Deterministic uniform [0, 1) generator (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('semaphore: grants up to max, FIFO hand-over, release is idempotent', async () => {
  const s = new Semaphore(2);
  const r1 = await s.acquire(0);
  const r2 = await s.acquire(0);
  assert.equal(s.available, 0);
  const order: number[] = [];
  const w3 = s.acquire(1000).then((r) => (order.push(3), r));
  const w4 = s.acquire(1000).then((r) => (order.push(4), r));
  assert.equal(s.waiting, 2);
  r1();
  r1(); // second call must not free another slot
  const r3 = await w3;
  assert.equal(s.inUse, 2);
  assert.equal(s.waiting, 1);
  r2();
  const r4 = await w4;
  assert.deepEqual(order, [3, 4]);
  r3();
  r4();
  assert.equal(s.inUse, 0);
  assert.equal(s.available, 2);
});

test('semaphore: times out with SlotTimeoutError, aborts with AbortedError, and leaves no waiter behind', async () => {
  const s = new Semaphore(1);
  const r = await s.acquire(0);
  const t0 = Date.now();
  await assert.rejects(s.acquire(80), (e: unknown) => e instanceof SlotTimeoutError && e.max === 1 && e.waitedMs >= 70);
  assert.ok(Date.now() - t0 >= 70);
  await assert.rejects(s.acquire(0), SlotTimeoutError);
  const ac = new AbortController();
  const p = s.acquire(10_000, ac.signal);
  ac.abort();
  await assert.rejects(p, AbortedError);
  assert.equal(s.waiting, 0);
  r();
  assert.equal(s.available, 1);
  await assert.rejects(s.acquire(10, AbortSignal.abort()), AbortedError);
  assert.throws(() => new Semaphore(0), RangeError);
});

test('ELO: expected scores sum to 1, deltas are integers, zero-sum and bounded by K', () => {
  assert.equal(expectedScore(1500, 1500), 0.5);
  assert.ok(Math.abs(expectedScore(1600, 1400) + expectedScore(1400, 1600) - 1) < 1e-12);
  assert.equal(eloDelta(INITIAL_RATING, INITIAL_RATING, 'proponent'), K_FACTOR / 2);
  assert.equal(eloDelta(INITIAL_RATING, INITIAL_RATING, 'draw'), 0);
  const rng = seeded(7);
  const ratings = [1500, 1500, 1500, 1500];
  for (let i = 0; i < 2000; i++) {
    const a = Math.floor(rng() * 4);
    const b = (a + 1 + Math.floor(rng() * 3)) % 4;
    const w = rng() < 0.45 ? 'proponent' : rng() < 0.9 ? 'opponent' : 'draw';
    const d = eloDelta(ratings[a]!, ratings[b]!, w);
    assert.ok(Number.isInteger(d) && Math.abs(d) <= K_FACTOR);
    ratings[a]! += d;
    ratings[b]! -= d;
  }
  assert.equal(
    ratings.reduce((x, y) => x + y, 0),
    4 * INITIAL_RATING,
  );
});

test('simulated LLM: lognormal through p50/p99 (seeded, 20k draws)', () => {
  const llm = new SimulatedLlm(
    { p50Ms: 8000, p99Ms: 30000, tokensPerSecond: 40, errorRate: 0, requestsPerMinute: null },
    null,
    seeded(42),
  );
  const xs = Array.from({ length: 20000 }, () => llm.sampleLatencyMs()).sort((a, b) => a - b);
  const q = (p: number) => xs[Math.floor(p * xs.length)]!;
  assert.ok(Math.abs(q(0.5) / 8000 - 1) < 0.03, `p50 ${q(0.5)}`);
  assert.ok(Math.abs(q(0.99) / 30000 - 1) < 0.08, `p99 ${q(0.99)}`);
  assert.ok(xs[xs.length - 1]! <= 5 * 30000);
  const constant = new SimulatedLlm(
    { p50Ms: 100, p99Ms: 100, tokensPerSecond: 10, errorRate: 0, requestsPerMinute: null },
    null,
  );
  assert.equal(constant.sampleLatencyMs(), 100);
});

test('simulated LLM: tokens spread over the call, error rate, abort', async () => {
  const cfg = { p50Ms: 100, p99Ms: 100, tokensPerSecond: 50, errorRate: 0, requestsPerMinute: null };
  const llm = new SimulatedLlm(cfg, null);
  const times: number[] = [];
  const t0 = Date.now();
  const r = await llm.generate({ latencyMs: 200, onToken: () => times.push(Date.now() - t0) });
  assert.equal(r.tokens, 10); // 0.2 s x 50 tokens/s
  assert.equal(times.length, 10);
  assert.ok(times[0]! >= 15 && times[0]! < 120, `first token at ${times[0]} ms`);
  assert.ok(r.latencyMs >= 195 && r.latencyMs < 400, `latency ${r.latencyMs}`);
  assert.equal(r.text.split(' ').length, 10);
  assert.equal(await new SimulatedLlm(cfg, null).reservePermit(), 0, 'no RPM limit: no wait');

  const failing = new SimulatedLlm({ ...cfg, errorRate: 1 }, null);
  await assert.rejects(failing.generate({ latencyMs: 50 }), LlmError);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 30);
  await assert.rejects(llm.generate({ latencyMs: 5000, signal: ac.signal }), AbortedError);
});

test('rate limit: RATE_LIMIT_PER_MINUTE scaled to the window', () => {
  assert.equal(rateLimitPerWindow(100, 60), 100);
  assert.equal(rateLimitPerWindow(600, 2), 20);
  assert.equal(rateLimitPerWindow(10, 1), 1);
});

test('config: defaults, the rendered names, and one clear error per bad variable', () => {
  const c = loadConfig({
    DB_HOST: 'pgbouncer',
    DB_POOL_SIZE: '20',
    DB_MAX_OVERFLOW: '10',
    MAX_CONCURRENT_REQUESTS: '3',
    LLM_REQUESTS_PER_MINUTE: '3000',
  });
  assert.equal(dbPoolMax(c), 30);
  assert.equal(c.llmSlots, 3);
  assert.equal(c.llm.requestsPerMinute, 3000);
  assert.equal(c.port, 8000);
  assert.equal(c.rateLimitWindowSeconds, 60);
  assert.deepEqual(c.db, {
    kind: 'fields',
    host: 'pgbouncer',
    port: 5432,
    database: 'arena',
    user: 'arena',
    password: undefined,
  });
  assert.equal(loadConfig({ DATABASE_URL: 'postgresql://u:p@h:1/d' }).db.kind, 'url');
  assert.equal(loadConfig({ DATABASE_URL: 'x' }).llm.requestsPerMinute, null);
  const bad = (env: Record<string, string>, msg: RegExp) =>
    assert.throws(
      () => loadConfig({ DB_HOST: 'h', ...env }),
      (e: unknown) => e instanceof ConfigError && msg.test(e.message),
    );
  bad({ DB_POOL_SIZE: 'ten' }, /^DB_POOL_SIZE: must be an integer, got 'ten'$/);
  bad({ DB_POOL_SIZE: '0' }, /^DB_POOL_SIZE: must be >= 1/);
  bad({ LLM_ERROR_RATE: '2' }, /^LLM_ERROR_RATE: must be <= 1/);
  bad({ LLM_LATENCY_P50_MS: '500', LLM_LATENCY_P99_MS: '100' }, /^LLM_LATENCY_P50_MS: must be <= LLM_LATENCY_P99_MS/);
  assert.throws(() => loadConfig({}), /DB_HOST or DATABASE_URL/);
});
