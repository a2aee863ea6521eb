/**
 * The schema of `result.json` (`arena loadtest run --out DIR`), version 1:
 * one TypeBox schema gives the TypeScript type and the JSON Schema published
 * as `docs/schemas/loadtest-result.schema.json` (a test fails when they
 * differ). Units: durations in ms unless the name says otherwise, rates per
 * second, utilisation a fraction (0.9 = 90 %), bytes in bytes.
 */
import { Type, type Static } from '@sinclair/typebox';

export const RESULT_API_VERSION = 'arena.dev/v1alpha1';
export const RESULT_KIND = 'LoadTestResult';
export const RESULT_SCHEMA_VERSION = 1;

const Num = Type.Number();
const Count = Type.Integer({ minimum: 0 });

export const PercentilesSchema = Type.Object(
  { count: Count, min: Num, mean: Num, p50: Num, p90: Num, p95: Num, p99: Num, p999: Num, max: Num },
  { description: 'Percentiles of an HDR histogram, ms.' },
);

export const TrendSchema = Type.Intersect([
  PercentilesSchema,
  Type.Object({ hdr: Type.String({ description: 'The HdrHistogram, compressed base64 (V2), values in us.' }) }),
]);
const SecondTrendSchema = Type.Intersect([PercentilesSchema, Type.Object({ hdr: Type.Optional(Type.String()) })]);

const CountersSchema = Type.Record(Type.String(), Count, {
  description:
    'http_reqs, http_req_failed, iterations, dropped_iterations, interrupted_iterations, tokens, streams_cut_short, task_polls.',
});
const FailuresSchema = Type.Record(Type.String(), Count, {
  description: 'Failed requests by reason: http_<status>[ <error>], timeout, refused, reset, stream_cut_short, ...',
});

export const ScenarioResultSchema = Type.Object({
  name: Type.String(),
  kind: Type.String({ description: 'http, sse, task; "all" for the whole run.' }),
  metrics: Type.Record(Type.String(), TrendSchema, {
    description: 'Steady-phase trends by metric name (http_req_duration, ttft, itl, ...).',
  }),
  counters: CountersSchema,
  rates: Type.Object({ http_reqs: Num, iterations: Num }, { description: 'Steady-phase rates per second.' }),
  http_req_failed: Type.Number({ description: 'Steady-phase share of failed requests (0..1).' }),
  failures: FailuresSchema,
  totals: CountersSchema,
  goodput: Type.Optional(
    Type.Object(
      {
        objectives: Type.Record(Type.String(), Num, { description: 'Objective per metric, ms.' }),
        good: Count,
        share: Type.Number({ description: 'good / iterations (0..1).' }),
        ratePerSecond: Num,
      },
      {
        description:
          'Requests that succeeded within every latency objective (steady phase); per second in series[].counters.good_iterations.',
      },
    ),
  ),
});

const SecondSchema = Type.Object({
  t: Type.Integer({ minimum: 0, description: 'Second index: [t, t+1) s after the start.' }),
  phase: Type.Union([Type.Literal('ramp-up'), Type.Literal('steady'), Type.Literal('ramp-down')]),
  inFlight: Count,
  maxInFlight: Count,
  started: Count,
  sockets: Count,
  loopLagP99Ms: Num,
  loopLagMaxMs: Num,
  mainLoopLagP99Ms: Num,
  cpuSeconds: Num,
  rssBytes: Count,
  clientSaturated: Type.Boolean(),
  scenarios: Type.Record(
    Type.String(),
    Type.Object({
      trends: Type.Record(Type.String(), SecondTrendSchema),
      counters: CountersSchema,
      failures: FailuresSchema,
    }),
  ),
  all: Type.Object({
    trends: Type.Record(Type.String(), SecondTrendSchema),
    counters: CountersSchema,
    failures: FailuresSchema,
  }),
});

const FigureSummarySchema = Type.Object({
  limit: Type.Union([Num, Type.Null()]),
  peak: Type.Union([Num, Type.Null()]),
  p95: Type.Union([Num, Type.Null()]),
  peakUtilization: Type.Union([Num, Type.Null()]),
  p95Utilization: Type.Union([Num, Type.Null()]),
  samples: Count,
  missing: Count,
});

export const PoolSchema = Type.Object({
  figure: Type.String({ description: 'The sampler figure, e.g. pgbouncer.sv_active.' }),
  limitOf: Type.String(),
  ...FigureSummarySchema.properties,
});

export const SaturationSchema = Type.Object({
  intervalMs: Num,
  /** Sampler time 0 relative to the engine's start, ms. */
  offsetMs: Num,
  ticks: Count,
  targets: Type.Record(
    Type.String(),
    Type.Object({
      url: Type.String(),
      ok: Count,
      failed: Count,
      errors: Type.Array(Type.Object({ tMs: Num, error: Type.String() })),
    }),
  ),
  series: Type.Record(Type.String(), Type.Array(Type.Tuple([Num, Type.Union([Num, Type.Null()])])), {
    description: 'Per figure: [ms since the engine start, value or null].',
  }),
  summary: Type.Record(Type.String(), FigureSummarySchema),
  pools: Type.Record(Type.String(), PoolSchema, {
    description:
      'pgbouncer_client, pgbouncer_server, postgres_backends, redis_clients, llm_slots, app_db_pool, async_consumers, host_cpu.',
  }),
  saturatesFirst: Type.Union(
    [
      Type.Object({
        pool: Type.String(),
        figure: Type.String(),
        peakUtilization: Num,
        atMs: Type.Optional(
          Type.Union([Num, Type.Null()], {
            description:
              'First saturated tick, ms since the start (null: no pool saturated; the highest peak is named).',
          }),
        ),
      }),
      Type.Null(),
    ],
    {
      description:
        'The pool whose first saturated tick (utilisation >= 95 %, or >= 75 % with waiters) came earliest; else the highest peak.',
    },
  ),
  cost: Type.Object({ cpuMsPerTick: Num, wallMsPerTick: Num }),
});

const NumOrNull = Type.Union([Num, Type.Null()]);

const SteadyWaitSchema = Type.Object({
  count: Count,
  meanMs: NumOrNull,
  p50Ms: NumOrNull,
  p99Ms: NumOrNull,
});

/** The API's queue waits over the steady phase (two /metrics scrapes, loadtest/sampler/prometheus.ts). */
export const ApiWaitsSchema = Type.Object(
  {
    fromMs: Num,
    toMs: Num,
    queues: Type.Object({
      llmSlots: Type.Optional(SteadyWaitSchema),
      appDbPool: Type.Optional(SteadyWaitSchema),
      llmRateLimit: Type.Optional(SteadyWaitSchema),
    }),
    /** The API HTTP workers' event-loop delay over the steady phase (arena_event_loop_delay_seconds), ms. */
    eventLoopDelay: Type.Optional(SteadyWaitSchema),
    llmCalls: Type.Union([Count, Type.Null()]),
    /** CPU seconds of the API's HTTP workers over the steady phase (arena_http_worker_cpu_seconds_total). */
    httpWorkerCpuSeconds: Type.Optional(Num),
  },
  {
    description:
      "The API's steady-phase waits from /metrics histograms (bucket-interpolated quantiles, ms) and its LLM calls.",
  },
);

const QueueFiguresSchema = Type.Object({
  utilization: NumOrNull,
  meanWaitMs: NumOrNull,
  p99WaitMs: NumOrNull,
});

/** One queue the planner models: predicted at the measured offered load vs measured. */
export const QueueComparisonSchema = Type.Object({
  servers: Count,
  partitions: Count,
  arrivalRatePerSecond: Num,
  serviceTimeMs: Num,
  serviceCv2: Num,
  predicted: Type.Intersect([QueueFiguresSchema, Type.Object({ pWait: Num, stable: Type.Boolean() })]),
  measured: Type.Intersect([
    QueueFiguresSchema,
    Type.Object({
      maxWaitMs: Type.Optional(NumOrNull),
      source: Type.String({ description: 'Where the measured figures come from.' }),
    }),
  ]),
  verdict: Type.Union([Type.Literal('agrees'), Type.Literal('differs'), Type.Literal('not measured')]),
  differences: Type.Array(Type.String(), { description: 'What is beyond the tolerance, one line each.' }),
});

/** A connection budget for the topology that ran: the most the settings allow vs the peak measured. */
export const BudgetComparisonSchema = Type.Object({
  name: Type.String(),
  predicted: Num,
  limit: NumOrNull,
  measuredPeak: NumOrNull,
  figure: Type.String(),
  within: Type.Union([Type.Boolean(), Type.Null()], { description: 'measuredPeak <= predicted (null: not measured).' }),
});

/** Predicted vs measured: the planner's queues and budgets at the load the run offered (-f FILE). */
export const ModelComparisonSchema = Type.Object(
  {
    file: Type.String(),
    name: Type.String(),
    topology: Type.Object({
      source: Type.String({ description: 'local stack (state.json) or plan (maxReplicas).' }),
      workers: Count,
      pgbouncers: Count,
      pgbouncerDefaultPoolSize: Count,
      consumers: Count,
    }),
    offeredRates: Type.Record(Type.String(), Num, {
      description:
        'Arrivals per second per request kind at the target in the steady phase (iterations started; dropped ones never arrive).',
    }),
    queues: Type.Record(Type.String(), QueueComparisonSchema),
    budgets: Type.Array(BudgetComparisonSchema),
    saturatesFirst: Type.Object({
      predicted: Type.Union([Type.String(), Type.Null()], {
        description: 'The queue with the highest predicted utilisation.',
      }),
      measured: Type.Union([Type.String(), Type.Null()], {
        description: 'The queue with the highest measured utilisation.',
      }),
    }),
    tolerance: Type.Object({
      utilizationPoints: Num,
      waitRatio: Num,
      waitFloorMs: Num,
    }),
  },
  { description: 'Present when the run had -f FILE and the load was at least partly its request kinds.' },
);

export const ThresholdOutcomeSchema = Type.Object({
  selector: Type.String(),
  expression: Type.String(),
  status: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('missing')]),
  value: Type.Union([Num, Type.Null()]),
  message: Type.String(),
});

export const LoadTestResultSchema = Type.Object(
  {
    apiVersion: Type.Literal(RESULT_API_VERSION),
    kind: Type.Literal(RESULT_KIND),
    schemaVersion: Type.Literal(RESULT_SCHEMA_VERSION),
    status: Type.Union([Type.Literal('complete'), Type.Literal('partial')], {
      description: 'partial: stopped before the schedule ended (Ctrl-C, SIGTERM).',
    }),
    partialReason: Type.Optional(Type.String()),
    passed: Type.Boolean({ description: 'Every threshold passed.' }),
    startedAt: Type.String({ format: 'date-time' }),
    endedAt: Type.String({ format: 'date-time' }),
    settings: Type.Object({
      target: Type.String({ description: 'Target URL, any password redacted.' }),
      scenario: Type.Object({
        name: Type.String(),
        source: Type.String(),
        requests: Type.Array(
          Type.Object({
            name: Type.String(),
            kind: Type.String(),
            method: Type.String(),
            path: Type.String(),
            weight: Num,
          }),
        ),
      }),
      executor: Type.String({ description: 'constant-arrival-rate, ramping-arrival-rate, constant-vus, ramping-vus.' }),
      model: Type.Object({
        type: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
        rate: Type.Optional(Num),
        arrivalProcess: Type.Optional(Type.String()),
        maxVUs: Type.Optional(Count),
        vus: Type.Optional(Count),
        thinkTimeMs: Type.Optional(Num),
      }),
      phases: Type.Object({ rampUpMs: Num, steadyMs: Num, rampDownMs: Num }),
      gracefulStopMs: Num,
      seed: Type.Integer(),
      workers: Count,
      fromPlan: Type.Optional(
        Type.Object({
          file: Type.String(),
          name: Type.String(),
          scale: Num,
          targetConcurrency: Count,
          rates: Type.Record(Type.String(), Num),
          plannedConcurrency: Num,
        }),
      ),
      thresholds: Type.Record(Type.String(), Type.Array(Type.String())),
      shard: Type.Optional(
        Type.Object(
          { index: Count, of: Count, startAt: Type.Optional(Num) },
          {
            description:
              'This result is shard `index` of `of` (--shard i/N); startAt = the common --start-at, epoch ms.',
          },
        ),
      ),
      engine: Type.Object({
        version: Type.String(),
        node: Type.String(),
        cores: Count,
        openFilesSoftLimit: Type.Union([Count, Type.Null()]),
      }),
    }),
    scenarios: Type.Record(Type.String(), ScenarioResultSchema, {
      description: 'Steady-phase figures per request name (the scenario tag).',
    }),
    all: ScenarioResultSchema,
    series: Type.Array(SecondSchema, { description: 'One point per second of the run, every phase.' }),
    engine: Type.Object({
      cpuSeconds: Num,
      peakRssBytes: Count,
      loopLagP99Ms: Num,
      loopLagMaxMs: Num,
      scheduleLagP99Ms: Num,
      peakInFlight: Count,
      clientSaturated: Type.Boolean({
        description:
          'Steady-phase schedule lag P99 or event-loop delay P99 above its bound: the figures may measure the client.',
      }),
      clientSaturatedReasons: Type.Array(Type.String()),
      bounds: Type.Object({ scheduleLagP99Ms: Num, loopLagP99Ms: Num }),
    }),
    saturation: Type.Optional(SaturationSchema),
    apiWaits: Type.Optional(ApiWaitsSchema),
    model: Type.Optional(ModelComparisonSchema),
    shards: Type.Optional(
      Type.Array(
        Type.Object({
          index: Count,
          dir: Type.String({ description: "The shard's own result folder, relative to this result's." }),
          status: Type.String(),
          requests: Count,
          p99Ms: Type.Union([Num, Type.Null()]),
        }),
        { description: 'A merged result (--shards N): the shards it was merged from.' },
      ),
    ),
    thresholds: Type.Array(ThresholdOutcomeSchema),
  },
  { $id: 'https://arena.dev/schemas/loadtest-result.schema.json', title: 'arena LoadTestResult (result.json)' },
);

export type LoadTestResult = Static<typeof LoadTestResultSchema>;
export type ScenarioResult = Static<typeof ScenarioResultSchema>;
export type Saturation = Static<typeof SaturationSchema>;
export type ThresholdOutcomeJson = Static<typeof ThresholdOutcomeSchema>;
export type ApiWaits = Static<typeof ApiWaitsSchema>;
export type ModelComparison = Static<typeof ModelComparisonSchema>;
export type QueueComparison = Static<typeof QueueComparisonSchema>;
export type BudgetComparison = Static<typeof BudgetComparisonSchema>;
