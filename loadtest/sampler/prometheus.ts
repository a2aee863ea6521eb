/**
 * The API's queue waits from its Prometheus `/metrics` (the reference API's
 * `arena_llm_slot_wait_seconds`, `arena_db_pool_wait_seconds`,
 * `arena_llm_permit_wait_seconds` histograms and `arena_llm_calls_total`):
 * scraped once when the steady phase starts and once when it ends; the
 * difference of the two cumulative histograms is the steady phase's
 * distribution. Quantiles are interpolated linearly inside a bucket, as
 * Prometheus' `histogram_quantile()` does (Prometheus docs, "Histograms and
 * summaries"), so they are as fine as the buckets (WAIT_BUCKETS in
 * loadtest/api/metrics.ts).
 */
import { request } from 'undici';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** A cumulative histogram: upper bounds (seconds, ascending, the last +Inf) with cumulative counts, plus sum (s) and count. */
export interface PromHistogram {
  bounds: number[];
  cumulative: number[];
  sumSeconds: number;
  count: number;
}

/** One scrape: histograms, counters and gauges by metric name (label sets summed). */
export interface PromSnapshot {
  histograms: Record<string, PromHistogram>;
  counters: Record<string, number>;
  gauges: Record<string, number>;
}

/** The histograms a run reads, by the queue each measures. */
export const WAIT_HISTOGRAMS = {
  llmSlots: 'arena_llm_slot_wait_seconds',
  appDbPool: 'arena_db_pool_wait_seconds',
  llmRateLimit: 'arena_llm_permit_wait_seconds',
} as const;

/** The API's HTTP-worker event-loop delay histogram (not a queue the planner models: read beside them). */
export const EVENT_LOOP_HISTOGRAM = 'arena_event_loop_delay_seconds';

/** Parse a /metrics body into histograms and counters, summing over label sets. */
export function parseSnapshot(text: string): PromSnapshot {
  const snap: PromSnapshot = { histograms: {}, counters: {}, gauges: {} };
  for (const fam of parsePrometheusTextFormat(text)) {
    if (fam.type === 'HISTOGRAM') {
      const byBound = new Map<number, number>();
      let sum = 0;
      let count = 0;
      for (const m of fam.metrics) {
        for (const [le, c] of Object.entries(m.buckets ?? {})) {
          const b = le === '+Inf' ? Infinity : Number(le);
          byBound.set(b, (byBound.get(b) ?? 0) + Number(c));
        }
        sum += Number(m.sum ?? 0);
        count += Number(m.count ?? 0);
      }
      const bounds = [...byBound.keys()].sort((a, b) => a - b);
      if (bounds[bounds.length - 1] !== Infinity) {
        bounds.push(Infinity);
        byBound.set(Infinity, count);
      }
      snap.histograms[fam.name] = { bounds, cumulative: bounds.map((b) => byBound.get(b)!), sumSeconds: sum, count };
    } else if (fam.type === 'COUNTER' || fam.type === 'GAUGE') {
      const total = fam.metrics.reduce((s, m) => s + Number(m.value ?? 0), 0);
      (fam.type === 'COUNTER' ? snap.counters : snap.gauges)[fam.name] = total;
    }
  }
  return snap;
}

/**
 * GET `url` (the API's /metrics) and parse it.
 * @throws Error when the request fails, times out or answers non-200.
 */
export async function scrape(url: string, timeoutMs = 3000): Promise<PromSnapshot> {
  const r = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${r.statusCode}`);
  return parseSnapshot(text);
}

/** `later - earlier` of one histogram (the observations between the two scrapes); null when either lacks it or the buckets differ. */
export function histogramDelta(
  earlier: PromHistogram | undefined,
  later: PromHistogram | undefined,
): PromHistogram | null {
  if (!earlier || !later || earlier.bounds.length !== later.bounds.length) return null;
  if (earlier.bounds.some((b, i) => b !== later.bounds[i])) return null;
  return {
    bounds: later.bounds,
    cumulative: later.cumulative.map((c, i) => c - earlier.cumulative[i]!),
    sumSeconds: later.sumSeconds - earlier.sumSeconds,
    count: later.count - earlier.count,
  };
}

/**
 * The q-quantile (0..1) of a cumulative histogram in seconds, interpolated
 * linearly inside its bucket (Prometheus histogram_quantile: the first bucket
 * starts at 0; a quantile in the +Inf bucket returns the largest finite bound).
 * @returns null for an empty histogram.
 */
export function bucketQuantile(h: PromHistogram, q: number): number | null {
  if (h.count <= 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) {
    const c = h.cumulative[i]!;
    if (c < rank) continue;
    const upper = h.bounds[i]!;
    const lower = i === 0 ? 0 : h.bounds[i - 1]!;
    if (upper === Infinity) return lower;
    const below = i === 0 ? 0 : h.cumulative[i - 1]!;
    const inBucket = c - below;
    return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return h.bounds.length > 1 ? h.bounds[h.bounds.length - 2]! : null;
}

/** One queue's wait over the steady phase, from the difference of two scrapes. Times in ms. */
export interface SteadyWait {
  /** Waits observed (checkouts, slot acquisitions, permits). */
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

/** The API's steady-phase waits by queue (`WAIT_HISTOGRAMS` keys) and its LLM calls (all outcomes). */
export interface SteadyWaits {
  /** The window, ms since the engine's start. */
  fromMs: number;
  toMs: number;
  queues: Partial<Record<keyof typeof WAIT_HISTOGRAMS, SteadyWait>>;
  /** The HTTP workers' event-loop delay (EVENT_LOOP_HISTOGRAM), when the API exposes it. */
  eventLoopDelay?: SteadyWait;
  /** LLM calls started in the window (arena_llm_calls_total), or null when not exposed. */
  llmCalls: number | null;
  /** CPU seconds the HTTP workers used in the window (HTTP_WORKER_CPU_COUNTER), when the API exposes it. */
  httpWorkerCpuSeconds?: number;
}

/** The HTTP workers' CPU time counter (the reference API's; loadtest/api/metrics.ts). */
export const HTTP_WORKER_CPU_COUNTER = 'arena_http_worker_cpu_seconds_total';

const ms3 = (s: number | null) => (s === null ? null : Math.round(s * 1e6) / 1e3);

/** The steady phase's waits from the scrapes at its start (`before`) and its end (`after`). */
export function steadyWaits(before: PromSnapshot, after: PromSnapshot, fromMs: number, toMs: number): SteadyWaits {
  const steady = (name: string): SteadyWait | undefined => {
    const d = histogramDelta(before.histograms[name], after.histograms[name]);
    if (!d) return undefined;
    return {
      count: d.count,
      meanMs: d.count > 0 ? ms3(d.sumSeconds / d.count) : null,
      p50Ms: ms3(bucketQuantile(d, 0.5)),
      p99Ms: ms3(bucketQuantile(d, 0.99)),
    };
  };
  const queues: SteadyWaits['queues'] = {};
  for (const [queue, name] of Object.entries(WAIT_HISTOGRAMS) as [keyof typeof WAIT_HISTOGRAMS, string][]) {
    const w = steady(name);
    if (w) queues[queue] = w;
  }
  const eventLoopDelay = steady(EVENT_LOOP_HISTOGRAM);
  const counterDelta = (name: string): number | null =>
    before.counters[name] !== undefined && after.counters[name] !== undefined
      ? after.counters[name] - before.counters[name]
      : null;
  const llmCalls = counterDelta('arena_llm_calls_total');
  const cpu = counterDelta(HTTP_WORKER_CPU_COUNTER);
  return {
    fromMs,
    toMs,
    queues,
    ...(eventLoopDelay ? { eventLoopDelay } : {}),
    llmCalls,
    ...(cpu === null ? {} : { httpWorkerCpuSeconds: Math.round(cpu * 1000) / 1000 }),
  };
}
