/**
 * The stack's PostgreSQL: `initdb` (unless `down --keep` left a cluster),
 * `pg/arena-stack.conf` (included from postgresql.conf) with the local
 * profile's limits, `pg_ctl start -w`, then the app role and its database.
 * `probePostgres` is `arena stack status`'s view (the sampler's reader).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { readPostgres } from '../sampler/postgres.js';
import {
  APP_ROLE,
  lastLine,
  logTail,
  running,
  PG_SUPERUSER,
  pct,
  StackError,
  step,
  writeOwned,
  type ProbeResult,
  type StartContext,
} from './component.js';
import { procRef, readPidFile, runCommand } from './procs.js';
import type { LocalProfile } from './profile.js';
import type { ComponentState, StackState } from './state.js';

/** Environment of initdb and pg_ctl. */
const pgEnv = () => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' });

/** `pg/arena-stack.conf`: loopback only, the profile's connection limits, no durability (throwaway data). */
export function postgresConf(p: LocalProfile['postgres'], port: number, socketDir: string): string {
  return [
    '# written by arena stack up (local profile); included from postgresql.conf',
    `listen_addresses = '127.0.0.1'`,
    `port = ${port}`,
    `unix_socket_directories = '${socketDir}'`,
    `max_connections = ${p.maxConnections}`,
    `superuser_reserved_connections = ${p.superuserReservedConnections}`,
    `shared_buffers = '128MB'`,
    '# throwaway local data: no durability',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'log_min_messages = warning',
    '',
  ].join('\n');
}

/** initdb into pg/, or say that the kept data is reused. */
async function initdb(ctx: StartContext): Promise<void> {
  const { pgdata, run } = ctx.dirs;
  if (ctx.reuse) return ctx.progress(`postgres: reusing the data kept in ${pgdata}`);
  await step(ctx, `postgres: initdb ${pgdata}`, async () => {
    const args = [
      '-D',
      pgdata,
      '-U',
      PG_SUPERUSER,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-locale',
    ];
    const r = await runCommand(ctx.tools, ctx.tools.initdb, [...args, '--no-sync', '--no-instructions'], {
      cwd: run,
      timeoutMs: 120_000,
      env: pgEnv(),
    });
    if (r.code !== 0) throw new StackError(`initdb failed (exit ${r.code}): ${lastLine(r.output)}`);
  });
}

/** Write arena-stack.conf and include it from postgresql.conf (once). */
function configure(ctx: StartContext): void {
  const { pgdata, run } = ctx.dirs;
  writeOwned(
    ctx.tools,
    join(pgdata, 'arena-stack.conf'),
    postgresConf(ctx.profile.postgres, ctx.ports.postgres, run),
    0o600,
  );
  const pgConf = join(pgdata, 'postgresql.conf');
  if (!readFileSync(pgConf, 'utf8').includes("include 'arena-stack.conf'"))
    appendFileSync(pgConf, "\ninclude 'arena-stack.conf'\n");
}

/** pg_ctl start -w; the postmaster (from postmaster.pid) is recorded even when pg_ctl then fails. */
async function pgCtlStart(ctx: StartContext): Promise<void> {
  const { pgdata, run, logs } = ctx.dirs;
  const pgLog = join(logs, 'postgres.log');
  const label = `postgres: start on 127.0.0.1:${ctx.ports.postgres} (max_connections ${ctx.profile.postgres.maxConnections})`;
  await step(ctx, label, async () => {
    const args = ['-D', pgdata, '-l', pgLog, '-w', '-t', String(Math.round(ctx.waitMs / 1000)), 'start'];
    const r = await runCommand(ctx.tools, ctx.tools.pgCtl, args, {
      cwd: run,
      timeoutMs: ctx.waitMs + 5000,
      env: pgEnv(),
    });
    const pid = readPidFile(join(pgdata, 'postmaster.pid'));
    const ref = pid ? procRef(pid) : null;
    if (ref) running(ctx, 'postgres', ref, ctx.ports.postgres, pgLog);
    if (r.code !== 0 || !ref) throw new StackError(`postgres did not start (pg_ctl exit ${r.code})${logTail(pgLog)}`);
    return ref;
  });
}

/** Create (or re-password) the app role and create its database, over the superuser's unix socket. */
async function roleAndDatabase(ctx: StartContext): Promise<void> {
  const db = ctx.ad.spec.postgres.database;
  await step(ctx, `postgres: role ${APP_ROLE} and database ${db}`, async () => {
    const c = new pg.Client({ host: ctx.dirs.run, port: ctx.ports.postgres, user: PG_SUPERUSER, database: 'postgres' });
    await c.connect();
    try {
      const pw = c.escapeLiteral(ctx.password);
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE])).rowCount;
      await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${c.escapeIdentifier(APP_ROLE)} LOGIN PASSWORD ${pw}`);
      if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount)
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(db)} OWNER ${c.escapeIdentifier(APP_ROLE)}`);
    } finally {
      await c.end();
    }
  });
}

/**
 * Start PostgreSQL: initdb (or reuse), configuration, pg_ctl start, app role and database.
 * @throws StackError when a step fails (the caller stops what was started).
 */
export async function startPostgres(ctx: StartContext): Promise<void> {
  await initdb(ctx);
  configure(ctx);
  await pgCtlStart(ctx);
  await roleAndDatabase(ctx);
}

/**
 * `arena stack status` for PostgreSQL: client backends (all, the app's, by state) vs max_connections,
 * read as the superuser over the unix socket in `<stateDir>/run`.
 */
export async function probePostgres(s: StackState, c: ComponentState, stateDir: string): Promise<ProbeResult> {
  const client = new pg.Client({ host: join(stateDir, 'run'), port: c.port, user: PG_SUPERUSER, database: 'postgres' });
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
    const summary =
      `backends ${sat.backends} / max_connections ${sat.max_connections} (${pct(sat.backends, sat.max_connections)}; ` +
      `${sat.app_backends} from ${s.database.user}; ${sat.active} active, ${sat.idle_in_transaction} idle in transaction, ` +
      `${sat.waiting_on_locks} on locks)`;
    return { summary, saturation: sat };
  } finally {
    await client.end().catch(() => undefined);
  }
}
