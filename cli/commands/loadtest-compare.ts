/**
 * `arena loadtest compare BASE NEW [--max-regression 10%] [-o table|json]`:
 * gate a new load-test run against the last good one (the rules and the
 * significance method: loadtest/report/compare.ts and docs/loadtest.md).
 *
 * BASE and NEW are each a run's output folder (holding result.json) or a
 * result.json file. Exit codes: 0 no regression; 1 at least one regression
 * (a latency percentile or an error rate, by the rules); 2 bad input (a
 * missing folder or file, an unreadable or invalid result.json, a bad flag),
 * one line naming it; 3 internal error.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import chalk from 'chalk';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { readResult } from '../../loadtest/engine/run.js';
import {
  compareResults,
  fmtMs,
  fmtPct,
  type Comparison,
  type ErrorRateComparison,
  type Interval,
  type PercentileComparison,
  type Verdict,
} from '../../loadtest/report/compare.js';
import { UserError } from '../errors.js';

/**
 * --max-regression: `10%` (a percentage) or `0.1` (a fraction below 1); returns the fraction.
 * A bare number >= 1 is refused (is `10` 10 % or 1,000 %?): write `10%`.
 * @throws InvalidArgumentError (commander prints it naming the flag; exit 2).
 */
export function maxRegressionArg(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be a percentage such as 10% or a fraction such as 0.1');
  const n = Number(m[1]);
  if (m[2] === '%') return n / 100;
  if (n >= 1)
    throw new InvalidArgumentError(`a bare number is a fraction below 1 (0.1 = 10%); for ${n} percent write ${n}%`);
  return n;
}

/**
 * Read one side of the comparison: a folder holding result.json, or the file itself.
 * @throws UserError / LoadTestInputError (exit 2), one line naming the path.
 */
export function readRun(arg: string, role: 'base' | 'new'): { file: string; result: LoadTestResult } {
  if (!existsSync(arg)) throw new UserError(`${role} ${arg}: no such folder or file`);
  const file = statSync(arg).isDirectory() ? join(arg, 'result.json') : arg;
  if (!existsSync(file)) throw new UserError(`${role} ${arg}: no result.json in this folder`);
  let result: LoadTestResult;
  try {
    result = readResult(file);
  } catch (e) {
    throw new UserError(`${role} ${(e as Error).message}`);
  }
  return { file, result };
}

const ms = fmtMs;
/** An interval in the unit of the value it follows (s from 1,000 ms), without the unit: ` [11.3, 11.4]`. */
const ciMs = (i: Interval | null, value: number) => {
  const f = (x: number) => (value >= 1000 ? (x / 1000).toFixed(2) : x.toFixed(x < 10 ? 2 : 1));
  return i ? ` [${f(i.lo)}, ${f(i.hi)}]` : '';
};
const ciPct = (i: Interval | null) => (i ? ` [${(100 * i.lo).toFixed(2)}, ${(100 * i.hi).toFixed(2)}]` : '');
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function verdictText(v: Verdict, reason: string): string {
  if (v === 'regression') return chalk.red.bold('REGRESSION');
  if (v === 'improved') return chalk.green(`improved: ${reason}`);
  if (v === 'too-few-samples') return chalk.yellow(reason);
  if (v === 'not-significant') return reason;
  return v === 'ok' && reason !== 'ok' ? `ok: ${reason}` : 'ok';
}

function percentileRow(scenario: string, metric: string, p: PercentileComparison): string[] {
  const change = `${p.changeMs >= 0 ? '+' : ''}${ms(p.changeMs)}${
    p.ratio === null ? '' : ` (${p.ratio >= 1 ? '+' : ''}${((p.ratio - 1) * 100).toFixed(1)}%)`
  }`;
  return [
    scenario,
    metric,
    p.percentile,
    `${ms(p.base)}${ciMs(p.baseCi, p.base)}`,
    `${ms(p.new)}${ciMs(p.newCi, p.new)}`,
    change,
    verdictText(p.verdict, p.reason),
  ];
}

function errorRow(scenario: string, e: ErrorRateComparison): string[] {
  return [
    scenario,
    'http_req_failed',
    'rate',
    `${pct(e.base)} of ${e.baseRequests.toLocaleString('en-US')}${ciPct(e.baseCi)}`,
    `${pct(e.new)} of ${e.newRequests.toLocaleString('en-US')}${ciPct(e.newCi)}`,
    `${e.changePp >= 0 ? '+' : ''}${e.changePp.toFixed(2)} pp`,
    verdictText(e.verdict, e.reason),
  ];
}

/** The table report of a comparison (what `-o table` prints). */
export function compareText(c: Comparison, files: { base: string; new: string }): string {
  const run = (label: string, f: string, r: Comparison['base']) =>
    `${label} ${f}: ${r.scenario} against ${r.target}, ${r.load}, steady ${r.steadyMs / 1000} s, started ${r.startedAt}${r.status === 'partial' ? ' (PARTIAL)' : ''}`;
  const lines = [
    chalk.bold('arena loadtest compare'),
    run('BASE', files.base, c.base),
    run('NEW ', files.new, c.new),
    `rule: a percentile regresses when NEW > BASE x ${+(1 + c.maxRegression).toFixed(4)} (--max-regression ${fmtPct(c.maxRegression)}) and the 95% intervals [in brackets] do not overlap; the error rate when it rises by ≥ 1 point, by more than ${fmtPct(c.maxRegression)}, and its intervals do not overlap`,
  ];
  for (const w of c.warnings) lines.push(chalk.yellow(`warning: ${w}`));
  for (const n of c.notes) lines.push(`note: ${n}`);
  const t = new Table({
    head: ['scenario', 'metric', 'stat', 'base [95% CI]', 'new [95% CI]', 'change', 'verdict'].map((h) =>
      chalk.bold(h),
    ),
    style: { head: [], border: [], compact: true },
  });
  for (const s of c.scenarios) {
    for (const m of s.metrics) for (const p of m.percentiles) t.push(percentileRow(s.name, m.metric, p));
    t.push(errorRow(s.name, s.errorRate));
  }
  lines.push(t.toString());
  lines.push(
    c.regression
      ? chalk.red.bold(`${c.regressions.length} regression(s):\n`) + c.regressions.map((r) => `  ${r}`).join('\n')
      : chalk.green('no regression'),
  );
  return `${lines.join('\n')}\n`;
}

interface CompareOpts {
  maxRegression: number;
  output: 'table' | 'json';
}

function compare(baseArg: string, newArg: string, o: CompareOpts): void {
  const base = readRun(baseArg, 'base');
  const next = readRun(newArg, 'new');
  const c = compareResults(base.result, next.result, {
    maxRegression: o.maxRegression,
    labels: { base: `base ${base.file}`, new: `new ${next.file}` },
  });
  process.stdout.write(
    o.output === 'json'
      ? `${JSON.stringify({ baseFile: base.file, newFile: next.file, ...c }, null, 2)}\n`
      : compareText(c, { base: base.file, new: next.file }),
  );
  if (c.regression) process.exitCode = 1;
}

/** Register `arena loadtest compare BASE NEW` under the `arena loadtest` command `lt`. */
export function registerCompare(lt: Command): void {
  lt.command('compare')
    .description(
      'gate a run against a base run: P50/P95/P99 and error rate per scenario with 95% intervals; exit 1 on a significant regression',
    )
    .argument('<base>', "the base run's output folder (holding result.json) or its result.json")
    .argument('<new>', "the new run's output folder or its result.json")
    .addOption(
      new Option('--max-regression <pct>', 'allowed rise before a significant change is a regression: 10% or 0.1')
        .argParser(maxRegressionArg)
        .default(0.1, '10%'),
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action((b: string, n: string, opts: CompareOpts) => compare(b, n, opts));
}
