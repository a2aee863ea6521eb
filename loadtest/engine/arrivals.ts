/**
 * Open-model arrival schedules (pure): when each iteration is due, independent
 * of how fast the target answers.
 *
 * The offered rate is piecewise linear over stages (k6's ramping-arrival-rate
 * `stages`: each stage moves the rate linearly to its `target` over its
 * duration). Arrivals are placed by inverting the cumulative intensity
 * Lambda(t) = integral of rate: arrival k is at Lambda^-1(sum of k gaps), with
 * gaps of exactly 1 for `uniform` (evenly spaced, as k6's
 * constant-arrival-rate) and Exp(1) draws for `poisson` (a non-homogeneous
 * Poisson process by time change: Cinlar 1975, or Law & Kelton, "Simulation
 * Modeling and Analysis", section 8.6.2).
 *
 * Splitting a run over W workers: worker w draws at rate x 1/W. For Poisson
 * the superposition of W independent Poisson processes of rate r/W is a
 * Poisson process of rate r, so the total is exact; for uniform, worker w is
 * offset by w/W of a gap so the merged arrivals stay evenly spaced.
 */
import { exponential, type Random } from './random.js';

export type ArrivalProcess = 'poisson' | 'uniform';

/** One stage: move the rate linearly to `target` (per second) over `durationMs`. */
export interface RateStage {
  durationMs: number;
  target: number;
}

/** Options of an arrival schedule. */
export interface ArrivalOptions {
  /** Rate at t = 0, per second. */
  startRate: number;
  stages: readonly RateStage[];
  process: ArrivalProcess;
  /** Needed for poisson. */
  random?: Random;
  /** This worker's share of the rate (1/W) and its index (0..W-1). */
  share?: { index: number; of: number };
}

interface Segment {
  startMs: number;
  durationMs: number;
  /** Rates at the start and end, per ms (already multiplied by the share). */
  r0: number;
  r1: number;
  /** Lambda at the segment's start. */
  lambda0: number;
}

/**
 * An arrival schedule: `next()` returns the due time (ms since the start) of
 * the next arrival, in increasing order, or Infinity once the stages end.
 * @throws RangeError for a negative rate or duration, or poisson without a random source.
 */
export class ArrivalSchedule {
  private readonly segments: Segment[] = [];
  private readonly totalLambda: number;
  private readonly process: ArrivalProcess;
  private readonly random: Random | undefined;
  private lambda: number;
  private seg = 0;
  /** Number of arrivals returned so far. */
  count = 0;

  constructor(o: ArrivalOptions) {
    if (!(o.startRate >= 0)) throw new RangeError(`arrivals: startRate must be >= 0, got ${o.startRate}`);
    if (o.process === 'poisson' && !o.random) throw new RangeError('arrivals: poisson needs a random source');
    const share = o.share ? 1 / o.share.of : 1;
    let t = 0;
    let lambda = 0;
    let rate = o.startRate;
    for (const s of o.stages) {
      if (!(s.durationMs >= 0) || !(s.target >= 0))
        throw new RangeError(`arrivals: stage needs durationMs >= 0 and target >= 0, got ${JSON.stringify(s)}`);
      if (s.durationMs === 0) {
        rate = s.target;
        continue;
      }
      const seg: Segment = {
        startMs: t,
        durationMs: s.durationMs,
        r0: (rate * share) / 1000,
        r1: (s.target * share) / 1000,
        lambda0: lambda,
      };
      this.segments.push(seg);
      lambda += ((seg.r0 + seg.r1) / 2) * s.durationMs;
      t += s.durationMs;
      rate = s.target;
    }
    this.totalLambda = lambda;
    this.process = o.process;
    this.random = o.random;
    // uniform: worker w's arrivals sit at k + w/W in its own Lambda units, so the merged ones are evenly spaced
    this.lambda = o.process === 'uniform' && o.share ? o.share.index / o.share.of : 0;
    if (o.process === 'poisson') this.lambda = exponential(this.random!);
  }

  /** Expected number of arrivals of this schedule (Lambda at the end). */
  get expected(): number {
    return this.totalLambda;
  }

  /** The due time of the next arrival in ms since the start, or Infinity when the schedule is over. */
  next(): number {
    const target = this.lambda;
    if (target >= this.totalLambda) return Infinity;
    this.lambda += this.process === 'poisson' ? exponential(this.random!) : 1;
    while (this.seg < this.segments.length - 1) {
      const s = this.segments[this.seg]!;
      if (target < s.lambda0 + ((s.r0 + s.r1) / 2) * s.durationMs) break;
      this.seg++;
    }
    const s = this.segments[this.seg]!;
    this.count++;
    return s.startMs + invert(s, target - s.lambda0);
  }
}

/**
 * Time x in [0, D] into a segment where the integral of the rate from 0 to x
 * equals c: solves a x^2 + b x = c with a = (r1 - r0) / (2D), b = r0, in the
 * form x = 2c / (b + sqrt(b^2 + 4ac)), which stays accurate as a -> 0.
 */
function invert(s: Segment, c: number): number {
  const a = (s.r1 - s.r0) / (2 * s.durationMs);
  const b = s.r0;
  const disc = Math.max(0, b * b + 4 * a * c);
  const den = b + Math.sqrt(disc);
  if (den <= 0) return s.durationMs;
  return Math.min(s.durationMs, (2 * c) / den);
}

/** Phases of a run: ramp-up, steady, ramp-down (ms since the start). */
export interface Phases {
  rampUpMs: number;
  steadyMs: number;
  rampDownMs: number;
}

export type PhaseName = 'ramp-up' | 'steady' | 'ramp-down';

/** The phase of time t (ms since the start); times past the end count as ramp-down. */
export function phaseAt(p: Phases, t: number): PhaseName {
  if (t < p.rampUpMs) return 'ramp-up';
  if (t < p.rampUpMs + p.steadyMs) return 'steady';
  return 'ramp-down';
}

/** The stages for a ramp from 0 to `rate`, a steady phase at `rate`, and a ramp back to 0. */
export function rampStages(rate: number, p: Phases): RateStage[] {
  return [
    { durationMs: p.rampUpMs, target: rate },
    { durationMs: p.steadyMs, target: rate },
    { durationMs: p.rampDownMs, target: 0 },
  ];
}
