/**
 * The DB pools per transaction (visits): spec.load.requestMix[].dbTransactions and
 * dbHoldCv2 (issue 12's spot check: PgBouncer in transaction mode, 8 server
 * connections, two transactions per request, a 0.56 ms SELECT and a 50.6 ms
 * pg_sleep; the measured mean wait per request was 1.7-2.9x `arena queue --cv 0`
 * and 0.85-1.46x `--cv 1`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment, RequestKind } from '../api/v1alpha1/schema.js';
import { analyzeQueue } from './erlang.js';
import { mixture } from './latency.js';
import { plan } from './plan.js';
import { analyzeModel, queueModels, queuePlanOf, type Topology } from './queues.js';
import { workloadAt, workloadAtRates } from './workload.js';

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected} +- ${tol}`);

/** A validated ArenaDeployment (defaults filled) from a request mix; PgBouncer in transaction mode, 8 servers. */
function ad(requestMix: Record<string, unknown>[], defaultPoolSize = 8): ArenaDeployment {
  const r = validateObject({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 'visits', namespace: 'n' },
    spec: {
      load: { targetConcurrency: 10, requestMix },
      api: { image: 'x', workersPerPod: 1, db: { poolSize: 50, maxOverflow: 0 }, autoscaling: { maxReplicas: 1 } },
      pgbouncer: { replicas: 1, poolMode: 'transaction', defaultPoolSize, reservePoolSize: 0, maxClientConn: 100 },
      postgres: { host: 'pg', database: 'arena', credentialsSecret: 'db' },
    },
  });
  assert.deepEqual(r.errors, []);
  return r.object!;
}

/** One PgBouncer with `servers` server connections, one worker (the spot check's topology). */
const topology = (servers: number): Topology => ({
  workers: 1,
  pgbouncers: 1,
  pgbouncerDefaultPoolSize: servers,
  consumers: 0,
});

// The spot check's two transactions, both fixed-length (cv^2 0).
const SELECT_MS = 0.56;
const SLEEP_MS = 50.6;
// cv^2 of one transaction's hold over the kind's transactions, by the mixture formula (latency.ts):
//   E[S]   = (0.56 + 50.6) / 2                       = 25.58 ms
//   E[S^2] = ((1 + 0) 0.56^2 + (1 + 0) 50.6^2) / 2   = (0.3136 + 2560.36) / 2 = 1280.3368 ms^2
//   cv^2   = E[S^2] / E[S]^2 - 1 = 1280.3368 / 654.3364 - 1 = 0.956695...
const HAND_CV2 = 1280.3368 / (25.58 * 25.58) - 1;
const spotKind = (cv2: number) => ({
  name: 'read',
  weight: 1,
  serviceTimeMs: 1,
  dbTimeMs: SELECT_MS + SLEEP_MS,
  dbTransactions: 2,
  dbHoldCv2: cv2,
});

test('mixture(): a 0.56 ms and a 50.6 ms fixed-length transaction give mean 25.58 ms and cv^2 ~0.957 (near 1)', () => {
  const m = mixture([
    { weight: 1, meanMs: SELECT_MS, cv2: 0 },
    { weight: 1, meanMs: SLEEP_MS, cv2: 0 },
  ]);
  near(m.meanMs, 25.58, 1e-9, 'mean');
  near(m.cv2, HAND_CV2, 1e-9, 'cv^2');
  near(m.cv2, 0.9567, 1e-4, 'cv^2 (4 digits)');
});

test('two transactions per request: visits = 2 x lambda, 25.58 ms per visit, the cv^2 mixture() computes', () => {
  const cv2 = mixture([
    { weight: 1, meanMs: SELECT_MS, cv2: 0 },
    { weight: 1, meanMs: SLEEP_MS, cv2: 0 },
  ]).cv2;
  const spec = ad([spotKind(cv2)]);
  const w = workloadAtRates({ read: 100 }, spec.spec.load.requestMix);
  near(w.db.arrivalRatePerSecond, 200, 1e-9, 'visits per second');
  near(w.db.serviceTimeMs, 25.58, 1e-9, 'mean hold per visit, ms');
  near(w.db.serviceCv2, HAND_CV2, 1e-9, 'cv^2 per visit');
  assert.equal(w.db.visitsPerRequest, 2);
  // both DB queues are analysed per visit: same arrivals and hold
  const qs = queueModels(spec.spec, w, topology(8));
  const names = qs.map((q) => q.name);
  assert.deepEqual(names, ['appDbPool', 'pgbouncerServerPool']);
  for (const q of qs) {
    const p = queuePlanOf(q);
    assert.equal(p.arrivalRatePerSecond, 200, q.name);
    assert.equal(p.serviceTimeMs, 25.58, q.name);
    assert.equal(p.visitsPerRequest, 2, q.name);
    // offered load is unchanged by the split: 200/s x 25.58 ms = 100/s x 51.16 ms = 5.116 Erlangs
    assert.equal(
      p.meanWaitPerRequestMs,
      Math.round(2 * analyzeQueue(q.serversPerPartition, 200, 25.58, cv2).meanWaitMs! * 100) / 100,
    );
  }
});

test('a mix of kinds: the per-visit hold is the mixture over visits (weight lambda_k n_k, mean dbTimeMs_k / n_k)', () => {
  const mix = ad([
    { name: 'a', weight: 1, serviceTimeMs: 1, dbTimeMs: 50, dbTransactions: 2, dbHoldCv2: 0 },
    { name: 'b', weight: 3, serviceTimeMs: 1, dbTimeMs: 10 }, // defaults: 1 transaction, exponential
    { name: 'c', weight: 1, serviceTimeMs: 1, dbTimeMs: 0, dbTransactions: 5 }, // no DB time: no visits
  ]).spec.load.requestMix;
  const w = workloadAtRates({ a: 10, b: 30, c: 10 }, mix);
  // visits: 10 x 2 + 30 x 1 = 50/s from 40 DB requests/s -> 1.25 visits per request
  near(w.db.arrivalRatePerSecond, 50, 1e-9, 'visits/s');
  near(w.db.visitsPerRequest, 1.25, 1e-12, 'visits per request');
  // E[S] = (20 x 25 + 30 x 10) / 50 = 16 ms; E[S^2] = (20 x (1 + 0) x 625 + 30 x (1 + 1) x 100) / 50 = 370
  near(w.db.serviceTimeMs, 16, 1e-9, 'mean hold per visit');
  near(w.db.serviceCv2, 370 / 256 - 1, 1e-12, 'cv^2 per visit');
});

test('defaults (1 transaction, cv^2 1) give the single exponential hold per request of before, number for number', () => {
  const mix: RequestKind[] = [
    { name: 'read', weight: 3, kind: 'sync', serviceTimeMs: 15, dbTimeMs: 5 },
    { name: 'slow', weight: 1, kind: 'sync', serviceTimeMs: 980, dbTimeMs: 20 },
  ];
  const explicit = mix.map((k) => ({ ...k, dbTransactions: 1, dbHoldCv2: 1 }));
  const w = workloadAt(1000, mix);
  assert.deepEqual(workloadAt(1000, explicit).db, w.db);
  // mean 0.75 x 5 + 0.25 x 20 = 8.75 ms; E[S^2] = 0.75 x 2 x 25 + 0.25 x 2 x 400 = 237.5 -> cv^2 = 237.5 / 76.5625 - 1
  assert.equal(w.db.visitsPerRequest, 1);
  near(w.db.serviceCv2, 237.5 / 76.5625 - 1, 1e-12, 'cv^2');
  // and the plan does not add the per-request fields
  const p = plan(ad([{ name: 'read', weight: 1, serviceTimeMs: 1, dbTimeMs: 20 }]));
  assert.equal(p.queues.pgbouncerServerPool!.visitsPerRequest, undefined);
  assert.equal('meanWaitPerRequestMs' in p.queues.pgbouncerServerPool!, false);
});

test('spot check at 50/75/90 % on 8 servers: the per-visit wait per request sits between --cv 0 and --cv 1, near cv 1', () => {
  const cv2 = mixture([
    { weight: 1, meanMs: SELECT_MS, cv2: 0 },
    { weight: 1, meanMs: SLEEP_MS, cv2: 0 },
  ]).cv2;
  const spec = ad([spotKind(cv2)]);
  const requestMs = SELECT_MS + SLEEP_MS;
  for (const u of [0.5, 0.75, 0.9]) {
    const lambda = (u * 8) / (requestMs / 1000); // requests per second at utilisation u
    const w = workloadAtRates({ read: lambda }, spec.spec.load.requestMix);
    const q = queueModels(spec.spec, w, topology(8)).find((m) => m.name === 'pgbouncerServerPool')!;
    const p = queuePlanOf(q);
    near(p.utilization, u, 1e-4, 'utilisation');
    // what `arena queue --arrival-rate lambda --service-time 51.16ms --servers 8 --cv 0|1` predicts (one visit)
    const cv0 = analyzeQueue(8, lambda, requestMs, 0).meanWaitMs!;
    const cv1 = analyzeQueue(8, lambda, requestMs, 1).meanWaitMs!;
    // unrounded: visits x the mean wait per visit (the plan rounds it to 0.01 ms)
    const perRequest = p.visitsPerRequest! * analyzeModel(q).meanWaitMs!;
    near(p.meanWaitPerRequestMs!, perRequest, 0.005, `u ${u}: plan's meanWaitPerRequestMs`);
    assert.ok(cv0 < perRequest && perRequest < cv1, `u ${u}: cv0 ${cv0} < per-visit ${perRequest} < cv1 ${cv1}`);
    assert.ok(cv1 - perRequest < perRequest - cv0, `u ${u}: closer to cv 1`);
    // Allen-Cunneen: the same offered load and P(wait), the drain rate c mu - lambda doubles with two visits,
    // so 2 visits x Wq(visit) = Wq(one visit with the per-visit cv^2): ratios (1 + cv^2) and (1 + cv^2) / 2
    near(perRequest / cv0, 1 + HAND_CV2, 1e-3, `u ${u}: per-visit / cv0`);
    near(perRequest / cv1, (1 + HAND_CV2) / 2, 1e-3, `u ${u}: per-visit / cv1`);
    // inside the ranges the spot check measured: 1.7-2.9x cv0, 0.85-1.46x cv1
    assert.ok(perRequest / cv0 >= 1.7 && perRequest / cv0 <= 2.9, `u ${u}: ${perRequest / cv0}x cv0`);
    assert.ok(perRequest / cv1 >= 0.85 && perRequest / cv1 <= 1.46, `u ${u}: ${perRequest / cv1}x cv1`);
    console.log(
      `u ${u}: lambda ${lambda.toFixed(2)}/s, mean wait per request: cv0 ${cv0.toFixed(2)} ms, ` +
        `per-visit model ${perRequest.toFixed(2)} ms (2 x ${p.meanWaitMs} ms), cv1 ${cv1.toFixed(2)} ms`,
    );
  }
});

test('fixed-length queries sent straight to PgBouncer (dbHoldCv2 0, one transaction) halve the exponential wait', () => {
  const fixed = ad([{ name: 'read', weight: 1, serviceTimeMs: 1, dbTimeMs: 50, dbHoldCv2: 0 }]);
  const expo = ad([{ name: 'read', weight: 1, serviceTimeMs: 1, dbTimeMs: 50 }]);
  const at = (spec: ArenaDeployment) => {
    const w = workloadAtRates({ read: 120 }, spec.spec.load.requestMix); // 6 Erlangs on 8: 75 %
    return queuePlanOf(queueModels(spec.spec, w, topology(8)).find((m) => m.name === 'pgbouncerServerPool')!);
  };
  const f = at(fixed);
  const e = at(expo);
  assert.equal(f.serviceCv2, 0);
  assert.equal(e.serviceCv2, 1);
  near(f.meanWaitMs! / e.meanWaitMs!, 0.5, 0.01, 'cv0 / cv1 wait');
  assert.equal(f.visitsPerRequest, undefined, 'one visit per request: no per-request fields');
});

test('the plan: per-visit arrivals and waits, visitsPerRequest and meanWaitPerRequestMs, the ledger names the visits', () => {
  const p = plan(ad([spotKind(0.9567)]), { explain: true });
  const q = p.queues.pgbouncerServerPool!;
  near(q.arrivalRatePerSecond, 2 * p.workload.arrivalRatePerSecond, 1e-3, 'visits/s');
  assert.equal(q.serviceTimeMs, 25.58);
  assert.equal(q.serviceCv2, 0.9567);
  assert.equal(q.visitsPerRequest, 2);
  near(q.meanWaitPerRequestMs!, 2 * q.meanWaitMs!, 0.011, 'per-request wait');
  assert.equal(p.queues.appDbPool!.visitsPerRequest, 2);
  assert.equal(p.derivations!['queues.pgbouncerServerPool.p99WaitMs']!.inputs['visitsPerRequest'], 2);
});

test('validation: dbTransactions is an integer >= 1, dbHoldCv2 a number >= 0; both default when absent', () => {
  const base = {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 'v' },
    spec: {
      load: { targetConcurrency: 10, requestMix: [{ name: 'read', weight: 1 }] as Record<string, unknown>[] },
      api: { image: 'x' },
      postgres: { host: 'pg', database: 'arena', credentialsSecret: 'db' },
    },
  };
  const ok = validateObject(structuredClone(base));
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.object!.spec.load.requestMix[0]!.dbTransactions, 1);
  assert.equal(ok.object!.spec.load.requestMix[0]!.dbHoldCv2, 1);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ dbTransactions: 0 }, /^spec\.load\.requestMix\[0\]\.dbTransactions: must be >= 1$/],
    [{ dbTransactions: 1.5 }, /^spec\.load\.requestMix\[0\]\.dbTransactions: must be an integer$/],
    [{ dbHoldCv2: -0.1 }, /^spec\.load\.requestMix\[0\]\.dbHoldCv2: must be >= 0$/],
  ];
  for (const [fields, message] of cases) {
    const doc = structuredClone(base);
    doc.spec.load.requestMix[0] = { ...doc.spec.load.requestMix[0], ...fields };
    const r = validateObject(doc);
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.match(`${r.errors[0]!.path}: ${r.errors[0]!.message}`, message);
  }
});
