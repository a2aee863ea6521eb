/**
 * `arena sample`: sample pool saturation (PgBouncer, PostgreSQL, Redis, the
 * API's /health) every --interval for --duration, then print peak and P95
 * utilisation per pool and the pool that saturates first. See docs/sampler.md.
 *
 * Exit codes: 0 done (also when a target failed in some ticks: its errors are
 * in the result); 1 a target answered no tick at all (the result is still
 * printed and written); 2 bad input (no target, a malformed URL or duration), one
 * line naming the flag. Ctrl-C stops early and still prints/writes the result.
 */
import { basename, dirname, resolve } from 'node:path';
import chalk from 'chalk';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  LIMIT_OF,
  makeTarget,
  sample,
  TARGET_KINDS,
  type SampleResult,
  type TargetKind,
} from '../../loadtest/sampler/sampler.js';
import { UserError } from '../errors.js';
import { readPasswordFile, writeFilesAtomically } from '../io.js';
import { durationMs } from '../options.js';

/** A URL flag value with one of the given schemes. */
export function urlArg(schemes: readonly string[]) {
  return (value: string): string => {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      throw new InvalidArgumentError(`must be a URL (${schemes.map((s) => `${s}//...`).join(' or ')})`);
    }
    if (!schemes.includes(u.protocol))
      throw new InvalidArgumentError(`must be a ${schemes.join(' or ')} URL, got ${u.protocol}`);
    if (!u.hostname && u.protocol !== 'file:') throw new InvalidArgumentError('must name a host');
    return value;
  };
}

const SCHEMES: Record<TargetKind, readonly string[]> = {
  pgbouncer: ['postgres:', 'postgresql:'],
  postgres: ['postgres:', 'postgresql:'],
  redis: ['redis:', 'rediss:'],
  health: ['http:', 'https:'],
  host: ['file:'],
};

const fmt = (x: number | null, digits = 0) => (x === null ? '-' : x.toFixed(Number.isInteger(x) ? 0 : digits));
const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

/** The summary table: one row per figure with a limit (pools), then the others; errors per target; what saturates first. */
export function sampleText(r: SampleResult): string {
  const out: string[] = [];
  out.push(
    chalk.bold(
      `Sampled ${Object.keys(r.targets).join(', ')} every ${r.intervalMs} ms: ${r.ticks} ticks from ${r.startedAt}${r.aborted ? ' (stopped early)' : ''}`,
    ),
  );
  const t = new Table({
    head: ['figure', 'limit', 'peak', 'P95', 'peak util.', 'P95 util.', 'missing'].map((h) => chalk.bold(h)),
    style: { head: [], border: [], compact: true },
  });
  const entries = Object.entries(r.summary);
  const withLimit = entries.filter(([, s]) => s.limit !== null);
  const rest = entries.filter(([, s]) => s.limit === null);
  for (const [f, s] of [...withLimit, ...rest]) {
    const first = r.saturatesFirst?.figure === f;
    const name = first ? chalk.bold(`${f} *`) : f;
    t.push([
      name,
      s.limit === null ? '-' : `${fmt(s.limit)}${LIMIT_OF[f] ? ` (${LIMIT_OF[f]})` : ''}`,
      fmt(s.peak, 1),
      fmt(s.p95, 1),
      pct(s.peakUtilization),
      pct(s.p95Utilization),
      s.missing ? chalk.red(String(s.missing)) : '0',
    ]);
  }
  out.push(t.toString());
  for (const [k, rep] of Object.entries(r.targets)) {
    if (!rep || rep.failed === 0) continue;
    const first = rep.errors[0]!;
    out.push(
      chalk.red(
        `${k}: ${rep.failed} of ${rep.ok + rep.failed} ticks failed (first at ${first.tMs} ms: ${first.error})`,
      ),
    );
  }
  out.push(
    r.saturatesFirst
      ? `saturates first: ${chalk.bold(r.saturatesFirst.figure)} (peak ${pct(r.saturatesFirst.peakUtilization)} of its limit)`
      : 'saturates first: - (no figure with a limit was read)',
  );
  out.push(`sampler cost: ${r.cost.cpuMsPerTick} ms CPU, ${r.cost.wallMsPerTick} ms wall per tick`);
  return `${out.join('\n')}\n`;
}

/** Register `arena sample`. */
export function registerSample(program: Command): void {
  program
    .command('sample')
    .description(
      "sample pool saturation (PgBouncer, PostgreSQL, Redis, the API /health, this machine's CPUs) once per interval: peak and P95 utilisation per pool",
    )
    .option(
      '--pgbouncer <url>',
      'PgBouncer admin console, e.g. postgresql://user:pw@127.0.0.1:6432/pgbouncer (an admin or stats user)',
      urlArg(SCHEMES.pgbouncer),
    )
    .option(
      '--postgres <url>',
      'PostgreSQL, e.g. postgresql://user:pw@127.0.0.1:5432/db (pg_monitor or superuser sees every backend state)',
      urlArg(SCHEMES.postgres),
    )
    .option('--redis <url>', 'Redis, e.g. redis://127.0.0.1:6379/0', urlArg(SCHEMES.redis))
    .option('--health <url>', "the API's health endpoint, e.g. http://127.0.0.1:8000/health", urlArg(SCHEMES.health))
    .option('--host <url>', "this machine's CPUs, busy cores per tick: file:///proc/stat (Linux)", urlArg(SCHEMES.host))
    .addOption(
      new Option('--interval <duration>', 'time between ticks (250ms, 1s, ...)')
        .argParser(durationMs)
        .default(1000, '1s'),
    )
    .requiredOption('--duration <duration>', 'how long to sample (10s, 2m, ...); Ctrl-C stops earlier', durationMs)
    .option(
      '--password-file <file>',
      'password for --pgbouncer/--postgres URLs without one (else PGPASSWORD); keeps it off the command line',
    )
    .option('--out <file>', 'write the result JSON to this file (atomically)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(sampleAction);
}

/** The options of `arena sample`. */
type SampleOpts = Partial<Record<TargetKind, string>> & {
  interval: number;
  duration: number;
  out?: string;
  output: 'table' | 'json';
  passwordFile?: string;
};

/** `arena sample`: check the flags, sample until the duration or Ctrl-C, print and write the result. */
async function sampleAction(opts: SampleOpts): Promise<void> {
  const kinds = TARGET_KINDS.filter((k) => opts[k] !== undefined);
  const password = opts.passwordFile ? readPasswordFile(opts.passwordFile, '--password-file') : undefined;
  for (const k of kinds)
    if (new URL(opts[k]!).password)
      process.stderr.write(
        `arena: warning: --${k}: the URL carries a password, which shows in ps and shell history; use PGPASSWORD or --password-file (it is redacted in the output)\n`,
      );
  if (kinds.length === 0)
    throw new UserError('sample: give at least one target: --pgbouncer, --postgres, --redis, --health or --host URL');
  if (opts.interval > opts.duration)
    throw new UserError(`sample: --interval ${opts.interval} ms is longer than --duration ${opts.duration} ms`);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let r: SampleResult;
  try {
    r = await sample(
      kinds.map((k) =>
        makeTarget(k, opts[k]!, password !== undefined && !new URL(opts[k]!).password ? { password } : {}),
      ),
      {
        intervalMs: opts.interval,
        durationMs: opts.duration,
        signal: ac.signal,
        onTick: (_n, tMs, errors) => {
          for (const e of errors)
            process.stderr.write(`[sample] ${(tMs / 1000).toFixed(1)} s: ${e.kind}: ${e.error}\n`);
        },
      },
    );
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  const json = `${JSON.stringify(r, null, 2)}\n`;
  if (opts.out) {
    const f = resolve(opts.out);
    writeFilesAtomically(dirname(f), [{ name: basename(f), content: json }]);
  }
  process.stdout.write(opts.output === 'json' ? json : sampleText(r));
  const silent = Object.entries(r.targets).filter(([, t]) => t && t.ok === 0 && r.ticks > 0);
  if (silent.length > 0) {
    process.stderr.write(
      `arena: sample: ${silent.map(([k]) => `--${k}`).join(', ')} answered no tick (${silent.map(([, t]) => t!.errors[0]?.error).join('; ')})\n`,
    );
    process.exitCode = 1;
  }
}
