/**
 * `arena calibrate -f FILE [--rate R | --concurrency-level N] [--duration 30s]
 * [--out DIR] [--write-patch FILE] [--verify [--verify-level N]]`: measure the
 * deployment's service times on a short low-load run against its local stack
 * and write them back as a spec patch (issue 12, "Model calibration";
 * loadtest/report/calibrate.ts says what is measured and how).
 *
 * Uses the running stack of FILE (--state-dir, else the default state
 * directory), or brings one up in a temporary directory and takes it down
 * afterwards. Runs `arena loadtest run --scenario mixed --sample auto` at
 * --rate, or the rate Little's law gives for --concurrency-level in flight
 * (default 10 % of spec.load.targetConcurrency), then writes
 * `DIR/calibration.json`, `DIR/calibrated.yaml` (the spec with the calibrated
 * values) and the run in `DIR/run/`; with --write-patch, the patch (only the
 * changed requestMix entries). Prints the table (kind, field, spec, measured)
 * and the unified diff of the spec on stdout, progress on stderr.
 * --verify: one more run at --verify-level (default 50 % of the target),
 * its predicted vs measured reported with the original and the calibrated spec.
 *
 * Exit codes: 0 calibrated; 1 the stack or a run could not start; 2 bad input, one line.
 */
import { basename, dirname, join, resolve } from 'node:path';
import chalk from 'chalk';
import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { StartFailureError } from '../../lib/errors.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { readResult } from '../../loadtest/engine/run.js';
import { rateForConcurrency } from '../../loadtest/report/bench.js';
import {
  calibrate,
  calibratedDeployment,
  measureCpu,
  patchYaml,
  withCpuFit,
  specDiff,
  verifyRows,
  type Calibration,
  type VerifyRow,
} from '../../loadtest/report/calibrate.js';
import { modelComparison, offeredRates } from '../../loadtest/report/model.js';
import { defaultStateDir } from '../../loadtest/stack/state-dir.js';
import { readState, type StackState } from '../../loadtest/stack/state.js';
import { UserError } from '../errors.js';
import { loadArenaDeployments, readInput, writeFilesAtomically } from '../io.js';
import { durationMs, positive, positiveInt } from '../options.js';
import { BENCH_API_ENV } from './bench.js';
import { arenaChild, stackDownFresh, stackUpFresh } from './stack-child.js';

interface CalibrateOpts {
  file: string;
  rate?: number;
  concurrencyLevel?: number;
  duration: number;
  ramp: number;
  out?: string;
  writePatch?: string;
  stateDir?: string;
  verify?: boolean;
  verifyLevel?: number;
  seed: number;
}

const log = (line: string) => process.stderr.write(`[calibrate] ${line}\n`);

/** One `arena loadtest run` against the stack in `stateDir`; @returns the result.json path. */
async function loadRun(o: CalibrateOpts, stateDir: string, rate: number, dir: string, seed: number): Promise<string> {
  const args = ['loadtest', 'run', '-q', '-f', o.file, '--state-dir', stateDir, '--scenario', 'mixed'];
  args.push('--rate', rate.toFixed(3), '--ramp', `${o.ramp}ms`, '--duration', `${o.duration}ms`);
  args.push('--graceful-stop', '10s', '--sample', 'auto', '--seed', String(seed), '--out', dir);
  log(`arena loadtest run --scenario mixed at ${rate.toFixed(1)} arrivals/s for ${o.duration / 1000} s -> ${dir}`);
  const r = await arenaChild(args);
  if (r.code !== 0 && r.code !== 1)
    throw new StartFailureError(`arena calibrate: the load run could not run (arena loadtest run exit ${r.code})`);
  return join(dir, 'result.json');
}

/** The stack to use: --state-dir's, else the default one when it runs, else a fresh one (`owned`). */
async function useStack(o: CalibrateOpts, ad: ArenaDeployment) {
  const dir = o.stateDir ?? defaultStateDir(ad);
  const s = readState(dir);
  if (s && !s.stoppedAt) {
    log(`using the running stack in ${dir}`);
    return { stateDir: dir, state: s, owned: false };
  }
  if (o.stateDir) throw new UserError(`--state-dir ${o.stateDir}: no running stack there`);
  const up = await stackUpFresh(o.file, BENCH_API_ENV, 'arena calibrate', log);
  return { ...up, owned: true };
}

const table = (head: string[]) =>
  new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [], compact: true } });

const fmt = (x: number | null | undefined, pct = false) =>
  x === null || x === undefined ? '-' : pct ? `${(100 * x).toFixed(1)}%` : String(x);

/** The calibration table and the figures behind it. */
function calibrationText(c: Calibration): string {
  const t = table(['kind', 'field', 'spec', 'measured']);
  for (const ch of c.changes) t.push([ch.kind, ch.field, fmt(ch.spec), fmt(ch.measured)]);
  const d = c.db;
  return [
    t.toString(),
    `PgBouncer: ${d.transactions} transactions in ${d.seconds} s, hold ${d.meanHoldMs} ms per transaction (spec ${c.spec.meanHoldMs} ms; Little's law on sv_active: ${fmt(d.littleHoldMs)} ms), wait ${d.meanWaitMs} ms, ${fmt(d.transactionsPerRequest)} transactions per request (spec ${c.spec.transactionsPerRequest})`,
    `factor: dbTimeMs x ${c.factors.dbTime} (hold per transaction x ${c.factors.holdPerTransaction}); hold cv^2 measured ${fmt(d.holdCv2)} (spec mixture ${c.spec.holdCv2}; not written)`,
    c.cpu
      ? `API CPU: ${c.cpu.cpuSeconds} s of the HTTP workers in ${c.cpu.seconds} s for ${c.cpu.requests} requests: ${c.cpu.cpuMsPerRequest} ms per request, each worker ${fmt(c.cpu.busyPerWorker, true)} busy at ${c.cpu.requestsPerSecondPerWorker}/s`
      : 'API CPU: not measured (the API exposes no arena_http_worker_cpu_seconds_total)',
    ...(c.cpuFit
      ? [
          `API CPU, the line through both runs (${c.cpuFit.levels.map((l) => `${fmt(l.busyPerWorker, true)} busy at ${l.requestsPerSecondPerWorker}/s`).join(', ')} per worker): busy = ${c.cpuFit.cpuBaseFraction} + requests/s x ${c.cpuFit.cpuMsPerRequest} ms (spec.api.cpuBaseFraction, cpuMsPerRequest)`,
        ]
      : []),
    `not calibrated: ${c.notCalibrated.map((n) => n.split(':')[0]).join(', ')} (calibration.json says why)`,
  ].join('\n');
}

/** The --verify table: per queue, utilisation and mean wait predicted without / with calibration, and measured. */
function verifyText(rows: VerifyRow[]): string {
  const t = table([
    'queue',
    'util. spec',
    'util. calibrated',
    'util. measured',
    'wait spec',
    'wait calibrated',
    'wait measured',
  ]);
  for (const r of rows)
    t.push([
      r.queue,
      fmt(r.utilization.original, true),
      fmt(r.utilization.calibrated, true),
      fmt(r.utilization.measured, true),
      `${fmt(r.meanWaitMs.original)} ms`,
      `${fmt(r.meanWaitMs.calibrated)} ms`,
      `${fmt(r.meanWaitMs.measured)} ms`,
    ]);
  return `Predicted vs measured, without and with calibration (mean wait per visit)\n${t.toString()}`;
}

/** Run the --verify level and compare the two specs' predictions on its result. */
async function verify(
  o: CalibrateOpts,
  ad: ArenaDeployment,
  c: Calibration,
  stack: StackState,
  stateDir: string,
  outDir: string,
) {
  const level = o.verifyLevel ?? Math.max(1, Math.round(ad.spec.load.targetConcurrency / 2));
  const path = await loadRun(o, stateDir, rateForConcurrency(ad, level), join(outDir, 'verify'), o.seed + 1);
  const result = readResult(path);
  const inputs = {
    file: o.file,
    stack: stack.profile,
    plan: { maxReplicas: 1, defaultPoolSize: stack.profile.pgbouncer.defaultPoolSize },
  };
  // the API's CPU per request falls with load: fit a line through this level and the calibration run's
  const second = measureCpu(
    result,
    offeredRates(
      result,
      ad.spec.load.requestMix.map((k) => k.name),
    ),
    ad.spec.api.workersPerPod,
  );
  const calibration = withCpuFit(c, ad, second);
  const rows = verifyRows(
    modelComparison(result, { ...inputs, ad }),
    modelComparison(result, { ...inputs, ad: calibratedDeployment(ad, calibration) }),
  );
  return { check: { level, result: path, rows }, calibration };
}

async function calibrateCommand(o: CalibrateOpts): Promise<void> {
  if (o.rate !== undefined && o.concurrencyLevel !== undefined)
    throw new UserError('--rate and --concurrency-level: give one of them');
  const text = readInput(o.file);
  const docs = loadArenaDeployments(o.file);
  if (docs.length !== 1)
    throw new UserError(`${o.file}: arena calibrate takes one ArenaDeployment, the file has ${docs.length}`);
  const ad = docs[0]!;
  const target = ad.spec.load.targetConcurrency;
  const rate = o.rate ?? rateForConcurrency(ad, o.concurrencyLevel ?? Math.max(1, target / 10));
  const outDir = resolve(
    o.out ?? join('out', 'calibrate', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)),
  );
  const stack = await useStack(o, ad);
  let cal: Calibration;
  let checked: Awaited<ReturnType<typeof verify>>['check'] | undefined;
  try {
    const path = await loadRun(o, stack.stateDir, rate, join(outDir, 'run'), o.seed);
    cal = calibrate(readResult(path), ad, o.file, path);
    if (o.verify) {
      const v = await verify(o, ad, cal, stack.state, stack.stateDir, outDir);
      checked = v.check;
      cal = v.calibration;
    }
  } finally {
    if (stack.owned) stackDownFresh(stack.stateDir, log);
  }
  const diff = specDiff(text, o.file, ad, cal);
  const json = { ...cal, ...(checked ? { verify: checked } : {}) };
  writeFilesAtomically(outDir, [
    { name: 'calibration.json', content: `${JSON.stringify(json, null, 2)}\n` },
    ...(diff ? [{ name: 'calibrated.yaml', content: diff.text }] : []),
  ]);
  if (o.writePatch)
    writeFilesAtomically(dirname(resolve(o.writePatch)), [
      { name: basename(o.writePatch), content: patchYaml(ad, cal) },
    ]);
  const out = [calibrationText(cal)];
  if (checked) out.push(`\n--verify at ${checked.level} in flight (${checked.result}):\n${verifyText(checked.rows)}`);
  if (diff) out.push(`\n${diff.diff}`);
  process.stdout.write(`${out.join('\n')}\n`);
  log(
    `wrote ${join(outDir, 'calibration.json')}${diff ? ', calibrated.yaml' : ''}${o.writePatch ? ` and ${o.writePatch}` : ''}`,
  );
}

/** Register `arena calibrate`. */
export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description(
      "measure the deployment's DB hold per transaction and API time per request on a short low-load run of its local stack, and write them back as a spec patch",
    )
    .requiredOption('-f, --file <file>', 'the ArenaDeployment (its local stack and request mix)')
    .option('--rate <r>', 'arrivals per second (default: the rate of 10 % of targetConcurrency in flight)', positive)
    .option(
      '--concurrency-level <n>',
      "in flight to offer (Little's law over the request mix gives the rate)",
      positiveInt,
    )
    .addOption(new Option('--duration <d>', 'steady phase of the run').argParser(durationMs).default(30_000, '30s'))
    .addOption(new Option('--ramp <d>', 'ramp-up before it').argParser(durationMs).default(3000, '3s'))
    .option('--out <dir>', 'output folder (default out/calibrate/<time>)')
    .option('--write-patch <file>', 'write the spec patch (the changed requestMix entries) as YAML')
    .option('--state-dir <dir>', 'use the running stack started with arena stack up --state-dir DIR')
    .option('--verify', 'then run at --verify-level and report predicted vs measured without and with calibration')
    .option('--verify-level <n>', '--verify: in flight (default 50 % of targetConcurrency)', positiveInt)
    .addOption(new Option('--seed <n>', 'seed of the run').argParser(positiveInt).default(1))
    .action((opts: CalibrateOpts) => calibrateCommand(opts));
}
