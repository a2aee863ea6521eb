/**
 * The stack's PgBouncer: `run/pgbouncer.ini` = `pgbouncerIni(ad, plan, ...)`
 * (the operator's renderer, with local addresses and paths), `userlist.txt`
 * (scram, the app role) and `users.ini` (the app role as stats user), started
 * with `pgbouncer -d`; healthy once the app role logs in through it.
 * `probePgbouncer` is `arena stack status`'s view (the sampler's reader);
 * `showPools` reads SHOW POOLS for tests and the smoke run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pgbouncerIni } from '../../operator/render/pgbouncer.js';
import { readPgbouncer, showPools as sampleShowPools, userPools, type PoolRow } from '../sampler/pgbouncer.js';
import {
  APP_ROLE,
  lastLine,
  logTail,
  running,
  StackError,
  step,
  waitFor,
  writeOwned,
  type ProbeResult,
  type StartContext,
} from './component.js';
import { procRef, readPidFile, runCommand } from './procs.js';
import type { StackState } from './state.js';

/** Write userlist.txt, users.ini and pgbouncer.ini into run/. @returns the ini's path. */
function configure(ctx: StartContext, pidfile: string, logfile: string): string {
  const { run } = ctx.dirs;
  writeOwned(ctx.tools, join(run, 'userlist.txt'), `"${APP_ROLE}" "${ctx.password}"\n`, 0o600);
  writeOwned(ctx.tools, join(run, 'users.ini'), `stats_users = ${APP_ROLE}\n`, 0o600);
  const ini = pgbouncerIni(ctx.ad, ctx.plan, {
    listenAddr: '127.0.0.1',
    listenPort: ctx.ports.pgbouncer,
    authDir: run,
    postgresHost: '127.0.0.1',
    postgresPort: ctx.ports.postgres,
    extra: { unix_socket_dir: run, pidfile, logfile },
  });
  const iniFile = join(run, 'pgbouncer.ini');
  writeOwned(ctx.tools, iniFile, ini, 0o600);
  return iniFile;
}

/** Resolves true once the app role logs in through PgBouncer and runs `SELECT 1`. */
async function appLogin(ctx: StartContext): Promise<true> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: ctx.ports.pgbouncer,
    user: APP_ROLE,
    password: ctx.password,
    database: ctx.ad.spec.postgres.database,
  });
  await c.connect();
  try {
    await c.query('SELECT 1');
    return true;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Start PgBouncer (the caller checks it is enabled): configuration, `pgbouncer -d`, its pid file,
 * then a login through it, each bounded.
 * @throws StackError when it does not start or does not answer (the caller stops what was started).
 */
export async function startPgbouncer(ctx: StartContext): Promise<void> {
  const pgbLog = join(ctx.dirs.logs, 'pgbouncer.log');
  const pidfile = join(ctx.dirs.run, 'pgbouncer.pid');
  const iniFile = configure(ctx, pidfile, pgbLog);
  const p = ctx.profile.pgbouncer;
  const label =
    `pgbouncer: start on 127.0.0.1:${ctx.ports.pgbouncer} (max_client_conn ${p.maxClientConn}, ` +
    `default_pool_size ${p.defaultPoolSize}, reserve_pool_size ${p.reservePoolSize}, pool_mode ${p.poolMode})`;
  await step(ctx, label, async () => {
    const r = await runCommand(ctx.tools, ctx.tools.pgbouncer, ['-d', iniFile], {
      cwd: ctx.dirs.run,
      timeoutMs: 30_000,
    });
    if (r.code !== 0)
      throw new StackError(`pgbouncer did not start (exit ${r.code}: ${lastLine(r.output)})${logTail(pgbLog)}`);
    const pidOf = async () => {
      const pid = readPidFile(pidfile);
      return pid ? (procRef(pid) ?? undefined) : undefined;
    };
    const ref = await waitFor('pgbouncer pid file', 10_000, pidOf, () => logTail(pgbLog));
    running(ctx, 'pgbouncer', ref, ctx.ports.pgbouncer, pgbLog);
    await waitFor(
      'pgbouncer',
      ctx.waitMs,
      () => appLogin(ctx),
      () => logTail(pgbLog),
    );
  });
}

/** A client on the stack's PgBouncer admin console (as the stats user). */
function pgbouncerAdmin(s: StackState): pg.Client {
  const c = s.components.pgbouncer!;
  const password = readFileSync(s.database.passwordFile, 'utf8').trim();
  return new pg.Client({ host: c.host, port: c.port, user: s.database.user, password, database: 'pgbouncer' });
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

/**
 * `arena stack status` for PgBouncer: SHOW POOLS of the app database (clients active and waiting,
 * servers active and idle, maxwait) against SHOW CONFIG (else the profile's settings).
 */
export async function probePgbouncer(s: StackState): Promise<ProbeResult> {
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
    const summary =
      `clients ${sat.cl_active} active + ${sat.cl_waiting} waiting (max_client_conn ${sat.max_client_conn}); ` +
      `servers ${sat.sv_active} active + ${sat.sv_idle + sat.sv_used} idle of pool ${sat.default_pool_size}+${sat.reserve_pool_size}`;
    return { summary, saturation: sat };
  } finally {
    await client.end().catch(() => undefined);
  }
}
