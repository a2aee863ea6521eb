/**
 * The machine's CPU in `arena bench` (bench.ts hostCpuPredictions, benchText): the line through the two
 * lowest levels' measured busy cores, evaluated at every level's rate, and its cell in the utilisation table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchText, hostCpuPredictions, type BenchLevel, type BenchResult } from './bench.js';

/** A level with only what the host line and the table read. */
function level(concurrency: number, rate: number, busy: number | null, beyond = false): BenchLevel {
  return {
    concurrency,
    beyond,
    ratePerSecond: rate,
    steadyInFlightMean: concurrency,
    errorRate: 0,
    dropped: 0,
    engine: {
      cpuSeconds: 1,
      peakRssMiB: 1,
      cpuSecondsPer1kInFlight: null,
      rssMiBPer1kInFlight: null,
      clientSaturated: false,
    },
    kinds: {},
    queues: {},
    saturatesFirst: { measuredPool: null, predictedQueue: null, measuredQueue: null },
    hostCpu: { cores: 2, measuredBusyCores: busy, predictedBusyCores: null },
  } as unknown as BenchLevel;
}

test('host CPU: the line through the two lowest levels predicts the others (this machine: 1.66 of 2 cores at 596/s)', () => {
  // 2026-12-08 (docs/benchmarks.md): 0.45 busy cores at 119/s and 0.75 at 298/s -> slope 0.3 / 179 per req/s
  const levels = [
    level(10_000, 1191, 1.9),
    level(1_000, 119, 0.45),
    level(2_500, 298, 0.75),
    level(13_000, 1549, 2, true),
  ];
  hostCpuPredictions(levels);
  const slope = 0.3 / 179;
  const at = (rate: number) => Math.round((0.45 + slope * (rate - 119)) * 1000) / 1000;
  assert.deepEqual(
    levels.map((l) => l.hostCpu!.predictedBusyCores),
    [at(1191), at(119), at(298), at(1549)],
  );
  assert.ok(at(1191) > 2, `the line runs out of the 2 cores at 1,191/s: ${at(1191)}`);
  // the table: the line's share of the cores / the measured, "over" once the line passes every core
  const b = { levels, machine: { cores: 2, node: 'v20' }, settings: { steadyMs: 60_000, rampMs: 30_000 } };
  const rows: string[][] = [];
  const text = benchText(
    { ...b, name: 'x', file: 'x.yaml', targetConcurrency: 10_000 } as unknown as BenchResult,
    () => ({ push: (r: string[]) => rows.push(r), toString: () => '' }),
  );
  assert.match(text, /host CPU: the line through the two lowest levels/);
  const hostCells = rows.filter((r) => r.length === 2).map((r) => r[1]);
  assert.equal(hostCells[0], `${((100 * at(1191)) / 2).toFixed(0)}% over / 95%`);
  assert.equal(hostCells[1], `${((100 * at(119)) / 2).toFixed(0)}% / 23%`);
  // with one measured level there is no line
  const one = [level(1_000, 119, 0.45), level(2_500, 298, null)];
  hostCpuPredictions(one);
  assert.deepEqual(
    one.map((l) => l.hostCpu!.predictedBusyCores),
    [null, null],
  );
});
