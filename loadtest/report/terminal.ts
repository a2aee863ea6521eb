/**
 * The terminal report of a load test (`arena loadtest run`, `-o table`):
 * per scenario P50/P95/P99/max, TTFT and ITL, RPS, error %, dropped
 * iterations; failures by reason; goodput; per pool peak and P95
 * saturation; predicted vs measured (result.model); the engine's own cost
 * and whether it saturated; the thresholds.
 */
import chalk from 'chalk';
import Table from 'cli-table3';
import type { LoadTestResult, ScenarioResult } from '../engine/result-schema.js';
import { formatDuration } from '../engine/duration.js';

const ms = (x: number | undefined) =>
  x === undefined ? '-' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 2 : 1)} ms`;
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
const int = (x: number) => x.toLocaleString('en-US');

function table(head: string[]): Table.Table {
  return new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [], compact: true } });
}

function scenarioRow(s: ScenarioResult, label = s.name): string[] {
  const d = s.metrics['http_req_duration'];
  const c = s.counters;
  return [
    label,
    s.kind,
    int(c['http_reqs'] ?? 0),
    s.rates.http_reqs.toFixed(1),
    ms(d?.p50),
    ms(d?.p95),
    ms(d?.p99),
    ms(d?.max),
    ms(s.metrics['ttft']?.p99),
    ms(s.metrics['itl']?.p99),
    (c['http_req_failed'] ?? 0) > 0 ? chalk.red(pct(s.http_req_failed)) : '0.0%',
    (c['dropped_iterations'] ?? 0) > 0 ? chalk.red(int(c['dropped_iterations']!)) : '0',
  ];
}

function header(r: LoadTestResult): string[] {
  const st = r.settings;
  const m = st.model;
  const model =
    m.type === 'open'
      ? `${m.rate}/s ${m.arrivalProcess} arrivals, maxVUs ${int(m.maxVUs ?? 0)}`
      : `${int(m.vus ?? 0)} VUs${m.thinkTimeMs ? `, think ${formatDuration(m.thinkTimeMs)}` : ''}`;
  const phases = `ramp-up ${formatDuration(st.phases.rampUpMs)}, steady ${formatDuration(st.phases.steadyMs)}, ramp-down ${formatDuration(st.phases.rampDownMs)}`;
  const partial = r.status === 'partial' ? chalk.yellow(`; PARTIAL: ${r.partialReason}`) : '';
  const out = [
    chalk.bold(`arena loadtest: ${st.scenario.name} against ${st.target}`),
    `${st.executor}: ${model}; ${phases}; ${st.workers} worker thread(s), seed ${st.seed}${partial}`,
  ];
  const fp = st.fromPlan;
  if (fp) {
    const rates = Object.entries(fp.rates)
      .map(([k, v]) => `${k} ${v.toFixed(2)}/s`)
      .join(', ');
    out.push(
      `offered load from the plan of ${fp.name} (${fp.file}) at ${int(fp.targetConcurrency)} in flight${fp.scale < 1 ? ` (--scale ${fp.scale})` : ''}: ${rates}; the plan predicts ${int(Math.round(fp.plannedConcurrency))} in flight`,
    );
  }
  return out;
}

function scenarioTable(r: LoadTestResult): string[] {
  const t = table([
    'scenario',
    'kind',
    'reqs',
    'req/s',
    'P50',
    'P95',
    'P99',
    'max',
    'TTFT P99',
    'ITL P99',
    'errors',
    'dropped',
  ]);
  for (const s of Object.values(r.scenarios)) t.push(scenarioRow(s));
  if (Object.keys(r.scenarios).length > 1) t.push(scenarioRow(r.all, chalk.bold('all')));
  return [chalk.bold('Steady phase (latency from the scheduled start)'), t.toString()];
}

function streamTable(r: LoadTestResult): string[] {
  const streams = Object.values(r.scenarios).filter((s) => s.metrics['ttft']);
  if (streams.length === 0) return [];
  const x = table([
    'stream',
    'TTFT P50',
    'TTFT P99',
    'ITL P50',
    'ITL P99',
    'TPOT P50',
    'e2e P99',
    'tokens/s',
    'cut short',
  ]);
  const secs = r.settings.phases.steadyMs / 1000;
  for (const s of streams) {
    const m = s.metrics;
    x.push([
      s.name,
      ms(m['ttft']?.p50),
      ms(m['ttft']?.p99),
      ms(m['itl']?.p50),
      ms(m['itl']?.p99),
      ms(m['tpot']?.p50),
      ms(m['e2e_latency']?.p99),
      ((s.counters['tokens'] ?? 0) / secs).toFixed(0),
      int(s.counters['streams_cut_short'] ?? 0),
    ]);
  }
  return [x.toString()];
}

function taskTable(r: LoadTestResult): string[] {
  const tasks = Object.values(r.scenarios).filter((s) => s.metrics['task_e2e'] || s.kind === 'task');
  if (tasks.length === 0) return [];
  const x = table([
    'task',
    'submit P99',
    'queue wait P50',
    'queue wait P99',
    'end-to-end P50',
    'end-to-end P99',
    'polls',
  ]);
  for (const s of tasks) {
    const m = s.metrics;
    x.push([
      s.name,
      ms(m['http_req_duration']?.p99),
      ms(m['task_queue_wait']?.p50),
      ms(m['task_queue_wait']?.p99),
      ms(m['task_e2e']?.p50),
      ms(m['task_e2e']?.p99),
      int(s.counters['task_polls'] ?? 0),
    ]);
  }
  return [x.toString()];
}

function failureLines(r: LoadTestResult): string[] {
  const failures = Object.entries(r.all.failures).sort((a, b) => b[1] - a[1]);
  if (failures.length === 0) return [];
  return [
    chalk.bold('Failures (steady phase)'),
    failures
      .slice(0, 10)
      .map(([k, v]) => `  ${chalk.red(int(v))} ${k}`)
      .join('\n'),
  ];
}

function saturationLines(r: LoadTestResult): string[] {
  const sat = r.saturation;
  if (!sat) return [];
  const out = ['', chalk.bold(`Pool saturation (sampled every ${sat.intervalMs} ms, ${sat.ticks} ticks)`)];
  const x = table(['pool', 'figure', 'limit', 'peak', 'P95', 'peak util.', 'P95 util.']);
  const n = (v: number | null) => (v === null ? '-' : int(v));
  for (const [pool, p] of Object.entries(sat.pools)) {
    const name = sat.saturatesFirst?.pool === pool ? chalk.bold(`${pool} *`) : pool;
    x.push([name, p.figure, n(p.limit), n(p.peak), n(p.p95), pct(p.peakUtilization), pct(p.p95Utilization)]);
  }
  out.push(x.toString());
  const w = sat.summary['pgbouncer.cl_waiting'];
  if (w && w.peak !== null)
    out.push(
      `PgBouncer clients waiting: peak ${int(w.peak)}, P95 ${int(w.p95 ?? 0)}; maxwait peak ${ms(sat.summary['pgbouncer.maxwait_ms']?.peak ?? undefined)}`,
    );
  const first = sat.saturatesFirst;
  out.push(
    first
      ? `saturates first: ${chalk.bold(first.pool)} (${first.figure}, peak ${pct(first.peakUtilization)} of its limit)`
      : 'saturates first: - (no pool with a limit was read)',
  );
  for (const [k, tg] of Object.entries(sat.targets))
    if (tg.failed > 0)
      out.push(
        chalk.yellow(
          `sampler ${k}: ${tg.failed} of ${tg.ok + tg.failed} ticks failed (first: ${tg.errors[0]?.error ?? '?'})`,
        ),
      );
  return out;
}

function goodputLines(r: LoadTestResult): string[] {
  const rows = Object.values(r.scenarios).filter((s) => s.goodput);
  if (rows.length === 0) return [];
  const out = ['', chalk.bold('Goodput (steady phase: requests that succeeded within every latency objective)')];
  const x = table(['scenario', 'objectives', 'good', 'goodput', 'good/s']);
  for (const s of rows) {
    const g = s.goodput!;
    const objectives = Object.entries(g.objectives)
      .map(([m, v]) => `${m} <= ${ms(v)}`)
      .join(', ');
    x.push([s.name, objectives, int(g.good), pct(g.share), g.ratePerSecond.toFixed(1)]);
  }
  const a = r.all.goodput;
  if (a) x.push([chalk.bold('all'), 'the scenarios above', int(a.good), pct(a.share), a.ratePerSecond.toFixed(1)]);
  out.push(x.toString());
  return out;
}

const wait = (v: number | null | undefined, stable = true) =>
  !stable ? 'unstable' : v === null || v === undefined ? '-' : ms(v);

function modelLines(r: LoadTestResult): string[] {
  const m = r.model;
  if (!m) return [];
  const t = m.topology;
  const rates = Object.entries(m.offeredRates)
    .map(([k, v]) => `${k} ${v.toFixed(1)}/s`)
    .join(', ');
  const out = [
    '',
    chalk.bold(`Predicted vs measured (${m.name}, ${m.file})`),
    `topology: ${t.source}: ${t.workers} worker process(es), ${t.pgbouncers} PgBouncer(s) with default_pool_size ${t.pgbouncerDefaultPoolSize}, ${t.consumers} consumer(s); arrivals at the target: ${rates}`,
  ];
  const x = table([
    'queue',
    'servers',
    'λ/s',
    'S ms',
    'util. pred.',
    'util. meas.',
    'wait pred. mean/P99',
    'wait meas. mean/P99',
    'verdict',
  ]);
  for (const [name, q] of Object.entries(m.queues)) {
    const p = q.predicted;
    const mm = q.measured;
    const measuredWait = `${wait(mm.meanWaitMs)} / ${wait(mm.p99WaitMs)}${mm.maxWaitMs !== undefined && mm.maxWaitMs !== null ? ` (max ${ms(mm.maxWaitMs)})` : ''}`;
    const verdict =
      q.verdict === 'differs' ? chalk.red('differs') : q.verdict === 'agrees' ? chalk.green('agrees') : q.verdict;
    x.push([
      name,
      int(q.servers),
      q.arrivalRatePerSecond.toFixed(1),
      q.serviceTimeMs.toFixed(1),
      pct(p.utilization),
      pct(mm.utilization),
      p.stable ? `${wait(p.meanWaitMs)} / ${wait(p.p99WaitMs)}` : 'unstable',
      measuredWait,
      verdict,
    ]);
  }
  out.push(x.toString());
  for (const [name, q] of Object.entries(m.queues))
    for (const d of q.differences) out.push(chalk.yellow(`  ${name}: ${d}`));
  out.push(
    `saturates first: predicted ${chalk.bold(m.saturatesFirst.predicted ?? '-')}, measured ${chalk.bold(m.saturatesFirst.measured ?? '-')}; tolerance: utilisation ±${Math.round(100 * m.tolerance.utilizationPoints)} points, waits within ${m.tolerance.waitRatio}x or both under ${m.tolerance.waitFloorMs} ms`,
  );
  const b = table(['connection budget', 'most the settings open', 'limit', 'peak measured', 'within']);
  for (const x2 of m.budgets)
    b.push([
      x2.name,
      int(x2.predicted),
      x2.limit === null ? '-' : int(x2.limit),
      x2.measuredPeak === null ? '-' : int(x2.measuredPeak),
      x2.within === null ? '-' : x2.within ? 'yes' : chalk.red('NO'),
    ]);
  out.push(b.toString());
  return out;
}

function engineLines(r: LoadTestResult): string[] {
  const e = r.engine;
  const out = [
    '',
    `engine: ${e.cpuSeconds.toFixed(1)} CPU s, peak RSS ${(e.peakRssBytes / 2 ** 20).toFixed(0)} MiB, peak in flight ${int(e.peakInFlight)}, schedule lag P99 ${ms(e.scheduleLagP99Ms)}, event-loop delay P99 ${ms(e.loopLagP99Ms)} (it shares this machine's cores with the target)`,
  ];
  if (e.clientSaturated)
    out.push(
      chalk.yellow(
        `WARNING client_saturated: ${e.clientSaturatedReasons.join('; ')}: these figures may measure the load generator, not the target`,
      ),
    );
  return out;
}

function thresholdLines(r: LoadTestResult): string[] {
  if (r.thresholds.length === 0) return [];
  const out = ['', chalk.bold('Thresholds')];
  for (const th of r.thresholds)
    out.push(`  ${th.status === 'pass' ? chalk.green('pass') : chalk.red(th.status)} ${th.message}`);
  out.push(
    r.passed
      ? chalk.green('all thresholds passed')
      : chalk.red(`${r.thresholds.filter((x) => x.status !== 'pass').length} threshold(s) failed`),
  );
  return out;
}

/** The whole report as text (ends with a newline). */
export function reportText(r: LoadTestResult): string {
  const out = [
    ...header(r),
    '',
    ...scenarioTable(r),
    ...streamTable(r),
    ...taskTable(r),
    ...failureLines(r),
    ...goodputLines(r),
    ...saturationLines(r),
    ...modelLines(r),
    ...engineLines(r),
    ...thresholdLines(r),
  ];
  return `${out.join('\n')}\n`;
}
