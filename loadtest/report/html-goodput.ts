/**
 * The goodput section of the HTML report: per scenario with latency
 * objectives (`result.scenarios[name].goodput`) and over those scenarios
 * (`result.all.goodput`), the steady-phase requests that succeeded within
 * every objective: a table (objectives as text, iterations, good, goodput %
 * and per second) and, per scenario, a chart of good iterations per second
 * against iterations per second on the shared time axis.
 *
 * Every number cell carries `data-scenario` (the scenario, or `all`) and
 * `data-metric`: `goodput.iterations`, `goodput.good`, `goodput.pct`
 * (100 x share) and `goodput.rate` (per second).
 */
import type { ScenarioResult } from '../engine/result-schema.js';
import { COLORS, perSecond, secondsChart } from './html-charts.js';
import { fmtDuration, fmtFixed, fmtInt } from './html-format.js';
import { numCell } from './html-sections.js';
import { html, type SafeHtml } from './html-template.js';
import type { ChartSpec, ReportContext, ReportSection } from './html-types.js';

type Goodput = NonNullable<ScenarioResult['goodput']>;

/** Objectives as text: `http_req_duration ≤ 30 ms, ttft ≤ 1.5 s` (values in ms). */
export function objectivesText(objectives: Goodput['objectives']): string {
  return Object.entries(objectives)
    .map(([metric, ms]) => `${metric} ≤ ${fmtDuration(ms)}`)
    .join(', ');
}

function row(name: string, objectives: string, iterations: number, g: Goodput, total = false): SafeHtml {
  return html`<tr${total ? html` class="total"` : ''}>
    <th scope="row">${name}</th>
    <td>${objectives}</td>
    ${numCell(name, 'goodput.iterations', fmtInt(iterations))}${numCell(name, 'goodput.good', fmtInt(g.good))}
    ${numCell(name, 'goodput.pct', fmtFixed(100 * g.share, 1))}${numCell(name, 'goodput.rate', fmtFixed(g.ratePerSecond, 1))}
  </tr>`;
}

function chart(ctx: ReportContext, name: string, g: Goodput): ChartSpec {
  const counter = (c: string) => perSecond(ctx, (p) => p.scenarios[name]?.counters[c] ?? 0);
  return secondsChart(ctx, {
    id: `goodput-${name}`,
    title: `${name}: iterations within every objective per second`,
    yLabel: 'iterations',
    unit: 'per s',
    series: [
      { label: 'iterations', values: counter('iterations'), color: COLORS.main },
      { label: 'good (within every objective)', values: counter('good_iterations'), color: COLORS.p50 },
    ],
    note: `objectives: ${objectivesText(g.objectives)}`,
  });
}

/**
 * Goodput (scenarios with objectives): the table and one chart per such scenario; null when no scenario
 * has objectives.
 */
export function goodputSection(ctx: ReportContext): ReportSection | null {
  const r = ctx.result;
  const withGoodput = Object.entries(r.scenarios).filter((e): e is [string, ScenarioResult & { goodput: Goodput }] =>
    Boolean(e[1].goodput),
  );
  if (withGoodput.length === 0) return null;
  const rows = withGoodput.map(([n, s]) =>
    row(n, objectivesText(s.goodput.objectives), s.counters['iterations'] ?? 0, s.goodput),
  );
  if (r.all.goodput) {
    const iterations = withGoodput.reduce((a, [, s]) => a + (s.counters['iterations'] ?? 0), 0);
    rows.push(row('all', 'each scenario its own', iterations, r.all.goodput, true));
  }
  return {
    id: 'goodput',
    title: 'Goodput (requests within every latency objective)',
    body: html`<p class="note">
        Steady phase. An iteration is good when it succeeded and met every latency objective of its request (the
        scenario file's <code>objectives</code>, or a threshold such as <code>p(99)&lt;500</code> on that metric);
        <code>all</code> counts the scenarios with objectives only.
      </p>
      <table class="goodput">
        <thead>
          <tr>
            <th>scenario</th>
            <th>objectives</th>
            <th class="num">iterations</th>
            <th class="num">good</th>
            <th class="num">goodput %</th>
            <th class="num">goodput /s</th>
          </tr>
        </thead>
        <tbody>
          ${rows}
        </tbody>
      </table>`,
    charts: withGoodput.map(([n, s]) => chart(ctx, n, s.goodput)),
  };
}
