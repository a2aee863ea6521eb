/**
 * The page of a capacity bench (`bench.html`, written by `arena bench` next
 * to bench.json): one self-contained HTML document that opens offline, built
 * like the load test's report.html (html.ts): the same CSS, inlined uPlot,
 * Content-Security-Policy (no fetch of any kind) and client script
 * (html-client.ts), with the charts' x axis being concurrency (in flight)
 * instead of time.
 *
 * Content: the bench's settings, machine and topology; one row per level
 * (requests/s, in flight, P50/P95/P99 per request kind, TTFT P99 of
 * streams, errors, dropped iterations, the first pool to saturate vs the
 * queue the model predicts first, the load engine's cost per 1,000 in flight
 * and a relative link to the level's own report.html); the scaling curve
 * (utilisation per queue against concurrency: the plan's predicted line and
 * the measured points; P99 per request kind against concurrency); the
 * predicted vs measured table per level and queue; and, after
 * `--find-max`, the capacity search. Every number in a table carries
 * `data-scenario="level-<N>"` (or "find-max") and `data-metric` so tests can
 * read it back. Every string from the bench (names, paths, queue names) is
 * escaped (html-template.ts). The output is the same for the same bench.
 */
import type { BenchLevel, BenchResult } from './bench.js';
import {
  LIMIT_COLOR,
  PALETTE,
  PHASE_FILL,
  type ClientData,
  type XChartSeries,
  type XChartSpec,
} from './html-client.js';
import { fmtDuration, fmtFixed, fmtInt, fmtMs, fmtPct } from './html-format.js';
import { numCell, numSpan } from './html-sections.js';
import { html, type SafeHtml } from './html-template.js';
import { renderPage } from './html-page.js';

/** Extra CSS of this page (on top of the report's). */
const BENCH_CSS = `
tr.beyond th, tr.beyond td { background: #fff8f0; }
td.text { white-space: nowrap; }
.beyond-mark { color: var(--warn); font-weight: 600; }
.saturated-mark { color: var(--bad); font-weight: 600; }
`;

/** The `data-scenario` of a level's cells: `level-<concurrency>`. */
export const levelKey = (l: BenchLevel): string => `level-${l.concurrency}`;

/** A text cell readable by tests like a number cell. */
function textCell(scenario: string, metric: string, text: string): SafeHtml {
  return html`<td class="text" data-scenario="${scenario}" data-metric="${metric}">${text}</td>`;
}

const kindsOf = (b: BenchResult) => [...new Set(b.levels.flatMap((l) => Object.keys(l.kinds)))];
const streamKindsOf = (b: BenchResult) =>
  kindsOf(b).filter((k) => b.levels.some((l) => l.kinds[k]?.ttftP99 !== null && l.kinds[k]?.ttftP99 !== undefined));
const queuesOf = (b: BenchResult) => [
  ...new Set([...Object.keys(b.curve.utilization), ...b.levels.flatMap((l) => Object.keys(l.queues))]),
];

/** A level's name: its concurrency (readable by tests when `cell`), "beyond the target", "client saturated". */
function levelLabel(l: BenchLevel, cell: boolean): SafeHtml {
  return html`${cell ? numSpan(levelKey(l), 'concurrency', fmtInt(l.concurrency)) : fmtInt(l.concurrency)}${
    l.beyond ? html`<br /><span class="sub beyond-mark">beyond the target</span>` : ''
  }${l.engine.clientSaturated ? html`<br /><span class="sub saturated-mark">client saturated</span>` : ''}`;
}

function overviewSection(b: BenchResult): SafeHtml {
  const wallMs = Date.parse(b.endedAt) - Date.parse(b.startedAt);
  const levels = b.levels.map((l) => `${fmtInt(l.concurrency)}${l.beyond ? ' (beyond the target)' : ''}`);
  const rows: [string, SafeHtml | string][] = [
    ['ArenaDeployment', html`<code>${b.name}</code> from <code>${b.file}</code>`],
    ['target concurrency', html`${numSpan('bench', 'target_concurrency', fmtInt(b.targetConcurrency))} in flight`],
    ['started', b.startedAt],
    ['ended', `${b.endedAt}${Number.isFinite(wallMs) ? ` (${fmtDuration(wallMs)})` : ''}`],
    [
      'machine',
      `${b.machine.cores} cores, node ${b.machine.node}, open files ${b.machine.openFilesSoftLimit === null ? 'unknown' : fmtInt(b.machine.openFilesSoftLimit)}`,
    ],
    ['levels', `${levels.join(', ') || 'none ran'} in flight`],
    [
      'per level',
      `ramp ${fmtDuration(b.settings.rampMs)}, then steady ${fmtDuration(b.settings.steadyMs)} (the figures are the steady phase's); seed ${b.settings.seed} + level`,
    ],
    ['API environment', b.settings.apiEnv.length ? html`<code>${b.settings.apiEnv.join(' ')}</code>` : 'defaults'],
    [
      'topology',
      `${b.topology.workers} API worker(s), ${b.topology.pgbouncers} PgBouncer(s) with pool ${b.topology.pgbouncerDefaultPoolSize}, ${b.topology.consumers} async consumer(s)`,
    ],
  ];
  return html`<section id="overview">
    <h2>Overview</h2>
    <dl class="facts">
      ${rows.map(
        ([k, v]) =>
          html`<dt>${k}</dt>
            <dd>${v}</dd>`,
      )}
    </dl>
  </section>`;
}

/** One row of the levels table: load, errors, saturation, the engine's cost, the level's report. */
function levelRow(l: BenchLevel): SafeHtml {
  const s = levelKey(l);
  const e = l.engine;
  const link = `${l.dir}/report.html`;
  return html`<tr class="${l.beyond ? 'beyond' : ''}">
    <th scope="row">${levelLabel(l, true)}</th>
    ${numCell(s, 'rate', fmtFixed(l.ratePerSecond, 1))}${numCell(s, 'in_flight_mean', fmtInt(l.steadyInFlightMean))}
    ${numCell(s, 'peak_in_flight', fmtInt(l.peakInFlight))}
    ${numCell(s, 'error_pct', fmtPct(l.errorRate, 2))}${numCell(s, 'dropped', fmtInt(l.dropped))}
    ${textCell(s, 'saturates_first.measured_pool', l.saturatesFirst.measuredPool ?? 'none')}
    ${textCell(s, 'saturates_first.predicted_queue', l.saturatesFirst.predictedQueue ?? '-')}
    ${numCell(s, 'engine.cpu_s_per_1k', fmtFixed(e.cpuSecondsPer1kInFlight, 2))}
    ${numCell(s, 'engine.mib_per_1k', fmtFixed(e.rssMiBPer1kInFlight, 1))}
    <td class="text"><a href="${link}">${link}</a><br /><span class="sub">${l.status}, exit ${l.exitCode}</span></td>
  </tr>`;
}

/** One row of the latency table: P50/P95/P99 per request kind, TTFT P99 per stream kind. */
function latencyRow(l: BenchLevel, kinds: string[], streams: string[]): SafeHtml {
  const s = levelKey(l);
  const k = (name: string) => l.kinds[name];
  return html`<tr class="${l.beyond ? 'beyond' : ''}">
    <th scope="row">${levelLabel(l, false)}</th>
    ${kinds.map(
      (n) =>
        html`${numCell(s, `${n}.p50`, fmtMs(k(n)?.p50))}${numCell(s, `${n}.p95`, fmtMs(k(n)?.p95))}${numCell(
          s,
          `${n}.p99`,
          fmtMs(k(n)?.p99),
        )}`,
    )}
    ${streams.map((n) => numCell(s, `${n}.ttft_p99`, fmtMs(k(n)?.ttftP99)))}
  </tr>`;
}

function latencyTable(b: BenchResult): SafeHtml {
  const kinds = kindsOf(b);
  const streams = streamKindsOf(b);
  return html`<h3>Latency per request kind (ms)</h3>
    <div class="scroll">
      <table class="summary" id="latency-table">
        <thead>
          <tr>
            <th rowspan="2">in flight (level)</th>
            ${kinds.map((n) => html`<th colspan="3" class="group">${n}</th>`)}
            ${streams.length ? html`<th colspan="${streams.length}" class="group">TTFT P99</th>` : ''}
          </tr>
          <tr>
            ${kinds.map(
              () =>
                html`<th class="num">P50</th>
                  <th class="num">P95</th>
                  <th class="num">P99</th>`,
            )}
            ${streams.map((n) => html`<th class="num">${n}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${b.levels.map((l) => latencyRow(l, kinds, streams))}
        </tbody>
      </table>
    </div>`;
}

function levelsSection(b: BenchResult): SafeHtml {
  return html`<section id="levels">
    <h2>Levels</h2>
    <p class="note">
      One load test per level: the mixed scenario at the arrival rate Little's law gives for that many in flight, a
      ramp, then the steady phase these figures come from. "Saturates first": the pool the sampler saw full first / the
      queue the model predicts to give way first. The load engine's cost per 1,000 requests in flight (mean of the
      steady phase). Latency counts from each request's scheduled start.
    </p>
    <div class="scroll">
      <table class="summary" id="levels-table">
        <thead>
          <tr>
            <th rowspan="2">in flight (level)</th>
            <th rowspan="2" class="num">offered req/s</th>
            <th rowspan="2" class="num">mean in flight</th>
            <th rowspan="2" class="num">peak in flight</th>
            <th rowspan="2" class="num">errors %</th>
            <th rowspan="2" class="num">dropped</th>
            <th colspan="2" class="group">saturates first</th>
            <th colspan="2" class="group">engine per 1k in flight</th>
            <th rowspan="2">the level's report</th>
          </tr>
          <tr>
            <th>measured pool</th>
            <th>predicted queue</th>
            <th class="num">CPU s</th>
            <th class="num">MiB</th>
          </tr>
        </thead>
        <tbody>
          ${b.levels.map(levelRow)}
        </tbody>
      </table>
    </div>
    ${latencyTable(b)}
  </section>`;
}

/** A log y scale when every value is > 0 and the largest is at least 20 times the smallest. */
function wideRange(series: XChartSeries[]): boolean {
  const v = series.flatMap((s) => s.values).filter((x): x is number => x !== null);
  if (v.length === 0 || v.some((x) => x <= 0)) return false;
  return Math.max(...v) / Math.min(...v) >= 20;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 10000) / 100);

/**
 * Chart 1: per queue the plan's predicted utilisation (line over `curve.concurrency`) and the measured one at each
 * level (points), in %; the same colour per queue; 100 % as a dashed line; the target as a vertical marker.
 */
export function utilisationChart(b: BenchResult): XChartSpec {
  const x = [...new Set([...b.curve.concurrency, ...b.levels.map((l) => l.concurrency)])].sort((p, q) => p - q);
  const series: XChartSeries[] = [];
  queuesOf(b).forEach((q, i) => {
    const color = PALETTE[i % PALETTE.length];
    const curve = new Map<number, number | null>();
    b.curve.concurrency.forEach((c, j) => curve.set(c, pct(b.curve.utilization[q]?.[j])));
    const measured = new Map<number, number | null>();
    for (const l of b.levels) measured.set(l.concurrency, pct(l.queues[q]?.measuredUtilization));
    series.push({
      label: `${q} predicted`,
      values: x.map((c) => curve.get(c) ?? null),
      color,
      spanGaps: true,
    });
    series.push({ label: `${q} measured`, values: x.map((c) => measured.get(c) ?? null), color, pointsOnly: true });
  });
  const maxX = Math.max(1, b.targetConcurrency, ...x);
  return {
    id: 'utilization',
    title: 'Utilisation vs concurrency',
    yLabel: 'utilisation',
    unit: '%',
    x,
    series,
    limit: 100,
    limitLabel: '100 % (saturated)',
    phases: [],
    xLabel: 'concurrency',
    xUnit: 'in flight',
    xRange: [0, maxX],
    yLog: wideRange(series),
    xMarker: { value: b.targetConcurrency, label: `target ${fmtInt(b.targetConcurrency)}` },
    note: "lines: the plan's predicted utilisation; dots: measured at each level (the same colour per queue)",
  };
}

/** Chart 2: per request kind the measured P99 (ms) at each level, points joined by a line. */
export function p99Chart(b: BenchResult): XChartSpec {
  const levels = [...b.levels].sort((p, q) => p.concurrency - q.concurrency);
  const x = levels.map((l) => l.concurrency);
  const series: XChartSeries[] = kindsOf(b).map((k) => ({
    label: `${k} P99`,
    values: levels.map((l) => l.kinds[k]?.p99 ?? null),
    showPoints: true,
  }));
  return {
    id: 'p99',
    title: 'P99 vs concurrency',
    yLabel: 'P99 latency',
    unit: 'ms',
    x,
    series,
    phases: [],
    xLabel: 'concurrency',
    xUnit: 'in flight',
    xRange: [0, Math.max(1, b.targetConcurrency, ...x)],
    yLog: wideRange(series),
    xMarker: { value: b.targetConcurrency, label: `target ${fmtInt(b.targetConcurrency)}` },
    note: 'measured in the steady phase of each level, from the scheduled start',
  };
}

function chartFigure(c: XChartSpec): SafeHtml {
  const limit =
    c.limit !== undefined
      ? html`<span class="limit-swatch" style="border-color:${LIMIT_COLOR}"></span>${c.limitLabel ?? 'limit'}`
      : '';
  return html`<figure class="chart" id="chart-${c.id}">
    <h3>${c.title}</h3>
    <div class="plot" id="plot-${c.id}"></div>
    <figcaption>
      ${c.note}${limit}<span class="limit-swatch" style="border-color:#59636e"></span>the plan's target
      concurrency${c.yLog ? '; logarithmic y axis' : ''}
    </figcaption>
  </figure>`;
}

function curveSection(charts: XChartSpec[]): SafeHtml {
  return html`<section id="curve">
    <h2>The scaling curve</h2>
    <p class="note">
      The predicted lines are the planner's queue models at the arrival rate Little's law gives for each concurrency on
      the topology that ran; a queue above 100 % cannot keep up (its wait grows without bound).
    </p>
    ${charts.map(chartFigure)}
  </section>`;
}

/** The rows of one level in the predicted vs measured table. */
function modelRows(l: BenchLevel): SafeHtml[] {
  const s = levelKey(l);
  const queues = Object.entries(l.queues);
  return queues.map(([q, x], i) => {
    const first = [
      q === l.saturatesFirst.predictedQueue ? 'predicted first' : '',
      q === l.saturatesFirst.measuredQueue ? 'measured first' : '',
    ].filter(Boolean);
    return html`<tr class="${x.verdict === 'differs' ? 'differs' : ''}${l.beyond ? ' beyond' : ''}">
      ${i === 0 ? html`<th scope="rowgroup" rowspan="${queues.length}">${levelLabel(l, false)}</th>` : ''}
      <td><code>${q}</code>${first.length ? html`<br /><span class="sub">${first.join(', ')}</span>` : ''}</td>
      ${numCell(s, `${q}.predicted_util_pct`, fmtPct(x.predictedUtilization))}
      ${textCell(s, `${q}.predicted_stable`, x.predictedStable ? 'stable' : 'unstable')}
      ${numCell(s, `${q}.measured_util_pct`, fmtPct(x.measuredUtilization))}
      ${numCell(s, `${q}.predicted_p99_wait`, fmtMs(x.predictedP99WaitMs))}
      ${numCell(s, `${q}.measured_p99_wait`, fmtMs(x.measuredP99WaitMs))} ${textCell(s, `${q}.verdict`, x.verdict)}
    </tr>`;
  });
}

function modelSection(b: BenchResult): SafeHtml {
  return html`<section id="model">
    <h2>Predicted vs measured</h2>
    <p class="note">
      Per level and queue: the plan's utilisation and P99 wait at the level's measured arrivals, what the sampler
      measured, and whether they agree within the tolerance of <code>result.model</code> (each level's report.html says
      why). Utilisation in %, waits in ms; "-" where the model has no finite wait (unstable) or nothing was measured.
    </p>
    <div class="scroll">
      <table class="model" id="model-table">
        <thead>
          <tr>
            <th>in flight (level)</th>
            <th>queue</th>
            <th class="num">predicted util. %</th>
            <th>model</th>
            <th class="num">measured util. %</th>
            <th class="num">predicted P99 wait</th>
            <th class="num">measured P99 wait</th>
            <th>verdict</th>
          </tr>
        </thead>
        <tbody>
          ${b.levels.flatMap(modelRows)}
        </tbody>
      </table>
    </div>
  </section>`;
}

function findMaxSection(b: BenchResult): SafeHtml | null {
  const fm = b.findMax;
  if (!fm) return null;
  const slo = Object.entries(fm.slo).map(([k, v]) => `${k} ${v.join(', ')}`);
  const p = fm.predicted;
  return html`<section id="find-max">
    <h2>Capacity search (--find-max)</h2>
    <p>
      SLO: <code>${slo.join('; ')}</code>. Measured: the SLO held up to
      ${fm.maxConcurrency === null ? 'no level tried' : html`${numSpan('find-max', 'max_concurrency', fmtInt(fm.maxConcurrency))} in flight`}${
        fm.upperBound === null ? '' : html` (failed at ${numSpan('find-max', 'upper_bound', fmtInt(fm.upperBound))})`
      }.
      Predicted:
      ${
        p.limitConcurrency === null
          ? 'no modelled queue becomes unstable below 100 times the target'
          : html`<code>${p.queue ?? '-'}</code> becomes unstable at
              ${numSpan('find-max', 'predicted_limit', fmtInt(p.limitConcurrency))} in flight`
      }.
    </p>
    <table>
      <thead>
        <tr>
          <th class="num">in flight</th>
          <th>SLO</th>
          <th>failed thresholds</th>
        </tr>
      </thead>
      <tbody>
        ${fm.steps.map(
          (st, i) =>
            html`<tr>
              ${numCell(`find-max-${i + 1}`, 'concurrency', fmtInt(st.concurrency))}
              <td>${st.passed ? 'held' : 'failed'}</td>
              <td>${st.failed.join('; ')}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

/**
 * Render a bench (bench.json, `BenchResult`) as one complete HTML document (UTF-8 text, see the file comment).
 * Links to each level's `<dir>/report.html` are relative to the bench folder, where `arena bench` writes the page.
 * @throws Error when uPlot is not installed (a broken install, not user input).
 */
export function renderBenchHtml(b: BenchResult): string {
  const charts = [utilisationChart(b), p99Chart(b)];
  const data: ClientData = {
    xRange: charts[0]!.xRange!,
    phaseFill: PHASE_FILL,
    palette: PALETTE,
    limitColor: LIMIT_COLOR,
    charts,
  };
  return renderPage({
    title: `arena bench: ${b.name}`,
    css: BENCH_CSS,
    body: html`${overviewSection(b)} ${levelsSection(b)} ${curveSection(charts)} ${modelSection(b)} ${findMaxSection(b)}`,
    footer: `arena bench; bench.json schema version ${b.schemaVersion}; charts drawn with uPlot.`,
    data,
  });
}
