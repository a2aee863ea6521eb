import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { workloadAt } from './workload.js';
import type { RequestKind } from '../api/v1alpha1/schema.js';

const read: RequestKind = { name: 'read', weight: 3, kind: 'sync', serviceTimeMs: 15, dbTimeMs: 5 };
const slow: RequestKind = { name: 'slow', weight: 1, kind: 'sync', serviceTimeMs: 980, dbTimeMs: 20 };

test("Little's law, hand-computed: 3:1 mix of 20 ms and 1000 ms at 1000 in flight", () => {
  // mean T = 0.75*20 + 0.25*1000 = 265 ms; lambda = 1000 / 0.265 = 3773.58/s
  const w = workloadAt(1000, [read, slow]);
  assert.ok(Math.abs(w.arrivalRatePerSecond - 1000 / 0.265) < 1e-6);
  // the slow kind holds 0.25 * 3773.58 * 1.0 = 943.4 of the 1000
  assert.ok(Math.abs(w.kinds[1]!.concurrency - 943.396) < 1e-3);
  assert.ok(Math.abs(w.apiConcurrency - 1000) < 1e-9);
  // DB: both kinds, rate 3773.58/s, mean hold 0.75*5 + 0.25*20 = 8.75 ms
  assert.ok(Math.abs(w.db.serviceTimeMs - 8.75) < 1e-9);
});

test('async kinds hold the API only while submitting, the LLM call goes to the task queue', () => {
  const w = workloadAt(100, [
    { name: 'a', weight: 1, kind: 'async', serviceTimeMs: 10, dbTimeMs: 0, llmTimeMs: { p50: 990, p99: 990 } },
  ]);
  // T = 10 + 990 = 1000 ms -> lambda = 100/s; API holds 100/s * 10 ms = 1
  assert.ok(Math.abs(w.arrivalRatePerSecond - 100) < 1e-9);
  assert.ok(Math.abs(w.apiConcurrency - 1) < 1e-9);
  assert.ok(Math.abs(w.asyncTasks.arrivalRatePerSecond - 100) < 1e-9);
  assert.equal(w.llmSlots.arrivalRatePerSecond, 0);
  assert.equal(w.llmCallsPerSecond, w.asyncTasks.arrivalRatePerSecond);
});

test('invariant: kind concurrencies add up to the total and scale linearly', () => {
  const kind = fc.record({
    weight: fc.double({ min: 0.1, max: 100, noNaN: true }),
    kind: fc.constantFrom<'sync' | 'stream' | 'async'>('sync', 'stream', 'async'),
    serviceTimeMs: fc.double({ min: 0.1, max: 1000, noNaN: true }),
    dbTimeMs: fc.double({ min: 0, max: 100, noNaN: true }),
    p50: fc.double({ min: 1, max: 10_000, noNaN: true }),
  });
  fc.assert(
    fc.property(fc.array(kind, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 100_000 }), (ks, n) => {
      const mix: RequestKind[] = ks.map((k, i) => ({
        name: `k${i}`,
        weight: k.weight,
        kind: k.kind,
        serviceTimeMs: k.serviceTimeMs,
        dbTimeMs: k.dbTimeMs,
        ...(k.kind === 'sync' ? {} : { llmTimeMs: { p50: k.p50, p99: k.p50 * 3 } }),
      }));
      const w = workloadAt(n, mix);
      const sum = w.kinds.reduce((s, k) => s + k.concurrency, 0);
      assert.ok(Math.abs(sum - n) < 1e-6 * n);
      assert.ok(w.apiConcurrency <= n * (1 + 1e-9));
      const w2 = workloadAt(2 * n, mix);
      assert.ok(Math.abs(w2.arrivalRatePerSecond - 2 * w.arrivalRatePerSecond) < 1e-6 * w2.arrivalRatePerSecond);
    }),
    { numRuns: 200 },
  );
});
