/**
 * `arena loadtest compare`: the significance method on real HDR histograms of
 * seeded samples (intervals cover the true quantile; one distribution is
 * "not significant", a +50 % shift is a regression), the error-rate rule, and
 * the CLI on real runs against one test server whose latency changes between
 * runs (exit 1 naming the regression, exit 0 for equal runs, -o json, notes,
 * one-line refusals).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newHistogram, percentileMs, recordMs, type Histogram } from '../engine/histogram.js';
import { randomStream, standardNormal, type Random } from '../engine/random.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';
import { shortLoadTest, type ShortRunOutcome } from '../../testing/loadtest-run.js';
import { assertRefused, runArenaAsync } from '../../testing/cli.js';
import {
  compareErrorRate,
  comparePercentile,
  percentileInterval,
  requiredSamples,
  wilsonInterval,
  type Comparison,
  type Verdict,
} from './compare.js';

/** n lognormal latencies (median `medianMs`, sigma 0.5), times `scale`, in a real HDR histogram. */
function lognormalHistogram(r: Random, n: number, medianMs: number, scale = 1): Histogram {
  const h = newHistogram();
  for (let i = 0; i < n; i++) recordMs(h, scale * medianMs * Math.exp(0.5 * standardNormal(r)));
  return h;
}

const PERCENTS = [50, 95, 99] as const;

function verdicts(base: Histogram, next: Histogram): Verdict[] {
  return PERCENTS.map(
    (p) =>
      comparePercentile(
        {
          label: `P${p}`,
          percent: p,
          base: percentileMs(base, p),
          new: percentileMs(next, p),
          baseHist: base,
          newHist: next,
        },
        0.1,
      ).verdict,
  );
}

test('percentile intervals: the 95% interval covers the true quantile about 95% of the time', () => {
  const r = randomStream(7);
  const trials = 200;
  const covered: Record<number, number> = { 50: 0, 95: 0, 99: 0 };
  for (let t = 0; t < trials; t++) {
    const h = lognormalHistogram(r, 2000, 100);
    for (const p of PERCENTS) {
      // true quantile of 100 * exp(0.5 Z): z_0.5 = 0, z_0.95 = 1.6449, z_0.99 = 2.3263
      const z = { 50: 0, 95: 1.6448536, 99: 2.3263479 }[p];
      const truth = 100 * Math.exp(0.5 * z);
      const ci = percentileInterval(h, p)!;
      assert.ok(ci.lo <= percentileMs(h, p) && percentileMs(h, p) <= ci.hi, 'the point estimate is inside');
      if (ci.lo <= truth && truth <= ci.hi) covered[p]!++;
    }
  }
  for (const p of PERCENTS) {
    const share = covered[p]! / trials;
    assert.ok(share >= 0.9 && share <= 0.995, `P${p}: interval covered the true value in ${share * 100}% of trials`);
  }
});

test('compare method: two samples of one distribution are "not significant"; a +50% shift is a REGRESSION', () => {
  const r = randomStream(42);
  const trials = 60;
  const same = new Map<Verdict, number>();
  const shifted = PERCENTS.map(() => new Map<Verdict, number>());
  const add = (m: Map<Verdict, number>, v: Verdict) => m.set(v, (m.get(v) ?? 0) + 1);
  for (let t = 0; t < trials; t++) {
    const base = lognormalHistogram(r, 2000, 20);
    for (const v of verdicts(base, lognormalHistogram(r, 2000, 20))) add(same, v);
    verdicts(base, lognormalHistogram(r, 2000, 20, 1.5)).forEach((v, i) => add(shifted[i]!, v));
  }
  const rows = trials * PERCENTS.length;
  assert.equal(same.get('regression') ?? 0, 0, `no regression from noise: ${JSON.stringify([...same])}`);
  assert.ok((same.get('not-significant') ?? 0) >= 0.95 * rows, `mostly not significant: ${JSON.stringify([...same])}`);
  // P50 and P95 are tight at n = 2,000; P99's interval (ranks ~1,971..1,990) is wide, so a rare trial overlaps
  const [p50, p95, p99] = shifted.map((m) => m.get('regression') ?? 0);
  assert.equal(p50, trials, `P50: ${JSON.stringify([...shifted[0]!])}`);
  assert.equal(p95, trials, `P95: ${JSON.stringify([...shifted[1]!])}`);
  assert.ok(p99! >= 0.95 * trials, `P99: ${JSON.stringify([...shifted[2]!])}`);
  assert.equal(shifted[2]!.get('ok') ?? 0, 0, 'a +50% shift is never "ok"');
});

test('compare method: too few samples for a percentile is said, with the count needed, and never a regression', () => {
  assert.deepEqual(
    PERCENTS.map((p) => requiredSamples(p)),
    [20, 200, 1000],
  );
  const r = randomStream(3);
  const base = lognormalHistogram(r, 300, 10);
  const next = lognormalHistogram(r, 300, 10, 4);
  const p99 = comparePercentile(
    {
      label: 'P99',
      percent: 99,
      base: percentileMs(base, 99),
      new: percentileMs(next, 99),
      baseHist: base,
      newHist: next,
      unit: 'requests',
    },
    0.1,
  );
  assert.equal(p99.verdict, 'too-few-samples');
  assert.equal(p99.reason, 'too few samples: 300 requests, need ≥ 1,000 for P99');
  assert.equal(p99.baseCi, null);
  assert.ok(p99.ratio! > 3, 'the change is still reported');
  assert.equal(verdicts(base, next)[1], 'regression', 'P95 has enough samples (300 >= 200) and regresses');
});

test('error-rate rule: needs a rise of >= 1 point, beyond --max-regression, with Wilson intervals apart', () => {
  // 0 of 240 -> 3 of 240: +1.25 points, but the intervals overlap (3 failures happen by chance)
  assert.equal(
    compareErrorRate({ failed: 0, requests: 240 }, { failed: 3, requests: 240 }, 0.1).verdict,
    'not-significant',
  );
  // 0 of 1,000 -> 50 of 1,000: +5 points, far apart
  const five = compareErrorRate({ failed: 0, requests: 1000 }, { failed: 50, requests: 1000 }, 0.1);
  assert.equal(five.verdict, 'regression');
  assert.equal(five.changePp, 5);
  // 0.01 % -> 0.05 %: +400 % relative but under one point
  assert.equal(
    compareErrorRate({ failed: 10, requests: 100_000 }, { failed: 50, requests: 100_000 }, 0.1).verdict,
    'ok',
  );
  // 20 % -> 21.5 % on 100,000 each: significant, >= 1 point, but within +10 % relative
  assert.equal(
    compareErrorRate({ failed: 20_000, requests: 100_000 }, { failed: 21_500, requests: 100_000 }, 0.1).verdict,
    'ok',
  );
  assert.equal(
    compareErrorRate({ failed: 0, requests: 0 }, { failed: 0, requests: 10 }, 0.1).verdict,
    'too-few-samples',
  );
  const w = wilsonInterval(0, 240)!;
  assert.ok(w.lo === 0 && w.hi > 0.01 && w.hi < 0.02, `Wilson 0/240: ${JSON.stringify(w)}`);
});

// ---------------------------------------------------------------- CLI on real runs

let server: TestServer;
let base: ShortRunOutcome;
let slow: ShortRunOutcome;
let slowAgain: ShortRunOutcome;
const tmps: string[] = [];

const REQUESTS = 'requests:\n  - name: fixed\n    path: /fixed\n';
const compare = (args: string[]) => runArenaAsync(['loadtest', 'compare', ...args], { timeoutMs: 60_000 });

before(async () => {
  server = await startTestServer({ latencyMs: 10 });
  const runAt = async (latencyMs: number) => {
    server.latencyMs = latencyMs;
    const o = await shortLoadTest({ target: server.url, requests: REQUESTS, rate: 60, duration: '4s' });
    assert.equal(o.run.code, 0, o.run.err);
    tmps.push(join(o.dir, '..'));
    return o;
  };
  base = await runAt(10);
  slow = await runAt(40);
  slowAgain = await runAt(40);
});
after(async () => {
  await server.close();
  for (const d of tmps) rmSync(d, { recursive: true, force: true });
});

test('loadtest compare: 10 ms -> 40 ms exits 1 and names http_req_duration of the scenario as REGRESSION', async () => {
  const r = await compare([base.dir, slow.dir]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /│ fixed +│ http_req_duration +│ P50 +│[^\n]*REGRESSION/);
  assert.match(r.out, /│ fixed +│ http_req_duration +│ P95 +│[^\n]*REGRESSION/);
  assert.match(
    r.out,
    /│ fixed +│ http_req_duration +│ P99 +│[^\n]*too few samples: \d+ requests, need ≥ 1,000 for P99/,
  );
  assert.match(r.out, /regression\(s\):\n {2}fixed http_req_duration P50: [\d.]+ ms -> [\d.]+ ms \(\+\d+%\)/);
  assert.match(r.out, /│ fixed +│ http_req_failed +│ rate +│ 0\.00% of \d+/);
});

test('loadtest compare: two runs at the same latency exit 0; a result.json file works as an argument', async () => {
  const r = await compare([slow.dir, join(slowAgain.dir, 'result.json')]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /no regression/);
  assert.doesNotMatch(r.out, /REGRESSION/);
  assert.doesNotMatch(r.out, /warning:/, 'same load: no warning');
});

test('loadtest compare -o json: parses and holds the numbers of the two result.json files', async () => {
  const r = await compare([base.dir, slow.dir, '-o', 'json', '--max-regression', '0.25']);
  assert.equal(r.code, 1, r.err);
  const c = JSON.parse(r.out) as Comparison & { baseFile: string; newFile: string };
  assert.equal(c.maxRegression, 0.25);
  assert.equal(c.regression, true);
  assert.equal(c.baseFile, join(base.dir, 'result.json'));
  for (const [name, pick] of [
    ['fixed', (x: LoadTestResult) => x.scenarios['fixed']!],
    ['all', (x: LoadTestResult) => x.all],
  ] as const) {
    const s = c.scenarios.find((x) => x.name === name)!;
    const d = s.metrics.find((m) => m.metric === 'http_req_duration')!;
    const p99 = d.percentiles.find((p) => p.percentile === 'P99')!;
    assert.equal(p99.base, pick(base.result!).metrics['http_req_duration']!.p99);
    assert.equal(p99.new, pick(slow.result!).metrics['http_req_duration']!.p99);
    assert.equal(d.baseCount, pick(base.result!).metrics['http_req_duration']!.count);
    const p50 = d.percentiles.find((p) => p.percentile === 'P50')!;
    assert.equal(p50.verdict, 'regression');
    assert.ok(p50.newCi!.lo > p50.baseCi!.hi, 'intervals apart');
    assert.ok(p50.new >= 40 && p50.base >= 10 && p50.base < 40);
    assert.equal(s.errorRate.base, pick(base.result!).http_req_failed);
  }
});

test('loadtest compare: other scenarios and another load are notes and a warning, not crashes', async () => {
  const d = mkdtempSync(join(tmpdir(), 'arena-compare-'));
  tmps.push(d);
  const other = JSON.parse(readFileSync(join(slowAgain.dir, 'result.json'), 'utf8')) as LoadTestResult;
  other.scenarios['renamed'] = { ...other.scenarios['fixed']!, name: 'renamed' };
  delete other.scenarios['fixed'];
  other.settings.model.rate = 90;
  other.settings.target = 'http://127.0.0.1:1';
  writeFileSync(join(d, 'result.json'), JSON.stringify(other));
  const r = await compare([slow.dir, d]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /note: scenario fixed only in BASE \(not compared\)/);
  assert.match(r.out, /note: scenario renamed only in NEW \(not compared\)/);
  assert.match(r.out, /note: different targets: BASE http:\/\/127\.0\.0\.1:\d+\/?, NEW http:\/\/127\.0\.0\.1:1/);
  assert.match(r.out, /warning: different load: BASE 60\/s poisson arrivals, NEW 90\/s poisson arrivals/);
  assert.match(r.out, /│ all +│ http_req_duration +│ P50 /, 'all is still compared');
});

test('loadtest compare: bad input is one line naming the path or flag, exit 2', async () => {
  const d = mkdtempSync(join(tmpdir(), 'arena-compare-bad-'));
  tmps.push(d);
  const missing = join(d, 'no-such-run');
  assertRefused(await compare([missing, slow.dir]), new RegExp(`base ${missing}: no such folder or file`));
  assertRefused(await compare([slow.dir, d]), new RegExp(`new ${d}: no result.json in this folder`));
  assertRefused(
    await compare([base.dir, slow.dir, '--max-regression', 'abc']),
    /^arena loadtest compare: option '--max-regression <pct>' argument 'abc' is invalid/,
  );
  assertRefused(await compare([base.dir, slow.dir, '--max-regression', '10']), /--max-regression.*write 10%/);
  writeFileSync(join(d, 'result.json'), '{"kind": "LoadTestResult", ');
  assertRefused(await compare([base.dir, d]), /result\.json: not a readable result\.json/);
  writeFileSync(join(d, 'result.json'), JSON.stringify({ ...base.result!, all: { name: 'all' } }));
  assertRefused(
    await compare([base.dir, d]),
    /new .*result\.json: not a valid result\.json \(all\.\w+: required field is missing\)/,
  );
});
