/**
 * What the engine measures, per request name (the `scenario` tag): trends
 * (HDR histograms, ms), counters and failures by reason, kept twice, for the
 * steady phase (the headline figures) and for the current second (the time
 * series). Worker threads record; the main thread merges (histograms add
 * exactly, counters sum).
 *
 * Definitions (docs/loadtest.md, "Metrics"):
 * - `http_req_duration`: scheduled start of the iteration to the end of the
 *   response (for SSE: the end of the stream; for a task: the submit
 *   response). In the open model the scheduled start is where the arrival was
 *   due, so time the engine or the target made it wait counts (no
 *   coordinated omission). `http_req_duration_expected`: the same for
 *   responses with an expected status (k6's `{expected_response:true}`).
 * - `ttft`: scheduled start to the first token event; `itl`: the gap between
 *   consecutive token events (the first token excluded); `tpot`: (e2e - ttft)
 *   / (tokens - 1) per stream with >= 2 tokens; `e2e_latency`: scheduled start
 *   to the end of the stream.
 * - `task_queue_wait`: the task's started - created times as the server
 *   reports them; `task_e2e`: scheduled start to the poll that saw it done.
 * - `schedule_lag`: actual start - scheduled start (how late the engine was).
 */
import { encode, newHistogram, recordMs, type Histogram } from './histogram.js';

export const TRENDS = [
  'http_req_duration',
  'http_req_duration_expected',
  'ttft',
  'itl',
  'tpot',
  'e2e_latency',
  'task_queue_wait',
  'task_e2e',
  'schedule_lag',
] as const;
export type TrendName = (typeof TRENDS)[number];

export const COUNTERS = [
  'http_reqs',
  'http_req_failed',
  'iterations',
  'dropped_iterations',
  'interrupted_iterations',
  'tokens',
  'streams_cut_short',
  'task_polls',
  'good_iterations',
] as const;
export type CounterName = (typeof COUNTERS)[number];

/** Counters as a record (all present, zero by default). */
export type Counters = Record<CounterName, number>;

export const zeroCounters = (): Counters => Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counters;

/** One scenario's data for a span of time, as sent between threads: encoded histograms (non-empty only), counters, failures. */
export interface MetricData {
  trends: Partial<Record<TrendName, string>>;
  counters: Counters;
  failures: Record<string, number>;
}

/** The steady phase's set: dense HDR histograms, counters, failures. */
class MetricSet {
  readonly trends: Record<TrendName, Histogram>;
  readonly counters: Counters = zeroCounters();
  readonly failures = new Map<string, number>();

  constructor() {
    this.trends = Object.fromEntries(TRENDS.map((t) => [t, newHistogram()])) as Record<TrendName, Histogram>;
  }

  data(): MetricData {
    const trends: MetricData['trends'] = {};
    for (const t of TRENDS) if (this.trends[t].totalCount > 0) trends[t] = encode(this.trends[t]);
    return { trends, counters: { ...this.counters }, failures: Object.fromEntries(this.failures) };
  }
}

/** A growable buffer of float64 values (one per sample of the current second). */
class Samples {
  private buf = new Float64Array(256);
  length = 0;

  push(x: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = x;
  }

  /** The values so far (a copy that can be transferred), and start over. */
  take(): Float64Array {
    const out = this.buf.slice(0, this.length);
    this.length = 0;
    return out;
  }
}

/**
 * One scenario's samples of one second, as a worker sends them: the raw values
 * of each trend (ms; transferable buffers, merged and summarised by the main
 * thread), counters and failures.
 */
export interface SecondData {
  trends: Partial<Record<TrendName, Float64Array>>;
  counters: Counters;
  failures: Record<string, number>;
}

/**
 * The recorder of one scenario in one worker. `steady` says whether the
 * iteration's scheduled start fell in the steady phase (those values go to
 * the steady phase's histograms); every value also goes to the current second
 * as a raw sample, so the hot path never encodes a histogram.
 */
export class ScenarioMetrics {
  private readonly steadySet = new MetricSet();
  private readonly second = Object.fromEntries(TRENDS.map((t) => [t, new Samples()])) as Record<TrendName, Samples>;
  private secondCounters: Counters = zeroCounters();
  private secondFailures = new Map<string, number>();
  /** Counters over every phase (for totals and the progress line). */
  readonly total: Counters = zeroCounters();

  constructor(readonly name: string) {}

  trend(t: TrendName, ms: number, steady: boolean): void {
    this.second[t].push(ms);
    if (steady) recordMs(this.steadySet.trends[t], ms);
  }

  count(c: CounterName, steady: boolean, n = 1): void {
    this.secondCounters[c] += n;
    this.total[c] += n;
    if (steady) this.steadySet.counters[c] += n;
  }

  /** A failed request: counts http_req_failed and its reason (`http_503 llm_slots_busy`, `timeout`, `refused`, ...). */
  fail(reason: string, steady: boolean): void {
    this.count('http_req_failed', steady);
    this.secondFailures.set(reason, (this.secondFailures.get(reason) ?? 0) + 1);
    if (steady) this.steadySet.failures.set(reason, (this.steadySet.failures.get(reason) ?? 0) + 1);
  }

  /** The current second's samples; the second starts over. */
  flushSecond(): SecondData {
    const trends: SecondData['trends'] = {};
    for (const t of TRENDS) if (this.second[t].length > 0) trends[t] = this.second[t].take();
    const d = { trends, counters: this.secondCounters, failures: Object.fromEntries(this.secondFailures) };
    this.secondCounters = zeroCounters();
    this.secondFailures = new Map();
    return d;
  }

  /** The steady phase's data (histograms encoded). */
  steady(): MetricData {
    return this.steadySet.data();
  }
}

/** Sum counters into `into`. */
export function addCounters(into: Counters, c: Readonly<Counters>): Counters {
  for (const k of COUNTERS) into[k] += c[k] ?? 0;
  return into;
}

/** Sum failure counts into `into`. */
export function addFailures(into: Record<string, number>, f: Readonly<Record<string, number>>): Record<string, number> {
  for (const [k, v] of Object.entries(f)) into[k] = (into[k] ?? 0) + v;
  return into;
}
