/**
 * Merging the results of shards (`arena loadtest run --shard i/N`: each
 * process drove its share of the arrivals or VUs, all from one common start)
 * into one result, exactly: every trend's HDR histograms are added (HDR
 * histograms of the same range and precision add without loss, so the merged
 * P99 is the P99 of one histogram of every shard's samples), counters and
 * failures are summed, rates add, per-second points are aligned on their
 * second index (the shards share the start), and the thresholds are
 * evaluated again on the merged figures.
 *
 * Per-second trends merge exactly when the shards kept their per-second
 * histograms (the default); with `--no-second-histograms` a merged second's
 * percentiles are the largest of the shards' (an upper bound, said in
 * `MergeNotes`). A merged second's `maxInFlight` is the sum of the shards'
 * (their peaks need not coincide: an upper bound). Saturation and the API's
 * waits come from the one shard that sampled (they measure the target, not a
 * shard).
 */
import { encode, mergeEncoded, percentiles } from './histogram.js';
import type { LoadTestResult, ScenarioResult } from './result-schema.js';
import { applyThresholds } from './result.js';
import type { ThresholdSpec } from './thresholds.js';

type Trend = ScenarioResult['metrics'][string];
type Second = LoadTestResult['series'][number];
type SecondMetrics = Second['all'];
type SecondTrend = SecondMetrics['trends'][string];

const sumRecords = (records: Record<string, number>[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
};

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** One trend from several shards' trends: histograms added, percentiles of the sum. */
function mergeTrend(trends: Trend[]): Trend {
  const h = mergeEncoded(trends.map((t) => t.hdr));
  return { ...percentiles(h), hdr: encode(h) };
}

/** A scenario (or `all`) from the shards' copies of it. */
function mergeScenario(parts: ScenarioResult[]): ScenarioResult {
  const first = parts[0]!;
  const metrics: ScenarioResult['metrics'] = {};
  const names = new Set(parts.flatMap((p) => Object.keys(p.metrics)));
  for (const m of names) metrics[m] = mergeTrend(parts.flatMap((p) => (p.metrics[m] ? [p.metrics[m]] : [])));
  const counters = sumRecords(parts.map((p) => p.counters));
  const merged: ScenarioResult = {
    name: first.name,
    kind: first.kind,
    metrics,
    counters,
    rates: {
      http_reqs: round(parts.reduce((s, p) => s + p.rates.http_reqs, 0)),
      iterations: round(parts.reduce((s, p) => s + p.rates.iterations, 0)),
    },
    http_req_failed:
      (counters['http_reqs'] ?? 0) > 0 ? round((counters['http_req_failed'] ?? 0) / counters['http_reqs']!, 6) : 0,
    failures: sumRecords(parts.map((p) => p.failures)),
    totals: sumRecords(parts.map((p) => p.totals)),
  };
  const goodputs = parts.flatMap((p) => (p.goodput ? [p.goodput] : []));
  if (goodputs.length > 0) {
    const good = goodputs.reduce((s, g) => s + g.good, 0);
    const iterations = counters['iterations'] ?? 0;
    merged.goodput = {
      objectives: goodputs[0]!.objectives,
      good,
      share: iterations > 0 ? round(good / iterations, 6) : 0,
      ratePerSecond: round(goodputs.reduce((s, g) => s + g.ratePerSecond, 0)),
    };
  }
  return merged;
}

/** One second's trend from the shards': exact with histograms, else the largest percentiles (an upper bound). */
function mergeSecondTrend(trends: SecondTrend[]): { trend: SecondTrend; exact: boolean } {
  if (trends.every((t) => t.hdr)) {
    const h = mergeEncoded(trends.map((t) => t.hdr!));
    return { trend: { ...percentiles(h), hdr: encode(h) }, exact: true };
  }
  const max = (k: keyof SecondTrend) => Math.max(...trends.map((t) => Number(t[k] ?? 0)));
  const count = trends.reduce((s, t) => s + t.count, 0);
  const mean = count > 0 ? trends.reduce((s, t) => s + t.mean * t.count, 0) / count : 0;
  return {
    trend: {
      count,
      min: Math.min(...trends.map((t) => t.min)),
      mean,
      p50: max('p50'),
      p90: max('p90'),
      p95: max('p95'),
      p99: max('p99'),
      p999: max('p999'),
      max: max('max'),
    },
    exact: false,
  };
}

function mergeSecondMetrics(parts: SecondMetrics[], exact: { value: boolean }): SecondMetrics {
  const trends: SecondMetrics['trends'] = {};
  for (const name of new Set(parts.flatMap((p) => Object.keys(p.trends)))) {
    const m = mergeSecondTrend(parts.flatMap((p) => (p.trends[name] ? [p.trends[name]] : [])));
    trends[name] = m.trend;
    if (!m.exact) exact.value = false;
  }
  return {
    trends,
    counters: sumRecords(parts.map((p) => p.counters)),
    failures: sumRecords(parts.map((p) => p.failures)),
  };
}

/** The per-second series aligned on the second index (every shard started at the same instant). */
function mergeSeries(shards: LoadTestResult[], exact: { value: boolean }): Second[] {
  const byT = new Map<number, Second[]>();
  for (const r of shards) for (const p of r.series) byT.set(p.t, [...(byT.get(p.t) ?? []), p]);
  return [...byT.keys()]
    .sort((a, b) => a - b)
    .map((t) => {
      const ps = byT.get(t)!;
      const names = new Set(ps.flatMap((p) => Object.keys(p.scenarios)));
      const scenarios: Second['scenarios'] = {};
      for (const n of names)
        scenarios[n] = mergeSecondMetrics(
          ps.flatMap((p) => (p.scenarios[n] ? [p.scenarios[n]] : [])),
          exact,
        );
      const sum = (f: (p: Second) => number) => ps.reduce((s, p) => s + f(p), 0);
      const max = (f: (p: Second) => number) => Math.max(...ps.map(f));
      return {
        t,
        phase: ps[0]!.phase,
        inFlight: sum((p) => p.inFlight),
        maxInFlight: sum((p) => p.maxInFlight),
        started: sum((p) => p.started),
        sockets: sum((p) => p.sockets),
        loopLagP99Ms: max((p) => p.loopLagP99Ms),
        loopLagMaxMs: max((p) => p.loopLagMaxMs),
        mainLoopLagP99Ms: max((p) => p.mainLoopLagP99Ms),
        cpuSeconds: sum((p) => p.cpuSeconds),
        rssBytes: sum((p) => p.rssBytes),
        clientSaturated: ps.some((p) => p.clientSaturated),
        scenarios,
        all: mergeSecondMetrics(
          ps.map((p) => p.all),
          exact,
        ),
      };
    });
}

/** What a merge says about itself besides the result. */
export interface MergeNotes {
  /** Whether every per-second trend merged exactly (all shards kept per-second histograms). */
  secondsExact: boolean;
}

/**
 * Merge shard results into one result and evaluate `thresholds` on it.
 * `settings` come from shard 0 (each shard records the whole run's model) with the workers summed.
 * @throws RangeError for an empty list or shards of different scenarios.
 */
export function mergeResults(
  shards: LoadTestResult[],
  thresholds: ThresholdSpec[],
): { result: LoadTestResult; notes: MergeNotes } {
  if (shards.length === 0) throw new RangeError('mergeResults: no shard');
  const base = shards[0]!;
  const names = Object.keys(base.scenarios).sort().join(',');
  for (const s of shards)
    if (Object.keys(s.scenarios).sort().join(',') !== names)
      throw new RangeError('mergeResults: the shards ran different scenarios');
  const scenarios: LoadTestResult['scenarios'] = {};
  for (const n of Object.keys(base.scenarios)) scenarios[n] = mergeScenario(shards.map((s) => s.scenarios[n]!));
  const all = mergeScenario(shards.map((s) => s.all));
  const exact = { value: true };
  const series = mergeSeries(shards, exact);
  const sampled = shards.find((s) => s.saturation);
  const waits = shards.find((s) => s.apiWaits);
  const sumOf = (f: (s: LoadTestResult) => number | undefined) => shards.reduce((a, s) => a + (f(s) ?? 0), 0);
  const reasons = shards.flatMap((s, i) => s.engine.clientSaturatedReasons.map((r) => `shard ${i}: ${r}`));
  const partial = shards.filter((s) => s.status === 'partial');
  const { shard: _shard, ...settings } = base.settings;
  const result: LoadTestResult = {
    ...base,
    status: partial.length ? 'partial' : 'complete',
    ...(partial.length ? { partialReason: partial.map((s) => s.partialReason).join('; ') } : {}),
    startedAt: shards.map((s) => s.startedAt).sort()[0]!,
    endedAt: shards
      .map((s) => s.endedAt)
      .sort()
      .at(-1)!,
    // every shard records the whole run's model (rate, VUs, maxVUs) and took its share of it
    settings: { ...settings, workers: sumOf((s) => s.settings.workers) },
    scenarios,
    all,
    series,
    engine: {
      cpuSeconds: round(sumOf((s) => s.engine.cpuSeconds)),
      peakRssBytes: sumOf((s) => s.engine.peakRssBytes),
      loopLagP99Ms: Math.max(...shards.map((s) => s.engine.loopLagP99Ms)),
      loopLagMaxMs: Math.max(...shards.map((s) => s.engine.loopLagMaxMs)),
      scheduleLagP99Ms: all.metrics['schedule_lag']?.p99 ?? 0,
      peakInFlight: Math.max(0, ...series.map((p) => p.maxInFlight)),
      clientSaturated: reasons.length > 0,
      clientSaturatedReasons: reasons,
      bounds: base.engine.bounds,
    },
    thresholds: [],
  };
  delete result.saturation;
  delete result.apiWaits;
  delete result.model;
  if (sampled?.saturation) result.saturation = sampled.saturation;
  if (waits?.apiWaits) result.apiWaits = waits.apiWaits;
  applyThresholds(result, thresholds);
  return { result, notes: { secondsExact: exact.value } };
}
