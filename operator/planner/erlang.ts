/**
 * Queueing formulas for a pool of identical servers fed by Poisson arrivals:
 * Erlang B and Erlang C (M/M/c), with the Allen-Cunneen correction for
 * general service-time distributions (M/G/c).
 *
 * Units: arrival rate in requests per second, service time in milliseconds,
 * waits returned in milliseconds. Pure functions, no I/O.
 *
 * Sources:
 * - A. K. Erlang, "Solution of some problems in the theory of probabilities of
 *   significance in automatic telephone exchanges" (1917): Erlang B and C.
 * - The Erlang B recursion B(0)=1, B(k)=a*B(k-1)/(k + a*B(k-1)), numerically
 *   stable for thousands of servers (Jagerman 1974).
 * - C = B / (1 - rho * (1 - B)), the B-to-C identity (Kleinrock, Queueing
 *   Systems vol. 1, 1975, section 3.5).
 * - Allen-Cunneen approximation Wq(M/G/c) ~= Wq(M/M/c) * (ca^2 + cs^2) / 2
 *   (A. O. Allen, Probability, Statistics and Queueing Theory, 2nd ed., 1990).
 */

/** The result of analysing one queue. Waits are in milliseconds. */
export interface QueueResult {
  /** Number of servers c (connections, slots, consumers). */
  servers: number;
  /** Arrival rate lambda, requests per second. */
  arrivalRatePerSecond: number;
  /** Mean service time 1/mu, milliseconds. */
  serviceTimeMs: number;
  /** Squared coefficient of variation of the service time (1 = exponential, 0 = constant). */
  serviceCv2: number;
  /** Offered load a = lambda * S, in Erlangs (mean busy servers if unbounded). */
  offeredLoad: number;
  /** Utilisation rho = a / c (0..1 when stable; >= 1 means the queue grows without bound). */
  utilization: number;
  /** True when rho < 1. */
  stable: boolean;
  /** Probability an arrival has to wait (Erlang C); 1 when unstable. */
  pWait: number;
  /** Mean wait in queue Wq, milliseconds; null when unstable (infinite). */
  meanWaitMs: number | null;
  /** 99th percentile of the wait in queue, milliseconds; null when unstable. */
  p99WaitMs: number | null;
}

/**
 * Offered load a = lambda * S in Erlangs (the mean number of busy servers if there were enough).
 * @param arrivalRatePerSecond lambda, requests per second.
 * @param serviceTimeMs mean service time S, milliseconds.
 */
export function offeredLoad(arrivalRatePerSecond: number, serviceTimeMs: number): number {
  return arrivalRatePerSecond * (serviceTimeMs / 1000);
}

/**
 * Erlang B blocking probability for `servers` servers and offered load `a` Erlangs.
 * @throws RangeError when servers is not a non-negative integer or a is negative.
 */
export function erlangB(servers: number, a: number): number {
  if (!Number.isInteger(servers) || servers < 0) {
    throw new RangeError(`servers must be a non-negative integer, got ${servers}`);
  }
  if (!(a >= 0)) throw new RangeError(`offered load must be >= 0, got ${a}`);
  let b = 1;
  for (let k = 1; k <= servers; k++) b = (a * b) / (k + a * b);
  return b;
}

/**
 * Erlang C: probability that an arrival waits, for `servers` servers and offered load `a` Erlangs.
 * Returns 1 when a >= servers (unstable queue: everyone waits eventually).
 * @throws RangeError on invalid arguments (see erlangB).
 */
export function erlangC(servers: number, a: number): number {
  if (servers === 0) return 1;
  const rho = a / servers;
  if (rho >= 1) return 1;
  const b = erlangB(servers, a);
  return b / (1 - rho * (1 - b));
}

/**
 * Analyse an M/G/c queue: Erlang C for P(wait), Allen-Cunneen for the mean wait,
 * and an exponential tail P(W > t) = C * exp(-theta * t) with
 * theta = (c*mu - lambda) * 2 / (ca^2 + cs^2) for the 99th percentile
 * (exact for M/M/c when cs^2 = 1; an approximation otherwise).
 *
 * @param servers c, a positive integer (0 gives an unstable queue when arrivals > 0).
 * @param arrivalRatePerSecond lambda, requests per second, >= 0.
 * @param serviceTimeMs mean service time, milliseconds, >= 0.
 * @param serviceCv2 squared coefficient of variation of the service time, >= 0 (default 1: M/M/c).
 * @throws RangeError on negative or non-finite inputs.
 */
export function analyzeQueue(
  servers: number,
  arrivalRatePerSecond: number,
  serviceTimeMs: number,
  serviceCv2 = 1,
): QueueResult {
  const inputs = { arrivalRatePerSecond, serviceTimeMs, serviceCv2 };
  for (const [name, v] of Object.entries(inputs)) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
  }
  if (!Number.isInteger(servers) || servers < 0) {
    throw new RangeError(`servers must be a non-negative integer, got ${servers}`);
  }
  const serviceS = serviceTimeMs / 1000;
  const a = offeredLoad(arrivalRatePerSecond, serviceTimeMs);
  const base = { servers, arrivalRatePerSecond, serviceTimeMs, serviceCv2, offeredLoad: a };
  if (a === 0) {
    return { ...base, utilization: 0, stable: true, pWait: 0, meanWaitMs: 0, p99WaitMs: 0 };
  }
  const rho = servers > 0 ? a / servers : Infinity;
  if (rho >= 1) {
    return { ...base, utilization: rho, stable: false, pWait: 1, meanWaitMs: null, p99WaitMs: null };
  }
  const c = erlangC(servers, a);
  const correction = (1 + serviceCv2) / 2; // (ca^2 + cs^2) / 2 with Poisson arrivals (ca^2 = 1)
  const drainPerSecond = servers / serviceS - arrivalRatePerSecond; // c*mu - lambda
  const meanWaitS = (c / drainPerSecond) * correction;
  const theta = drainPerSecond / correction;
  const p99WaitS = c <= 0.01 ? 0 : Math.log(c / 0.01) / theta;
  return {
    ...base,
    utilization: rho,
    stable: true,
    pWait: c,
    meanWaitMs: meanWaitS * 1000,
    p99WaitMs: p99WaitS * 1000,
  };
}

/**
 * Smallest number of servers whose M/G/c queue is stable and has P(wait) <= maxPWait.
 * @param maxPWait service-level target for the probability of waiting, in (0, 1].
 * @param limit give up above this many servers and return it.
 */
export function serversForWaitProbability(
  arrivalRatePerSecond: number,
  serviceTimeMs: number,
  maxPWait: number,
  limit = 100_000,
): number {
  const a = (arrivalRatePerSecond * serviceTimeMs) / 1000;
  let c = Math.max(1, Math.floor(a) + 1);
  while (c < limit && erlangC(c, a) > maxPWait) c++;
  return c;
}
