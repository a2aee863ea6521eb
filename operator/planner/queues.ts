/**
 * The queues the planner models, for any topology: which servers each queue
 * has, how they are partitioned, and the demand offered to it. `plan()` uses
 * it at the target with maxReplicas (step 8); the load-test report uses it at
 * the arrival rates a run measured, on the topology that ran (the local stack
 * is one pod), to predict what the sampler then measures.
 *
 * Each queue is analysed per partition as M/G/c (Erlang C with the
 * Allen-Cunneen correction, erlang.ts): the arrivals split evenly over the
 * partitions (worker processes, PgBouncers), c = servers per partition.
 *
 * The DB queues (appDbPool, pgbouncerServerPool) are analysed per visit, one
 * visit per transaction (workload.ts): PgBouncer in transaction mode returns
 * the server connection after each transaction, and the app's pool gets its
 * connection back after each checkout (the reference API checks out once per
 * transaction). Their arrivals, service time and waits are per visit; a
 * request's mean wait is visitsPerRequest x the mean wait per visit.
 *
 * With `api.cpuMsPerRequest` set, each API worker's event loop is a queue too
 * (apiEventLoop: one server per worker, M/G/1 with cs^2 = 1, S = the worker's
 * CPU ms per request of the mix). Its mean wait is the event-loop delay every
 * callback sees, a DB reply included: the app's pool gets its connection back
 * only after the worker has handled the transaction's reply, so the app pool's
 * hold per visit is the DB time plus one mean loop wait (one round trip per
 * transaction, as the reference API does; docs/capacity-model.md, "Round
 * trips"). PgBouncer's server hold is not lengthened: in transaction mode it
 * takes the server back when PostgreSQL ends the transaction.
 */
import type { ArenaDeploymentSpec } from '../api/v1alpha1/schema.js';
import { analyzeQueue, type QueueResult } from './erlang.js';
import { round } from './ledger.js';
import type { QueueName, QueuePlan } from './types.js';
import type { Demand, Workload } from './workload.js';

/** Where the servers are: counts of the processes that partition the queues. */
export interface Topology {
  /** API worker processes (replicas x workersPerPod): one SQLAlchemy pool and one LLM semaphore each. */
  workers: number;
  /** PgBouncer processes: one server pool each. */
  pgbouncers: number;
  /** default_pool_size per PgBouncer (the plan's, or the local stack's). */
  pgbouncerDefaultPoolSize: number;
  /** Task-queue consumers of all pods together (one consumer group). */
  consumers: number;
}

/** One modelled queue before analysis: servers per partition, partitions, demand, and how it maps to the system. */
export interface QueueModel {
  name: QueueName;
  serversPerPartition: number;
  partitions: number;
  demand: Demand;
  how: string;
}

/** LLM calls against the provider's limit as one deterministic server (M/D/1): S = 60000 / requestsPerMinute ms. */
export function rateLimitDemand(llmCallsPerSecond: number, requestsPerMinute: number): Demand {
  return {
    arrivalRatePerSecond: llmCallsPerSecond,
    serviceTimeMs: 60_000 / requestsPerMinute,
    serviceCv2: 0,
    visitsPerRequest: 1,
  };
}

/**
 * The queues with arrivals (docs/capacity-model.md section 4): appDbPool (poolSize + maxOverflow per
 * worker; per visit, one per transaction), pgbouncerServerPool (per visit) (default_pool_size per PgBouncer; not in session mode, where a server
 * connection follows a client for its whole life), llmSlots (llmSlotsPerWorker per worker),
 * asyncConsumers (all consumers in one group), llmRateLimit (the provider's RPM, when set).
 */
export function queueModels(spec: ArenaDeploymentSpec, w: Workload, t: Topology): QueueModel[] {
  const { api, pgbouncer, llm } = spec;
  const out: QueueModel[] = [];
  const loop = eventLoopModel(api.cpuMsPerRequest, api.cpuBaseFraction ?? 0, w.arrivalRatePerSecond, t.workers);
  if (w.db.arrivalRatePerSecond > 0) {
    const loopWaitMs = loop ? analyzeModel(loop).meanWaitMs : null;
    out.push({
      name: 'appDbPool',
      serversPerPartition: api.db.poolSize + api.db.maxOverflow,
      partitions: t.workers,
      demand: loopWaitMs ? holdPlusLoopWait(w.db, loopWaitMs) : w.db,
      how:
        'one pool per worker process (partitions = worker processes)' +
        (loopWaitMs ? `; hold = DB time + the mean event-loop wait (${Math.round(loopWaitMs * 100) / 100} ms)` : ''),
    });
    if (pgbouncer.enabled && pgbouncer.poolMode !== 'session')
      out.push({
        name: 'pgbouncerServerPool',
        serversPerPartition: t.pgbouncerDefaultPoolSize,
        partitions: t.pgbouncers,
        demand: w.db,
        how: 'one server pool per PgBouncer (reserve pool not counted)',
      });
  }
  if (w.llmSlots.arrivalRatePerSecond > 0)
    out.push({
      name: 'llmSlots',
      serversPerPartition: api.llmSlotsPerWorker,
      partitions: t.workers,
      demand: w.llmSlots,
      how: 'one MAX_CONCURRENT_REQUESTS semaphore per worker process',
    });
  if (w.asyncTasks.arrivalRatePerSecond > 0 && t.consumers > 0)
    out.push({
      name: 'asyncConsumers',
      serversPerPartition: t.consumers,
      partitions: 1,
      demand: w.asyncTasks,
      how: 'one consumer group shared by all pods (Redis Streams)',
    });
  if (llm.requestsPerMinute !== undefined && w.llmCallsPerSecond > 0)
    out.push({
      name: 'llmRateLimit',
      serversPerPartition: 1,
      partitions: 1,
      demand: rateLimitDemand(w.llmCallsPerSecond, llm.requestsPerMinute),
      how: 'the provider limit as one deterministic server (M/D/1), S = 60000 / requestsPerMinute',
    });
  if (loop) out.push(loop);
  return out;
}

/**
 * The API workers' event loops as a queue (apiEventLoop): one server per worker process, busy
 *   rho = cpuBaseFraction + lambda_w x cpuMsPerRequest / 1000      (lambda_w = requests per second per worker),
 * a straight line through the busy fractions measured at two loads (arena calibrate): a worker's CPU per
 * request falls as the load grows (more work per loop turn, warm caches), 2.06 ms at 60/s and 0.99 ms at
 * 297/s per worker on this machine (docs/capacity-model.md, "The API's event loop"). Analysed as M/G/1 with
 * the effective service time S = rho / lambda_w (the base spread over the requests) and cs^2 = 1 (a mix of
 * sync replies, stream events and task polls is far from constant). Null without cpuMsPerRequest or arrivals.
 * @param cpuMsPerRequest the spec's api.cpuMsPerRequest, ms.
 * @param cpuBaseFraction the spec's api.cpuBaseFraction (0 when unset), share of a core.
 * @param requestsPerSecond arrivals of the whole mix, per second.
 * @param workers API worker processes (the partitions).
 */
export function eventLoopModel(
  cpuMsPerRequest: number | undefined,
  cpuBaseFraction: number,
  requestsPerSecond: number,
  workers: number,
): QueueModel | null {
  if (cpuMsPerRequest === undefined || requestsPerSecond <= 0 || workers <= 0) return null;
  const perWorker = requestsPerSecond / workers;
  const busy = cpuBaseFraction + (perWorker * cpuMsPerRequest) / 1000;
  return {
    name: 'apiEventLoop',
    serversPerPartition: 1,
    partitions: workers,
    demand: {
      arrivalRatePerSecond: requestsPerSecond,
      serviceTimeMs: (busy / perWorker) * 1000,
      serviceCv2: 1,
      visitsPerRequest: 1,
    },
    how:
      'one event loop per worker process (M/G/1), S = (api.cpuBaseFraction + requests/s per worker x ' +
      'api.cpuMsPerRequest / 1000) / requests/s per worker',
  };
}

/**
 * A DB demand whose hold per visit also contains the mean event-loop wait W (the worker handles the reply
 * before it releases the connection): S' = S + W, and, taking the wait as independent of the DB time with
 * a cs^2 of 1, cs'^2 = (cs^2 S^2 + W^2) / (S + W)^2. Arrivals and visits are unchanged.
 * @param loopWaitMs the apiEventLoop queue's mean wait, ms.
 */
export function holdPlusLoopWait(db: Demand, loopWaitMs: number): Demand {
  const s = db.serviceTimeMs;
  const hold = s + loopWaitMs;
  return { ...db, serviceTimeMs: hold, serviceCv2: (db.serviceCv2 * s * s + loopWaitMs * loopWaitMs) / (hold * hold) };
}

/** Analyse one modelled queue: M/G/c on one partition's share of the arrivals (erlang.ts). */
export function analyzeModel(q: QueueModel): QueueResult {
  const { arrivalRatePerSecond, serviceTimeMs, serviceCv2 } = q.demand;
  return analyzeQueue(q.serversPerPartition, arrivalRatePerSecond / q.partitions, serviceTimeMs, serviceCv2);
}

/**
 * One modelled queue as the plan reports it (rounded; waits null when unstable). Rates per second, times ms;
 * arrivals, service time and waits per visit. When a request visits the queue other than once on average
 * (dbTransactions), `visitsPerRequest` and `meanWaitPerRequestMs` (= visits x mean wait per visit) are added;
 * there is no per-request P99 (the P99 of a sum of waits is not visits x P99; docs/capacity-model.md).
 */
export function queuePlanOf(q: QueueModel): QueuePlan {
  const a = analyzeModel(q);
  const { arrivalRatePerSecond, serviceTimeMs, serviceCv2, visitsPerRequest } = q.demand;
  const perRequest =
    visitsPerRequest === 1
      ? {}
      : {
          visitsPerRequest: round(visitsPerRequest),
          meanWaitPerRequestMs: a.meanWaitMs === null ? null : round(visitsPerRequest * a.meanWaitMs, 2),
        };
  return {
    servers: q.serversPerPartition * q.partitions,
    partitions: q.partitions,
    arrivalRatePerSecond: round(arrivalRatePerSecond),
    serviceTimeMs: round(serviceTimeMs),
    serviceCv2: round(serviceCv2),
    utilization: round(a.utilization),
    pWait: round(a.pWait),
    meanWaitMs: a.meanWaitMs === null ? null : round(a.meanWaitMs, 2),
    p99WaitMs: a.p99WaitMs === null ? null : round(a.p99WaitMs, 2),
    stable: a.stable,
    ...perRequest,
  };
}
