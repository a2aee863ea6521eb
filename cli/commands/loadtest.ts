/**
 * `arena loadtest run|doctor`: the load engine (loadtest/engine/) from the
 * command line. See docs/loadtest.md.
 *
 * Exit codes: 0 every threshold passed; 1 a threshold failed (the result is
 * still written and printed), or a distributed run (--start-at-from,
 * --publish-configmap; docs/distributed.md) passed its start deadline or could
 * not read its ArenaLoadTest or write its shard ConfigMap; 2 bad input or the run could not start (flag,
 * scenario or thresholds file, unreachable target, remote target without
 * --allow-remote, a sampler endpoint that does not answer, an OS limit), one
 * line naming it, nothing written; 3 internal error.
 * Progress goes to stderr; the report (or -o json) to stdout.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';
import chalk from 'chalk';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { localProfile } from '../../loadtest/stack/profile.js';
import { defaultStateDir, readState } from '../../loadtest/stack/stack.js';
import { redactUrl, type TargetKind } from '../../loadtest/sampler/sampler.js';
import type { RunConfig } from '../../loadtest/engine/config.js';
import { formatDuration } from '../../loadtest/engine/duration.js';
import { maxInFlight, readLimits } from '../../loadtest/engine/limits.js';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import {
  checkLimits,
  checkTarget,
  preflightSampler,
  preflightTarget,
  runLoadTest,
  writeResult,
  type Progress,
  type SampleEndpoint,
} from '../../loadtest/engine/run.js';
import {
  bundledScenario,
  BUNDLED,
  fromRequestMix,
  loadScenarioFile,
  objectivesFromThresholds,
  type Scenario,
} from '../../loadtest/engine/scenario.js';
import {
  loadThresholdsFile,
  mergeThresholds,
  parseThresholds,
  type ThresholdSpec,
} from '../../loadtest/engine/thresholds.js';
import { reportText } from '../../loadtest/report/terminal.js';
import { tune, type TuningOutcome } from '../../loadtest/engine/tuning.js';
import { modelComparison, type ModelInputs } from '../../loadtest/report/model.js';
import { plan as planOf } from '../../operator/planner/plan.js';
import { UserError } from '../errors.js';
import { loadArenaDeployments, readPasswordFile } from '../io.js';
import { durationMs, durationOrZero, nonNegativeInt, positive, positiveInt } from '../options.js';
import { scaleArg } from './stack.js';
import { registerExport } from './loadtest-export.js';
import { registerReport, writeReports } from './loadtest-report.js';
import { registerCollect } from './loadtest-collect.js';
import { runShardProcesses, SHARD_START_DELAY_MS, shardArgs } from './loadtest-shards.js';
import { mergeResults } from '../../loadtest/engine/merge.js';
import { planRates } from '../../loadtest/engine/plan-rates.js';
import { registerCompare } from './loadtest-compare.js';

/** The engine's version (the package's). */
export const ENGINE_VERSION = '0.1.0';

interface RunOpts {
  target?: string;
  scenario?: string;
  scenarioFile?: string;
  file?: string;
  fromPlan?: boolean;
  rate?: number;
  concurrency?: number;
  scale: number;
  arrival: 'poisson' | 'uniform';
  duration: number;
  ramp: number;
  rampDown: number;
  maxVus?: number;
  thinkTime: number;
  gracefulStop: number;
  thresholds?: string;
  sample?: string;
  samplePasswordFile?: string;
  out?: string;
  output: 'table' | 'json';
  allowRemote?: boolean;
  workers?: number;
  seed?: number;
  secondHistograms: boolean;
  quiet?: boolean;
  stateDir?: string;
  shard?: { index: number; of: number };
  startAt?: number;
  shards?: number;
  startAtFrom?: string;
  startDeadline?: number;
  publishConfigmap?: string;
  namespace?: string;
  kubeconfig?: string;
}

/** --shard i/N: this process's shard, 0 <= i < N. */
export function shardArg(value: string): { index: number; of: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const index = m ? Number(m[1]) : NaN;
  const of = m ? Number(m[2]) : NaN;
  if (!(of >= 1 && index >= 0 && index < of))
    throw new InvalidArgumentError('must be i/N with 0 <= i < N, e.g. 0/4 (JOB_COMPLETION_INDEX/parallelism)');
  return { index, of };
}

/** --start-at: epoch milliseconds or an ISO 8601 time. */
export function startAtArg(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('must be epoch milliseconds or an ISO 8601 time');
  return n;
}

/** --sample: `auto`, or `kind=URL[,kind=URL...]` with kinds pgbouncer, postgres, redis, health, host. */
export function sampleArg(value: string): string {
  if (value === 'auto') return value;
  for (const part of value.split(',')) {
    const m = /^(pgbouncer|postgres|redis|health|host)=(.+)$/.exec(part.trim());
    if (!m)
      throw new InvalidArgumentError(
        'must be auto or kind=URL[,kind=URL...] with kinds pgbouncer, postgres, redis, health, host',
      );
    try {
      new URL(m[2]!);
    } catch {
      throw new InvalidArgumentError(`${m[1]}: not a URL: ${m[2]}`);
    }
  }
  return value;
}

const warn = (line: string) => process.stderr.write(`arena: warning: ${line}\n`);

function oneSpec(file: string): ArenaDeployment {
  const docs = loadArenaDeployments(file);
  if (docs.length !== 1)
    throw new UserError(`${file}: a load test takes one ArenaDeployment, the file has ${docs.length} documents`);
  return docs[0]!;
}

/** The sampler endpoints of --sample. Passwords: the stack's own file (auto), --sample-password-file, or PGPASSWORD. */
function sampleEndpoints(o: RunOpts, ad: ArenaDeployment | undefined): SampleEndpoint[] {
  if (!o.sample) return [];
  const filePassword = o.samplePasswordFile
    ? readPasswordFile(o.samplePasswordFile, '--sample-password-file')
    : undefined;
  if (o.sample === 'auto') {
    if (!ad) throw new UserError('--sample auto: needs -f FILE (the ArenaDeployment the local stack runs)');
    const s = readState(o.stateDir ?? defaultStateDir(ad));
    if (!s || s.stoppedAt)
      throw new UserError(
        `--sample auto: no running stack for ${o.file}${o.stateDir ? ` in ${o.stateDir}` : ''}; start one with: arena stack up -f ${o.file}`,
      );
    const password = readPasswordFile(s.database.passwordFile, '--sample auto');
    const list: SampleEndpoint[] = [];
    const pgb = s.components.pgbouncer;
    if (pgb)
      list.push({
        kind: 'pgbouncer',
        url: `postgresql://${s.database.user}@${pgb.host}:${pgb.port}/pgbouncer`,
        password,
        database: s.database.name,
      });
    const pgc = s.components.postgres;
    if (pgc)
      list.push({
        kind: 'postgres',
        url: `postgresql://${s.database.user}@${pgc.host}:${pgc.port}/${s.database.name}`,
        password,
      });
    if (s.endpoints['redis']) list.push({ kind: 'redis', url: s.endpoints['redis'] });
    if (s.endpoints['api']) list.push({ kind: 'health', url: `${s.endpoints['api']}/health` });
    // the local stack shares this machine's cores with the engine: sample them too (Linux)
    if (existsSync('/proc/stat')) list.push({ kind: 'host', url: 'file:///proc/stat' });
    return list;
  }
  return o.sample.split(',').map((part) => {
    const [kind, ...rest] = part.trim().split('=');
    const url = rest.join('=');
    const u = new URL(url);
    if (u.password)
      warn(
        `--sample ${kind}: the URL carries a password, which shows in ps and shell history; use PGPASSWORD or --sample-password-file (it is redacted in output and result.json)`,
      );
    const pg = kind === 'pgbouncer' || kind === 'postgres';
    return {
      kind: kind as TargetKind,
      url,
      ...(pg && filePassword !== undefined && !u.password ? { password: filePassword } : {}),
    };
  });
}

/** The scenario of --scenario / --scenario-file (with -f, `mixed` is the file's request mix). */
function scenarioOf(o: RunOpts, ad: ArenaDeployment | undefined): Scenario {
  if (o.scenario && o.scenarioFile) throw new UserError('give --scenario NAME or --scenario-file FILE, not both');
  if (o.scenarioFile) return loadScenarioFile(o.scenarioFile);
  const name = o.scenario ?? (ad ? 'mixed' : undefined);
  if (!name) throw new UserError(`give --scenario NAME (${BUNDLED.join(', ')}) or --scenario-file FILE`);
  if (name === 'mixed' && ad) return fromRequestMix(ad);
  return bundledScenario(name);
}

/** Default worker threads: one per core but one (left to the main thread, the sampler and, on loopback, the target). */
export const defaultWorkers = () => Math.max(1, availableParallelism() - 1);

function buildConfig(
  o: RunOpts,
  ad: ArenaDeployment | undefined,
  scenario: Scenario,
): { config: RunConfig; fromPlan?: LoadTestResult['settings']['fromPlan'] } {
  const models = [
    o.fromPlan ? '--from-plan' : '',
    o.rate !== undefined ? '--rate' : '',
    o.concurrency !== undefined ? '--concurrency' : '',
  ].filter(Boolean);
  if (models.length > 1)
    throw new UserError(`give one of --from-plan, --rate, --concurrency (got ${models.join(' and ')})`);
  if (models.length === 0)
    throw new UserError(
      'give the load: --rate R (open model, arrivals per second), --concurrency N (closed model) or --from-plan (with -f FILE)',
    );
  if (o.scale !== 1 && !o.fromPlan) throw new UserError('--scale: only with --from-plan');
  const limits = readLimits();
  const osMax = maxInFlight(limits, { targets: 1 }).withSoftRaised.value;
  const phases = { rampUpMs: o.ramp, steadyMs: o.duration, rampDownMs: o.rampDown };
  const common = {
    target: '',
    scenario,
    phases,
    gracefulStopMs: o.gracefulStop,
    seed: o.seed ?? randomInt(2 ** 31),
    workers: o.workers ?? defaultWorkers(),
    keepSecondHistograms: o.secondHistograms,
  };
  if (o.concurrency !== undefined)
    return { config: { ...common, model: { type: 'closed', vus: o.concurrency, thinkTimeMs: o.thinkTime } } };
  if (o.thinkTime > 0) throw new UserError('--think-time: only with --concurrency (the closed model)');
  if (o.rate !== undefined)
    return {
      config: { ...common, model: { type: 'open', rate: o.rate, process: o.arrival, maxVUs: o.maxVus ?? osMax } },
    };
  if (!ad) throw new UserError('--from-plan: needs -f FILE (the ArenaDeployment whose plan gives the rates)');
  const p = localProfile(ad, {
    scale: o.scale,
    cores: availableParallelism(),
    openFilesHardLimit: limits.openFilesHard ?? 1024,
  }).plan;
  const found = planRates(p.workload.kinds, scenario);
  if ('missing' in found)
    throw new UserError(
      `--from-plan: the scenario's request ${found.missing} is not a request kind of ${o.file} (kinds: ${Object.keys(p.workload.kinds).join(', ')}); use --scenario mixed`,
    );
  const { rates } = found;
  for (const r of scenario.requests) r.weight = rates[r.name]!;
  const rate = Object.values(rates).reduce((a, b) => a + b, 0);
  const planned = p.workload.targetConcurrency;
  return {
    config: {
      ...common,
      model: {
        type: 'open',
        rate,
        process: o.arrival,
        maxVUs: o.maxVus ?? Math.min(osMax, Math.max(100, Math.ceil(2 * planned))),
      },
    },
    fromPlan: {
      file: o.file!,
      name: ad.metadata.name,
      scale: o.scale,
      targetConcurrency: planned,
      rates,
      plannedConcurrency: p.workload.targetConcurrency,
    },
  };
}

function thresholdsOf(o: RunOpts, scenario: Scenario): ThresholdSpec[] {
  const sets: ThresholdSpec[][] = [];
  if (scenario.thresholds) sets.push(parseThresholds(scenario.thresholds, `${scenario.source}: thresholds`));
  if (o.thresholds) sets.push(loadThresholdsFile(o.thresholds));
  return mergeThresholds(...sets);
}

/** The live progress: a bar on a terminal, a plain line every 5 s otherwise. */
function progressReporter(quiet: boolean) {
  const tty = process.stderr.isTTY && !quiet;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: '{bar} {elapsed}/{total_t} | in flight {inflight} | {rps} req/s | errors {err} | P99 {p99} | {pool}',
          stream: process.stderr,
          hideCursor: true,
          barsize: 20,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = 0;
  return {
    update(p: Progress) {
      const s = p.second;
      const reqs = s.all.counters.http_reqs;
      const fields = {
        elapsed: formatDuration(p.elapsedMs),
        total_t: formatDuration(p.totalMs),
        inflight: s.inFlight.toLocaleString('en-US'),
        rps: reqs.toLocaleString('en-US'),
        err: reqs > 0 ? `${((100 * s.all.counters.http_req_failed) / reqs).toFixed(1)}%` : '0.0%',
        p99: s.all.trends.http_req_duration ? `${Math.round(s.all.trends.http_req_duration.p99)} ms` : '-',
        pool: p.worstPool
          ? `worst pool ${p.worstPool.pool} ${Math.round(100 * p.worstPool.utilization)}%`
          : 'no sampler',
      };
      if (bar) {
        if (!started) bar.start(Math.round(p.totalMs / 1000), 0, fields);
        started = true;
        bar.update(Math.min(Math.round(p.totalMs / 1000), s.t + 1), fields);
      } else if (!quiet && (p.elapsedMs - lastLine >= 5000 || p.elapsedMs >= p.totalMs)) {
        lastLine = p.elapsedMs;
        process.stderr.write(
          `[loadtest] ${fields.elapsed}/${fields.total_t} ${s.phase}: in flight ${fields.inflight}, ${fields.rps} req/s, errors ${fields.err}, P99 ${fields.p99}, ${fields.pool}\n`,
        );
      }
    },
    log(line: string) {
      if (bar && started) bar.stop();
      started = false;
      process.stderr.write(`[loadtest] ${line}\n`);
    },
    stop() {
      if (bar && started) bar.stop();
    },
  };
}

/** A run checked and ready: everything is validated and the target answered. */
interface PreparedRun {
  ad: ArenaDeployment | undefined;
  target: string;
  url: URL;
  scenario: Scenario;
  config: RunConfig;
  fromPlan: LoadTestResult['settings']['fromPlan'] | undefined;
  thresholds: ThresholdSpec[];
  limits: ReturnType<typeof readLimits>;
  outDir: string;
}

/** Check the input and the target (exit 2 before any load on a mistake) and build the run's config. */
async function prepareRun(o: RunOpts): Promise<PreparedRun> {
  const ad = o.file ? oneSpec(o.file) : undefined;
  let target = o.target;
  if (!target && ad) {
    const s = readState(o.stateDir ?? defaultStateDir(ad));
    if (s && !s.stoppedAt && s.endpoints['api']) target = s.endpoints['api'];
  }
  if (!target) throw new UserError(`give --target URL${ad ? ` (no running stack for ${o.file} to default to)` : ''}`);
  const url = checkTarget(target, !!o.allowRemote);
  const scenario = scenarioOf(o, ad);
  const { config, fromPlan } = buildConfig(o, ad, scenario);
  config.target = url.toString().replace(/\/$/, '');
  if (o.shard) config.shard = o.shard;
  if (o.startAt !== undefined) config.startAt = o.startAt;
  const thresholds = thresholdsOf(o, scenario);
  objectivesFromThresholds(scenario, thresholds);
  const limits = readLimits();
  checkLimits(config, limits);
  const outDir = resolve(o.out ?? join('out', 'loadtest', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)));
  await preflightTarget(url);
  return { ad, target, url, scenario, config, fromPlan, thresholds, limits, outDir };
}

/** Print the report, write report.html and junit.xml beside result.json, and set the exit code. */
function finish(o: RunOpts, outDir: string, result: LoadTestResult): void {
  process.stdout.write(o.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : reportText(result));
  const reports = writeReports(outDir, result);
  process.stderr.write(`[loadtest] wrote ${join(outDir, 'result.json')}, ${reports.html}, ${reports.junit}\n`);
  // A runner of a distributed run (--publish-configmap) exits 0 whatever its shard's thresholds say:
  // the operator evaluates them on the merged result, and a failed pod means the runner itself failed.
  if (!result.passed && !o.publishConfigmap) process.exitCode = 1;
}

async function run(o: RunOpts): Promise<void> {
  checkDistributedFlags(o);
  if (o.shards !== undefined && o.shards > 1) return runSharded(o);
  const { ad, target, url, scenario, config, fromPlan, thresholds, limits, outDir } = await prepareRun(o);
  const sampler = await preflightSampler(sampleEndpoints(o, ad));
  const kube = o.startAtFrom || o.publishConfigmap ? await distributedKube(o) : undefined;
  if (kube && o.startAtFrom) config.startAt = await distributedStart(o, kube);
  const progress = progressReporter(!!o.quiet);
  const ac = new AbortController();
  const onSignal = (sig: string) => {
    if (ac.signal.aborted) return;
    progress.log(
      `${sig}: stopping arrivals, letting in-flight requests finish (at most 5 s), then writing a partial result`,
    );
    ac.abort();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const total = config.phases.rampUpMs + config.phases.steadyMs + config.phases.rampDownMs;
  const m = config.model;
  const shard = config.shard ? `, shard ${config.shard.index}/${config.shard.of}` : '';
  process.stderr.write(
    `[loadtest] ${scenario.name} -> ${redactUrl(config.target)}: ${m.type === 'open' ? `${+m.rate.toFixed(3)}/s ${m.process} arrivals (maxVUs ${m.maxVUs})` : `${m.vus} VUs`}${shard} for ${formatDuration(total)}, ${config.workers} worker thread(s)${sampler.length ? `, sampling ${sampler.map((t) => t.kind).join(', ')}` : ''}; result in ${outDir}\n`,
  );
  let result: LoadTestResult;
  try {
    result = await runLoadTest({
      config,
      target: url,
      thresholds,
      sampler,
      outDir,
      ...(fromPlan ? { fromPlan } : {}),
      version: ENGINE_VERSION,
      limits,
      signal: ac.signal,
      stopGraceMs: 5000,
      ...(ad && !config.shard ? { model: modelInputs(o, ad, target) } : {}),
      onProgress: (p) => progress.update(p),
      onLog: (l) => progress.log(l),
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  finish(o, outDir, result);
  if (kube && o.publishConfigmap) await distributedPublish(o, kube, result);
}

/** The distributed-run flags (docs/distributed.md): consistent with each other. @throws UserError naming the flag. */
function checkDistributedFlags(o: RunOpts): void {
  if (o.startAtFrom !== undefined && o.startAt !== undefined)
    throw new UserError('give --start-at or --start-at-from, not both');
  const k8sFlags = o.startAtFrom !== undefined || o.publishConfigmap !== undefined;
  if (o.shards !== undefined && o.shards > 1 && k8sFlags)
    throw new UserError('--shards: not with --start-at-from or --publish-configmap (use --shard i/N)');
  if (o.startDeadline !== undefined && o.startAtFrom === undefined)
    throw new UserError('--start-deadline: only with --start-at-from');
  for (const [flag, v] of [
    ['--namespace', o.namespace],
    ['--kubeconfig', o.kubeconfig],
  ] as const)
    if (v !== undefined && !k8sFlags) throw new UserError(`${flag}: only with --start-at-from or --publish-configmap`);
  for (const [flag, v] of [
    ['--start-at-from', o.startAtFrom],
    ['--publish-configmap', o.publishConfigmap],
    ['--namespace', o.namespace],
  ] as const)
    if (v !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v))
      throw new UserError(`${flag}: not a Kubernetes object name: ${JSON.stringify(v)}`);
}

type DistributedKube = Awaited<ReturnType<typeof distributedKube>>;

/** The kubeconfig and namespace of a distributed run; @kubernetes/client-node loads only here. */
async function distributedKube(o: RunOpts) {
  const runner = await import('../../loadtest/distributed/runner.js');
  return { runner, kc: runner.runnerKubeConfig(o.kubeconfig), namespace: o.namespace ?? runner.podNamespace() };
}

/** --start-at-from: mark the shard ConfigMap ready (with --publish-configmap), then wait for status.startAt (epoch ms). */
async function distributedStart(o: RunOpts, { runner, kc, namespace }: DistributedKube): Promise<number> {
  if (o.publishConfigmap) await runner.markRunnerReady(kc, namespace, o.publishConfigmap);
  const deadline = o.startDeadline ?? 120_000;
  process.stderr.write(
    `[loadtest] ready; waiting up to ${formatDuration(deadline)} for ArenaLoadTest ${namespace}/${o.startAtFrom} status.startAt\n`,
  );
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    const at = await runner.waitForStartSignal(kc, namespace, o.startAtFrom!, deadline, ac.signal);
    process.stderr.write(`[loadtest] start signal: ${new Date(at).toISOString()}\n`);
    return at;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}

/** --publish-configmap: write the shard result into that (pre-created) ConfigMap. */
async function distributedPublish(
  o: RunOpts,
  { runner, kc, namespace }: DistributedKube,
  result: LoadTestResult,
): Promise<void> {
  const enc = await runner.publishShard(kc, namespace, o.publishConfigmap!, result);
  process.stderr.write(
    `[loadtest] published the shard result to ConfigMap ${namespace}/${o.publishConfigmap} (${enc.data.length} bytes${enc.droppedSecondHistograms ? ', per-second histograms dropped to fit' : ''})\n`,
  );
}

/**
 * --shards N: the same run as N processes (`--shard i/N`, one common
 * `--start-at`), the sampler in shard 0 only, then their results merged
 * exactly (merge.ts) into DIR/result.json; each shard's own result stays in
 * DIR/shards/shard-<i>/.
 */
async function runSharded(o: RunOpts): Promise<void> {
  const { ad, target, thresholds, outDir } = await prepareRun({ ...o, shards: undefined });
  const n = o.shards!;
  const startAt = Date.now() + SHARD_START_DELAY_MS;
  process.stderr.write(
    `[loadtest] ${n} shards as processes, starting together at ${new Date(startAt).toISOString()}; result in ${outDir}\n`,
  );
  const shards = await runShardProcesses(shardArgs(process.argv.slice(2)), n, startAt, outDir);
  const { result } = mergeResults(shards, thresholds);
  result.shards = shards.map((s, i) => ({
    index: i,
    dir: join('shards', `shard-${i}`),
    status: s.status,
    requests: s.all.counters['http_reqs'] ?? 0,
    p99Ms: s.all.metrics['http_req_duration']?.p99 ?? null,
  }));
  if (ad) {
    const model = modelComparison(result, modelInputs(o, ad, target));
    if (model) result.model = model;
  }
  writeResult(outDir, result);
  finish(o, outDir, result);
}

/** The inputs of predicted vs measured: the running stack of -f FILE when the run targets it, else the plan's topology. */
function modelInputs(o: RunOpts, ad: ArenaDeployment, target: string): ModelInputs {
  const s = readState(o.stateDir ?? defaultStateDir(ad));
  const stack = s && !s.stoppedAt && s.endpoints['api'] === target.replace(/\/$/, '') ? s.profile : undefined;
  const p = planOf(ad);
  return {
    file: o.file!,
    ad,
    ...(stack ? { stack } : {}),
    plan: { maxReplicas: p.replicas.max, defaultPoolSize: p.pgbouncer.defaultPoolSize },
  };
}

/** The kernel settings as a table: what each was, what a run wants, what happened. */
function tuningText(outcomes: TuningOutcome[]): string {
  const t = new Table({
    head: ['setting', 'value', 'wanted', 'status'].map((h) => chalk.bold(h)),
    style: { head: [], border: [], compact: true },
  });
  for (const o of outcomes)
    t.push([
      o.setting,
      o.before?.replace(/\s+/g, ' ') ?? 'unknown',
      o.wanted.replace(/\s+/g, ' '),
      o.status === 'denied'
        ? chalk.yellow(`${o.status}: ${o.detail}`)
        : `${o.status}${o.status === 'applied' ? ` (${o.detail})` : ''}`,
    ]);
  return t.toString();
}

function doctor(output: 'table' | 'json', apply: boolean): void {
  const tuning = tune(apply);
  const l = readLimits();
  const bound = maxInFlight(l, { targets: 1 });
  const info = {
    engine: {
      version: ENGINE_VERSION,
      node: process.version,
      cores: availableParallelism(),
      defaultWorkers: defaultWorkers(),
    },
    limits: l,
    tuning,
    maxInFlight: {
      now: bound.value,
      boundBy: bound.boundBy,
      detail: bound.detail,
      withSoftRaised: bound.withSoftRaised,
    },
  };
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return;
  }
  const t = new Table({
    head: ['limit', 'value', 'what it caps'].map((h) => chalk.bold(h)),
    style: { head: [], border: [], compact: true },
  });
  const v = (x: number | null) => (x === null ? 'unknown' : x === Infinity ? 'unlimited' : x.toLocaleString('en-US'));
  t.push([
    'open files (soft)',
    v(l.openFilesSoft),
    'sockets this process may hold (node raises it to the hard limit at start)',
  ]);
  t.push(['open files (hard)', v(l.openFilesHard), 'the most the soft limit can be raised to']);
  t.push([
    'local port range',
    l.localPortRange ? `${l.localPortRange.lo}-${l.localPortRange.hi}` : 'unknown',
    'connections to one target address:port',
  ]);
  t.push(['net.core.somaxconn', v(l.somaxconn), "a loopback target's accept backlog"]);
  t.push(['tcp_max_syn_backlog', v(l.tcpMaxSynBacklog), 'half-open connections while many connect at once']);
  t.push(['fs.file-max', v(l.fileMax), 'open files of the whole machine (client and target together)']);
  process.stdout.write(
    `${chalk.bold(`arena load engine ${ENGINE_VERSION}`)} on node ${process.version}, ${availableParallelism()} cores (default ${defaultWorkers()} worker thread(s))\n${t.toString()}\nlargest in-flight count: ${bound.withSoftRaised.value.toLocaleString('en-US')} (bound by ${bound.withSoftRaised.boundBy}: ${bound.withSoftRaised.detail})\n${chalk.bold(`kernel settings for thousands of loopback connections${apply ? '' : ' (--apply raises the ones marked low, where permitted)'}`)}\n${tuningText(tuning)}\n`,
  );
}

/** Register `arena loadtest`. */
export function registerLoadtest(program: Command): void {
  const lt = program
    .command('loadtest')
    .description(
      'drive load at a target and measure it (open or closed model, HDR histograms, thresholds, pool saturation)',
    );
  addOutputOptions(addLoadOptions(lt.command('run'))).action((opts: RunOpts) => run(opts));
  lt.command('doctor')
    .description(
      'the engine version and the OS limits that cap a run (open files, local ports, backlog), with the largest in-flight count they allow',
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option(
      '--apply',
      'raise the kernel settings a large run wants (local port range, tcp_tw_reuse, backlogs) where permitted',
    )
    .action((opts: { output: 'table' | 'json'; apply?: boolean }) => doctor(opts.output, !!opts.apply));
  registerExport(lt);
  registerCompare(lt);
  registerReport(lt);
  registerCollect(lt);
}

/** `arena loadtest run`: what to load and how (target, scenario, model, phases). */
function addLoadOptions(cmd: Command): Command {
  return cmd
    .description(
      'run a load test: latency from the scheduled start, TTFT/ITL for streams, pool saturation, k6-style thresholds',
    )
    .option(
      '--target <url>',
      'the target, e.g. http://127.0.0.1:18000 (default with -f: the running stack of that file)',
    )
    .option('--scenario <name>', `a bundled scenario: ${BUNDLED.join(', ')} (mixed with -f = the file's requestMix)`)
    .option('--scenario-file <file>', 'a scenario file (YAML or JSON, docs/loadtest.md)')
    .option(
      '-f, --file <file>',
      'the ArenaDeployment: its requestMix (--scenario mixed), its plan (--from-plan), its stack (--sample auto)',
    )
    .option('--from-plan', "offer the plan's arrival rate per request kind at spec.load.targetConcurrency (open model)")
    .option('--rate <r>', 'open model: arrivals per second (all request kinds together)', positive)
    .option('--concurrency <n>', 'closed model: N VUs, each one request at a time', positiveInt)
    .addOption(
      new Option('--scale <x>', 'with --from-plan: plan for this fraction of targetConcurrency')
        .argParser(scaleArg)
        .default(1),
    )
    .addOption(
      new Option('--arrival <process>', 'open model arrival process')
        .choices(['poisson', 'uniform'])
        .default('poisson'),
    )
    .addOption(
      new Option('--duration <d>', 'steady phase (only it counts for the headline figures)')
        .argParser(durationMs)
        .default(30_000, '30s'),
    )
    .addOption(
      new Option('--ramp <d>', 'ramp-up from 0 to the rate (or VUs)').argParser(durationOrZero).default(0, '0s'),
    )
    .addOption(
      new Option('--ramp-down <d>', 'ramp-down to 0 after the steady phase').argParser(durationOrZero).default(0, '0s'),
    )
    .option(
      '--max-vus <n>',
      'open model: cap on iterations in flight; arrivals past it are dropped_iterations (default: what the OS limits allow; --from-plan: 2 x the planned in flight)',
      positiveInt,
    )
    .addOption(
      new Option('--think-time <d>', 'closed model: pause after each iteration')
        .argParser(durationOrZero)
        .default(0, '0s'),
    )
    .addOption(
      new Option('--graceful-stop <d>', 'time in-flight iterations get after the schedule ends')
        .argParser(durationOrZero)
        .default(30_000, '30s'),
    );
}

/** `arena loadtest run`: thresholds, sampling, output and engine settings. */
function addOutputOptions(cmd: Command): Command {
  return cmd
    .option(
      '--thresholds <file>',
      'k6-style thresholds (YAML/JSON): {"http_req_duration{scenario:read}": ["p(99)<500"]}',
    )
    .option(
      '--sample <targets>',
      'pool saturation: auto (the stack of -f FILE) or pgbouncer=URL,postgres=URL,redis=URL,health=URL',
      sampleArg,
    )
    .option(
      '--state-dir <dir>',
      'the stack started with arena stack up --state-dir DIR (for --sample auto and the default --target)',
    )
    .option('--sample-password-file <file>', 'password for the pgbouncer/postgres sample URLs (else PGPASSWORD)')
    .option('--out <dir>', 'directory for result.json (default out/loadtest/<time>)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--allow-remote', 'allow a target outside the loopback range')
    .option('--workers <n>', `engine worker threads (default ${defaultWorkers()}: cores - 1)`, positiveInt)
    .option(
      '--seed <n>',
      'seed of arrival gaps, request choice and LLM latency draws (default: random, recorded in the result)',
      nonNegativeInt,
    )
    .option(
      '--no-second-histograms',
      'keep only percentiles per second, not the encoded histograms (a smaller result.json)',
    )
    .option('-q, --quiet', 'no progress on stderr')
    .option('--shards <n>', 'split the run over N processes on this machine and merge their results exactly', shardsArg)
    .option(
      '--shard <i/N>',
      "run only shard i of N (its share of the arrivals or VUs; a runner's part of a distributed run)",
      shardArg,
    )
    .option('--start-at <time>', 'start at this instant (epoch ms or ISO 8601), so shards begin together', startAtArg)
    .option(
      '--start-at-from <name>',
      "distributed run: wait for this ArenaLoadTest's status.startAt and start then (exit 1 after --start-deadline)",
    )
    .option(
      '--start-deadline <d>',
      'with --start-at-from: how long to wait for the start signal (default 120s)',
      durationMs,
    )
    .option('--publish-configmap <name>', 'distributed run: after the run, write the shard result into this ConfigMap')
    .option(
      '--namespace <ns>',
      "namespace of --start-at-from and --publish-configmap (default: the pod's, else default)",
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig for --start-at-from and --publish-configmap (default: in-cluster in a pod, else ~/.kube/config)',
    );
}

function shardsArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 64) throw new InvalidArgumentError('must be an integer from 1 to 64');
  return n;
}
