/**
 * The chart sections of the HTML report, all on the shared time axis
 * (seconds since the start of the run): latency per scenario (P50/P95/P99 of
 * http_req_duration; TTFT/ITL P99 for streams; end-to-end and queue wait
 * P99 for tasks), throughput and in flight, errors by reason, pool
 * saturation (one chart per pool with its limit; PgBouncer clients waiting)
 * and the engine's own event-loop delay and schedule lag.
 */
import type { LoadTestResult, Saturation } from '../engine/result-schema.js';
import { fmtInt, fmtPct } from './html-format.js';
import { html } from './html-template.js';
import type { ChartSeries, ChartSpec, ReportContext, ReportSection } from './html-types.js';

/** One second of the run (`result.series[i]`). */
export type Second = LoadTestResult['series'][number];

/** Colours of the lines the report draws by meaning (the rest use the palette by position). */
export const COLORS = {
  p50: '#2e7d32',
  p95: '#ef6c00',
  p99: '#c62828',
  ttft: '#6a1b9a',
  itl: '#00838f',
  main: '#1565c0',
  extra: '#6d4c41',
} as const;

/**
 * A chart on the per-second axis: `x` defaults to `ctx.seconds` and the
 * phases to the run's.
 */
export function secondsChart(ctx: ReportContext, spec: Omit<ChartSpec, 'x' | 'phases'> & { x?: number[] }): ChartSpec {
  return { ...spec, x: spec.x ?? ctx.seconds, phases: ctx.phases };
}

/** One value per second of the run; null where the second has none. */
export function perSecond(ctx: ReportContext, f: (p: Second) => number | null | undefined): (number | null)[] {
  return ctx.result.series.map((p) => f(p) ?? null);
}

function scenarioTrend(ctx: ReportContext, name: string, metric: string, q: 'p50' | 'p95' | 'p99') {
  return perSecond(ctx, (p) => p.scenarios[name]?.trends[metric]?.[q]);
}

/** Latency per second: one chart per scenario, plus TTFT/ITL for streams and end-to-end/queue wait for tasks. */
export function latencySection(ctx: ReportContext): ReportSection {
  const charts: ChartSpec[] = [];
  for (const [name, s] of Object.entries(ctx.result.scenarios)) {
    const tr = (m: string, q: 'p50' | 'p95' | 'p99') => scenarioTrend(ctx, name, m, q);
    charts.push(
      secondsChart(ctx, {
        id: `latency-${name}`,
        title: `${name} (${s.kind}): http_req_duration per second`,
        yLabel: 'latency',
        unit: 'ms',
        series: [
          { label: 'P50', values: tr('http_req_duration', 'p50'), color: COLORS.p50 },
          { label: 'P95', values: tr('http_req_duration', 'p95'), color: COLORS.p95 },
          { label: 'P99', values: tr('http_req_duration', 'p99'), color: COLORS.p99 },
        ],
      }),
    );
    if (s.kind === 'sse' || s.metrics['ttft'])
      charts.push(
        secondsChart(ctx, {
          id: `stream-${name}`,
          title: `${name}: time to first token and inter-token latency per second`,
          yLabel: 'latency',
          unit: 'ms',
          series: [
            { label: 'TTFT P99', values: tr('ttft', 'p99'), color: COLORS.ttft },
            { label: 'ITL P99', values: tr('itl', 'p99'), color: COLORS.itl },
          ],
        }),
      );
    if (s.kind === 'task' || s.metrics['task_e2e'])
      charts.push(
        secondsChart(ctx, {
          id: `task-${name}`,
          title: `${name}: task end-to-end and queue wait per second`,
          yLabel: 'latency',
          unit: 'ms',
          series: [
            { label: 'task_e2e P99', values: tr('task_e2e', 'p99'), color: COLORS.p99 },
            { label: 'task_queue_wait P99', values: tr('task_queue_wait', 'p99'), color: COLORS.main },
          ],
        }),
      );
  }
  return {
    id: 'latency',
    title: 'Latency over time',
    body: html`<p class="note">
      Each point is one second of the run (every phase), latency from the scheduled start.
    </p>`,
    charts,
  };
}

/** Requests completed per second (all, and per scenario when there are several) and iterations in flight. */
export function throughputSection(ctx: ReportContext): ReportSection {
  const names = Object.keys(ctx.result.scenarios);
  const rps: ChartSeries[] = [
    { label: 'all', values: perSecond(ctx, (p) => p.all.counters['http_reqs'] ?? 0), color: COLORS.main },
  ];
  if (names.length > 1)
    for (const n of names)
      rps.push({ label: n, values: perSecond(ctx, (p) => p.scenarios[n]?.counters['http_reqs'] ?? 0), dash: [5, 3] });
  return {
    id: 'throughput',
    title: 'Throughput and concurrency',
    charts: [
      secondsChart(ctx, {
        id: 'rps',
        title: 'Requests completed per second',
        yLabel: 'throughput',
        unit: 'req/s',
        series: rps,
      }),
      secondsChart(ctx, {
        id: 'in-flight',
        title: 'Iterations in flight',
        yLabel: 'in flight',
        unit: 'iterations',
        series: [
          { label: 'in flight (end of second)', values: perSecond(ctx, (p) => p.inFlight), color: COLORS.main },
          { label: 'most in flight', values: perSecond(ctx, (p) => p.maxInFlight), color: COLORS.extra, dash: [5, 3] },
        ],
      }),
    ],
  };
}

/** Failed requests per second by reason (and dropped iterations when there were any). */
export function errorsSection(ctx: ReportContext): ReportSection {
  const totals = new Map<string, number>();
  for (const p of ctx.result.series)
    for (const [k, v] of Object.entries(p.all.failures)) totals.set(k, (totals.get(k) ?? 0) + v);
  const reasons = [...totals.keys()].sort((a, b) => totals.get(b)! - totals.get(a)! || (a < b ? -1 : 1));
  const series: ChartSeries[] = reasons.map((k) => ({
    label: k,
    values: perSecond(ctx, (p) => p.all.failures[k] ?? 0),
  }));
  if (series.length === 0)
    series.push({
      label: 'failed requests',
      values: perSecond(ctx, (p) => p.all.counters['http_req_failed'] ?? 0),
      color: COLORS.p99,
    });
  const dropped = perSecond(ctx, (p) => p.all.counters['dropped_iterations'] ?? 0);
  if (dropped.some((v) => (v ?? 0) > 0))
    series.push({ label: 'dropped iterations', values: dropped, color: COLORS.extra, dash: [2, 3] });
  return {
    id: 'errors',
    title: 'Errors over time',
    charts: [
      secondsChart(ctx, {
        id: 'errors',
        title: 'Failed requests per second by reason',
        yLabel: 'errors',
        unit: 'per s',
        series,
        ...(reasons.length === 0 ? { note: 'No request failed.' } : {}),
      }),
    ],
  };
}

/** The pools in report order; pools the result names beyond these follow, sorted. */
export const POOL_ORDER = [
  'pgbouncer_client',
  'pgbouncer_server',
  'postgres_backends',
  'redis_clients',
  'llm_slots',
  'app_db_pool',
  'async_consumers',
] as const;

const POOL_UNIT: Record<string, string> = {
  pgbouncer_client: 'client connections',
  pgbouncer_server: 'server connections',
  postgres_backends: 'backends',
  redis_clients: 'clients',
  llm_slots: 'slots',
  app_db_pool: 'connections',
  async_consumers: 'consumers',
};

/** A sampler figure's points as x (s since the start) and values. */
function samplerSeries(sat: Saturation, figure: string): { x: number[]; values: (number | null)[] } {
  const pts = sat.series[figure] ?? [];
  return { x: pts.map(([ms]) => Math.round(ms) / 1000), values: pts.map(([, v]) => v) };
}

function poolTable(sat: Saturation, pools: string[]) {
  const rows = pools.map((name) => {
    const p = sat.pools[name]!;
    const first = sat.saturatesFirst?.pool === name;
    return html`<tr${first ? html` class="first"` : ''}><th scope="row">${name}${first ? ' *' : ''}</th><td><code>${p.figure}</code></td><td class="num">${fmtInt(p.limit)}</td><td class="num">${fmtInt(p.peak)}</td><td class="num">${fmtInt(p.p95)}</td><td class="num">${fmtPct(p.peakUtilization)}</td><td class="num">${fmtPct(p.p95Utilization)}</td></tr>`;
  });
  return html`<table>
    <thead>
      <tr>
        <th>pool</th>
        <th>figure</th>
        <th class="num">limit</th>
        <th class="num">peak</th>
        <th class="num">P95</th>
        <th class="num">peak util. %</th>
        <th class="num">P95 util. %</th>
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}

function saturationBody(sat: Saturation, pools: string[]) {
  const f = sat.saturatesFirst;
  const callout = f
    ? html`<div class="callout info" id="saturates-first">
        Saturates first: <strong>${f.pool}</strong> (<code>${f.figure}</code>, peak ${fmtPct(f.peakUtilization)} % of
        its limit).
      </div>`
    : html`<div class="callout info" id="saturates-first">Saturates first: no pool with a known limit was read.</div>`;
  const failures = Object.entries(sat.targets)
    .filter(([, t]) => t.failed > 0)
    .map(
      ([k, t]) =>
        html`<li>
          sampler ${k} (<code>${t.url}</code>): ${t.failed} of ${t.ok + t.failed} ticks failed (first:
          ${t.errors[0]?.error ?? '?'})
        </li>`,
    );
  return html`${callout}
    <p class="note">
      Sampled every ${fmtInt(sat.intervalMs)} ms, ${fmtInt(sat.ticks)} ticks. The dashed line is the pool's limit.
    </p>
    ${poolTable(sat, pools)}${
      failures.length
        ? html`<ul class="warnings">
            ${failures}
          </ul>`
        : ''
    }`;
}

/**
 * Pool saturation (with --sample): the pool that saturates first, a table of every pool, and one chart per
 * pool the sampler read at least one value of, with its limit as a dashed line.
 */
export function saturationSection(ctx: ReportContext): ReportSection | null {
  const sat = ctx.result.saturation;
  if (!sat) return null;
  const known: readonly string[] = POOL_ORDER;
  const pools = [
    ...POOL_ORDER.filter((p) => sat.pools[p]),
    ...Object.keys(sat.pools)
      .filter((p) => !known.includes(p))
      .sort(),
  ];
  const charts: ChartSpec[] = [];
  for (const name of pools) {
    const p = sat.pools[name]!;
    const { x, values } = samplerSeries(sat, p.figure);
    if (!values.some((v) => v !== null)) continue;
    charts.push(
      secondsChart(ctx, {
        id: `pool-${name}`,
        title: `${name}: ${p.figure}${sat.saturatesFirst?.pool === name ? ' (saturates first)' : ''}`,
        yLabel: 'in use',
        unit: POOL_UNIT[name] ?? 'count',
        x,
        series: [{ label: p.figure, values, color: COLORS.main }],
        ...(p.limit !== null ? { limit: p.limit, limitLabel: p.limitOf ? `limit (${p.limitOf})` : 'limit' } : {}),
      }),
    );
  }
  if (sat.series['pgbouncer.cl_waiting']) {
    const { x, values } = samplerSeries(sat, 'pgbouncer.cl_waiting');
    charts.push(
      secondsChart(ctx, {
        id: 'pgbouncer-cl_waiting',
        title: 'PgBouncer clients waiting for a server connection (cl_waiting)',
        yLabel: 'waiting',
        unit: 'clients',
        x,
        series: [{ label: 'pgbouncer.cl_waiting', values, color: COLORS.p99 }],
      }),
    );
  }
  return { id: 'saturation', title: 'Pool saturation', body: saturationBody(sat, pools), charts };
}

/** The engine watching itself: worker and main-thread event-loop delay P99 and schedule lag P99 per second. */
export function engineSection(ctx: ReportContext): ReportSection {
  const e = ctx.result.engine;
  const flagged = ctx.result.series.filter((p) => p.clientSaturated).map((p) => p.t);
  return {
    id: 'engine',
    title: 'The engine',
    charts: [
      secondsChart(ctx, {
        id: 'engine-lag',
        title: 'Event-loop delay and schedule lag P99 per second',
        yLabel: 'delay',
        unit: 'ms',
        series: [
          {
            label: 'event-loop delay P99 (workers)',
            values: perSecond(ctx, (p) => p.loopLagP99Ms),
            color: COLORS.main,
          },
          {
            label: 'event-loop delay P99 (main thread)',
            values: perSecond(ctx, (p) => p.mainLoopLagP99Ms),
            color: COLORS.extra,
            dash: [5, 3],
          },
          {
            label: 'schedule lag P99',
            values: perSecond(ctx, (p) => p.all.trends['schedule_lag']?.p99),
            color: COLORS.p95,
          },
        ],
        limit: Math.min(e.bounds.loopLagP99Ms, e.bounds.scheduleLagP99Ms),
        limitLabel: 'client-saturated bound',
        note: flagged.length
          ? `Seconds over the bound (client saturated): ${flagged.join(', ')}.`
          : 'No second went over the bound.',
      }),
    ],
  };
}
