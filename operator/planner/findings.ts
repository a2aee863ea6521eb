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
 */
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import { RESERVED_REDIS_CLIENTS } from './connections.js';
import type { CapacityPlan, Finding, QueueName } from './types.js';
import type { Workload } from './workload.js';

export const NEAR_SATURATION = 0.85;
/** Utilisation the remedies in messages aim for. */
const AIM = 0.8;

const QUEUE_LABEL: Record<QueueName, string> = {
  appDbPool: 'app DB pool (SQLAlchemy, per worker)',
  pgbouncerServerPool: 'PgBouncer server pool',
  llmSlots: 'LLM semaphore slots (per worker)',
  asyncConsumers: 'async task consumers',
  llmRateLimit: 'LLM provider rate limit',
};

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** Derive the findings of a plan. Pure; the order is stable (errors first, then by code and message). */
export function findingsFor(ad: ArenaDeployment, p: CapacityPlan, wT: Workload, requestsPerMinute: number | undefined): Finding[] {
  const out: Finding[] = [];
  const add = (severity: Finding['severity'], code: string, message: string) => out.push({ code, severity, message });
  const { api, pgbouncer: pgb } = ad.spec;
  const { perPod, redisPerPod } = p.connections;
  const r = p.replicas;

  // Connection budgets at maxReplicas.
  const a2p = p.connections.appToPgbouncer;
  if (a2p && a2p.utilization > 1) {
    add('error', 'ConnectionBudgetExceeded', `${r.max} replicas x ${perPod} = ${a2p.atMaxReplicas} app connections exceed ${pgb.replicas} PgBouncers x max_client_conn ${p.pgbouncer.maxClientConn} = ${a2p.limit}: raise spec.pgbouncer.maxClientConn to >= ${Math.ceil(a2p.atMaxReplicas / pgb.replicas)} or lower spec.api.db.poolSize/maxOverflow`);
  } else if (a2p && a2p.utilization >= 0.9) {
    add('warning', 'ConnectionBudgetExceeded', `app connections at maxReplicas use ${fmt(a2p.utilization * 100)}% of PgBouncer's max_client_conn (${a2p.atMaxReplicas} of ${a2p.limit}); a Service spreads clients unevenly, so one PgBouncer may refuse connections`);
  }
  const p2pg = p.connections.pgbouncerToPostgres;
  if (p2pg && p2pg.utilization > 1) {
    add('error', 'PostgresConnectionsExceeded', `PgBouncer server connections ${pgb.replicas} x (${p.pgbouncer.defaultPoolSize} + ${p.pgbouncer.reservePoolSize}) x ${pgb.databaseUserPairs} = ${p2pg.total} exceed PostgreSQL max_connections - reserved = ${p2pg.limit}: lower spec.pgbouncer.defaultPoolSize to <= ${Math.floor(p2pg.limit / (pgb.replicas * pgb.databaseUserPairs)) - p.pgbouncer.reservePoolSize} or raise spec.postgres.maxConnections`);
  }
  const a2pg = p.connections.appToPostgres;
  if (a2pg && a2pg.utilization > 1) {
    add('error', 'PostgresConnectionsExceeded', `${r.max} replica(s) x ${api.workersPerPod} workers x (poolSize ${api.db.poolSize} + maxOverflow ${api.db.maxOverflow}) = ${a2pg.atMaxReplicas} connections exceed PostgreSQL max_connections - reserved = ${a2pg.limit}: enable spec.pgbouncer, raise spec.postgres.maxConnections to >= ${a2pg.atMaxReplicas + ad.spec.postgres.reservedConnections}, or lower the pool sizes`);
  }
  const rc = p.connections.redis;
  if (rc.utilization > 1) {
    add('error', 'RedisMaxClientsExceeded', `${r.max} replicas x ${redisPerPod} + ${RESERVED_REDIS_CLIENTS} = ${rc.atMaxReplicas} Redis clients exceed maxclients ${rc.limit}: raise spec.redis.maxClients to >= ${rc.atMaxReplicas} or lower spec.api.redis.maxConnections`);
  }

  // The target needs more replicas than allowed.
  if (r.neededForTarget > r.max) {
    if (api.autoscaling.enabled && api.autoscaling.maxReplicas === undefined && r.connectionCap !== null && r.connectionCap < r.neededForTarget) {
      const redisCap = Math.floor((ad.spec.redis.maxClients - RESERVED_REDIS_CLIENTS) / redisPerPod);
      const code = redisCap <= r.connectionCap ? 'RedisMaxClientsExceeded' : pgb.enabled ? 'ConnectionBudgetExceeded' : 'PostgresConnectionsExceeded';
      const limitName = code === 'RedisMaxClientsExceeded' ? 'spec.redis.maxClients' : pgb.enabled ? 'spec.pgbouncer.maxClientConn' : 'spec.postgres.maxConnections';
      add('error', code, `targetConcurrency ${fmt(p.workload.targetConcurrency)} needs ${r.neededForTarget} API replicas but the connection budget allows ${r.connectionCap} (${r.neededForTarget} x ${code === 'RedisMaxClientsExceeded' ? redisPerPod : perPod} connections per pod): maxReplicas is capped at ${r.max}; raise ${limitName} or lower the per-worker pool sizes`);
    } else {
      add('error', 'TargetExceedsMaxReplicas', `targetConcurrency ${fmt(p.workload.targetConcurrency)} needs ${r.neededForTarget} API replicas (${fmt(p.workload.apiConcurrency)} in flight / ${r.perPodConcurrency} per pod) but maxReplicas is ${r.max}: raise ${api.autoscaling.enabled ? 'spec.api.autoscaling.maxReplicas' : 'spec.api.replicas'} or spec.api.concurrencyPerWorker`);
    }
  }

  // The LLM provider's rate limit.
  if (requestsPerMinute !== undefined && wT.llmCallsPerSecond > 0) {
    const allowed = requestsPerMinute / 60;
    const util = wT.llmCallsPerSecond / allowed;
    const holdable = Math.floor(p.workload.targetConcurrency / util);
    if (util >= 1) {
      add('error', 'LLMRateLimitBound', `LLM calls at the target arrive at ${fmt(wT.llmCallsPerSecond, 1)}/s (${fmt(wT.llmCallsPerSecond * 60)} RPM) but the provider allows ${fmt(requestsPerMinute)} RPM: this mix holds at most ~${fmt(holdable)} in flight; raise spec.llm.requestsPerMinute to >= ${fmt(Math.ceil((wT.llmCallsPerSecond * 60) / AIM))} or send fewer requests to the LLM`);
    } else if (util >= AIM) {
      add('warning', 'LLMRateLimitBound', `LLM calls at the target use ${fmt(util * 100)}% of the provider's ${fmt(requestsPerMinute)} RPM: bursts will be throttled`);
    }
  }

  // Queues.
  for (const [name, q] of Object.entries(p.queues) as [QueueName, NonNullable<CapacityPlan['queues'][QueueName]>][]) {
    if (name === 'llmRateLimit') continue; // reported as LLMRateLimitBound
    const label = QUEUE_LABEL[name];
    const perPartition = q.servers / q.partitions;
    const offered = (q.arrivalRatePerSecond / q.partitions) * (q.serviceTimeMs / 1000);
    const need = Math.ceil(offered / AIM);
    const remedy: Record<QueueName, string> = {
      appDbPool: `raise spec.api.db.poolSize + maxOverflow to >= ${need} per worker`,
      pgbouncerServerPool: `raise spec.pgbouncer.defaultPoolSize to >= ${need}`,
      llmSlots: `raise spec.api.llmSlotsPerWorker to >= ${need}`,
      asyncConsumers: `raise spec.api.asyncConcurrencyPerPod to >= ${Math.ceil(need / Math.max(1, r.max))}`,
      llmRateLimit: '',
    };
    if (!q.stable) {
      add('error', 'QueueUnstable', `${label}: offered load ${fmt(offered, 1)} Erlangs on ${perPartition} servers per partition (utilisation ${fmt(q.utilization * 100)}%) grows without bound at the target; ${remedy[name]}`);
      continue;
    }
    if (q.utilization >= NEAR_SATURATION) {
      add('warning', 'QueueNearSaturation', `${label}: utilisation ${fmt(q.utilization * 100)}% at the target (P99 wait ${fmt(q.p99WaitMs ?? 0, 1)} ms); ${remedy[name]}`);
    }
    if (name === 'appDbPool' && (q.p99WaitMs ?? 0) > api.db.poolTimeoutSeconds * 1000) {
      add('error', 'PoolTimeoutLikely', `P99 wait for an app DB connection is ${fmt(q.p99WaitMs ?? 0)} ms, above pool_timeout ${api.db.poolTimeoutSeconds} s: over 1% of requests will fail with a pool timeout; ${remedy[name]}`);
    }
    if (name === 'llmSlots' && (q.p99WaitMs ?? 0) > api.llmSlotWaitTimeoutSeconds * 1000) {
      add('error', 'LLMSlotTimeoutLikely', `P99 wait for an LLM slot is ${fmt(q.p99WaitMs ?? 0)} ms, above the ${api.llmSlotWaitTimeoutSeconds} s slot wait timeout: over 1% of LLM requests will get 503; ${remedy[name]}`);
    }
  }

  if (pgb.enabled && pgb.poolMode === 'session') {
    const servers = pgb.replicas * p.pgbouncer.defaultPoolSize;
    const clients = a2p?.atMaxReplicas ?? 0;
    if (clients > servers) {
      add('error', 'SessionPoolingHoldsServerConnections', `pool_mode=session pins a PostgreSQL connection to each of the ${clients} app connections at maxReplicas, but the server pools hold ${pgb.replicas} x ${p.pgbouncer.defaultPoolSize} = ${servers}: clients beyond that wait indefinitely; use pool_mode=transaction`);
    } else {
      add('warning', 'SessionPoolingHoldsServerConnections', 'pool_mode=session pins one PostgreSQL connection per client connection for its whole life, so PgBouncer saves no server connections; use transaction mode unless the app needs session state');
    }
  }

  const rank = (f: Finding) => (f.severity === 'error' ? 0 : 1);
  return out.sort((x, y) => rank(x) - rank(y) || x.code.localeCompare(y.code) || x.message.localeCompare(y.message));
}
