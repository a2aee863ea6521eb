/**
 * Findings: what in a plan will not hold, with stable codes, a severity and a
 * message a person can act on (it names the spec field to change and by how much).
 *
 * Codes (stable; documented in docs/capacity-model.md):
 * - ConnectionBudgetExceeded: app connections to PgBouncer exceed replicas * max_client_conn.
 * - PostgresConnectionsExceeded: server (or direct app) connections exceed max_connections - reserved.
 * - RedisMaxClientsExceeded: Redis clients at maxReplicas exceed maxclients.
 * - TargetExceedsMaxReplicas: the target needs more replicas than maxReplicas allows.
 * - LLMRateLimitBound: LLM calls at the target reach the provider's requests per minute.
 * - QueueUnstable: a queue's utilisation is >= 1 (it grows without bound).
 * - QueueNearSaturation: a queue's utilisation is >= 0.85 (waits grow steeply).
 * - PoolTimeoutLikely: P99 wait for an app DB connection exceeds pool_timeout.
 * - LLMSlotTimeoutLikely: P99 wait for an LLM slot exceeds the slot wait timeout (503s).
 * - SessionPoolingHoldsServerConnections: pool_mode=session pins a server connection per client.
 *
 * findingsFor() checks the plan in this order: connection budgets, replicas short of
 * the target, the LLM rate limit, the queues, session pooling; then sorts.
 */
import type { ArenaDeployment, ArenaDeploymentSpec } from '../api/v1alpha1/schema.js';
import {
  clientsPerPgBouncer,
  RESERVED_REDIS_CLIENTS,
  redisReplicaCap,
  serverConnectionsPerPool,
} from './connections.js';
import { offeredLoad } from './erlang.js';
import type { CapacityPlan, Finding, QueueName, QueuePlan } from './types.js';
import type { Workload } from './workload.js';

type Spec = ArenaDeploymentSpec;

export const NEAR_SATURATION = 0.85;
/** Utilisation the remedies in messages aim for. */
const AIM = 0.8;

const QUEUE_LABEL: Record<QueueName, string> = {
  appDbPool: 'app DB pool (SQLAlchemy, per worker)',
  pgbouncerServerPool: 'PgBouncer server pool',
  llmSlots: 'LLM semaphore slots (per worker)',
  asyncConsumers: 'async task consumers',
  llmRateLimit: 'LLM provider rate limit',
  apiEventLoop: 'API event loop (CPU, per worker)',
};

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

const finding = (severity: Finding['severity'], code: string, message: string): Finding => ({
  code,
  severity,
  message,
});

/**
 * Derive the findings of a plan. Pure; the order is stable (errors first, then by code and message).
 * @param atTarget the workload at the target concurrency (plan step 1).
 * @param requestsPerMinute the LLM provider's limit, undefined when unlimited.
 */
export function findingsFor(
  ad: ArenaDeployment,
  plan: CapacityPlan,
  atTarget: Workload,
  requestsPerMinute: number | undefined,
): Finding[] {
  const { spec } = ad;
  const findings = [
    ...connectionBudgetFindings(spec, plan),
    ...replicaShortfallFindings(spec, plan),
    ...llmRateLimitFindings(plan, atTarget, requestsPerMinute),
    ...queueFindings(spec.api, plan),
    ...sessionPoolingFindings(spec.pgbouncer, plan),
  ];
  const rank = (f: Finding) => (f.severity === 'error' ? 0 : 1);
  return findings.sort(
    (x, y) => rank(x) - rank(y) || x.code.localeCompare(y.code) || x.message.localeCompare(y.message),
  );
}

/**
 * The connection budgets at maxReplicas (connections.ts): app -> PgBouncer over 100% (error) or at >= 90%
 * (warning: a Service spreads clients unevenly), PgBouncer -> PostgreSQL or app -> PostgreSQL over 100%,
 * Redis clients over maxclients.
 */
function connectionBudgetFindings(spec: Spec, plan: CapacityPlan): Finding[] {
  const { api, pgbouncer } = spec;
  const { perPod, redisPerPod, appToPgbouncer, pgbouncerToPostgres, appToPostgres, redis } = plan.connections;
  const { max } = plan.replicas;
  const { maxClientConn, defaultPoolSize, reservePoolSize } = plan.pgbouncer;
  const out: Finding[] = [];
  if (appToPgbouncer && appToPgbouncer.utilization > 1) {
    const clientsPerPgBouncerNeeded = clientsPerPgBouncer(appToPgbouncer.atMaxReplicas, pgbouncer.replicas);
    const message =
      `${max} replicas x ${perPod} = ${appToPgbouncer.atMaxReplicas} app connections exceed ` +
      `${pgbouncer.replicas} PgBouncers x max_client_conn ${maxClientConn} = ${appToPgbouncer.limit}: ` +
      `raise spec.pgbouncer.maxClientConn to >= ${clientsPerPgBouncerNeeded} or lower spec.api.db.poolSize/maxOverflow`;
    out.push(finding('error', 'ConnectionBudgetExceeded', message));
  } else if (appToPgbouncer && appToPgbouncer.utilization >= 0.9) {
    const message =
      `app connections at maxReplicas use ${fmt(appToPgbouncer.utilization * 100)}% of PgBouncer's max_client_conn ` +
      `(${appToPgbouncer.atMaxReplicas} of ${appToPgbouncer.limit}); ` +
      'a Service spreads clients unevenly, so one PgBouncer may refuse connections';
    out.push(finding('warning', 'ConnectionBudgetExceeded', message));
  }
  if (pgbouncerToPostgres && pgbouncerToPostgres.utilization > 1) {
    const poolAllowed = serverConnectionsPerPool(
      pgbouncerToPostgres.limit,
      pgbouncer.replicas,
      pgbouncer.databaseUserPairs,
    );
    const message =
      `PgBouncer server connections ${pgbouncer.replicas} x (${defaultPoolSize} + ${reservePoolSize}) x ` +
      `${pgbouncer.databaseUserPairs} = ${pgbouncerToPostgres.total} exceed PostgreSQL max_connections - reserved = ` +
      `${pgbouncerToPostgres.limit}: lower spec.pgbouncer.defaultPoolSize to <= ${poolAllowed - reservePoolSize} ` +
      'or raise spec.postgres.maxConnections';
    out.push(finding('error', 'PostgresConnectionsExceeded', message));
  }
  if (appToPostgres && appToPostgres.utilization > 1) {
    const message =
      `${max} replica(s) x ${api.workersPerPod} workers x (poolSize ${api.db.poolSize} + maxOverflow ${api.db.maxOverflow}) = ` +
      `${appToPostgres.atMaxReplicas} connections exceed PostgreSQL max_connections - reserved = ${appToPostgres.limit}: ` +
      `enable spec.pgbouncer, raise spec.postgres.maxConnections to >= ` +
      `${appToPostgres.atMaxReplicas + spec.postgres.reservedConnections}, or lower the pool sizes`;
    out.push(finding('error', 'PostgresConnectionsExceeded', message));
  }
  if (redis.utilization > 1) {
    const message =
      `${max} replicas x ${redisPerPod} + ${RESERVED_REDIS_CLIENTS} = ${redis.atMaxReplicas} Redis clients exceed ` +
      `maxclients ${redis.limit}: raise spec.redis.maxClients to >= ${redis.atMaxReplicas} ` +
      'or lower spec.api.redis.maxConnections';
    out.push(finding('error', 'RedisMaxClientsExceeded', message));
  }
  return out;
}

/**
 * The target needs more replicas than maxReplicas: with a computed maxReplicas capped by a connection
 * budget, the finding carries that budget's code (Redis when its cap binds, else PgBouncer's client
 * limit or PostgreSQL's); otherwise TargetExceedsMaxReplicas (an explicit maxReplicas or fixed replicas).
 */
function replicaShortfallFindings(spec: Spec, plan: CapacityPlan): Finding[] {
  const { api, pgbouncer } = spec;
  const { perPod, redisPerPod } = plan.connections;
  const replicas = plan.replicas;
  const { targetConcurrency, apiConcurrency } = plan.workload;
  if (replicas.neededForTarget <= replicas.max) return [];
  const budgetCaps =
    api.autoscaling.enabled &&
    api.autoscaling.maxReplicas === undefined &&
    replicas.connectionCap !== null &&
    replicas.connectionCap < replicas.neededForTarget;
  if (!budgetCaps) {
    const maxField = api.autoscaling.enabled ? 'spec.api.autoscaling.maxReplicas' : 'spec.api.replicas';
    const message =
      `targetConcurrency ${fmt(targetConcurrency)} needs ${replicas.neededForTarget} API replicas ` +
      `(${fmt(apiConcurrency)} in flight / ${replicas.perPodConcurrency} per pod) but maxReplicas is ${replicas.max}: ` +
      `raise ${maxField} or spec.api.concurrencyPerWorker`;
    return [finding('error', 'TargetExceedsMaxReplicas', message)];
  }
  const redisBinds = redisReplicaCap(spec.redis.maxClients, redisPerPod) <= replicas.connectionCap!;
  const binding = redisBinds
    ? { code: 'RedisMaxClientsExceeded', field: 'spec.redis.maxClients', perPod: redisPerPod }
    : pgbouncer.enabled
      ? { code: 'ConnectionBudgetExceeded', field: 'spec.pgbouncer.maxClientConn', perPod }
      : { code: 'PostgresConnectionsExceeded', field: 'spec.postgres.maxConnections', perPod };
  const message =
    `targetConcurrency ${fmt(targetConcurrency)} needs ${replicas.neededForTarget} API replicas but the connection budget ` +
    `allows ${replicas.connectionCap} (${replicas.neededForTarget} x ${binding.perPod} connections per pod): ` +
    `maxReplicas is capped at ${replicas.max}; raise ${binding.field} or lower the per-worker pool sizes`;
  return [finding('error', binding.code, message)];
}

/**
 * The LLM provider's rate limit: utilisation = LLM calls per second / (requestsPerMinute / 60); an error at
 * >= 100% (with the concurrency the limit holds, target / utilisation), a warning at >= AIM.
 */
function llmRateLimitFindings(
  plan: CapacityPlan,
  atTarget: Workload,
  requestsPerMinute: number | undefined,
): Finding[] {
  const { llmCallsPerSecond } = atTarget;
  if (requestsPerMinute === undefined || !(llmCallsPerSecond > 0)) return [];
  const allowedPerSecond = requestsPerMinute / 60;
  const utilization = llmCallsPerSecond / allowedPerSecond;
  const holdable = Math.floor(plan.workload.targetConcurrency / utilization);
  if (utilization >= 1) {
    const message =
      `LLM calls at the target arrive at ${fmt(llmCallsPerSecond, 1)}/s (${fmt(llmCallsPerSecond * 60)} RPM) ` +
      `but the provider allows ${fmt(requestsPerMinute)} RPM: this mix holds at most ~${fmt(holdable)} in flight; ` +
      `raise spec.llm.requestsPerMinute to >= ${fmt(Math.ceil((llmCallsPerSecond * 60) / AIM))} ` +
      'or send fewer requests to the LLM';
    return [finding('error', 'LLMRateLimitBound', message)];
  }
  if (utilization >= AIM) {
    const message =
      `LLM calls at the target use ${fmt(utilization * 100)}% of the provider's ${fmt(requestsPerMinute)} RPM: ` +
      'bursts will be throttled';
    return [finding('warning', 'LLMRateLimitBound', message)];
  }
  return [];
}

/** The spec change that brings a queue to AIM utilisation: `serversNeeded` per partition (maxReplicas for async consumers). */
function queueRemedy(name: QueueName, serversNeeded: number, maxReplicas: number): string {
  switch (name) {
    case 'appDbPool':
      return `raise spec.api.db.poolSize + maxOverflow to >= ${serversNeeded} per worker`;
    case 'pgbouncerServerPool':
      return `raise spec.pgbouncer.defaultPoolSize to >= ${serversNeeded}`;
    case 'llmSlots':
      return `raise spec.api.llmSlotsPerWorker to >= ${serversNeeded}`;
    case 'asyncConsumers':
      return `raise spec.api.asyncConcurrencyPerPod to >= ${Math.ceil(serversNeeded / Math.max(1, maxReplicas))}`;
    case 'llmRateLimit':
      return '';
    case 'apiEventLoop':
      return `run ${serversNeeded}x the worker processes (spec.api.workersPerPod or maxReplicas, a core each) or lower spec.api.cpuMsPerRequest`;
  }
}

/**
 * One queue: unstable (utilisation >= 1, error, nothing else reported), near saturation (>= NEAR_SATURATION,
 * warning), and the P99 wait against the app's timeouts (pool_timeout for appDbPool, the LLM slot wait
 * timeout for llmSlots). Each message ends with the remedy: servers per partition for AIM utilisation,
 * ceil(offered load per partition / AIM) (offered load from erlang.ts).
 */
function findingsForQueue(name: QueueName, queue: QueuePlan, api: Spec['api'], maxReplicas: number): Finding[] {
  const label = QUEUE_LABEL[name];
  const perPartition = queue.servers / queue.partitions;
  const offered = offeredLoad(queue.arrivalRatePerSecond / queue.partitions, queue.serviceTimeMs);
  const remedy = queueRemedy(name, Math.ceil(offered / AIM), maxReplicas);
  const utilisation = fmt(queue.utilization * 100);
  const p99WaitMs = queue.p99WaitMs ?? 0;
  if (!queue.stable) {
    const message =
      `${label}: offered load ${fmt(offered, 1)} Erlangs on ${perPartition} servers per partition ` +
      `(utilisation ${utilisation}%) grows without bound at the target; ${remedy}`;
    return [finding('error', 'QueueUnstable', message)];
  }
  const out: Finding[] = [];
  if (queue.utilization >= NEAR_SATURATION) {
    const message = `${label}: utilisation ${utilisation}% at the target (P99 wait ${fmt(p99WaitMs, 1)} ms); ${remedy}`;
    out.push(finding('warning', 'QueueNearSaturation', message));
  }
  if (name === 'appDbPool' && p99WaitMs > api.db.poolTimeoutSeconds * 1000) {
    const message =
      `P99 wait for an app DB connection is ${fmt(p99WaitMs)} ms, above pool_timeout ${api.db.poolTimeoutSeconds} s: ` +
      `over 1% of requests will fail with a pool timeout; ${remedy}`;
    out.push(finding('error', 'PoolTimeoutLikely', message));
  }
  if (name === 'llmSlots' && p99WaitMs > api.llmSlotWaitTimeoutSeconds * 1000) {
    const message =
      `P99 wait for an LLM slot is ${fmt(p99WaitMs)} ms, above the ${api.llmSlotWaitTimeoutSeconds} s slot wait timeout: ` +
      `over 1% of LLM requests will get 503; ${remedy}`;
    out.push(finding('error', 'LLMSlotTimeoutLikely', message));
  }
  return out;
}

/** Every queue of the plan in plan order, except llmRateLimit (reported as LLMRateLimitBound). */
function queueFindings(api: Spec['api'], plan: CapacityPlan): Finding[] {
  const queues = Object.entries(plan.queues) as [QueueName, QueuePlan][];
  const reported = queues.filter(([name]) => name !== 'llmRateLimit');
  return reported.flatMap(([name, queue]) => findingsForQueue(name, queue, api, plan.replicas.max));
}

/**
 * pool_mode=session pins a PostgreSQL connection to each client: an error when the app's connections at
 * maxReplicas exceed the server pools (replicas * default_pool_size), else a warning.
 */
function sessionPoolingFindings(pgbouncer: Spec['pgbouncer'], plan: CapacityPlan): Finding[] {
  if (!pgbouncer.enabled || pgbouncer.poolMode !== 'session') return [];
  const { defaultPoolSize } = plan.pgbouncer;
  const servers = pgbouncer.replicas * defaultPoolSize;
  const clients = plan.connections.appToPgbouncer?.atMaxReplicas ?? 0;
  if (clients > servers) {
    const message =
      `pool_mode=session pins a PostgreSQL connection to each of the ${clients} app connections at maxReplicas, ` +
      `but the server pools hold ${pgbouncer.replicas} x ${defaultPoolSize} = ${servers}: ` +
      'clients beyond that wait indefinitely; use pool_mode=transaction';
    return [finding('error', 'SessionPoolingHoldsServerConnections', message)];
  }
  const message =
    'pool_mode=session pins one PostgreSQL connection per client connection for its whole life, ' +
    'so PgBouncer saves no server connections; use transaction mode unless the app needs session state';
  return [finding('warning', 'SessionPoolingHoldsServerConnections', message)];
}
