/**
 * The settings of one run, as the CLI builds them and the worker threads
 * receive them (plain data: it crosses `postMessage`).
 */
import type { ArrivalProcess, Phases } from './arrivals.js';
import type { Scenario } from './scenario.js';

/** The open model (k6's constant-arrival-rate / ramping-arrival-rate): arrivals at `rate` per second, independent of responses. */
export interface OpenModel {
  type: 'open';
  /** Arrivals per second in the steady phase (all workers together). */
  rate: number;
  process: ArrivalProcess;
  /** Cap on iterations in flight (all workers together); an arrival beyond it is a dropped iteration. */
  maxVUs: number;
}

/** The closed model (k6's constant-vus / ramping-vus): `vus` loops, each one iteration at a time. */
export interface ClosedModel {
  type: 'closed';
  vus: number;
  /** Pause after each iteration, ms. */
  thinkTimeMs: number;
}

export type LoadModel = OpenModel | ClosedModel;

/** Everything a worker needs. */
export interface RunConfig {
  /** Target origin and optional base path, e.g. `http://127.0.0.1:18000` or `http://127.0.0.1:8080/api-prefix`. */
  target: string;
  scenario: Scenario;
  model: LoadModel;
  phases: Phases;
  /** Time in-flight iterations get to finish once arrivals stop, ms (k6's gracefulStop). */
  gracefulStopMs: number;
  /** Seed of the random streams (arrival gaps, request choice, LLM latency draws). */
  seed: number;
  /** Worker threads. */
  workers: number;
  /** Per-second histograms of every trend are kept in the result (true), or only their percentiles. */
  keepSecondHistograms: boolean;
  /**
   * This process's shard of a run split over processes (`--shard i/N`): its
   * worker threads take the slots i x workers .. (i+1) x workers - 1 of
   * N x workers, so the shards' arrivals and VUs add up to the model's.
   */
  shard?: { index: number; of: number };
  /** The common start of all shards, epoch ms (`--start-at`); the engine starts then, or as soon as ready when later. */
  startAt?: number;
}

/** The arrival/VU slot of worker `index` in the whole (sharded) run, and the number of slots. */
export function slotOf(c: Pick<RunConfig, 'workers' | 'shard'>, index: number): { slot: number; slots: number } {
  const shard = c.shard ?? { index: 0, of: 1 };
  return { slot: shard.index * c.workers + index, slots: shard.of * c.workers };
}

/** k6's executor name for a model and its phases. */
export function executorName(c: Pick<RunConfig, 'model' | 'phases'>): string {
  const ramps = c.phases.rampUpMs > 0 || c.phases.rampDownMs > 0;
  if (c.model.type === 'open') return ramps ? 'ramping-arrival-rate' : 'constant-arrival-rate';
  return ramps ? 'ramping-vus' : 'constant-vus';
}

/** The whole schedule, ms: ramp-up + steady + ramp-down. */
export const scheduleMs = (p: Phases) => p.rampUpMs + p.steadyMs + p.rampDownMs;
