import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lognormalFromPercentiles, mixture } from './latency.js';

test('lognormal through p50 8000 ms and p99 30000 ms has mean ~9402 ms', () => {
  const m = lognormalFromPercentiles(8000, 30000);
  // sigma = ln(3.75)/2.3263 = 0.56818; sigma^2 = 0.322815, mean = 8000 * exp(0.161408) = 9401.3, cv2 = exp(0.322815) - 1 = 0.38101
  assert.ok(Math.abs(m.sigma - 0.56818) < 1e-4, `sigma ${m.sigma}`);
  assert.ok(Math.abs(m.meanMs - 9401.3) < 0.5, `mean ${m.meanMs}`);
  assert.ok(Math.abs(m.cv2 - 0.38101) < 1e-4, `cv2 ${m.cv2}`);
});

test('a constant latency (p50 = p99) has cv2 0 and mean p50', () => {
  const m = lognormalFromPercentiles(100, 100);
  assert.equal(m.cv2, 0);
  assert.equal(m.meanMs, 100);
});

test('bad percentiles throw', () => {
  assert.throws(() => lognormalFromPercentiles(0, 1), RangeError);
  assert.throws(() => lognormalFromPercentiles(10, 5), RangeError);
});

test('mixture of two constants: 50/50 of 10 ms and 30 ms has mean 20 and cv2 0.25', () => {
  const m = mixture([
    { weight: 1, meanMs: 10, cv2: 0 },
    { weight: 1, meanMs: 30, cv2: 0 },
  ]);
  assert.equal(m.meanMs, 20);
  // E[S^2] = (100 + 900)/2 = 500; 500/400 - 1 = 0.25
  assert.ok(Math.abs(m.cv2 - 0.25) < 1e-12);
  assert.deepEqual(mixture([]), { meanMs: 0, cv2: 1 });
});
