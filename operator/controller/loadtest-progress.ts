/**
 * Where a distributed load test stands, as a pure function of what the caches
 * hold (docs/distributed.md, "The operator's loop"): the ArenaLoadTest's spec
 * and status, its Indexed Job and its shard ConfigMaps, and the clock it is
 * given. No apiserver, no cache, no clock of its own: `loadtest-reconciler.ts`
 * does the I/O and acts on the `next` step decided here.
 *
 * Runner state, per shard index i (= JOB_COMPLETION_INDEX):
 *
 * | what the caches say                                                         | state     |
 * |-----------------------------------------------------------------------------|-----------|
 * | shard ConfigMap `<name>-shard-i` has `arena.dev/shard-status`               | Succeeded |
 * | the Job lists i in `status.failedIndexes` (backoffLimitPerIndex 0)          | Failed    |
 * | the Job has a terminal condition (Failed, Complete) and i never published   | Failed    |
 * | the run deadline (startAt + schedule + margin) passed and i never published | Failed    |
 * | `arena.dev/runner-ready` set, status.startAt set                            | Running   |
 * | `arena.dev/runner-ready` set                                                | Ready     |
 * | otherwise                                                                   | Pending   |
 *
 * The next step: `wait-ready` (not every runner is ready; `fail-start` once the
 * start deadline passes: the Job's creation + spec.runner.startDeadlineSeconds),
 * `signal` (every runner ready and no startAt yet), `wait-run` (runners
 * running), `merge` (every runner Succeeded or Failed).
 */
import type { ArenaLoadTest, ArenaLoadTestStatus } from '../api/v1alpha1/loadtest-schema.js';
import { parseDurationMs } from '../../loadtest/engine/duration.js';
import { ANNOTATIONS } from '../../loadtest/distributed/shard.js';
import { JOB_DEADLINE_MARGIN_SECONDS } from '../render/loadtest.js';
import type { KubeObj } from './kube.js';

/** How far ahead of now the operator sets status.startAt, ms: runners poll it once a second. */
export const START_LEAD_MS = 3000;

export type RunnerState = 'Pending' | 'Ready' | 'Running' | 'Succeeded' | 'Failed';

/** One runner as status.runners shows it. */
export interface RunnerProgress {
  index: number;
  state: RunnerState;
  message?: string;
  /** Its shard ConfigMap carries a result (`arena.dev/shard-status`): `complete` or `partial`. */
  published?: 'complete' | 'partial';
}

/** The inputs: the (defaulted, valid) ArenaLoadTest, its Job and shard ConfigMaps from the caches, and now. */
export interface ProgressInputs {
  lt: ArenaLoadTest;
  status: ArenaLoadTestStatus;
  /** The Indexed Job `<name>-runner` from the cache, once it exists. */
  job?: KubeObj;
  /** The shard ConfigMaps by index (missing ones absent). */
  shards: ReadonlyMap<number, KubeObj>;
  /** Milliseconds since the epoch. */
  nowMs: number;
}

export type NextStep =
  | { step: 'wait-ready'; ready: number; deadlineMs: number }
  | { step: 'fail-start'; notReady: number[] }
  | { step: 'signal'; startAtMs: number }
  | { step: 'wait-run'; deadlineMs: number }
  | { step: 'merge'; published: number[]; failed: number[] };

export interface Progress {
  runners: RunnerProgress[];
  next: NextStep;
}

/** ramp + duration + ramp-down + graceful stop of spec.load, ms. */
export function scheduleMs(lt: ArenaLoadTest): number {
  const l = lt.spec.load;
  return [l.ramp, l.duration, l.rampDown, l.gracefulStop].reduce((s, d) => s + (parseDurationMs(d) ?? 0), 0);
}

/**
 * The instant after which a runner that has not published counts as Failed, ms since the epoch:
 * startAt + the schedule + JOB_DEADLINE_MARGIN_SECONDS (the same margin the Job's activeDeadlineSeconds has).
 */
export function runDeadlineMs(lt: ArenaLoadTest, startAtMs: number): number {
  return startAtMs + scheduleMs(lt) + JOB_DEADLINE_MARGIN_SECONDS * 1000;
}

/** The indexes in a Job's `status.failedIndexes` / `completedIndexes` ("1,3-5"). */
export function parseIndexes(s: string | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of (s ?? '').split(',')) {
    if (!part.trim()) continue;
    const [a, b] = part.split('-').map((x) => Number(x.trim()));
    if (!Number.isInteger(a)) continue;
    const end = Number.isInteger(b) ? b! : a!;
    for (let i = a!; i <= end; i++) out.add(i);
  }
  return out;
}

/** The Job's terminal condition (`Complete` or `Failed` with status True), if any. */
export function jobFinished(job: KubeObj | undefined): { type: string; reason: string; message: string } | undefined {
  const conds = ((job?.status as any)?.conditions ?? []) as {
    type: string;
    status: string;
    reason?: string;
    message?: string;
  }[];
  const c = conds.find((x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True');
  return c ? { type: c.type, reason: c.reason ?? c.type, message: c.message ?? '' } : undefined;
}

function runnerOf(i: number, input: ProgressInputs, startAtMs: number | undefined): RunnerProgress {
  const { job, shards, nowMs, lt } = input;
  const ann = shards.get(i)?.metadata?.annotations ?? {};
  const published = ann[ANNOTATIONS.status];
  if (published === 'complete' || published === 'partial')
    return {
      index: i,
      state: 'Succeeded',
      published,
      ...(published === 'partial' ? { message: 'published a partial result (the run ended early)' } : {}),
    };
  const jobName = job?.metadata?.name ?? '';
  if (parseIndexes((job?.status as any)?.failedIndexes).has(i))
    return {
      index: i,
      state: 'Failed',
      message: `runner ${i} failed before publishing its shard (Job ${jobName}, index ${i})`,
    };
  const finished = jobFinished(job);
  if (finished)
    return {
      index: i,
      state: 'Failed',
      message: `runner ${i} never published its shard; the Job ${jobName} is ${finished.type} (${finished.reason})`,
    };
  if (startAtMs !== undefined && nowMs > runDeadlineMs(lt, startAtMs))
    return {
      index: i,
      state: 'Failed',
      message: `runner ${i} never published its shard within ${Math.round((runDeadlineMs(lt, startAtMs) - startAtMs) / 1000)} s of the start`,
    };
  if (ann[ANNOTATIONS.ready]) return { index: i, state: startAtMs !== undefined ? 'Running' : 'Ready' };
  return { index: i, state: 'Pending' };
}

/** Runner states and the next step. Pure. */
export function loadTestProgress(input: ProgressInputs): Progress {
  const { lt, status, job, nowMs } = input;
  const startAtMs = status.startAt ? Date.parse(status.startAt) : undefined;
  const runners = Array.from({ length: lt.spec.parallelism }, (_, i) => runnerOf(i, input, startAtMs));
  const done = runners.filter((r) => r.state === 'Succeeded' || r.state === 'Failed');
  if (done.length === runners.length || (startAtMs === undefined && runners.some((r) => r.state === 'Failed'))) {
    return {
      runners,
      next: {
        step: 'merge',
        published: runners.filter((r) => r.published).map((r) => r.index),
        failed: runners.filter((r) => r.state === 'Failed').map((r) => r.index),
      },
    };
  }
  if (startAtMs !== undefined) return { runners, next: { step: 'wait-run', deadlineMs: runDeadlineMs(lt, startAtMs) } };
  const created = job?.metadata?.creationTimestamp
    ? new Date(job.metadata.creationTimestamp as unknown as string).getTime()
    : nowMs;
  const deadlineMs = created + lt.spec.runner.startDeadlineSeconds * 1000;
  const ready = runners.filter((r) => r.state === 'Ready').length;
  if (ready === runners.length) return { runners, next: { step: 'signal', startAtMs: nowMs + START_LEAD_MS } };
  if (nowMs > deadlineMs)
    return {
      runners,
      next: { step: 'fail-start', notReady: runners.filter((r) => r.state !== 'Ready').map((r) => r.index) },
    };
  return { runners, next: { step: 'wait-ready', ready, deadlineMs } };
}
