/**
 * Merging shards is exact: the merged percentiles are the percentiles of one
 * histogram of every shard's samples (property test over random sample sets
 * and shard counts), and a real `arena loadtest run --shards 2` against a
 * test server gives a merged result whose P99 equals the P99 of the shards'
 * histograms added, whose counts are the shards' sums, and whose requests are
 * what the server answered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { encode, histogramOf, mergeEncoded, percentiles } from './histogram.js';
import { mergeResults } from './merge.js';
import type { LoadTestResult, ScenarioResult } from './result-schema.js';
import { runArenaAsync } from '../../testing/cli.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ latencyMs: 5 });
});
after(() => server.close());

/** A minimal shard result holding one scenario's http_req_duration from `values` (ms). */
function shardOf(values: number[], index: number, of: number): LoadTestResult {
  // as result.json holds a trend: the encoded histogram and the percentiles of its decoded form
  const hdr = encode(histogramOf(Float64Array.from(values)));
  const trend = { ...percentiles(mergeEncoded([hdr])), hdr };
  const counters = { http_reqs: values.length, http_req_failed: 0, iterations: values.length };
  const scenario: ScenarioResult = {
    name: 'x',
    kind: 'http',
    metrics: { http_req_duration: trend },
    counters,
    rates: { http_reqs: values.length, iterations: values.length },
    http_req_failed: 0,
    failures: {},
    totals: counters,
  };
  return {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'LoadTestResult',
    schemaVersion: 1,
    status: 'complete',
    passed: true,
    startedAt: '2026-11-29T00:00:00.000Z',
    endedAt: '2026-11-29T00:00:01.000Z',
    settings: {
      target: 'http://127.0.0.1:1/',
      scenario: { name: 'x', source: 'test', requests: [] },
      executor: 'constant-arrival-rate',
      model: { type: 'open', rate: 10, maxVUs: 10 },
      phases: { rampUpMs: 0, steadyMs: 1000, rampDownMs: 0 },
      gracefulStopMs: 0,
      seed: 1,
      workers: 1,
      thresholds: {},
      shard: { index, of },
      engine: { version: 't', node: 'v20', cores: 2, openFilesSoftLimit: null },
    },
    scenarios: { x: scenario },
    all: { ...scenario, name: 'all', kind: 'all' },
    series: [],
    engine: {
      cpuSeconds: 0,
      peakRssBytes: 0,
      loopLagP99Ms: 0,
      loopLagMaxMs: 0,
      scheduleLagP99Ms: 0,
      peakInFlight: 0,
      clientSaturated: false,
      clientSaturatedReasons: [],
      bounds: { scheduleLagP99Ms: 50, loopLagP99Ms: 50 },
    },
    thresholds: [],
  };
}

test('merge: the merged percentiles are those of one histogram of every shard sample (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.double({ min: 0.001, max: 600_000, noNaN: true }), { minLength: 1, maxLength: 300 }), {
        minLength: 1,
        maxLength: 6,
      }),
      (sets) => {
        const shards = sets.map((v, i) => shardOf(v, i, sets.length));
        const { result } = mergeResults(shards, []);
        const one = percentiles(mergeEncoded([encode(histogramOf(Float64Array.from(sets.flat())))]));
        const merged = result.scenarios['x']!.metrics['http_req_duration']!;
        for (const k of ['count', 'min', 'p50', 'p90', 'p95', 'p99', 'p999', 'max'] as const)
          assert.equal(merged[k], one[k], `${k} over ${sets.length} shards`);
        assert.equal(result.scenarios['x']!.counters['http_reqs'], sets.flat().length);
        assert.equal(result.settings.shard, undefined, 'the merged result is not a shard');
      },
    ),
    { numRuns: 60, seed: 7 },
  );
});

test('arena loadtest run --shards 2: two processes, one common start, a merged result equal to the sum of the shards', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'arena-shards-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const scenario = join(dir, 'scenario.yaml');
  writeFileSync(
    scenario,
    'name: sharded\nrequests:\n  - name: fixed\n    path: /fixed\n  - name: hold\n    path: /hold?ms=20\n',
  );
  writeFileSync(join(dir, 'th.json'), JSON.stringify({ 'http_req_duration{scenario:hold}': ['p(99)<5000'] }));
  // the scenario's paths only (each process's preflight request goes to /)
  const answered = () => (server.answered.get('/fixed') ?? 0) + (server.answered.get('/hold') ?? 0);
  const before = answered();
  const out = join(dir, 'out');
  const args = ['loadtest', 'run', '--target', server.url, '--scenario-file', scenario, '--rate', '80'];
  args.push('--duration', '3s', '--shards', '2', '--seed', '3', '--out', out, '--thresholds', join(dir, 'th.json'));
  const r = await runArenaAsync(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.err);
  const read = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as LoadTestResult;
  const merged = read(join(out, 'result.json'));
  const shards = [0, 1].map((i) => read(join(out, 'shards', `shard-${i}`, 'result.json')));
  assert.deepEqual(
    shards.map((s) => s.settings.shard?.index),
    [0, 1],
  );
  assert.equal(shards[0]!.settings.shard!.startAt, shards[1]!.settings.shard!.startAt, 'one common --start-at');
  const started = shards.map((s) => Date.parse(s.startedAt));
  assert.ok(
    Math.abs(started[0]! - started[1]!) <= 100,
    `shards started together: ${started[1]! - started[0]!} ms apart`,
  );
  for (const name of ['fixed', 'hold', 'all']) {
    const pick = (x: LoadTestResult) => (name === 'all' ? x.all : x.scenarios[name]!);
    const m = pick(merged).metrics['http_req_duration']!;
    const one = percentiles(mergeEncoded(shards.map((s) => pick(s).metrics['http_req_duration']!.hdr)));
    assert.equal(m.p99, one.p99, `${name}: merged P99 = P99 of the shards' histograms added`);
    assert.equal(m.count, one.count);
    assert.equal(
      pick(merged).counters['http_reqs'],
      shards.reduce((a, s) => a + (pick(s).counters['http_reqs'] ?? 0), 0),
    );
  }
  assert.equal(merged.all.totals['http_reqs'], answered() - before, 'every request the server answered, once');
  // each shard offered about half of the 80/s
  for (const s of shards)
    assert.ok(s.all.rates.iterations > 25 && s.all.rates.iterations < 55, `${s.all.rates.iterations}/s`);
  assert.equal(merged.settings.model.rate, 80);
  assert.equal(merged.shards?.length, 2);
  assert.equal(merged.thresholds[0]!.status, 'pass');
  assert.ok(r.out.includes('Steady phase'), 'the merged report is printed');
});
