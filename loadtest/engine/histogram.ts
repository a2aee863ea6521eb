/**
 * Latency histograms: HdrHistogram (hdr-histogram-js) from 1 us to 10 min at 3
 * significant digits, values recorded in microseconds and reported in
 * milliseconds. Histograms add exactly, so worker threads (and machines)
 * merge without approximation; the encoded form is HdrHistogram's compressed
 * base64 (V2 encoding, the same as the Java and Go implementations).
 */
import * as hdr from 'hdr-histogram-js';

/** Lowest and highest trackable values (us) and precision. */
export const HISTOGRAM_RANGE = { lowestUs: 1, highestUs: 600_000_000, significantDigits: 3 } as const;

export type Histogram = hdr.Histogram;

/**
 * A new histogram. Dense (32-bit counts, about 85 KiB, the fastest to record
 * and encode) unless `packed` (a sparse array: a few hundred bytes for a
 * second's worth of samples, three times slower to record).
 */
export function newHistogram(packed = false): Histogram {
  return hdr.build({
    lowestDiscernibleValue: HISTOGRAM_RANGE.lowestUs,
    highestTrackableValue: HISTOGRAM_RANGE.highestUs,
    numberOfSignificantValueDigits: HISTOGRAM_RANGE.significantDigits,
    bitBucketSize: packed ? 'packed' : 32,
    autoResize: false,
  });
}

/** Record a duration in ms (clamped to the trackable range). */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(
    us < HISTOGRAM_RANGE.lowestUs
      ? HISTOGRAM_RANGE.lowestUs
      : us > HISTOGRAM_RANGE.highestUs
        ? HISTOGRAM_RANGE.highestUs
        : us,
  );
}

/** The compressed base64 encoding of a histogram. */
export function encode(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Decode an encoded histogram (dense, so it can be added to). @throws Error on a malformed string. */
export function decode(s: string): Histogram {
  const h = newHistogram();
  h.add(hdr.decodeFromCompressedBase64(s, 32, false));
  return h;
}

/** The sum of encoded histograms (exact). */
export function mergeEncoded(encoded: readonly string[]): Histogram {
  const h = newHistogram();
  for (const s of encoded) h.add(hdr.decodeFromCompressedBase64(s, 32, false));
  return h;
}

/** Summary of a histogram in ms: count, min, mean, P50, P90, P95, P99, P99.9, max. */
export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const ms = (us: number) => Math.round(us) / 1000;

/**
 * Percentiles of a histogram in ms (HdrHistogram's: the highest value
 * equivalent to the recorded value at that rank; exact to 3 significant digits).
 * An empty histogram gives count 0 and zeros.
 */
export function percentiles(h: Histogram): Percentiles {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    min: ms(h.minNonZeroValue),
    mean: Math.round(h.mean) / 1000,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** The value at percentile p (0 < p <= 100) in ms. */
export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount === 0 ? 0 : ms(h.getValueAtPercentile(p));
}

/**
 * Percentiles of raw values (ms) by the nearest-rank method: the value at rank
 * ceil(p/100 x n) of the sorted values (sorts `values` in place). Exact, and
 * for one second's samples cheaper than building a histogram.
 */
export function percentilesOf(values: Float64Array): Percentiles {
  const n = values.length;
  if (n === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  values.sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const at = (p: number) => Math.round(values[Math.min(n, Math.max(1, Math.ceil((p / 100) * n))) - 1]! * 1000) / 1000;
  return {
    count: n,
    min: at(0),
    mean: Math.round((sum / n) * 1000) / 1000,
    p50: at(50),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    p999: at(99.9),
    max: Math.round(values[n - 1]! * 1000) / 1000,
  };
}

/** A histogram of raw values in ms (for the per-second encoded form). */
export function histogramOf(values: Float64Array, into: Histogram = newHistogram()): Histogram {
  into.reset();
  for (let i = 0; i < values.length; i++) recordMs(into, values[i]!);
  return into;
}
