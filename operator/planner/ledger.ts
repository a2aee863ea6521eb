/**
 * The derivation ledger: every number the planner computes is recorded with its
 * formula, its inputs and the source of the formula, so `arena plan --explain`
 * can show why each value is what it is. Pure bookkeeping, no I/O.
 */

import type { Derivation } from './types.js';

/** How one value was derived (its shape is `DerivationSchema` in types.ts). */
export type { Derivation };

/** Records derivations by dotted plan path (`connections.perPod`). Insertion order is kept for display. */
export class Ledger {
  readonly entries: Record<string, Derivation> = {};

  /** Record `value` under `path` and return it, so a computation reads as one expression. */
  record<T extends number | string | boolean | null>(path: string, value: T, d: Omit<Derivation, 'value'>): T {
    this.entries[path] = { value, ...d };
    return value;
  }
}

/** Round to `digits` decimals for stable output (plans are compared as golden files). */
export function round(n: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * ceil() that ignores floating-point noise: 25.000000001 (from a sum of rates
 * times times) is 25, not 26. Tolerance 1e-9 relative.
 */
export function ceilCount(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : Math.ceil(x);
}
