/**
 * The plan's arrival rate per request kind, for a scenario built from an
 * ArenaDeployment's request mix: the load `arena loadtest run -f F
 * --from-plan` offers and `arena loadtest export k6 -f F` writes.
 */
import type { CapacityPlan } from '../../operator/planner/types.js';
import type { Scenario } from './scenario.js';

/**
 * Arrivals per second of each of the scenario's requests, from a plan's
 * `workload.kinds` (one kind per requestMix entry), keyed by request name.
 * @returns the rates, or the first request that is not a kind of the plan (the caller words the error).
 */
export function planRates(
  kinds: CapacityPlan['workload']['kinds'],
  scenario: Scenario,
): { rates: Record<string, number> } | { missing: string } {
  const rates: Record<string, number> = {};
  for (const r of scenario.requests) {
    const k = kinds[r.name];
    if (!k) return { missing: r.name };
    rates[r.name] = k.arrivalRatePerSecond;
  }
  return { rates };
}
