/**
 * Unit tests of the reconciler with a fake ReconcileWriter that records every write,
 * and reads from plain in-memory objects shaped like the informer caches. No
 * apiserver: e2e.test.ts runs the same behaviour against a real control plane.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { parse } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ArenaDeploymentStatus, Condition, Finding } from '../api/v1alpha1/schema.js';
import { validateObject } from '../api/v1alpha1/validate.js';
import { plan } from '../planner/plan.js';
import { repoPath } from '../../testing/paths.js';
import type { KubeObj, ReconcileWriter } from './kube.js';
import { OperatorMetrics } from './metrics.js';
import { desiredChildren, Reconciler, type Caches } from './reconciler.js';
import { computeConditions, type Readiness } from './status.js';

type Call =
  | { verb: 'apply'; obj: KubernetesObject }
  | { verb: 'delete'; obj: KubernetesObject }
  | { verb: 'status'; namespace: string; name: string; status: ArenaDeploymentStatus }
  | { verb: 'event'; type: string; reason: string; message: string };

/** The only fake: records every write, in order. */
class RecordingWriter implements ReconcileWriter {
  readonly calls: Call[] = [];
  async apply(obj: KubernetesObject): Promise<unknown> {
    this.calls.push({ verb: 'apply', obj: structuredClone(obj) });
    return obj;
  }
  async delete(obj: KubernetesObject): Promise<void> {
    this.calls.push({ verb: 'delete', obj: structuredClone(obj) });
  }
  async applyStatus(namespace: string, name: string, status: ArenaDeploymentStatus): Promise<void> {
    this.calls.push({ verb: 'status', namespace, name, status: structuredClone(status) });
  }
  async event(_about: KubeObj, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.calls.push({ verb: 'event', type, reason, message });
  }
  of<V extends Call['verb']>(verb: V): Extract<Call, { verb: V }>[] {
    return this.calls.filter((c): c is Extract<Call, { verb: V }> => c.verb === verb);
  }
  names(verb: 'apply' | 'delete'): string[] {
    return this.of(verb).map((c) => `${c.obj.kind}/${c.obj.metadata?.name}`);
  }
}

const NS = 'arena';
const UID = 'uid-ours';
const MANAGED = { 'app.kubernetes.io/managed-by': 'arena-operator' };

/** A stored ArenaDeployment as the informer caches it: a sample with server-set metadata. */
function stored(sample: string, edit: (spec: any) => void = () => undefined, name?: string): KubeObj {
  const obj = parse(readFileSync(repoPath('samples', sample), 'utf8'));
  if (name) obj.metadata.name = name;
  edit(obj.spec);
  Object.assign(obj.metadata, {
    uid: UID,
    generation: 3,
    resourceVersion: '100',
    creationTimestamp: '2026-01-01T00:00:00Z',
  });
  return obj;
}

/** The children the reconciler would apply for `arena` (its spec must be feasible). */
function childrenOf(arena: KubeObj): KubeObj[] {
  const ad = validateObject(structuredClone(arena)).object!;
  return desiredChildren(arena, ad, plan(ad)) as KubeObj[];
}

/**
 * A child as the informer sees it once applied: server-set metadata, a defaulted field
 * the operator does not set, and a status (workloads rolled out and ready).
 */
function asLive(child: KubeObj): KubeObj {
  const o = structuredClone(child) as any;
  Object.assign(o.metadata, { uid: `uid-${o.kind}-${o.metadata.name}`, resourceVersion: '7', generation: 1 });
  o.metadata.managedFields = [{ manager: 'arena-operator', operation: 'Apply' }];
  if (o.kind === 'Deployment' || o.kind === 'StatefulSet') {
    o.spec.revisionHistoryLimit = 10;
    const n = o.spec.replicas ?? 1;
    o.status = { observedGeneration: 1, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n };
  }
  return o;
}

/** Read access over plain objects, as the informer caches give it. */
function cachesOf(arena: KubeObj, children: KubeObj[]): Caches {
  const of = (apiVersion: string, kind: string, ns: string) => (o: KubeObj) =>
    o.apiVersion === apiVersion && o.kind === kind && o.metadata?.namespace === ns;
  return {
    arena: (ns, name) => (arena.metadata?.namespace === ns && arena.metadata?.name === name ? arena : undefined),
    child: (apiVersion, kind, ns, name) =>
      children.filter(of(apiVersion, kind, ns)).find((o) => o.metadata?.name === name),
    children: (apiVersion, kind, ns) => children.filter(of(apiVersion, kind, ns)),
  };
}

async function reconcile(arena: KubeObj, children: KubeObj[], writer = new RecordingWriter()) {
  const r = new Reconciler(
    writer,
    cachesOf(arena, children),
    new OperatorMetrics(),
    pino({ level: 'silent' }),
    'test-instance',
  );
  const result = await r.reconcile(`${arena.metadata!.namespace}/${arena.metadata!.name}`);
  return { result, writer };
}

const condition = (s: ArenaDeploymentStatus | undefined, type: string) => s?.conditions?.find((c) => c.type === type);
/** `[status, reason]` of a condition. */
const stateOf = (s: ArenaDeploymentStatus | undefined, type: string) => [
  condition(s, type)?.status,
  condition(s, type)?.reason,
];
/** An ownerReference to an ArenaDeployment. */
const arenaRef = (name: string, uid: string, controller?: boolean) => ({
  apiVersion: 'arena.dev/v1alpha1',
  kind: 'ArenaDeployment',
  name,
  uid,
  controller,
});

test('a fresh ArenaDeployment: every child applied in render order with our ownerReference, then status and Events', async () => {
  const arena = stored('debate-arena-holds.yaml');
  const { result, writer } = await reconcile(arena, []);
  const expected = childrenOf(arena).map((o) => `${o.kind}/${o.metadata!.name}`);
  assert.deepEqual(writer.names('apply'), expected);
  assert.deepEqual(result.applied, expected);
  for (const c of writer.of('apply')) {
    assert.deepEqual(c.obj.metadata?.ownerReferences, [
      { ...arenaRef('debate-arena-holds', UID, true), blockOwnerDeletion: true },
    ]);
  }
  assert.deepEqual(
    writer.calls.map((c) => c.verb),
    [...expected.map(() => 'apply'), 'status', 'event'],
  );
  const status = writer.of('status')[0]!.status;
  assert.deepEqual(
    status.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
    [
      ['Planned', 'True', 'PlanComputed', 3],
      ['Progressing', 'True', 'ChildrenApplied', 3],
      ['Degraded', 'False', 'AsExpected', 3],
      ['Ready', 'False', 'ChildrenNotReady', 3],
    ],
  );
  assert.equal(status.observedGeneration, 3);
  assert.deepEqual(
    writer.of('event').map((e) => [e.type, e.reason]),
    [['Normal', 'PlanComputed']],
  );
});

test('an infeasible plan: Planned=False with the finding code, the last good children kept (nothing applied or deleted)', async () => {
  // debate-arena was running with a feasible spec (its children are cached); now its spec is samples/debate-arena.yaml.
  const lastGood = childrenOf(stored('debate-arena-holds.yaml', () => undefined, 'debate-arena')).map(asLive);
  const leftover = asLive({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'debate-arena-old', namespace: NS, labels: MANAGED },
  });
  leftover.metadata!.ownerReferences = [arenaRef('debate-arena', UID, true)];
  const arena = stored('debate-arena.yaml');
  const { result, writer } = await reconcile(arena, [...lastGood, leftover]);

  assert.deepEqual(writer.of('apply'), [], 'nothing re-applied');
  assert.deepEqual(writer.of('delete'), [], 'nothing pruned, not even a child no longer desired');
  assert.deepEqual([result.applied, result.pruned, result.statusWritten], [[], [], true]);
  const status = writer.of('status')[0]!.status;
  const planned = condition(status, 'Planned')!;
  assert.deepEqual([planned.status, planned.reason], ['False', 'LLMRateLimitBound']);
  assert.match(planned.message, /\(and 2 more error finding\(s\); see status\.findings\)$/);
  assert.deepEqual(stateOf(status, 'Progressing'), ['False', 'PlanInfeasible']);
  assert.deepEqual(stateOf(status, 'Degraded'), ['True', 'PlanInfeasible']);
  assert.deepEqual(stateOf(status, 'Ready'), ['True', 'AllChildrenReady'], 'the kept children still serve');
  assert.ok(status.findings?.some((f) => f.code === 'QueueUnstable'));
  const events = writer.of('event').map((e) => `${e.type} ${e.reason}`);
  assert.deepEqual(events, ['Warning LLMRateLimitBound', 'Warning PlanInfeasible', 'Normal AllChildrenReady']);
});

test("an object of a child's name controlled by someone else is a conflict: not applied, not pruned, Degraded=ChildNotOwned", async () => {
  const arena = stored('debate-arena-holds.yaml');
  const desired = childrenOf(arena);
  const svc = asLive(desired.find((o) => o.kind === 'Service' && o.metadata!.name === 'debate-arena-holds-api')!);
  // Another ArenaDeployment of the same name (an earlier incarnation, another UID).
  svc.metadata!.ownerReferences = [arenaRef('debate-arena-holds', 'uid-other', true)];
  svc.spec = { ...(svc.spec as object), ports: [{ port: 1 }] };
  const pdb = asLive(
    desired.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata!.name === 'debate-arena-holds-api')!,
  );
  // Another controller altogether.
  pdb.metadata!.ownerReferences = [
    { apiVersion: 'example.com/v1', kind: 'Release', name: 'x', uid: 'uid-release', controller: true },
  ];
  const { result, writer } = await reconcile(arena, [svc, pdb]);

  const conflicting = ['Service/debate-arena-holds-api', 'PodDisruptionBudget/debate-arena-holds-api'];
  const others = desired.map((o) => `${o.kind}/${o.metadata!.name}`).filter((n) => !conflicting.includes(n));
  assert.deepEqual(writer.names('apply'), others, 'every other child applied, the conflicting ones not');
  assert.deepEqual(result.applied, others);
  assert.deepEqual(writer.of('delete'), [], "someone else's objects are never pruned");
  const status = writer.of('status')[0]!.status;
  const degraded = condition(status, 'Degraded')!;
  assert.deepEqual([degraded.status, degraded.reason], ['True', 'ChildNotOwned']);
  assert.ok(
    degraded.message.endsWith(`not owned by this ArenaDeployment: ${conflicting.join(', ')}`),
    degraded.message,
  );
  assert.deepEqual(stateOf(status, 'Ready'), ['False', 'ChildrenNotReady']);
  assert.ok(writer.of('event').some((e) => e.type === 'Warning' && e.reason === 'ChildNotOwned'));
});

test('pruning deletes our children that are no longer desired, and never an object that is not ours', async () => {
  const before = stored('debate-arena-holds.yaml');
  const running = childrenOf(before).map(asLive);
  const configMap = (name: string, ownerReferences?: any[], labels: Record<string, string> = MANAGED) => {
    const metadata = { name, namespace: NS, labels, ...(ownerReferences ? { ownerReferences } : {}) };
    return asLive({ apiVersion: 'v1', kind: 'ConfigMap', metadata });
  };
  const ref = (uid: string, controller?: boolean) => arenaRef('debate-arena-holds', uid, controller);
  const notOurs = [
    configMap('debate-arena-holds-other', [ref('uid-other', true)]), // another owner's
    configMap('debate-arena-holds-orphan'), // no owner
    configMap('debate-arena-holds-not-controller', [ref(UID)]), // ours as an owner, but not as its controller
    configMap('debate-arena-holds-relabelled', [ref(UID, true)], { 'app.kubernetes.io/managed-by': 'someone-else' }), // not managed by us
  ];
  const arena = stored('debate-arena-holds.yaml', (spec) =>
    Object.assign(spec.redis, { managed: false, host: 'redis.example.svc' }),
  );
  arena.metadata!.generation = 4;
  arena.status = (await reconcile(before, running)).writer.of('status')[0]!.status; // the status of the running generation
  const { result, writer } = await reconcile(arena, [...running, ...notOurs]);

  const redis = [
    'ConfigMap/debate-arena-holds-redis',
    'StatefulSet/debate-arena-holds-redis',
    'Service/debate-arena-holds-redis',
  ];
  assert.deepEqual(writer.names('delete'), redis, 'exactly the Redis children, in child-kind order');
  assert.deepEqual(result.pruned, redis);
  for (const c of writer.of('delete')) assert.deepEqual(Object.keys(c.obj.metadata!), ['name', 'namespace']);
  assert.deepEqual(writer.names('apply'), ['Deployment/debate-arena-holds-api'], 'REDIS_URL changed; nothing else did');
  const verbs = writer.calls.map((c) => (c.verb === 'event' ? `event:${c.reason}` : c.verb));
  assert.deepEqual(verbs, ['apply', 'delete', 'delete', 'delete', 'status', 'event:Pruned']);
  const pruned = writer.of('event').at(-1)!;
  assert.equal(pruned.message, `deleted children no longer desired: ${redis.join(', ')}`);
  const progressing = condition(writer.of('status')[0]!.status, 'Progressing')!;
  assert.deepEqual(
    [progressing.status, progressing.reason, progressing.message],
    ['True', 'ChildrenApplied', 'applied 1, pruned 3'],
  );
});

test('a no-op reconcile (live children and status as desired) makes zero writes', async () => {
  const arena = stored('debate-arena-holds.yaml');
  const live = childrenOf(arena).map(asLive);
  // The children are in place and ready: no apply, no delete; only the status the previous pass would have written.
  const first = await reconcile(arena, live);
  assert.deepEqual(
    first.writer.calls.filter((c) => c.verb === 'apply' || c.verb === 'delete'),
    [],
  );
  assert.equal(first.writer.of('status').length, 1);
  // The informer now holds that status: the next pass has nothing to do.
  arena.status = first.writer.of('status')[0]!.status;
  const second = await reconcile(arena, live);
  assert.deepEqual(second.writer.calls, [], 'no write of any kind');
  assert.deepEqual(second.result, { applied: [], pruned: [], statusWritten: false });
  assert.deepEqual(condition(arena.status as ArenaDeploymentStatus, 'Progressing')?.reason, 'Stable');
  assert.deepEqual(condition(arena.status as ArenaDeploymentStatus, 'Ready')?.reason, 'AllChildrenReady');
});

test('an ArenaDeployment that is gone or being deleted makes no write', async () => {
  const arena = stored('debate-arena-holds.yaml');
  arena.metadata!.deletionTimestamp = new Date();
  assert.deepEqual((await reconcile(arena, childrenOf(arena))).writer.calls, []);
  const writer = new RecordingWriter();
  const r = new Reconciler(
    writer,
    cachesOf(arena, []),
    new OperatorMetrics(),
    pino({ level: 'silent' }),
    'test-instance',
  );
  assert.deepEqual(await r.reconcile(`${NS}/missing`), { applied: [], pruned: [], statusWritten: false });
  assert.deepEqual(writer.calls, []);
});

test('a failed write stops the pass (the work queue retries it): nothing after it is written', async () => {
  const writer = new RecordingWriter();
  let n = 0;
  writer.apply = async (obj) => {
    if (++n === 2) throw new Error('apiserver says no');
    writer.calls.push({ verb: 'apply', obj });
    return obj;
  };
  await assert.rejects(reconcile(stored('debate-arena-holds.yaml'), [], writer), /apiserver says no/);
  assert.deepEqual(
    writer.calls.map((c) => c.verb),
    ['apply'],
  );
});

// computeConditions: a pure function of plain inputs.

const ready: Readiness = { ready: true, rolledOut: true, replicas: 2, message: 'all children are ready' };
const finding = (code: string): Finding => ({ code, severity: 'error', message: `${code} message` });
const feasible = {
  generation: 5,
  outcome: 'feasible',
  replicas: { min: 2, max: 9 },
  warnings: 1,
  applied: 0,
  pruned: 0,
} as const;
/** Each condition as `Type=Status Reason @observedGeneration lastTransitionTime`. */
const summary = (list: Condition[]) =>
  list.map((c) => `${c.type}=${c.status} ${c.reason} @${c.observedGeneration} ${c.lastTransitionTime}`);

test('conditions: a feasible, stable, ready plan', () => {
  const list = computeConditions({ ...feasible, conflicts: [], readiness: ready }, undefined, 't1');
  assert.deepEqual(summary(list), [
    'Planned=True PlanComputed @5 t1',
    'Progressing=False Stable @5 t1',
    'Degraded=False AsExpected @5 t1',
    'Ready=True AllChildrenReady @5 t1',
  ]);
  assert.equal(list[0]!.message, 'maxReplicas 9, minReplicas 2, 1 warning(s)');
  assert.equal(list[1]!.message, 'every child matches the plan');
});

test('conditions: Progressing says ChildrenApplied when this pass wrote, RollingOut while a workload rolls out', () => {
  const applied = computeConditions(
    { ...feasible, conflicts: [], applied: 2, pruned: 1, readiness: ready },
    undefined,
    't1',
  );
  assert.deepEqual(
    [applied[1]!.status, applied[1]!.reason, applied[1]!.message],
    ['True', 'ChildrenApplied', 'applied 2, pruned 1'],
  );
  const rolling = { ready: false, rolledOut: false, replicas: 0, message: 'Deployment x-api has no available replica' };
  const list = computeConditions({ ...feasible, conflicts: [], readiness: rolling }, undefined, 't1');
  assert.deepEqual([list[1]!.status, list[1]!.reason, list[1]!.message], ['True', 'RollingOut', rolling.message]);
  assert.deepEqual(
    [list[3]!.status, list[3]!.reason, list[3]!.message],
    ['False', 'ChildrenNotReady', rolling.message],
  );
});

test('conditions: a conflict is Degraded=True ChildNotOwned and keeps Ready False even when the children are ready', () => {
  const list = computeConditions(
    { ...feasible, conflicts: ['Service/a', 'ConfigMap/b'], readiness: ready },
    undefined,
    't1',
  );
  assert.deepEqual(summary(list).slice(2), ['Degraded=True ChildNotOwned @5 t1', 'Ready=False ChildrenNotReady @5 t1']);
  assert.match(list[2]!.message, /: Service\/a, ConfigMap\/b$/);
});

test('conditions: an infeasible plan names the first error finding and counts the others', () => {
  const infeasible = { generation: 2, outcome: 'infeasible', readiness: ready } as const;
  const one = computeConditions({ ...infeasible, errorFindings: [finding('LLMRateLimitBound')] }, undefined, 't1');
  assert.deepEqual(summary(one), [
    'Planned=False LLMRateLimitBound @2 t1',
    'Progressing=False PlanInfeasible @2 t1',
    'Degraded=True PlanInfeasible @2 t1',
    'Ready=True AllChildrenReady @2 t1',
  ]);
  assert.equal(one[0]!.message, 'LLMRateLimitBound message');
  const three = computeConditions(
    { ...infeasible, errorFindings: [finding('A'), finding('B'), finding('C')] },
    undefined,
    't1',
  );
  assert.deepEqual(
    [three[0]!.reason, three[0]!.message],
    ['A', 'A message (and 2 more error finding(s); see status.findings)'],
  );
});

test('conditions: an invalid spec sets Planned and Degraded only; lastTransitionTime moves only where the status changed', () => {
  const before = computeConditions({ ...feasible, conflicts: [], readiness: ready }, undefined, 't1');
  const after = computeConditions(
    { generation: 6, outcome: 'invalid', errors: 'spec.api.port: must be >= 1' },
    before,
    't2',
  );
  assert.deepEqual(summary(after), [
    'Planned=False InvalidSpec @6 t2',
    'Progressing=False Stable @5 t1',
    'Degraded=True InvalidSpec @6 t2',
    'Ready=True AllChildrenReady @5 t1',
  ]);
  assert.equal(after[0]!.message, 'spec.api.port: must be >= 1');
  const again = computeConditions(
    { ...feasible, conflicts: [], generation: 7, applied: 1, readiness: ready },
    after,
    't3',
  );
  assert.deepEqual(summary(again), [
    'Planned=True PlanComputed @7 t3',
    'Progressing=True ChildrenApplied @7 t3',
    'Degraded=False AsExpected @7 t3',
    'Ready=True AllChildrenReady @7 t1',
  ]);
  assert.deepEqual(
    before.map((c) => c.lastTransitionTime),
    ['t1', 't1', 't1', 't1'],
    'the input list is not modified',
  );
});
