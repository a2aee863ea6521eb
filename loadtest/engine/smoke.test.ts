/**
 * The CI smoke run: the real local stack of samples/arena-local.yaml
 * (PostgreSQL, PgBouncer, Redis, the reference API) under `arena loadtest run`
 * with the bundled mixed scenario at 150/s for about 20 s (a few hundred in
 * flight: its 2 s LLM calls outrun the stack's 8 slots and 4 queue
 * consumers), sampling every pool.
 * Asserts what a user reads off the report: a P99 for every request kind, a
 * series for every pool, and PgBouncer figures that agree with an
 * independent SHOW POOLS taken during the run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoPath } from '../../testing/paths.js';
import { runArenaAsync } from '../../testing/cli.js';
import { openReport } from '../../testing/browser.js';
import { localStack } from '../../testing/local-stack.js';
import { showPools, type StackState } from '../stack/stack.js';
import type { LoadTestResult } from './result-schema.js';

const SAMPLE = repoPath('samples/arena-local.yaml');
const stack = localStack(SAMPLE, 'loadtest-smoke');
const TMP = stack.tmp;
const STATE_DIR = stack.stateDir;
let state: StackState | undefined;

before(() => {
  stack.up();
  state = stack.state;
});
after(() => stack.down());

test('smoke: mixed load against the local stack: P99 per request kind, every pool sampled, PgBouncer agrees with SHOW POOLS', async () => {
  const out = join(TMP, 'result');
  const run = runArenaAsync(
    // the bundled mixed scenario (LLM p50 2 s) against a stack with 8 LLM slots and 4 queue consumers: a few hundred in flight
    [
      'loadtest',
      'run',
      '-f',
      SAMPLE,
      '--state-dir',
      STATE_DIR,
      '--scenario-file',
      repoPath('loadtest/scenarios/mixed.yaml'),
      '--rate',
      '150',
      '--ramp',
      '3s',
      '--duration',
      '15s',
      '--graceful-stop',
      '5s',
      '--sample',
      'auto',
      '--out',
      out,
      '--seed',
      '42',
    ],
    { timeoutMs: 120_000 },
  );
  // independent SHOW POOLS reads while the load runs (epoch ms, cl_active of the app's pool)
  const reads: { at: number; cl_active: number; sv_active: number }[] = [];
  for (const delay of [6000, 5000, 4000]) {
    await new Promise((r) => setTimeout(r, delay));
    const rows = await showPools(state!);
    const row = rows.find((p) => p.database === state!.database.name);
    assert.ok(row, `SHOW POOLS has the ${state!.database.name} pool`);
    reads.push({ at: Date.now(), cl_active: row.cl_active ?? 0, sv_active: row.sv_active ?? 0 });
  }
  const r = await run;
  assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.err}`);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.equal(result.status, 'complete');
  assert.deepEqual(Object.keys(result.scenarios).sort(), ['debate-stream', 'match-save', 'read', 'task']);
  for (const [name, s] of Object.entries(result.scenarios)) {
    const d = s.metrics['http_req_duration'];
    assert.ok(d && d.count > 0 && d.p99 > 0, `${name} has a P99`);
  }
  assert.ok(result.scenarios['debate-stream']!.metrics['ttft']?.p99, 'streams have a TTFT P99');
  assert.ok(result.scenarios['task']!.metrics['task_e2e']?.p99, 'tasks have an end-to-end P99');
  assert.ok(result.engine.peakInFlight >= 150, `peak in flight ${result.engine.peakInFlight}`);
  const sat = result.saturation!;
  for (const pool of [
    'pgbouncer_client',
    'pgbouncer_server',
    'postgres_backends',
    'redis_clients',
    'llm_slots',
    'app_db_pool',
    'async_consumers',
  ]) {
    const p = sat.pools[pool];
    assert.ok(p && p.samples >= 15 && p.limit !== null && p.limit > 0, `${pool} has a series with a limit`);
  }
  assert.equal(sat.pools['pgbouncer_server']!.limit, 5, 'default_pool_size 4 + reserve_pool_size 1');
  assert.ok(sat.saturatesFirst, 'a pool is named as saturating first');
  // agreement: the sampler's PgBouncer cl_active at the tick nearest each independent read
  const started = Date.parse(result.startedAt);
  const series = sat.series['pgbouncer.cl_active']!;
  for (const read of reads) {
    const t = read.at - started;
    const nearest = series.reduce((a, b) => (Math.abs(b[0] - t) < Math.abs(a[0] - t) ? b : a));
    assert.ok(Math.abs(nearest[0] - t) <= 1000, 'a tick within 1 s of the read');
    assert.ok(
      nearest[1] !== null && Math.abs(nearest[1] - read.cl_active) <= 3,
      `cl_active: sampler ${nearest[1]} vs SHOW POOLS ${read.cl_active}`,
    );
  }
  // the run's report.html opens offline in headless Chromium, every chart drawn, no console error
  const opened = await openReport(join(out, 'report.html'), repoPath('out/test-artifacts/smoke-report.png'));
  assert.deepEqual(opened.consoleErrors, [], 'no console errors');
  assert.deepEqual(opened.blockedRequests, [], 'no network request');
  assert.ok(opened.canvases.length >= 10, `charts drawn: ${opened.canvases.length}`);
  for (const c of opened.canvases) assert.ok(c.inkPixels > 300, `${c.id}: drawn (${c.inkPixels} coloured pixels)`);
  assert.match(opened.text, new RegExp(`Saturates first: ${sat.saturatesFirst!.pool}`));
  assert.ok(existsSync(join(out, 'junit.xml')), 'junit.xml written by the run');
});
