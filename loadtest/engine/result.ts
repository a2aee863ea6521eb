/**
 * From what the engine and the sampler measured to `result.json`
 * (result-schema.ts): steady-phase figures per scenario and overall, the
 * per-second series, the engine's view of itself (client saturation), the
 * pools' saturation, and the thresholds evaluated against all of it.
 */
import { availableParallelism } from 'node:os';
import { mergeEncoded, percentileMs, percentiles, type Histogram } from './histogram.js';
import { executorName, type RunConfig } from './config.js';
import { parseDurationMs } from './duration.js';
import type { MetricLookup, MetricValue } from './metric-types.js';
import { COUNTERS, TRENDS, type MetricData, type TrendName } from './metrics.js';
import type { EngineOutcome, SecondPoint } from './runner.js';
import { evaluateThresholds, type ThresholdSpec } from './thresholds.js';
import {
  RESULT_API_VERSION,
  RESULT_KIND,
  RESULT_SCHEMA_VERSION,
  type ApiWaits,
  type LoadTestResult,
  type Saturation,
  type ScenarioResult,
} from './result-schema.js';
import type { SampleResult } from '../sampler/sampler.js';
import { LIMIT_OF } from '../sampler/figures.js';

/**
 * Bounds past which the client, not the server, may be what was measured:
 * steady-phase schedule lag P99 (arrivals started late) and worker event-loop
 * delay P99, ms. Documented in docs/loadtest.md ("The engine watches itself").
 */
export const CLIENT_SATURATION_BOUNDS = { scheduleLagP99Ms: 50, loopLagP99Ms: 50 } as const;

/** The pools a run reports, by the sampler figure that measures them. */
export const POOLS: Record<string, string> = {
  pgbouncer_client: 'pgbouncer.cl_active',
  pgbouncer_server: 'pgbouncer.sv_active',
  postgres_backends: 'postgres.backends',
  redis_clients: 'redis.connected_clients',
  llm_slots: 'health.processing_count',
  app_db_pool: 'health.db_pool_in_use',
  async_consumers: 'health.queue_in_flight',
  host_cpu: 'host.cpu_busy',
};

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function scenarioResult(
  name: string,
  kind: string,
  d: MetricData,
  totals: MetricData['counters'],
  steadySeconds: number,
): ScenarioResult {
  const metrics: ScenarioResult['metrics'] = {};
  for (const [t, enc] of Object.entries(d.trends) as [TrendName, string][])
    metrics[t] = { ...percentiles(mergeEncoded([enc])), hdr: enc };
  const c = d.counters;
  return {
    name,
    kind,
    metrics,
    counters: { ...c },
    rates: {
      http_reqs: round(steadySeconds > 0 ? c.http_reqs / steadySeconds : 0),
      iterations: round(steadySeconds > 0 ? c.iterations / steadySeconds : 0),
    },
    http_req_failed: c.http_reqs > 0 ? round(c.http_req_failed / c.http_reqs, 6) : 0,
    failures: { ...d.failures },
    totals: { ...totals },
  };
}

/**
 * Goodput per scenario with objectives (the share and rate of steady-phase
 * iterations that succeeded within every objective), and over those scenarios in `all`.
 */
function addGoodput(c: RunConfig, scenarios: Record<string, ScenarioResult>, all: ScenarioResult, steadyS: number) {
  let good = 0;
  let iterations = 0;
  for (const r of c.scenario.requests) {
    const s = scenarios[r.name];
    if (!s || !r.objectives || Object.keys(r.objectives).length === 0) continue;
    const objectives: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.objectives)) if (v !== undefined) objectives[k] = parseDurationMs(v)!;
    const g = s.counters.good_iterations ?? 0;
    const n = s.counters.iterations ?? 0;
    s.goodput = {
      objectives,
      good: g,
      share: n > 0 ? round(g / n, 6) : 0,
      ratePerSecond: round(g / steadyS),
    };
    good += g;
    iterations += n;
  }
  if (iterations > 0)
    all.goodput = { objectives: {}, good, share: round(good / iterations, 6), ratePerSecond: round(good / steadyS) };
}

/** A second is client-saturated when its schedule lag P99 or its worst worker event-loop delay P99 is over the bound. */
export function secondSaturated(p: SecondPoint): boolean {
  const lag = p.all.trends.schedule_lag?.p99 ?? 0;
  return lag > CLIENT_SATURATION_BOUNDS.scheduleLagP99Ms || p.loopLagP99Ms > CLIENT_SATURATION_BOUNDS.loopLagP99Ms;
}

/** Per pool, the figure that counts its waiters (a pool with waiters is full, whatever its reserve). */
export const WAITERS_OF: Record<string, string> = {
  pgbouncer_server: 'pgbouncer.cl_waiting',
  llm_slots: 'health.waiting_count',
  app_db_pool: 'health.db_pool_waiting',
};

/**
 * Pools of the machine, not of the deployment: reported (series, peak, thresholds) but left out of
 * saturatesFirst, which names what the deployment's settings size. On a shared machine (parallel tests,
 * the local stack beside the engine) the cores can be full whatever the pools do; `arena bench` shows
 * them beside the queues instead.
 */
export const MACHINE_POOLS: ReadonlySet<string> = new Set(['host_cpu']);

/** A tick is saturated at this utilisation, or at SATURATED_WITH_WAITERS when the pool has waiters. */
export const SATURATED = 0.95;
export const SATURATED_WITH_WAITERS = 0.75;

/**
 * The pool that saturates first (MACHINE_POOLS left out): of the pools with a saturated tick (utilisation
 * >= SATURATED, or >= SATURATED_WITH_WAITERS while requests wait for it), the
 * one whose first saturated tick came earliest (ties: the higher peak); when no
 * pool saturated, the one with the highest peak utilisation. `atMs` = the first
 * saturated tick (ms since the engine's start), null when none saturated.
 */
function firstSaturated(pools: Saturation['pools'], series: Saturation['series']): Saturation['saturatesFirst'] {
  let first: Saturation['saturatesFirst'] = null;
  const rank = (f: NonNullable<Saturation['saturatesFirst']>) => [f.atMs ?? Infinity, -f.peakUtilization];
  for (const [pool, p] of Object.entries(pools)) {
    if (p.peakUtilization === null || !p.limit || MACHINE_POOLS.has(pool)) continue;
    const waiters = new Map((series[WAITERS_OF[pool] ?? ''] ?? []).map(([t, v]) => [t, v ?? 0]));
    const hit = (series[p.figure] ?? []).find(([t, v]) => {
      if (v === null) return false;
      const u = v / p.limit!;
      return u >= SATURATED || (u >= SATURATED_WITH_WAITERS && (waiters.get(t) ?? 0) > 0);
    });
    const cand = { pool, figure: p.figure, peakUtilization: p.peakUtilization, atMs: hit ? hit[0] : null };
    const [a0, a1] = rank(cand);
    const [b0, b1] = first ? rank(first) : [Infinity, Infinity];
    if (!first || a0! < b0! || (a0 === b0 && a1! < b1!)) first = cand;
  }
  return first;
}

/** The sampler's result on the engine's clock, with the pools named. */
export function saturationOf(s: SampleResult, offsetMs: number): Saturation {
  const series: Saturation['series'] = {};
  for (const [f, pts] of Object.entries(s.series)) series[f] = pts.map(([t, v]) => [Math.round(t + offsetMs), v]);
  const pools: Saturation['pools'] = {};
  for (const [pool, figure] of Object.entries(POOLS)) {
    const sum = s.summary[figure];
    if (sum) pools[pool] = { figure, limitOf: LIMIT_OF[figure] ?? '', ...sum };
  }
  const first = firstSaturated(pools, series);
  const targets: Saturation['targets'] = {};
  for (const [k, t] of Object.entries(s.targets))
    if (t) targets[k] = { url: t.url, ok: t.ok, failed: t.failed, errors: t.errors.slice(0, 20) };
  return {
    intervalMs: s.intervalMs,
    offsetMs: Math.round(offsetMs),
    ticks: s.ticks,
    targets,
    series,
    summary: s.summary,
    pools,
    saturatesFirst: first,
    cost: s.cost,
  };
}

/** Inputs of `buildResult` besides the engine's outcome. */
export interface ResultInputs {
  config: RunConfig;
  /** The target as printed (password redacted). */
  target: string;
  thresholds: ThresholdSpec[];
  sampler?: { result: SampleResult; offsetMs: number };
  /** The API's steady-phase waits (two /metrics scrapes). */
  apiWaits?: ApiWaits;
  fromPlan?: LoadTestResult['settings']['fromPlan'];
  partialReason?: string;
  version: string;
  openFilesSoftLimit: number | null;
}

/**
 * Build `result.json` from the engine's outcome and evaluate the thresholds on it.
 * Steady seconds = the steady phase's length (or the time it ran, when stopped early).
 */
export function buildResult(out: EngineOutcome, i: ResultInputs): LoadTestResult {
  const c = i.config;
  const steadySeconds = Math.max(
    0.001,
    Math.min(c.phases.steadyMs, Math.max(0, out.endAt - out.startAt - c.phases.rampUpMs)) / 1000,
  );
  const scenarios: Record<string, ScenarioResult> = {};
  const allTotals = Object.fromEntries(COUNTERS.map((k) => [k, 0])) as MetricData['counters'];
  for (const r of c.scenario.requests) {
    scenarios[r.name] = scenarioResult(r.name, r.kind, out.steady[r.name]!, out.totals[r.name]!, steadySeconds);
    for (const k of COUNTERS) allTotals[k] += out.totals[r.name]![k];
  }
  const all = scenarioResult('all', 'all', out.steadyAll, allTotals, steadySeconds);
  addGoodput(c, scenarios, all, steadySeconds);
  const series = out.seconds.map((p) => ({ ...p, clientSaturated: secondSaturated(p) }));
  const scheduleLagP99 = all.metrics['schedule_lag']?.p99 ?? 0;
  const reasons: string[] = [];
  if (scheduleLagP99 > CLIENT_SATURATION_BOUNDS.scheduleLagP99Ms)
    reasons.push(
      `schedule lag P99 ${scheduleLagP99} ms > ${CLIENT_SATURATION_BOUNDS.scheduleLagP99Ms} ms: arrivals started late`,
    );
  if (out.loopLagP99Ms > CLIENT_SATURATION_BOUNDS.loopLagP99Ms)
    reasons.push(
      `event-loop delay P99 ${out.loopLagP99Ms} ms > ${CLIENT_SATURATION_BOUNDS.loopLagP99Ms} ms: the engine's threads were busy`,
    );
  const saturation = i.sampler ? saturationOf(i.sampler.result, i.sampler.offsetMs) : undefined;
  const result: LoadTestResult = {
    apiVersion: RESULT_API_VERSION,
    kind: RESULT_KIND,
    schemaVersion: RESULT_SCHEMA_VERSION,
    status: out.stoppedEarly ? 'partial' : 'complete',
    ...(out.stoppedEarly ? { partialReason: i.partialReason ?? 'stopped before the schedule ended' } : {}),
    passed: true,
    startedAt: new Date(out.startAt).toISOString(),
    endedAt: new Date(out.endAt).toISOString(),
    settings: settingsOf(i),
    scenarios,
    all,
    series,
    engine: {
      cpuSeconds: out.cpuSeconds,
      peakRssBytes: out.peakRssBytes,
      loopLagP99Ms: out.loopLagP99Ms,
      loopLagMaxMs: out.loopLagMaxMs,
      scheduleLagP99Ms: scheduleLagP99,
      peakInFlight: Math.max(0, ...out.seconds.map((p) => p.maxInFlight)),
      clientSaturated: reasons.length > 0,
      clientSaturatedReasons: reasons,
      bounds: { ...CLIENT_SATURATION_BOUNDS },
    },
    ...(saturation ? { saturation } : {}),
    ...(i.apiWaits ? { apiWaits: i.apiWaits } : {}),
    thresholds: [],
  };
  applyThresholds(result, i.thresholds);
  return result;
}

/** Evaluate `thresholds` on `result` and record the outcomes and `passed` in it. */
export function applyThresholds(result: LoadTestResult, thresholds: ThresholdSpec[]): void {
  const outcomes = evaluateThresholds(thresholds, lookupIn(result));
  result.thresholds = outcomes.map((o) => ({
    selector: o.selector,
    expression: o.expression,
    status: o.status,
    value: o.value,
    message: o.message,
  }));
  result.passed = outcomes.every((o) => o.status === 'pass');
}

/** The run's settings as result.json records them. */
function settingsOf(i: ResultInputs): LoadTestResult['settings'] {
  const c = i.config;
  const model = c.model;
  return {
    target: i.target,
    scenario: {
      name: c.scenario.name,
      source: c.scenario.source,
      requests: c.scenario.requests.map((r) => ({
        name: r.name,
        kind: r.kind,
        method: r.method,
        path: r.path,
        weight: r.weight,
      })),
    },
    executor: executorName(c),
    model:
      model.type === 'open'
        ? { type: 'open', rate: model.rate, arrivalProcess: model.process, maxVUs: model.maxVUs }
        : { type: 'closed', vus: model.vus, thinkTimeMs: model.thinkTimeMs },
    phases: { ...c.phases },
    gracefulStopMs: c.gracefulStopMs,
    seed: c.seed,
    workers: c.workers,
    ...(i.fromPlan ? { fromPlan: i.fromPlan } : {}),
    thresholds: groupThresholds(i.thresholds),
    ...(c.shard ? { shard: { ...c.shard, ...(c.startAt !== undefined ? { startAt: c.startAt } : {}) } } : {}),
    engine: {
      version: i.version,
      node: process.version,
      cores: availableParallelism(),
      openFilesSoftLimit: i.openFilesSoftLimit,
    },
  };
}

function groupThresholds(specs: readonly ThresholdSpec[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of specs) (out[s.selector] ??= []).push(s.expression);
  return out;
}

function trendValue(t: { count: number; min: number; mean: number; max: number; hdr: string }): MetricValue {
  let h: Histogram | undefined;
  return {
    type: 'trend',
    count: t.count,
    min: t.min,
    mean: t.mean,
    max: t.max,
    percentile: (p: number) => percentileMs((h ??= mergeEncoded([t.hdr])), p),
  };
}

function gaugeOf(values: readonly number[]): MetricValue | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    type: 'gauge',
    value: values[values.length - 1]!,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    percentile: (p: number) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!,
  };
}

/**
 * How thresholds read a result. Metrics: every trend (`http_req_duration`,
 * `ttft`, ..., with `{expected_response:true}` for the expected-status
 * variant), `http_req_failed` (rate), the counters (count and rate per second
 * of the steady phase), `saturation{pool:P}` (gauge of utilisation 0..1 over
 * the sampler ticks), `in_flight` and `event_loop_lag` (gauges over the steady
 * seconds), `client_saturated` (rate: share of steady seconds over the bound).
 * Tags: `scenario` (a request name; absent = the whole run), `pool`.
 */
export function lookupIn(r: LoadTestResult): MetricLookup {
  const steadySeconds = r.series.filter((p) => p.phase === 'steady');
  const seconds = Math.max(0.001, Math.min(r.settings.phases.steadyMs, steadySeconds.length * 1000) / 1000);
  return (metric, tags) => {
    const keys = Object.keys(tags).filter((k) => !(k === 'expected_response' && tags[k] === 'true'));
    const only = (...names: string[]) => keys.every((k) => names.includes(k));
    if (metric === 'saturation') return only('pool') ? saturationValue(r, tags['pool']) : undefined;
    const engine = engineValue(metric, steadySeconds);
    if (engine !== null) return only() ? engine : undefined;
    if (!only('scenario')) return undefined;
    const s = tags['scenario'] !== undefined ? r.scenarios[tags['scenario']] : r.all;
    return s ? scenarioValue(s, metric, tags['expected_response'] === 'true', seconds) : undefined;
  };
}

/** `saturation{pool:P}`: the pool's utilisation at each sampler tick, as a gauge. */
function saturationValue(r: LoadTestResult, pool: string | undefined): MetricValue | undefined {
  if (!pool || !r.saturation) return undefined;
  const figure = POOLS[pool];
  const limit = figure ? r.saturation.summary[figure]?.limit : undefined;
  if (!figure || !limit) return undefined;
  return gaugeOf((r.saturation.series[figure] ?? []).flatMap(([, v]) => (v === null ? [] : [v / limit])));
}

/** The engine's own metrics over the steady seconds (null: not one of them). */
function engineValue(metric: string, steady: LoadTestResult['series']): MetricValue | undefined | null {
  switch (metric) {
    case 'in_flight':
      return gaugeOf(steady.map((p) => p.maxInFlight));
    case 'event_loop_lag':
      return gaugeOf(steady.map((p) => p.loopLagP99Ms));
    case 'client_saturated': {
      const trues = steady.filter((p) => p.clientSaturated).length;
      return { type: 'rate', rate: steady.length ? trues / steady.length : 0, trues, total: steady.length };
    }
    default:
      return null;
  }
}

/** A scenario's (or the whole run's) trend, rate or counter. */
function scenarioValue(
  s: ScenarioResult,
  metric: string,
  expectedOnly: boolean,
  seconds: number,
): MetricValue | undefined {
  if ((TRENDS as readonly string[]).includes(metric)) {
    const t = s.metrics[metric === 'http_req_duration' && expectedOnly ? 'http_req_duration_expected' : metric];
    return t ? trendValue(t) : { type: 'trend', count: 0, min: 0, mean: 0, max: 0, percentile: () => 0 };
  }
  if (metric === 'http_req_failed')
    return {
      type: 'rate',
      rate: s.http_req_failed,
      trues: s.counters['http_req_failed'] ?? 0,
      total: s.counters['http_reqs'] ?? 0,
    };
  if ((COUNTERS as readonly string[]).includes(metric)) {
    const count = s.counters[metric] ?? 0;
    return { type: 'counter', count, ratePerSecond: count / seconds };
  }
  return undefined;
}
