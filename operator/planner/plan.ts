/**
 * The capacity planner: ArenaDeployment (validated, defaults applied) -> CapacityPlan.
 * Pure and deterministic: the same spec gives the same plan, byte for byte.
 *
 * Order of computation (each step's formula lives in its own module):
 * 1. workload at target and baseline concurrency (Little's law, workload.ts);
 * 2. replicas needed for target and baseline from per-pod concurrency, capped by
 *    the connection budgets (connections.ts, replicas below);
 * 3. PgBouncer pool sizes when unset (pgbouncer.ts);
 * 4. connection budgets at maxReplicas (connections.ts);
 * 5. queues at the target with maxReplicas (erlang.ts);
 * 6. findings (findings.ts) and HPA settings.
 */
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import {
  dbConnectionsPerPod,
  pgbouncerClientCapacity,
  pgbouncerFileDescriptors,
  pgbouncerServerConnections,
  postgresBudget,
  redisClients,
  redisConnectionsPerPod,
  redisFileDescriptors,
  replicasWithin,
  RESERVED_REDIS_CLIENTS,
} from './connections.js';
import { analyzeQueue } from './erlang.js';
import { findingsFor } from './findings.js';
import { ceilCount, Ledger, round } from './ledger.js';
import { sizePgBouncer } from './pgbouncer.js';
import type { CapacityPlan, KindPlan, QueueName, QueuePlan } from './types.js';
import { workloadAt, type Demand } from './workload.js';

const SRC = {
  little: "Little's law L = lambda * W (Little 1961)",
  sqlalchemy: 'SQLAlchemy QueuePool: pool_size + max_overflow connections per engine (one engine per worker process)',
  postgres: 'PostgreSQL docs: max_connections minus superuser_reserved_connections/reserved_connections',
  pgbouncer: 'PgBouncer docs: max_client_conn, default_pool_size, reserve_pool_size (per database/user pair, per process)',
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
 * Compute the capacity plan of one ArenaDeployment.
 * @param ad a validated ArenaDeployment with defaults applied (see validate.ts).
 * @returns the plan; `derivations` only when opts.explain.
 * @throws RangeError only on inputs the schema forbids (the CLI validates first).
 */
export function plan(ad: ArenaDeployment, opts: PlanOptions = {}): CapacityPlan {
  const L = new Ledger();
  const { load, api, llm, pgbouncer: pgb, postgres: pg, redis } = ad.spec;
  const target = load.targetConcurrency;
  const baseline = L.record('workload.baselineConcurrency', load.baselineConcurrency ?? Math.ceil(target / 10), {
    unit: 'requests in flight',
    formula: load.baselineConcurrency !== undefined ? 'spec.load.baselineConcurrency' : 'ceil(targetConcurrency / 10) (default)',
    inputs: { targetConcurrency: target },
    source: SRC.arena,
  });

  // 1. workload
  const wT = workloadAt(target, load.requestMix);
  const wB = workloadAt(baseline, load.requestMix);
  const meanLatency = wT.kinds.reduce((s, k) => s + k.share * k.meanLatencyMs, 0);
  L.record('workload.arrivalRatePerSecond', round(wT.arrivalRatePerSecond), {
    unit: 'requests/s',
    formula: 'targetConcurrency / (sum_k share_k * T_k / 1000), T_k = serviceTimeMs + dbTimeMs + mean LLM ms',
    inputs: { targetConcurrency: target, meanLatencyMs: round(meanLatency) },
    source: SRC.little,
  });
  L.record('workload.apiConcurrency', round(wT.apiConcurrency), {
    unit: 'requests in flight in the API',
    formula: 'sum_k lambda_k * apiHold_k (async kinds hold the API only while submitting)',
    inputs: Object.fromEntries(wT.kinds.map((k) => [`${k.name}.apiConcurrency`, round(k.apiConcurrency)])),
    source: SRC.little,
  });
  L.record('workload.llmCallsPerSecond', round(wT.llmCallsPerSecond), {
    unit: 'calls/s',
    formula: 'sum of arrival rates of kinds with llmTimeMs',
    inputs: Object.fromEntries(wT.kinds.filter((k) => k.llm).map((k) => [`${k.name}.arrivalRatePerSecond`, round(k.arrivalRatePerSecond)])),
    source: SRC.little,
  });

  // 2. replicas
  const perPodConcurrency = L.record('replicas.perPodConcurrency', api.workersPerPod * api.concurrencyPerWorker, {
    unit: 'requests in flight per pod',
    formula: 'workersPerPod * concurrencyPerWorker',
    inputs: { workersPerPod: api.workersPerPod, concurrencyPerWorker: api.concurrencyPerWorker },
    source: SRC.arena,
  });
  const neededForTarget = L.record('replicas.neededForTarget', Math.max(1, ceilCount(wT.apiConcurrency / perPodConcurrency)), {
    unit: 'replicas',
    formula: 'max(1, ceil(apiConcurrency at target / perPodConcurrency))',
    inputs: { apiConcurrency: round(wT.apiConcurrency), perPodConcurrency },
    source: SRC.little,
  });
  const neededForBaseline = L.record('replicas.neededForBaseline', Math.max(1, ceilCount(wB.apiConcurrency / perPodConcurrency)), {
    unit: 'replicas',
    formula: 'max(1, ceil(apiConcurrency at baseline / perPodConcurrency))',
    inputs: { apiConcurrency: round(wB.apiConcurrency), perPodConcurrency },
    source: SRC.little,
  });
  const perPod = L.record('connections.perPod', dbConnectionsPerPod(api.workersPerPod, api.db.poolSize, api.db.maxOverflow), {
    unit: 'connections',
    formula: 'workersPerPod * (poolSize + maxOverflow)',
    inputs: { workersPerPod: api.workersPerPod, poolSize: api.db.poolSize, maxOverflow: api.db.maxOverflow },
    source: SRC.sqlalchemy,
  });
  const redisPerPod = L.record('connections.redisPerPod', redisConnectionsPerPod(api.workersPerPod, api.redis.maxConnections), {
    unit: 'connections',
    formula: 'workersPerPod * redis.maxConnections',
    inputs: { workersPerPod: api.workersPerPod, maxConnections: api.redis.maxConnections },
    source: SRC.redis,
  });
  const pgLimit = L.record('connections.postgresBudget', postgresBudget(pg.maxConnections, pg.reservedConnections), {
    unit: 'connections',
    formula: 'postgres.maxConnections - postgres.reservedConnections',
    inputs: { maxConnections: pg.maxConnections, reservedConnections: pg.reservedConnections },
    source: SRC.postgres,
  });

  // 3. PgBouncer (sized for the replicas the target needs)
  const sizing = sizePgBouncer({
    replicas: pgb.replicas,
    databaseUserPairs: pgb.databaseUserPairs,
    poolMode: pgb.poolMode,
    maxClientConn: pgb.maxClientConn,
    defaultPoolSize: pgb.defaultPoolSize,
    reservePoolSize: pgb.reservePoolSize,
    postgresBudget: pgLimit,
    appClientConnections: neededForTarget * perPod,
    transactionsPerSecond: wT.db.arrivalRatePerSecond,
    transactionTimeMs: wT.db.serviceTimeMs,
  });
  if (pgb.enabled) {
    L.record('pgbouncer.maxClientConn', sizing.maxClientConn, {
      unit: 'client connections per PgBouncer',
      formula: sizing.computed.maxClientConn ? 'max(100, roundup100(ceil(neededForTarget * perPod / replicas) * 1.2))' : 'spec.pgbouncer.maxClientConn',
      inputs: { neededForTarget, perPod, replicas: pgb.replicas },
      source: SRC.pgbouncer,
    });
    L.record('pgbouncer.defaultPoolSize', sizing.defaultPoolSize, {
      unit: 'server connections per database/user pair per PgBouncer',
      formula: sizing.computed.defaultPoolSize
        ? 'max(1, min(max(serversNeeded, 5), budgetPerPool - reservePoolSize)); serversNeeded = smallest c with ErlangC(c, lambda_tx/replicas * S_tx) <= 0.1'
        : 'spec.pgbouncer.defaultPoolSize',
      inputs: { serversNeeded: sizing.serversNeeded, budgetPerPool: sizing.budgetPerPool, transactionsPerSecond: round(wT.db.arrivalRatePerSecond), transactionTimeMs: round(wT.db.serviceTimeMs) },
      source: `${SRC.pgbouncer}; ${SRC.erlang}`,
    });
    L.record('pgbouncer.reservePoolSize', sizing.reservePoolSize, {
      unit: 'server connections',
      formula: sizing.computed.reservePoolSize ? 'max(1, ceil(0.1 * max(serversNeeded, 5))), trimmed to the budget' : 'spec.pgbouncer.reservePoolSize',
      inputs: { serversNeeded: sizing.serversNeeded, budgetPerPool: sizing.budgetPerPool },
      source: SRC.pgbouncer,
    });
  }

  // replicas capped by the connection budgets
  const clientLimit = pgb.enabled ? (sizing.computed.maxClientConn ? Infinity : pgbouncerClientCapacity(pgb.replicas, sizing.maxClientConn)) : pgLimit;
  const redisCap = replicasWithin(redis.maxClients - RESERVED_REDIS_CLIENTS, redisPerPod);
  const dbCap = replicasWithin(clientLimit, perPod);
  const cap = Math.min(dbCap, redisCap);
  const connectionCap = L.record('replicas.connectionCap', Number.isFinite(cap) ? cap : null, {
    unit: 'replicas',
    formula: 'min(floor(app DB client limit / perPod), floor((redis.maxClients - 2) / redisPerPod))',
    inputs: { dbClientLimit: Number.isFinite(clientLimit) ? clientLimit : null, perPod, redisMaxClients: redis.maxClients, redisPerPod },
    source: `${SRC.pgbouncer}; ${SRC.redis}`,
  });
  const fixed = !api.autoscaling.enabled;
  const max = L.record(
    'replicas.max',
    fixed ? (api.replicas ?? neededForTarget) : (api.autoscaling.maxReplicas ?? Math.max(1, Math.min(neededForTarget, cap))),
    {
      unit: 'replicas',
      formula: fixed
        ? 'spec.api.replicas (autoscaling disabled), else neededForTarget'
        : api.autoscaling.maxReplicas !== undefined
          ? 'spec.api.autoscaling.maxReplicas'
          : 'max(1, min(neededForTarget, connectionCap))',
      inputs: { neededForTarget, connectionCap },
      source: SRC.arena,
    },
  );
  const min = L.record('replicas.min', fixed ? max : (api.autoscaling.minReplicas ?? Math.min(neededForBaseline, max)), {
    unit: 'replicas',
    formula: fixed ? 'replicas.max (autoscaling disabled)' : api.autoscaling.minReplicas !== undefined ? 'spec.api.autoscaling.minReplicas' : 'min(neededForBaseline, replicas.max)',
    inputs: { neededForBaseline, max },
    source: SRC.arena,
  });

  // 4. connection budgets at maxReplicas
  const atMax = max * perPod;
  const connections: CapacityPlan['connections'] = { perPod, redisPerPod, redis: { atMaxReplicas: 0, limit: 0, utilization: 0 } };
  if (pgb.enabled) {
    const limit = pgbouncerClientCapacity(pgb.replicas, sizing.maxClientConn);
    connections.appToPgbouncer = { atMaxReplicas: atMax, limit, utilization: round(atMax / limit) };
    L.record('connections.appToPgbouncer.atMaxReplicas', atMax, { unit: 'client connections', formula: 'replicas.max * perPod', inputs: { max, perPod }, source: SRC.sqlalchemy });
    L.record('connections.appToPgbouncer.limit', limit, { unit: 'client connections', formula: 'pgbouncer.replicas * maxClientConn', inputs: { replicas: pgb.replicas, maxClientConn: sizing.maxClientConn }, source: SRC.pgbouncer });
    const total = pgbouncerServerConnections(pgb.replicas, sizing.defaultPoolSize, sizing.reservePoolSize, pgb.databaseUserPairs);
    connections.pgbouncerToPostgres = { total, limit: pgLimit, utilization: round(total / Math.max(1, pgLimit)) };
    L.record('connections.pgbouncerToPostgres.total', total, {
      unit: 'server connections',
      formula: 'pgbouncer.replicas * (defaultPoolSize + reservePoolSize) * databaseUserPairs',
      inputs: { replicas: pgb.replicas, defaultPoolSize: sizing.defaultPoolSize, reservePoolSize: sizing.reservePoolSize, databaseUserPairs: pgb.databaseUserPairs },
      source: SRC.pgbouncer,
    });
  } else {
    connections.appToPostgres = { atMaxReplicas: atMax, limit: pgLimit, utilization: round(atMax / Math.max(1, pgLimit)) };
    L.record('connections.appToPostgres.atMaxReplicas', atMax, { unit: 'connections', formula: 'replicas.max * perPod', inputs: { max, perPod }, source: SRC.sqlalchemy });
  }
  const redisAt = redisClients(max, redisPerPod);
  connections.redis = { atMaxReplicas: redisAt, limit: redis.maxClients, utilization: round(redisAt / redis.maxClients) };
  L.record('connections.redis.atMaxReplicas', redisAt, {
    unit: 'clients',
    formula: 'replicas.max * workersPerPod * api.redis.maxConnections + 2 (operator and sampler)',
    inputs: { max, redisPerPod },
    source: SRC.redis,
  });
  const pgbFds = L.record('pgbouncer.fileDescriptors', pgbouncerFileDescriptors(sizing.maxClientConn, sizing.defaultPoolSize, sizing.reservePoolSize, pgb.databaseUserPairs), {
    unit: 'file descriptors per PgBouncer',
    formula: 'maxClientConn + (defaultPoolSize + reservePoolSize) * databaseUserPairs',
    inputs: { maxClientConn: sizing.maxClientConn, defaultPoolSize: sizing.defaultPoolSize, reservePoolSize: sizing.reservePoolSize, databaseUserPairs: pgb.databaseUserPairs },
    source: SRC.pgbouncerFd,
  });
  const redisFds = L.record('redis.fileDescriptors', redisFileDescriptors(redis.maxClients), { unit: 'file descriptors', formula: 'maxClients + 32', inputs: { maxClients: redis.maxClients }, source: SRC.redis });

  // 5. queues at the target with maxReplicas
  const workers = max * api.workersPerPod;
  const queues: Partial<Record<QueueName, QueuePlan>> = {};
  const addQueue = (name: QueueName, servers: number, partitions: number, d: Demand, what: string) => {
    const q = analyzeQueue(servers, d.arrivalRatePerSecond / partitions, d.serviceTimeMs, d.serviceCv2);
    queues[name] = {
      servers: servers * partitions,
      partitions,
      arrivalRatePerSecond: round(d.arrivalRatePerSecond),
      serviceTimeMs: round(d.serviceTimeMs),
      serviceCv2: round(d.serviceCv2),
      utilization: round(q.utilization),
      pWait: round(q.pWait),
      meanWaitMs: q.meanWaitMs === null ? null : round(q.meanWaitMs, 2),
      p99WaitMs: q.p99WaitMs === null ? null : round(q.p99WaitMs, 2),
      stable: q.stable,
    };
    L.record(`queues.${name}.p99WaitMs`, queues[name]!.p99WaitMs, {
      unit: 'ms',
      formula: `M/G/c per partition: c = ${servers}, lambda = arrival / partitions, S = serviceTimeMs, cs^2 = serviceCv2; ${what}`,
      inputs: { servers, partitions, arrivalRatePerSecond: round(d.arrivalRatePerSecond), serviceTimeMs: round(d.serviceTimeMs), serviceCv2: round(d.serviceCv2), utilization: round(q.utilization), pWait: round(q.pWait) },
      source: SRC.erlang,
    });
  };
  if (wT.db.arrivalRatePerSecond > 0) {
    addQueue('appDbPool', api.db.poolSize + api.db.maxOverflow, workers, wT.db, 'one pool per worker process (replicas.max * workersPerPod partitions)');
    // In session mode a server connection follows a client for its whole life: no transaction queue to model.
    if (pgb.enabled && pgb.poolMode !== 'session') {
      addQueue('pgbouncerServerPool', sizing.defaultPoolSize, pgb.replicas, wT.db, 'one server pool per PgBouncer (reserve pool not counted)');
    }
  }
  if (wT.llmSlots.arrivalRatePerSecond > 0) {
    addQueue('llmSlots', api.llmSlotsPerWorker, workers, wT.llmSlots, 'one MAX_CONCURRENT_REQUESTS semaphore per worker process');
  }
  if (wT.asyncTasks.arrivalRatePerSecond > 0) {
    addQueue('asyncConsumers', max * api.asyncConcurrencyPerPod, 1, wT.asyncTasks, 'one consumer group shared by all pods (Redis Streams)');
  }
  if (llm.requestsPerMinute !== undefined && wT.llmCallsPerSecond > 0) {
    addQueue('llmRateLimit', 1, 1, { arrivalRatePerSecond: wT.llmCallsPerSecond, serviceTimeMs: 60_000 / llm.requestsPerMinute, serviceCv2: 0 }, 'the provider limit as one deterministic server (M/D/1), S = 60000 / requestsPerMinute');
  }

  // 6. HPA, pod settings
  const grace = L.record('api.terminationGracePeriodSeconds', Math.ceil(wT.llmP99Ms / 1000) + 15, {
    unit: 's',
    formula: 'ceil(longest LLM p99 / 1000) + 15: in-flight streams drain before SIGKILL',
    inputs: { llmP99Ms: wT.llmP99Ms },
    source: SRC.arena,
  });
  const cpuMilli = api.workersPerPod * CPU_PER_WORKER_MILLI;
  const memMi = api.workersPerPod * MEMORY_PER_WORKER_MIB;
  const resources = {
    requests: { cpu: api.resources?.requests?.cpu ?? `${cpuMilli}m`, memory: api.resources?.requests?.memory ?? `${memMi}Mi` },
    limits: {
      ...(api.resources?.limits?.cpu ? { cpu: api.resources.limits.cpu } : {}),
      memory: api.resources?.limits?.memory ?? `${memMi * 2}Mi`,
    },
  };

  const kinds: Record<string, KindPlan> = {};
  for (const k of wT.kinds) {
    kinds[k.name] = {
      kind: k.kind,
      share: round(k.share),
      arrivalRatePerSecond: round(k.arrivalRatePerSecond),
      meanLatencyMs: round(k.meanLatencyMs, 2),
      concurrency: round(k.concurrency, 2),
      apiConcurrency: round(k.apiConcurrency, 2),
    };
  }

  const result: CapacityPlan = {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'CapacityPlan',
    metadata: { name: ad.metadata.name, namespace: ad.metadata.namespace ?? 'default' },
    workload: {
      targetConcurrency: target,
      baselineConcurrency: baseline,
      arrivalRatePerSecond: round(wT.arrivalRatePerSecond),
      apiConcurrency: round(wT.apiConcurrency, 2),
      llmCallsPerSecond: round(wT.llmCallsPerSecond),
      kinds,
    },
    replicas: { min, max, neededForTarget, neededForBaseline, connectionCap, perPodConcurrency },
    connections,
    pgbouncer: {
      enabled: pgb.enabled,
      replicas: pgb.replicas,
      poolMode: pgb.poolMode,
      maxClientConn: sizing.maxClientConn,
      defaultPoolSize: sizing.defaultPoolSize,
      reservePoolSize: sizing.reservePoolSize,
      databaseUserPairs: pgb.databaseUserPairs,
      fileDescriptors: pgbFds,
    },
    redis: { managed: redis.managed, maxClients: redis.maxClients, fileDescriptors: redisFds },
    api: { workersPerPod: api.workersPerPod, terminationGracePeriodSeconds: grace, resources },
    hpa: {
      enabled: api.autoscaling.enabled,
      minReplicas: min,
      maxReplicas: max,
      targetCPUUtilizationPercentage: api.autoscaling.targetCPUUtilizationPercentage,
      behavior: {
        // Scale up fast: LLM-bound load arrives in bursts and new pods take time to become ready.
        scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }] },
        // Scale down slowly: a pod being removed holds streams of up to the LLM p99.
        scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Min', policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }, { type: 'Pods', value: 1, periodSeconds: 60 }] },
      },
    },
    queues,
    findings: [],
  };
  L.record('hpa.behavior', 'scaleUp 100%/15s or 4 pods/15s (max), no stabilization; scaleDown 10%/60s or 1 pod/60s (min), 300 s window', {
    unit: 'policy',
    formula: 'fast up for bursty LLM load; slow down so long streams drain',
    inputs: {},
    source: SRC.hpa,
  });
  result.findings = findingsFor(ad, result, wT, llm.requestsPerMinute);
  if (opts.explain) result.derivations = L.entries;
  return result;
}
