/**
 * ELO ratings with integer points. The update is zero-sum by construction: the
 * proponent gains `delta`, the opponent loses the same `delta`, so the sum of
 * all ratings stays `INITIAL_RATING * competitors` whatever the order of the
 * matches (the invariant the concurrency tests check).
 */

/** Rating of a competitor that has not played yet. */
export const INITIAL_RATING = 1500;
/** K-factor: the largest change one match can make. */
export const K_FACTOR = 32;

export type Winner = 'proponent' | 'opponent' | 'draw';

/** Expected score of A against B (0..1): 1 / (1 + 10^((Rb - Ra) / 400)). */
export function expectedScore(ratingA: number, ratingB: number): number {
  return 1 / (1 + 10 ** ((ratingB - ratingA) / 400));
}

/**
 * Rating change of the proponent (the opponent gets the negative).
 * @returns an integer in [-K_FACTOR, K_FACTOR].
 */
export function eloDelta(proponentRating: number, opponentRating: number, winner: Winner): number {
  const score = winner === 'proponent' ? 1 : winner === 'opponent' ? 0 : 0.5;
  return Math.round(K_FACTOR * (score - expectedScore(proponentRating, opponentRating)));
}
