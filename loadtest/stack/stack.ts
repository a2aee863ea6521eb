/**
 * The local stack behind `arena stack up|down|status`: PostgreSQL, PgBouncer,
 * Redis and the reference arena API on 127.0.0.1, sized by the plan through
 * the `local` profile (profile.ts), configured with the same renderers the
 * operator uses (pgbouncerIni, redisConf, apiEnv).
 *
 * State directory (default $TMPDIR/arena-stack/<namespace>-<name>):
 *
 *   .arena-stack      marker: only a directory holding it is ever removed
 *   state.json        PIDs (+ start times), ports, paths, profile (mode 600)
 *   db-password       the generated password of the app role (mode 600)
 *   pg/               PGDATA (owned by the run-as user, mode 700)
 *   run/              pgbouncer.ini, userlist.txt, users.ini, redis.conf,
 *                     unix sockets, pid files (run-as user, mode 700)
 *   logs/             postgres.log, pgbouncer.log, redis.log, api.log
 *
 * Processes are identified by PID + start time and stopped by PID only.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import pg from 'pg';
import { Redis } from 'ioredis';
import { InvalidInputError, StartFailureError } from '../../lib/errors.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { apiEnv } from '../../operator/render/api.js';
import { ENV, REFERENCE_ENV } from '../../operator/render/env.js';
import { pgbouncerIni } from '../../operator/render/pgbouncer.js';
import { redisConf } from '../../operator/render/redis.js';
import { alive, descendants, freePort, openFilesHardLimit, portFree, procRef, readPidFile, runCommand, spawnDetached, stopProcess, type ProcRef } from './procs.js';
import { effectivePlan, localProfile, type Change, type LimitCheck, type LocalProfile } from './profile.js';
import { findTools, type Tools } from './tools.js';
import { readHealth } from '../sampler/health.js';
import { readPgbouncer, showPools as sampleShowPools, userPools, type PoolRow } from '../sampler/pgbouncer.js';
import { readPostgres } from '../sampler/postgres.js';
import { readRedis } from '../sampler/redis.js';

/** Repository root (this file is dist/loadtest/stack/stack.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The API entry point the stack runs. */
export const API_MAIN = fileURLToPath(new URL('../api/main.js', import.meta.url));

/** Default ports: the standard ones with a leading 1 (API: 18000). */
export const DEFAULT_PORTS = { api: 18000, postgres: 15432, pgbouncer: 16432, redis: 16379 } as const;
/** The database role the API logs in as. */
export const APP_ROLE = 'arena_app';
/** PostgreSQL superuser of the local cluster (local socket, trust). */
export const PG_SUPERUSER = 'postgres';
const MARKER = '.arena-stack';
const STATE_VERSION = 1;

export type ComponentName = 'postgres' | 'pgbouncer' | 'redis' | 'api';

export interface ComponentState {
  pid: number;
  startTime: string | null;
  host: string;
  port: number;
  log: string;
  /** API only: worker PIDs when the stack came up (checked again by `down`). */
  workers?: ProcRef[];
}

/** The state file (state.json). */
export interface StackState {
  version: number;
  name: string;
  namespace: string;
  file: string;
  stateDir: string;
  startedAt: string;
  upSeconds: number;
  stoppedAt?: string;
  runAsUser: string | null;
  database: { name: string; user: string; passwordFile: string };
  components: Partial<Record<ComponentName, ComponentState>>;
  endpoints: Record<string, string>;
  profile: {
    scale: number;
    webConcurrency: number;
    asyncConcurrency: number;
    pgbouncer: LocalProfile['pgbouncer'];
    postgres: LocalProfile['postgres'];
    redis: LocalProfile['redis'];
    openFilesHardLimit: number;
    changes: Change[];
    checks: LimitCheck[];
  };
  /** The API's environment, DB_PASSWORD and the URL's password replaced by "<db-password>". */
  apiEnv: Record<string, string>;
}

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

/** Default state directory of a spec: $TMPDIR/arena-stack/<namespace>-<name>. */
export function defaultStateDir(ad: ArenaDeployment): string {
  return join(tmpdir(), 'arena-stack', `${ad.metadata.namespace ?? 'default'}-${ad.metadata.name}`);
}

/** Read state.json, or null when there is none. @throws InvalidInputError when it is unreadable. */
export function readState(stateDir: string): StackState | null {
  const f = join(stateDir, 'state.json');
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as StackState;
  } catch (e) {
    throw new InvalidInputError(`${f}: not a stack state file (${(e as Error).message})`);
  }
}

function writeState(s: StackState): void {
  const f = join(s.stateDir, 'state.json');
  writeFileSync(`${f}.tmp`, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  chmodSync(`${f}.tmp`, 0o600);
  renameSync(`${f}.tmp`, f);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it returns a value (not undefined), at most timeoutMs. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, diagnose: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof StackError) throw e; // a definite failure (the process died): no point waiting
      last = (e as Error).message;
    }
    if (Date.now() >= deadline) throw new StackError(`${what} not healthy within ${Math.round(timeoutMs / 1000)} s${last ? ` (last error: ${last})` : ''}${diagnose()}`);
    await sleep(100);
  }
}

/** A failure while starting or stopping: one line, exit code 1. */
export class StackError extends StartFailureError {
  constructor(message: string) {
    super(message, 'ARENA_STACK_START_FAILURE');
    this.name = 'StackError';
  }
}

/** Last non-empty line of a log file, as "; <file>: <line>" (for one-line errors). */
function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
    const last = lines[lines.length - 1];
    return last ? `; ${file}: ${last.trim().slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

function owned(tools: Tools, path: string, mode: number): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  if (tools.runAsUid !== null && tools.runAsGid !== null) chownSync(path, tools.runAsUid, tools.runAsGid);
}

function writeOwned(tools: Tools, path: string, content: string, mode: number): void {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  if (tools.runAsUid !== null && tools.runAsGid !== null) chownSync(path, tools.runAsUid, tools.runAsGid);
}

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
export function stackApiEnv(p: LocalProfile, ports: { api: number; db: number; redis: number }, password: string, overrides: Record<string, string>): Record<string, string> {
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

function redacted(env: Record<string, string>, password: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = v.split(encodeURIComponent(password)).join('<db-password>').split(password).join('<db-password>');
  return out;
}

/**
 * The servers run as the run-as user: every existing ancestor of the state dir
 * must let that user through (x permission), or initdb fails with a bare EACCES.
 * @throws InvalidInputError naming the first directory it cannot enter.
 */
function checkTraversable(tools: Tools, dir: string): void {
  if (tools.runAsUid === null) return;
  let d = dirname(dir);
  const blocked: string[] = [];
  for (;;) {
    if (existsSync(d)) {
      const st = statSync(d);
      const ok = st.uid === tools.runAsUid ? st.mode & 0o100 : st.gid === tools.runAsGid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) blocked.push(`${d} (mode ${(st.mode & 0o777).toString(8)})`);
    }
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  if (blocked.length > 0)
    throw new InvalidInputError(`--state-dir ${dir}: the servers run as user '${tools.runAsUser}', which cannot enter ${blocked[blocked.length - 1]}; choose a directory it can reach (the default is under ${tmpdir()}) or allow it (chmod o+x)`);
}

/** Check the state dir is ours (or absent/empty) and nothing runs from it. @returns data to reuse after `down --keep`. */
function prepareStateDir(dir: string): { reuse: boolean } {
  if (!existsSync(dir)) return { reuse: false };
  const entries = readdirSync(dir);
  if (entries.length === 0) return { reuse: false };
  if (!entries.includes(MARKER)) throw new InvalidInputError(`--state-dir ${dir}: exists and is not an arena stack directory (no ${MARKER}); choose another directory`);
  const s = readState(dir);
  if (s && !s.stoppedAt) {
    const running = Object.entries(s.components).filter(([, c]) => c && alive(c));
    if (running.length > 0) throw new InvalidInputError(`a stack is already running from ${dir} (${running.map(([n, c]) => `${n} pid ${c!.pid}`).join(', ')}); stop it with: arena stack down --state-dir ${dir}`);
    throw new InvalidInputError(`${dir} holds the state of a stack that is no longer running; clean up with: arena stack down --state-dir ${dir}`);
  }
  return { reuse: existsSync(join(dir, 'pg', 'PG_VERSION')) && existsSync(join(dir, 'db-password')) };
}

/**
 * Bring the stack up.
 * @returns the state written to state.json.
 * @throws InvalidInputError (exit 2) for bad input, missing tools, busy ports or a busy state dir;
 *   StackError, a StartFailureError (exit 1) when a component does not start (what started is stopped again).
 */
export async function stackUp(spec: ArenaDeployment, o: UpOptions): Promise<StackState> {
  const t0 = Date.now();
  const tools = findTools(process.env, REPO_ROOT);
  const hard = openFilesHardLimit();
  const profile = localProfile(spec, { scale: o.scale, workers: o.workers, cores: availableParallelism(), openFilesHardLimit: hard });
  const plan = effectivePlan(profile);
  const ad = profile.ad;
  const S = resolve(o.stateDir ?? defaultStateDir(spec));
  checkTraversable(tools, S);
  const { reuse } = prepareStateDir(S);
  const waitMs = o.waitTimeoutMs ?? 60_000;

  // ports
  const ports = o.freePorts
    ? { api: await freePort(), postgres: await freePort(), pgbouncer: await freePort(), redis: await freePort() }
    : { ...DEFAULT_PORTS };
  if (!o.freePorts) {
    for (const [name, port] of Object.entries(ports)) {
      if (!(await portFree(port))) throw new InvalidInputError(`port ${port} (${name}) on 127.0.0.1 is in use; stop what holds it or use --free-ports`);
    }
  }
  const pgbEnabled = profile.pgbouncer.enabled;

  // directories
  mkdirSync(S, { recursive: true, mode: 0o711 });
  chmodSync(S, 0o711);
  writeFileSync(join(S, MARKER), 'arena stack state directory: `arena stack down` removes it\n');
  const run = join(S, 'run');
  const logs = join(S, 'logs');
  const pgdata = join(S, 'pg');
  owned(tools, run, 0o700);
  owned(tools, logs, 0o750);
  owned(tools, pgdata, 0o700);
  const passwordFile = join(S, 'db-password');
  const password = reuse ? readFileSync(passwordFile, 'utf8').trim() : randomBytes(24).toString('base64url');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);

  const started: { name: ComponentName; ref: ProcRef }[] = [];
  const components: StackState['components'] = {};
  const track = (name: ComponentName, ref: ProcRef) => {
    started.push({ name, ref });
    o.progress(`${name}: running, pid ${ref.pid}`);
  };
  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    o.progress(`${label} ...`);
    const v = await fn();
    o.progress(`${label.split(':', 1)[0]}: ok (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    return v;
  };
  const pgEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

  try {
    // ---------------------------------------------------------------- PostgreSQL
    const pgLog = join(logs, 'postgres.log');
    if (!reuse) {
      await step(`postgres: initdb ${pgdata}`, async () => {
        const r = await runCommand(tools, tools.initdb, ['-D', pgdata, '-U', PG_SUPERUSER, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'], { cwd: run, timeoutMs: 120_000, env: pgEnv });
        if (r.code !== 0) throw new StackError(`initdb failed (exit ${r.code}): ${r.output.split('\n').slice(-1)[0]}`);
      });
    } else o.progress(`postgres: reusing the data kept in ${pgdata}`);
    const conf = [
      '# written by arena stack up (local profile); included from postgresql.conf',
      `listen_addresses = '127.0.0.1'`,
      `port = ${ports.postgres}`,
      `unix_socket_directories = '${run}'`,
      `max_connections = ${profile.postgres.maxConnections}`,
      `superuser_reserved_connections = ${profile.postgres.superuserReservedConnections}`,
      `shared_buffers = '128MB'`,
      '# throwaway local data: no durability',
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'log_min_messages = warning',
      '',
    ].join('\n');
    writeOwned(tools, join(pgdata, 'arena-stack.conf'), conf, 0o600);
    const pgConf = join(pgdata, 'postgresql.conf');
    if (!readFileSync(pgConf, 'utf8').includes("include 'arena-stack.conf'")) appendFileSync(pgConf, "\ninclude 'arena-stack.conf'\n");
    await step(`postgres: start on 127.0.0.1:${ports.postgres} (max_connections ${profile.postgres.maxConnections})`, async () => {
      const r = await runCommand(tools, tools.pgCtl, ['-D', pgdata, '-l', pgLog, '-w', '-t', String(Math.round(waitMs / 1000)), 'start'], { cwd: run, timeoutMs: waitMs + 5000, env: pgEnv });
      const pid = readPidFile(join(pgdata, 'postmaster.pid'));
      const ref = pid ? procRef(pid) : null;
      if (ref) {
        track('postgres', ref);
        components.postgres = { ...ref, host: '127.0.0.1', port: ports.postgres, log: pgLog };
      }
      if (r.code !== 0 || !ref) throw new StackError(`postgres did not start (pg_ctl exit ${r.code})${logTail(pgLog)}`);
      return ref;
    });
    await step(`postgres: role ${APP_ROLE} and database ${ad.spec.postgres.database}`, async () => {
      const c = new pg.Client({ host: run, port: ports.postgres, user: PG_SUPERUSER, database: 'postgres' });
      await c.connect();
      try {
        const pw = c.escapeLiteral(password);
        const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE])).rowCount;
        await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${c.escapeIdentifier(APP_ROLE)} LOGIN PASSWORD ${pw}`);
        const db = ad.spec.postgres.database;
        if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount) await c.query(`CREATE DATABASE ${c.escapeIdentifier(db)} OWNER ${c.escapeIdentifier(APP_ROLE)}`);
      } finally {
        await c.end();
      }
    });

    // ---------------------------------------------------------------- PgBouncer
    if (pgbEnabled) {
      const pgbLog = join(logs, 'pgbouncer.log');
      const pidfile = join(run, 'pgbouncer.pid');
      writeOwned(tools, join(run, 'userlist.txt'), `"${APP_ROLE}" "${password}"\n`, 0o600);
      writeOwned(tools, join(run, 'users.ini'), `stats_users = ${APP_ROLE}\n`, 0o600);
      const ini = pgbouncerIni(ad, plan, {
        listenAddr: '127.0.0.1',
        listenPort: ports.pgbouncer,
        authDir: run,
        postgresHost: '127.0.0.1',
        postgresPort: ports.postgres,
        extra: { unix_socket_dir: run, pidfile, logfile: pgbLog },
      });
      writeOwned(tools, join(run, 'pgbouncer.ini'), ini, 0o600);
      const p = profile.pgbouncer;
      await step(`pgbouncer: start on 127.0.0.1:${ports.pgbouncer} (max_client_conn ${p.maxClientConn}, default_pool_size ${p.defaultPoolSize}, reserve_pool_size ${p.reservePoolSize}, pool_mode ${p.poolMode})`, async () => {
        const r = await runCommand(tools, tools.pgbouncer, ['-d', join(run, 'pgbouncer.ini')], { cwd: run, timeoutMs: 30_000 });
        if (r.code !== 0) throw new StackError(`pgbouncer did not start (exit ${r.code}: ${r.output.split('\n').slice(-1)[0]})${logTail(pgbLog)}`);
        const ref = await waitFor('pgbouncer pid file', 10_000, async () => {
          const pid = readPidFile(pidfile);
          return pid ? (procRef(pid) ?? undefined) : undefined;
        }, () => logTail(pgbLog));
        track('pgbouncer', ref);
        components.pgbouncer = { ...ref, host: '127.0.0.1', port: ports.pgbouncer, log: pgbLog };
        await waitFor('pgbouncer', waitMs, async () => {
          const c = new pg.Client({ host: '127.0.0.1', port: ports.pgbouncer, user: APP_ROLE, password, database: ad.spec.postgres.database });
          await c.connect();
          try {
            await c.query('SELECT 1');
            return true;
          } finally {
            await c.end().catch(() => undefined);
          }
        }, () => logTail(pgbLog));
      });
    }

    // ---------------------------------------------------------------- Redis
    const redisLog = join(logs, 'redis.log');
    const redisPid = join(run, 'redis.pid');
    writeOwned(tools, join(run, 'redis.conf'), redisConf(plan, { bind: '127.0.0.1', port: ports.redis, dir: run, extra: { daemonize: 'yes', pidfile: redisPid, logfile: redisLog } }), 0o600);
    await step(`redis: start on 127.0.0.1:${ports.redis} (maxclients ${profile.redis.maxClients})`, async () => {
      const r = await runCommand(tools, tools.redisServer, [join(run, 'redis.conf')], { cwd: run, timeoutMs: 30_000 });
      if (r.code !== 0) throw new StackError(`redis-server did not start (exit ${r.code}: ${r.output.split('\n').slice(-1)[0]})${logTail(redisLog)}`);
      const ref = await waitFor('redis pid file', 10_000, async () => {
        const pid = readPidFile(redisPid);
        return pid ? (procRef(pid) ?? undefined) : undefined;
      }, () => logTail(redisLog));
      track('redis', ref);
      components.redis = { ...ref, host: '127.0.0.1', port: ports.redis, log: redisLog };
      const maxclients = await waitFor('redis', waitMs, async () => {
        const c = new Redis({ host: '127.0.0.1', port: ports.redis, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        try {
          await c.connect();
          return Number(((await c.config('GET', 'maxclients')) as string[])[1]);
        } finally {
          c.disconnect();
        }
      }, () => logTail(redisLog));
      if (maxclients !== profile.redis.maxClients) o.progress(`redis: WARNING maxclients is ${maxclients}, not ${profile.redis.maxClients} (Redis lowered it to fit its open-files limit)`);
    });

    // ---------------------------------------------------------------- API
    const apiLog = join(logs, 'api.log');
    const env = stackApiEnv(profile, { api: ports.api, db: pgbEnabled ? ports.pgbouncer : ports.postgres, redis: ports.redis }, password, o.apiEnv);
    await step(`api: start ${profile.webConcurrency} HTTP worker(s) + ${profile.asyncConcurrency > 0 ? '1 queue worker' : 'no queue worker'} on 127.0.0.1:${ports.api}`, async () => {
      const ref = spawnDetached(process.execPath, [API_MAIN], {
        cwd: REPO_ROOT,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_ENV: 'production', ...env },
        logFile: apiLog,
      });
      track('api', ref);
      components.api = { ...ref, host: '127.0.0.1', port: ports.api, log: apiLog };
      await waitFor('api', waitMs, async () => {
        if (!alive(ref)) throw new StackError(`the API exited during start-up${logTail(apiLog)}`);
        const r = await httpGet(ports.api, '/health');
        if (r.status !== 200) return undefined;
        const h = JSON.parse(r.body) as { cluster: { http_workers_ready: number; http_workers_expected: number; queue_worker_pid: number | null } };
        const ready = h.cluster.http_workers_ready >= h.cluster.http_workers_expected && (profile.asyncConcurrency === 0 || h.cluster.queue_worker_pid !== null);
        return ready ? true : undefined;
      }, () => logTail(apiLog));
      components.api.workers = descendants(ref.pid);
      return ref;
    });

    const state: StackState = {
      version: STATE_VERSION,
      name: spec.metadata.name,
      namespace: spec.metadata.namespace ?? 'default',
      file: o.file === '-' ? '-' : resolve(o.file),
      stateDir: S,
      startedAt: new Date(t0).toISOString(),
      upSeconds: Math.round((Date.now() - t0) / 100) / 10,
      runAsUser: tools.runAsUser,
      database: { name: ad.spec.postgres.database, user: APP_ROLE, passwordFile },
      components,
      endpoints: {
        api: `http://127.0.0.1:${ports.api}`,
        ...(pgbEnabled ? { pgbouncer: `postgresql://${APP_ROLE}@127.0.0.1:${ports.pgbouncer}/${ad.spec.postgres.database}` } : {}),
        postgres: `postgresql://${APP_ROLE}@127.0.0.1:${ports.postgres}/${ad.spec.postgres.database}`,
        redis: `redis://127.0.0.1:${ports.redis}/0`,
      },
      profile: {
        scale: profile.scale,
        webConcurrency: profile.webConcurrency,
        asyncConcurrency: profile.asyncConcurrency,
        pgbouncer: profile.pgbouncer,
        postgres: profile.postgres,
        redis: profile.redis,
        openFilesHardLimit: hard,
        changes: profile.changes,
        checks: profile.checks,
      },
      apiEnv: redacted(env, password),
    };
    writeState(state);
    return state;
  } catch (e) {
    o.progress(`start-up failed: stopping what was started${o.keep ? ` (keeping ${S})` : ''}`);
    for (const s of started.reverse()) await stopComponent(s.name, s.ref, 10_000);
    if (!o.keep) rmSync(S, { recursive: true, force: true });
    const hint = o.keep ? '' : ' (state directory removed; re-run with --keep to keep its logs)';
    if (e instanceof StackError) throw new StackError(`${e.message}${hint}`);
    if (e instanceof InvalidInputError) throw e;
    throw new StackError(`stack up failed: ${(e as Error).message}${hint}`);
  }
}

/**
 * Signal and timeout per component: SIGTERM drains the API (its timeout is
 * SHUTDOWN_GRACE_SECONDS + 15 s), Redis shuts down on SIGTERM, SIGINT is
 * PgBouncer's safe shutdown and PostgreSQL's fast shutdown. SIGKILL after the timeout.
 */
const STOP: Record<ComponentName, { sig: NodeJS.Signals; timeoutMs: number }> = {
  api: { sig: 'SIGTERM', timeoutMs: 45_000 },
  redis: { sig: 'SIGTERM', timeoutMs: 10_000 },
  pgbouncer: { sig: 'SIGINT', timeoutMs: 10_000 },
  postgres: { sig: 'SIGINT', timeoutMs: 30_000 },
};

async function stopComponent(name: ComponentName, ref: ProcRef, timeoutMs?: number) {
  return stopProcess(ref, STOP[name].sig, timeoutMs ?? STOP[name].timeoutMs);
}

/** What `down` did to each process. */
export interface DownReport {
  stateDir: string;
  stopped: { component: string; pid: number; result: 'gone' | 'stopped' | 'killed' | 'alive' }[];
  removed: boolean;
  /** PIDs still running afterwards (should be empty). */
  survivors: number[];
}

/**
 * Stop every process of the stack by PID, in order API (drains), Redis,
 * PgBouncer, PostgreSQL; API workers that outlive their primary are killed
 * (PID + start time checked). Removes the state directory unless `keep`.
 * @throws InvalidInputError when there is nothing to stop and no state dir.
 */
export async function stackDown(stateDir: string, o: { keep: boolean; progress: (l: string) => void }): Promise<DownReport> {
  const S = resolve(stateDir);
  if (!existsSync(S)) throw new InvalidInputError(`no stack state in ${S} (nothing to stop)`);
  if (!existsSync(join(S, MARKER))) throw new InvalidInputError(`${S} is not an arena stack directory (no ${MARKER})`);
  const s = readState(S);
  const stopped: DownReport['stopped'] = [];
  const survivors: number[] = [];
  if (s && !s.stoppedAt) {
    const order: ComponentName[] = ['api', 'redis', 'pgbouncer', 'postgres'];
    for (const name of order) {
      const c = s.components[name];
      if (!c) continue;
      const ref: ProcRef = { pid: c.pid, startTime: c.startTime };
      const kids = name === 'api' ? [...descendants(c.pid), ...(c.workers ?? [])] : [];
      o.progress(`${name}: stopping pid ${c.pid}${kids.length ? ` (+${new Set(kids.map((k) => k.pid)).size} workers)` : ''}`);
      // the API drains for SHUTDOWN_GRACE_SECONDS (default 30) before it exits
      const grace = Number(s.apiEnv[REFERENCE_ENV.shutdownGraceSeconds] ?? 30);
      const result = await stopComponent(name, ref, name === 'api' ? (Number.isFinite(grace) ? grace : 30) * 1000 + 15_000 : undefined);
      stopped.push({ component: name, pid: c.pid, result });
      for (const k of kids) {
        if (!alive(k)) continue;
        const r = await stopProcess(k, 'SIGKILL', 5000);
        stopped.push({ component: `${name} worker`, pid: k.pid, result: r === 'stopped' ? 'killed' : r });
      }
      if (alive(ref)) survivors.push(c.pid);
      for (const k of kids) if (alive(k)) survivors.push(k.pid);
    }
  }
  let removed = false;
  if (!o.keep && survivors.length === 0) {
    rmSync(S, { recursive: true, force: true });
    removed = true;
  } else if (s && !s.stoppedAt) {
    writeState({ ...s, stoppedAt: new Date().toISOString() });
  }
  return { stateDir: S, stopped, removed, survivors };
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

export interface StatusReport {
  stateDir: string;
  name: string;
  namespace: string;
  healthy: boolean;
  components: ComponentStatus[];
}

/** A client on the stack's PgBouncer admin console (as the stats user). */
function pgbouncerAdmin(s: StackState): pg.Client {
  const c = s.components.pgbouncer!;
  return new pg.Client({ host: c.host, port: c.port, user: s.database.user, password: readFileSync(s.database.passwordFile, 'utf8').trim(), database: 'pgbouncer' });
}

/** PgBouncer SHOW POOLS rows for the stack's database (admin console, as the stats user). */
export async function showPools(s: StackState): Promise<PoolRow[]> {
  const client = pgbouncerAdmin(s);
  await client.connect();
  try {
    return userPools(await sampleShowPools(client), s.database.name);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const pct = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? `${Math.round((100 * a) / b)}%` : '-');

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
  if (s.stoppedAt) throw new InvalidInputError(`the stack in ${S} was stopped at ${s.stoppedAt} (data kept); start it with: arena stack up -f ${s.file} --state-dir ${S}`);
  const out: ComponentStatus[] = [];
  const probe = async (component: ComponentName, endpoint: string, fn: (c: ComponentState) => Promise<{ summary: string; saturation: Record<string, unknown> }>) => {
    const c = s.components[component];
    if (!c) return;
    const up = alive(c);
    const st: ComponentStatus = { component, pid: c.pid, endpoint, up, summary: up ? '' : 'not running', saturation: {} };
    if (up) {
      try {
        Object.assign(st, await fn(c));
      } catch (e) {
        st.up = false;
        st.error = (e as Error).message;
        st.summary = `process runs but does not answer: ${st.error}`;
      }
    }
    out.push(st);
  };

  await probe('postgres', `127.0.0.1:${s.components.postgres?.port}`, async (c) => {
    const client = new pg.Client({ host: join(S, 'run'), port: c.port, user: PG_SUPERUSER, database: 'postgres' });
    await client.connect();
    try {
      const r = await readPostgres(client, s.database.user);
      const sat = {
        backends: r.backends,
        app_backends: r.user_backends,
        active: r.active,
        idle: r.idle,
        idle_in_transaction: r.idle_in_transaction,
        waiting_on_locks: r.waiting_on_locks,
        max_connections: r.max_connections,
        reserved: r.superuser_reserved_connections,
      };
      return { summary: `backends ${sat.backends} / max_connections ${sat.max_connections} (${pct(sat.backends, sat.max_connections)}; ${sat.app_backends} from ${s.database.user}; ${sat.active} active, ${sat.idle_in_transaction} idle in transaction, ${sat.waiting_on_locks} on locks)`, saturation: sat };
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  if (s.components.pgbouncer) {
    await probe('pgbouncer', `127.0.0.1:${s.components.pgbouncer.port}`, async () => {
      const client = pgbouncerAdmin(s);
      await client.connect();
      try {
        const r = await readPgbouncer(client, { database: s.database.name, stats: false });
        const p = s.profile.pgbouncer;
        const z = (x: number | null) => x ?? 0;
        const sat = {
          cl_active: z(r.cl_active),
          cl_waiting: z(r.cl_waiting),
          sv_active: z(r.sv_active),
          sv_idle: z(r.sv_idle),
          sv_used: z(r.sv_used),
          maxwait_seconds: r.maxwait_ms === null ? 0 : Math.floor(r.maxwait_ms / 1000),
          maxwait_ms: r.maxwait_ms,
          max_client_conn: r.limits.max_client_conn ?? p.maxClientConn,
          default_pool_size: r.limits.default_pool_size ?? p.defaultPoolSize,
          reserve_pool_size: r.limits.reserve_pool_size ?? p.reservePoolSize,
        };
        return {
          summary: `clients ${sat.cl_active} active + ${sat.cl_waiting} waiting (max_client_conn ${sat.max_client_conn}); servers ${sat.sv_active} active + ${sat.sv_idle + sat.sv_used} idle of pool ${sat.default_pool_size}+${sat.reserve_pool_size}`,
          saturation: sat,
        };
      } finally {
        await client.end().catch(() => undefined);
      }
    });
  }

  await probe('redis', `127.0.0.1:${s.components.redis?.port}`, async (c) => {
    const r = new Redis({ host: c.host, port: c.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectionName: 'arena-stack-status' });
    r.on('error', () => undefined);
    try {
      await r.connect();
      const x = await readRedis(r, { stream: 'arena:llm:tasks', group: 'llm-workers' });
      const sat = { connected_clients: x.connected_clients ?? 0, blocked_clients: x.blocked_clients ?? 0, maxclients: x.maxclients, queue_length: x.queue_length ?? 0, queue_pending: x.queue_pending ?? 0 };
      return { summary: `clients ${sat.connected_clients} / maxclients ${sat.maxclients ?? '?'} (${pct(sat.connected_clients, sat.maxclients)}, ${sat.blocked_clients} blocked); queue ${sat.queue_length} (${sat.queue_pending} in progress)`, saturation: sat };
    } finally {
      r.disconnect();
    }
  });

  await probe('api', `http://127.0.0.1:${s.components.api?.port}`, async (c) => {
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
      per_worker: h.per_worker.map((w) => ({ pid: w.pid, available_slots: w.available_slots, max_concurrent: w.max_concurrent, active_sessions: w.active_sessions, db_pool: w.db_pool })),
    };
    return {
      summary: `${sat.http_workers_ready} HTTP workers + queue worker ${sat.queue_worker_pid ?? 'none'}; LLM slots ${sat.llm_slots_in_use}/${sat.llm_slots} in use (${sat.llm_waiting} waiting, sampled ${h.workers_seen} worker(s)); DB pool ${sat.db_pool_total} open, ${sat.db_pool_waiting} waiting`,
      saturation: sat,
    };
  });

  return { stateDir: S, name: s.name, namespace: s.namespace, healthy: out.every((c) => c.up), components: out };
}
