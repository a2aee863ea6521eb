/**
 * Seeded randomness for the engine: one xoroshiro128+ stream (pure-rand) per
 * worker thread, so a run with the same seed and worker count draws the same
 * arrival gaps, request choices and LLM latencies.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { Z99 } from '../../operator/planner/latency.js';

/** A source of uniform numbers in [0, 1). */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/**
 * The random stream of worker `index` for `seed`: xoroshiro128+ seeded with
 * `seed`, jumped `index` times (each jump = 2^64 draws), so workers' streams
 * never overlap.
 */
export function randomStream(seed: number, index = 0): Random {
  const g = xoroshiro128plus(seed | 0);
  for (let i = 0; i < index; i++) g.jump();
  return { next: () => uniformFloat64(g) };
}

/** An exponential draw with mean 1 (inversion: -ln(1 - U)). */
export function exponential(r: Random): number {
  return -Math.log(1 - r.next());
}

/** A standard normal draw (Box-Muller, one of the pair). */
export function standardNormal(r: Random): number {
  const u1 = 1 - r.next(); // (0, 1]
  const u2 = r.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * A lognormal sampler fitted to a p50 and p99 in ms (the planner's fit,
 * operator/planner/latency.ts: mu = ln p50, sigma = ln(p99/p50) / z99), draws
 * capped at 5 x p99 as the reference API caps its own. Returns whole ms.
 * @throws RangeError when p50 <= 0 or p99 < p50.
 */
export function lognormalSampler(p50: number, p99: number, r: Random): () => number {
  if (!(p50 > 0) || !(p99 >= p50)) throw new RangeError(`lognormal: need 0 < p50 <= p99, got p50 ${p50}, p99 ${p99}`);
  const mu = Math.log(p50);
  const sigma = Math.log(p99 / p50) / Z99;
  const cap = 5 * p99;
  return () => Math.min(cap, Math.round(Math.exp(mu + sigma * standardNormal(r))));
}
