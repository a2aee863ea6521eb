/**
 * The API workers' event loops as a queue (apiEventLoop, spec.api.cpuMsPerRequest;
 * issue 12): one M/G/1 server per worker, and the app pool's hold per visit
 * lengthened by its mean wait (docs/capacity-model.md, "The API's event loop").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import { plan } from './plan.js';
import { eventLoopModel, holdPlusLoopWait, queueModels, queuePlanOf, type Topology } from './queues.js';
import { workloadAtRates } from './workload.js';

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected} +- ${tol}`);

/** A validated ArenaDeployment: one read kind (4 ms of DB time), 2 workers, optionally cpuMsPerRequest. */
function ad(cpuMsPerRequest?: number, targetConcurrency = 10): ArenaDeployment {
  const r = validateObject({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 'loop', namespace: 'n' },
    spec: {
      load: { targetConcurrency, requestMix: [{ name: 'read', weight: 1, serviceTimeMs: 6, dbTimeMs: 4 }] },
      api: {
        image: 'x',
        workersPerPod: 2,
        ...(cpuMsPerRequest === undefined ? {} : { cpuMsPerRequest }),
        db: { poolSize: 10, maxOverflow: 0 },
        autoscaling: { enabled: false },
        replicas: 1,
      },
      pgbouncer: { replicas: 1, poolMode: 'transaction', defaultPoolSize: 20, reservePoolSize: 0, maxClientConn: 100 },
      postgres: { host: 'pg', database: 'arena', credentialsSecret: 'db' },
    },
  });
  assert.deepEqual(r.errors, []);
  return r.object!;
}

const TWO_WORKERS: Topology = { workers: 2, pgbouncers: 1, pgbouncerDefaultPoolSize: 20, consumers: 0 };

test('apiEventLoop: one M/G/1 server per worker, utilisation = arrivals / workers x cpuMsPerRequest', () => {
  // 1,000 requests/s over 2 workers, 1.5 ms each: 500/s x 1.5 ms = 0.75 per worker.
  // Pollaczek-Khinchine (M/G/1, cs^2 = 1): W = rho S (1 + cs^2) / 2 / (1 - rho) = 0.75 x 1.5 / 0.25 = 4.5 ms.
  const q = queuePlanOf(eventLoopModel(1.5, 0, 1000, 2)!);
  assert.equal(q.servers, 2);
  assert.equal(q.partitions, 2);
  near(q.utilization, 0.75, 1e-9, 'utilisation');
  near(q.meanWaitMs!, 4.5, 0.01, 'mean wait');
  // with a base of 0.1 of a core: rho = 0.1 + 500/s x 1 ms = 0.6, S = 0.6 / 500/s = 1.2 ms, W = 0.6 x 1.2 / 0.4 = 1.8 ms
  const based = queuePlanOf(eventLoopModel(1, 0.1, 1000, 2)!);
  near(based.utilization, 0.6, 1e-9, 'utilisation with cpuBaseFraction');
  near(based.serviceTimeMs, 1.2, 1e-9, 'effective service time');
  near(based.meanWaitMs!, 1.8, 0.01, 'mean wait with cpuBaseFraction');
  assert.equal(eventLoopModel(undefined, 0, 1000, 2), null, 'not modelled without cpuMsPerRequest');
  assert.equal(eventLoopModel(1.5, 0, 0, 2), null, 'nor without arrivals');
});

test('the app pool holds its connection for the DB time plus the mean event-loop wait; PgBouncer does not', () => {
  const w = workloadAtRates({ read: 1000 }, ad(1.5).spec.load.requestMix);
  const without = queueModels(ad().spec, w, TWO_WORKERS);
  const withLoop = queueModels(ad(1.5).spec, w, TWO_WORKERS);
  const byName = (qs: typeof without, n: string) => qs.find((q) => q.name === n)!;
  assert.equal(
    without.find((q) => q.name === 'apiEventLoop'),
    undefined,
  );
  near(byName(without, 'appDbPool').demand.serviceTimeMs, 4, 1e-9, 'app pool hold without the loop');
  near(byName(withLoop, 'appDbPool').demand.serviceTimeMs, 4 + 4.5, 0.01, 'app pool hold = 4 ms + 4.5 ms');
  near(byName(withLoop, 'pgbouncerServerPool').demand.serviceTimeMs, 4, 1e-9, 'PgBouncer hold unchanged');
  // utilisation of the app pool per worker: 500/s x 8.5 ms / 10 connections = 0.425 (0.2 without the loop)
  near(queuePlanOf(byName(withLoop, 'appDbPool')).utilization, 0.425, 0.001, 'app pool utilisation');
  // the hold's cv^2 mixes the DB time's (1) and the wait's (1): (16 + 20.25) / 8.5^2
  near(holdPlusLoopWait(w.db, 4.5).serviceCv2, (16 + 20.25) / 72.25, 1e-9, 'hold cv^2');
});

test('plan: an event loop offered more than one core is unstable and named in the findings', () => {
  // 10,000 in flight of 16 ms requests ~ 625,000/s; at 1 ms each that is 312 cores per worker
  const p = plan(ad(1, 10_000));
  const loop = p.queues.apiEventLoop!;
  assert.ok(loop.utilization >= 1, `utilisation ${loop.utilization}`);
  assert.equal(loop.stable, false);
  const f = p.findings.find((x) => x.code === 'QueueUnstable' && x.message.startsWith('API event loop'));
  assert.ok(f, JSON.stringify(p.findings.map((x) => x.message)));
  assert.match(f.message, /worker processes .*cpuMsPerRequest/);
  assert.equal(plan(ad()).queues.apiEventLoop, undefined, 'no apiEventLoop without cpuMsPerRequest');
});

test('validation: cpuMsPerRequest > 0 and cpuBaseFraction in 0..0.99, each error naming its field', () => {
  const r = validateObject({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 'loop', namespace: 'n' },
    spec: {
      load: { targetConcurrency: 10, requestMix: [{ name: 'read', weight: 1, serviceTimeMs: 1 }] },
      api: { image: 'x', cpuMsPerRequest: 0, cpuBaseFraction: 2 },
      postgres: { host: 'pg', database: 'arena', credentialsSecret: 'db' },
    },
  });
  assert.deepEqual(r.errors, [
    { path: 'spec.api.cpuMsPerRequest', message: 'must be > 0' },
    { path: 'spec.api.cpuBaseFraction', message: 'must be <= 0.99' },
  ]);
});
