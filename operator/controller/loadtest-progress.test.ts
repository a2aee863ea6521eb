/**
 * loadtest-progress.ts: the runner states and the next step of a distributed
 * test from the Job and shard ConfigMaps, at given instants (no clock, no apiserver).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { repoPath } from '../../testing/paths.js';
import { validateLoadTestText } from '../api/v1alpha1/validate.js';
import { ANNOTATIONS } from '../../loadtest/distributed/shard.js';
import type { ArenaLoadTestStatus } from '../api/v1alpha1/loadtest-schema.js';
import type { KubeObj } from './kube.js';
import {
  loadTestProgress,
  parseIndexes,
  runDeadlineMs,
  START_LEAD_MS,
  type ProgressInputs,
} from './loadtest-progress.js';

// samples/loadtest-small.yaml: 4 runners, start deadline 120 s, ramp 30 s + 2 min + 10 s + graceful stop 30 s
const lt = validateLoadTestText(readFileSync(repoPath('samples/loadtest-small.yaml'), 'utf8'))[0]!.object!;
const T0 = Date.parse('2026-12-07T12:00:00Z');
const job = (status: Record<string, unknown> = {}): KubeObj => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'loadtest-small-runner', creationTimestamp: new Date(T0) },
  status,
});
const shard = (annotations: Record<string, string>): KubeObj => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'x', annotations },
});
const ready = shard({ [ANNOTATIONS.ready]: '2026-12-07T12:00:05Z' });
const published = shard({ [ANNOTATIONS.ready]: '2026-12-07T12:00:05Z', [ANNOTATIONS.status]: 'complete' });
const at = (
  nowMs: number,
  shards: (KubeObj | undefined)[],
  status: ArenaLoadTestStatus = {},
  j: KubeObj | undefined = job(),
): ProgressInputs => ({
  lt,
  status,
  job: j,
  shards: new Map(shards.flatMap((s, i) => (s ? [[i, s] as const] : []))),
  nowMs,
});

test('parseIndexes reads the Job status index ranges', () => {
  assert.deepEqual([...parseIndexes('0,2-4,7')], [0, 2, 3, 4, 7]);
  assert.deepEqual([...parseIndexes(undefined)], []);
  assert.deepEqual([...parseIndexes('')], []);
});

test('before every runner is ready: wait until the start deadline (Job creation + startDeadlineSeconds), then fail naming the others', () => {
  const p = loadTestProgress(at(T0 + 10_000, [ready, undefined, ready, shard({})]));
  assert.deepEqual(
    p.runners.map((r) => r.state),
    ['Ready', 'Pending', 'Ready', 'Pending'],
  );
  assert.deepEqual(p.next, { step: 'wait-ready', ready: 2, deadlineMs: T0 + 120_000 });
  const late = loadTestProgress(at(T0 + 120_001, [ready, undefined, ready, shard({})]));
  assert.deepEqual(late.next, { step: 'fail-start', notReady: [1, 3] });
});

test('every runner ready: the start signal, START_LEAD_MS ahead', () => {
  const p = loadTestProgress(at(T0 + 20_000, [ready, ready, ready, ready]));
  assert.deepEqual(p.next, { step: 'signal', startAtMs: T0 + 20_000 + START_LEAD_MS });
});

test('running: runners publish one by one; a failed index is Failed with its name; merge once all have ended', () => {
  const status = { startAt: new Date(T0 + 30_000).toISOString() };
  const running = loadTestProgress(at(T0 + 60_000, [published, ready, ready, ready], status));
  assert.deepEqual(
    running.runners.map((r) => r.state),
    ['Succeeded', 'Running', 'Running', 'Running'],
  );
  assert.deepEqual(running.next, { step: 'wait-run', deadlineMs: runDeadlineMs(lt, T0 + 30_000) });
  const oneFailed = job({ failedIndexes: '1' });
  const p = loadTestProgress(at(T0 + 90_000, [published, ready, published, ready], status, oneFailed));
  assert.equal(p.runners[1]!.state, 'Failed');
  assert.match(
    p.runners[1]!.message!,
    /runner 1 failed before publishing its shard \(Job loadtest-small-runner, index 1\)/,
  );
  assert.equal(p.next.step, 'wait-run', 'runner 3 is still running');
  const end = loadTestProgress(at(T0 + 95_000, [published, ready, published, published], status, oneFailed));
  assert.deepEqual(end.next, { step: 'merge', published: [0, 2, 3], failed: [1] });
});

test('a runner that never publishes: Failed once the Job ends or the run deadline passes', () => {
  const status = { startAt: new Date(T0 + 30_000).toISOString() };
  const deadline = runDeadlineMs(lt, T0 + 30_000);
  // 30 s + (30 s + 2 min + 10 s + 30 s) + 300 s margin
  assert.equal(deadline, T0 + 30_000 + 190_000 + 300_000);
  const before = loadTestProgress(at(deadline - 1, [published, ready, published, published], status));
  assert.equal(before.next.step, 'wait-run');
  const after = loadTestProgress(at(deadline + 1, [published, ready, published, published], status));
  assert.match(after.runners[1]!.message!, /never published its shard within 490 s of the start/);
  assert.deepEqual(after.next, { step: 'merge', published: [0, 2, 3], failed: [1] });
  const jobDone = job({ conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] });
  const ended = loadTestProgress(at(T0 + 100_000, [published, ready, published, published], status, jobDone));
  assert.match(ended.runners[1]!.message!, /the Job loadtest-small-runner is Failed \(DeadlineExceeded\)/);
  assert.equal(ended.next.step, 'merge');
});

test('a runner failing before the start ends the test at once (the others would wait for nothing)', () => {
  const p = loadTestProgress(at(T0 + 10_000, [ready, undefined, ready, ready], {}, job({ failedIndexes: '1' })));
  assert.deepEqual(p.next, { step: 'merge', published: [], failed: [1] });
});
