/**
 * The stack's reference arena API: `node dist/loadtest/api/main.js`, detached,
 * with exactly the environment the rendered Deployment sets (`apiEnv`) plus
 * local hosts, ports and credentials; healthy once `/health` reports every
 * HTTP worker and the queue worker ready. `probeApi` is `arena stack
 * status`'s view (the sampler's /health reader).
 */
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lib/util.js';
import { apiEnv } from '../../operator/render/api.js';
import { ENV, REFERENCE_ENV } from '../../operator/render/env.js';
import { readHealth } from '../sampler/health.js';
import {
  APP_ROLE,
  logTail,
  running,
  StackError,
  step,
  waitFor,
  type ProbeResult,
  type StartContext,
} from './component.js';
import { alive, descendants, spawnDetached, type ProcRef } from './procs.js';
import type { LocalProfile } from './profile.js';
import type { ComponentState, StackState } from './state.js';

/** The API entry point the stack runs (dist/loadtest/api/main.js). */
export const API_MAIN = fileURLToPath(new URL('../api/main.js', import.meta.url));

/** HTTP GET on 127.0.0.1 with a fresh connection; resolves {status, body}. */
export function httpGet(port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * The API's environment: exactly the variables the rendered Deployment sets
 * (apiEnv of the scaled spec), with local hosts, ports, WEB_CONCURRENCY and
 * credentials, then the --api-env overrides.
 */
export function stackApiEnv(
  p: LocalProfile,
  ports: { api: number; db: number; redis: number },
  password: string,
  overrides: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of apiEnv(p.ad)) if (v.value !== undefined) env[v.name] = v.value;
  const db = p.ad.spec.postgres.database;
  Object.assign(env, {
    [ENV.port]: String(ports.api),
    [REFERENCE_ENV.host]: '127.0.0.1',
    [ENV.workers]: String(p.webConcurrency),
    [ENV.dbHost]: '127.0.0.1',
    [ENV.dbPort]: String(ports.db),
    [ENV.dbName]: db,
    [ENV.dbUser]: APP_ROLE,
    [ENV.dbPassword]: password,
    [ENV.databaseUrl]: `postgresql://${APP_ROLE}:${encodeURIComponent(password)}@127.0.0.1:${ports.db}/${encodeURIComponent(db)}`,
    [ENV.redisUrl]: `redis://127.0.0.1:${ports.redis}/0`,
  });
  return { ...env, ...overrides };
}

/** `env` with the password (plain and URL-encoded) replaced by "<db-password>" (what state.json records). */
export function redactedEnv(env: Record<string, string>, password: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    out[k] = v.split(encodeURIComponent(password)).join('<db-password>').split(password).join('<db-password>');
  }
  return out;
}

/** The cluster view of one /health answer. */
interface ClusterHealth {
  cluster: { http_workers_ready: number; http_workers_expected: number; queue_worker_pid: number | null };
}

/** Resolves true once /health answers 200 with every HTTP worker (and the queue worker, when there is one) ready. */
async function ready(ctx: StartContext, ref: ProcRef, apiLog: string): Promise<true | undefined> {
  if (!alive(ref)) throw new StackError(`the API exited during start-up${logTail(apiLog)}`);
  const r = await httpGet(ctx.ports.api, '/health');
  if (r.status !== 200) return undefined;
  const h = JSON.parse(r.body) as ClusterHealth;
  const workersReady = h.cluster.http_workers_ready >= h.cluster.http_workers_expected;
  return workersReady && (ctx.profile.asyncConcurrency === 0 || h.cluster.queue_worker_pid !== null) ? true : undefined;
}

/**
 * Start the API (detached, its own process group, output to logs/api.log) with `env` and wait until
 * every worker is ready; records the workers' PIDs for `down`.
 * @throws StackError when it exits or does not become ready (the caller stops what was started).
 */
export async function startApi(ctx: StartContext, env: Record<string, string>): Promise<void> {
  const apiLog = join(ctx.dirs.logs, 'api.log');
  const { webConcurrency, asyncConcurrency } = ctx.profile;
  const queue = asyncConcurrency > 0 ? '1 queue worker' : 'no queue worker';
  await step(ctx, `api: start ${webConcurrency} HTTP worker(s) + ${queue} on 127.0.0.1:${ctx.ports.api}`, async () => {
    const ref = spawnDetached(process.execPath, [API_MAIN], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_ENV: 'production', ...env },
      logFile: apiLog,
    });
    const component = running(ctx, 'api', ref, ctx.ports.api, apiLog);
    await waitFor(
      'api',
      ctx.waitMs,
      () => ready(ctx, ref, apiLog),
      () => logTail(apiLog),
    );
    component.workers = descendants(ref.pid);
    return ref;
  });
}

/** `arena stack status` for the API: /health of every worker (LLM slots in use, waiting, in flight, DB pool). */
export async function probeApi(s: StackState, c: ComponentState): Promise<ProbeResult> {
  const h = await readHealth(new URL(`http://127.0.0.1:${c.port}/health`), { workers: s.profile.webConcurrency });
  const sat = {
    workers_seen: h.workers_seen,
    http_workers_ready: h.http_workers_ready ?? undefined,
    queue_worker_pid: h.queue_worker_pid ?? undefined,
    llm_slots_in_use: h.processing_count,
    llm_slots: h.max_concurrent,
    llm_waiting: h.waiting_count,
    in_flight: h.in_flight,
    db_pool_total: h.db_pool_total,
    db_pool_idle: h.db_pool_idle,
    db_pool_waiting: h.db_pool_waiting,
    per_worker: h.per_worker.map((w) => ({
      pid: w.pid,
      available_slots: w.available_slots,
      max_concurrent: w.max_concurrent,
      active_sessions: w.active_sessions,
      db_pool: w.db_pool,
    })),
  };
  const summary =
    `${sat.http_workers_ready} HTTP workers + queue worker ${sat.queue_worker_pid ?? 'none'}; ` +
    `LLM slots ${sat.llm_slots_in_use}/${sat.llm_slots} in use (${sat.llm_waiting} waiting, sampled ${h.workers_seen} worker(s)); ` +
    `DB pool ${sat.db_pool_total} open, ${sat.db_pool_waiting} waiting`;
  return { summary, saturation: sat };
}
