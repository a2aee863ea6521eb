/**
 * `arena loadtest export k6`: write an arena scenario and load as a k6 script
 * (TypeScript) for pipelines that run k6. arena never runs k6 (AGPL); the
 * script is type-checked against @types/k6 in arena's tests. See
 * docs/loadtest.md, "Exporting to k6".
 *
 * Exit codes: 0 written; 2 bad input (a flag, the scenario, the thresholds
 * file, the ArenaDeployment), one line naming it, nothing written.
 */
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { Option, type Command } from 'commander';
import { repoPath } from '../../lib/util.js';
import {
  bundledScenario,
  BUNDLED,
  fromRequestMix,
  loadScenarioFile,
  type Scenario,
} from '../../loadtest/engine/scenario.js';
import { loadThresholdsFile, mergeThresholds, parseThresholds } from '../../loadtest/engine/thresholds.js';
import { exportK6, thresholdsRecord, type ClosedLoad, type OpenLoad } from '../../loadtest/export/k6.js';
import { planRates } from '../../loadtest/engine/plan-rates.js';
import { plan } from '../../operator/planner/plan.js';
import { DEFAULT_PORTS } from '../../loadtest/stack/stack.js';
import { UserError } from '../errors.js';
import { loadArenaDeployments, writeFilesAtomically } from '../io.js';
import { durationMs, durationOrZero, positive, positiveInt } from '../options.js';

/** The xk6-sse declarations shipped with arena (named in a script's header with --out). */
export const XK6_SSE_TYPES = repoPath('loadtest', 'export', 'k6-types', 'xk6-sse.d.ts');

/** The default base URL of an exported script: the local stack's API. */
export const DEFAULT_BASE_URL = `http://127.0.0.1:${DEFAULT_PORTS.api}`;

interface ExportOpts {
  scenario?: string;
  scenarioFile?: string;
  file?: string;
  rate?: number;
  concurrency?: number;
  thinkTime: number;
  duration: number;
  ramp: number;
  rampDown: number;
  thresholds?: string;
  target: string;
  out?: string;
}

/** The scenario of exactly one of --scenario, --scenario-file, -f, and the file's plan rates with -f. */
function source(o: ExportOpts): { scenario: Scenario; planRates?: Record<string, number> } {
  const given = [
    o.scenario !== undefined ? '--scenario' : '',
    o.scenarioFile !== undefined ? '--scenario-file' : '',
    o.file !== undefined ? '-f' : '',
  ].filter(Boolean);
  if (given.length > 1) throw new UserError(`give one of --scenario, --scenario-file, -f (got ${given.join(' and ')})`);
  if (o.scenario !== undefined) return { scenario: bundledScenario(o.scenario) };
  if (o.scenarioFile !== undefined) return { scenario: loadScenarioFile(o.scenarioFile) };
  if (o.file === undefined)
    throw new UserError(
      `give the scenario: --scenario NAME (${BUNDLED.join(', ')}), --scenario-file FILE or -f arena.yaml`,
    );
  const docs = loadArenaDeployments(o.file);
  if (docs.length !== 1)
    throw new UserError(`-f: ${o.file}: an export takes one ArenaDeployment, the file has ${docs.length} documents`);
  const scenario = fromRequestMix(docs[0]!);
  const kinds = plan(docs[0]!).workload.kinds;
  const found = planRates(kinds, scenario);
  if ('missing' in found)
    throw new UserError(
      `${o.file}: the scenario's request ${found.missing} is not a request kind of the file (kinds: ${Object.keys(kinds).join(', ')})`,
    );
  return { scenario, planRates: found.rates };
}

/** The load of --rate / --concurrency, or (with -f and neither) the plan's rates. */
function loadOf(o: ExportOpts, rates: Record<string, number> | undefined): OpenLoad | ClosedLoad {
  if (o.rate !== undefined && o.concurrency !== undefined)
    throw new UserError('give --rate R or --concurrency N, not both');
  if (o.thinkTime > 0 && o.concurrency === undefined)
    throw new UserError('--think-time: only with --concurrency (the closed model)');
  if (o.concurrency !== undefined) return { model: 'closed', vus: o.concurrency, thinkTimeMs: o.thinkTime };
  if (o.rate !== undefined) return { model: 'open', rate: o.rate };
  if (!rates)
    throw new UserError(
      "give the load: --rate R (open model, arrivals per second) or --concurrency N (closed model); with -f, the plan's rates are the default",
    );
  return { model: 'open', rate: Object.values(rates).reduce((a, b) => a + b, 0), ratesByRequest: rates };
}

function targetArg(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UserError(`--target: not a URL: ${value}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`--target: not an http(s) URL: ${value}`);
  return value.replace(/\/+$/, '');
}

function runExport(o: ExportOpts): void {
  const { scenario, planRates: rates } = source(o);
  const load = loadOf(o, rates);
  const sets = [];
  if (scenario.thresholds) sets.push(parseThresholds(scenario.thresholds, `${scenario.source}: thresholds`));
  if (o.thresholds !== undefined) sets.push(loadThresholdsFile(o.thresholds));
  const out = o.out === undefined ? undefined : resolve(o.out);
  const text = exportK6({
    scenario,
    load,
    durationMs: o.duration,
    rampUpMs: o.ramp,
    rampDownMs: o.rampDown,
    thresholds: thresholdsRecord(mergeThresholds(...sets)),
    baseUrl: targetArg(o.target),
    ...(out ? { sseTypesPath: relative(dirname(out), XK6_SSE_TYPES).split(sep).join('/') } : {}),
  });
  if (!out) {
    process.stdout.write(text);
    return;
  }
  writeFilesAtomically(dirname(out), [{ name: basename(out), content: text }]);
  process.stderr.write(`[loadtest] wrote ${o.out}\n`);
}

/** Register `arena loadtest export k6` under `arena loadtest` (`lt`). */
export function registerExport(lt: Command): void {
  const ex = lt.command('export').description('write a scenario and load for another load tool');
  ex.command('k6')
    .description(
      'a k6 script (TypeScript): one k6 scenario per request, arena thresholds as options.thresholds (type-checked here, never run: k6 is AGPL)',
    )
    .option('--scenario <name>', `a bundled scenario: ${BUNDLED.join(', ')}`)
    .option('--scenario-file <file>', 'a scenario file (YAML or JSON, docs/loadtest.md)')
    .option('-f, --file <file>', "an ArenaDeployment: its requestMix as the scenario, its plan's rates as the load")
    .option('--rate <r>', 'open model: arrivals per second, all requests together', positive)
    .option('--concurrency <n>', 'closed model: VUs in all, split over the requests by weight', positiveInt)
    .addOption(
      new Option('--think-time <d>', 'closed model: pause after each iteration')
        .argParser(durationOrZero)
        .default(0, '0s'),
    )
    .addOption(new Option('--duration <d>', 'steady phase').argParser(durationMs).default(30_000, '30s'))
    .addOption(new Option('--ramp <d>', 'ramp-up from 0').argParser(durationOrZero).default(0, '0s'))
    .addOption(new Option('--ramp-down <d>', 'ramp-down to 0').argParser(durationOrZero).default(0, '0s'))
    .option('--thresholds <file>', 'k6-style thresholds (YAML/JSON), copied into options.thresholds')
    .option('--target <url>', "the script's default BASE_URL (it reads __ENV.BASE_URL first)", DEFAULT_BASE_URL)
    .option('--out <file>', 'write the script to FILE (atomically) instead of stdout')
    .action((opts: ExportOpts) => runExport(opts));
}
