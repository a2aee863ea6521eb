/**
 * The load engine against small real HTTP servers (testing/servers.ts) with
 * known latencies: what a user of the engine would notice if it were wrong.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode, mergeEncoded, newHistogram, percentiles, recordMs } from './histogram.js';
import type { RunConfig } from './config.js';
import { runEngine, type EngineOutcome } from './runner.js';
import { validateScenario } from './scenario.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';

let server: TestServer;

before(async () => {
  server = await startTestServer({ latencyMs: 20, sseFirstMs: 100, sseIntervalMs: 20, sseTokens: 10, taskMs: 200 });
});
after(() => server.close());

function config(requests: unknown[], over: Partial<RunConfig>): RunConfig {
  return {
    target: server.url,
    scenario: validateScenario({ requests }, 'test'),
    model: { type: 'open', rate: 50, process: 'uniform', maxVUs: 1000 },
    phases: { rampUpMs: 0, steadyMs: 2000, rampDownMs: 0 },
    gracefulStopMs: 10_000,
    seed: 7,
    workers: 1,
    keepSecondHistograms: false,
    ...over,
  };
}

const pc = (out: EngineOutcome, scenario: string, trend: string) => {
  const enc = (out.steady[scenario]!.trends as Record<string, string>)[trend];
  assert.ok(enc, `${scenario} has ${trend}`);
  return percentiles(mergeEncoded([enc]));
};

test('open model: the arrival rate holds when the server slows down, and a stall shows in P99 (latency from the scheduled start)', async () => {
  server.latencyMs = 20;
  const slow = setTimeout(() => {
    server.latencyMs = 400; // the server slows down 10x at 1 s ...
    server.stallUntil = Date.now() + 1000; // ... and stalls everything for 1 s
  }, 1000);
  const out = await runEngine(
    config([{ name: 'fixed', path: '/fixed' }], {
      model: { type: 'open', rate: 100, process: 'uniform', maxVUs: 1000 },
      phases: { rampUpMs: 0, steadyMs: 3000, rampDownMs: 0 },
    }),
  );
  clearTimeout(slow);
  server.latencyMs = 20;
  server.stallUntil = 0;
  const c = out.steady['fixed']!.counters;
  // uniform arrivals at 100/s for 3 s: exactly 300 iterations, none dropped, none delayed by the slow responses
  assert.equal(c.iterations + c.dropped_iterations + c.interrupted_iterations, 300);
  assert.equal(c.dropped_iterations, 0);
  const started = out.seconds.filter((s) => s.phase === 'steady').map((s) => s.started);
  for (const n of started) assert.ok(n >= 95 && n <= 105, `started per second ${started.join(', ')}`);
  const d = pc(out, 'fixed', 'http_req_duration');
  // requests that arrived during the stall waited for it: the tail shows the stall (a closed-loop client would show ~1 slow request)
  assert.ok(d.p99 >= 900, `P99 ${d.p99} ms shows the 1 s stall`);
  assert.ok(d.p50 >= 20 && d.p50 < 500, `P50 ${d.p50}`);
  const lag = pc(out, 'fixed', 'schedule_lag');
  assert.ok(lag.p99 < 50, `the engine itself started arrivals on time (schedule lag P99 ${lag.p99} ms)`);
});

test('closed model holds exactly N in flight', async () => {
  server.latencyMs = 50;
  server.maxInFlight = 0;
  const out = await runEngine(
    config([{ name: 'fixed', path: '/fixed' }], { model: { type: 'closed', vus: 20, thinkTimeMs: 0 }, workers: 2 }),
  );
  server.latencyMs = 20;
  assert.equal(server.maxInFlight, 20, 'the server saw exactly 20 at once');
  assert.equal(Math.max(...out.seconds.map((s) => s.maxInFlight)), 20);
  const c = out.steady['fixed']!.counters;
  // 20 VUs x 2 s / ~50 ms per request
  assert.ok(c.iterations > 500 && c.iterations <= 800, `iterations ${c.iterations}`);
  assert.equal(c.http_req_failed, 0);
});

test('dropped_iterations counts what the maxVUs cap refused, and the cap holds', async () => {
  server.latencyMs = 200;
  server.maxInFlight = 0;
  const out = await runEngine(
    config([{ name: 'fixed', path: '/fixed' }], { model: { type: 'open', rate: 200, process: 'uniform', maxVUs: 5 } }),
  );
  server.latencyMs = 20;
  const c = out.steady['fixed']!.counters;
  assert.ok(server.maxInFlight <= 5, `server saw ${server.maxInFlight} at once`);
  assert.equal(
    c.iterations + c.dropped_iterations + c.interrupted_iterations,
    400,
    'every arrival is either run or dropped',
  );
  // 5 VUs x 2 s / 200 ms = ~50 run; the rest dropped
  assert.ok(c.dropped_iterations >= 330, `dropped ${c.dropped_iterations}`);
  assert.ok(c.iterations >= 40 && c.iterations <= 55, `iterations ${c.iterations}`);
});

test("percentiles agree with the server's own list of hold times, and Poisson arrivals keep their rate", async () => {
  server.held.length = 0;
  // every request asks the server to hold it {{rand}} mod 200 ms: the server logs what it held
  const requests = [{ name: 'hold', path: '/hold?ms={{rand}}' }];
  const c = config(requests, {
    model: { type: 'open', rate: 150, process: 'poisson', maxVUs: 1000 },
    phases: { rampUpMs: 0, steadyMs: 3000, rampDownMs: 0 },
    workers: 2,
  });
  c.scenario.requests[0]!.path = '/hold?ms={{rand}}';
  // rand is in [0, 2^31): map it to [0, 200) on the server side by a query the server reads as ms mod 200
  const orig = server.server.listeners('request')[0] as (req: { url?: string }, res: unknown) => void;
  server.server.removeAllListeners('request');
  server.server.on('request', (req: { url?: string }, res: unknown) => {
    req.url = req.url?.replace(/ms=(\d+)/, (_m, n: string) => `ms=${Number(n) % 200}`);
    orig(req, res);
  });
  try {
    const out = await runEngine(c);
    const n = out.steady['hold']!.counters.iterations;
    assert.ok(n > 300 && n < 600, `Poisson at 150/s for 3 s: ${n} iterations (expected ~450)`);
    const held = [...server.held].sort((a, b) => a - b);
    const rank = (p: number) => held[Math.ceil((p / 100) * held.length) - 1]!;
    const d = pc(out, 'hold', 'http_req_duration');
    assert.equal(d.count, held.length, 'one duration per request the server answered');
    for (const [p, v] of [
      [50, d.p50],
      [90, d.p90],
      [99, d.p99],
    ] as const) {
      // measured = held + the loopback round trip and scheduling (a few ms); HDR keeps 3 significant digits
      assert.ok(
        v >= rank(p) - 0.001 * rank(p) - 1 && v <= rank(p) * 1.001 + 15,
        `P${p}: engine ${v} ms vs server ${rank(p)} ms`,
      );
    }
  } finally {
    server.server.removeAllListeners('request');
    server.server.on('request', orig);
  }
});

test('merging per-thread histograms equals one histogram of all samples', () => {
  const all = newHistogram();
  const parts = [newHistogram(), newHistogram(), newHistogram(true)];
  for (let i = 0; i < 30_000; i++) {
    const ms = Math.exp(Math.sin(i) * 4) * 10; // 0.18 ms .. 546 ms, uneven
    recordMs(all, ms);
    recordMs(parts[i % 3]!, ms);
  }
  const merged = mergeEncoded(parts.map(encode));
  // the encoded form keeps counts per bucket (3 significant digits), so compare with `all` as it is encoded too
  assert.deepEqual(percentiles(merged), percentiles(mergeEncoded([encode(all)])));
  assert.ok(
    Math.abs(percentiles(merged).max - percentiles(all).max) <= percentiles(all).max * 0.001,
    'max within HDR precision',
  );
  assert.equal(merged.totalCount, 30_000);
  assert.equal(encode(merged), encode(all));
});

test('SSE: TTFT and ITL match the server within 5 ms at low load; tokens and done event counted', async () => {
  const out = await runEngine(
    config(
      [{ name: 'sse', kind: 'sse', method: 'POST', path: '/sse', body: { q: 'hi' }, sse: { doneEvent: 'done' } }],
      { model: { type: 'open', rate: 20, process: 'uniform', maxVUs: 100 } },
    ),
  );
  const ttft = pc(out, 'sse', 'ttft');
  const itl = pc(out, 'sse', 'itl');
  assert.ok(ttft.p50 >= 100 && ttft.p50 <= 105, `TTFT P50 ${ttft.p50} (server: 100 ms)`);
  assert.ok(itl.p50 >= 19 && itl.p50 <= 25, `ITL P50 ${itl.p50} (server: 20 ms)`);
  // the tail depends on what else runs on the machine's 2 cores (the suite runs files in parallel)
  assert.ok(ttft.p99 <= 160 && itl.p99 <= 70, `TTFT P99 ${ttft.p99}, ITL P99 ${itl.p99}`);
  const c = out.steady['sse']!.counters;
  assert.equal(c.tokens, 10 * c.iterations, '10 tokens per stream');
  assert.equal(c.streams_cut_short, 0);
  assert.equal(itl.count, 9 * c.iterations, 'ITL excludes the first token');
  const e2e = pc(out, 'sse', 'e2e_latency');
  assert.ok(e2e.p50 >= 280 && e2e.p50 <= 300, `e2e P50 ${e2e.p50} (100 + 9 x 20 = 280 ms)`);
});

test('task round trip: queue wait from the server times, end-to-end to the poll that saw it done; failures by reason', async () => {
  const out = await runEngine(
    config(
      [
        {
          name: 'task',
          kind: 'task',
          method: 'POST',
          path: '/task',
          expect: [202],
          weight: 1,
          task: { poll: '/task/{{task_id}}', interval: '50ms', createdField: 'created_at', startedField: 'started_at' },
        },
        { name: 'busy', path: '/status/503', weight: 1 },
      ],
      { model: { type: 'open', rate: 20, process: 'uniform', maxVUs: 100 } },
    ),
  );
  const wait = pc(out, 'task', 'task_queue_wait');
  assert.ok(
    Math.abs(wait.p50 - 20) <= 0.02,
    `started_at - created_at = 20 ms on the server (HDR keeps 3 digits), got ${wait.p50}`,
  );
  const e2e = pc(out, 'task', 'task_e2e');
  assert.ok(e2e.p50 >= 200 && e2e.p50 <= 280, `task_e2e P50 ${e2e.p50} (done after 200 ms, polled every 50 ms)`);
  const busy = out.steady['busy']!;
  assert.equal(busy.counters.http_req_failed, busy.counters.http_reqs);
  assert.deepEqual(Object.keys(busy.failures), ['http_503 llm_slots_busy']);
  assert.equal(out.steady['task']!.counters.http_req_failed, 0);
});

test('refused connections are failures with reason refused, not a crash', async () => {
  const c = config([{ name: 'fixed', path: '/fixed' }], {
    target: 'http://127.0.0.1:1',
    phases: { rampUpMs: 0, steadyMs: 500, rampDownMs: 0 },
  });
  const out = await runEngine(c);
  const s = out.steady['fixed']!;
  assert.ok(s.counters.http_reqs > 0);
  assert.equal(s.counters.http_req_failed, s.counters.http_reqs);
  assert.deepEqual(Object.keys(s.failures), ['refused']);
});
