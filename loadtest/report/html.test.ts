/**
 * The HTML report as a user gets it: a real short run (`arena loadtest run`
 * against a test server: a ramp, a fixed-latency route, a failing route and
 * an SSE stream), then `arena loadtest report DIR`, then the page opened in
 * Debian's headless Chromium with the network cut off: no console errors, no
 * fetch, every chart drawn, a screenshot (out/test-artifacts/report.png), and
 * the numbers read back from the table equal to result.json's. Also: a run
 * with pool saturation (a /health the sampler reads), user strings shown as
 * text and not markup, and the CLI's one-line errors.
 *
 * Chromium is required: without it these tests fail naming
 * `scripts/install-debian-deps.sh chromium`.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LoadTestResult, ScenarioResult } from '../engine/result-schema.js';
import { renderHtmlReport } from './html.js';
import { openReport, type OpenedReport } from '../../testing/browser.js';
import { assertRefused, runArena, runArenaAsync } from '../../testing/cli.js';
import { shortLoadTest, type ShortRunOutcome } from '../../testing/loadtest-run.js';
import { repoPath } from '../../testing/paths.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';

const ARTIFACTS = repoPath('out/test-artifacts');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const REQUESTS = `requests:
  - name: fixed
    path: /fixed
    weight: 8
  - name: err
    path: /status/500
    weight: 1
  - name: chat
    kind: sse
    method: POST
    path: /sse
    weight: 2
    sse: {tokenEvent: message, doneEvent: done}
`;

let server: TestServer;
let base: ShortRunOutcome;
const cleanup: string[] = [];

before(async () => {
  server = await startTestServer({ latencyMs: 5 });
  base = await shortLoadTest({
    target: server.url,
    requests: REQUESTS,
    rate: 40,
    ramp: '1s',
    duration: '3s',
    thresholds: { 'http_req_duration{scenario:fixed}': ['p(99)<2000'], http_req_failed: ['rate<0.01'] },
  });
  cleanup.push(dirname(base.dir));
  assert.ok(base.result, `the run wrote result.json (exit ${base.run.code}, stderr: ${base.run.err})`);
});
after(async () => {
  await server.close();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-html-report-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A cell's number equals `expected` at the precision the cell shows: parse the text (thousands separators
 * dropped), count its decimals d, and require |parsed - expected| <= half a unit of the last digit shown.
 */
function assertNumber(cells: OpenedReport['cells'], scenario: string, metric: string, expected: number | undefined) {
  const c = cells.find((x) => x.scenario === scenario && x.metric === metric);
  assert.ok(c, `a cell ${scenario} / ${metric}`);
  if (expected === undefined) return assert.equal(c.text, '-', `${scenario} / ${metric} has no value`);
  const text = c.text.replace(/,/g, '');
  assert.match(text, /^-?\d+(\.\d+)?$/, `${scenario} / ${metric}: a plain number, got "${c.text}"`);
  const decimals = (text.split('.')[1] ?? '').length;
  const tolerance = 0.5 * 10 ** -decimals + 1e-9;
  assert.ok(
    Math.abs(Number(text) - expected) <= tolerance,
    `${scenario} / ${metric}: the page shows ${c.text}, result.json has ${expected}`,
  );
}

/** What the summary row of a scenario must show, straight from result.json. */
function expectedRow(r: LoadTestResult, name: string, s: ScenarioResult): Record<string, number | undefined> {
  const th = r.thresholds.filter((t) =>
    name === 'all' ? !t.selector.includes('scenario:') : t.selector.includes(`scenario:${name}`),
  );
  const d = s.metrics['http_req_duration'];
  return {
    http_reqs: s.counters['http_reqs'],
    rps: s.rates.http_reqs,
    'http_req_duration.p50': d?.p50,
    'http_req_duration.p95': d?.p95,
    'http_req_duration.p99': d?.p99,
    'http_req_duration.max': d?.max,
    'ttft.p50': s.metrics['ttft']?.p50,
    'ttft.p99': s.metrics['ttft']?.p99,
    'itl.p50': s.metrics['itl']?.p50,
    'itl.p99': s.metrics['itl']?.p99,
    'e2e_latency.p99': s.metrics['e2e_latency']?.p99,
    error_pct: 100 * s.http_req_failed,
    dropped_iterations: s.counters['dropped_iterations'],
    thresholds_passed: th.filter((t) => t.status === 'pass').length,
    thresholds_failed: th.filter((t) => t.status !== 'pass').length,
  };
}

function assertPng(file: string) {
  assert.ok(existsSync(file), `screenshot ${file} exists`);
  const png = readFileSync(file);
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, 'the screenshot is a PNG');
  assert.ok(png.length > 10_000, `the screenshot has content (${png.length} bytes)`);
}

function assertChartsDrawn(opened: OpenedReport, ids: string[]) {
  assert.deepEqual(opened.consoleErrors, [], 'no console errors');
  assert.deepEqual(opened.blockedRequests, [], 'no network request of any kind');
  assert.deepEqual(opened.canvases.map((c) => c.id).sort(), [...ids].sort(), 'one canvas per chart');
  for (const c of opened.canvases) {
    assert.ok(c.width >= 320 && c.height >= 200, `${c.id}: a readable size (${c.width}x${c.height})`);
    assert.ok(c.drawnPixels > 1000, `${c.id}: drawn (${c.drawnPixels} pixels differ from the background)`);
    assert.ok(c.inkPixels > 300, `${c.id}: lines drawn in colour (${c.inkPixels} pixels)`);
  }
}

test('arena loadtest report DIR writes DIR/report.html and DIR/junit.xml and prints their paths; result.json works too', async () => {
  rmSync(join(base.dir, 'report.html'), { force: true });
  rmSync(join(base.dir, 'junit.xml'), { force: true });
  const r = await runArenaAsync(['loadtest', 'report', base.dir], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.err);
  const file = join(base.dir, 'report.html');
  const junit = join(base.dir, 'junit.xml');
  assert.equal(r.out, `${file}\n${junit}\n`);
  assert.ok(statSync(junit).size > 200, 'junit.xml written');
  assert.equal(r.err, '');
  assert.ok(statSync(file).size > 50_000, 'the page inlines uPlot');
  assert.deepEqual(
    readdirSync(base.dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temporary file left (atomic write)',
  );
  const again = await runArenaAsync(['loadtest', 'report', join(base.dir, 'result.json')], { timeoutMs: 60_000 });
  assert.equal(again.code, 0, again.err);
  assert.equal(again.out, `${file}\n${junit}\n`);
});

test('arena loadtest report: a missing path or a file that is not a result is one line naming it, exit 2', (t) => {
  const d = tmp(t);
  assertRefused(runArena(['loadtest', 'report', join(d, 'nope')]), /nope: no such file \(give the folder of a run/);
  assertRefused(runArena(['loadtest', 'report', d]), /result\.json: not a readable result\.json/);
  writeFileSync(join(d, 'junk.json'), '{"kind": "LoadTestResult", "schemaVersion": 1}');
  assertRefused(
    runArena(['loadtest', 'report', join(d, 'junk.json')]),
    /junk\.json: not a valid result\.json \(apiVersion: required field is missing\)/,
  );
  writeFileSync(join(d, 'other.json'), '{"kind": "ArenaDeployment"}');
  assertRefused(runArena(['loadtest', 'report', join(d, 'other.json')]), /other\.json: not an arena LoadTestResult/);
  assert.equal(existsSync(join(d, 'report.html')), false, 'nothing written');
});

test('report.html in headless Chromium: offline, every chart drawn, the numbers of result.json', async () => {
  const r = base.result!;
  const file = join(base.dir, 'report.html');
  if (!existsSync(file)) writeFileSync(file, renderHtmlReport(r));
  const page = readFileSync(file, 'utf8');
  assert.doesNotMatch(
    page,
    /<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=/i,
    'nothing loaded from elsewhere',
  );
  assert.match(page, /<script type="application\/json" id="arena-data">/);
  const png = join(ARTIFACTS, 'report.png');
  const opened = await openReport(file, png);
  const names = Object.keys(r.scenarios);
  assertChartsDrawn(opened, [
    ...names.map((n) => `latency-${n}`),
    'stream-chat',
    'goodput-fixed',
    'rps',
    'in-flight',
    'errors',
    'engine-lag',
  ]);
  assertPng(png);
  for (const [name, s] of [...Object.entries(r.scenarios), ['all', r.all] as const])
    for (const [metric, v] of Object.entries(expectedRow(r, name, s))) assertNumber(opened.cells, name, metric, v);
  const e = r.engine;
  assertNumber(opened.cells, 'engine', 'cpu_seconds', e.cpuSeconds);
  assertNumber(opened.cells, 'engine', 'peak_rss_mib', e.peakRssBytes / 2 ** 20);
  assertNumber(opened.cells, 'engine', 'loop_lag_p99', e.loopLagP99Ms);
  assertNumber(opened.cells, 'engine', 'schedule_lag_p99', e.scheduleLagP99Ms);
  assertNumber(opened.cells, 'engine', 'peak_in_flight', e.peakInFlight);
  assert.match(opened.text, /thresholds failed: 1 of 2/, 'the failed threshold shows in the header');
  assert.match(opened.text, /http_500 llm_slots_busy/, 'the failure reason shows');
  assert.match(opened.text, /ramp-up/, 'the phase legend shows');
  // the threshold p(99)<2000 on fixed's http_req_duration is also its objective (goodput)
  assert.equal(r.scenarios['fixed']!.goodput?.objectives['http_req_duration'], 2000);
  assert.match(opened.text, /fixed\s+http_req_duration ≤ 2 s/, 'the objective from the threshold shows');
  assert.equal(renderHtmlReport(r), renderHtmlReport(structuredClone(r)), 'the same result renders the same page');
});

test('report.html goodput: per scenario with objectives, the share and rate of result.json and a chart of good vs all iterations', async () => {
  const run = await shortLoadTest({
    target: server.url,
    requests: `requests:
  - name: quick
    path: /hold?ms=5
    objectives: {http_req_duration: 30ms}
  - name: slow
    path: /hold?ms=40
    objectives: {http_req_duration: 20ms}
`,
    rate: 40,
    ramp: '1s',
    duration: '3s',
  });
  cleanup.push(dirname(run.dir));
  assert.equal(run.run.code, 0, run.run.err);
  const r = run.result!;
  const quick = r.scenarios['quick']!.goodput;
  const slow = r.scenarios['slow']!.goodput;
  assert.ok(quick && slow && r.all.goodput, 'result.json has goodput per scenario and for all');
  assert.ok(quick.share >= 0.9, `5 ms requests meet a 30 ms objective (share ${quick.share})`);
  assert.equal(slow.share, 0, '40 ms requests never meet a 20 ms objective');
  const opened = await openReport(join(run.dir, 'report.html'), join(ARTIFACTS, 'report-goodput.png'));
  assertChartsDrawn(opened, [
    'latency-quick',
    'latency-slow',
    'goodput-quick',
    'goodput-slow',
    'rps',
    'in-flight',
    'errors',
    'engine-lag',
  ]);
  for (const [name, s] of [...Object.entries(r.scenarios), ['all', r.all] as const]) {
    const g = s.goodput!;
    assertNumber(opened.cells, name, 'goodput.good', g.good);
    assertNumber(opened.cells, name, 'goodput.pct', 100 * g.share);
    assertNumber(opened.cells, name, 'goodput.rate', g.ratePerSecond);
  }
  assertNumber(opened.cells, 'quick', 'goodput.iterations', r.scenarios['quick']!.counters['iterations']);
  assertNumber(opened.cells, 'slow', 'goodput.pct', 0);
  assert.match(opened.text, /quick\s+http_req_duration ≤ 30 ms/, "quick's objective as text");
  assert.match(opened.text, /slow\s+http_req_duration ≤ 20 ms/, "slow's objective as text");
  // the chart draws result.json's per-second counters: good iterations against all iterations
  const page = readFileSync(join(run.dir, 'report.html'), 'utf8');
  const data = JSON.parse(/<script type="application\/json" id="arena-data">([^<]*)<\/script>/.exec(page)![1]!) as {
    charts: { id: string; series: { label: string; values: (number | null)[] }[] }[];
  };
  const chart = data.charts.find((c) => c.id === 'goodput-quick')!;
  const [all, ok] = chart.series;
  assert.deepEqual(
    ok!.values,
    r.series.map((p) => p.scenarios['quick']?.counters['good_iterations'] ?? 0),
  );
  assert.deepEqual(
    all!.values,
    r.series.map((p) => p.scenarios['quick']?.counters['iterations'] ?? 0),
  );
});

/** A /health in the shape the sampler reads (loadtest/sampler/health.ts), reporting the test server's real in-flight count. */
async function startHealth(target: TestServer): Promise<{ url: string; server: Server }> {
  const s = createServer((_req, res) => {
    const busy = target.inFlight;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        pid: process.pid,
        max_concurrent: 4,
        available_slots: Math.max(0, 4 - busy),
        processing_count: busy,
        waiting_count: 0,
        active_sessions: busy,
        in_flight: busy,
        db_pool: { max: 10, total: Math.min(10, busy + 1), idle: 1, waiting: 0 },
      }),
    );
  });
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/health`, server: s };
}

test('report.html with pool saturation: one chart per pool with its limit, the pool that saturates first named', async (t) => {
  const slow = await startTestServer({ latencyMs: 60 });
  const health = await startHealth(slow);
  t.after(async () => {
    await slow.close();
    health.server.closeAllConnections();
    await new Promise((r) => health.server.close(r));
  });
  const run = await shortLoadTest({
    target: slow.url,
    requests: 'requests:\n  - name: fixed\n    path: /fixed\n',
    rate: 40,
    ramp: '1s',
    duration: '3s',
    extra: ['--sample', `health=${health.url}`],
  });
  cleanup.push(dirname(run.dir));
  assert.equal(run.run.code, 0, run.run.err);
  const sat = run.result!.saturation;
  assert.ok(sat, 'the result has saturation');
  assert.ok(sat.pools['llm_slots'] && sat.pools['app_db_pool'], 'the /health pools were read');
  const read = Object.keys(sat.pools).filter((p) => sat.series[sat.pools[p]!.figure]?.some(([, v]) => v !== null));
  assert.ok(sat.saturatesFirst, 'a pool saturates first');
  const cli = await runArenaAsync(['loadtest', 'report', run.dir], { timeoutMs: 60_000 });
  assert.equal(cli.code, 0, cli.err);
  const opened = await openReport(join(run.dir, 'report.html'), join(ARTIFACTS, 'report-saturation.png'));
  assertChartsDrawn(opened, [
    'latency-fixed',
    'rps',
    'in-flight',
    'errors',
    ...read.map((p) => `pool-${p}`),
    'engine-lag',
  ]);
  assert.match(opened.text, new RegExp(`Saturates first: ${sat.saturatesFirst.pool} \\(${sat.saturatesFirst.figure}`));
  assert.match(opened.text, /limit \(sum of max_concurrent \(LLM slots\)\): 4/, 'the llm_slots chart names its limit');
  assert.match(opened.text, /limit \(sum of db_pool\.max[^:]*\): 10/, 'the app_db_pool chart names its limit');
});

test('report.html: failure reasons and the target are shown as text, never run as markup', async (t) => {
  const d = tmp(t);
  const evil = '<img src=x onerror=alert(1)>';
  const r = structuredClone(base.result!);
  r.settings.target = 'http://127.0.0.1:1/?q=</script><script>alert(2)</script><!--';
  r.all.failures[evil] = 3;
  r.scenarios['err']!.failures[evil] = 3;
  r.series[r.series.length - 1]!.all.failures[evil] = 3;
  const file = join(d, 'report.html');
  writeFileSync(file, renderHtmlReport(r));
  const page = readFileSync(file, 'utf8');
  assert.ok(!page.includes('<img src=x'), 'the reason is not an element');
  assert.ok(!page.includes('<script>alert(2)'), 'the target is not a script');
  assert.ok(page.includes('&lt;img src=x onerror=alert(1)&gt;'), 'the reason is escaped text');
  const opened = await openReport(file, join(d, 'page.png'));
  assertChartsDrawn(opened, [
    ...Object.keys(r.scenarios).map((n) => `latency-${n}`),
    'stream-chat',
    'goodput-fixed',
    'rps',
    'in-flight',
    'errors',
    'engine-lag',
  ]);
  assert.ok(opened.text.includes(evil), 'the reason reads as the text it is');
  assert.ok(opened.text.includes('?q=</script><script>alert(2)</script><!--'), 'the target reads as the text it is');
});

test('openReport without Chromium fails naming the install command (the browser tests never skip)', async (t) => {
  const saved = process.env['ARENA_CHROMIUM'];
  process.env['ARENA_CHROMIUM'] = '/nonexistent/chromium';
  t.after(() => {
    if (saved === undefined) delete process.env['ARENA_CHROMIUM'];
    else process.env['ARENA_CHROMIUM'] = saved;
  });
  await assert.rejects(
    openReport(join(base.dir, 'report.html'), join(tmp(t), 'x.png')),
    /Chromium not found \(\/nonexistent\/chromium\); install it with scripts\/install-debian-deps\.sh chromium/,
  );
});
