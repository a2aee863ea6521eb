import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyzeQueue, erlangB, erlangC, serversForWaitProbability } from './erlang.js';

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected} +- ${tol}, got ${actual}`);

test('Erlang B matches the closed form for small cases', () => {
  // B(1, a) = a / (1 + a); B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2
  close(erlangB(1, 1), 0.5, 1e-12, 'B(1,1)');
  close(erlangB(2, 1), 0.2, 1e-12, 'B(2,1)');
  close(erlangB(0, 3), 1, 0, 'B(0,a)');
});

test('Erlang C hand-computed: 2 servers, 1 Erlang gives 1/3', () => {
  // C = B / (1 - rho(1 - B)) = 0.2 / (1 - 0.5 * 0.8) = 1/3
  close(erlangC(2, 1), 1 / 3, 1e-12, 'C(2,1)');
});

test('M/M/1 reduces to P(wait) = rho and Wq = rho/(mu - lambda)', () => {
  const q = analyzeQueue(1, 5, 100); // rho = 0.5, mu = 10/s
  close(q.pWait, 0.5, 1e-12, 'pWait');
  close(q.meanWaitMs!, 100, 1e-9, 'Wq ms'); // 0.5 / (10 - 5) s = 100 ms
  // P(W > t) = rho e^{-(mu-lambda)t} => t99 = ln(0.5/0.01)/5 s
  close(q.p99WaitMs!, (Math.log(50) / 5) * 1000, 1e-9, 'p99');
});

test('issue reference: 100/s, 10 s service, 1050 servers gives P(wait) 0.074 and P99 wait 0.40 s', () => {
  const q = analyzeQueue(1050, 100, 10_000);
  close(q.utilization, 1000 / 1050, 1e-12, 'rho');
  close(q.pWait, 0.074, 0.0005, 'pWait');
  close(q.p99WaitMs! / 1000, 0.4, 0.005, 'p99 s');
});

test('Allen-Cunneen: constant service time halves the M/M/c wait', () => {
  const m = analyzeQueue(10, 80, 100, 1);
  const d = analyzeQueue(10, 80, 100, 0);
  close(d.meanWaitMs!, m.meanWaitMs! / 2, 1e-9, 'M/D/c mean wait');
  assert.equal(d.pWait, m.pWait);
});

test('unstable queues report no finite wait', () => {
  const q = analyzeQueue(10, 200, 100); // a = 20 Erlangs on 10 servers
  assert.equal(q.stable, false);
  assert.equal(q.pWait, 1);
  assert.equal(q.meanWaitMs, null);
  assert.equal(q.p99WaitMs, null);
  assert.equal(analyzeQueue(0, 1, 1).stable, false);
  assert.equal(analyzeQueue(0, 0, 1).stable, true);
});

test('bad inputs throw RangeError', () => {
  assert.throws(() => analyzeQueue(-1, 1, 1), RangeError);
  assert.throws(() => analyzeQueue(1.5, 1, 1), RangeError);
  assert.throws(() => analyzeQueue(1, -1, 1), RangeError);
  assert.throws(() => analyzeQueue(1, 1, Number.NaN), RangeError);
});

test('invariants: P(wait) in [0,1], falls as servers grow, waits ordered', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2000 }),
      fc.double({ min: 0.01, max: 0.99, noNaN: true }),
      fc.double({ min: 1, max: 60_000, noNaN: true }),
      (c, rho, s) => {
        const lambda = (rho * c) / (s / 1000);
        const q = analyzeQueue(c, lambda, s);
        const more = analyzeQueue(c + 1, lambda, s);
        assert.ok(q.pWait >= 0 && q.pWait <= 1);
        assert.ok(more.pWait <= q.pWait + 1e-12);
        assert.ok(q.meanWaitMs! >= 0 && q.p99WaitMs! >= 0);
        assert.ok(more.meanWaitMs! <= q.meanWaitMs! + 1e-9);
      },
    ),
    { numRuns: 300 },
  );
});

test('serversForWaitProbability returns the smallest c meeting the target', () => {
  const c = serversForWaitProbability(100, 10_000, 0.1);
  assert.ok(erlangC(c, 1000) <= 0.1);
  assert.ok(erlangC(c - 1, 1000) > 0.1);
});
