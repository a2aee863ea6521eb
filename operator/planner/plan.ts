/**
 * The capacity planner: ArenaDeployment (validated, defaults applied) -> CapacityPlan.
 * Pure and deterministic: the same spec gives the same plan, byte for byte.
 *
 * plan() runs these steps in order, one function each, defined below in the same
 * order. Each formula lives in one module (named in parentheses); a step applies it
 * and records the value with its formula, inputs and source in the derivation
 * ledger (`arena plan --explain`), so `derivations` lists the values in step order.
 *  1. planWorkload: baseline concurrency and the workload at target and baseline
 *     (Little's law, workload.ts).
 *  2. replicasNeeded: per-pod concurrency and the replicas target and baseline need.
 *  3. perPodBudgets: DB and Redis connections per pod, PostgreSQL's budget (connections.ts).
 *  4. pgbouncerPools: PgBouncer pool sizes when the spec leaves them unset, for the
 *     replicas the target needs (pgbouncer.ts).
 *  5. replicaRange: maxReplicas and minReplicas, the need capped by the connection
 *     budgets (connections.ts).
 *  6. connectionsAtMaxReplicas: the connection budgets at maxReplicas (connections.ts).
 *  7. fileDescriptors: what PgBouncer and Redis need (connections.ts).
 *  8. queuesAtTarget: the queues at the target with maxReplicas (erlang.ts).
 *  9. apiPodSettings: termination grace period and container resources.
 * 10. hpaSettings: the HorizontalPodAutoscaler's range and behavior.
 * 11. findingsFor: what in the assembled plan will not hold (findings.ts).
 */
import type { ArenaDeployment, ArenaDeploymentSpec } from '../api/v1alpha1/schema.js';
import {
  appDbConnections,
  budgetUtilization,
  dbConnectionsPerPod,
  pgbouncerClientCapacity,
  pgbouncerFileDescriptors,
  pgbouncerServerConnections,
  postgresBudget,
  redisClients,
  redisConnectionsPerPod,
  redisFileDescriptors,
  redisReplicaCap,
  replicasWithin,
} from './connections.js';
import { findingsFor } from './findings.js';
import { ceilCount, Ledger, round } from './ledger.js';
import { sizePgBouncer, type PgBouncerSizing } from './pgbouncer.js';
import { queueModels, queuePlanOf, type QueueModel, type Topology } from './queues.js';
import type { Budget, CapacityPlan, KindPlan, QueuePlan } from './types.js';
import { workloadAt, type Workload } from './workload.js';

type Spec = ArenaDeploymentSpec;
type ApiSpec = Spec['api'];
type PgBouncerSpec = Spec['pgbouncer'];

/** The `source` of each derivation: where its formula comes from. */
const SOURCES = {
  little: "Little's law L = lambda * W (Little 1961)",
  sqlalchemy: 'SQLAlchemy QueuePool: pool_size + max_overflow connections per engine (one engine per worker process)',
  postgres: 'PostgreSQL docs: max_connections minus superuser_reserved_connections/reserved_connections',
  pgbouncer:
    'PgBouncer docs: max_client_conn, default_pool_size, reserve_pool_size (per database/user pair, per process)',
  pgbouncerFd: 'PgBouncer docs: fds = max_client_conn + (max pool_size * databases * users)',
  redis: 'Redis docs: maxclients; 32 descriptors reserved for internal use',
  erlang: 'Erlang C (M/M/c) with the Allen-Cunneen M/G/c correction; see docs/capacity-model.md',
  hpa: 'Kubernetes HPA docs: autoscaling/v2 behavior (scaleUp/scaleDown policies, stabilizationWindowSeconds)',
  arena: 'arena sizing rule (docs/capacity-model.md)',
};

/** Mean CPU (millicores) and memory (MiB) requested per worker process when spec.api.resources is unset. */
export const CPU_PER_WORKER_MILLI = 250;
export const MEMORY_PER_WORKER_MIB = 256;

/** Options for plan(). */
export interface PlanOptions {
  /** Include the derivation ledger in the result (for --explain). */
  explain?: boolean;
}

/**
 * Compute the capacity plan of one ArenaDeployment: the steps listed at the top of this file, in order.
 * @param ad a validated ArenaDeployment with defaults applied (see validate.ts).
 * @returns the plan; `derivations` only when opts.explain.
 * @throws RangeError only on inputs the schema forbids (the CLI validates first).
 */
export function plan(ad: ArenaDeployment, opts: PlanOptions = {}): CapacityPlan {
  const { spec } = ad;
  const ledger = new Ledger();
  const workload = planWorkload(spec.load, ledger); // 1
  const need = replicasNeeded(spec.api, workload, ledger); // 2
  const budgets = perPodBudgets(spec, ledger); // 3
  const pools = pgbouncerPools(spec.pgbouncer, need, budgets, workload.atTarget, ledger); // 4
  const replicas = replicaRange(spec, need, budgets, pools, ledger); // 5
  const connections = connectionsAtMaxReplicas(spec, replicas.max, budgets, pools, ledger); // 6
  const descriptors = fileDescriptors(spec, pools, ledger); // 7
  const queues = queuesAtTarget(spec, workload.atTarget, replicas.max, pools, ledger); // 8
  const api = apiPodSettings(spec.api, workload.atTarget, ledger); // 9
  const hpa = hpaSettings(spec.api, replicas, ledger); // 10
  const result: CapacityPlan = {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'CapacityPlan',
    metadata: { name: ad.metadata.name, namespace: ad.metadata.namespace ?? 'default' },
    workload: workloadSection(workload),
    replicas,
    connections,
    pgbouncer: pgbouncerSection(spec.pgbouncer, pools, descriptors.pgbouncer),
    redis: { managed: spec.redis.managed, maxClients: spec.redis.maxClients, fileDescriptors: descriptors.redis },
    api,
    hpa,
    queues,
    findings: [],
  };
  result.findings = findingsFor(ad, result, workload.atTarget, spec.llm.requestsPerMinute); // 11
  if (opts.explain) result.derivations = ledger.entries;
  return result;
}

/** Step 1's result: the two concurrency levels (requests in flight) and the workload at each. */
interface WorkloadLevels {
  targetConcurrency: number;
  baselineConcurrency: number;
  atTarget: Workload;
  atBaseline: Workload;
}

/**
 * Step 1, the workload. Baseline concurrency is the spec's, else ceil(target / 10);
 * workloadAt() applies Little's law at both levels (arrivals per second, in-flight
 * requests per kind and inside the API, LLM calls per second).
 * Records workload.baselineConcurrency, .arrivalRatePerSecond, .apiConcurrency, .llmCallsPerSecond.
 */
function planWorkload(load: Spec['load'], ledger: Ledger): WorkloadLevels {
  const { targetConcurrency, requestMix } = load;
  const baselineConcurrency = ledger.record(
    'workload.baselineConcurrency',
    load.baselineConcurrency ?? Math.ceil(targetConcurrency / 10),
    {
      unit: 'requests in flight',
      formula:
        load.baselineConcurrency !== undefined
          ? 'spec.load.baselineConcurrency'
          : 'ceil(targetConcurrency / 10) (default)',
      inputs: { targetConcurrency },
      source: SOURCES.arena,
    },
  );
  const atTarget = workloadAt(targetConcurrency, requestMix);
  const atBaseline = workloadAt(baselineConcurrency, requestMix);
  ledger.record('workload.arrivalRatePerSecond', round(atTarget.arrivalRatePerSecond), {
    unit: 'requests/s',
    formula: 'targetConcurrency / (sum_k share_k * T_k / 1000), T_k = serviceTimeMs + dbTimeMs + mean LLM ms',
    inputs: { targetConcurrency, meanLatencyMs: round(atTarget.meanLatencyMs) },
    source: SOURCES.little,
  });
  ledger.record('workload.apiConcurrency', round(atTarget.apiConcurrency), {
    unit: 'requests in flight in the API',
    formula: 'sum_k lambda_k * apiHold_k (async kinds hold the API only while submitting)',
    inputs: Object.fromEntries(atTarget.kinds.map((k) => [`${k.name}.apiConcurrency`, round(k.apiConcurrency)])),
    source: SOURCES.little,
  });
  const llmKinds = atTarget.kinds.filter((k) => k.llm);
  ledger.record('workload.llmCallsPerSecond', round(atTarget.llmCallsPerSecond), {
    unit: 'calls/s',
    formula: 'sum of arrival rates of kinds with llmTimeMs',
    inputs: Object.fromEntries(llmKinds.map((k) => [`${k.name}.arrivalRatePerSecond`, round(k.arrivalRatePerSecond)])),
    source: SOURCES.little,
  });
  return { targetConcurrency, baselineConcurrency, atTarget, atBaseline };
}

/** Step 2's result: requests one pod holds and the replicas each concurrency level needs. */
interface ReplicaNeed {
  perPodConcurrency: number;
  neededForTarget: number;
  neededForBaseline: number;
}

/** Replicas that hold `apiConcurrency` in-flight requests: max(1, ceil(apiConcurrency / perPodConcurrency)). */
function replicasFor(apiConcurrency: number, perPodConcurrency: number): number {
  return Math.max(1, ceilCount(apiConcurrency / perPodConcurrency));
}

/**
 * Step 2, the replicas needed. perPodConcurrency = workersPerPod * concurrencyPerWorker
 * (requests in flight per pod); replicas for a level = max(1, ceil(apiConcurrency / perPodConcurrency))
 * (Little's law: apiConcurrency is what the API holds at that level).
 * Records replicas.perPodConcurrency, .neededForTarget, .neededForBaseline.
 */
function replicasNeeded(api: ApiSpec, workload: WorkloadLevels, ledger: Ledger): ReplicaNeed {
  const { workersPerPod, concurrencyPerWorker } = api;
  const perPodConcurrency = ledger.record('replicas.perPodConcurrency', workersPerPod * concurrencyPerWorker, {
    unit: 'requests in flight per pod',
    formula: 'workersPerPod * concurrencyPerWorker',
    inputs: { workersPerPod, concurrencyPerWorker },
    source: SOURCES.arena,
  });
  const targetApiConcurrency = workload.atTarget.apiConcurrency;
  const neededForTarget = ledger.record(
    'replicas.neededForTarget',
    replicasFor(targetApiConcurrency, perPodConcurrency),
    {
      unit: 'replicas',
      formula: 'max(1, ceil(apiConcurrency at target / perPodConcurrency))',
      inputs: { apiConcurrency: round(targetApiConcurrency), perPodConcurrency },
      source: SOURCES.little,
    },
  );
  const baselineApiConcurrency = workload.atBaseline.apiConcurrency;
  const neededForBaseline = ledger.record(
    'replicas.neededForBaseline',
    replicasFor(baselineApiConcurrency, perPodConcurrency),
    {
      unit: 'replicas',
      formula: 'max(1, ceil(apiConcurrency at baseline / perPodConcurrency))',
      inputs: { apiConcurrency: round(baselineApiConcurrency), perPodConcurrency },
      source: SOURCES.little,
    },
  );
  return { perPodConcurrency, neededForTarget, neededForBaseline };
}

/** Step 3's result: connections one API pod may open (DB, Redis) and PostgreSQL's connections for the app. */
interface PerPodBudgets {
  perPod: number;
  redisPerPod: number;
  postgresBudget: number;
}

/**
 * Step 3, per-pod budgets (connections.ts): DB connections per pod = workersPerPod * (poolSize + maxOverflow)
 * (SQLAlchemy QueuePool, one engine per worker), Redis connections per pod = workersPerPod * redis.maxConnections,
 * PostgreSQL's budget = maxConnections - reservedConnections.
 * Records connections.perPod, .redisPerPod, .postgresBudget.
 */
function perPodBudgets(spec: Spec, ledger: Ledger): PerPodBudgets {
  const { workersPerPod, db, redis } = spec.api;
  const { maxConnections, reservedConnections } = spec.postgres;
  const perPod = ledger.record('connections.perPod', dbConnectionsPerPod(workersPerPod, db.poolSize, db.maxOverflow), {
    unit: 'connections',
    formula: 'workersPerPod * (poolSize + maxOverflow)',
    inputs: { workersPerPod, poolSize: db.poolSize, maxOverflow: db.maxOverflow },
    source: SOURCES.sqlalchemy,
  });
  const redisPerPod = ledger.record(
    'connections.redisPerPod',
    redisConnectionsPerPod(workersPerPod, redis.maxConnections),
    {
      unit: 'connections',
      formula: 'workersPerPod * redis.maxConnections',
      inputs: { workersPerPod, maxConnections: redis.maxConnections },
      source: SOURCES.redis,
    },
  );
  const postgresLimit = ledger.record(
    'connections.postgresBudget',
    postgresBudget(maxConnections, reservedConnections),
    {
      unit: 'connections',
      formula: 'postgres.maxConnections - postgres.reservedConnections',
      inputs: { maxConnections, reservedConnections },
      source: SOURCES.postgres,
    },
  );
  return { perPod, redisPerPod, postgresBudget: postgresLimit };
}

/**
 * Step 4, PgBouncer's pools (pgbouncer.ts), sized for the replicas the target needs:
 * max_client_conn from the app's client connections (neededForTarget * perPod) per PgBouncer plus 20%,
 * default_pool_size from Erlang C on each PgBouncer's share of the transactions (P(wait) <= 0.1),
 * reserve_pool_size 10% of it; values set in the spec are kept. The sizing is computed even when
 * PgBouncer is disabled (later steps read it), but recorded only when enabled.
 * Records pgbouncer.maxClientConn, .defaultPoolSize, .reservePoolSize.
 */
function pgbouncerPools(
  pgbouncer: PgBouncerSpec,
  need: ReplicaNeed,
  budgets: PerPodBudgets,
  atTarget: Workload,
  ledger: Ledger,
): PgBouncerSizing {
  const { neededForTarget } = need;
  const { perPod } = budgets;
  const { replicas } = pgbouncer;
  const sizing = sizePgBouncer({
    replicas,
    databaseUserPairs: pgbouncer.databaseUserPairs,
    poolMode: pgbouncer.poolMode,
    maxClientConn: pgbouncer.maxClientConn,
    defaultPoolSize: pgbouncer.defaultPoolSize,
    reservePoolSize: pgbouncer.reservePoolSize,
    postgresBudget: budgets.postgresBudget,
    appClientConnections: appDbConnections(neededForTarget, perPod),
    transactionsPerSecond: atTarget.db.arrivalRatePerSecond,
    transactionTimeMs: atTarget.db.serviceTimeMs,
  });
  if (!pgbouncer.enabled) return sizing;
  const { computed, serversNeeded, budgetPerPool } = sizing;
  ledger.record('pgbouncer.maxClientConn', sizing.maxClientConn, {
    unit: 'client connections per PgBouncer',
    formula: computed.maxClientConn
      ? 'max(100, roundup100(ceil(neededForTarget * perPod / replicas) * 1.2))'
      : 'spec.pgbouncer.maxClientConn',
    inputs: { neededForTarget, perPod, replicas },
    source: SOURCES.pgbouncer,
  });
  ledger.record('pgbouncer.defaultPoolSize', sizing.defaultPoolSize, {
    unit: 'server connections per database/user pair per PgBouncer',
    formula: computed.defaultPoolSize
      ? 'max(1, min(max(serversNeeded, 5), budgetPerPool - reservePoolSize)); ' +
        'serversNeeded = smallest c with ErlangC(c, lambda_tx/replicas * S_tx) <= 0.1'
      : 'spec.pgbouncer.defaultPoolSize',
    inputs: {
      serversNeeded,
      budgetPerPool,
      transactionsPerSecond: round(atTarget.db.arrivalRatePerSecond),
      transactionTimeMs: round(atTarget.db.serviceTimeMs),
    },
    source: `${SOURCES.pgbouncer}; ${SOURCES.erlang}`,
  });
  ledger.record('pgbouncer.reservePoolSize', sizing.reservePoolSize, {
    unit: 'server connections',
    formula: computed.reservePoolSize
      ? 'max(1, ceil(0.1 * max(serversNeeded, 5))), trimmed to the budget'
      : 'spec.pgbouncer.reservePoolSize',
    inputs: { serversNeeded, budgetPerPool },
    source: SOURCES.pgbouncer,
  });
  return sizing;
}

/**
 * The app's database client limit (connections): all PgBouncers' max_client_conn when it is set in the spec,
 * Infinity when it is computed (it grows to fit the need), PostgreSQL's budget without PgBouncer.
 */
function appDbClientLimit(pgbouncer: PgBouncerSpec, sizing: PgBouncerSizing, budgets: PerPodBudgets): number {
  if (!pgbouncer.enabled) return budgets.postgresBudget;
  return sizing.computed.maxClientConn ? Infinity : pgbouncerClientCapacity(pgbouncer.replicas, sizing.maxClientConn);
}

/** maxReplicas (replicas) and its formula: the fixed replica count, the spec's maxReplicas, or the capped need. */
function chooseMaxReplicas(api: ApiSpec, neededForTarget: number, cap: number): { value: number; formula: string } {
  if (!api.autoscaling.enabled) {
    return {
      value: api.replicas ?? neededForTarget,
      formula: 'spec.api.replicas (autoscaling disabled), else neededForTarget',
    };
  }
  if (api.autoscaling.maxReplicas !== undefined) {
    return { value: api.autoscaling.maxReplicas, formula: 'spec.api.autoscaling.maxReplicas' };
  }
  return { value: Math.max(1, Math.min(neededForTarget, cap)), formula: 'max(1, min(neededForTarget, connectionCap))' };
}

/** minReplicas (replicas) and its formula: maxReplicas when fixed, the spec's minReplicas, or the baseline's need. */
function chooseMinReplicas(api: ApiSpec, neededForBaseline: number, max: number): { value: number; formula: string } {
  if (!api.autoscaling.enabled) return { value: max, formula: 'replicas.max (autoscaling disabled)' };
  if (api.autoscaling.minReplicas !== undefined) {
    return { value: api.autoscaling.minReplicas, formula: 'spec.api.autoscaling.minReplicas' };
  }
  return { value: Math.min(neededForBaseline, max), formula: 'min(neededForBaseline, replicas.max)' };
}

/**
 * Step 5, the replica range (the plan's `replicas`). connectionCap = min(floor(app DB client limit / perPod),
 * floor((redis.maxClients - 2) / redisPerPod)) (connections.ts; null when neither budget binds);
 * maxReplicas = the spec's, else max(1, min(neededForTarget, connectionCap)); minReplicas = the spec's,
 * else min(neededForBaseline, maxReplicas); both the fixed replica count when autoscaling is disabled.
 * Records replicas.connectionCap, .max, .min.
 */
function replicaRange(
  spec: Spec,
  need: ReplicaNeed,
  budgets: PerPodBudgets,
  sizing: PgBouncerSizing,
  ledger: Ledger,
): CapacityPlan['replicas'] {
  const { perPodConcurrency, neededForTarget, neededForBaseline } = need;
  const { perPod, redisPerPod } = budgets;
  const redisMaxClients = spec.redis.maxClients;
  const dbClientLimit = appDbClientLimit(spec.pgbouncer, sizing, budgets);
  const cap = Math.min(replicasWithin(dbClientLimit, perPod), redisReplicaCap(redisMaxClients, redisPerPod));
  const connectionCap = ledger.record('replicas.connectionCap', Number.isFinite(cap) ? cap : null, {
    unit: 'replicas',
    formula: 'min(floor(app DB client limit / perPod), floor((redis.maxClients - 2) / redisPerPod))',
    inputs: {
      dbClientLimit: Number.isFinite(dbClientLimit) ? dbClientLimit : null,
      perPod,
      redisMaxClients,
      redisPerPod,
    },
    source: `${SOURCES.pgbouncer}; ${SOURCES.redis}`,
  });
  const maxChoice = chooseMaxReplicas(spec.api, neededForTarget, cap);
  const max = ledger.record('replicas.max', maxChoice.value, {
    unit: 'replicas',
    formula: maxChoice.formula,
    inputs: { neededForTarget, connectionCap },
    source: SOURCES.arena,
  });
  const minChoice = chooseMinReplicas(spec.api, neededForBaseline, max);
  const min = ledger.record('replicas.min', minChoice.value, {
    unit: 'replicas',
    formula: minChoice.formula,
    inputs: { neededForBaseline, max },
    source: SOURCES.arena,
  });
  return { min, max, neededForTarget, neededForBaseline, connectionCap, perPodConcurrency };
}

/** A connection budget as the plan shows it: connections used at maxReplicas, the limit, used / limit rounded. */
function budget(atMaxReplicas: number, limit: number): Budget {
  return { atMaxReplicas, limit, utilization: round(budgetUtilization(atMaxReplicas, limit)) };
}

/** The budgets between the app, PgBouncer and PostgreSQL at maxReplicas, with PgBouncer enabled. */
function pgbouncerConnections(
  pgbouncer: PgBouncerSpec,
  maxReplicas: number,
  budgets: PerPodBudgets,
  sizing: PgBouncerSizing,
  ledger: Ledger,
): Pick<CapacityPlan['connections'], 'appToPgbouncer' | 'pgbouncerToPostgres'> {
  const { perPod, postgresBudget: postgresLimit } = budgets;
  const { replicas, databaseUserPairs } = pgbouncer;
  const { maxClientConn, defaultPoolSize, reservePoolSize } = sizing;
  const clients = appDbConnections(maxReplicas, perPod);
  const clientLimit = pgbouncerClientCapacity(replicas, maxClientConn);
  const appToPgbouncer = budget(clients, clientLimit);
  ledger.record('connections.appToPgbouncer.atMaxReplicas', clients, {
    unit: 'client connections',
    formula: 'replicas.max * perPod',
    inputs: { max: maxReplicas, perPod },
    source: SOURCES.sqlalchemy,
  });
  ledger.record('connections.appToPgbouncer.limit', clientLimit, {
    unit: 'client connections',
    formula: 'pgbouncer.replicas * maxClientConn',
    inputs: { replicas, maxClientConn },
    source: SOURCES.pgbouncer,
  });
  const servers = pgbouncerServerConnections(replicas, defaultPoolSize, reservePoolSize, databaseUserPairs);
  const { limit, utilization } = budget(servers, postgresLimit);
  const pgbouncerToPostgres = { total: servers, limit, utilization };
  ledger.record('connections.pgbouncerToPostgres.total', servers, {
    unit: 'server connections',
    formula: 'pgbouncer.replicas * (defaultPoolSize + reservePoolSize) * databaseUserPairs',
    inputs: { replicas, defaultPoolSize, reservePoolSize, databaseUserPairs },
    source: SOURCES.pgbouncer,
  });
  return { appToPgbouncer, pgbouncerToPostgres };
}

/** The budget between the app and PostgreSQL at maxReplicas, with PgBouncer disabled. */
function directPostgresConnections(
  maxReplicas: number,
  budgets: PerPodBudgets,
  ledger: Ledger,
): Pick<CapacityPlan['connections'], 'appToPostgres'> {
  const { perPod, postgresBudget: limit } = budgets;
  const connections = appDbConnections(maxReplicas, perPod);
  const appToPostgres = budget(connections, limit);
  ledger.record('connections.appToPostgres.atMaxReplicas', connections, {
    unit: 'connections',
    formula: 'replicas.max * perPod',
    inputs: { max: maxReplicas, perPod },
    source: SOURCES.sqlalchemy,
  });
  return { appToPostgres };
}

/**
 * Step 6, connection budgets at maxReplicas (connections.ts), each {used, limit, used / limit}:
 * app -> PgBouncer (max * perPod against replicas * max_client_conn) and PgBouncer -> PostgreSQL
 * (replicas * (default + reserve pool) * pairs against PostgreSQL's budget), or app -> PostgreSQL
 * without PgBouncer; Redis clients (max * redisPerPod + 2 against maxclients).
 * Records connections.appToPgbouncer.*, .pgbouncerToPostgres.total or .appToPostgres.*, .redis.atMaxReplicas.
 */
function connectionsAtMaxReplicas(
  spec: Spec,
  maxReplicas: number,
  budgets: PerPodBudgets,
  sizing: PgBouncerSizing,
  ledger: Ledger,
): CapacityPlan['connections'] {
  const { perPod, redisPerPod } = budgets;
  const database = spec.pgbouncer.enabled
    ? pgbouncerConnections(spec.pgbouncer, maxReplicas, budgets, sizing, ledger)
    : directPostgresConnections(maxReplicas, budgets, ledger);
  const redisLimit = spec.redis.maxClients;
  const redisAtMax = redisClients(maxReplicas, redisPerPod);
  const redis = budget(redisAtMax, redisLimit);
  ledger.record('connections.redis.atMaxReplicas', redisAtMax, {
    unit: 'clients',
    formula: 'replicas.max * workersPerPod * api.redis.maxConnections + 2 (operator and sampler)',
    inputs: { max: maxReplicas, redisPerPod },
    source: SOURCES.redis,
  });
  return { perPod, redisPerPod, redis, ...database };
}

/**
 * Step 7, file descriptors (connections.ts): one PgBouncer needs maxClientConn + (defaultPoolSize +
 * reservePoolSize) * databaseUserPairs (PgBouncer docs); Redis needs maxClients + 32 (Redis docs).
 * Records pgbouncer.fileDescriptors, redis.fileDescriptors.
 */
function fileDescriptors(spec: Spec, sizing: PgBouncerSizing, ledger: Ledger): { pgbouncer: number; redis: number } {
  const { maxClientConn, defaultPoolSize, reservePoolSize } = sizing;
  const { databaseUserPairs } = spec.pgbouncer;
  const { maxClients } = spec.redis;
  const pgbouncerFds = pgbouncerFileDescriptors(maxClientConn, defaultPoolSize, reservePoolSize, databaseUserPairs);
  const pgbouncer = ledger.record('pgbouncer.fileDescriptors', pgbouncerFds, {
    unit: 'file descriptors per PgBouncer',
    formula: 'maxClientConn + (defaultPoolSize + reservePoolSize) * databaseUserPairs',
    inputs: { maxClientConn, defaultPoolSize, reservePoolSize, databaseUserPairs },
    source: SOURCES.pgbouncerFd,
  });
  const redis = ledger.record('redis.fileDescriptors', redisFileDescriptors(maxClients), {
    unit: 'file descriptors',
    formula: 'maxClients + 32',
    inputs: { maxClients },
    source: SOURCES.redis,
  });
  return { pgbouncer, redis };
}

/**
 * One queue of the plan: `partitions` independent M/G/c queues of `servers` servers each, every partition
 * receiving arrivals / partitions of the demand (random routing splits a Poisson stream into Poisson streams).
 * Analysed by analyzeQueue (Erlang C, Allen-Cunneen; erlang.ts). Rates per second, times in ms; the DB queues
 * per visit (one per transaction), with visitsPerRequest among the inputs when it is not 1.
 * Records queues.<name>.p99WaitMs; `how` says what the servers and partitions are.
 */
function partitionedQueue(q: QueueModel, ledger: Ledger): QueuePlan {
  const result = queuePlanOf(q);
  ledger.record(`queues.${q.name}.p99WaitMs`, result.p99WaitMs, {
    unit: 'ms',
    formula: `M/G/c per partition: c = ${q.serversPerPartition}, lambda = arrival / partitions, S = serviceTimeMs, cs^2 = serviceCv2; ${q.how}`,
    inputs: {
      servers: q.serversPerPartition,
      partitions: q.partitions,
      arrivalRatePerSecond: result.arrivalRatePerSecond,
      serviceTimeMs: result.serviceTimeMs,
      serviceCv2: result.serviceCv2,
      utilization: result.utilization,
      pWait: result.pWait,
      // per-visit queues (dbTransactions != 1): arrivals, S and the waits are per visit
      ...(result.visitsPerRequest === undefined ? {} : { visitsPerRequest: result.visitsPerRequest }),
    },
    source: SOURCES.erlang,
  });
  return result;
}

/**
 * Step 8, the queues at the target with maxReplicas (docs/capacity-model.md section 4), each only when it
 * has arrivals: appDbPool (poolSize + maxOverflow per worker), pgbouncerServerPool (default_pool_size per
 * PgBouncer; not in session mode, where a server connection follows a client for its whole life),
 * llmSlots (llmSlotsPerWorker per worker), asyncConsumers (maxReplicas * asyncConcurrencyPerPod in one
 * consumer group), llmRateLimit (the provider's RPM, when set).
 * Records queues.<name>.p99WaitMs for each.
 */
function queuesAtTarget(
  spec: Spec,
  atTarget: Workload,
  maxReplicas: number,
  sizing: PgBouncerSizing,
  ledger: Ledger,
): CapacityPlan['queues'] {
  const topology: Topology = {
    workers: maxReplicas * spec.api.workersPerPod,
    pgbouncers: spec.pgbouncer.replicas,
    pgbouncerDefaultPoolSize: sizing.defaultPoolSize,
    consumers: maxReplicas * spec.api.asyncConcurrencyPerPod,
  };
  const queues: CapacityPlan['queues'] = {};
  for (const q of queueModels(spec, atTarget, topology)) queues[q.name] = partitionedQueue(q, ledger);
  return queues;
}

/**
 * Container resources of an API pod: the spec's, else per worker process CPU_PER_WORKER_MILLI millicores and
 * MEMORY_PER_WORKER_MIB MiB requested, twice the memory as the limit, no CPU limit unless the spec sets one.
 */
function podResources(api: ApiSpec): CapacityPlan['api']['resources'] {
  const cpuMilli = api.workersPerPod * CPU_PER_WORKER_MILLI;
  const memoryMib = api.workersPerPod * MEMORY_PER_WORKER_MIB;
  const { requests, limits } = api.resources ?? {};
  return {
    requests: { cpu: requests?.cpu ?? `${cpuMilli}m`, memory: requests?.memory ?? `${memoryMib}Mi` },
    limits: {
      ...(limits?.cpu ? { cpu: limits.cpu } : {}),
      memory: limits?.memory ?? `${memoryMib * 2}Mi`,
    },
  };
}

/**
 * Step 9, the API pod's settings. terminationGracePeriodSeconds = ceil(longest LLM p99 ms / 1000) + 15, so
 * in-flight streams drain before SIGKILL (arena sizing rule); resources from podResources().
 * Records api.terminationGracePeriodSeconds.
 */
function apiPodSettings(api: ApiSpec, atTarget: Workload, ledger: Ledger): CapacityPlan['api'] {
  const { llmP99Ms } = atTarget;
  const terminationGracePeriodSeconds = ledger.record(
    'api.terminationGracePeriodSeconds',
    Math.ceil(llmP99Ms / 1000) + 15,
    {
      unit: 's',
      formula: 'ceil(longest LLM p99 / 1000) + 15: in-flight streams drain before SIGKILL',
      inputs: { llmP99Ms },
      source: SOURCES.arena,
    },
  );
  return { workersPerPod: api.workersPerPod, terminationGracePeriodSeconds, resources: podResources(api) };
}

/**
 * Step 10, the HorizontalPodAutoscaler (autoscaling/v2; Kubernetes docs, "Horizontal Pod Autoscaling"):
 * the replica range from step 5, the spec's CPU target, and explicit behavior: scale up fast
 * (100% or 4 pods per 15 s, no stabilisation), scale down slowly (10% or 1 pod per 60 s, 300 s window).
 * Records hpa.behavior.
 */
function hpaSettings(api: ApiSpec, replicas: CapacityPlan['replicas'], ledger: Ledger): CapacityPlan['hpa'] {
  const hpa: CapacityPlan['hpa'] = {
    enabled: api.autoscaling.enabled,
    minReplicas: replicas.min,
    maxReplicas: replicas.max,
    targetCPUUtilizationPercentage: api.autoscaling.targetCPUUtilizationPercentage,
    behavior: {
      // Scale up fast: LLM-bound load arrives in bursts and new pods take time to become ready.
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: 'Percent', value: 100, periodSeconds: 15 },
          { type: 'Pods', value: 4, periodSeconds: 15 },
        ],
      },
      // Scale down slowly: a pod being removed holds streams of up to the LLM p99.
      scaleDown: {
        stabilizationWindowSeconds: 300,
        selectPolicy: 'Min',
        policies: [
          { type: 'Percent', value: 10, periodSeconds: 60 },
          { type: 'Pods', value: 1, periodSeconds: 60 },
        ],
      },
    },
  };
  const policy =
    'scaleUp 100%/15s or 4 pods/15s (max), no stabilization; scaleDown 10%/60s or 1 pod/60s (min), 300 s window';
  ledger.record('hpa.behavior', policy, {
    unit: 'policy',
    formula: 'fast up for bursty LLM load; slow down so long streams drain',
    inputs: {},
    source: SOURCES.hpa,
  });
  return hpa;
}

/** The plan's `workload` section: the target's workload rounded for output, by request kind. */
function workloadSection(workload: WorkloadLevels): CapacityPlan['workload'] {
  const { atTarget } = workload;
  const kinds: Record<string, KindPlan> = Object.fromEntries(
    atTarget.kinds.map((k) => [
      k.name,
      {
        kind: k.kind,
        share: round(k.share),
        arrivalRatePerSecond: round(k.arrivalRatePerSecond),
        meanLatencyMs: round(k.meanLatencyMs, 2),
        concurrency: round(k.concurrency, 2),
        apiConcurrency: round(k.apiConcurrency, 2),
      },
    ]),
  );
  return {
    targetConcurrency: workload.targetConcurrency,
    baselineConcurrency: workload.baselineConcurrency,
    arrivalRatePerSecond: round(atTarget.arrivalRatePerSecond),
    apiConcurrency: round(atTarget.apiConcurrency, 2),
    llmCallsPerSecond: round(atTarget.llmCallsPerSecond),
    kinds,
  };
}

/** The plan's `pgbouncer` section: the spec's settings with the pool sizes from step 4 and descriptors from step 7. */
function pgbouncerSection(
  pgbouncer: PgBouncerSpec,
  sizing: PgBouncerSizing,
  fileDescriptors: number,
): CapacityPlan['pgbouncer'] {
  return {
    enabled: pgbouncer.enabled,
    replicas: pgbouncer.replicas,
    poolMode: pgbouncer.poolMode,
    maxClientConn: sizing.maxClientConn,
    defaultPoolSize: sizing.defaultPoolSize,
    reservePoolSize: sizing.reservePoolSize,
    databaseUserPairs: pgbouncer.databaseUserPairs,
    fileDescriptors,
  };
}
