/**
 * Latency distributions from percentiles.
 *
 * An LLM call's time is modelled as lognormal (right-skewed, as measured LLM
 * latencies are), fitted through its median and 99th percentile:
 *   mu = ln(p50), sigma = ln(p99 / p50) / z_0.99, z_0.99 = 2.326348
 *   mean = exp(mu + sigma^2 / 2), cv^2 = exp(sigma^2) - 1
 * (standard lognormal moments; see e.g. Johnson, Kotz & Balakrishnan,
 * Continuous Univariate Distributions vol. 1, ch. 14).
 */

/** z-score of the 99th percentile of the standard normal distribution. */
export const Z99 = 2.3263478740408408;

/** Moments of a fitted lognormal, in the same unit as the percentiles (ms). */
export interface LatencyModel {
  p50: number;
  p99: number;
  sigma: number;
  meanMs: number;
  /** Squared coefficient of variation (variance / mean^2). */
  cv2: number;
}

/**
 * Fit a lognormal through p50 and p99 (ms, 0 < p50 <= p99).
 * @throws RangeError when the percentiles are not positive or p50 > p99.
 */
export function lognormalFromPercentiles(p50: number, p99: number): LatencyModel {
  if (!(p50 > 0) || !(p99 > 0) || p50 > p99) throw new RangeError(`need 0 < p50 <= p99, got p50=${p50} p99=${p99}`);
  const sigma = Math.log(p99 / p50) / Z99;
  return { p50, p99, sigma, meanMs: p50 * Math.exp((sigma * sigma) / 2), cv2: Math.expm1(sigma * sigma) };
}

/** One component of a service-time mixture: relative weight, mean (ms) and squared CV. */
export interface MixComponent {
  weight: number;
  meanMs: number;
  cv2: number;
}

/**
 * Mean and squared CV of a mixture of service times (a queue fed by several request kinds):
 *   E[S] = sum p_i m_i, E[S^2] = sum p_i (1 + cv2_i) m_i^2, cv2 = E[S^2] / E[S]^2 - 1.
 * Returns mean 0, cv2 1 for an empty mixture.
 */
export function mixture(components: MixComponent[]): { meanMs: number; cv2: number } {
  const total = components.reduce((s, c) => s + c.weight, 0);
  if (total <= 0) return { meanMs: 0, cv2: 1 };
  let m1 = 0;
  let m2 = 0;
  for (const c of components) {
    const p = c.weight / total;
    m1 += p * c.meanMs;
    m2 += p * (1 + c.cv2) * c.meanMs * c.meanMs;
  }
  return { meanMs: m1, cv2: m1 > 0 ? m2 / (m1 * m1) - 1 : 1 };
}
