/**
 * The table sections of the HTML report: the overview (settings, status,
 * the client-saturated warning, the engine's own cost), the per-scenario
 * summary, failures by reason and the thresholds. Every numeric cell of the
 * summary (and the engine's figures) carries `data-metric` and
 * `data-scenario` so a test can read the numbers back.
 */
import type { LoadTestResult, ScenarioResult, ThresholdOutcomeJson } from '../engine/result-schema.js';
import { fmtDuration, fmtFixed, fmtInt, fmtMiB, fmtMs, fmtValue, modelText } from './html-format.js';
import { html, type SafeHtml } from './html-template.js';
import type { ReportContext, ReportSection } from './html-types.js';

/** A numeric cell readable by tests: `<td class="num" data-scenario=S data-metric=M>text</td>`. */
export function numCell(scenario: string, metric: string, text: string): SafeHtml {
  return html`<td class="num" data-scenario="${scenario}" data-metric="${metric}">${text}</td>`;
}

/** A figure in running text, readable by tests like a cell: `<span class="num" data-scenario=S data-metric=M>text</span>`. */
export function numSpan(scenario: string, metric: string, text: string): SafeHtml {
  return html`<span class="num" data-scenario="${scenario}" data-metric="${metric}">${text}</span>`;
}

function statusBadges(r: LoadTestResult): SafeHtml {
  const failed = r.thresholds.filter((t) => t.status !== 'pass').length;
  const status =
    r.status === 'complete'
      ? html`<span class="badge ok">complete</span>`
      : html`<span class="badge warn">partial: ${r.partialReason ?? 'stopped early'}</span>`;
  const th =
    r.thresholds.length === 0
      ? html`<span class="badge none">no thresholds</span>`
      : r.passed
        ? html`<span class="badge ok">thresholds passed (${r.thresholds.length})</span>`
        : html`<span class="badge bad">thresholds failed: ${failed} of ${r.thresholds.length}</span>`;
  return html`<p class="badges">${status} ${th}</p>`;
}

function saturatedWarning(r: LoadTestResult): SafeHtml | null {
  const e = r.engine;
  if (!e.clientSaturated) return null;
  return html`<div class="callout warning" id="client-saturated">
    <strong>The client saturated:</strong> ${e.clientSaturatedReasons.join('; ')}. These figures may measure the load
    generator, not the target (bounds: schedule lag P99 ${fmtMs(e.bounds.scheduleLagP99Ms)} ms, event-loop delay P99
    ${fmtMs(e.bounds.loopLagP99Ms)} ms).
  </div>`;
}

function engineCost(r: LoadTestResult): SafeHtml {
  const e = r.engine;
  return html`${numSpan('engine', 'cpu_seconds', fmtFixed(e.cpuSeconds, 2))} CPU s, peak RSS
  ${numSpan('engine', 'peak_rss_mib', fmtMiB(e.peakRssBytes))} MiB, event-loop delay P99
  ${numSpan('engine', 'loop_lag_p99', fmtMs(e.loopLagP99Ms))} ms, schedule lag P99
  ${numSpan('engine', 'schedule_lag_p99', fmtMs(e.scheduleLagP99Ms))} ms, peak in flight
  ${numSpan('engine', 'peak_in_flight', fmtInt(e.peakInFlight))}`;
}

function facts(r: LoadTestResult): [string, SafeHtml | string][] {
  const st = r.settings;
  const wallMs = Date.parse(r.endedAt) - Date.parse(r.startedAt);
  const rows: [string, SafeHtml | string][] = [
    ['target', html`<code>${st.target}</code>`],
    ['started', r.startedAt],
    ['ended', `${r.endedAt}${Number.isFinite(wallMs) ? ` (${fmtDuration(wallMs)})` : ''}`],
    ['executor', st.executor],
    ['model', modelText(st.model)],
    [
      'phases',
      `ramp-up ${fmtDuration(st.phases.rampUpMs)}, steady ${fmtDuration(st.phases.steadyMs)}, ramp-down ${fmtDuration(st.phases.rampDownMs)}; graceful stop ${fmtDuration(st.gracefulStopMs)}`,
    ],
    ['seed, workers', `seed ${st.seed}, ${st.workers} worker thread(s)`],
    ['engine', `arena ${st.engine.version} on node ${st.engine.node}, ${st.engine.cores} cores`],
    ['engine cost', engineCost(r)],
    [
      'requests',
      html`${st.scenario.requests.map(
        (q, i) =>
          html`${i > 0 ? ', ' : ''}<code>${q.name}</code> ${q.kind} ${q.method} <code>${q.path}</code> (weight
            ${q.weight})`,
      )}`,
    ],
  ];
  const fp = st.fromPlan;
  if (fp)
    rows.push([
      'from plan',
      `${fp.name} (${fp.file}) at ${fmtInt(fp.targetConcurrency)} in flight, scale ${fp.scale}: ${Object.entries(
        fp.rates,
      )
        .map(([k, v]) => `${k} ${fmtFixed(v, 2)}/s`)
        .join(', ')}`,
    ]);
  return rows;
}

/** The overview: status badges, the client-saturated warning, the run's settings and the engine's cost. */
export function overviewSection(ctx: ReportContext): ReportSection {
  const r = ctx.result;
  const dl = facts(r).map(
    ([k, v]) =>
      html`<dt>${k}</dt>
        <dd>${v}</dd>`,
  );
  return {
    id: 'overview',
    title: 'Overview',
    body: html`${statusBadges(r)}${saturatedWarning(r)}
      <dl class="facts">${dl}</dl>`,
  };
}

/** The scenario a threshold belongs to: its `{scenario:NAME}` tag, else "all". */
export function thresholdScenario(selector: string): string {
  const tags = /\{([^}]*)\}/.exec(selector)?.[1] ?? '';
  for (const tag of tags.split(',')) {
    const [k, v] = tag.split(':').map((s) => s.trim());
    if (k === 'scenario' && v) return v;
  }
  return 'all';
}

interface Column {
  metric: string;
  head: string;
  value: (s: ScenarioResult, th: ThresholdOutcomeJson[]) => number | undefined;
  fmt: (v: number) => string;
}

const trend = (name: string, p: 'p50' | 'p95' | 'p99' | 'max') => (s: ScenarioResult) => s.metrics[name]?.[p];

function columns(rows: ScenarioResult[]): Column[] {
  const has = (m: string) => rows.some((s) => s.metrics[m]);
  const trendCol = (m: string, p: 'p50' | 'p95' | 'p99' | 'max', head: string): Column => ({
    metric: `${m}.${p}`,
    head,
    value: trend(m, p),
    fmt: fmtMs,
  });
  const cols: (Column | false)[] = [
    { metric: 'http_reqs', head: 'requests', value: (s) => s.counters['http_reqs'] ?? 0, fmt: fmtInt },
    { metric: 'rps', head: 'req/s', value: (s) => s.rates.http_reqs, fmt: (v) => fmtFixed(v, 1) },
    trendCol('http_req_duration', 'p50', 'P50 ms'),
    trendCol('http_req_duration', 'p95', 'P95 ms'),
    trendCol('http_req_duration', 'p99', 'P99 ms'),
    trendCol('http_req_duration', 'max', 'max ms'),
    has('ttft') && trendCol('ttft', 'p50', 'TTFT P50 ms'),
    has('ttft') && trendCol('ttft', 'p99', 'TTFT P99 ms'),
    has('itl') && trendCol('itl', 'p50', 'ITL P50 ms'),
    has('itl') && trendCol('itl', 'p99', 'ITL P99 ms'),
    has('e2e_latency') && trendCol('e2e_latency', 'p99', 'e2e P99 ms'),
    has('task_e2e') && trendCol('task_e2e', 'p99', 'task e2e P99 ms'),
    has('task_queue_wait') && trendCol('task_queue_wait', 'p99', 'queue wait P99 ms'),
    { metric: 'error_pct', head: 'errors %', value: (s) => 100 * s.http_req_failed, fmt: (v) => fmtFixed(v, 2) },
    {
      metric: 'dropped_iterations',
      head: 'dropped',
      value: (s) => s.counters['dropped_iterations'] ?? 0,
      fmt: fmtInt,
    },
    {
      metric: 'thresholds_passed',
      head: 'thresh. passed',
      value: (_s, th) => th.filter((t) => t.status === 'pass').length,
      fmt: fmtInt,
    },
    {
      metric: 'thresholds_failed',
      head: 'thresh. failed',
      value: (_s, th) => th.filter((t) => t.status !== 'pass').length,
      fmt: fmtInt,
    },
  ];
  return cols.filter((c): c is Column => c !== false);
}

/** The summary table: one row per scenario and one for `all`, steady phase only. */
export function summarySection(ctx: ReportContext): ReportSection {
  const r = ctx.result;
  const rows: [string, ScenarioResult][] = [...Object.entries(r.scenarios), ['all', r.all]];
  const cols = columns(rows.map(([, s]) => s));
  const body = rows.map(([name, s]) => {
    const th = r.thresholds.filter((t) => thresholdScenario(t.selector) === name);
    const cells = cols.map((c) => {
      const v = c.value(s, th);
      return numCell(name, c.metric, v === undefined ? '-' : c.fmt(v));
    });
    return html`<tr${name === 'all' ? html` class="total"` : ''}><th scope="row">${name}</th><td>${s.kind}</td>${cells}</tr>`;
  });
  return {
    id: 'summary',
    title: 'Summary (steady phase)',
    body: html`<p class="note">
        Latency counts from each iteration's scheduled start (no coordinated omission); only the steady phase counts.
        Durations in ms.
      </p>
      <div class="scroll">
        <table class="summary">
          <thead>
            <tr>
              <th>scenario</th>
              <th>kind</th>
              ${cols.map((c) => html`<th class="num">${c.head}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${body}
          </tbody>
        </table>
      </div>`,
  };
}

/** Failures by reason: steady phase (`all.failures`) and the whole run (summed over the seconds). */
export function failuresSection(ctx: ReportContext): ReportSection | null {
  const r = ctx.result;
  const whole = new Map<string, number>();
  for (const p of r.series) for (const [k, v] of Object.entries(p.all.failures)) whole.set(k, (whole.get(k) ?? 0) + v);
  for (const k of Object.keys(r.all.failures)) if (!whole.has(k)) whole.set(k, 0);
  if (whole.size === 0) return null;
  const reasons = [...whole.keys()].sort(
    (a, b) => (r.all.failures[b] ?? 0) - (r.all.failures[a] ?? 0) || whole.get(b)! - whole.get(a)! || (a < b ? -1 : 1),
  );
  const rows = reasons.map((k) => {
    const where = Object.entries(r.scenarios)
      .filter(([, s]) => (s.failures[k] ?? 0) > 0)
      .map(([n]) => n)
      .join(', ');
    return html`<tr>
      <td class="reason">${k}</td>
      <td class="num">${fmtInt(r.all.failures[k] ?? 0)}</td>
      <td class="num">${fmtInt(whole.get(k)!)}</td>
      <td>${where}</td>
    </tr>`;
  });
  return {
    id: 'failures',
    title: 'Failures by reason',
    body: html`<table>
      <thead>
        <tr>
          <th>reason</th>
          <th class="num">steady phase</th>
          <th class="num">whole run</th>
          <th>scenarios (steady)</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>`,
  };
}

/** The thresholds: selector, expression, measured value, pass / fail / missing. */
export function thresholdsSection(ctx: ReportContext): ReportSection | null {
  const r = ctx.result;
  if (r.thresholds.length === 0) return null;
  const rows = r.thresholds.map(
    (t) =>
      html`<tr class="${t.status}">
        <td><code>${t.selector}</code></td>
        <td><code>${t.expression}</code></td>
        <td class="num">${fmtValue(t.value)}</td>
        <td><span class="badge ${t.status === 'pass' ? 'ok' : 'bad'}">${t.status}</span></td>
      </tr>`,
  );
  return {
    id: 'thresholds',
    title: 'Thresholds',
    body: html`<table>
      <thead>
        <tr>
          <th>selector</th>
          <th>expression</th>
          <th class="num">measured</th>
          <th>result</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>`,
  };
}
