/**
 * A short real load test for tests that need a `result.json` (reports, JUnit,
 * compare, export): `arena loadtest run` as a child process against a test
 * server of `testing/servers.ts`, in a fresh temporary folder.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runArenaAsync, type CliRun } from './cli.js';
import type { LoadTestResult } from '../loadtest/engine/result-schema.js';

/** What to run: the scenario file's YAML body (after `name:`), the load and the thresholds. */
export interface ShortRun {
  /** The target URL (a test server's `url`). */
  target: string;
  /** YAML of the scenario's `requests:` list, e.g. `requests:\n  - name: fixed\n    path: /fixed\n`. */
  requests: string;
  /** Open model arrivals per second (default 50). */
  rate?: number;
  /** Steady phase, e.g. '3s' (default). */
  duration?: string;
  /** Ramp-up, e.g. '1s' (default none). */
  ramp?: string;
  /** Thresholds as an object (written to a YAML/JSON file and passed with --thresholds). */
  thresholds?: Record<string, string[]>;
  /** Extra flags for `arena loadtest run`. */
  extra?: string[];
  /** The output folder (default: a new temporary folder's `out`). */
  out?: string;
}

/** The outcome: the CLI run, the output folder and the parsed `result.json` (undefined when none was written). */
export interface ShortRunOutcome {
  run: CliRun;
  dir: string;
  result: LoadTestResult | undefined;
}

/** Run `arena loadtest run -q` as described; resolves when it exits (timeout 120 s). */
export async function shortLoadTest(o: ShortRun): Promise<ShortRunOutcome> {
  const tmp = mkdtempSync(join(tmpdir(), 'arena-short-run-'));
  const scenario = join(tmp, 'scenario.yaml');
  writeFileSync(scenario, `name: short\n${o.requests}`);
  const dir = o.out ?? join(tmp, 'out');
  const args = ['loadtest', 'run', '-q', '--target', o.target, '--scenario-file', scenario, '--out', dir];
  args.push('--rate', String(o.rate ?? 50), '--duration', o.duration ?? '3s', '--seed', '1');
  if (o.ramp) args.push('--ramp', o.ramp);
  if (o.thresholds) {
    const f = join(tmp, 'thresholds.json');
    writeFileSync(f, JSON.stringify(o.thresholds));
    args.push('--thresholds', f);
  }
  args.push(...(o.extra ?? []));
  const run = await runArenaAsync(args, { timeoutMs: 120_000 });
  let result: LoadTestResult | undefined;
  try {
    result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as LoadTestResult;
  } catch {
    result = undefined;
  }
  return { run, dir, result };
}
