/**
 * The local stack behind `arena stack up|down|status`: PostgreSQL, PgBouncer,
 * Redis and the reference arena API on 127.0.0.1, sized by the plan through
 * the `local` profile (profile.ts), configured with the same renderers the
 * operator uses (pgbouncerIni, redisConf, apiEnv).
 *
 * This module is the orchestration; each component has its module with its
 * `start` and the `probe` that `status` uses (postgres.ts, pgbouncer.ts,
 * redis.ts, api.ts; shared helpers in component.ts), the state directory is
 * state-dir.ts and its state.json state.ts. Processes are identified by PID +
 * start time and stopped by PID only (procs.ts).
 *
 * Other modules import the stack's API from here (the re-exports below).
 */
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync, rmSync } from 'node:fs';
import { InvalidInputError } from '../../lib/errors.js';
import { REPO_ROOT } from '../../lib/util.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { REFERENCE_ENV } from '../../operator/render/env.js';
import { probeApi, redactedEnv, stackApiEnv, startApi } from './api.js';
import { APP_ROLE, StackError, stopComponent, type Ports, type ProbeResult, type StartContext } from './component.js';
import { probePgbouncer, startPgbouncer } from './pgbouncer.js';
import { probePostgres, startPostgres } from './postgres.js';
import { alive, descendants, freePort, openFilesHardLimit, portFree, stopProcess, type ProcRef } from './procs.js';
import { effectivePlan, localProfile } from './profile.js';
import { probeRedis, startRedis } from './redis.js';
import { checkTraversable, createStateDir, defaultStateDir, MARKER, prepareStateDir } from './state-dir.js';
import {
  readState,
  STATE_VERSION,
  writeState,
  type ComponentName,
  type ComponentState,
  type StackState,
} from './state.js';
import { findTools } from './tools.js';

export { REPO_ROOT } from '../../lib/util.js';
export { API_MAIN, httpGet, stackApiEnv } from './api.js';
export { APP_ROLE, PG_SUPERUSER, StackError } from './component.js';
export { showPools } from './pgbouncer.js';
export { defaultStateDir } from './state-dir.js';
export { readState, STATE_VERSION, type ComponentName, type ComponentState, type StackState } from './state.js';

/** Default ports: the standard ones with a leading 1 (API: 18000). */
export const DEFAULT_PORTS = { api: 18000, postgres: 15432, pgbouncer: 16432, redis: 16379 } as const;

/** Options of `stackUp` (the flags of `arena stack up`). */
export interface UpOptions {
  file: string;
  stateDir?: string;
  scale: number;
  workers?: number;
  freePorts: boolean;
  keep: boolean;
  apiEnv: Record<string, string>;
  /** Progress lines (without newline). */
  progress: (line: string) => void;
  /** Bound on each wait for a component to become healthy, ms. */
  waitTimeoutMs?: number;
}

/** `up`'s checks before anything is created: the tools, the local profile and plan, the state directory. */
function checkUp(spec: ArenaDeployment, o: UpOptions) {
  const tools = findTools(process.env, REPO_ROOT);
  const hard = openFilesHardLimit();
  const profile = localProfile(spec, {
    scale: o.scale,
    workers: o.workers,
    cores: availableParallelism(),
    openFilesHardLimit: hard,
  });
  const stateDir = resolve(o.stateDir ?? defaultStateDir(spec));
  checkTraversable(tools, stateDir);
  const { reuse } = prepareStateDir(stateDir);
  return { tools, hard, profile, plan: effectivePlan(profile), stateDir, reuse };
}

/** Free ports (`--free-ports`), else DEFAULT_PORTS. @throws InvalidInputError when a default port is in use. */
async function choosePorts(free: boolean): Promise<Ports> {
  if (free)
    return { api: await freePort(), postgres: await freePort(), pgbouncer: await freePort(), redis: await freePort() };
  const ports = { ...DEFAULT_PORTS };
  for (const [name, port] of Object.entries(ports)) {
    if (!(await portFree(port)))
      throw new InvalidInputError(
        `port ${port} (${name}) on 127.0.0.1 is in use; stop what holds it or use --free-ports`,
      );
  }
  return ports;
}

/** The API's environment: the stack's databases (PgBouncer when enabled, else PostgreSQL) and Redis. */
function apiEnvOf(ctx: StartContext, overrides: Record<string, string>): Record<string, string> {
  const { ports } = ctx;
  const db = ctx.profile.pgbouncer.enabled ? ports.pgbouncer : ports.postgres;
  return stackApiEnv(ctx.profile, { api: ports.api, db, redis: ports.redis }, ctx.password, overrides);
}

/** What state.json records once every component is healthy. */
function stateOf(
  spec: ArenaDeployment,
  o: UpOptions,
  ctx: StartContext,
  extra: { t0: number; hard: number; runAsUser: string | null; env: Record<string, string> },
): StackState {
  const { ports, profile } = ctx;
  const db = ctx.ad.spec.postgres.database;
  return {
    version: STATE_VERSION,
    name: spec.metadata.name,
    namespace: spec.metadata.namespace ?? 'default',
    file: o.file === '-' ? '-' : resolve(o.file),
    stateDir: ctx.dirs.state,
    startedAt: new Date(extra.t0).toISOString(),
    upSeconds: Math.round((Date.now() - extra.t0) / 100) / 10,
    runAsUser: extra.runAsUser,
    database: { name: db, user: APP_ROLE, passwordFile: ctx.passwordFile },
    components: ctx.components,
    endpoints: {
      api: `http://127.0.0.1:${ports.api}`,
      ...(profile.pgbouncer.enabled
        ? { pgbouncer: `postgresql://${APP_ROLE}@127.0.0.1:${ports.pgbouncer}/${db}` }
        : {}),
      postgres: `postgresql://${APP_ROLE}@127.0.0.1:${ports.postgres}/${db}`,
      redis: `redis://127.0.0.1:${ports.redis}/0`,
    },
    profile: {
      scale: profile.scale,
      webConcurrency: profile.webConcurrency,
      asyncConcurrency: profile.asyncConcurrency,
      pgbouncer: profile.pgbouncer,
      postgres: profile.postgres,
      redis: profile.redis,
      openFilesHardLimit: extra.hard,
      changes: profile.changes,
      checks: profile.checks,
    },
    apiEnv: redactedEnv(extra.env, ctx.password),
  };
}

/**
 * After a failed start: stop what was started (in reverse), remove the state directory unless `keep`.
 * @returns the error to throw: a StackError with the hint, or the InvalidInputError as it was.
 */
async function rollBack(ctx: StartContext, keep: boolean, e: unknown): Promise<Error> {
  ctx.progress(`start-up failed: stopping what was started${keep ? ` (keeping ${ctx.dirs.state})` : ''}`);
  for (const s of ctx.started.reverse()) await stopComponent(s.name, s.ref, 10_000);
  if (!keep) rmSync(ctx.dirs.state, { recursive: true, force: true });
  const hint = keep ? '' : ' (state directory removed; re-run with --keep to keep its logs)';
  if (e instanceof StackError) return new StackError(`${e.message}${hint}`);
  if (e instanceof InvalidInputError) return e;
  return new StackError(`stack up failed: ${(e as Error).message}${hint}`);
}

/**
 * Bring the stack up: check, choose ports, create the state directory, start PostgreSQL, PgBouncer
 * (when enabled), Redis and the API, each waited for, then write state.json.
 * @returns the state written to state.json.
 * @throws InvalidInputError (exit 2) for bad input, missing tools, busy ports or a busy state dir;
 *   StackError, a StartFailureError (exit 1) when a component does not start (what started is stopped again).
 */
export async function stackUp(spec: ArenaDeployment, o: UpOptions): Promise<StackState> {
  const t0 = Date.now();
  const { tools, hard, profile, plan, stateDir, reuse } = checkUp(spec, o);
  const ports = await choosePorts(o.freePorts);
  const { dirs, password, passwordFile } = createStateDir(tools, stateDir, reuse);
  const waitMs = o.waitTimeoutMs ?? 60_000;
  const ctx: StartContext = {
    tools,
    profile,
    plan,
    ad: profile.ad,
    ports,
    dirs,
    password,
    passwordFile,
    reuse,
    waitMs,
    progress: o.progress,
    started: [],
    components: {},
  };
  try {
    await startPostgres(ctx);
    if (profile.pgbouncer.enabled) await startPgbouncer(ctx);
    await startRedis(ctx);
    const env = apiEnvOf(ctx, o.apiEnv);
    await startApi(ctx, env);
    const state = stateOf(spec, o, ctx, { t0, hard, runAsUser: tools.runAsUser, env });
    writeState(state);
    return state;
  } catch (e) {
    throw await rollBack(ctx, o.keep, e);
  }
}

/** What `down` did to each process. */
export interface DownReport {
  stateDir: string;
  stopped: { component: string; pid: number; result: 'gone' | 'stopped' | 'killed' | 'alive' }[];
  removed: boolean;
  /** PIDs still running afterwards (should be empty). */
  survivors: number[];
}

/** The API's stop timeout: SHUTDOWN_GRACE_SECONDS (default 30; it drains that long) + 15 s, in ms. */
function apiStopTimeoutMs(s: StackState): number {
  const grace = Number(s.apiEnv[REFERENCE_ENV.shutdownGraceSeconds] ?? 30);
  return (Number.isFinite(grace) ? grace : 30) * 1000 + 15_000;
}

/** Stop one component by PID (the API: then any of its workers still alive, SIGKILL); adds to `stopped` and `survivors`. */
async function stopOne(
  s: StackState,
  name: ComponentName,
  c: ComponentState,
  o: { progress: (l: string) => void },
  out: Omit<DownReport, 'stateDir' | 'removed'>,
) {
  const ref: ProcRef = { pid: c.pid, startTime: c.startTime };
  const kids = name === 'api' ? [...descendants(c.pid), ...(c.workers ?? [])] : [];
  o.progress(
    `${name}: stopping pid ${c.pid}${kids.length ? ` (+${new Set(kids.map((k) => k.pid)).size} workers)` : ''}`,
  );
  const result = await stopComponent(name, ref, name === 'api' ? apiStopTimeoutMs(s) : undefined);
  out.stopped.push({ component: name, pid: c.pid, result });
  for (const k of kids) {
    if (!alive(k)) continue;
    const r = await stopProcess(k, 'SIGKILL', 5000);
    out.stopped.push({ component: `${name} worker`, pid: k.pid, result: r === 'stopped' ? 'killed' : r });
  }
  if (alive(ref)) out.survivors.push(c.pid);
  for (const k of kids) if (alive(k)) out.survivors.push(k.pid);
}

/**
 * Stop every process of the stack by PID, in order API (drains), Redis,
 * PgBouncer, PostgreSQL; API workers that outlive their primary are killed
 * (PID + start time checked). Removes the state directory unless `keep`.
 * @throws InvalidInputError when there is nothing to stop and no state dir.
 */
export async function stackDown(
  stateDir: string,
  o: { keep: boolean; progress: (l: string) => void },
): Promise<DownReport> {
  const S = resolve(stateDir);
  if (!existsSync(S)) throw new InvalidInputError(`no stack state in ${S} (nothing to stop)`);
  if (!existsSync(join(S, MARKER))) throw new InvalidInputError(`${S} is not an arena stack directory (no ${MARKER})`);
  const s = readState(S);
  const out: Omit<DownReport, 'stateDir' | 'removed'> = { stopped: [], survivors: [] };
  if (s && !s.stoppedAt) {
    const order: ComponentName[] = ['api', 'redis', 'pgbouncer', 'postgres'];
    for (const name of order) {
      const c = s.components[name];
      if (c) await stopOne(s, name, c, o, out);
    }
  }
  let removed = false;
  if (!o.keep && out.survivors.length === 0) {
    rmSync(S, { recursive: true, force: true });
    removed = true;
  } else if (s && !s.stoppedAt) {
    writeState({ ...s, stoppedAt: new Date().toISOString() });
  }
  return { stateDir: S, stopped: out.stopped, removed, survivors: out.survivors };
}

/** Live view of one component. */
export interface ComponentStatus {
  component: ComponentName;
  pid: number | null;
  endpoint: string;
  up: boolean;
  /** One line for the table. */
  summary: string;
  saturation: Record<string, unknown>;
  error?: string;
}

/** What `arena stack status` reports. */
export interface StatusReport {
  stateDir: string;
  name: string;
  namespace: string;
  healthy: boolean;
  components: ComponentStatus[];
}

/** Whether a component's process runs and, when it does, what its probe reads (or why it failed). */
async function statusOf(
  component: ComponentName,
  c: ComponentState,
  probe: (c: ComponentState) => Promise<ProbeResult>,
): Promise<ComponentStatus> {
  const up = alive(c);
  const endpoint = component === 'api' ? `http://127.0.0.1:${c.port}` : `127.0.0.1:${c.port}`;
  const st: ComponentStatus = { component, pid: c.pid, endpoint, up, summary: up ? '' : 'not running', saturation: {} };
  if (up) {
    try {
      Object.assign(st, await probe(c));
    } catch (e) {
      st.up = false;
      st.error = (e as Error).message;
      st.summary = `process runs but does not answer: ${st.error}`;
    }
  }
  return st;
}

/**
 * Status of every component with its live saturation, read with the sampler's
 * readers (loadtest/sampler/): PostgreSQL backends vs max_connections,
 * PgBouncer SHOW POOLS, Redis connected_clients vs maxclients, API /health
 * slots per worker.
 * @throws InvalidInputError when the state dir holds no running stack.
 */
export async function stackStatus(stateDir: string): Promise<StatusReport> {
  const S = resolve(stateDir);
  const s = readState(S);
  if (!s) throw new InvalidInputError(`no stack state in ${S}; start one with: arena stack up -f FILE`);
  if (s.stoppedAt)
    throw new InvalidInputError(
      `the stack in ${S} was stopped at ${s.stoppedAt} (data kept); start it with: arena stack up -f ${s.file} --state-dir ${S}`,
    );
  const probes: Record<ComponentName, (c: ComponentState) => Promise<ProbeResult>> = {
    postgres: (c) => probePostgres(s, c, S),
    pgbouncer: () => probePgbouncer(s),
    redis: (c) => probeRedis(c),
    api: (c) => probeApi(s, c),
  };
  const out: ComponentStatus[] = [];
  for (const name of ['postgres', 'pgbouncer', 'redis', 'api'] as const) {
    const c = s.components[name];
    if (c) out.push(await statusOf(name, c, probes[name]));
  }
  return { stateDir: S, name: s.name, namespace: s.namespace, healthy: out.every((c) => c.up), components: out };
}
