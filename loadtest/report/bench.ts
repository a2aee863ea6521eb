/**
 * The capacity bench (`arena bench`): one load test per concurrency level
 * against the local stack of an ArenaDeployment, summarised into one
 * `bench.json` (schema below) with the scaling curve: P99 per request kind
 * and every pool's utilisation against concurrency, measured at each level,
 * and the planner's predicted utilisation as lines (the same queue models
 * as `result.model`, operator/planner/queues.ts, at the rates Little's law
 * gives for each concurrency).
 * Pure: the CLI runs the levels and writes the files.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { queueModels, queuePlanOf, type Topology } from '../../operator/planner/queues.js';
import { workloadAt } from '../../operator/planner/workload.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { lineThrough } from './calibrate.js';
import { steadyMean } from './model.js';

const Num = Type.Number();
const NumOrNull = Type.Union([Num, Type.Null()]);

export const BenchLevelSchema = Type.Object({
  concurrency: Type.Integer({ description: "The level: in-flight requests the offered rate gives by Little's law." }),
  beyond: Type.Boolean({ description: "A level past the plan's target (the model predicts which queue gives way)." }),
  ratePerSecond: Type.Number({ description: 'Arrivals offered per second (all kinds).' }),
  dir: Type.String({
    description: "The level's run folder (result.json, report.html, junit.xml), relative to the bench folder.",
  }),
  status: Type.String(),
  exitCode: Type.Integer(),
  peakInFlight: Type.Integer(),
  steadyInFlightMean: Num,
  kinds: Type.Record(
    Type.String(),
    Type.Object({
      reqs: Type.Integer(),
      p50: NumOrNull,
      p95: NumOrNull,
      p99: NumOrNull,
      ttftP99: NumOrNull,
      errorRate: Num,
      dropped: Type.Integer(),
    }),
  ),
  errorRate: Num,
  dropped: Type.Integer(),
  pools: Type.Record(
    Type.String(),
    Type.Object({
      limit: NumOrNull,
      peak: NumOrNull,
      p95: NumOrNull,
      peakUtilization: NumOrNull,
      p95Utilization: NumOrNull,
    }),
  ),
  saturatesFirst: Type.Object({
    measuredPool: Type.Union([Type.String(), Type.Null()]),
    predictedQueue: Type.Union([Type.String(), Type.Null()]),
    measuredQueue: Type.Union([Type.String(), Type.Null()]),
  }),
  queues: Type.Record(
    Type.String(),
    Type.Object({
      predictedUtilization: NumOrNull,
      measuredUtilization: NumOrNull,
      predictedStable: Type.Boolean(),
      predictedP99WaitMs: NumOrNull,
      measuredP99WaitMs: NumOrNull,
      verdict: Type.String(),
    }),
  ),
  apiEventLoopDelay: Type.Optional(
    Type.Object(
      { p50Ms: NumOrNull, p99Ms: NumOrNull },
      {
        description:
          "The API HTTP workers' event-loop delay over the steady phase, ms (arena_event_loop_delay_seconds): what a DB reply waits before the worker handles it and releases its connection.",
      },
    ),
  ),
  engine: Type.Object({
    cpuSeconds: Num,
    peakRssMiB: Num,
    cpuSecondsPer1kInFlight: NumOrNull,
    rssMiBPer1kInFlight: NumOrNull,
    clientSaturated: Type.Boolean(),
  }),
  hostCpu: Type.Optional(
    Type.Object(
      {
        cores: Num,
        measuredBusyCores: NumOrNull,
        predictedBusyCores: NumOrNull,
      },
      {
        description:
          "This machine's busy cores in the steady phase (the sampler's host.cpu_busy, mean over its ticks) and the line through the two lowest levels' at this level's arrival rate (hostCpuPredictions).",
      },
    ),
  ),
  stackCpu: Type.Optional(
    Type.Object(
      {
        wallSeconds: Num,
        cpuSeconds: Type.Record(Type.String(), Num, {
          description: 'CPU seconds each stack component (its process tree) used during the level, s.',
        }),
      },
      { description: 'Where the cores went during the level (the whole `loadtest run`: start, ramp, steady, drain).' },
    ),
  ),
});

export const BenchResultSchema = Type.Object(
  {
    apiVersion: Type.Literal('arena.dev/v1alpha1'),
    kind: Type.Literal('BenchResult'),
    schemaVersion: Type.Literal(1),
    file: Type.String(),
    name: Type.String(),
    startedAt: Type.String(),
    endedAt: Type.String(),
    machine: Type.Object({
      cores: Type.Integer(),
      node: Type.String(),
      openFilesSoftLimit: Type.Union([Type.Integer(), Type.Null()]),
    }),
    settings: Type.Object({
      levels: Type.Array(Type.Integer()),
      steadyMs: Num,
      rampMs: Num,
      apiEnv: Type.Array(Type.String()),
      seed: Type.Integer(),
    }),
    targetConcurrency: Type.Integer(),
    topology: Type.Object({
      workers: Type.Integer(),
      pgbouncers: Type.Integer(),
      pgbouncerDefaultPoolSize: Type.Integer(),
      consumers: Type.Integer(),
    }),
    levels: Type.Array(BenchLevelSchema),
    findMax: Type.Optional(
      Type.Object(
        {
          slo: Type.Record(Type.String(), Type.Array(Type.String()), {
            description: 'The thresholds every step must pass.',
          }),
          steps: Type.Array(
            Type.Object({ concurrency: Type.Integer(), passed: Type.Boolean(), failed: Type.Array(Type.String()) }),
          ),
          maxConcurrency: Type.Union([Type.Integer(), Type.Null()], {
            description: 'The highest level that held the SLO (null: not even the first).',
          }),
          upperBound: Type.Union([Type.Integer(), Type.Null()], {
            description: 'The lowest level that failed it (null: none failed up to --max).',
          }),
          predicted: Type.Object({
            limitConcurrency: Type.Union([Type.Number(), Type.Null()], {
              description: 'Where the first modelled queue reaches utilisation 1 (null: none up to 100x the target).',
            }),
            queue: Type.Union([Type.String(), Type.Null()]),
          }),
        },
        { description: '--find-max: the capacity search and what the plan predicts as its limit.' },
      ),
    ),
    curve: Type.Object(
      {
        concurrency: Type.Array(Num),
        utilization: Type.Record(Type.String(), Type.Array(NumOrNull)),
      },
      { description: "Predicted utilisation per queue at evenly spaced concurrencies (the plan's lines)." },
    ),
  },
  {
    $id: 'https://arena.dev/schemas/bench-result.schema.json',
    title: 'arena BenchResult (arena bench --out DIR: bench.json)',
  },
);

export type BenchLevel = Static<typeof BenchLevelSchema>;
export type BenchResult = Static<typeof BenchResultSchema>;

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** The arrivals per second that hold `concurrency` in flight by Little's law over the spec's request mix. */
export function rateForConcurrency(ad: ArenaDeployment, concurrency: number): number {
  return workloadAt(concurrency, ad.spec.load.requestMix).arrivalRatePerSecond;
}

/** Per request kind: requests, P50/P95/P99 (ms), TTFT P99, error rate, dropped iterations. */
function kindSummaries(r: LoadTestResult): BenchLevel['kinds'] {
  const kinds: BenchLevel['kinds'] = {};
  for (const [name, s] of Object.entries(r.scenarios)) {
    const d = s.metrics['http_req_duration'];
    kinds[name] = {
      reqs: s.counters.http_reqs ?? 0,
      p50: d?.p50 ?? null,
      p95: d?.p95 ?? null,
      p99: d?.p99 ?? null,
      ttftP99: s.metrics['ttft']?.p99 ?? null,
      errorRate: s.http_req_failed,
      dropped: s.counters.dropped_iterations ?? 0,
    };
  }
  return kinds;
}

/** One level's summary from its result.json. */
export function levelSummary(
  concurrency: number,
  beyond: boolean,
  rate: number,
  dir: string,
  exitCode: number,
  r: LoadTestResult,
): BenchLevel {
  const kinds = kindSummaries(r);
  const pools: BenchLevel['pools'] = {};
  for (const [name, p] of Object.entries(r.saturation?.pools ?? {}))
    pools[name] = {
      limit: p.limit,
      peak: p.peak,
      p95: p.p95,
      peakUtilization: p.peakUtilization,
      p95Utilization: p.p95Utilization,
    };
  const queues: BenchLevel['queues'] = {};
  for (const [name, q] of Object.entries(r.model?.queues ?? {}))
    queues[name] = {
      predictedUtilization: q.predicted.utilization,
      measuredUtilization: q.measured.utilization,
      predictedStable: q.predicted.stable,
      predictedP99WaitMs: q.predicted.p99WaitMs,
      measuredP99WaitMs: q.measured.p99WaitMs,
      verdict: q.verdict,
    };
  const steady = r.series.filter((p) => p.phase === 'steady');
  const inFlight = steady.length ? steady.reduce((a, p) => a + p.inFlight, 0) / steady.length : 0;
  const per1k = (x: number) => (inFlight > 0 ? r3((x / inFlight) * 1000) : null);
  const rssMiB = r.engine.peakRssBytes / 2 ** 20;
  return {
    concurrency,
    beyond,
    ratePerSecond: r3(rate),
    dir,
    status: r.status,
    exitCode,
    peakInFlight: r.engine.peakInFlight,
    steadyInFlightMean: Math.round(inFlight),
    kinds,
    errorRate: r.all.http_req_failed,
    dropped: r.all.counters.dropped_iterations ?? 0,
    pools,
    saturatesFirst: {
      measuredPool:
        r.saturation?.saturatesFirst && r.saturation.saturatesFirst.atMs !== null
          ? r.saturation.saturatesFirst.pool
          : null,
      predictedQueue: r.model?.saturatesFirst.predicted ?? null,
      measuredQueue: r.model?.saturatesFirst.measured ?? null,
    },
    queues,
    ...(r.apiWaits?.eventLoopDelay
      ? { apiEventLoopDelay: { p50Ms: r.apiWaits.eventLoopDelay.p50Ms, p99Ms: r.apiWaits.eventLoopDelay.p99Ms } }
      : {}),
    ...hostCpuOf(r),
    engine: {
      cpuSeconds: r.engine.cpuSeconds,
      peakRssMiB: Math.round(rssMiB),
      cpuSecondsPer1kInFlight: per1k(r.engine.cpuSeconds),
      rssMiBPer1kInFlight: per1k(rssMiB),
      clientSaturated: r.engine.clientSaturated,
    },
  };
}

/** The steady phase's mean busy cores (host.cpu_busy) and the cores, when the run sampled the host. */
function hostCpuOf(r: LoadTestResult): Pick<BenchLevel, 'hostCpu'> {
  const cores = r.saturation?.pools['host_cpu']?.limit;
  if (!cores || !r.saturation?.series['host.cpu_busy']) return {};
  const mean = steadyMean(r, ['host.cpu_busy'], ([v]) => v!);
  return { hostCpu: { cores, measuredBusyCores: mean === null ? null : r3(mean), predictedBusyCores: null } };
}

/**
 * The machine's CPU as a resource of the local stack (docs/capacity-model.md, "Known limits"): the straight
 * line busy cores = a + b x arrivals per second through the two lowest levels that measured it, evaluated at
 * every level's rate (`predictedBusyCores`, in place). The plan has no such term (a pod has its own cores);
 * on one machine the stack and the engine share them, and this says when they run out. Levels stay as
 * they are with fewer than two measured levels or equal rates.
 */
export function hostCpuPredictions(levels: BenchLevel[]): void {
  const measured = levels
    .filter((l) => !l.beyond && l.hostCpu?.measuredBusyCores !== null && l.hostCpu !== undefined)
    .sort((x, y) => x.ratePerSecond - y.ratePerSecond);
  const [lo, hi] = measured;
  if (!lo || !hi) return;
  const line = lineThrough(
    [lo.ratePerSecond, lo.hostCpu!.measuredBusyCores!],
    [hi.ratePerSecond, hi.hostCpu!.measuredBusyCores!],
  );
  if (!line) return;
  for (const l of levels)
    if (l.hostCpu) l.hostCpu.predictedBusyCores = r3(line.intercept + line.slope * l.ratePerSecond);
}

/**
 * The plan's lines: each queue's predicted utilisation at `points` evenly
 * spaced concurrencies from 0 to `max` on the topology that ran.
 */
export function predictedCurve(ad: ArenaDeployment, t: Topology, max: number, points = 40): BenchResult['curve'] {
  const concurrency: number[] = [];
  const utilization: Record<string, (number | null)[]> = {};
  for (let i = 1; i <= points; i++) {
    const c = (max * i) / points;
    concurrency.push(Math.round(c));
    const w = workloadAt(c, ad.spec.load.requestMix);
    const models = queueModels(ad.spec, w, t);
    for (const q of models)
      (utilization[q.name] ??= new Array<number | null>(i - 1).fill(null)).push(queuePlanOf(q).utilization);
    for (const arr of Object.values(utilization)) if (arr.length < i) arr.push(null);
  }
  return { concurrency, utilization };
}

const pctText = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
const msText = (x: number | null | undefined) =>
  x === null || x === undefined ? '-' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 2 : 0)} ms`;

/** The bench as text tables (no colour): per level latency and errors, then utilisation predicted vs measured. */
export function benchText(
  b: BenchResult,
  table: (head: string[]) => { push(row: string[]): void; toString(): string },
): string {
  const kinds = [...new Set(b.levels.flatMap((l) => Object.keys(l.kinds)))];
  const t1 = table([
    'in flight (level)',
    'req/s',
    'mean in flight',
    ...kinds.map((k) => `${k} P99`),
    'TTFT P99',
    'errors',
    'dropped',
    'saturates first (measured / predicted)',
    'API loop delay P50 / P99',
    'engine CPU s /1k',
    'engine MiB /1k',
  ]);
  for (const l of b.levels) {
    const ttft = Math.max(...Object.values(l.kinds).map((k) => k.ttftP99 ?? -1));
    t1.push([
      `${l.concurrency.toLocaleString('en-US')}${l.beyond ? ' (beyond)' : ''}`,
      l.ratePerSecond.toFixed(0),
      l.steadyInFlightMean.toLocaleString('en-US'),
      ...kinds.map((k) => msText(l.kinds[k]?.p99)),
      ttft >= 0 ? msText(ttft) : '-',
      `${(100 * l.errorRate).toFixed(2)}%`,
      String(l.dropped),
      `${l.saturatesFirst.measuredPool ?? 'none saturated'} / ${l.saturatesFirst.predictedQueue ?? '-'}`,
      l.apiEventLoopDelay ? `${msText(l.apiEventLoopDelay.p50Ms)} / ${msText(l.apiEventLoopDelay.p99Ms)}` : '-',
      l.engine.cpuSecondsPer1kInFlight?.toFixed(2) ?? '-',
      l.engine.rssMiBPer1kInFlight?.toFixed(1) ?? '-',
    ]);
  }
  const queues = [...new Set(b.levels.flatMap((l) => Object.keys(l.queues)))];
  const host = b.levels.some((l) => l.hostCpu);
  const t2 = table([
    'in flight (level)',
    ...queues.map((q) => `${q} pred. / meas.`),
    ...(host ? ['host CPU (line) / meas.'] : []),
  ]);
  for (const l of b.levels)
    t2.push([
      `${l.concurrency.toLocaleString('en-US')}${l.beyond ? ' (beyond)' : ''}`,
      ...queues.map((q) => {
        const x = l.queues[q];
        if (!x) return '-';
        const mark = x.verdict === 'differs' ? ' !' : '';
        return `${x.predictedStable ? pctText(x.predictedUtilization) : `${pctText(x.predictedUtilization)} unstable`} / ${pctText(x.measuredUtilization)}${mark}`;
      }),
      ...(host ? [hostText(l)] : []),
    ]);
  const fm = b.findMax;
  const search = fm
    ? [
        `Capacity search (SLO: ${Object.entries(fm.slo)
          .map(([k, v]) => `${k} ${v.join(', ')}`)
          .join(
            '; ',
          )}): ${fm.steps.map((x) => `${x.concurrency.toLocaleString('en-US')} ${x.passed ? 'held' : 'failed'}`).join(', ')}`,
        `  measured: the SLO held up to ${fm.maxConcurrency === null ? 'no level tried' : `${fm.maxConcurrency.toLocaleString('en-US')} in flight`}${fm.upperBound === null ? '' : ` (failed at ${fm.upperBound.toLocaleString('en-US')})`}`,
        `  predicted: ${fm.predicted.limitConcurrency === null ? 'no modelled queue becomes unstable below 100x the target' : `${fm.predicted.queue} becomes unstable at ${fm.predicted.limitConcurrency.toLocaleString('en-US')} in flight`}`,
      ]
    : [];
  const cpuLines = cpuText(b, table);
  return [
    `arena bench: ${b.name} (${b.file}), target ${b.targetConcurrency.toLocaleString('en-US')} in flight; ${b.machine.cores} cores, node ${b.machine.node}; steady ${b.settings.steadyMs / 1000} s per level after a ${b.settings.rampMs / 1000} s ramp`,
    'Latency per request kind (steady phase, from the scheduled start), errors, the first pool to saturate, and what the load engine cost per 1,000 in flight:',
    t1.toString(),
    'Utilisation per queue, predicted (the plan at the measured arrivals) / measured (! = the queue differs beyond the tolerance, in utilisation or in wait; bench.json says which); host CPU: the line through the two lowest levels / measured, of all cores:',
    t2.toString(),
    ...cpuLines,
    ...search,
  ].join('\n');
}

/** A level's host CPU cell: the line's busy share of the cores ("over" at or past all of them) / the measured. */
function hostText(l: BenchLevel): string {
  const h = l.hostCpu;
  if (!h) return '-';
  const p = h.predictedBusyCores === null ? null : h.predictedBusyCores / h.cores;
  const m = h.measuredBusyCores === null ? null : h.measuredBusyCores / h.cores;
  return `${p !== null && p >= 1 ? `${pctText(p)} over` : pctText(p)} / ${pctText(m)}`;
}

/** The table of where the CPU went per level (stack components and the engine), or no lines without figures. */
function cpuText(
  b: BenchResult,
  table: (head: string[]) => { push(row: string[]): void; toString(): string },
): string[] {
  const comps = [...new Set(b.levels.flatMap((l) => Object.keys(l.stackCpu?.cpuSeconds ?? {})))];
  const t3 = table([
    'in flight (level)',
    'wall s',
    ...comps.map((c) => `${c} CPU s`),
    'engine CPU s',
    'busy (of all cores)',
  ]);
  for (const l of b.levels) {
    if (!l.stackCpu) continue;
    const total = comps.reduce((a, c) => a + (l.stackCpu!.cpuSeconds[c] ?? 0), l.engine.cpuSeconds);
    t3.push([
      `${l.concurrency.toLocaleString('en-US')}${l.beyond ? ' (beyond)' : ''}`,
      l.stackCpu.wallSeconds.toFixed(0),
      ...comps.map((c) => l.stackCpu!.cpuSeconds[c]?.toFixed(1) ?? '-'),
      l.engine.cpuSeconds.toFixed(1),
      `${((100 * total) / (l.stackCpu.wallSeconds * b.machine.cores)).toFixed(0)}%`,
    ]);
  }
  return b.levels.some((l) => l.stackCpu)
    ? ['Where the CPU went during each level (process trees; the stack and the engine share the cores):', t3.toString()]
    : [];
}

/** The highest modelled utilisation at `concurrency` on topology `t`, and its queue. */
function worstQueue(
  ad: ArenaDeployment,
  t: Topology,
  concurrency: number,
): { queue: string | null; utilization: number } {
  let worst: { queue: string | null; utilization: number } = { queue: null, utilization: 0 };
  for (const q of queueModels(ad.spec, workloadAt(concurrency, ad.spec.load.requestMix), t)) {
    const u = queuePlanOf(q).utilization;
    if (u > worst.utilization) worst = { queue: q.name, utilization: u };
  }
  return worst;
}

/**
 * The concurrency at which the first modelled queue becomes unstable
 * (utilisation 1; Little's law rates over the request mix, the queues of
 * operator/planner/queues.ts), found by bisection to 0.1 %, and that queue.
 * Utilisation grows linearly with concurrency, so the bisection is exact up
 * to rounding. @returns nulls when no queue reaches 1 below 100 x the target.
 */
export function predictedLimit(
  ad: ArenaDeployment,
  t: Topology,
): { limitConcurrency: number | null; queue: string | null } {
  let hi = ad.spec.load.targetConcurrency * 100;
  if (worstQueue(ad, t, hi).utilization < 1) return { limitConcurrency: null, queue: null };
  let lo = 0;
  while (hi - lo > Math.max(1, hi * 0.001)) {
    const mid = (lo + hi) / 2;
    if (worstQueue(ad, t, mid).utilization >= 1) hi = mid;
    else lo = mid;
  }
  return { limitConcurrency: Math.round(hi), queue: worstQueue(ad, t, hi).queue };
}
