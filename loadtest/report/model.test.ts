/**
 * Predicted vs measured against the real local stack, and the API's wait
 * histograms read back as the report reads them.
 *
 * The saturation run: a one-kind spec whose reads hold a PgBouncer server
 * connection for 100 ms (db_sleep_ms) against default_pool_size 4 (40
 * transactions/s at most) while 60/s arrive, and an app pool of 60
 * connections that only fills once PgBouncer's queue has grown: PgBouncer's
 * server pool must be named first, near 100 % busy, and the model must have
 * predicted it (unstable) and agree.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { runArenaAsync } from '../../testing/cli.js';
import { localStack } from '../../testing/local-stack.js';
import { dbBoundSpec } from '../../testing/db-spec.js';
import { WAIT_BUCKETS } from '../api/metrics.js';
import { bucketQuantile, histogramDelta, parseSnapshot, steadyWaits } from '../sampler/prometheus.js';
import type { LoadTestResult } from '../engine/result-schema.js';

const spec = dbBoundSpec('pgbouncer-bound', '{name: read, weight: 1, serviceTimeMs: 1, dbTimeMs: 100}');

const tmpSpec = mkdtempSync(join(tmpdir(), 'arena-model-spec-'));
const SPEC = join(tmpSpec, 'pgbouncer-bound.yaml');
writeFileSync(SPEC, spec);
chmodSync(tmpSpec, 0o755);
const stack = localStack(SPEC, 'model');
const TMP = stack.tmp;
const STATE_DIR = stack.stateDir;

before(() => stack.up());
after(() => {
  stack.down();
  rmSync(tmpSpec, { recursive: true, force: true });
});

test('a PgBouncer server pool driven to saturation is named first, ~100 % busy, and the model predicted it', async () => {
  const out = join(TMP, 'result');
  const r = await runArenaAsync(
    // --scenario mixed -f: the spec's request mix (GET /api/matches?db_sleep_ms=100)
    ['loadtest', 'run', '-q', '-f', SPEC, '--state-dir', STATE_DIR, '--scenario', 'mixed', '--rate', '60'].concat([
      '--ramp',
      '6s',
      '--duration',
      '8s',
      '--graceful-stop',
      '5s',
      '--sample',
      'auto',
      '--seed',
      '7',
      '--out',
      out,
    ]),
    { timeoutMs: 120_000 },
  );
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  const sat = result.saturation!;
  assert.equal(
    sat.saturatesFirst?.pool,
    'pgbouncer_server',
    `first: ${JSON.stringify(sat.saturatesFirst)} (exit ${r.code}: ${r.err.slice(-400)})`,
  );
  const q = result.model!.queues['pgbouncerServerPool']!;
  assert.equal(q.predicted.stable, false, 'the model predicts 60/s x 100 ms = 6 Erlangs on 4 servers is unstable');
  assert.ok(q.measured.utilization! >= 0.9, `measured PgBouncer server utilisation ${q.measured.utilization}`);
  assert.equal(q.verdict, 'agrees', q.differences.join('; '));
  assert.equal(result.model!.saturatesFirst.predicted, 'pgbouncerServerPool');
  // clients queue in PgBouncer: the mean wait per transaction is far above the 100 ms hold
  assert.ok(q.measured.meanWaitMs! > 100, `PgBouncer wait per transaction ${q.measured.meanWaitMs} ms`);
  // the terminal report says the same
  assert.match(r.out, /saturates first: pgbouncer_server/);
  assert.match(r.out, /pgbouncerServerPool\s+│\s+4\s+│/);
  assert.match(r.out, /saturates first: predicted pgbouncerServerPool/);
});

test('wait histograms: the steady-phase delta of two /metrics scrapes gives the waits observed between them', async () => {
  const reg = new client.Registry();
  const h = new client.Histogram({
    name: 'arena_llm_slot_wait_seconds',
    help: 'x',
    buckets: WAIT_BUCKETS,
    registers: [reg],
  });
  const c = new client.Counter({ name: 'arena_llm_calls_total', help: 'x', labelNames: ['outcome'], registers: [reg] });
  for (let i = 0; i < 50; i++) h.observe(5); // before the steady phase: must not count
  const before = parseSnapshot(await reg.metrics());
  // 1,000 waits spread evenly over 0..1 s, then 10 at 2.5 s
  for (let i = 0; i < 1000; i++) h.observe((i + 0.5) / 1000);
  for (let i = 0; i < 10; i++) h.observe(2.5);
  c.inc({ outcome: 'ok' }, 7);
  c.inc({ outcome: 'error' }, 3);
  const afterSnap = parseSnapshot(await reg.metrics());
  const w = steadyWaits(before, afterSnap, 1000, 2000);
  const s = w.queues.llmSlots!;
  assert.equal(s.count, 1010);
  assert.equal(w.llmCalls, 10, 'calls of every outcome between the scrapes');
  const exactMean = (500 + 25) / 1010;
  assert.ok(Math.abs(s.meanMs! - exactMean * 1000) < 0.01, `mean ${s.meanMs} ms`);
  // histogram_quantile: P50 = rank 505; 500 waits are below 0.5 s, so 5 of the 500 in (0.5, 1]: 0.5 + 0.5 x 5/500 s
  assert.equal(s.p50Ms, 505);
  // P99 = rank 999.9, still in (0.5, 1]: 0.5 + 0.5 x 499.9/500 s; the 2.5 s waits (in (2, 3]) are above it
  assert.equal(s.p99Ms, 999.9);
  const d = histogramDelta(
    before.histograms['arena_llm_slot_wait_seconds'],
    afterSnap.histograms['arena_llm_slot_wait_seconds'],
  )!;
  assert.equal(bucketQuantile(d, 1), 3, 'the largest observation is in the (2, 3] bucket');
  assert.equal(w.queues.appDbPool, undefined, 'a histogram the API did not expose is left out');
});
