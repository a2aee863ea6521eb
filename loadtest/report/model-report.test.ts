/**
 * "Predicted vs measured" in report.html, from a real run: the local stack of
 * samples/arena-local.yaml (PostgreSQL, PgBouncer, Redis, the reference API),
 * `arena loadtest run -f samples/arena-local.yaml --sample auto` at 60/s for
 * 8 s (it writes result.json with `model`, and report.html), then the page in
 * headless Chromium: every queue of result.model.queues has a row whose
 * numbers and verdict equal result.json's, the budgets table and the
 * saturates-first callout match, and the page has no console error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadTestResult } from '../engine/result-schema.js';
import { openReport, type OpenedReport } from '../../testing/browser.js';
import { runArenaAsync } from '../../testing/cli.js';
import { repoPath } from '../../testing/paths.js';
import { localStack } from '../../testing/local-stack.js';

const SAMPLE = repoPath('samples/arena-local.yaml');
const stack = localStack(SAMPLE, 'model-report');
const TMP = stack.tmp;
const STATE_DIR = stack.stateDir;

before(() => stack.up());
after(() => stack.down());

/** The element with data-scenario / data-metric; fails naming them when there is none. */
function cell(cells: OpenedReport['cells'], scenario: string, metric: string) {
  const c = cells.find((x) => x.scenario === scenario && x.metric === metric);
  assert.ok(c, `the page has ${scenario} / ${metric}`);
  return c;
}

/** A number cell equals `expected` at the precision it shows ("-" for null). */
function assertNumber(cells: OpenedReport['cells'], scenario: string, metric: string, expected: number | null) {
  const c = cell(cells, scenario, metric);
  if (expected === null) return assert.equal(c.text, '-', `${scenario} / ${metric} has no value`);
  const text = c.text.replace(/,/g, '');
  assert.match(text, /^-?\d+(\.\d+)?$/, `${scenario} / ${metric}: a plain number, got "${c.text}"`);
  const decimals = (text.split('.')[1] ?? '').length;
  assert.ok(
    Math.abs(Number(text) - expected) <= 0.5 * 10 ** -decimals + 1e-9,
    `${scenario} / ${metric}: the page shows ${c.text}, result.json has ${expected}`,
  );
}

test('report.html of a run with -f arena.yaml: predicted vs measured per queue, budgets and saturates-first equal result.json', async () => {
  const out = join(TMP, 'out');
  const run = await runArenaAsync(
    [
      'loadtest',
      'run',
      '-f',
      SAMPLE,
      '--state-dir',
      STATE_DIR,
      '--rate',
      '60',
      '--duration',
      '8s',
      '--ramp',
      '2s',
      '--sample',
      'auto',
      '--out',
      out,
      '-q',
    ],
    { timeoutMs: 60_000 },
  );
  assert.ok(run.code === 0 || run.code === 1, `exit ${run.code}: ${run.err}`);
  const r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  const m = r.model;
  assert.ok(m, 'result.json has model (the run had -f)');
  assert.deepEqual(
    Object.keys(m.queues).sort(),
    ['appDbPool', 'asyncConsumers', 'llmRateLimit', 'llmSlots', 'pgbouncerServerPool'],
    'the planner models five queues',
  );
  const opened = await openReport(join(out, 'report.html'), repoPath('out/test-artifacts/report-model.png'));
  assert.deepEqual(opened.consoleErrors, [], 'no console errors');
  assert.deepEqual(opened.blockedRequests, [], 'no network request of any kind');
  const { cells } = opened;
  assert.match(opened.text, /Predicted vs measured/);
  for (const [name, q] of Object.entries(m.queues)) {
    assertNumber(cells, name, 'servers', q.servers);
    assertNumber(cells, name, 'arrivalRatePerSecond', q.arrivalRatePerSecond);
    assertNumber(cells, name, 'serviceTimeMs', q.serviceTimeMs);
    for (const side of ['predicted', 'measured'] as const) {
      const u = q[side].utilization;
      assertNumber(cells, name, `${side}.utilization`, u === null ? null : 100 * u);
    }
    for (const w of ['meanWaitMs', 'p99WaitMs'] as const) {
      if (q.predicted.stable) assertNumber(cells, name, `predicted.${w}`, q.predicted[w]);
      else assert.equal(cell(cells, name, `predicted.${w}`).text, 'unstable', `${name}: an unstable queue has no wait`);
      assertNumber(cells, name, `measured.${w}`, q.measured[w]);
    }
    if (q.measured.maxWaitMs !== undefined && q.measured.maxWaitMs !== null)
      assertNumber(cells, name, 'measured.maxWaitMs', q.measured.maxWaitMs);
    assert.equal(cell(cells, name, 'verdict').text, q.verdict, `${name}: the verdict`);
    for (const d of q.differences) assert.ok(opened.text.includes(d), `${name}: the page says "${d}"`);
  }
  assert.ok(m.queues['pgbouncerServerPool']!.measured.maxWaitMs !== undefined, 'PgBouncer has a maxwait');
  assert.equal(m.budgets.length, 3, 'three connection budgets');
  for (const b of m.budgets) {
    assertNumber(cells, b.name, 'budget.predicted', b.predicted);
    assertNumber(cells, b.name, 'budget.limit', b.limit);
    assertNumber(cells, b.name, 'budget.measuredPeak', b.measuredPeak);
    const within = b.within === null ? 'not measured' : b.within ? 'yes' : 'no';
    assert.equal(cell(cells, b.name, 'budget.within').text, within, `${b.name}: within`);
  }
  const { predicted, measured } = m.saturatesFirst;
  assert.ok(
    opened.text.includes(
      `The model predicts ${predicted ?? 'no queue'} saturates first; measured: ${measured ?? 'not measured'}.`,
    ),
    'the saturates-first callout',
  );
  const t = m.topology;
  assertNumber(cells, 'topology', 'workers', t.workers);
  assertNumber(cells, 'topology', 'pgbouncers', t.pgbouncers);
  assertNumber(cells, 'topology', 'pgbouncerDefaultPoolSize', t.pgbouncerDefaultPoolSize);
  assertNumber(cells, 'topology', 'consumers', t.consumers);
  for (const [kind, rate] of Object.entries(m.offeredRates)) assertNumber(cells, kind, 'offered_rate', rate);
  assertNumber(cells, 'tolerance', 'utilizationPoints', 100 * m.tolerance.utilizationPoints);
  assertNumber(cells, 'tolerance', 'waitRatio', m.tolerance.waitRatio);
  assertNumber(cells, 'tolerance', 'waitFloorMs', m.tolerance.waitFloorMs);
});
