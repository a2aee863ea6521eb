/**
 * The `local` profile: how `arena stack up` maps an ArenaDeployment's plan onto
 * one machine. Pure (no I/O), so the rule is unit-tested and documented in
 * docs/reference-api.md ("Local scaling rule"):
 *
 * 1. `--scale X` (0 < X <= 1, default 1) multiplies spec.load.targetConcurrency
 *    and baselineConcurrency (rounded up, at least 1) and the spec is planned
 *    again: every number derived from the target (PgBouncer max_client_conn,
 *    default_pool_size and reserve_pool_size when computed, replicas) shrinks
 *    with it; values set explicitly in the spec stay.
 * 2. The machine is one pod: one API process group with WEB_CONCURRENCY =
 *    `--workers N`, else min(spec.api.workersPerPod, CPU cores); one queue
 *    worker with ASYNC_CONCURRENCY = spec.api.asyncConcurrencyPerPod.
 *    Per-worker settings are the spec's, unchanged (DB_POOL_SIZE,
 *    DB_MAX_OVERFLOW, DB_POOL_TIMEOUT, REDIS_MAX_CONNECTIONS,
 *    MAX_CONCURRENT_REQUESTS, SLOT_WAIT_TIMEOUT_SECONDS, WORKER_CONCURRENCY,
 *    RATE_LIMIT_PER_MINUTE, LLM_*).
 * 3. One PgBouncer with the plan's per-PgBouncer settings (the pgbouncer.ini
 *    the operator renders); PostgreSQL with max_connections =
 *    spec.postgres.maxConnections and superuser_reserved_connections =
 *    spec.postgres.reservedConnections; Redis with maxclients from the plan.
 * 4. Open files: every server gets its soft limit raised to the hard limit.
 *    When a server needs more descriptors than the hard limit allows, the
 *    setting is capped (Redis maxclients = limit - 32; PgBouncer
 *    max_client_conn = limit - server pools - 16) and the cap is reported.
 */
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { plan as planOf } from '../../operator/planner/plan.js';
import type { CapacityPlan } from '../../operator/planner/types.js';

/** The inputs of the local rule besides the spec: the flags and what this machine offers. */
export interface LocalOptions {
  /** 0 < scale <= 1. */
  scale: number;
  /** --workers override of WEB_CONCURRENCY. */
  workers?: number;
  /** CPU cores of this machine (os.availableParallelism()). */
  cores: number;
  /** Hard limit of open files (the soft limit the servers get). */
  openFilesHardLimit: number;
}

/** One setting that differs between the Kubernetes plan and the local stack. */
export interface Change {
  setting: string;
  plan: string | number;
  local: string | number;
  why: string;
}

/** A budget checked locally: `need` must fit in `limit`. */
export interface LimitCheck {
  what: string;
  need: number;
  limit: number;
  ok: boolean;
  /** What happens when it does not fit (a cap, or what will fail). */
  note: string;
}

/** The local profile of a spec. */
export interface LocalProfile {
  /** The spec after --scale (what was planned). */
  ad: ArenaDeployment;
  /** Plan of the scaled spec: its pgbouncer/redis settings are rendered. */
  plan: CapacityPlan;
  /** Plan of the spec as written (for the "scaled" report). */
  specPlan: CapacityPlan;
  scale: number;
  webConcurrency: number;
  asyncConcurrency: number;
  /** Effective server settings (after any open-files cap). */
  pgbouncer: {
    enabled: boolean;
    maxClientConn: number;
    defaultPoolSize: number;
    reservePoolSize: number;
    poolMode: string;
    databaseUserPairs: number;
  };
  postgres: { maxConnections: number; superuserReservedConnections: number };
  redis: { maxClients: number };
  changes: Change[];
  checks: LimitCheck[];
}

/** Descriptors kept for a server's own files (logs, sockets, listeners) on top of its client connections. */
export const SERVER_FD_MARGIN = 16;
/** Descriptors an API worker needs besides its client connections (DB pool, Redis, files). */
export const API_FD_MARGIN = 64;

/** structuredClone without losing types. */
const clone = <T>(x: T): T => structuredClone(x);

/** The spec with --scale applied to its load, and the changes that made. */
function scaledSpec(spec: ArenaDeployment, scale: number): { ad: ArenaDeployment; changes: Change[] } {
  const ad = clone(spec);
  const load = ad.spec.load;
  const changes: Change[] = [];
  if (scale < 1) {
    const t = load.targetConcurrency;
    load.targetConcurrency = Math.max(1, Math.ceil(t * scale));
    changes.push({
      setting: 'spec.load.targetConcurrency',
      plan: t,
      local: load.targetConcurrency,
      why: `--scale ${scale}`,
    });
    const b = load.baselineConcurrency ?? Math.ceil(t / 10);
    load.baselineConcurrency = Math.min(load.targetConcurrency, Math.max(1, Math.ceil(b * scale)));
    changes.push({
      setting: 'spec.load.baselineConcurrency',
      plan: b,
      local: load.baselineConcurrency,
      why: `--scale ${scale}`,
    });
  }
  return { ad, changes };
}

/** One machine = one pod: the process and replica changes, and (with --scale) the plan values that shrank. */
function machineChanges(
  o: LocalOptions,
  ad: ArenaDeployment,
  specPlan: CapacityPlan,
  plan: CapacityPlan,
  webConcurrency: number,
): Change[] {
  const changes: Change[] = [];
  const api = ad.spec.api;
  changes.push({
    setting: 'WEB_CONCURRENCY (API worker processes)',
    plan: api.workersPerPod,
    local: webConcurrency,
    why:
      o.workers !== undefined ? '--workers' : `min(spec.api.workersPerPod ${api.workersPerPod}, ${o.cores} CPU cores)`,
  });
  const replicas = `${specPlan.replicas.min}..${specPlan.replicas.max}`;
  changes.push({
    setting: 'API replicas (pods)',
    plan: replicas,
    local: 1,
    why: 'one machine = one pod (one process group)',
  });
  const pgb = ad.spec.pgbouncer;
  const onePgbouncer = 'one PgBouncer process with the per-PgBouncer settings of the plan';
  if (pgb.enabled) changes.push({ setting: 'PgBouncer replicas', plan: pgb.replicas, local: 1, why: onePgbouncer });
  if (o.scale < 1) {
    const why = `planned for targetConcurrency x ${o.scale}`;
    const diff = (name: string, a: number, b: number) =>
      a !== b && changes.push({ setting: name, plan: a, local: b, why });
    diff('pgbouncer max_client_conn', specPlan.pgbouncer.maxClientConn, plan.pgbouncer.maxClientConn);
    diff('pgbouncer default_pool_size', specPlan.pgbouncer.defaultPoolSize, plan.pgbouncer.defaultPoolSize);
    diff('pgbouncer reserve_pool_size', specPlan.pgbouncer.reservePoolSize, plan.pgbouncer.reservePoolSize);
    diff('API maxReplicas (reported, not run)', specPlan.replicas.max, plan.replicas.max);
  }
  return changes;
}

/** Server pools of one PgBouncer: (default_pool_size + reserve_pool_size) x database/user pairs. */
const serverPools = (p: CapacityPlan['pgbouncer']) => (p.defaultPoolSize + p.reservePoolSize) * p.databaseUserPairs;

/**
 * The open-files checks (PgBouncer when enabled, Redis, an API worker) against the hard limit, and the
 * PgBouncer max_client_conn and Redis maxclients capped to fit it.
 */
function openFilesChecks(
  ad: ArenaDeployment,
  plan: CapacityPlan,
  hard: number,
): { checks: LimitCheck[]; maxClientConn: number; maxClients: number } {
  const p = plan.pgbouncer;
  const api = ad.spec.api;
  const checks: LimitCheck[] = [];
  let maxClientConn = p.maxClientConn;
  let maxClients = plan.redis.maxClients;
  const raise = '(raise the hard limit: ulimit -Hn)';
  if (ad.spec.pgbouncer.enabled) {
    const need = p.maxClientConn + serverPools(p) + SERVER_FD_MARGIN;
    const ok = need <= hard;
    if (!ok) maxClientConn = Math.max(1, hard - serverPools(p) - SERVER_FD_MARGIN);
    const note = ok
      ? 'fits'
      : `CAPS THE PLAN: max_client_conn lowered from ${p.maxClientConn} to ${maxClientConn} ${raise}`;
    checks.push({ what: 'PgBouncer open files (max_client_conn + server pools + 16)', need, limit: hard, ok, note });
  }
  {
    const need = plan.redis.maxClients + 32;
    const ok = need <= hard;
    if (!ok) maxClients = Math.max(1, hard - 32);
    const note = ok
      ? 'fits'
      : `CAPS THE PLAN: maxclients lowered from ${plan.redis.maxClients} to ${maxClients} ${raise}`;
    checks.push({ what: 'Redis open files (maxclients + 32)', need, limit: hard, ok, note });
  }
  {
    const need =
      api.concurrencyPerWorker + api.db.poolSize + api.db.maxOverflow + api.redis.maxConnections + API_FD_MARGIN;
    const ok = need <= hard;
    const note = ok
      ? 'fits'
      : 'CAPS THE PLAN: a worker cannot hold WORKER_CONCURRENCY connections; accepts fail with EMFILE';
    checks.push({
      what: 'API worker open files (WORKER_CONCURRENCY + DB pool + Redis + 64)',
      need,
      limit: hard,
      ok,
      note,
    });
  }
  return { checks, maxClientConn, maxClients };
}

/** `need` against `limit`: ok when it fits, else `failure` as the note. */
const budget = (what: string, need: number, limit: number, failure: string): LimitCheck => ({
  what,
  need,
  limit,
  ok: need <= limit,
  note: need <= limit ? 'fits' : failure,
});

/** The connection budgets of this machine: app -> PgBouncer -> PostgreSQL (or app -> PostgreSQL), Redis clients. */
function connectionChecks(
  ad: ArenaDeployment,
  plan: CapacityPlan,
  webConcurrency: number,
  maxClientConn: number,
  maxClients: number,
): LimitCheck[] {
  const api = ad.spec.api;
  const checks: LimitCheck[] = [];
  const appClients = webConcurrency * (api.db.poolSize + api.db.maxOverflow);
  const pgBudget = ad.spec.postgres.maxConnections - ad.spec.postgres.reservedConnections;
  if (ad.spec.pgbouncer.enabled) {
    checks.push(
      budget(
        'app -> PgBouncer clients (WEB_CONCURRENCY x (DB_POOL_SIZE + DB_MAX_OVERFLOW))',
        appClients,
        maxClientConn,
        'PgBouncer refuses the clients over max_client_conn (the app sees connection errors -> 503)',
      ),
      budget(
        'PgBouncer -> PostgreSQL ((default_pool_size + reserve_pool_size) x pairs)',
        serverPools(plan.pgbouncer),
        pgBudget,
        'PostgreSQL refuses server connections over max_connections - reserved',
      ),
    );
  } else {
    const failure = 'PostgreSQL refuses connections over max_connections - reserved (503 db_unavailable)';
    checks.push(budget('app -> PostgreSQL (no PgBouncer)', appClients, pgBudget, failure));
  }
  const redisNeed = (webConcurrency + (api.asyncConcurrencyPerPod > 0 ? 1 : 0)) * api.redis.maxConnections + 2;
  const redisFailure = 'Redis refuses clients over maxclients ("max number of clients reached")';
  checks.push(
    budget(
      'Redis clients ((API workers + queue worker) x REDIS_MAX_CONNECTIONS + 2)',
      redisNeed,
      maxClients,
      redisFailure,
    ),
  );
  return checks;
}

/**
 * Apply the local rule to a validated spec (defaults applied).
 * @throws RangeError when scale is not in (0, 1] or workers < 1 (the CLI checks flags first).
 */
export function localProfile(spec: ArenaDeployment, o: LocalOptions): LocalProfile {
  if (!(o.scale > 0 && o.scale <= 1)) throw new RangeError(`scale must be in (0, 1], got ${o.scale}`);
  if (o.workers !== undefined && !(Number.isInteger(o.workers) && o.workers >= 1))
    throw new RangeError(`workers must be >= 1, got ${o.workers}`);
  const specPlan = planOf(spec);
  const { ad, changes } = scaledSpec(spec, o.scale);
  const plan = planOf(ad);
  const api = ad.spec.api;
  const webConcurrency = o.workers ?? Math.max(1, Math.min(api.workersPerPod, o.cores));
  changes.push(...machineChanges(o, ad, specPlan, plan, webConcurrency));
  const files = openFilesChecks(ad, plan, o.openFilesHardLimit);
  const { maxClientConn, maxClients } = files;
  const p = plan.pgbouncer;
  const pg = ad.spec.postgres;
  return {
    ad,
    plan,
    specPlan,
    scale: o.scale,
    webConcurrency,
    asyncConcurrency: api.asyncConcurrencyPerPod,
    pgbouncer: {
      enabled: ad.spec.pgbouncer.enabled,
      maxClientConn,
      defaultPoolSize: p.defaultPoolSize,
      reservePoolSize: p.reservePoolSize,
      poolMode: p.poolMode,
      databaseUserPairs: p.databaseUserPairs,
    },
    postgres: { maxConnections: pg.maxConnections, superuserReservedConnections: pg.reservedConnections },
    redis: { maxClients },
    changes,
    checks: [...files.checks, ...connectionChecks(ad, plan, webConcurrency, maxClientConn, maxClients)],
  };
}

/** The plan with the local caps applied (what pgbouncerIni / redisConf render). */
export function effectivePlan(p: LocalProfile): CapacityPlan {
  const out = clone(p.plan);
  out.pgbouncer.maxClientConn = p.pgbouncer.maxClientConn;
  out.redis.maxClients = p.redis.maxClients;
  return out;
}
