/**
 * The plan's arrival rate per request kind of an ArenaDeployment, for a
 * scenario built from its request mix: the load `arena loadtest run -f F
 * --from-plan` offers (at --scale 1: the plan at spec.load.targetConcurrency).
 */
import { InvalidInputError } from '../../lib/errors.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { plan } from '../../operator/planner/plan.js';
import type { Scenario } from '../engine/scenario.js';

/**
 * Arrivals per second of each of the scenario's requests, from the plan of
 * `ad` (operator/planner: one kind per requestMix entry), keyed by request name.
 * @throws InvalidInputError naming `file` when a request is not a request kind of the file.
 */
export function planRates(ad: ArenaDeployment, scenario: Scenario, file: string): Record<string, number> {
  const kinds = plan(ad).workload.kinds;
  const rates: Record<string, number> = {};
  for (const r of scenario.requests) {
    const k = kinds[r.name];
    if (!k)
      throw new InvalidInputError(
        `${file}: the scenario's request ${r.name} is not a request kind of the file (kinds: ${Object.keys(kinds).join(', ')})`,
      );
    rates[r.name] = k.arrivalRatePerSecond;
  }
  return rates;
}
