/**
 * The building blocks of the HTML report (`loadtest/report/html.ts`): a page
 * is a list of sections, each some server-rendered HTML and zero or more
 * charts. A chart is data only (a `ChartSpec`), drawn in the browser by one
 * generic function; to add a chart or a section, write a `SectionBuilder`
 * and append it to the list given to `renderHtmlReport`.
 */
import type { LoadTestResult } from '../engine/result-schema.js';
import type { SafeHtml } from './html-template.js';

/** A phase of the run. */
export type Phase = 'ramp-up' | 'steady' | 'ramp-down';

/** A shaded x-range of every chart: one phase of the run, seconds since the start, [from, to). */
export interface PhaseRange {
  phase: Phase;
  from: number;
  to: number;
}

/** One line of a chart: `values[i]` is the value at the chart's `x[i]`; null is a gap (no data). */
export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** Canvas line dash, e.g. [6, 4]; solid when absent. */
  dash?: number[];
  /** A CSS colour; a fixed palette by position when absent. */
  color?: string;
}

/**
 * A time chart on the report's shared x axis (seconds since the start of the
 * run; every chart shows the same x range and follows the same cursor).
 */
export interface ChartSpec {
  /** Unique in the page, [a-z0-9_.-]; the chart's element is `#chart-<id>`. */
  id: string;
  title: string;
  /** What the y axis measures, e.g. "latency"; shown with the unit. */
  yLabel: string;
  /** The y unit, e.g. "ms", "req/s", "connections". */
  unit: string;
  /** x of every point, seconds since the start of the run (`series[i].t + 0.5`, or a sampler tick's ms / 1000). */
  x: number[];
  series: ChartSeries[];
  /** Drawn as a horizontal dashed line (a pool's size, a bound), in the y unit. */
  limit?: number;
  /** The label of `limit` in the caption (default "limit"). */
  limitLabel?: string;
  /** The phases to shade (normally the whole run's, `ReportContext.phases`). */
  phases: PhaseRange[];
  /** A line of text under the chart. */
  note?: string;
}

/** A part of the page: a heading, HTML (already escaped), then its charts in order. */
export interface ReportSection {
  /** Unique in the page, [a-z0-9_-]; the section's element id. */
  id: string;
  title: string;
  body?: SafeHtml;
  charts?: ChartSpec[];
}

/** What every section builder gets: the result and the shared time axis. */
export interface ReportContext {
  result: LoadTestResult;
  /** x of the per-second points, seconds since the start: `result.series[i].t + 0.5` (the middle of the second it sums up). */
  seconds: number[];
  /** The x range every chart shows, seconds: [0, end of the last second or sampler tick]. */
  xRange: [number, number];
  /** The run's phases, from `result.series[].phase`. */
  phases: PhaseRange[];
}

/** Builds one section of the page, or null when the result has nothing for it (no saturation data, ...). */
export type SectionBuilder = (ctx: ReportContext) => ReportSection | null;
