/**
 * `arena loadtest compare`: gate a new load-test result against a base one
 * (the last good run). Pure: two parsed `result.json` in, a `Comparison` out,
 * no I/O; the CLI (cli/commands/loadtest-compare.ts) reads the files and
 * prints it.
 *
 * Compared: every scenario (request name) present in both runs, and `all`;
 * per latency trend present in both among `http_req_duration`, `ttft`, `itl`,
 * `e2e_latency`, `task_e2e`, `task_queue_wait`: P50, P95 and P99 (ms), with a
 * 95 % confidence interval for each; and the error rate (`http_req_failed`).
 *
 * Latency rule: a percentile regresses when NEW > BASE x (1 + maxRegression)
 * AND the change is significant: the two 95 % confidence intervals do not
 * overlap (NEW's lower bound above BASE's upper bound). The intervals are
 * distribution-free, from the order statistics (binomial method; Conover,
 * Practical Nonparametric Statistics, 3rd ed., 3.2 "quantile confidence
 * interval"; Le Boudec, Performance Evaluation of Computer and Communication
 * Systems, 2.2.1): for quantile q of n samples the ranks
 * j = floor(nq - z sqrt(nq(1-q))) and k = ceil(nq + z sqrt(nq(1-q))) + 1,
 * z = 1.96, clamped to [1, n], give [X(j), X(k)], read from the run's HDR
 * histogram (`metrics[name].hdr`, 3 significant digits). The normal
 * approximation behind those ranks needs at least 10 samples on each side of
 * the quantile (n q >= 10 and n (1-q) >= 10: 20 samples for P50, 200 for P95,
 * 1,000 for P99); with fewer, the row says "too few samples" and never counts
 * as a regression. Non-overlap of two 95 % intervals is a conservative test
 * (for intervals of equal width it is a difference significant at about the
 * 0.6 % level), so a gate on it rarely fails on noise.
 *
 * Error-rate rule: the error rate regresses when it rises by at least 1
 * percentage point AND by more than maxRegression relative (NEW > BASE x
 * (1 + maxRegression)) AND the rise is significant (the 95 % Wilson score
 * intervals of the two proportions do not overlap). Why three conditions: a
 * relative rule alone fires on noise near zero (0.01 % -> 0.03 % is +200 %
 * but one request in ten thousand); an absolute rule alone ignores how noisy a
 * proportion of a few hundred requests is (0 of 240 -> 3 of 240 is +1.25
 * points, which a fair coin produces often); the Wilson interval is the
 * proportion's counterpart of the quantile interval above (Wilson 1927; it
 * behaves at 0 %, where the textbook normal interval collapses).
 */
import { InvalidInputError } from '../../lib/errors.js';
import type { LoadTestResult, ScenarioResult } from '../engine/result-schema.js';
import { decode, type Histogram } from '../engine/histogram.js';

/** The latency trends compared, in report order. */
export const COMPARED_METRICS = [
  'http_req_duration',
  'ttft',
  'itl',
  'e2e_latency',
  'task_e2e',
  'task_queue_wait',
] as const;

/** The percentiles compared: the key in result.json, the label, the percent. */
export const COMPARED_PERCENTILES = [
  { key: 'p50', label: 'P50', percent: 50 },
  { key: 'p95', label: 'P95', percent: 95 },
  { key: 'p99', label: 'P99', percent: 99 },
] as const;

/** z of a two-sided 95 % interval. */
export const Z95 = 1.959963984540054;

/** Samples needed on each side of a quantile for its interval (the normal approximation of the binomial). */
export const MIN_TAIL_SAMPLES = 10;

/** The smallest rise of the error rate that can count as a regression: 1 percentage point (as a fraction). */
export const MIN_ERROR_RATE_RISE = 0.01;

/**
 * A row's verdict. `regression`: beyond --max-regression and significant;
 * `not-significant`: the 95 % intervals overlap (for the error rate: a rise
 * past the rule whose intervals overlap); `too-few-samples`: a run has too few
 * samples for an interval; `improved`: significantly lower; `ok`: anything
 * else (a significant rise within --max-regression, or no change).
 */
export type Verdict = 'ok' | 'improved' | 'regression' | 'not-significant' | 'too-few-samples';

/** A confidence interval, in the unit of its row (ms, or a fraction 0..1 for the error rate). */
export interface Interval {
  lo: number;
  hi: number;
}

/** One percentile of one trend: values in ms, as result.json has them. */
export interface PercentileComparison {
  /** `P50`, `P95`, `P99`. */
  percentile: string;
  /** BASE's and NEW's value (result.json's `p50`/`p95`/`p99`), ms. */
  base: number;
  new: number;
  /** NEW - BASE, ms. */
  changeMs: number;
  /** NEW / BASE (null when BASE is 0). */
  ratio: number | null;
  /** 95 % intervals, ms; null with too few samples. */
  baseCi: Interval | null;
  newCi: Interval | null;
  verdict: Verdict;
  /** The verdict in words, e.g. `not significant (intervals overlap)`, `too few samples: 240 requests, need ≥ 1,000 for P99`. */
  reason: string;
}

/** One latency trend of one scenario. */
export interface MetricComparison {
  metric: string;
  /** Samples in each run's steady-phase histogram. */
  baseCount: number;
  newCount: number;
  percentiles: PercentileComparison[];
}

/** The error rate (`http_req_failed`, failed / requests) of one scenario; rates are fractions 0..1. */
export interface ErrorRateComparison {
  base: number;
  new: number;
  baseRequests: number;
  newRequests: number;
  /** NEW - BASE in percentage points (0.02 -> 0.05 is +3). */
  changePp: number;
  /** 95 % Wilson score intervals (fractions); null without requests. */
  baseCi: Interval | null;
  newCi: Interval | null;
  verdict: Verdict;
  reason: string;
}

/** One scenario (request name, or `all`). */
export interface ScenarioComparison {
  name: string;
  kind: string;
  metrics: MetricComparison[];
  errorRate: ErrorRateComparison;
}

/** What identifies a run in the report. */
export interface RunSummary {
  startedAt: string;
  target: string;
  scenario: string;
  /** The offered load in words, e.g. `60/s poisson arrivals`, `20 VUs`. */
  load: string;
  steadyMs: number;
  status: string;
}

/** The outcome of `compareResults`. */
export interface Comparison {
  /** The allowed regression as a fraction (0.1 = 10 %). */
  maxRegression: number;
  /** True when any row's verdict is `regression` (the CLI exits 1). */
  regression: boolean;
  /** One line per regressing row, e.g. `fixed http_req_duration P95: 12.1 ms -> 41.9 ms (+246%)`. */
  regressions: string[];
  base: RunSummary;
  new: RunSummary;
  /** Differences that make the comparison weaker: another load, a partial run, a saturated client. */
  warnings: string[];
  /** What was not compared or differs harmlessly: scenarios or metrics in one run only, another target or scenario. */
  notes: string[];
  scenarios: ScenarioComparison[];
}

/** Options of `compareResults`. */
export interface CompareOptions {
  /** Allowed regression as a fraction >= 0 (0.1 = 10 %). */
  maxRegression: number;
  /** Names of the runs in error messages (e.g. their files); default `base` and `new`. */
  labels?: { base: string; new: string };
}

const ms = (us: number) => Math.round(us) / 1000;
const int = (n: number) => n.toLocaleString('en-US');

/**
 * Samples a run needs for the interval of a percentile: at least
 * MIN_TAIL_SAMPLES on each side (20 for P50, 200 for P95, 1,000 for P99).
 * @param percent the percentile, 0 < percent < 100.
 */
export function requiredSamples(percent: number): number {
  return Math.ceil((MIN_TAIL_SAMPLES * 100) / Math.min(percent, 100 - percent));
}

/** The value (ms) at rank r (1-based) of a histogram's samples, as HdrHistogram reports percentiles. */
function valueAtRank(h: Histogram, r: number): number {
  return ms(h.getValueAtPercentile((100 * (r - 0.5)) / h.totalCount));
}

/**
 * The distribution-free 95 % confidence interval of a percentile (ms) from a
 * histogram: the order statistics at ranks floor(nq - z sqrt(nq(1-q))) and
 * ceil(nq + z sqrt(nq(1-q))) + 1 (Le Boudec 2.2.1), clamped to [1, n].
 * @param percent 0 < percent < 100.
 * @returns null when the histogram has fewer than `requiredSamples(percent)` samples.
 */
export function percentileInterval(h: Histogram, percent: number): Interval | null {
  const n = h.totalCount;
  if (n < requiredSamples(percent)) return null;
  const q = percent / 100;
  const hw = Z95 * Math.sqrt(n * q * (1 - q));
  const j = Math.max(1, Math.floor(n * q - hw));
  const k = Math.min(n, Math.ceil(n * q + hw) + 1);
  return { lo: valueAtRank(h, j), hi: valueAtRank(h, k) };
}

/**
 * The 95 % Wilson score interval of a proportion x/n (fractions 0..1).
 * @returns null when n is 0.
 */
export function wilsonInterval(x: number, n: number): Interval | null {
  if (n <= 0) return null;
  const p = x / n;
  const z2 = Z95 * Z95;
  const d = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / d;
  const half = (Z95 / d) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: Math.max(0, center - half), hi: Math.min(1, center + half) };
}

const overlap = (a: Interval, b: Interval) => a.lo <= b.hi && b.lo <= a.hi;
const signedPct = (ratio: number) => `${ratio >= 1 ? '+' : ''}${Math.round((ratio - 1) * 100)}%`;

/** One percentile's values and histograms (BASE and NEW). */
export interface PercentileInput {
  label: string;
  percent: number;
  base: number;
  new: number;
  baseHist: Histogram;
  newHist: Histogram;
  /** What a sample is, for the "too few samples" reason: `requests` or `samples`. */
  unit?: string;
}

/**
 * Compare one percentile of two histograms by the latency rule (see the module doc).
 * `base`/`new` are the reported values (ms); the intervals come from the histograms.
 */
export function comparePercentile(p: PercentileInput, maxRegression: number): PercentileComparison {
  const ratio = p.base > 0 ? p.new / p.base : null;
  const baseCi = percentileInterval(p.baseHist, p.percent);
  const newCi = percentileInterval(p.newHist, p.percent);
  const row = {
    percentile: p.label,
    base: p.base,
    new: p.new,
    changeMs: Math.round((p.new - p.base) * 1000) / 1000,
    ratio,
    baseCi,
    newCi,
  };
  if (!baseCi || !newCi) {
    const nb = p.baseHist.totalCount;
    const nn = p.newHist.totalCount;
    const need = requiredSamples(p.percent);
    const which = nb < need && nn < need ? '' : nb < need ? ' in base' : ' in new';
    const reason = `too few samples: ${int(Math.min(nb, nn))} ${p.unit ?? 'samples'}${which}, need ≥ ${int(need)} for ${p.label}`;
    return { ...row, verdict: 'too-few-samples', reason };
  }
  const beyond = p.new > p.base * (1 + maxRegression);
  if (overlap(baseCi, newCi))
    return { ...row, verdict: 'not-significant', reason: 'not significant (intervals overlap)' };
  if (beyond && newCi.lo > baseCi.hi) {
    const change = ratio === null ? 'from 0' : signedPct(ratio);
    return { ...row, verdict: 'regression', reason: `${change} > +${fmtPct(maxRegression)}, intervals apart` };
  }
  if (newCi.hi < baseCi.lo) return { ...row, verdict: 'improved', reason: 'lower, intervals apart' };
  return { ...row, verdict: 'ok', reason: `within +${fmtPct(maxRegression)}` };
}

/** A fraction as a percentage without trailing zeros: 0.1 -> `10%`, 0.025 -> `2.5%`. */
export function fmtPct(fraction: number): string {
  return `${+(fraction * 100).toFixed(2)}%`;
}

/**
 * Compare the error rates (failed / requests, fractions) by the error-rate rule (see the module doc).
 * Counts are whole requests; a run without requests gives `too-few-samples`.
 */
export function compareErrorRate(
  base: { failed: number; requests: number },
  next: { failed: number; requests: number },
  maxRegression: number,
): ErrorRateComparison {
  const b = base.requests > 0 ? base.failed / base.requests : 0;
  const n = next.requests > 0 ? next.failed / next.requests : 0;
  const baseCi = wilsonInterval(base.failed, base.requests);
  const newCi = wilsonInterval(next.failed, next.requests);
  const row = {
    base: b,
    new: n,
    baseRequests: base.requests,
    newRequests: next.requests,
    changePp: Math.round((n - b) * 100 * 1000) / 1000,
    baseCi,
    newCi,
  };
  if (!baseCi || !newCi)
    return { ...row, verdict: 'too-few-samples', reason: `too few samples: no requests in ${baseCi ? 'new' : 'base'}` };
  const rises = n - b >= MIN_ERROR_RATE_RISE - 1e-12 && n > b * (1 + maxRegression);
  if (rises && newCi.lo > baseCi.hi)
    return {
      ...row,
      verdict: 'regression',
      reason: `+${(100 * (n - b)).toFixed(1)} points (≥ 1 and > +${fmtPct(maxRegression)}), intervals apart`,
    };
  if (rises) return { ...row, verdict: 'not-significant', reason: 'not significant (intervals overlap)' };
  if (newCi.hi < baseCi.lo) return { ...row, verdict: 'improved', reason: 'lower, intervals apart' };
  return { ...row, verdict: 'ok', reason: 'ok' };
}

/** The offered load of a run in words. */
export function loadOf(r: LoadTestResult): string {
  const m = r.settings.model;
  if (m.type === 'open') return `${+(m.rate ?? 0).toFixed(3)}/s ${m.arrivalProcess ?? ''} arrivals`.replace('  ', ' ');
  return `${int(m.vus ?? 0)} VUs${m.thinkTimeMs ? `, think ${m.thinkTimeMs} ms` : ''}`;
}

function summary(r: LoadTestResult): RunSummary {
  return {
    startedAt: r.startedAt,
    target: r.settings.target,
    scenario: r.settings.scenario.name,
    load: loadOf(r),
    steadyMs: r.settings.phases.steadyMs,
    status: r.status,
  };
}

function decodeOrThrow(s: string, where: string): Histogram {
  try {
    return decode(s);
  } catch (e) {
    throw new InvalidInputError(`${where}: not a valid encoded histogram (${(e as Error).message})`);
  }
}

function compareMetric(
  b: ScenarioResult,
  n: ScenarioResult,
  metric: string,
  o: CompareOptions & { labels: { base: string; new: string } },
): MetricComparison {
  const bt = b.metrics[metric]!;
  const nt = n.metrics[metric]!;
  const path = (label: string, s: ScenarioResult) =>
    `${label}: ${s.kind === 'all' ? 'all' : `scenarios.${s.name}`}.metrics.${metric}.hdr`;
  const baseHist = decodeOrThrow(bt.hdr, path(o.labels.base, b));
  const newHist = decodeOrThrow(nt.hdr, path(o.labels.new, n));
  const unit = metric === 'http_req_duration' ? 'requests' : 'samples';
  return {
    metric,
    baseCount: baseHist.totalCount,
    newCount: newHist.totalCount,
    percentiles: COMPARED_PERCENTILES.map((p) =>
      comparePercentile(
        { label: p.label, percent: p.percent, base: bt[p.key], new: nt[p.key], baseHist, newHist, unit },
        o.maxRegression,
      ),
    ),
  };
}

function compareScenario(
  b: ScenarioResult,
  n: ScenarioResult,
  o: CompareOptions & { labels: { base: string; new: string } },
  notes: string[],
): ScenarioComparison {
  const metrics: MetricComparison[] = [];
  for (const m of COMPARED_METRICS) {
    const inBase = m in b.metrics;
    const inNew = m in n.metrics;
    if (inBase && inNew) metrics.push(compareMetric(b, n, m, o));
    else if (inBase !== inNew) notes.push(`scenario ${b.name}: metric ${m} only in ${inBase ? 'BASE' : 'NEW'}`);
  }
  const errorRate = compareErrorRate(
    { failed: b.counters['http_req_failed'] ?? 0, requests: b.counters['http_reqs'] ?? 0 },
    { failed: n.counters['http_req_failed'] ?? 0, requests: n.counters['http_reqs'] ?? 0 },
    o.maxRegression,
  );
  return { name: b.name, kind: b.kind, metrics, errorRate };
}

/** Warnings and notes on how the two runs differ (load, status, client, target, scenario, duration). */
function differences(base: LoadTestResult, next: LoadTestResult): { warnings: string[]; notes: string[] } {
  const warnings: string[] = [];
  const notes: string[] = [];
  const [lb, ln] = [loadOf(base), loadOf(next)];
  const mb = base.settings.model;
  const mn = next.settings.model;
  if (lb !== ln || mb.type !== mn.type)
    warnings.push(
      `different load: BASE ${lb}, NEW ${ln}; latency differences may come from the load, not from the change under test`,
    );
  for (const [label, r] of [
    ['BASE', base],
    ['NEW', next],
  ] as const) {
    if (r.status === 'partial') warnings.push(`${label} is a partial run (${r.partialReason ?? 'stopped early'})`);
    if (r.engine.clientSaturated)
      warnings.push(
        `${label}'s load client saturated (${r.engine.clientSaturatedReasons.join('; ')}): its figures may measure the client`,
      );
  }
  if (base.settings.target !== next.settings.target)
    notes.push(`different targets: BASE ${base.settings.target}, NEW ${next.settings.target}`);
  if (base.settings.scenario.name !== next.settings.scenario.name)
    notes.push(`different scenarios: BASE ${base.settings.scenario.name}, NEW ${next.settings.scenario.name}`);
  if (base.settings.phases.steadyMs !== next.settings.phases.steadyMs)
    notes.push(
      `different steady phases: BASE ${base.settings.phases.steadyMs / 1000} s, NEW ${next.settings.phases.steadyMs / 1000} s (sample counts differ)`,
    );
  return { warnings, notes };
}

/** A duration in ms for people: `0.95 ms`, `11.4 ms`, `2.35 s`. */
export function fmtMs(x: number): string {
  const a = Math.abs(x);
  return a >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(a < 10 ? 2 : 1)} ms`;
}

function regressionLines(scenarios: ScenarioComparison[]): string[] {
  const out: string[] = [];
  const v = fmtMs;
  for (const s of scenarios) {
    for (const m of s.metrics)
      for (const p of m.percentiles)
        if (p.verdict === 'regression')
          out.push(
            `${s.name} ${m.metric} ${p.percentile}: ${v(p.base)} -> ${v(p.new)} (${p.ratio === null ? 'from 0' : signedPct(p.ratio)})`,
          );
    const e = s.errorRate;
    if (e.verdict === 'regression')
      out.push(`${s.name} http_req_failed: ${(100 * e.base).toFixed(2)}% -> ${(100 * e.new).toFixed(2)}%`);
  }
  return out;
}

/**
 * Compare NEW (`next`) against BASE: every scenario in both runs and `all`,
 * per latency trend in both P50/P95/P99 with 95 % intervals, and the error
 * rate, each with a verdict (rules in the module doc). Scenarios or trends in
 * one run only, another target or scenario are notes; another load, a partial
 * run or a saturated client are warnings; none is an error.
 * @param opts.maxRegression allowed rise as a fraction >= 0 (0.1 = 10 %).
 * @throws RangeError when maxRegression is not a finite number >= 0.
 * @throws InvalidInputError when a stored histogram (`hdr`) cannot be decoded (naming the run's label and field).
 */
export function compareResults(base: LoadTestResult, next: LoadTestResult, opts: CompareOptions): Comparison {
  if (!Number.isFinite(opts.maxRegression) || opts.maxRegression < 0)
    throw new RangeError(`maxRegression: must be a finite number >= 0, got ${opts.maxRegression}`);
  const o = { ...opts, labels: opts.labels ?? { base: 'base', new: 'new' } };
  const { warnings, notes } = differences(base, next);
  const scenarios: ScenarioComparison[] = [];
  for (const name of Object.keys(base.scenarios)) {
    const n = next.scenarios[name];
    if (n) scenarios.push(compareScenario(base.scenarios[name]!, n, o, notes));
    else notes.push(`scenario ${name} only in BASE (not compared)`);
  }
  for (const name of Object.keys(next.scenarios))
    if (!(name in base.scenarios)) notes.push(`scenario ${name} only in NEW (not compared)`);
  scenarios.push(compareScenario({ ...base.all, name: 'all' }, { ...next.all, name: 'all' }, o, notes));
  const regressions = regressionLines(scenarios);
  return {
    maxRegression: opts.maxRegression,
    regression: regressions.length > 0,
    regressions,
    base: summary(base),
    new: summary(next),
    warnings,
    notes,
    scenarios,
  };
}
