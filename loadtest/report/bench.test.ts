/**
 * `arena bench` as a user runs it, end to end: the local stack of
 * samples/arena-local.yaml (target 200 in flight, 8 LLM slots, ~100 ms LLM
 * calls) at 20 and 60 in flight plus one level beyond the target (1.5 x 200
 * = 300), 3 s ramp + 6 s steady each. Then: exit 0, bench.json valid against
 * BenchResultSchema, the levels and their folders, each level's P99s equal
 * to its own result.json, the model's verdict at the beyond level against
 * what the sampler measured, the stack gone afterwards, and bench.html in
 * headless Chromium with the network cut off (no console error, no request,
 * both charts drawn, every table number equal to bench.json; screenshot in
 * out/test-artifacts/bench.png). Also the one-line refusals of bad input.
 *
 * Needs the local stack's tools (PostgreSQL, PgBouncer, Redis:
 * scripts/install-debian-deps.sh) and Chromium; about 60 s.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { LoadTestResult } from '../engine/result-schema.js';
import { BenchResultSchema, type BenchLevel, type BenchResult } from './bench.js';
import type { XChartSeries, XChartSpec } from './html-client.js';
import { openReport, type OpenedReport } from '../../testing/browser.js';
import { assertRefused, runArena, runArenaAsync, type CliRun } from '../../testing/cli.js';
import { repoPath } from '../../testing/paths.js';

const SAMPLE = 'samples/arena-local.yaml';
const PNG = repoPath('out/test-artifacts/bench.png');

let dir: string;
let run: CliRun;
let bench: BenchResult;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'arena-bench-test-'));
  run = await runArenaAsync(
    [
      'bench',
      '-f',
      repoPath(SAMPLE),
      '--levels',
      '20,60',
      '--beyond',
      '1.5',
      '--duration',
      '6s',
      '--ramp',
      '3s',
      '--out',
      join(dir, 'out'),
    ],
    { timeoutMs: 240_000 },
  );
  assert.equal(run.code, 0, `arena bench exit 0 (stderr: ${run.err.slice(-3000)})`);
  bench = JSON.parse(readFileSync(join(dir, 'out', 'bench.json'), 'utf8')) as BenchResult;
});
after(() => rmSync(dir, { recursive: true, force: true }));

const levelResult = (l: BenchLevel) =>
  JSON.parse(readFileSync(join(dir, 'out', l.dir, 'result.json'), 'utf8')) as LoadTestResult;

/** The process is gone (a zombie waiting for its parent counts as gone: it holds no port and runs nothing). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('arena bench: exit 0, bench.json valid, three levels with their folders and result.json P99s', () => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(BenchResultSchema);
  assert.ok(validate(bench), `bench.json validates: ${JSON.stringify(validate.errors)}`);
  assert.equal(bench.kind, 'BenchResult');
  assert.equal(bench.targetConcurrency, 200);
  assert.deepEqual(
    bench.levels.map((l) => [l.concurrency, l.beyond]),
    [
      [20, false],
      [60, false],
      [300, true],
    ],
  );
  assert.deepEqual(bench.settings.levels, [20, 60, 300]);
  assert.deepEqual(bench.settings.apiEnv, ['LLM_TOKENS_PER_SECOND=0.5'], 'the default API env of a bench');
  for (const f of ['bench.txt', 'bench.html']) assert.ok(statSync(join(dir, 'out', f)).size > 500, `${f} written`);
  for (const l of bench.levels) {
    assert.equal(l.dir, `level-${l.concurrency}`);
    for (const f of ['result.json', 'report.html', 'junit.xml'])
      assert.ok(existsSync(join(dir, 'out', l.dir, f)), `${l.dir}/${f}`);
    const r = levelResult(l);
    assert.deepEqual(Object.keys(l.kinds).sort(), Object.keys(r.scenarios).sort(), `${l.dir}: the request kinds`);
    for (const [k, s] of Object.entries(r.scenarios)) {
      assert.ok(l.kinds[k]!.reqs > 0, `${l.dir} ${k}: requests ran`);
      assert.equal(l.kinds[k]!.p99, s.metrics['http_req_duration']?.p99 ?? null, `${l.dir} ${k}: P99 = result.json's`);
    }
  }
  assert.match(run.out, /arena bench: arena-local/, 'the tables on stdout');
});

/** The queues of arena-local that wait on the LLM: the API's LLM slots and the async consumers (same calls). */
const LLM_QUEUES = ['llmSlots', 'asyncConsumers'];

test("arena bench: beyond the target the model's first queue is unstable and the LLM slots are measured full", () => {
  const l = bench.levels.find((x) => x.beyond)!;
  const first = l.saturatesFirst.predictedQueue;
  assert.ok(first && LLM_QUEUES.includes(first), `the model says the LLM side gives way first at 300 (${first})`);
  const q = l.queues[first]!;
  assert.equal(q.predictedStable, false, `${first} predicted unstable (utilisation ${q.predictedUtilization})`);
  assert.ok(q.predictedUtilization! > 1);
  assert.notEqual(l.saturatesFirst.measuredPool, null, 'the sampler saw a pool saturate');
  assert.equal(l.pools['llm_slots']?.limit, 8, "arena-local's 2 workers x 4 LLM slots");
  assert.equal(l.pools['llm_slots']?.peakUtilization, 1, 'every LLM slot was busy');
  // The model: the wait for a slot grows without bound; measured: requests waited up to the API's 2 s slot timeout.
  const wait = l.queues['llmSlots']?.measuredP99WaitMs ?? 0;
  assert.ok(wait >= 1000, `requests waited for an LLM slot: P99 ${wait} ms`);
  assert.ok(l.dropped > 0 || l.errorRate > 0.05, 'overload shows as errors or dropped arrivals');
});

test('arena bench: the stack is down afterwards (its processes gone, its API port closed)', async () => {
  assert.match(run.err, /\[bench\] arena stack down/);
  const pids = [...run.err.matchAll(/\[stack\] \S+: stopping pid (\d+)/g)].map((m) => Number(m[1]));
  assert.ok(pids.length >= 4, `the stack's servers were stopped: ${pids.join(', ')}`);
  for (const pid of pids) assert.ok(gone(pid), `pid ${pid} no longer runs`);
  const api = levelResult(bench.levels[0]!).settings.target;
  for (const l of bench.levels) assert.equal(levelResult(l).settings.target, api, 'one stack for every level');
  await assert.rejects(fetch(api, { signal: AbortSignal.timeout(3000) }), `${api} no longer answers`);
});

/**
 * A cell's number equals `expected` at the precision the cell shows (thousands separators dropped; at most half a
 * unit of the last digit shown apart); "-" when there is no value.
 */
function assertNumber(cells: OpenedReport['cells'], scenario: string, metric: string, expected: number | null) {
  const c = cells.find((x) => x.scenario === scenario && x.metric === metric);
  assert.ok(c, `a cell ${scenario} / ${metric}`);
  if (expected === null) return assert.equal(c.text, '-', `${scenario} / ${metric} has no value`);
  const text = c.text.replace(/,/g, '');
  assert.match(text, /^-?\d+(\.\d+)?$/, `${scenario} / ${metric}: a plain number, got "${c.text}"`);
  const tolerance = 0.5 * 10 ** -(text.split('.')[1] ?? '').length + 1e-9;
  assert.ok(
    Math.abs(Number(text) - expected) <= tolerance,
    `${scenario} / ${metric}: the page shows ${c.text}, bench.json has ${expected}`,
  );
}

/** What a level's cells must show, from bench.json. */
function expectedCells(l: BenchLevel): Record<string, number | null> {
  const pct = (x: number | null) => (x === null ? null : 100 * x);
  const out: Record<string, number | null> = {
    concurrency: l.concurrency,
    rate: l.ratePerSecond,
    in_flight_mean: l.steadyInFlightMean,
    peak_in_flight: l.peakInFlight,
    error_pct: 100 * l.errorRate,
    dropped: l.dropped,
    'engine.cpu_s_per_1k': l.engine.cpuSecondsPer1kInFlight,
    'engine.mib_per_1k': l.engine.rssMiBPer1kInFlight,
  };
  for (const [k, x] of Object.entries(l.kinds)) {
    Object.assign(out, { [`${k}.p50`]: x.p50, [`${k}.p95`]: x.p95, [`${k}.p99`]: x.p99 });
    if (x.ttftP99 !== null) out[`${k}.ttft_p99`] = x.ttftP99;
  }
  for (const [q, x] of Object.entries(l.queues))
    Object.assign(out, {
      [`${q}.predicted_util_pct`]: pct(x.predictedUtilization),
      [`${q}.measured_util_pct`]: pct(x.measuredUtilization),
      [`${q}.predicted_p99_wait`]: x.predictedP99WaitMs,
      [`${q}.measured_p99_wait`]: x.measuredP99WaitMs,
    });
  return out;
}

/** The charts the page embeds (`#arena-data`). */
function embeddedCharts(page: string): XChartSpec[] {
  const m = /<script type="application\/json" id="arena-data">([\s\S]*?)<\/script>/.exec(page);
  assert.ok(m, 'the page embeds its data');
  return (JSON.parse(m[1]!) as { charts: XChartSpec[] }).charts;
}

function assertChartData(page: string) {
  const charts = embeddedCharts(page);
  assert.deepEqual(
    charts.map((c) => c.id),
    ['utilization', 'p99'],
  );
  const util: XChartSpec = charts[0]!;
  const p99: XChartSpec = charts[1]!;
  assert.equal(util.limit, 100, '100 % drawn as a limit');
  assert.equal(util.xMarker?.value, 200, 'the target marked');
  for (const [q, line] of Object.entries(bench.curve.utilization)) {
    const s: XChartSeries | undefined = util.series.find((x) => x.label === `${q} measured`);
    const p: XChartSeries | undefined = util.series.find((x) => x.label === `${q} predicted`);
    assert.ok(s?.pointsOnly && p, `${q}: a predicted line and measured points`);
    assert.equal(p.color, s.color, `${q}: the same colour for the line and the points`);
    const i = util.x.indexOf(bench.curve.concurrency.at(-1)!);
    assert.equal(p.values[i], Math.round(line.at(-1)! * 10000) / 100, `${q}: the plan's line in %`);
    for (const l of bench.levels) {
      const m: number | null | undefined = l.queues[q]?.measuredUtilization;
      const v: number | null | undefined = s.values[util.x.indexOf(l.concurrency)];
      assert.equal(v, m === undefined || m === null ? null : Math.round(m * 10000) / 100, `${q} at ${l.concurrency}`);
    }
  }
  assert.deepEqual(
    p99.x,
    bench.levels.map((l) => l.concurrency),
  );
  for (const k of Object.keys(bench.levels[0]!.kinds))
    assert.deepEqual(
      p99.series.find((s) => s.label === `${k} P99`)?.values,
      bench.levels.map((l) => l.kinds[k]?.p99 ?? null),
      `${k}: P99 per level`,
    );
}

test('bench.html in headless Chromium: offline, both charts drawn, the numbers of bench.json', async () => {
  const file = join(dir, 'out', 'bench.html');
  const page = readFileSync(file, 'utf8');
  assert.doesNotMatch(
    page,
    /<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=/i,
    'nothing loaded from elsewhere',
  );
  for (const l of bench.levels) {
    assert.ok(page.includes(`href="${l.dir}/report.html"`), `a link to ${l.dir}/report.html`);
    assert.equal(
      new RegExp(
        `<tr class="beyond">\\s*<th scope="row">\\s*<span class="num" data-scenario="level-${l.concurrency}"`,
      ).test(page),
      l.beyond,
      `level ${l.concurrency} marked beyond: ${l.beyond}`,
    );
  }
  assertChartData(page);
  const opened = await openReport(file, PNG);
  assert.deepEqual(opened.consoleErrors, [], 'no console errors');
  assert.deepEqual(opened.blockedRequests, [], 'no network request of any kind');
  assert.deepEqual(opened.canvases.map((c) => c.id).sort(), ['p99', 'utilization']);
  for (const c of opened.canvases) {
    assert.ok(c.width >= 320 && c.height >= 200, `${c.id}: a readable size (${c.width}x${c.height})`);
    assert.ok(c.inkPixels > 300, `${c.id}: lines and points drawn in colour (${c.inkPixels} pixels)`);
  }
  assert.ok(statSync(PNG).size > 10_000, 'the screenshot has content');
  assertNumber(opened.cells, 'bench', 'target_concurrency', 200);
  for (const l of bench.levels) {
    for (const [metric, v] of Object.entries(expectedCells(l)))
      assertNumber(opened.cells, `level-${l.concurrency}`, metric, v);
    const text = (m: string) =>
      opened.cells.find((c) => c.scenario === `level-${l.concurrency}` && c.metric === m)?.text;
    assert.equal(text('saturates_first.measured_pool'), l.saturatesFirst.measuredPool ?? 'none');
    assert.equal(text('saturates_first.predicted_queue'), l.saturatesFirst.predictedQueue ?? '-');
    for (const [q, x] of Object.entries(l.queues)) assert.equal(text(`${q}.verdict`), x.verdict);
  }
  assert.match(opened.text, /Utilisation vs concurrency/);
  assert.match(opened.text, /P99 vs concurrency/);
});

test('arena bench: bad input is one line naming the flag or file, exit 2', () => {
  assertRefused(runArena(['bench', '-f', repoPath(SAMPLE), '--levels', '0']), /--levels.*in-flight counts >= 1/);
  assertRefused(runArena(['bench', '-f', repoPath(SAMPLE), '--beyond', '0.5']), /--beyond.*factor > 1/);
  assertRefused(runArena(['bench', '-f', join(tmpdir(), 'arena-no-such-file.yaml')]), /arena-no-such-file\.yaml/);
});
