/**
 * The schema of the sampler's result (`arena sample --out FILE`, `-o json`):
 * one TypeBox schema gives the TypeScript types (`SampleResult`,
 * `TargetReport`, `FigureSummary`, `Point`) and the JSON Schema published as
 * docs/schemas/sample-result.schema.json (schema-file.ts; a test fails when
 * they differ). Times in ms; utilisations are fractions (0.8 = 80 %).
 */
import { Type, type Static } from '@sinclair/typebox';

const Num = Type.Number();
const Count = Type.Integer({ minimum: 0 });
const NumOrNull = Type.Union([Type.Number(), Type.Null()]);

/** One point of a series: [ms since the sampler started, value or null when the tick failed]. */
export const PointSchema = Type.Tuple([Type.Number({ minimum: 0 }), NumOrNull], {
  description: '[ms since the start, value or null for a tick where the target could not be read].',
});

/** Peak, P95 and their utilisation of one figure against its limit. */
export const FigureSummarySchema = Type.Object({
  limit: Type.Union([Type.Number(), Type.Null()], {
    description:
      "The figure's limit (pool size, max_connections, maxclients, ...), the latest read; null when it has none.",
  }),
  peak: Type.Union([Type.Number(), Type.Null()], { description: 'Largest value seen (null when no tick read it).' }),
  p95: Type.Union([Type.Number(), Type.Null()], { description: '95th percentile of the values (nearest rank).' }),
  peakUtilization: Type.Union([Type.Number(), Type.Null()], {
    description: 'peak / limit (a fraction; null without a limit or a value).',
  }),
  p95Utilization: Type.Union([Type.Number(), Type.Null()], { description: 'p95 / limit.' }),
  samples: Type.Integer({ minimum: 0, description: 'Ticks with a value.' }),
  missing: Type.Integer({
    minimum: 0,
    description: 'Ticks without a value (target errors); samples + missing = ticks.',
  }),
});

/** How one target fared: ticks read and failed, the errors, the time per read. */
export const TargetReportSchema = Type.Object({
  url: Type.String({ description: 'The URL, any password replaced by ***.' }),
  ok: Type.Integer({ minimum: 0, description: 'Ticks read.' }),
  failed: Type.Integer({ minimum: 0, description: 'Ticks that failed.' }),
  errors: Type.Array(Type.Object({ tMs: Num, error: Type.String() }), { description: 'One entry per failed tick.' }),
  meanReadMs: Type.Union([Type.Number(), Type.Null()], {
    description: 'Mean time per read, ms (null without a tick).',
  }),
  maxReadMs: Type.Union([Type.Number(), Type.Null()], { description: 'Longest read, ms.' }),
});

/** The sampler's result (written by `arena sample --out`). */
export const SampleResultSchema = Type.Object(
  {
    startedAt: Type.String({ format: 'date-time' }),
    intervalMs: Type.Number({ exclusiveMinimum: 0 }),
    durationMs: Type.Number({ minimum: 0 }),
    ticks: Count,
    aborted: Type.Boolean({ description: 'Whether it stopped on abort (Ctrl-C, SIGTERM) before the duration.' }),
    targets: Type.Object(
      {
        pgbouncer: Type.Optional(TargetReportSchema),
        postgres: Type.Optional(TargetReportSchema),
        redis: Type.Optional(TargetReportSchema),
        health: Type.Optional(TargetReportSchema),
        host: Type.Optional(TargetReportSchema),
      },
      { description: 'The targets sampled.' },
    ),
    series: Type.Record(Type.String(), Type.Array(PointSchema), {
      description: 'Per figure (`<target>.<figure>`), one point per tick.',
    }),
    summary: Type.Record(Type.String(), FigureSummarySchema, { description: 'Per figure.' }),
    saturatesFirst: Type.Union([Type.Object({ figure: Type.String(), peakUtilization: Num }), Type.Null()], {
      description: 'The figure with the highest peak utilisation (null when no figure has a limit).',
    }),
    cost: Type.Object(
      { cpuMsPerTick: Num, wallMsPerTick: Num },
      { description: "The sampler's own cost: CPU ms per tick (user + system) and wall ms per tick." },
    ),
  },
  { $id: 'https://arena.dev/schemas/sample-result.schema.json', title: 'arena sample result (arena sample --out)' },
);

/** One point: [milliseconds since the start, value or null when the tick failed]. */
export type Point = Static<typeof PointSchema>;
/** Peak, P95 and their utilisation of one figure. */
export type FigureSummary = Static<typeof FigureSummarySchema>;
/** How one target fared over the run. */
export type TargetReport = Static<typeof TargetReportSchema>;
/** The sampler's result (written by `arena sample --out`). */
export type SampleResult = Static<typeof SampleResultSchema>;
