/**
 * The metric model shared by the engine, the result and the thresholds.
 *
 * Names follow k6 (`http_req_duration`, `http_req_failed`, `http_reqs`,
 * `iterations`, `dropped_iterations`) and the LLM-serving benchmarks (`ttft`,
 * `itl`, `tpot`, `e2e_latency`). Every duration is in milliseconds.
 */

/** A trend (k6's name for a distribution): an HDR histogram summarised. All values in ms. */
export interface TrendValue {
  type: 'trend';
  count: number;
  min: number;
  mean: number;
  max: number;
  /** The value at percentile p (0 < p <= 100), ms; from the exact HDR histogram. */
  percentile(p: number): number;
}

/** A rate: the share of true values among `total` (k6 Rate), e.g. http_req_failed. */
export interface RateValue {
  type: 'rate';
  /** trues / total; 0 when total is 0. */
  rate: number;
  trues: number;
  total: number;
}

/** A counter (k6 Counter): a count and its rate per second over the phase it was counted in. */
export interface CounterValue {
  type: 'counter';
  count: number;
  /** count / seconds of the phase. */
  ratePerSecond: number;
}

/** A gauge (k6 Gauge) over a series of points: its last, min and max value. */
export interface GaugeValue {
  type: 'gauge';
  value: number;
  min: number;
  max: number;
  /** The value at percentile p of the points (nearest rank), for `p(95)` on gauges. */
  percentile(p: number): number;
}

export type MetricValue = TrendValue | RateValue | CounterValue | GaugeValue;

/**
 * How thresholds read a run: the value of `metric` restricted to `tags`
 * (e.g. `{scenario: 'read'}`, `{pool: 'pgbouncer_server'}`, `{}` for the whole
 * run), or undefined when the run has no such metric/tag combination.
 */
export type MetricLookup = (metric: string, tags: Readonly<Record<string, string>>) => MetricValue | undefined;
