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
  if (w.db.arrivalRatePerSecond > 0) {
    const how = 'one pool per worker process (partitions = worker processes)';
    out.push({
      name: 'appDbPool',
      serversPerPartition: api.db.poolSize + api.db.maxOverflow,
      partitions: t.workers,
      demand: w.db,
      how,
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
  return out;
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
