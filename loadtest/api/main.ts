#!/usr/bin/env node
/**
 * Entry point of the reference arena API: `node dist/loadtest/api/main.js`,
 * configured only by environment variables (docs/reference-api.md).
 *
 * Process model (node:cluster), like gunicorn with uvicorn workers plus a task
 * consumer:
 * - the primary forks WEB_CONCURRENCY HTTP workers (they share PORT; the
 *   primary hands out connections round-robin) and, when ASYNC_CONCURRENCY > 0,
 *   one queue worker; it restarts a worker that dies (after 500 ms; it gives up
 *   after 20 restarts in 60 s) and tells every worker the group's state
 *   (served in /health `cluster`);
 * - each HTTP worker has its own DB pool, Redis pool and LLM semaphore, runs
 *   the (idempotent, locked) schema migration, then listens;
 * - SIGTERM or SIGINT to the primary: every worker drains (no new
 *   connections, in-flight requests and streams finish, at most
 *   SHUTDOWN_GRACE_SECONDS), then exits; the primary exits 0 when all have.
 *   A worker whose primary disappears drains and exits too.
 *
 * Exit codes: 0 after a drain, 1 when workers keep crashing, 2 bad configuration
 * (one line on stderr naming the variable).
 */
import cluster, { type Worker } from 'node:cluster';
import { errText } from '../../lib/errors.js';
import { sleep } from '../../lib/util.js';
import type { ApiConfig } from './config.js';
import { ConfigError, loadConfig } from './config.js';
import { createPool, migrate, observeCheckouts, poolStats } from './db.js';
import { SimulatedLlm } from './llm.js';
import { clusterMetrics, Metrics, serveCollection, servePrimaryAggregation } from './metrics.js';
import { ensureGroup, queueFigures } from './queue.js';
import { QueueWorker } from './queue-worker.js';
import { RedisPool } from './redis.js';
import { Semaphore } from './semaphore.js';
import { buildApp, type ClusterInfo } from './server.js';

type Role = 'http' | 'queue';
const ROLE_ENV = 'ARENA_API_ROLE';

const log = (who: string, msg: string) =>
  process.stdout.write(`${new Date().toISOString()} [${who} ${process.pid}] ${msg}\n`);

function config(): ApiConfig {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`arena-api: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

// ------------------------------------------------------------------ primary
type Roles = Map<number, { role: Role; ready: boolean }>;

/** The group's state as the primary sees it: ready HTTP workers (of the live ones) and the ready queue worker. */
function groupInfo(cfg: ApiConfig, roles: Roles): ClusterInfo {
  let ready = 0;
  let queuePid: number | null = null;
  for (const [id, r] of roles) {
    const w = cluster.workers?.[id];
    if (!w) continue;
    if (r.role === 'http' && r.ready) ready++;
    if (r.role === 'queue' && r.ready) queuePid = w.process.pid ?? null;
  }
  return {
    primary_pid: process.pid,
    http_workers_expected: cfg.workers,
    http_workers_ready: ready,
    queue_worker_pid: queuePid,
  };
}

function runPrimary(cfg: ApiConfig): void {
  const roles: Roles = new Map();
  const restarts: number[] = [];
  let shuttingDown = false;
  servePrimaryAggregation();

  const info = () => groupInfo(cfg, roles);
  const broadcast = () => {
    const msg = { type: 'arena:cluster', info: info() };
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(msg);
  };
  const fork = (role: Role) => {
    const w = cluster.fork({ [ROLE_ENV]: role });
    roles.set(w.id, { role, ready: false });
    return w;
  };

  cluster.on('message', (w: Worker, msg: { type?: string }) => {
    if (msg?.type === 'arena:ready') {
      const r = roles.get(w.id);
      if (r) r.ready = true;
      broadcast();
      const i = info();
      if (r?.role === 'http' && i.http_workers_ready === cfg.workers) {
        log('primary', `all ${cfg.workers} HTTP workers listening on ${cfg.host}:${cfg.port}`);
      }
      if (r?.role === 'queue')
        log('primary', `queue worker ${w.process.pid} consuming (concurrency ${cfg.asyncConcurrency})`);
    } else if (msg?.type === 'arena:cluster?') broadcast();
  });

  cluster.on('exit', (w, code, signal) => {
    const r = roles.get(w.id);
    roles.delete(w.id);
    broadcast();
    if (shuttingDown || !r) return;
    log('primary', `${r.role} worker ${w.process.pid} exited (${signal ?? `code ${code}`}); restarting in 500 ms`);
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length > 20) {
      log('primary', 'workers crashed 20 times within 60 s; giving up');
      void shutdown('crash loop', 1);
      return;
    }
    setTimeout(() => {
      if (!shuttingDown) fork(r.role);
    }, 500);
  });

  const shutdown = async (why: string, exitCode = 0) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log('primary', `${why}: draining workers (grace ${cfg.shutdownGraceSeconds} s)`);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    for (const w of workers) w.process.kill('SIGTERM');
    const deadline = Date.now() + (cfg.shutdownGraceSeconds + 5) * 1000;
    while (Object.keys(cluster.workers ?? {}).length > 0 && Date.now() < deadline) await sleep(50);
    for (const w of Object.values(cluster.workers ?? {})) {
      log('primary', `worker ${w?.process.pid} did not exit in time: SIGKILL`);
      w?.process.kill('SIGKILL');
    }
    log('primary', 'stopped');
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  log('primary', `starting ${cfg.workers} HTTP worker(s)${cfg.asyncConcurrency > 0 ? ' and 1 queue worker' : ''}`);
  for (let i = 0; i < cfg.workers; i++) fork('http');
  if (cfg.asyncConcurrency > 0) fork('queue');
}

// ------------------------------------------------------------------ workers
/** Cluster state as last broadcast by the primary. */
let clusterInfo: ClusterInfo = {
  primary_pid: null,
  http_workers_expected: 0,
  http_workers_ready: 0,
  queue_worker_pid: null,
};
process.on('message', (msg: { type?: string; info?: ClusterInfo }) => {
  if (msg?.type === 'arena:cluster' && msg.info) clusterInfo = msg.info;
});

/** Retry `fn` while the database or Redis is not reachable yet (the stack starts them first; in Kubernetes they may come up later). */
async function retrying<T>(what: string, fn: () => Promise<T>, attempts = 60): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
      if (i === 1 || i % 10 === 0) log('worker', `${what} failed (${errText(e)}); retrying`);
      await sleep(1000);
    }
  }
}

async function runHttpWorker(cfg: ApiConfig): Promise<void> {
  const metrics = new Metrics();
  serveCollection(metrics);
  const pool = createPool(cfg, `arena-api-${process.pid}`);
  observeCheckouts(pool, (s) => metrics.dbPoolWait.observe(s));
  metrics.probeEventLoop();
  metrics.countCpu();
  const redis = new RedisPool(cfg.redisUrl, cfg.redisMaxConnections, `arena-api-${process.pid}`);
  const slots = new Semaphore(cfg.llmSlots);
  const llm = new SimulatedLlm(cfg.llm, redis.shared);
  let shuttingDown = false;
  metrics.setProbes({
    dbPool: () => poolStats(pool, cfg),
    slots: () => ({ max: slots.max, inUse: slots.inUse, waiting: slots.waiting }),
    redis: () => ({ max: redis.max, open: redis.stats.open }),
    queue: () => queueFigures(redis.shared),
  });
  const applied = await retrying('schema migration', () => migrate(pool, cfg));
  if (applied.length > 0) log('http', `applied schema migration(s) ${applied.join(', ')}`);
  await retrying('queue group', () => ensureGroup(redis.shared));
  const app = buildApp({
    cfg,
    pool,
    redis,
    slots,
    llm,
    metrics,
    cluster: () => clusterInfo,
    metricsText: () => clusterMetrics(metrics),
    isShuttingDown: () => shuttingDown,
  });
  await app.listen({ port: cfg.port, host: cfg.host });
  process.send?.({ type: 'arena:ready' });

  const drain = async (why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log('http', `${why}: draining`);
    const force = setTimeout(() => {
      log('http', `grace of ${cfg.shutdownGraceSeconds} s over: closing remaining connections`);
      app.server.closeAllConnections();
    }, cfg.shutdownGraceSeconds * 1000);
    await app.close().catch(() => undefined);
    clearTimeout(force);
    await Promise.allSettled([pool.end(), redis.close()]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void drain('SIGTERM'));
  process.on('SIGINT', () => void drain('SIGINT'));
  process.on('disconnect', () => void drain('primary gone'));
}

async function runQueueWorker(cfg: ApiConfig): Promise<void> {
  const metrics = new Metrics();
  serveCollection(metrics);
  const redis = new RedisPool(cfg.redisUrl, Math.max(2, cfg.redisMaxConnections), `arena-queue-${process.pid}`);
  const llm = new SimulatedLlm(cfg.llm, redis.shared);
  const worker = new QueueWorker(cfg, redis, llm, metrics);
  metrics.setProbes({
    redis: () => ({ max: redis.max, open: redis.stats.open }),
    queue: () => queueFigures(redis.shared),
    queueWorker: () => ({ inFlight: worker.busy, concurrency: cfg.asyncConcurrency }),
  });
  await retrying('queue start', () => worker.start());
  process.send?.({ type: 'arena:ready' });
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log('queue', `${why}: finishing ${worker.busy} task(s)`);
    await worker.stop(cfg.shutdownGraceSeconds * 1000);
    await redis.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('disconnect', () => void stop('primary gone'));
}

// ------------------------------------------------------------------ dispatch
const cfg = config();
if (cluster.isPrimary) runPrimary(cfg);
else {
  const role = (process.env[ROLE_ENV] as Role | undefined) ?? 'http';
  (role === 'queue' ? runQueueWorker(cfg) : runHttpWorker(cfg)).catch((e) => {
    process.stderr.write(`[${role} ${process.pid}] fatal: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
