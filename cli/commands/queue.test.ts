/**
 * `arena queue --visits N`: per-request inputs split into N visits (transactions), the wait per visit and
 * per request (N x the mean per visit), as the planner does for spec.load.requestMix[].dbTransactions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRefused, runArena } from '../../testing/cli.js';
import { analyzeQueue } from '../../operator/planner/erlang.js';

const SPOT = ['--arrival-rate', '117.28', '--service-time', '51.16ms', '--servers', '8'];

test('queue --visits 2: the queue sees 2 x the arrivals of half the hold; the wait per request is 2 x per visit', () => {
  const r = runArena(['queue', ...SPOT, '--cv', '0.978', '--visits', '2', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const q = JSON.parse(r.out);
  assert.equal(q.arrivalRatePerSecond, 234.56);
  assert.equal(q.serviceTimeMs, 25.58);
  assert.equal(q.visitsPerRequest, 2);
  assert.equal(q.meanWaitPerRequestMs, 2 * q.meanWaitMs);
  // the same offered load (6 Erlangs on 8: 75 %), so the same P(wait) as one visit of 51.16 ms
  const one = JSON.parse(runArena(['queue', ...SPOT, '-o', 'json']).out);
  assert.equal(q.utilization.toFixed(6), one.utilization.toFixed(6));
  assert.equal(q.pWait.toFixed(9), one.pWait.toFixed(9));
  // Allen-Cunneen: two visits at cv^2 0.956 wait (1 + 0.956) / 2 of one exponential visit per request
  const ratio = q.meanWaitPerRequestMs / one.meanWaitMs;
  assert.ok(Math.abs(ratio - (1 + 0.978 * 0.978) / 2) < 1e-9, `ratio ${ratio}`);
  assert.deepEqual(q.meanWaitMs, analyzeQueue(8, 234.56, 25.58, 0.978 * 0.978).meanWaitMs);
  const t = runArena(['queue', ...SPOT, '--visits', '2']);
  assert.match(t.out, /mean wait per visit\s+│ 0\.00\d\d s/);
  assert.match(t.out, /visits per request\s+│ 2 /);
  assert.match(t.out, /mean wait per request\s+│ 0\.00\d\d s/);
});

test('queue without --visits prints what it printed before; --visits must be a positive integer', () => {
  const j = JSON.parse(runArena(['queue', ...SPOT, '-o', 'json']).out);
  assert.equal('visitsPerRequest' in j, false);
  assert.doesNotMatch(runArena(['queue', ...SPOT]).out, /per visit|per request/);
  assert.match(runArena(['queue', ...SPOT, '--arrival-rate', '200', '--visits', '3']).out, /per request\s+│ unbounded/);
  assertRefused(runArena(['queue', ...SPOT, '--visits', '0']), /--visits <n>.*must be a positive integer/);
  assertRefused(runArena(['queue', ...SPOT, '--visits', '1.5']), /--visits <n>.*must be a positive integer/);
});
