import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { plan } from './plan.js';
import { validateObject, validateText } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import { repoPath } from '../../testing/paths.js';

const load = (file: string) => validateText(readFileSync(repoPath(file), 'utf8'))[0]!.object!;

/** A valid ArenaDeployment from a partial spec (defaults filled by the schema). */
function ad(spec: Record<string, unknown>): ArenaDeployment {
  const r = validateObject({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 't', namespace: 'n' },
    spec,
  });
  assert.deepEqual(r.errors, []);
  return r.object!;
}
const postgres = { host: 'pg', database: 'arena', credentialsSecret: 'db' };

test('design notes: 8 workers x (20 + 10) on one instance without PgBouncer overflow max_connections 100', () => {
  const p = plan(
    ad({
      load: { targetConcurrency: 100, requestMix: [{ name: 'read', weight: 1, serviceTimeMs: 15, dbTimeMs: 5 }] },
      api: { image: 'x', workersPerPod: 8, db: { poolSize: 20, maxOverflow: 10 }, autoscaling: { maxReplicas: 1 } },
      pgbouncer: { enabled: false },
      postgres,
    }),
  );
  assert.equal(p.connections.perPod, 240);
  assert.deepEqual(p.connections.appToPostgres, { atMaxReplicas: 240, limit: 97, utilization: 2.4742 });
  const f = p.findings.find((x) => x.code === 'PostgresConnectionsExceeded');
  assert.equal(f?.severity, 'error');
  assert.match(f!.message, /240 connections exceed PostgreSQL max_connections - reserved = 97/);
});

test("the issue sample: Little's law numbers by hand", () => {
  const p = plan(load('samples/debate-arena.yaml'));
  // LLM mean (lognormal p50 8000, p99 30000) = 9401.31 ms; T_llm = 5 + 10 + 9401.31 = 9416.31 ms; T_read = 20 ms
  // mean T = 0.7*20 + 0.3*9416.31 = 2838.89 ms -> lambda = 10000 / 2.83889 = 3522.5/s
  assert.ok(Math.abs(p.workload.arrivalRatePerSecond - 3522.5) < 0.1);
  // API holds reads 0.7*3522.5*0.020 = 49.3, streams 0.2*3522.5*9.41631 = 6633.8, async submits 0.1*3522.5*0.015 = 5.3
  assert.ok(Math.abs(p.workload.apiConcurrency - 6688.4) < 0.1);
  // 8 workers x 100 = 800 per pod -> ceil(6688.4 / 800) = 9 replicas
  assert.equal(p.replicas.neededForTarget, 9);
  assert.equal(p.replicas.max, 9);
  // baseline 1000 -> 668.8 in the API -> 1 replica
  assert.equal(p.replicas.min, 1);
  // 9 x 240 = 2160 client connections; computed max_client_conn = roundup100(ceil(2160/2)*1.2 = 1296) = 1300
  assert.equal(p.pgbouncer.maxClientConn, 1300);
  assert.deepEqual(p.connections.appToPgbouncer, { atMaxReplicas: 2160, limit: 2600, utilization: 0.8308 });
  // Redis: 9 x 8 x 50 + 2 = 3602 of 10000
  assert.equal(p.connections.redis.atMaxReplicas, 3602);
  // LLM calls: 0.3 x 3522.5 = 1056.75/s = 63405 RPM against 3000 RPM
  const codes = p.findings.map((f) => `${f.severity}:${f.code}`);
  assert.ok(codes.includes('error:LLMRateLimitBound'));
  assert.ok(p.queues.llmSlots && !p.queues.llmSlots.stable);
  assert.equal(p.queues.llmSlots.servers, 9 * 8 * 3);
});

test('the sized sample holds its target with no findings', () => {
  const p = plan(load('samples/debate-arena-holds.yaml'));
  assert.deepEqual(p.findings, []);
  for (const q of Object.values(p.queues)) assert.ok(q.stable && q.utilization < 0.85);
});

test('a budget set too small caps maxReplicas and says which budget binds', () => {
  const p = plan(
    ad({
      load: {
        targetConcurrency: 10000,
        requestMix: [{ name: 'stream', weight: 1, kind: 'stream', llmTimeMs: { p50: 1000, p99: 1000 } }],
      },
      api: {
        image: 'x',
        workersPerPod: 4,
        concurrencyPerWorker: 100,
        llmSlotsPerWorker: 100,
        db: { poolSize: 10, maxOverflow: 0 },
      },
      pgbouncer: { maxClientConn: 200 },
      postgres,
    }),
  );
  // needs ceil(10000 / 400) = 25 replicas; 2 x 200 = 400 client connections allow floor(400 / 40) = 10
  assert.equal(p.replicas.neededForTarget, 25);
  assert.equal(p.replicas.connectionCap, 10);
  assert.equal(p.replicas.max, 10);
  const f = p.findings.find((x) => x.code === 'ConnectionBudgetExceeded');
  assert.equal(f?.severity, 'error');
  assert.match(f!.message, /needs 25 API replicas but the connection budget allows 10/);
});

test('an explicit maxReplicas below the need is TargetExceedsMaxReplicas', () => {
  const p = plan(load('samples/debate-arena-holds.yaml'));
  const spec = structuredClone(load('samples/debate-arena-holds.yaml'));
  spec.spec.api.autoscaling.maxReplicas = 4;
  const q = plan(spec);
  assert.ok(p.replicas.neededForTarget > 4);
  assert.deepEqual(q.findings.filter((f) => f.code === 'TargetExceedsMaxReplicas').length, 1);
});

test('Redis maxclients exceeded at an explicit maxReplicas', () => {
  const x = structuredClone(load('samples/debate-arena-holds.yaml'));
  x.spec.api.autoscaling.maxReplicas = 30;
  x.spec.redis.maxClients = 5000;
  const p = plan(x);
  assert.equal(p.connections.redis.atMaxReplicas, 30 * 400 + 2);
  assert.ok(p.findings.some((f) => f.code === 'RedisMaxClientsExceeded' && f.severity === 'error'));
});

test('session pooling warns and needs a server connection per client', () => {
  const x = structuredClone(load('samples/debate-arena-holds.yaml'));
  x.spec.pgbouncer.poolMode = 'session';
  const p = plan(x);
  // 9 x 240 = 2160 app connections, but PostgreSQL's 490 allow at most 245 per PgBouncer
  const f = p.findings.find((x) => x.code === 'SessionPoolingHoldsServerConnections');
  assert.equal(f?.severity, 'error');
  assert.match(f!.message, /each of the 2160 app connections/);
  assert.equal(p.queues.pgbouncerServerPool, undefined);
});

test('--explain records a derivation for every number in the JSON contract', () => {
  const p = plan(load('samples/debate-arena.yaml'), { explain: true });
  for (const key of [
    'replicas.min',
    'replicas.max',
    'connections.perPod',
    'connections.appToPgbouncer.atMaxReplicas',
    'connections.appToPgbouncer.limit',
    'connections.pgbouncerToPostgres.total',
    'connections.redis.atMaxReplicas',
    'pgbouncer.maxClientConn',
    'pgbouncer.defaultPoolSize',
    'pgbouncer.reservePoolSize',
    'queues.appDbPool.p99WaitMs',
    'queues.llmSlots.p99WaitMs',
  ]) {
    const d = p.derivations![key];
    assert.ok(d, `no derivation for ${key}`);
    assert.ok(d.formula.length > 0 && d.source.length > 0);
  }
  assert.equal(p.derivations!['replicas.max']!.value, p.replicas.max);
  assert.equal(plan(load('samples/debate-arena.yaml')).derivations, undefined);
});

/** Generated specs: arbitrary but valid. */
const specArb = fc
  .record({
    target: fc.integer({ min: 1, max: 50_000 }),
    baselinePct: fc.integer({ min: 0, max: 100 }),
    workers: fc.integer({ min: 1, max: 16 }),
    cpw: fc.integer({ min: 1, max: 500 }),
    slots: fc.integer({ min: 1, max: 200 }),
    pool: fc.integer({ min: 1, max: 50 }),
    overflow: fc.integer({ min: 0, max: 50 }),
    redisConns: fc.integer({ min: 1, max: 100 }),
    pgbEnabled: fc.boolean(),
    pgbReplicas: fc.integer({ min: 1, max: 4 }),
    maxConn: fc.integer({ min: 20, max: 5000 }),
    rpm: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
    mix: fc.array(
      fc.record({
        weight: fc.integer({ min: 1, max: 100 }),
        kind: fc.constantFrom('sync', 'stream', 'async'),
        serviceTimeMs: fc.integer({ min: 1, max: 500 }),
        dbTimeMs: fc.integer({ min: 0, max: 100 }),
        p50: fc.integer({ min: 100, max: 20_000 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map((g) =>
    ad({
      load: {
        targetConcurrency: g.target,
        baselineConcurrency: Math.floor((g.target * g.baselinePct) / 100),
        requestMix: g.mix.map((k, i) => ({
          name: `k${i}`,
          weight: k.weight,
          kind: k.kind,
          serviceTimeMs: k.serviceTimeMs,
          dbTimeMs: k.dbTimeMs,
          ...(k.kind === 'sync' ? {} : { llmTimeMs: { p50: k.p50, p99: k.p50 * 3 } }),
        })),
      },
      api: {
        image: 'x',
        workersPerPod: g.workers,
        concurrencyPerWorker: g.cpw,
        llmSlotsPerWorker: g.slots,
        db: { poolSize: g.pool, maxOverflow: g.overflow },
        redis: { maxConnections: g.redisConns },
      },
      llm: g.rpm === undefined ? {} : { requestsPerMinute: g.rpm },
      pgbouncer: { enabled: g.pgbEnabled, replicas: g.pgbReplicas },
      postgres: { ...postgres, maxConnections: g.maxConn },
    }),
  );

test('invariants over generated specs', () => {
  fc.assert(
    fc.property(specArb, (spec) => {
      const p = plan(spec);
      // replicas
      assert.ok(p.replicas.min >= 1 && p.replicas.min <= p.replicas.max);
      assert.ok(p.replicas.max <= Math.max(1, p.replicas.neededForTarget));
      // a budget over its limit always comes with an error finding naming it
      const has = (code: string) => p.findings.some((f) => f.code === code && f.severity === 'error');
      if (p.connections.appToPgbouncer && p.connections.appToPgbouncer.utilization > 1)
        assert.ok(has('ConnectionBudgetExceeded'));
      if (p.connections.appToPostgres && p.connections.appToPostgres.utilization > 1)
        assert.ok(has('PostgresConnectionsExceeded'));
      if (p.connections.redis.utilization > 1) assert.ok(has('RedisMaxClientsExceeded'));
      // an unstable queue is always an error; a plan without errors holds the target
      for (const [name, q] of Object.entries(p.queues)) {
        if (!q.stable)
          assert.ok(
            has(name === 'llmRateLimit' ? 'LLMRateLimitBound' : 'QueueUnstable'),
            `${name} unstable without finding`,
          );
        assert.ok(q.pWait >= 0 && q.pWait <= 1);
      }
      if (!p.findings.some((f) => f.severity === 'error')) assert.ok(p.replicas.max >= p.replicas.neededForTarget);
      // computed PgBouncer pools fit PostgreSQL when it has room for 2 per pool
      if (
        p.connections.pgbouncerToPostgres &&
        Math.floor(p.connections.pgbouncerToPostgres.limit / spec.spec.pgbouncer.replicas) >= 2
      ) {
        assert.ok(p.connections.pgbouncerToPostgres.utilization <= 1);
      }
      // deterministic
      assert.deepEqual(plan(spec), p);
    }),
    { numRuns: 250 },
  );
});

test('more load never needs fewer replicas', () => {
  fc.assert(
    fc.property(specArb, fc.integer({ min: 1, max: 5 }), (spec, factor) => {
      const bigger = structuredClone(spec);
      bigger.spec.load.targetConcurrency = Math.min(10_000_000, spec.spec.load.targetConcurrency * factor);
      assert.ok(plan(bigger).replicas.neededForTarget >= plan(spec).replicas.neededForTarget);
    }),
    { numRuns: 150 },
  );
});

test('the JSON contract keys exist', () => {
  const p = JSON.parse(JSON.stringify(plan(load('samples/debate-arena.yaml'))));
  const get = (path: string) => path.split('.').reduce((o, k) => (o === undefined ? undefined : o[k]), p);
  for (const k of [
    'replicas.min',
    'replicas.max',
    'connections.perPod',
    'connections.appToPgbouncer.atMaxReplicas',
    'connections.appToPgbouncer.limit',
    'connections.appToPgbouncer.utilization',
    'connections.pgbouncerToPostgres.total',
    'connections.pgbouncerToPostgres.limit',
    'connections.pgbouncerToPostgres.utilization',
    'connections.redis.atMaxReplicas',
    'connections.redis.limit',
    'connections.redis.utilization',
    'pgbouncer.maxClientConn',
    'pgbouncer.defaultPoolSize',
    'pgbouncer.reservePoolSize',
    'pgbouncer.poolMode',
  ]) {
    assert.notEqual(get(k), undefined, k);
  }
  for (const q of Object.values(p.queues) as any[])
    for (const k of ['servers', 'utilization', 'pWait', 'meanWaitMs', 'p99WaitMs']) assert.ok(k in q, k);
  for (const f of p.findings) assert.deepEqual(Object.keys(f).sort(), ['code', 'message', 'severity']);
  void parse;
});
