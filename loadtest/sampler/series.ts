/**
 * Time series of sampled figures and their utilisation summaries (pure).
 *
 * A series is `[[tMs, value], ...]` with tMs the time since the sampler
 * started; `value` is null for a tick where the target could not be read (the
 * gap stays visible). Utilisation = value / limit, as a fraction (0.5 = 50 %).
 */
import type { FigureSummary, Point } from './result-schema.js';

// Defined with the result's schema (result-schema.ts), so the published schema and these types cannot drift.
export type { FigureSummary, Point } from './result-schema.js';

/**
 * The p-th percentile (0 < p <= 100) by the nearest-rank method: the value at
 * rank ceil(p/100 x n) of the sorted values. null for no values.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile: p must be in (0, 100], got ${p}`);
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The values of a series, gaps (null) left out. */
export function values(series: readonly Point[]): number[] {
  return series.flatMap(([, v]) => (v === null || !Number.isFinite(v) ? [] : [v]));
}

/** value / limit, or null when either is missing or the limit is not > 0. */
export function utilization(value: number | null, limit: number | null): number | null {
  if (value === null || limit === null || !(limit > 0)) return null;
  return value / limit;
}

/** Peak, P95 and their utilisation against `limit`. */
export function summarize(series: readonly Point[], limit: number | null): FigureSummary {
  const vs = values(series);
  const peak = vs.length ? Math.max(...vs) : null;
  const p95 = percentile(vs, 95);
  return {
    limit,
    peak,
    p95,
    peakUtilization: utilization(peak, limit),
    p95Utilization: utilization(p95, limit),
    samples: vs.length,
    missing: series.length - vs.length,
  };
}

/**
 * The figure that saturates first: the highest peak utilisation among figures
 * with a limit (ties: the first in `summaries` order). null when none has one.
 */
export function saturatesFirst(
  summaries: Record<string, FigureSummary>,
): { figure: string; peakUtilization: number } | null {
  let best: { figure: string; peakUtilization: number } | null = null;
  for (const [figure, s] of Object.entries(summaries)) {
    if (s.peakUtilization === null) continue;
    if (!best || s.peakUtilization > best.peakUtilization) best = { figure, peakUtilization: s.peakUtilization };
  }
  return best;
}
