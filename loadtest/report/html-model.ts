/**
 * The "Predicted vs measured" section of the HTML report: `result.model`
 * (present when the run had `-f FILE`; computed by loadtest/report/model.ts,
 * whose docstring says what each figure means). It shows the topology and
 * the offered arrival rates, one row per queue the planner models (predicted
 * at the offered load vs measured in the steady phase, the verdict and what
 * differs, 'differs' rows highlighted), which queue saturates first
 * (predicted vs measured), the connection budgets, and the tolerance.
 *
 * Every number carries `data-scenario` (the queue's name, the budget's name,
 * the request kind, `topology` or `tolerance`) and `data-metric` (e.g.
 * `predicted.utilization`, `measured.p99WaitMs`, `budget.measuredPeak`) so a
 * test can read it back; percentages show 100 x the fraction.
 */
import type { BudgetComparison, ModelComparison, QueueComparison } from '../engine/result-schema.js';
import { fmtFixed, fmtInt, fmtMs, fmtPct } from './html-format.js';
import { numCell, numSpan } from './html-sections.js';
import { html, type SafeHtml } from './html-template.js';
import type { ReportContext, ReportSection } from './html-types.js';

/** The badge class of a verdict. */
const VERDICT_BADGE: Record<QueueComparison['verdict'], string> = {
  agrees: 'ok',
  differs: 'bad',
  'not measured': 'none',
};

/** A number with at most `d` decimals and no trailing zeros: 0.1 x 100 -> `10`. */
const short = (v: number, d = 2) => (+v.toFixed(d)).toString();

function intro(m: ModelComparison): SafeHtml {
  const t = m.topology;
  const rates = Object.entries(m.offeredRates).map(
    ([k, v], i) => html`${i > 0 ? ', ' : ''}<code>${k}</code> ${numSpan(k, 'offered_rate', fmtFixed(v, 2))}/s`,
  );
  return html`<p>
    The planner's queues for <code>${m.name}</code> (<code>${m.file}</code>) at the load this run offered. Topology,
    from the ${t.source}: ${numSpan('topology', 'workers', fmtInt(t.workers))} API workers,
    ${numSpan('topology', 'pgbouncers', fmtInt(t.pgbouncers))} PgBouncer(s) with default_pool_size
    ${numSpan('topology', 'pgbouncerDefaultPoolSize', fmtInt(t.pgbouncerDefaultPoolSize))},
    ${numSpan('topology', 'consumers', fmtInt(t.consumers))} queue consumers. Offered arrivals (steady phase, per
    second): ${rates.length ? rates : 'none'}.
  </p>`;
}

function saturatesFirst(m: ModelComparison): SafeHtml {
  const { predicted, measured } = m.saturatesFirst;
  const same = predicted === measured;
  return html`<div class="callout ${same ? 'info' : 'warning'}" id="model-saturates-first">
    The model predicts <strong>${predicted ?? 'no queue'}</strong> saturates first; measured:
    <strong>${measured ?? 'not measured'}</strong>.
  </div>`;
}

/** A predicted wait: the number, or "unstable" when the queue cannot keep up (the model gives no wait then). */
function predictedWait(name: string, q: QueueComparison, metric: 'meanWaitMs' | 'p99WaitMs'): SafeHtml {
  const v = q.predicted[metric];
  return numCell(name, `predicted.${metric}`, q.predicted.stable ? fmtMs(v) : 'unstable');
}

/** The measured P99 wait, and PgBouncer's worst wait (maxwait) under it when there is one. */
function measuredP99(name: string, q: QueueComparison): SafeHtml {
  const max = q.measured.maxWaitMs;
  return html`<td class="num">
    ${numSpan(name, 'measured.p99WaitMs', fmtMs(q.measured.p99WaitMs))}${
      max !== undefined && max !== null
        ? html`<div class="sub">max ${numSpan(name, 'measured.maxWaitMs', fmtMs(max))} ms</div>`
        : ''
    }
  </td>`;
}

/** The columns of the queue table (the differences row spans all but the first). */
const QUEUE_COLUMNS = 11;

function queueRow(name: string, q: QueueComparison): SafeHtml {
  const cls = q.verdict === 'differs' ? 'differs' : '';
  const diffs = q.differences.length
    ? html`<tr class="${cls} difference-lines">
        <td></td>
        <td colspan="${QUEUE_COLUMNS - 1}">
          <ul class="differences">
            ${q.differences.map((d) => html`<li>${d}</li>`)}
          </ul>
        </td>
      </tr>`
    : '';
  return html`<tr class="${cls}${q.differences.length ? ' has-differences' : ''}">
      <th scope="row">${name}</th>
      ${numCell(name, 'servers', fmtInt(q.servers))}${numCell(name, 'arrivalRatePerSecond', fmtFixed(q.arrivalRatePerSecond, 2))}
      ${numCell(name, 'serviceTimeMs', fmtMs(q.serviceTimeMs))}
      ${numCell(name, 'predicted.utilization', fmtPct(q.predicted.utilization))}
      ${numCell(name, 'measured.utilization', fmtPct(q.measured.utilization))} ${predictedWait(name, q, 'meanWaitMs')}
      ${numCell(name, 'measured.meanWaitMs', fmtMs(q.measured.meanWaitMs))} ${predictedWait(name, q, 'p99WaitMs')}
      ${measuredP99(name, q)}
      <td>
        <span class="badge ${VERDICT_BADGE[q.verdict]}" data-scenario="${name}" data-metric="verdict"
          >${q.verdict}</span
        >
      </td>
    </tr>
    ${diffs}`;
}

function queueTable(m: ModelComparison): SafeHtml {
  const rows = Object.entries(m.queues).map(([n, q]) => queueRow(n, q));
  return html`<div class="scroll">
    <table class="model">
      <thead>
        <tr>
          <th rowspan="2">queue</th>
          <th rowspan="2" class="num">servers</th>
          <th rowspan="2" class="num">arrivals /s</th>
          <th rowspan="2" class="num">service ms</th>
          <th colspan="2" class="group">utilisation %</th>
          <th colspan="2" class="group">mean wait ms</th>
          <th colspan="2" class="group">P99 wait ms</th>
          <th rowspan="2">verdict</th>
        </tr>
        <tr>
          ${['predicted', 'measured', 'predicted', 'measured', 'predicted', 'measured'].map(
            (h) => html`<th class="num">${h}</th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </div>`;
}

function budgetRow(b: BudgetComparison): SafeHtml {
  const within = b.within === null ? 'not measured' : b.within ? 'yes' : 'no';
  return html`<tr class="${b.within === false ? 'differs' : ''}">
    <th scope="row">${b.name}</th>
    <td><code>${b.figure}</code></td>
    ${numCell(b.name, 'budget.predicted', fmtInt(b.predicted))}${numCell(b.name, 'budget.limit', fmtInt(b.limit))}
    ${numCell(b.name, 'budget.measuredPeak', fmtInt(b.measuredPeak))}
    <td data-scenario="${b.name}" data-metric="budget.within">${within}</td>
  </tr>`;
}

function budgetTable(m: ModelComparison): SafeHtml {
  if (m.budgets.length === 0) return html``;
  return html`<h3>Connection budgets</h3>
    <p class="note">
      The most connections the topology's settings can open vs the peak the sampler saw, and the server's limit.
    </p>
    <table class="budgets">
      <thead>
        <tr>
          <th>budget</th>
          <th>figure</th>
          <th class="num">predicted max</th>
          <th class="num">limit</th>
          <th class="num">measured peak</th>
          <th>within</th>
        </tr>
      </thead>
      <tbody>
        ${m.budgets.map(budgetRow)}
      </tbody>
    </table>`;
}

function notes(m: ModelComparison): SafeHtml {
  const tol = m.tolerance;
  const sources = Object.entries(m.queues).map(([n, q]) => html`<li><strong>${n}</strong>: ${q.measured.source}</li> `);
  return html`<p class="note" id="model-tolerance">
      Tolerance: utilisation agrees within
      ${numSpan('tolerance', 'utilizationPoints', short(100 * tol.utilizationPoints, 1))} points; a wait agrees within a
      factor of ${numSpan('tolerance', 'waitRatio', short(tol.waitRatio))}, or when both are under
      ${numSpan('tolerance', 'waitFloorMs', short(tol.waitFloorMs))} ms; a queue the model calls unstable agrees when
      its measured utilisation is at least 90 %. Measured figures are the steady phase's.
    </p>
    <details>
      <summary>Where the measured figures come from</summary>
      <ul>
        ${sources}
      </ul>
    </details>`;
}

/** How many queues agree, differ, or were not measured: `3 agree, 1 differs, 1 not measured`. */
function verdictCounts(m: ModelComparison): string {
  const n = (v: QueueComparison['verdict']) => Object.values(m.queues).filter((q) => q.verdict === v).length;
  const parts = [`${n('agrees')} agree`, `${n('differs')} differ${n('differs') === 1 ? 's' : ''}`];
  if (n('not measured') > 0) parts.push(`${n('not measured')} not measured`);
  return parts.join(', ');
}

/**
 * Predicted vs measured (`result.model`): the topology and offered rates, the queue table, which queue
 * saturates first, the connection budgets and the tolerance; null when the result has no `model`.
 */
export function modelSection(ctx: ReportContext): ReportSection | null {
  const m = ctx.result.model;
  if (!m) return null;
  return {
    id: 'model',
    title: 'Predicted vs measured',
    body: html`${intro(m)}${saturatesFirst(m)}
      <p class="note">
        Queues: ${verdictCounts(m)}. Predicted: the planner's queue model (M/G/c per partition, Erlang C with the
        Allen-Cunneen correction) at the offered rates above; utilisation in % of the queue's servers, waits in ms.
      </p>
      ${queueTable(m)}${budgetTable(m)}${notes(m)}`,
  };
}
