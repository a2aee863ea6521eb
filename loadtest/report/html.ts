/**
 * The HTML report of a load test (`report.html`, `arena loadtest report DIR`):
 * one self-contained page that opens offline. uPlot (MIT) and its CSS are
 * read from node_modules at render time and inlined; the result's data go in
 * one `<script type="application/json" id="arena-data">`; a small client
 * script (html-client.ts) draws every chart from it. Every user string (the
 * target, failure reasons, ...) is escaped with `escape-html`
 * (html-template.ts); a Content-Security-Policy forbids any fetch.
 *
 * The page is a list of sections (`DEFAULT_SECTIONS`); a section is HTML
 * plus `ChartSpec`s (html-types.ts). To add a section or chart, write a
 * `SectionBuilder` and pass `[...DEFAULT_SECTIONS, mine]` as `sections`.
 * The output is the same for the same result (no clock, no randomness).
 */
import type { LoadTestResult } from '../engine/result-schema.js';
import { errorsSection, engineSection, latencySection, saturationSection, throughputSection } from './html-charts.js';
import { LIMIT_COLOR, PALETTE, PHASE_FILL, type ClientData } from './html-client.js';
import { renderPage } from './html-page.js';
import { goodputSection } from './html-goodput.js';
import { modelSection } from './html-model.js';
import { failuresSection, overviewSection, summarySection, thresholdsSection } from './html-sections.js';
import { html, type SafeHtml } from './html-template.js';
import type { ChartSpec, Phase, PhaseRange, ReportContext, ReportSection, SectionBuilder } from './html-types.js';

export type {
  ChartSeries,
  ChartSpec,
  Phase,
  PhaseRange,
  ReportContext,
  ReportSection,
  SectionBuilder,
} from './html-types.js';
export { html, raw, SafeHtml } from './html-template.js';
export { numCell, numSpan } from './html-sections.js';
export { perSecond, secondsChart } from './html-charts.js';

/**
 * The page's sections in order: overview, summary, goodput, failures,
 * thresholds, predicted vs measured, latency, throughput, errors, pool
 * saturation, the engine. Builders that return null (no objectives, no
 * failures, no thresholds, no -f FILE model, no --sample) are left out.
 */
export const DEFAULT_SECTIONS: readonly SectionBuilder[] = [
  overviewSection,
  summarySection,
  goodputSection,
  failuresSection,
  thresholdsSection,
  modelSection,
  latencySection,
  throughputSection,
  errorsSection,
  saturationSection,
  engineSection,
];

/** Options of `renderHtmlReport`. */
export interface HtmlReportOptions {
  /** The sections to render, in order (default `DEFAULT_SECTIONS`). */
  sections?: readonly SectionBuilder[];
}

/**
 * Phases as x ranges, seconds: each run of equal `series[].phase` from its first second's start to the
 * next run's first second (the last run to the end of its last second).
 */
export function phaseRanges(series: LoadTestResult['series']): PhaseRange[] {
  const out: PhaseRange[] = [];
  for (const p of series) {
    const last = out[out.length - 1];
    if (last && last.phase === p.phase) last.to = p.t + 1;
    else {
      if (last) last.to = p.t;
      out.push({ phase: p.phase, from: p.t, to: p.t + 1 });
    }
  }
  return out;
}

/**
 * The shared time axis of a result: each second's point at the middle of its second (t + 0.5 s), the x
 * range from 0 to the end of the last second or the last sampler tick, and the phases.
 */
export function reportContext(result: LoadTestResult): ReportContext {
  const seconds = result.series.map((p) => p.t + 0.5);
  let end = result.series.reduce((m, p) => Math.max(m, p.t + 1), 1);
  for (const pts of Object.values(result.saturation?.series ?? {}))
    for (const [ms] of pts) end = Math.max(end, Math.round(ms) / 1000);
  return { result, seconds, xRange: [0, end], phases: phaseRanges(result.series) };
}

function chartFigure(c: ChartSpec): SafeHtml {
  const present = new Set<Phase>(c.phases.map((p) => p.phase));
  const swatches = (['ramp-up', 'steady', 'ramp-down'] as const)
    .filter((p) => present.has(p))
    .map((p) => html`<span class="swatch" style="background:${PHASE_FILL[p]}"></span>${p}`);
  const limit =
    c.limit !== undefined
      ? html`<span class="limit-swatch" style="border-color:${LIMIT_COLOR}"></span>${c.limitLabel ?? 'limit'}:
          ${c.limit}`
      : '';
  return html`<figure class="chart" id="chart-${c.id}">
    <h3>${c.title}</h3>
    <div class="plot" id="plot-${c.id}"></div>
    <figcaption>phases:${swatches}${limit}${c.note ? html` &mdash; ${c.note}` : ''}</figcaption>
  </figure>`;
}

function sectionHtml(s: ReportSection): SafeHtml {
  return html`<section id="${s.id}">
    <h2>${s.title}</h2>
    ${s.body ?? ''}${(s.charts ?? []).map(chartFigure)}
  </section> `;
}

/** `</script` or `</style` inside inlined code would end the element early. */

/**
 * Render the report of one result as a complete HTML document (UTF-8 text).
 * @param result a parsed result.json (`LoadTestResult`, schema version 1)
 * @throws Error when uPlot is not installed, or a section id or chart id repeats (a bug in a builder).
 */
export function renderHtmlReport(result: LoadTestResult, o: HtmlReportOptions = {}): string {
  const ctx = reportContext(result);
  const sections = (o.sections ?? DEFAULT_SECTIONS).map((b) => b(ctx)).filter((s): s is ReportSection => s !== null);
  const charts = sections.flatMap((s) => s.charts ?? []);
  const ids = [...sections.map((s) => `section ${s.id}`), ...charts.map((c) => `chart ${c.id}`)];
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new Error(`html report: ${dup} appears twice`);
  const data: ClientData = {
    xRange: ctx.xRange,
    phaseFill: PHASE_FILL,
    palette: PALETTE,
    limitColor: LIMIT_COLOR,
    charts,
  };
  return renderPage({
    title: `arena load test: ${result.settings.scenario.name}`,
    generator: `arena ${result.settings.engine.version}`,
    body: html`${sections.map(sectionHtml)}`,
    footer: `arena load engine ${result.settings.engine.version}; result.json schema version ${result.schemaVersion}; charts drawn with uPlot.`,
    data,
  });
}
