/**
 * `arena bench -f FILE [--levels 1000,2500,5000,10000] [--beyond 1.3]`: the
 * capacity bench. Brings the local stack of FILE up (sized by its plan), runs
 * `arena loadtest run --scenario mixed --sample auto` at each concurrency level
 * (the arrival rate Little's law gives for that many in flight over the
 * request mix), plus a level beyond the plan's target, and writes
 * `DIR/bench.json`, `DIR/bench.txt`, `DIR/bench.html` and each level's own folder
 * (`level-<N>/`: result.json, report.html, junit.xml); then takes the stack
 * down. Progress: the stack's and each run's lines on stderr. Before the
 * first level it raises the kernel settings a large run wants where permitted
 * (loadtest/engine/tuning.ts, as `arena loadtest doctor --apply`).
 *
 * Exit codes: 0 every level ran (whatever its thresholds); 1 the stack could
 * not start or a level could not run; 2 bad input (flag, file), one line.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import chalk from 'chalk';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { StartFailureError } from '../../lib/errors.js';
import { sleep } from '../../lib/util.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { readResult } from '../../loadtest/engine/run.js';
import { readLimits } from '../../loadtest/engine/limits.js';
import { loadThresholdsFile } from '../../loadtest/engine/thresholds.js';
import { tune } from '../../loadtest/engine/tuning.js';
import { topologyOf } from '../../loadtest/report/model.js';
import {
  benchText,
  hostCpuPredictions,
  levelSummary,
  predictedCurve,
  predictedLimit,
  rateForConcurrency,
  type BenchLevel,
  type BenchResult,
} from '../../loadtest/report/bench.js';
import { renderBenchHtml } from '../../loadtest/report/bench-html.js';
import { readState, type StackState } from '../../loadtest/stack/state.js';
import { treeCpuSeconds } from '../../loadtest/stack/procs.js';
import { UserError } from '../errors.js';
import { loadArenaDeployments, writeFilesAtomically } from '../io.js';
import { durationMs, nonNegativeInt, positiveInt } from '../options.js';
import { apiEnvArg } from './stack.js';
import { arenaChild, stackDownFresh, stackUpFresh } from './stack-child.js';

/** The default token pacing of the simulated LLM for a bench (docs/benchmarks.md): 0.5 events/s per stream. */
export const BENCH_API_ENV = { LLM_TOKENS_PER_SECOND: '0.5' };

interface BenchOpts {
  file: string;
  levels: number[];
  beyond: number;
  duration: number;
  ramp: number;
  out?: string;
  apiEnv: Record<string, string>;
  seed: number;
  keepStack?: boolean;
  findMax?: boolean;
  thresholds?: string;
  start?: number;
  max?: number;
  precision: number;
  /** The thresholds file each level runs with (set by bench()). */
  thresholdsFile?: string;
}

function levelsArg(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const n = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || n.some((x) => x < 1))
    throw new InvalidArgumentError('must be a comma-separated list of in-flight counts >= 1, e.g. 1000,2500,5000');
  return [...new Set(n)].sort((a, b) => a - b);
}

function precisionArg(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  const n = m ? Number(m[1]) / 100 : NaN;
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('must be a percentage > 0 and <= 100, e.g. 10%');
  return n;
}

function beyondArg(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || (n !== 0 && n <= 1) || n > 3)
    throw new InvalidArgumentError('must be 0 (no level beyond the target) or a factor > 1 and <= 3, e.g. 1.3');
  return n;
}

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Sockets in TIME_WAIT (IPv4 + IPv6), from /proc/net; 0 where it cannot be read. */
function timeWaitSockets(): number {
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) if (line.split(/\s+/)[4] === '06') n++;
    } catch {
      /* not Linux */
    }
  }
  return n;
}

/** Wait (at most 2 min) until the previous level's TIME_WAIT sockets are below 1,000, so the next level gets its ports. */
async function drainTimeWait(): Promise<void> {
  const until = Date.now() + 120_000;
  let n = timeWaitSockets();
  if (n >= 1000) log(`waiting for ${n} TIME_WAIT sockets of the previous level to drain`);
  while (n >= 1000 && Date.now() < until) {
    await sleep(2000);
    n = timeWaitSockets();
  }
}

/** Run one level; @returns its summary. @throws StartFailureError when the run could not start (exit 2/3). */
async function runLevel(
  o: BenchOpts,
  ad: ArenaDeployment,
  stateDir: string,
  outDir: string,
  level: number,
  beyond: boolean,
): Promise<BenchLevel> {
  const rate = rateForConcurrency(ad, level);
  const dir = `level-${level}`;
  log(
    `level ${level.toLocaleString('en-US')} in flight${beyond ? ' (beyond the target)' : ''}: ${rate.toFixed(1)} arrivals/s, ramp ${o.ramp / 1000} s, steady ${o.duration / 1000} s`,
  );
  const args = [
    'loadtest',
    'run',
    '-f',
    o.file,
    '--state-dir',
    stateDir,
    '--scenario',
    'mixed',
    '--rate',
    rate.toFixed(3),
  ];
  args.push('--ramp', `${o.ramp}ms`, '--duration', `${o.duration}ms`, '--graceful-stop', '30s', '--sample', 'auto');
  args.push('--seed', String(o.seed + level), '--out', join(outDir, dir));
  if (o.thresholdsFile) args.push('--thresholds', o.thresholdsFile);
  const cpu = stackCpu(stateDir);
  const t0 = performance.now();
  const r = await arenaChild(args);
  const wallSeconds = (performance.now() - t0) / 1000;
  const used = stackCpu(stateDir);
  for (const k of Object.keys(used)) used[k] = Math.round((used[k]! - (cpu[k] ?? 0)) * 100) / 100;
  writeFilesAtomically(join(outDir, dir), [{ name: 'report.txt', content: r.out }]);
  if (r.code !== 0 && r.code !== 1)
    throw new StartFailureError(
      `arena bench: level ${level} could not run (arena loadtest run exit ${r.code}; see above)`,
    );
  const summary = levelSummary(level, beyond, rate, dir, r.code, readResult(join(outDir, dir, 'result.json')));
  return { ...summary, stackCpu: { wallSeconds: Math.round(wallSeconds * 10) / 10, cpuSeconds: used } };
}

/** CPU seconds used so far by each stack component's process tree (PostgreSQL with its backends, the API with its workers). */
function stackCpu(stateDir: string): Record<string, number> {
  const s = readState(stateDir);
  const out: Record<string, number> = {};
  for (const [name, c] of Object.entries(s?.components ?? {})) if (c) out[name] = treeCpuSeconds(c.pid);
  return out;
}

function table(head: string[]) {
  return new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [], compact: true } });
}

/** The default SLO of --find-max: fewer than 1 % failed requests and no dropped iteration. */
export const DEFAULT_SLO = { http_req_failed: ['rate<0.01'], dropped_iterations: ['count==0'] };

type Level = { level: number; beyond: boolean };

/** Run the levels in order (TIME_WAIT drained before each); stops early when `stopping()` turns true. */
async function runLevels(
  o: BenchOpts,
  ad: ArenaDeployment,
  stateDir: string,
  outDir: string,
  levels: Level[],
  stopping: () => boolean,
) {
  const done: BenchLevel[] = [];
  for (const { level, beyond } of levels) {
    if (stopping()) break;
    await drainTimeWait();
    done.push(await runLevel(o, ad, stateDir, outDir, level, beyond));
  }
  return done;
}

/**
 * --find-max: from --start (default target / 10) double the level while the
 * SLO holds (up to --max, default 2 x target), then bisect between the last
 * level that held and the first that failed until they are within --precision.
 */
async function runFindMax(
  o: BenchOpts,
  ad: ArenaDeployment,
  stateDir: string,
  outDir: string,
  stopping: () => boolean,
) {
  const target = ad.spec.load.targetConcurrency;
  const max = o.max ?? 2 * target;
  const done: BenchLevel[] = [];
  const steps: NonNullable<BenchResult['findMax']>['steps'] = [];
  const tryLevel = async (level: number) => {
    await drainTimeWait();
    const l = await runLevel(o, ad, stateDir, outDir, level, level > target);
    done.push(l);
    const r = readResult(join(outDir, l.dir, 'result.json'));
    const failed = r.thresholds.filter((t) => t.status !== 'pass').map((t) => t.message);
    steps.push({ concurrency: level, passed: failed.length === 0, failed });
    log(
      `find-max: ${level.toLocaleString('en-US')} in flight ${failed.length ? `FAILED the SLO (${failed.join('; ')})` : 'held the SLO'}`,
    );
    return failed.length === 0;
  };
  let lo: number | null = null;
  let hi: number | null = null;
  let level = Math.max(1, o.start ?? Math.round(target / 10));
  while (!stopping()) {
    if (await tryLevel(level)) {
      lo = level;
      if (level >= max) break;
      level = Math.min(max, level * 2);
    } else {
      hi = level;
      if (lo !== null || level <= 1) break;
      level = Math.max(1, Math.floor(level / 2));
    }
  }
  while (!stopping() && lo !== null && hi !== null && (hi - lo) / lo > o.precision) {
    const mid = Math.round((lo + hi) / 2);
    if (mid === lo || mid === hi) break;
    if (await tryLevel(mid)) lo = mid;
    else hi = mid;
  }
  return { done, steps, maxConcurrency: lo, upperBound: hi };
}

/** bench.json from what ran. */
function benchResult(
  o: BenchOpts,
  ad: ArenaDeployment,
  state: StackState,
  startedAt: string,
  done: BenchLevel[],
): BenchResult {
  const t = topologyOf({
    file: o.file,
    ad,
    stack: state.profile,
    plan: { maxReplicas: 1, defaultPoolSize: state.profile.pgbouncer.defaultPoolSize },
  });
  const levels = done.map((l) => l.concurrency);
  return {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'BenchResult',
    schemaVersion: 1,
    file: o.file,
    name: ad.metadata.name,
    startedAt,
    endedAt: new Date().toISOString(),
    machine: { cores: availableParallelism(), node: process.version, openFilesSoftLimit: readLimits().openFilesSoft },
    settings: {
      levels,
      steadyMs: o.duration,
      rampMs: o.ramp,
      apiEnv: Object.entries(o.apiEnv).map(([k, v]) => `${k}=${v}`),
      seed: o.seed,
    },
    targetConcurrency: ad.spec.load.targetConcurrency,
    topology: {
      workers: t.workers,
      pgbouncers: t.pgbouncers,
      pgbouncerDefaultPoolSize: t.pgbouncerDefaultPoolSize,
      consumers: t.consumers,
    },
    levels: withHostCpuPredictions(done),
    curve: predictedCurve(ad, t, Math.max(ad.spec.load.targetConcurrency, ...levels) * 1.1),
  };
}

/** The levels with the host CPU line through the two lowest measured ones (hostCpuPredictions). */
function withHostCpuPredictions(levels: BenchLevel[]): BenchLevel[] {
  const out = structuredClone(levels);
  hostCpuPredictions(out);
  return out;
}

/** The SLO file --find-max passes to each step: --thresholds, else DEFAULT_SLO written into the bench folder. */
function sloFile(o: BenchOpts, outDir: string): { file: string; slo: Record<string, string[]> } {
  if (o.thresholds)
    return {
      file: o.thresholds,
      slo: Object.fromEntries(loadThresholdsFile(o.thresholds).map((t) => [t.selector, [t.expression]])),
    };
  writeFilesAtomically(outDir, [{ name: 'slo.json', content: `${JSON.stringify(DEFAULT_SLO, null, 2)}\n` }]);
  return { file: join(outDir, 'slo.json'), slo: DEFAULT_SLO };
}

async function bench(o: BenchOpts): Promise<void> {
  const docs = loadArenaDeployments(o.file);
  if (docs.length !== 1)
    throw new UserError(`${o.file}: arena bench takes one ArenaDeployment, the file has ${docs.length}`);
  const ad = docs[0]!;
  const target = ad.spec.load.targetConcurrency;
  const levels: Level[] = o.levels.map((l) => ({ level: l, beyond: false }));
  if (o.beyond > 0) levels.push({ level: Math.round(target * o.beyond), beyond: true });
  const outDir = resolve(o.out ?? join('out', 'bench', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)));
  for (const x of tune(true))
    if (x.status !== 'ok')
      log(
        `kernel: ${x.setting} ${x.status}${x.status === 'applied' ? ` to ${x.wanted.replace(/\s+/g, ' ')} (${x.detail})` : `: ${x.detail}`}`,
      );
  const slo = o.findMax ? sloFile(o, outDir) : undefined;
  if (slo) o.thresholdsFile = slo.file;
  const startedAt = new Date().toISOString();
  const { stateDir, state } = await stackUpFresh(o.file, o.apiEnv, 'arena bench', log);
  let stopping = false;
  const onSignal = () => {
    stopping = true;
    log('interrupted: the current level writes a partial result, then the stack is taken down');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let done: BenchLevel[] = [];
  let search: Awaited<ReturnType<typeof runFindMax>> | undefined;
  try {
    if (o.findMax) {
      search = await runFindMax(o, ad, stateDir, outDir, () => stopping);
      done = search.done;
    } else done = await runLevels(o, ad, stateDir, outDir, levels, () => stopping);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (o.keepStack) log(`the stack keeps running: arena stack down --state-dir ${stateDir}`);
    else stackDownFresh(stateDir, log);
  }
  const result = benchResult(o, ad, state, startedAt, done);
  if (search && slo) {
    const t = topologyOf({
      file: o.file,
      ad,
      stack: state.profile,
      plan: { maxReplicas: 1, defaultPoolSize: state.profile.pgbouncer.defaultPoolSize },
    });
    result.findMax = {
      slo: slo.slo,
      steps: search.steps,
      maxConcurrency: search.maxConcurrency,
      upperBound: search.upperBound,
      predicted: predictedLimit(ad, t),
    };
  }
  const text = benchText(result, table);
  writeFilesAtomically(outDir, [
    { name: 'bench.json', content: `${JSON.stringify(result, null, 2)}\n` },
    { name: 'bench.txt', content: `${stripVTControlCharacters(text)}\n` },
    { name: 'bench.html', content: renderBenchHtml(result) },
  ]);
  process.stdout.write(`${text}\n`);
  log(`wrote ${join(outDir, 'bench.json')}, bench.txt and bench.html; each level in ${outDir}/level-<N>/`);
}

/** Register `arena bench`. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      "the capacity bench: the local stack of -f FILE under the mixed scenario at each concurrency level and one beyond the plan's target; P99 per kind, pool saturation and predicted vs measured per level",
    )
    .requiredOption('-f, --file <file>', 'the ArenaDeployment (its local stack, request mix and plan)')
    .addOption(
      new Option('--levels <list>', 'in-flight levels')
        .argParser(levelsArg)
        .default([1000, 2500, 5000, 10000], '1000,2500,5000,10000'),
    )
    .addOption(
      new Option('--beyond <x>', "one more level at x times the plan's target (0: none)")
        .argParser(beyondArg)
        .default(1.3),
    )
    .addOption(new Option('--duration <d>', 'steady phase per level').argParser(durationMs).default(60_000, '60s'))
    .addOption(
      new Option(
        '--ramp <d>',
        'ramp-up per level (at least the longest LLM p99, so in-flight has settled when the steady phase starts)',
      )
        .argParser(durationMs)
        .default(30_000, '30s'),
    )
    .option('--out <dir>', 'bench folder (default out/bench/<time>)')
    .addOption(
      new Option('--api-env <KEY=VALUE>', 'API environment for the stack (repeatable)')
        .argParser(apiEnvArg)
        .default(BENCH_API_ENV, 'LLM_TOKENS_PER_SECOND=0.5'),
    )
    .addOption(
      new Option('--seed <n>', 'seed of the first level (level N uses seed + N)').argParser(nonNegativeInt).default(1),
    )
    .option('--keep-stack', 'leave the stack running afterwards')
    .option(
      '--find-max',
      'capacity search: double the level while the SLO holds, then bisect (ignores --levels/--beyond)',
    )
    .option('--thresholds <file>', `--find-max: the SLO (k6-style thresholds; default ${JSON.stringify(DEFAULT_SLO)})`)
    .option('--start <n>', '--find-max: first level (default target / 10)', positiveInt)
    .option('--max <n>', '--find-max: highest level tried (default 2 x target)', positiveInt)
    .addOption(
      new Option('--precision <pct>', '--find-max: stop bisecting when the bounds are this close')
        .argParser(precisionArg)
        .default(0.1, '10%'),
    )
    .action((opts: BenchOpts) => bench(opts));
}
