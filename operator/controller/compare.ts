/**
 * Does the live object already hold what we would apply? Used to skip a
 * server-side apply when nothing changed, so a no-op reconcile makes no write.
 *
 * `desired` must be a subset of `live`: every field we set has the same value
 * live (the apiserver adds defaults and status; those are ignored). Lists must
 * have the same length and match element by element. Strings that are both
 * Kubernetes quantities compare by value, because the apiserver canonicalises
 * them ("2000m" is stored as "2", "2048Mi" as "2Gi").
 */

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity string ("500m", "2Gi", "1.5"), or undefined if it is not one. */
export function quantityValue(s: string): number | undefined {
  const m = /^([+-]?\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(s);
  if (!m) return undefined;
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}

function sameScalar(d: unknown, l: unknown): boolean {
  if (d === l) return true;
  if (typeof d === 'string' && typeof l === 'string') {
    const a = quantityValue(d);
    const b = quantityValue(l);
    return a !== undefined && b !== undefined && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
  }
  return false;
}

/** True when every field of `desired` is present with an equal value in `live`. */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => isSubset(d, live[i]));
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
    return Object.entries(desired).every(
      ([k, v]) => v === undefined || isSubset(v, (live as Record<string, unknown>)[k]),
    );
  }
  return sameScalar(desired, live);
}
