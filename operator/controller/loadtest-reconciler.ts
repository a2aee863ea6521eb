/**
 * The ArenaLoadTest reconciler (docs/distributed.md, "The operator's loop"):
 * level-based, like the ArenaDeployment reconciler, in numbered steps:
 *
 *   0. read the ArenaLoadTest from the cache; gone, being deleted, or finished
 *      (phase Succeeded or Failed): nothing to do. A finished test is never
 *      started again (its Job may be gone by ttlSecondsAfterFinished): to run
 *      again, create a new ArenaLoadTest.
 *   1. validate the stored spec; invalid: Failed (InvalidSpec)
 *   2. resolve target.deploymentRef from the ArenaDeployment cache; missing:
 *      Pending (DeploymentNotFound), reconciled again when it appears
 *   3. apply the rendered children (renderLoadTest) by server-side apply, each
 *      only when its cached copy lacks a desired field; an object of a child's
 *      name this ArenaLoadTest does not control is not touched: Failed (ChildNotOwned)
 *   4. progress (loadtest-progress.ts, pure) from the cached Job and shard ConfigMaps:
 *      - wait-ready: phase Starting, requeued at the start deadline
 *      - fail-start: Failed (StartDeadlineExceeded, naming the runners not ready), the Job deleted
 *      - signal: status.startAt = now + START_LEAD_MS, phase Running
 *      - wait-run: phase Running, requeued at the run deadline
 *      - merge: phase Merging, the published shards read from the apiserver (not the cache),
 *        merged exactly (loadtest/engine/merge.ts), thresholds evaluated on the merged result, the
 *        merged result.json written to ConfigMap `<name>-result`, status.summary written, phase
 *        Succeeded (every runner published a complete shard) or Failed (RunnerFailed, summary.partial)
 *   5. status through the status subresource, only when it changed; Events on phase changes.
 *
 * Conditions (metav1.Condition, observedGeneration): `Started` (the start signal was given),
 * `Completed` (True once the test has ended, whatever the outcome; the reason says which:
 * Succeeded, RunnerFailed, StartDeadlineExceeded, InvalidSpec, ChildNotOwned, MergeFailed),
 * `ThresholdsPassed` (set by the merge).
 */
import type { Logger } from 'pino';
import type * as k8s from '@kubernetes/client-node';
import { validateLoadTestObject, validateObject } from '../api/v1alpha1/validate.js';
import { API_VERSION, KIND, type ArenaDeployment, type Condition } from '../api/v1alpha1/schema.js';
import { type ArenaLoadTest, type ArenaLoadTestStatus } from '../api/v1alpha1/loadtest-schema.js';
import {
  loadTestDeps,
  loadTestLabels,
  loadTestOwnerReference,
  renderLoadTest,
  runnerName,
  shardConfigMapName,
} from '../render/loadtest.js';
import type { KubeObject } from '../render/index.js';
import { mergeResults } from '../../loadtest/engine/merge.js';
import { parseThresholds, type ThresholdSpec } from '../../loadtest/engine/thresholds.js';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { encodeShardDetailed, shardFromConfigMap, SHARD_KEY, ANNOTATIONS } from '../../loadtest/distributed/shard.js';
import { errText } from '../../lib/errors.js';
import { isSubset } from './compare.js';
import { applyOwned } from './reconciler.js';
import { nowRfc3339, setCondition } from './conditions.js';
import type { KubeObj } from './kube.js';
import { loadTestProgress, type Progress, type RunnerProgress } from './loadtest-progress.js';

/** Label on the ConfigMap holding the merged result.json. */
export const RESULT_LABEL = 'arena.dev/result';

/** `<name>-result`: the ConfigMap with the merged result.json (binaryData result.json.gz). */
export const resultConfigMapName = (name: string) => `${name}-result`;

/** Read access to the informer caches the loadtest controller uses. */
export interface LoadTestCaches {
  loadTest(namespace: string, name: string): KubeObj | undefined;
  arena(namespace: string, name: string): KubeObj | undefined;
  child(apiVersion: string, kind: string, namespace: string, name: string): KubeObj | undefined;
}

/** Every write (and the one uncached read) of the loadtest controller; `Kube` implements it. */
export interface LoadTestWriter {
  /** Server-side apply (field manager arena-operator, force). */
  apply(obj: k8s.KubernetesObject): Promise<unknown>;
  /** Delete (background propagation). */
  delete(obj: k8s.KubernetesObject): Promise<void>;
  /** Server-side apply of an ArenaLoadTest's status subresource. */
  applyLoadTestStatus(namespace: string, name: string, status: ArenaLoadTestStatus): Promise<void>;
  /** GET a ConfigMap from the apiserver (the shard data is not kept in the cache); undefined on 404. */
  getConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined>;
  event(about: KubeObj, type: 'Normal' | 'Warning', reason: string, message: string, instance: string): Promise<void>;
}

export interface LoadTestReconcileResult {
  applied: string[];
  statusWritten: boolean;
  /** Reconcile this key again after this many ms (a deadline to check), if set. */
  requeueAfterMs?: number;
}

type Phase = NonNullable<ArenaLoadTestStatus['phase']>;

/**
 * The threshold specs the runners evaluated, parsed again from shard 0's outcomes (`selector` and
 * `expression`): the scenario file's thresholds merged with spec.thresholds, as `arena loadtest run` has them.
 * @throws ThresholdError when an expression does not parse (it did in the runner).
 */
export function thresholdSpecsOf(shard: LoadTestResult): ThresholdSpec[] {
  const raw: Record<string, string[]> = {};
  for (const t of shard.thresholds) (raw[t.selector] ??= []).push(t.expression);
  return parseThresholds(raw, 'the shard thresholds');
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** status.summary from a merged result (ms, rates 0..1). */
export function summaryOf(
  result: LoadTestResult,
  partial: boolean,
  resultConfigMap: string,
): NonNullable<ArenaLoadTestStatus['summary']> {
  const d = (s: LoadTestResult['all']) => s.metrics['http_req_duration'];
  const first = result.saturation?.saturatesFirst;
  return {
    ...(d(result.all) ? { p99Ms: r3(d(result.all)!.p99) } : {}),
    scenarios: Object.entries(result.scenarios).map(([name, s]) => ({
      name,
      requests: s.counters['http_reqs'] ?? 0,
      p50Ms: r3(d(s)?.p50 ?? 0),
      p95Ms: r3(d(s)?.p95 ?? 0),
      p99Ms: r3(d(s)?.p99 ?? 0),
      maxMs: r3(d(s)?.max ?? 0),
      errorRate: r3(s.http_req_failed),
    })),
    errorRate: r3(result.all.http_req_failed),
    droppedIterations: result.all.counters['dropped_iterations'] ?? 0,
    thresholds: result.thresholds.map((t) => ({
      selector: t.selector,
      expression: t.expression,
      status: t.status,
      ...(t.value !== null ? { value: r3(t.value) } : {}),
    })),
    thresholdsPassed: result.passed,
    ...(first
      ? {
          firstSaturatingPool: {
            pool: first.pool,
            peakUtilization: r3(first.peakUtilization),
            ...(first.atMs !== null && first.atMs !== undefined ? { atMs: Math.round(first.atMs) } : {}),
          },
        }
      : {}),
    partial,
    resultConfigMap,
  };
}

export class LoadTestReconciler {
  constructor(
    private readonly writer: LoadTestWriter,
    private readonly caches: LoadTestCaches,
    private readonly log: Logger,
    private readonly instance: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Reconcile one ArenaLoadTest by `namespace/name`. Throws on apiserver errors (the queue retries with backoff). */
  async reconcile(key: string): Promise<LoadTestReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const result: LoadTestReconcileResult = { applied: [], statusWritten: false };
    // 0. Read; a finished test stays as it is.
    const live = this.caches.loadTest(namespace, name);
    if (!live || live.metadata?.deletionTimestamp) return result;
    const prev = (live.status ?? {}) as ArenaLoadTestStatus;
    if (prev.phase === 'Succeeded' || prev.phase === 'Failed') return result;
    const ctx = new StatusBuilder(live, prev, this.clock());

    // 1 and 2.
    const inputs = await this.inputs(live, ctx, result);
    if ('done' in inputs) return inputs.done;
    const { lt, deployment } = inputs;

    // 3. Apply the children.
    let desired: KubeObject[];
    try {
      desired = renderLoadTest(lt, loadTestDeps(lt, live.metadata!.uid!, deployment));
    } catch (e) {
      return this.finish(ctx, result, 'Failed', 'InvalidSpec', errText(e));
    }
    const uid = live.metadata!.uid!;
    const { applied, conflicts } = await applyOwned(desired, namespace, uid, this.caches.child, (o) =>
      this.writer.apply(o),
    );
    result.applied.push(...applied);
    if (conflicts.length) {
      const msg = `objects exist with the names of children but are not owned by this ArenaLoadTest: ${conflicts.join(', ')}`;
      return this.finish(ctx, result, 'Failed', 'ChildNotOwned', msg);
    }

    // 4. Progress.
    const shards = new Map<number, KubeObj>();
    for (let i = 0; i < lt.spec.parallelism; i++) {
      const cm = this.caches.child('v1', 'ConfigMap', namespace, shardConfigMapName(lt, i));
      if (cm) shards.set(i, cm);
    }
    const job = this.caches.child('batch/v1', 'Job', namespace, runnerName(lt));
    const progress = loadTestProgress({ lt, status: prev, job, shards, nowMs: ctx.nowMs });
    ctx.runners(progress.runners);
    return this.step(lt, live, ctx, progress, result);
  }

  /**
   * Steps 1 and 2: the validated spec and the ArenaDeployment of target.deploymentRef, or the
   * result of a pass that ends here (invalid spec: Failed; ArenaDeployment missing or invalid: Pending).
   */
  private async inputs(
    live: KubeObj,
    ctx: StatusBuilder,
    result: LoadTestReconcileResult,
  ): Promise<{ lt: ArenaLoadTest; deployment?: ArenaDeployment } | { done: LoadTestReconcileResult }> {
    const { name, namespace } = live.metadata as { name: string; namespace: string };
    const meta = (o: KubeObj) => ({
      name: o.metadata!.name,
      namespace,
      labels: o.metadata?.labels,
      annotations: o.metadata?.annotations,
    });
    const checked = validateLoadTestObject(
      structuredClone({ apiVersion: live.apiVersion, kind: live.kind, metadata: meta(live), spec: live.spec }),
    );
    if (!checked.object) {
      const errors = checked.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      return { done: await this.finish(ctx, result, 'Failed', 'InvalidSpec', errors) };
    }
    const lt = checked.object;
    const ref = lt.spec.target.deploymentRef;
    if (!ref) return { lt };
    const ad = this.caches.arena(namespace, ref.name);
    const v = ad
      ? validateObject(structuredClone({ apiVersion: API_VERSION, kind: KIND, metadata: meta(ad), spec: ad.spec }))
      : undefined;
    if (v?.object) return { lt, deployment: v.object };
    const why = ad ? `is not valid (${v!.errors[0]?.path}: ${v!.errors[0]?.message})` : 'does not exist';
    ctx.phase('Pending');
    ctx.condition(
      'Completed',
      false,
      'DeploymentNotFound',
      `spec.target.deploymentRef: the ArenaDeployment ${namespace}/${ref.name} ${why} (${name} waits for it)`,
    );
    result.statusWritten = await this.write(live, ctx);
    return { done: result };
  }

  /** Step 4: act on the next step loadTestProgress decided. */
  private async step(
    lt: ArenaLoadTest,
    live: KubeObj,
    ctx: StatusBuilder,
    progress: Progress,
    result: LoadTestReconcileResult,
  ): Promise<LoadTestReconcileResult> {
    const next = progress.next;
    const n = lt.spec.parallelism;
    switch (next.step) {
      case 'wait-ready':
        ctx.phase('Starting');
        ctx.condition('Started', false, 'WaitingForRunners', `${next.ready} of ${n} runners ready`);
        ctx.condition('Completed', false, 'Starting', 'waiting for every runner to be ready');
        result.requeueAfterMs = Math.max(1000, next.deadlineMs - ctx.nowMs + 500);
        result.statusWritten = await this.write(live, ctx);
        return result;
      case 'fail-start': {
        const names = next.notReady.map((i) => `runner ${i}`).join(', ');
        const msg = `${names} not ready within spec.runner.startDeadlineSeconds (${lt.spec.runner.startDeadlineSeconds} s)`;
        ctx.condition('Started', false, 'StartDeadlineExceeded', msg);
        await this.stopRunners(lt);
        return this.finish(ctx, result, 'Failed', 'StartDeadlineExceeded', msg);
      }
      case 'signal': {
        const startAt = new Date(next.startAtMs).toISOString();
        ctx.startAt(startAt);
        ctx.runners(progress.runners.map((r) => (r.state === 'Ready' ? { ...r, state: 'Running' } : r)));
        ctx.phase('Running');
        ctx.condition('Started', true, 'StartSignalGiven', `every runner ready; the schedule starts at ${startAt}`);
        ctx.condition('Completed', false, 'Running', `${n} runners running`);
        result.statusWritten = await this.write(live, ctx);
        await this.writer.event(
          live,
          'Normal',
          'Started',
          `start signal given: ${n} runners start at ${startAt}`,
          this.instance,
        );
        return result;
      }
      case 'wait-run':
        ctx.phase('Running');
        ctx.condition(
          'Completed',
          false,
          'Running',
          `${progress.runners.filter((r) => r.state === 'Succeeded').length} of ${n} runners published`,
        );
        result.requeueAfterMs = Math.max(1000, next.deadlineMs - ctx.nowMs + 500);
        result.statusWritten = await this.write(live, ctx);
        return result;
      case 'merge':
        return this.merge(lt, live, ctx, progress.runners, next.published, result);
    }
  }

  /** Step 4, merge: read the published shards, merge them, write the result ConfigMap and the summary. */
  private async merge(
    lt: ArenaLoadTest,
    live: KubeObj,
    ctx: StatusBuilder,
    runners: RunnerProgress[],
    published: number[],
    result: LoadTestReconcileResult,
  ): Promise<LoadTestReconcileResult> {
    const failed = runners.filter((r) => r.state === 'Failed');
    const failedText = failed.map((r) => r.message ?? `runner ${r.index} failed`).join('; ');
    if (published.length === 0) {
      // a runner failed before the start: the others are still waiting for a signal that will not come
      if (runners.some((r) => r.state !== 'Failed')) await this.stopRunners(lt);
      return this.finish(ctx, result, 'Failed', 'RunnerFailed', failedText || 'no runner published a shard');
    }
    if (ctx.currentPhase !== 'Merging') {
      ctx.phase('Merging');
      ctx.condition('Completed', false, 'Merging', `merging ${published.length} shards`);
      await this.write(live, ctx);
    }
    const namespace = live.metadata!.namespace!;
    const shards: LoadTestResult[] = [];
    try {
      for (const i of published) {
        const cm = await this.writer.getConfigMap(namespace, shardConfigMapName(lt, i));
        if (!cm) throw new Error(`the shard ConfigMap ${shardConfigMapName(lt, i)} is gone`);
        shards.push(shardFromConfigMap(cm));
      }
    } catch (e) {
      return this.finish(ctx, result, 'Failed', 'MergeFailed', `reading the shards: ${errText(e)}`);
    }
    const { result: merged } = mergeResults(shards, thresholdSpecsOf(shards[0]!));
    const partial = failed.length > 0 || merged.status === 'partial';
    if (failed.length > 0) {
      merged.status = 'partial';
      merged.partialReason = [merged.partialReason, failedText].filter(Boolean).join('; ');
    }
    const cmName = resultConfigMapName(lt.metadata.name);
    const enc = encodeShardDetailed(merged);
    await this.writer.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: cmName,
        namespace,
        labels: { ...loadTestLabels(lt), [RESULT_LABEL]: 'true' },
        annotations: {
          [ANNOTATIONS.status]: merged.status,
          [ANNOTATIONS.encodedBytes]: String(enc.data.length),
          ...(enc.droppedSecondHistograms ? { [ANNOTATIONS.secondHistograms]: 'dropped' } : {}),
        },
        ownerReferences: [loadTestOwnerReference(lt, live.metadata!.uid!)],
      },
      binaryData: { [SHARD_KEY]: enc.data },
    } as k8s.KubernetesObject);
    result.applied.push(`ConfigMap/${cmName}`);
    ctx.summary(summaryOf(merged, partial, cmName));
    ctx.condition(
      'ThresholdsPassed',
      merged.passed,
      merged.passed ? 'AllPassed' : 'ThresholdFailed',
      merged.thresholds.length === 0
        ? 'no thresholds'
        : `${merged.thresholds.filter((t) => t.status === 'pass').length} of ${merged.thresholds.length} thresholds passed on the merged result`,
    );
    if (failed.length > 0) {
      return this.finish(
        ctx,
        result,
        'Failed',
        'RunnerFailed',
        `${failedText}; the summary covers the ${published.length} shards that published (partial)`,
      );
    }
    const p99 = merged.all.metrics['http_req_duration']?.p99;
    const msg = `${published.length} shards merged: P99 ${p99 !== undefined ? r3(p99) : '-'} ms, thresholds ${merged.passed ? 'passed' : 'failed'}${merged.status === 'partial' ? ' (some shard ended early: partial)' : ''}`;
    return this.finish(ctx, result, 'Succeeded', 'Succeeded', msg);
  }

  /** Delete the runner Job (its pods stop): after a failure, runners still waiting or running are of no use. */
  private async stopRunners(lt: ArenaLoadTest): Promise<void> {
    if (!this.caches.child('batch/v1', 'Job', lt.metadata.namespace!, runnerName(lt))) return;
    await this.writer
      .delete({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: runnerName(lt), namespace: lt.metadata.namespace },
      })
      .catch((e: unknown) => {
        if ((e as { code?: number }).code !== 404) throw e;
      });
  }

  /** Set the terminal phase and Completed=True, write the status, record an Event. */
  private async finish(
    ctx: StatusBuilder,
    result: LoadTestReconcileResult,
    phase: 'Succeeded' | 'Failed',
    reason: string,
    message: string,
  ): Promise<LoadTestReconcileResult> {
    ctx.phase(phase);
    ctx.condition('Completed', true, reason, message);
    result.statusWritten = await this.write(ctx.live, ctx);
    const type = phase === 'Succeeded' ? 'Normal' : 'Warning';
    await this.writer.event(ctx.live, type, phase === 'Succeeded' ? 'Succeeded' : reason, message, this.instance);
    this.log.info({ loadtest: `${ctx.live.metadata!.namespace}/${ctx.live.metadata!.name}`, phase, reason }, message);
    return result;
  }

  private async write(live: KubeObj, ctx: StatusBuilder): Promise<boolean> {
    const next = ctx.build();
    if (isSubset(next, ctx.prev) && isSubset(ctx.prev, next)) return false;
    await this.writer.applyLoadTestStatus(live.metadata!.namespace!, live.metadata!.name!, next);
    ctx.prev = next;
    return true;
  }
}

/** The status being built by one reconcile: the previous one with this pass's changes. */
class StatusBuilder {
  private next: ArenaLoadTestStatus;
  readonly nowMs: number;
  private readonly now: string;

  constructor(
    readonly live: KubeObj,
    public prev: ArenaLoadTestStatus,
    nowMs: number,
  ) {
    this.nowMs = nowMs;
    this.now = nowRfc3339(new Date(nowMs));
    this.next = { ...prev, observedGeneration: live.metadata?.generation ?? 0 };
  }

  get currentPhase(): Phase | undefined {
    return this.next.phase;
  }

  phase(p: Phase): void {
    this.next.phase = p;
  }

  startAt(t: string): void {
    this.next.startAt = t;
  }

  summary(s: NonNullable<ArenaLoadTestStatus['summary']>): void {
    this.next.summary = s;
  }

  runners(rs: RunnerProgress[]): void {
    this.next.runners = rs.map((r) => ({
      index: r.index,
      state: r.state,
      ...(r.message ? { message: r.message.slice(0, 1024) } : {}),
    }));
  }

  condition(type: string, status: boolean, reason: string, message: string): void {
    this.next.conditions = setCondition(
      this.next.conditions as Condition[] | undefined,
      {
        type,
        status: status ? 'True' : 'False',
        reason,
        message: message.slice(0, 32768),
        observedGeneration: this.next.observedGeneration ?? 0,
      },
      this.now,
    );
  }

  build(): ArenaLoadTestStatus {
    return structuredClone(this.next);
  }
}
