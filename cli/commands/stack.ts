/**
 * `arena stack up|down|status`: the local stack (PostgreSQL, PgBouncer, Redis,
 * the reference arena API) sized by the plan. See loadtest/stack/stack.ts and
 * docs/reference-api.md.
 *
 * Exit codes: 0 ok; 1 a component failed to start, did not stop, or is
 * unhealthy (status); 2 bad input (file, flag, missing tool, busy port or
 * state directory), one line naming it.
 * Progress lines go to stderr (`[stack] ...`); results to stdout.
 */
import { availableParallelism } from 'node:os';
import chalk from 'chalk';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import {
  defaultStateDir,
  stackDown,
  stackStatus,
  stackUp,
  type DownReport,
  type StackState,
  type StatusReport,
} from '../../loadtest/stack/stack.js';
import { UserError } from '../errors.js';
import { loadArenaDeployments } from '../io.js';
import { durationMs, positiveInt } from '../options.js';

/** --scale: a number in (0, 1]. */
export function scaleArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1)
    throw new InvalidArgumentError(
      'must be a number > 0 and <= 1 (the fraction of spec.load.targetConcurrency to plan for)',
    );
  return n;
}

/** --api-env KEY=VALUE, repeatable. */
export function apiEnvArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/s.exec(value);
  if (!m) throw new InvalidArgumentError('must be KEY=VALUE with KEY in upper case (e.g. LLM_ERROR_RATE=0.05)');
  return { ...previous, [m[1]!]: m[2]! };
}

function oneSpec(file: string): ArenaDeployment {
  const docs = loadArenaDeployments(file);
  if (docs.length !== 1)
    throw new UserError(`${file}: the stack runs one ArenaDeployment, the file has ${docs.length} documents`);
  return docs[0]!;
}

/** The state dir from --state-dir, else the default of the file's ArenaDeployment. */
function stateDirOf(opts: { file?: string; stateDir?: string }, cmd: string): string {
  if (opts.stateDir) return opts.stateDir;
  if (opts.file) return defaultStateDir(oneSpec(opts.file));
  throw new UserError(`stack ${cmd}: give -f FILE (the spec the stack was started from) or --state-dir DIR`);
}

const progress = (line: string) => process.stderr.write(`[stack] ${line}\n`);

function table(head: string[]): Table.Table {
  return new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [], compact: true } });
}

function upText(s: StackState, file: string): string {
  const out: string[] = [];
  out.push(
    chalk.bold(`Stack ${s.namespace}/${s.name} is up in ${s.upSeconds.toFixed(1)} s`) +
      ` (state: ${s.stateDir}/state.json)`,
  );
  out.push(
    '',
    chalk.bold('Local profile: plan -> this machine') +
      ` (per-worker pool, Redis, slot and rate settings are the spec's, unchanged)`,
  );
  const ch = table(['setting', 'plan', 'local', 'why']);
  for (const c of s.profile.changes) ch.push([c.setting, String(c.plan), String(c.local), c.why]);
  out.push(ch.toString());
  const p = s.profile;
  out.push(
    `PgBouncer ${p.pgbouncer.enabled ? `max_client_conn ${p.pgbouncer.maxClientConn}, default_pool_size ${p.pgbouncer.defaultPoolSize}, reserve_pool_size ${p.pgbouncer.reservePoolSize}, pool_mode ${p.pgbouncer.poolMode}` : 'disabled (the API connects to PostgreSQL)'}; ` +
      `PostgreSQL max_connections ${p.postgres.maxConnections} (reserved ${p.postgres.superuserReservedConnections}); Redis maxclients ${p.redis.maxClients}; ` +
      `API WEB_CONCURRENCY ${p.webConcurrency}, ASYNC_CONCURRENCY ${p.asyncConcurrency}`,
  );
  out.push(
    '',
    chalk.bold(`Limits`) + ` (open files: hard limit ${p.openFilesHardLimit}, given to every server as its soft limit)`,
  );
  const lt = table(['check', 'need', 'limit', 'result']);
  for (const c of p.checks)
    lt.push([c.what, String(c.need), String(c.limit), c.ok ? chalk.green(c.note) : chalk.red(c.note)]);
  out.push(lt.toString());
  out.push('', chalk.bold('Endpoints'));
  const ep = table(['component', 'pid', 'endpoint', 'log']);
  const c = s.components;
  if (c.api) ep.push(['api', String(c.api.pid), `${s.endpoints['api']}  (GET /health, GET /metrics)`, c.api.log]);
  if (c.pgbouncer)
    ep.push([
      'pgbouncer',
      String(c.pgbouncer.pid),
      `${s.endpoints['pgbouncer']}  (password: ${s.database.passwordFile})`,
      c.pgbouncer.log,
    ]);
  if (c.postgres) ep.push(['postgres', String(c.postgres.pid), s.endpoints['postgres']!, c.postgres.log]);
  if (c.redis) ep.push(['redis', String(c.redis.pid), s.endpoints['redis']!, c.redis.log]);
  out.push(ep.toString());
  const where = file === '-' ? `--state-dir ${s.stateDir}` : `-f ${file}`;
  out.push('', `Check it: arena stack status ${where}    Stop it: arena stack down ${where}`);
  return `${out.join('\n')}\n`;
}

function statusText(r: StatusReport): string {
  const t = table(['component', 'pid', 'endpoint', 'state', 'saturation']);
  for (const c of r.components)
    t.push([c.component, String(c.pid ?? '-'), c.endpoint, c.up ? chalk.green('up') : chalk.red('DOWN'), c.summary]);
  return `${chalk.bold(`Stack ${r.namespace}/${r.name}`)} (${r.stateDir}): ${r.healthy ? chalk.green('healthy') : chalk.red('unhealthy')}\n${t.toString()}\n`;
}

function downText(r: DownReport): string {
  const lines = r.stopped.map(
    (s) => `  ${s.component} pid ${s.pid}: ${s.result === 'gone' ? 'was not running' : s.result}`,
  );
  const tail =
    r.survivors.length > 0
      ? chalk.red(`still running: ${r.survivors.join(', ')}`)
      : r.removed
        ? `removed ${r.stateDir}`
        : `kept ${r.stateDir}`;
  return `${lines.length ? `${lines.join('\n')}\n` : 'no process was running\n'}${tail}\n`;
}

/** Register `arena stack` and its subcommands. */
export function registerStack(program: Command): void {
  const stack = program
    .command('stack')
    .description('run the local stack (PostgreSQL, PgBouncer, Redis, the reference API) sized by the plan');
  // parse errors are one line `arena stack <name>: ...` (cli/arena.ts prefixes every subcommand)
  const sub = (name: string, description: string) => stack.command(name).description(description);
  const output = () => new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table');

  sub('up', 'start PostgreSQL, PgBouncer, Redis and the API on 127.0.0.1 with the plan scaled to this machine')
    .requiredOption('-f, --file <file>', 'ArenaDeployment YAML file (one document)')
    .option('--state-dir <dir>', 'state directory (default: $TMPDIR/arena-stack/<namespace>-<name>)')
    .option('--scale <x>', 'plan for targetConcurrency x this (0 < x <= 1)', scaleArg, 1)
    .option(
      '--workers <n>',
      `API worker processes (default: min(spec.api.workersPerPod, ${availableParallelism()} cores))`,
      positiveInt,
    )
    .option(
      '--free-ports',
      'pick free ports instead of 18000 (API), 15432 (PostgreSQL), 16432 (PgBouncer), 16379 (Redis)',
    )
    .option('--keep', 'on failure, keep the state directory (logs, data)')
    .addOption(
      new Option('--api-env <KEY=VALUE>', 'extra API environment variable (repeatable), e.g. LLM_ERROR_RATE=0.05')
        .argParser(apiEnvArg)
        .default({}, 'none'),
    )
    .addOption(
      new Option('--timeout <duration>', 'bound on each health wait (250ms, 10s, 2m)')
        .argParser(durationMs)
        .default(60_000, '60s'),
    )
    .addOption(output())
    .action(upAction);

  sub('down', 'stop the processes the stack started (by PID) and remove its state directory')
    .option('-f, --file <file>', 'the ArenaDeployment the stack was started from (finds the default state directory)')
    .option('--state-dir <dir>', 'state directory')
    .option('--keep', 'keep the state directory (data, logs); a later `up` reuses the data')
    .addOption(output())
    .action(async (opts: { file?: string; stateDir?: string; keep?: boolean; output: 'table' | 'json' }) => {
      const r = await stackDown(stateDirOf(opts, 'down'), { keep: !!opts.keep, progress });
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : downText(r));
      if (r.survivors.length > 0) process.exitCode = 1;
    });

  sub('status', 'show each component of the stack and its live saturation')
    .option('-f, --file <file>', 'the ArenaDeployment the stack was started from (finds the default state directory)')
    .option('--state-dir <dir>', 'state directory')
    .addOption(output())
    .action(async (opts: { file?: string; stateDir?: string; output: 'table' | 'json' }) => {
      const r = await stackStatus(stateDirOf(opts, 'status'));
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : statusText(r));
      if (!r.healthy) process.exitCode = 1;
    });
}

/** The options of `arena stack up`. */
interface UpOpts {
  file: string;
  stateDir?: string;
  scale: number;
  workers?: number;
  freePorts?: boolean;
  keep?: boolean;
  apiEnv: Record<string, string>;
  timeout: number;
  output: 'table' | 'json';
}

/** `arena stack up`: start the stack of the file and print its profile, limits and endpoints. */
async function upAction(opts: UpOpts): Promise<void> {
  const spec = oneSpec(opts.file);
  const s = await stackUp(spec, {
    file: opts.file,
    stateDir: opts.stateDir,
    scale: opts.scale,
    workers: opts.workers,
    freePorts: !!opts.freePorts,
    keep: !!opts.keep,
    apiEnv: opts.apiEnv,
    waitTimeoutMs: opts.timeout,
    progress,
  });
  process.stdout.write(opts.output === 'json' ? `${JSON.stringify(s, null, 2)}\n` : upText(s, opts.file));
}
