/**
 * Number formats of the HTML report (en-US, deterministic): durations in ms
 * with 2 decimals under 10, 1 under 1,000, none above; counts with thousands
 * separators; rates and percentages with fixed decimals. "-" for no value.
 */
import type { LoadTestResult } from '../engine/result-schema.js';

const fixed = (v: number, d: number) =>
  v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

/** A duration in ms, without the unit: `6.55`, `112.8`, `1,234`. */
export const fmtMs = (v: number | null | undefined): string =>
  v === null || v === undefined ? '-' : fixed(v, Math.abs(v) < 10 ? 2 : Math.abs(v) < 1000 ? 1 : 0);

/** A count: `1,018`. */
export const fmtInt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : fixed(v, 0));

/** A number with `d` decimals: `41.7`. */
export const fmtFixed = (v: number | null | undefined, d: number): string =>
  v === null || v === undefined ? '-' : fixed(v, d);

/** A fraction as a percentage without the sign: 0.12 -> `12.0` (`d` decimals, default 1). */
export const fmtPct = (v: number | null | undefined, d = 1): string =>
  v === null || v === undefined ? '-' : fixed(100 * v, d);

/** Bytes as MiB: `136`. */
export const fmtMiB = (bytes: number): string => fixed(bytes / 2 ** 20, 0);

/** A threshold's measured value: integers as counts, else up to 3 decimals. */
export const fmtValue = (v: number | null): string =>
  v === null ? '-' : Number.isInteger(v) ? fixed(v, 0) : (+v.toFixed(3)).toString();

/** A duration in ms as people say it: `500 ms`, `3 s`, `1.5 min`. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${fmtInt(ms)} ms`;
  if (ms < 120_000) return `${+(ms / 1000).toFixed(3)} s`;
  return `${+(ms / 60_000).toFixed(2)} min`;
}

/** The load model in words: `40/s poisson arrivals, maxVUs 19,744` or `10 VUs, think time 100 ms`. */
export function modelText(m: LoadTestResult['settings']['model']): string {
  if (m.type === 'open')
    return `open: ${+(m.rate ?? 0).toFixed(3)}/s ${m.arrivalProcess ?? ''} arrivals, maxVUs ${fmtInt(m.maxVUs ?? 0)}`;
  return `closed: ${fmtInt(m.vus ?? 0)} VUs${m.thinkTimeMs ? `, think time ${fmtDuration(m.thinkTimeMs)}` : ''}`;
}
