/** Percentiles, utilisation and summaries on hand-computed cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, saturatesFirst, summarize, utilization, values, type Point } from './series.js';

const pts = (vs: (number | null)[]): Point[] => vs.map((v, i) => [i * 1000, v]);

test('percentile: nearest rank, ceil(p/100 x n)', () => {
  const one20 = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20
  assert.equal(percentile(one20, 95), 19); // rank ceil(19) = 19
  assert.equal(percentile(one20, 50), 10); // rank 10
  assert.equal(percentile(one20, 100), 20);
  assert.equal(percentile(one20, 1), 1); // rank ceil(0.2) = 1
  const one10 = Array.from({ length: 10 }, (_, i) => 10 - i); // unsorted 10..1
  assert.equal(percentile(one10, 95), 10); // rank ceil(9.5) = 10
  assert.equal(percentile(one10, 90), 9); // rank 9
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([], 95), null);
  assert.equal(percentile([3, 1, 2], 95), 3); // rank ceil(2.85) = 3
  assert.throws(() => percentile([1], 0), RangeError);
  assert.throws(() => percentile([1], 101), RangeError);
});

test('values: gaps (null) are left out', () => {
  assert.deepEqual(values(pts([1, null, 3, null])), [1, 3]);
});

test('utilization: value / limit; null without a usable limit', () => {
  assert.equal(utilization(4, 5), 0.8);
  assert.equal(utilization(0, 5), 0);
  assert.equal(utilization(4, null), null);
  assert.equal(utilization(4, 0), null);
  assert.equal(utilization(null, 5), null);
});

test('summarize: peak, P95 and their utilisation; missing ticks counted', () => {
  // 20 ticks: 0 x 10, then 1..9, then a peak of 5 again -> sorted: 0 x10, 1,2,3,4,5,5,6,7,8,9; P95 = rank 19 = 8
  const s = summarize(pts([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5]), 10);
  assert.deepEqual(s, {
    limit: 10,
    peak: 9,
    p95: 8,
    peakUtilization: 0.9,
    p95Utilization: 0.8,
    samples: 20,
    missing: 0,
  });
  const gaps = summarize(pts([2, null, 4, null]), 8);
  assert.deepEqual(gaps, {
    limit: 8,
    peak: 4,
    p95: 4,
    peakUtilization: 0.5,
    p95Utilization: 0.5,
    samples: 2,
    missing: 2,
  });
  const noLimit = summarize(pts([3, 1]), null);
  assert.equal(noLimit.peakUtilization, null);
  assert.equal(noLimit.peak, 3);
  const none = summarize(pts([null, null]), 5);
  assert.deepEqual(none, {
    limit: 5,
    peak: null,
    p95: null,
    peakUtilization: null,
    p95Utilization: null,
    samples: 0,
    missing: 2,
  });
});

test('saturatesFirst: highest peak utilisation among figures with a limit; ties keep the first', () => {
  const a = summarize(pts([1, 4]), 5); // 0.8
  const b = summarize(pts([9]), 10); // 0.9
  const c = summarize(pts([100]), null); // no limit
  const d = summarize(pts([18]), 20); // 0.9 (tie with b)
  assert.deepEqual(saturatesFirst({ a, b, c, d }), { figure: 'b', peakUtilization: 0.9 });
  assert.equal(saturatesFirst({ c }), null);
  assert.equal(saturatesFirst({}), null);
});
