/**
 * The workload at a given concurrency, by Little's law (L = lambda * W;
 * J. D. C. Little, "A proof for the queuing formula L = lambda W", 1961).
 *
 * Model: `concurrency` requests are in flight (a closed population, as k6 VUs or
 * users waiting on answers). Each request is drawn from the mix with probability
 * weight / sum(weights) (weights are shares of arrivals, not of concurrency).
 * A request of kind k is in flight for its end-to-end time
 *   T_k = serviceTimeMs + dbTimeMs + mean LLM time (when it calls the LLM),
 * so the total arrival rate is lambda = N / sum_k(p_k * T_k) and kind k holds
 * N_k = lambda * p_k * T_k of the concurrency. Queue waits are left out of T_k
 * (first order; the queues are analysed separately, plan.ts with erlang.ts).
 *
 * What occupies the API: sync and stream requests for their whole T_k; async
 * requests only while they are submitted (serviceTimeMs + dbTimeMs): their LLM
 * call runs in a task-queue consumer and the client polls for the result.
 *
 * The DB pools are visited per transaction (docs/capacity-model.md, "Per-visit
 * DB queues"): a request of kind k makes n_k = dbTransactions visits, each
 * holding a connection for dbTimeMs / n_k on average with squared CV
 * dbHoldCv2, so the DB demand is sum_k lambda_k n_k visits per second with the
 * mixture (latency.ts) of the visits' hold times as its service time.
 */
import type { RequestKind } from '../api/v1alpha1/schema.js';
import { lognormalFromPercentiles, mixture, type MixComponent } from './latency.js';

/** The load of one request kind at a given total concurrency. Times in ms, rates per second. */
export interface KindLoad {
  name: string;
  kind: 'sync' | 'stream' | 'async';
  /** Share of arrivals, 0..1. */
  share: number;
  /** End-to-end time T_k, ms. */
  meanLatencyMs: number;
  /** Time the request occupies an API worker, ms. */
  apiHoldMs: number;
  arrivalRatePerSecond: number;
  /** In-flight requests of this kind (lambda_k * T_k). */
  concurrency: number;
  /** In-flight requests of this kind inside the API (lambda_k * apiHold_k). */
  apiConcurrency: number;
  /** Total DB hold of one request over its transactions, ms. */
  dbTimeMs: number;
  /** Transactions (DB pool visits) per request, >= 1. */
  dbTransactions: number;
  /** Squared CV of one transaction's hold time (1 exponential, 0 fixed-length). */
  dbHoldCv2: number;
  /** Fitted LLM call model, or null when the kind does not call the LLM. */
  llm: { meanMs: number; cv2: number; p99Ms: number } | null;
}

/**
 * A stream of work offered to one kind of server (DB connections, LLM slots, consumers).
 * Arrivals are visits: a request that visits the queue n times counts n times, and the
 * service time is one visit's (for the DB pools, one transaction's hold).
 */
export interface Demand {
  /** Visits per second. */
  arrivalRatePerSecond: number;
  /** Mean service time of one visit, ms. */
  serviceTimeMs: number;
  /** Squared CV of one visit's service time. */
  serviceCv2: number;
  /** Mean visits per request that makes any (visits / requests over the mix); 1 when nothing arrives. */
  visitsPerRequest: number;
}

/** The whole workload at one concurrency level. */
export interface Workload {
  concurrency: number;
  arrivalRatePerSecond: number;
  /** Mean end-to-end time over the mix, sum_k p_k * T_k, ms (Little's law: concurrency = arrivalRate * mean time). */
  meanLatencyMs: number;
  /** In-flight requests inside the API pods. */
  apiConcurrency: number;
  kinds: KindLoad[];
  /** Transactions that hold a DB connection (kinds with dbTimeMs > 0), one visit per transaction. */
  db: Demand;
  /** LLM calls made inside the API under the per-worker semaphore (sync and stream kinds). */
  llmSlots: Demand;
  /** LLM calls made by task-queue consumers (async kinds). */
  asyncTasks: Demand;
  /** All LLM calls, against the provider rate limit. */
  llmCallsPerSecond: number;
  /** Longest LLM p99 of the mix, ms (0 when no kind calls the LLM). */
  llmP99Ms: number;
}

/** One kind's share of a demand: `rate` visits/s from `requests` requests/s, as a mixture component. */
type DemandComponent = MixComponent & { rate: number; requests: number };

/** The demand of several kinds: arrivals add up, service times mix (mixture() weights by visits). */
function demand(components: DemandComponent[]): Demand {
  const m = mixture(components);
  const rate = components.reduce((s, c) => s + c.rate, 0);
  const requests = components.reduce((s, c) => s + c.requests, 0);
  return {
    arrivalRatePerSecond: rate,
    serviceTimeMs: m.meanMs,
    serviceCv2: m.cv2,
    visitsPerRequest: requests > 0 ? rate / requests : 1,
  };
}

/**
 * A kind's transactions as one component of the DB hold-time mixture, weighted by visits:
 * lambda_k * n_k visits/s, each holding dbTimeMs / n_k ms on average with squared CV dbHoldCv2.
 * (With the defaults n_k = 1, cv^2 = 1 this is the kind's whole DB time as one exponential hold.)
 */
const dbComponent = (k: KindLoad): DemandComponent => ({
  rate: k.arrivalRatePerSecond * k.dbTransactions,
  requests: k.arrivalRatePerSecond,
  weight: k.arrivalRatePerSecond * k.dbTransactions,
  meanMs: k.dbTimeMs / k.dbTransactions,
  cv2: k.dbHoldCv2,
});

/** A kind's LLM calls as one component of the LLM-time mixture (its fitted lognormal), weighted by arrivals. */
const llmComponent = (k: KindLoad): DemandComponent => ({
  rate: k.arrivalRatePerSecond,
  requests: k.arrivalRatePerSecond,
  weight: k.arrivalRatePerSecond,
  meanMs: k.llm!.meanMs,
  cv2: k.llm!.cv2,
});

/**
 * Compute the workload for `concurrency` in-flight requests and a request mix.
 * @param concurrency N >= 0 in-flight requests.
 * @param mix the request kinds (defaults applied), at least one with a positive weight.
 * @throws RangeError when the mix is empty or every kind has a zero end-to-end time.
 */
export function workloadAt(concurrency: number, mix: RequestKind[]): Workload {
  if (mix.length === 0) throw new RangeError('request mix is empty');
  const totalWeight = mix.reduce((s, k) => s + k.weight, 0);
  const base = kindTimes(mix, (k) => k.weight / totalWeight);
  const meanLatency = base.reduce((s, b) => s + b.share * b.meanLatencyMs, 0);
  if (!(meanLatency > 0)) {
    throw new RangeError('every request kind has a zero end-to-end time: set serviceTimeMs, dbTimeMs or llmTimeMs');
  }
  const lambda = concurrency / (meanLatency / 1000);
  return assemble(
    concurrency,
    base.map((b) => ({ ...b, rate: lambda * b.share })),
  );
}

/**
 * The workload at given arrival rates per request kind (per second), for
 * predictions at a measured offered load: the same model as `workloadAt`, with
 * lambda_k given instead of derived from a concurrency; kinds absent from
 * `ratesByKind` get no arrivals. `concurrency` is the in-flight count Little's
 * law gives, sum_k lambda_k * T_k.
 * @throws RangeError when the mix is empty.
 */
export function workloadAtRates(ratesByKind: Record<string, number>, mix: RequestKind[]): Workload {
  if (mix.length === 0) throw new RangeError('request mix is empty');
  const total = mix.reduce((s, k) => s + (ratesByKind[k.name] ?? 0), 0);
  const base = kindTimes(mix, (k) => (total > 0 ? (ratesByKind[k.name] ?? 0) / total : 0));
  const withRates = base.map((b) => ({ ...b, rate: ratesByKind[b.k.name] ?? 0 }));
  const concurrency = withRates.reduce((s, b) => s + (b.rate * b.meanLatencyMs) / 1000, 0);
  return assemble(concurrency, withRates);
}

/** Per kind: its share, fitted LLM model, end-to-end time T_k and API hold time, ms. */
function kindTimes(mix: RequestKind[], shareOf: (k: RequestKind) => number) {
  return mix.map((k) => {
    const llm = k.llmTimeMs ? lognormalFromPercentiles(k.llmTimeMs.p50, k.llmTimeMs.p99) : null;
    const meanLatencyMs = k.serviceTimeMs + k.dbTimeMs + (llm?.meanMs ?? 0);
    const apiHoldMs = k.kind === 'async' ? k.serviceTimeMs + k.dbTimeMs : meanLatencyMs;
    return { k, share: shareOf(k), llm, meanLatencyMs, apiHoldMs };
  });
}

/** The Workload from per-kind rates (lambda_k per second) and times: concurrency per kind, demands per queue. */
function assemble(concurrency: number, base: (ReturnType<typeof kindTimes>[number] & { rate: number })[]): Workload {
  const lambda = base.reduce((s, b) => s + b.rate, 0);
  const kinds: KindLoad[] = base.map(({ k, share, llm, meanLatencyMs, apiHoldMs, rate }) => {
    return {
      name: k.name,
      kind: k.kind,
      share,
      meanLatencyMs,
      apiHoldMs,
      arrivalRatePerSecond: rate,
      concurrency: (rate * meanLatencyMs) / 1000,
      apiConcurrency: (rate * apiHoldMs) / 1000,
      dbTimeMs: k.dbTimeMs,
      dbTransactions: k.dbTransactions ?? 1,
      dbHoldCv2: k.dbHoldCv2 ?? 1,
      llm: llm ? { meanMs: llm.meanMs, cv2: llm.cv2, p99Ms: llm.p99 } : null,
    };
  });
  const withLlm = kinds.filter((k) => k.llm);
  return {
    concurrency,
    arrivalRatePerSecond: lambda,
    meanLatencyMs: lambda > 0 ? kinds.reduce((s, k) => s + k.arrivalRatePerSecond * k.meanLatencyMs, 0) / lambda : 0,
    apiConcurrency: kinds.reduce((s, k) => s + k.apiConcurrency, 0),
    kinds,
    db: demand(kinds.filter((k) => k.dbTimeMs > 0).map(dbComponent)),
    llmSlots: demand(withLlm.filter((k) => k.kind !== 'async').map(llmComponent)),
    asyncTasks: demand(withLlm.filter((k) => k.kind === 'async').map(llmComponent)),
    llmCallsPerSecond: withLlm.reduce((s, k) => s + k.arrivalRatePerSecond, 0),
    llmP99Ms: Math.max(0, ...withLlm.map((k) => k.llm!.p99Ms)),
  };
}
