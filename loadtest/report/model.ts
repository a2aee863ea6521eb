/**
 * Predicted vs measured: the planner's queues (operator/planner/queues.ts) at
 * the load a run actually offered, on the topology that ran, against what the
 * sampler, the API's /metrics and the engine measured in the steady phase.
 * Pure (no I/O): `run` builds the inputs, `result.json` carries the outcome
 * (`model`), the terminal, HTML and JUnit reports print it.
 *
 * Measured, per queue (steady phase only):
 * - utilisation = mean over the sampler's ticks of the busy servers / servers:
 *   appDbPool health.db_pool_in_use (total - idle) / (workers x (poolSize + maxOverflow)),
 *   pgbouncerServerPool pgbouncer.sv_active / (PgBouncers x default_pool_size) (the reserve pool can push it over 1),
 *   llmSlots health.processing_count / (workers x llmSlotsPerWorker),
 *   asyncConsumers health.queue_in_flight / consumers,
 *   llmRateLimit = LLM calls per second / (requestsPerMinute / 60),
 *   apiEventLoop = the HTTP workers' CPU seconds per second (arena_http_worker_cpu_seconds_total) / workers;
 * - wait: appDbPool, llmSlots, llmRateLimit from the API's wait histograms
 *   (mean = sum / count; P99 bucket-interpolated); pgbouncerServerPool the mean
 *   wait per transaction = delta of SHOW STATS total_wait_time / delta of
 *   total_xact_count over the steady phase (not avg_wait_time, a trailing
 *   average over stats_period), with the largest maxwait as its worst case;
 *   asyncConsumers the engine's task_queue_wait (created -> started); apiEventLoop
 *   the API's arena_event_loop_delay_seconds (how late a 20 ms timer runs).
 *
 * Tolerance (docs/loadtest.md, "Predicted vs measured"): utilisation agrees
 * within 10 points; a wait agrees when both are under 5 ms (timer and
 * sampling noise on one machine) or they are within a factor of 2 (Erlang C
 * with the Allen-Cunneen correction is an approximation; a factor of 2 is the
 * spread the issue-12 spot check found between cv assumptions). A queue the
 * model calls unstable agrees when its measured utilisation is >= 90 %.
 */
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { queueModels, queuePlanOf, type Topology } from '../../operator/planner/queues.js';
import { workloadAtRates } from '../../operator/planner/workload.js';
import type { BudgetComparison, LoadTestResult, ModelComparison, QueueComparison } from '../engine/result-schema.js';
import type { StackState } from '../stack/state.js';

/** The tolerance of a comparison (see the file's docstring). */
export const TOLERANCE = { utilizationPoints: 0.1, waitRatio: 2, waitFloorMs: 5 } as const;

/** What the comparison needs besides the result. */
export interface ModelInputs {
  file: string;
  /** The ArenaDeployment (validated, defaults applied). */
  ad: ArenaDeployment;
  /** The local stack that ran (else the plan's topology at maxReplicas is assumed). */
  stack?: StackState['profile'];
  /** The plan's maxReplicas and default_pool_size, used when there is no stack. */
  plan: { maxReplicas: number; defaultPoolSize: number };
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** The steady-phase points of a series ([ms since the engine start, value]) with a value. */
function steadyPoints(result: LoadTestResult, figure: string): [number, number][] {
  const s = result.saturation?.series[figure];
  if (!s) return [];
  const from = result.settings.phases.rampUpMs;
  const to = from + result.settings.phases.steadyMs;
  return s.filter((p): p is [number, number] => p[1] !== null && p[0] >= from && p[0] <= to);
}

/** Mean over the steady phase of f(tick values) for ticks where every figure has a value; null without any. */
export function steadyMean(result: LoadTestResult, figures: string[], f: (v: number[]) => number): number | null {
  const cols = figures.map((fig) => new Map(steadyPoints(result, fig)));
  const first = cols[0];
  if (!first) return null;
  const vals: number[] = [];
  for (const [t, v] of first) {
    const rest = cols.slice(1).map((c) => c.get(t));
    if (rest.every((x) => x !== undefined)) vals.push(f([v, ...(rest as number[])]));
  }
  return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
}

/** Mean PgBouncer wait per transaction over the steady phase: delta total_wait_time (us) / delta total_xact_count, ms. */
function pgbouncerWaitPerXact(result: LoadTestResult): number | null {
  const wait = steadyPoints(result, 'pgbouncer.total_wait_time_us');
  const xact = new Map(steadyPoints(result, 'pgbouncer.total_xact_count'));
  const both = wait.filter(([t]) => xact.has(t));
  if (both.length < 2) return null;
  const [t0, w0] = both[0]!;
  const [t1, w1] = both[both.length - 1]!;
  const dx = xact.get(t1)! - xact.get(t0)!;
  return dx > 0 ? r3((w1 - w0) / dx / 1000) : null;
}

/**
 * The arrival rate per request kind the target saw: steady-phase iterations
 * started, per second. Dropped iterations (no free VU under --max-vus) never
 * reach the target, so they are not arrivals of its queues.
 */
export function offeredRates(result: LoadTestResult, kinds: readonly string[]): Record<string, number> {
  const rates: Record<string, number> = {};
  for (const k of kinds) {
    const s = result.scenarios[k];
    if (s) rates[k] = s.rates.iterations;
  }
  return rates;
}

/** The topology that ran: the local stack's (one pod) or the plan's at maxReplicas. */
export function topologyOf(i: ModelInputs): Topology & { source: string } {
  const api = i.ad.spec.api;
  if (i.stack)
    return {
      source: 'local stack (state.json)',
      workers: i.stack.webConcurrency,
      pgbouncers: i.stack.pgbouncer.enabled ? 1 : 0,
      pgbouncerDefaultPoolSize: i.stack.pgbouncer.defaultPoolSize,
      consumers: i.stack.asyncConcurrency,
    };
  return {
    source: 'plan (maxReplicas)',
    workers: i.plan.maxReplicas * api.workersPerPod,
    pgbouncers: i.ad.spec.pgbouncer.replicas,
    pgbouncerDefaultPoolSize: i.plan.defaultPoolSize,
    consumers: i.plan.maxReplicas * api.asyncConcurrencyPerPod,
  };
}

type Measured = QueueComparison['measured'];

/** What a measured-figures function gets: the result, the queue's servers, the provider's RPM. */
interface MeasureContext {
  result: LoadTestResult;
  /** Busy servers -> utilisation (null stays null). */
  util: (busy: number | null) => number | null;
  rpm: number | undefined;
}

/** The API's steady-phase wait of a queue from its histograms (mean, P99), nulls when not scraped. */
function apiWait(r: LoadTestResult, q: 'appDbPool' | 'llmSlots' | 'llmRateLimit') {
  const w = r.apiWaits?.queues[q];
  return { meanWaitMs: w?.meanMs ?? null, p99WaitMs: w?.p99Ms ?? null };
}

/** How each queue is measured (see the file's docstring). */
const MEASURE: Record<string, (c: MeasureContext) => Measured> = {
  appDbPool: ({ result, util }) => ({
    utilization: util(steadyMean(result, ['health.db_pool_in_use'], ([v]) => v!)),
    ...apiWait(result, 'appDbPool'),
    source: 'sampler health.db_pool_in_use (total - idle); API arena_db_pool_wait_seconds',
  }),
  pgbouncerServerPool: ({ result, util }) => {
    const maxwait = steadyPoints(result, 'pgbouncer.maxwait_ms').map((p) => p[1]);
    return {
      utilization: util(steadyMean(result, ['pgbouncer.sv_active'], ([v]) => v!)),
      meanWaitMs: pgbouncerWaitPerXact(result),
      p99WaitMs: null,
      maxWaitMs: maxwait.length ? Math.max(...maxwait) : null,
      source: 'sampler pgbouncer.sv_active; SHOW STATS delta total_wait_time / delta total_xact_count; maxwait',
    };
  },
  llmSlots: ({ result, util }) => ({
    utilization: util(steadyMean(result, ['health.processing_count'], ([v]) => v!)),
    ...apiWait(result, 'llmSlots'),
    source: 'sampler health.processing_count; API arena_llm_slot_wait_seconds',
  }),
  asyncConsumers: ({ result, util }) => {
    const q = result.all.metrics['task_queue_wait'];
    return {
      utilization: util(steadyMean(result, ['health.queue_in_flight'], ([v]) => v!)),
      meanWaitMs: q ? q.mean : null,
      p99WaitMs: q ? q.p99 : null,
      source: 'sampler health.queue_in_flight; engine task_queue_wait',
    };
  },
  llmRateLimit: ({ result, rpm }) => {
    const calls = result.apiWaits?.llmCalls ?? null;
    const steadyS = result.settings.phases.steadyMs / 1000;
    return {
      utilization: calls !== null && rpm && steadyS > 0 ? r3(calls / steadyS / (rpm / 60)) : null,
      ...apiWait(result, 'llmRateLimit'),
      source: 'API arena_llm_calls_total and arena_llm_permit_wait_seconds',
    };
  },
  apiEventLoop: ({ result, util }) => {
    const w = result.apiWaits;
    const seconds = w ? (w.toMs - w.fromMs) / 1000 : 0;
    const cpu = w?.httpWorkerCpuSeconds;
    return {
      utilization: cpu !== undefined && seconds > 0 ? util(cpu / seconds) : null,
      meanWaitMs: w?.eventLoopDelay?.meanMs ?? null,
      p99WaitMs: w?.eventLoopDelay?.p99Ms ?? null,
      source: 'API arena_http_worker_cpu_seconds_total (busy workers = CPU s / s); arena_event_loop_delay_seconds',
    };
  },
};

/** The measured figures of one queue; nulls where the run did not measure them. */
function measuredOf(name: string, servers: number, result: LoadTestResult, rpm: number | undefined): Measured {
  const util = (v: number | null) => (v === null || servers <= 0 ? null : r3(v / servers));
  const f = MEASURE[name];
  return f
    ? f({ result, util, rpm })
    : { utilization: null, meanWaitMs: null, p99WaitMs: null, source: 'not measured by arena' };
}

/** Whether two waits agree within the tolerance. */
function waitsAgree(predicted: number, measured: number): boolean {
  if (predicted <= TOLERANCE.waitFloorMs && measured <= TOLERANCE.waitFloorMs) return true;
  const lo = Math.max(predicted, 0.001);
  const ratio = Math.max(measured, 0.001) / lo;
  return ratio <= TOLERANCE.waitRatio && ratio >= 1 / TOLERANCE.waitRatio;
}

const pct = (x: number) => `${Math.round(100 * x)}%`;

/** The verdict on one queue and the lines that say what differs. */
function judge(p: QueueComparison['predicted'], m: Measured): Pick<QueueComparison, 'verdict' | 'differences'> {
  const differences: string[] = [];
  let compared = 0;
  if (m.utilization !== null) {
    compared++;
    if (!p.stable) {
      if (m.utilization < 0.9)
        differences.push(`predicted unstable (utilisation ${pct(p.utilization ?? 1)}), measured ${pct(m.utilization)}`);
    } else if (Math.abs(m.utilization - p.utilization!) > TOLERANCE.utilizationPoints)
      differences.push(`utilisation predicted ${pct(p.utilization!)}, measured ${pct(m.utilization)}`);
  }
  const pairs: [string, number | null, number | null][] = [
    ['mean wait', p.meanWaitMs, m.meanWaitMs],
    ['P99 wait', p.p99WaitMs, m.p99WaitMs],
  ];
  for (const [what, pv, mv] of pairs) {
    if (mv === null || pv === null) continue;
    compared++;
    if (!waitsAgree(pv, mv)) differences.push(`${what} predicted ${pv} ms, measured ${mv} ms`);
  }
  return { verdict: compared === 0 ? 'not measured' : differences.length ? 'differs' : 'agrees', differences };
}

/** Connection budgets of the topology that ran: the most its settings open vs the peak the sampler saw. */
function budgets(i: ModelInputs, t: Topology, result: LoadTestResult): BudgetComparison[] {
  const api = i.ad.spec.api;
  const peak = (figure: string) => result.saturation?.summary[figure]?.peak ?? null;
  const limit = (figure: string) => result.saturation?.summary[figure]?.limit ?? null;
  const perWorkerDb = api.db.poolSize + api.db.maxOverflow;
  const pgb = i.ad.spec.pgbouncer;
  const reserve = i.stack?.pgbouncer.reservePoolSize ?? pgb.reservePoolSize ?? 0;
  const pairs = i.stack?.pgbouncer.databaseUserPairs ?? pgb.databaseUserPairs;
  const out: [string, number, string][] = [
    ['app -> PgBouncer (client connections)', t.workers * perWorkerDb, 'pgbouncer.cl_active'],
    [
      'PgBouncer -> PostgreSQL (server connections)',
      t.pgbouncers * (t.pgbouncerDefaultPoolSize + reserve) * pairs,
      'postgres.backends',
    ],
    // the HTTP workers' pools plus the queue worker's (at least 2 connections) and the sampler's own client
    [
      'Redis clients',
      t.workers * api.redis.maxConnections + Math.max(2, api.redis.maxConnections) + 1,
      'redis.connected_clients',
    ],
  ];
  return out.map(([name, predicted, figure]) => {
    const m = peak(figure);
    return {
      name,
      predicted,
      limit: limit(figure),
      measuredPeak: m,
      figure,
      within: m === null ? null : m <= predicted,
    };
  });
}

/**
 * Compare the planner's queues at the run's offered load with what was measured.
 * @returns null when the run offered none of the file's request kinds (nothing to predict).
 */
export function modelComparison(result: LoadTestResult, i: ModelInputs): ModelComparison | null {
  const mix = i.ad.spec.load.requestMix;
  const rates = offeredRates(
    result,
    mix.map((k) => k.name),
  );
  if (Object.values(rates).every((r) => r <= 0)) return null;
  const t = topologyOf(i);
  const workload = workloadAtRates(rates, mix);
  const queues: Record<string, QueueComparison> = {};
  for (const q of queueModels(i.ad.spec, workload, t)) {
    const p = queuePlanOf(q);
    const predicted = {
      utilization: p.utilization,
      meanWaitMs: p.meanWaitMs,
      p99WaitMs: p.p99WaitMs,
      pWait: p.pWait,
      stable: p.stable,
    };
    const measured = measuredOf(q.name, p.servers, result, i.ad.spec.llm.requestsPerMinute);
    queues[q.name] = {
      servers: p.servers,
      partitions: p.partitions,
      arrivalRatePerSecond: p.arrivalRatePerSecond,
      serviceTimeMs: p.serviceTimeMs,
      serviceCv2: p.serviceCv2,
      predicted,
      measured,
      ...judge(predicted, measured),
    };
  }
  const highest = (f: (q: QueueComparison) => number | null) => {
    let best: [string, number] | null = null;
    for (const [n, q] of Object.entries(queues)) {
      const v = f(q);
      if (v !== null && (!best || v > best[1])) best = [n, v];
    }
    return best ? best[0] : null;
  };
  return {
    file: i.file,
    name: i.ad.metadata.name,
    topology: {
      source: t.source,
      workers: t.workers,
      pgbouncers: t.pgbouncers,
      pgbouncerDefaultPoolSize: t.pgbouncerDefaultPoolSize,
      consumers: t.consumers,
    },
    offeredRates: rates,
    queues,
    budgets: budgets(i, t, result),
    saturatesFirst: {
      predicted: highest((q) => q.predicted.utilization),
      measured: highest((q) => q.measured.utilization),
    },
    tolerance: { ...TOLERANCE },
  };
}
