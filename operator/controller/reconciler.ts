/**
 * The ArenaDeployment reconciler: level-based and idempotent. `reconcile()` runs
 * numbered steps, in the style of a kubebuilder Reconcile:
 *
 *   0. read the ArenaDeployment from the cache; gone or being deleted: nothing to do
 *      (the garbage collector removes the children through their ownerReferences)
 *   1. validate the stored spec (defaults, typed spec); invalid: Planned=False InvalidSpec, stop
 *   2. plan (pure); error findings: Planned=False (reason = the first finding's code),
 *      apply and prune nothing, keep the last good children as they are
 *   3. apply: desired children = render(plan) + ownerReferences; for each, skip it when
 *      the live object (cache) already holds every desired field, refuse to touch an
 *      object of its name we do not control (a conflict), else server-side apply
 *      (field manager arena-operator, force)
 *   4. prune: delete our children that are no longer desired (for example redis.managed: false)
 *   5. status: conditions from `computeConditions` (status.ts, pure), observedGeneration and
 *      the plan summary, written through the status subresource only when it changed;
 *      Events on transitions, and `Pruned` after a prune.
 *
 * Every write goes through a `ReconcileWriter` (kube.ts); every read through `Caches`.
 * A reconcile that finds nothing to change sends no write request.
 */
import type { Logger } from 'pino';
import { validateObject } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment, ArenaDeploymentStatus, Finding } from '../api/v1alpha1/schema.js';
import { plan as computePlan } from '../planner/plan.js';
import type { CapacityPlan } from '../planner/types.js';
import { render, type KubeObject } from '../render/index.js';
import { MANAGED_BY, objectName, selectorLabels } from '../render/names.js';
import { isSubset } from './compare.js';
import { findCondition, nowRfc3339, transitionEvent, type ConditionType } from './conditions.js';
import { ARENA, CHILD_KINDS, kindKey } from './kinds.js';
import type { KubeObj, ReconcileWriter } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import { computeConditions, type ConditionInputs, type Readiness } from './status.js';

/** Read access to the informer caches. */
export interface Caches {
  arena(namespace: string, name: string): KubeObj | undefined;
  child(apiVersion: string, kind: string, namespace: string, name: string): KubeObj | undefined;
  children(apiVersion: string, kind: string, namespace: string): readonly KubeObj[];
}

export interface ReconcileResult {
  applied: string[];
  pruned: string[];
  statusWritten: boolean;
}

/** The ownerReference every child carries (controller=true: one controlling owner). */
export function ownerReference(ad: KubeObj) {
  const { name, uid } = ad.metadata!;
  return {
    apiVersion: ARENA.apiVersion,
    kind: ARENA.kind,
    name: name!,
    uid: uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when `obj` is controlled by the ArenaDeployment with this uid. */
export function ownedBy(obj: KubeObj, uid: string): boolean {
  return (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

/** The children a feasible plan calls for, in apply order, each with the ownerReference to `live`. */
export function desiredChildren(live: KubeObj, ad: ArenaDeployment, p: CapacityPlan): KubeObject[] {
  return render(ad, p).map(
    (o) => ({ ...o, metadata: { ...o.metadata, ownerReferences: [ownerReference(live)] } }) as KubeObject,
  );
}

const label = (o: { kind: string; metadata: { name?: string } }) => `${o.kind}/${o.metadata.name}`;

export class Reconciler {
  constructor(
    private readonly writer: ReconcileWriter,
    private readonly caches: Caches,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
    private readonly instance: string,
  ) {}

  /** Reconcile one ArenaDeployment by `namespace/name`. Throws on apiserver errors (the queue retries with backoff). */
  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const result: ReconcileResult = { applied: [], pruned: [], statusWritten: false };
    // 0. Read.
    const live = this.caches.arena(namespace, name);
    if (!live || live.metadata?.deletionTimestamp) {
      this.forgetPlanMetrics(namespace, name);
      return result; // deleted: the garbage collector removes the children through their ownerReferences
    }
    const generation = live.metadata?.generation ?? 0;
    const prev = (live.status ?? {}) as ArenaDeploymentStatus;
    const now = nowRfc3339();

    // 1. Validate.
    const checked = validateStored(live, namespace, name);
    if (!checked.object) {
      const errors = checked.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      const conditions = computeConditions({ generation, outcome: 'invalid', errors }, prev.conditions, now);
      result.statusWritten = await this.writeStatus(live, prev, {
        ...prev,
        observedGeneration: generation,
        conditions,
      });
      return result;
    }

    // 2. Plan. An infeasible plan skips steps 3 and 4: the last good children stay as they are.
    const ad = checked.object;
    const p = computePlan(ad);
    this.publishPlanMetrics(namespace, name, p);
    const errorFindings = p.findings.filter((f) => f.severity === 'error');
    let inputs: Exclude<ConditionInputs, { outcome: 'invalid' }>;
    if (isNonEmpty(errorFindings)) {
      inputs = { generation, outcome: 'infeasible', errorFindings, readiness: this.readiness(ad, namespace) };
    } else {
      const desired = desiredChildren(live, ad, p);
      const uid = live.metadata!.uid!;
      // 3. Apply.
      const { applied, conflicts } = await this.apply(desired, namespace, uid);
      result.applied = applied;
      // 4. Prune.
      result.pruned = await this.prune(desired, namespace, uid);
      const readiness = this.readiness(ad, namespace);
      const counts = { applied: applied.length, pruned: result.pruned.length, conflicts };
      inputs = {
        generation,
        outcome: 'feasible',
        replicas: p.replicas,
        warnings: p.findings.length,
        ...counts,
        readiness,
      };
    }

    // 5. Status.
    const conditions = computeConditions(inputs, prev.conditions, now);
    const status: ArenaDeploymentStatus = {
      ...prev,
      observedGeneration: generation,
      plan: planSummary(p),
      findings: p.findings,
      conditions,
      replicas: inputs.readiness.replicas,
      selector: selectorString(ad),
    };
    result.statusWritten = await this.writeStatus(live, prev, status);
    if (result.pruned.length > 0) {
      await this.writer.event(
        live,
        'Normal',
        'Pruned',
        `deleted children no longer desired: ${result.pruned.join(', ')}`,
        this.instance,
      );
    }
    return result;
  }

  /** Step 3 (applyOwned): the desired children applied where they differ; conflicts not touched. */
  private apply(
    desired: readonly KubeObject[],
    namespace: string,
    uid: string,
  ): Promise<{ applied: string[]; conflicts: string[] }> {
    return applyOwned(desired, namespace, uid, this.caches.child, (o) => this.writer.apply(o));
  }

  /**
   * Step 4: delete the cached children of every child kind that this ArenaDeployment (uid) controls,
   * that carry the managed-by label, and that are not desired. Returns them as `Kind/name`.
   */
  private async prune(desired: readonly KubeObject[], namespace: string, uid: string): Promise<string[]> {
    const pruned: string[] = [];
    const wanted = new Set(desired.map((o) => kindKey(o.apiVersion, o.kind) + '/' + o.metadata.name));
    for (const k of CHILD_KINDS) {
      for (const obj of this.caches.children(k.apiVersion, k.kind, namespace)) {
        if (!ownedBy(obj, uid) || obj.metadata?.labels?.['app.kubernetes.io/managed-by'] !== MANAGED_BY) continue;
        if (wanted.has(kindKey(k.apiVersion, k.kind) + '/' + obj.metadata!.name)) continue;
        await this.writer.delete({
          apiVersion: k.apiVersion,
          kind: k.kind,
          metadata: { name: obj.metadata!.name, namespace },
        });
        pruned.push(`${k.kind}/${obj.metadata!.name}`);
      }
    }
    return pruned;
  }

  /** Readiness from the cached children: API and PgBouncer Deployments available, Redis StatefulSet ready. */
  private readiness(ad: ArenaDeployment, namespace: string): Readiness {
    const waiting: string[] = [];
    let rolledOut = true;
    const workload = (kind: 'Deployment' | 'StatefulSet', component: 'api' | 'pgbouncer' | 'redis') =>
      this.caches.child('apps/v1', kind, namespace, objectName(ad, component)) as any;
    const check = (obj: any, what: string, readyField: 'availableReplicas' | 'readyReplicas') => {
      if (!obj) {
        waiting.push(`${what} missing`);
        rolledOut = false;
        return;
      }
      const s = obj.status ?? {};
      const stale = (s.observedGeneration ?? 0) < (obj.metadata?.generation ?? 0);
      if (stale || (s.updatedReplicas ?? 0) < (obj.spec?.replicas ?? 1)) rolledOut = false;
      if ((s[readyField] ?? 0) < 1)
        waiting.push(`${what} has no ${readyField === 'availableReplicas' ? 'available' : 'ready'} replica`);
    };
    const api = workload('Deployment', 'api');
    check(api, `Deployment ${objectName(ad, 'api')}`, 'availableReplicas');
    if (ad.spec.pgbouncer.enabled) {
      check(workload('Deployment', 'pgbouncer'), `Deployment ${objectName(ad, 'pgbouncer')}`, 'availableReplicas');
    }
    if (ad.spec.redis.managed)
      check(workload('StatefulSet', 'redis'), `StatefulSet ${objectName(ad, 'redis')}`, 'readyReplicas');
    const message = waiting.length === 0 ? 'all children are ready' : waiting.join('; ');
    return { ready: waiting.length === 0, rolledOut, replicas: api?.status?.readyReplicas ?? 0, message };
  }

  /** Write status only if it differs; emit Events when a condition's status changes. */
  private async writeStatus(live: KubeObj, prev: ArenaDeploymentStatus, next: ArenaDeploymentStatus): Promise<boolean> {
    if (isSubset(next, prev) && isSubset(prev, next)) return false;
    await this.writer.applyStatus(live.metadata!.namespace!, live.metadata!.name!, next);
    for (const c of next.conditions ?? []) {
      const e = transitionEvent(findCondition(prev.conditions, c.type as ConditionType), c);
      if (e) await this.writer.event(live, e.type, e.reason, e.message, this.instance);
    }
    return true;
  }

  /** arena_plan_utilization series published per ArenaDeployment key, so stale ones can be removed. */
  private readonly published = new Map<string, Set<string>>();

  private publishPlanMetrics(namespace: string, name: string, p: CapacityPlan): void {
    const values = new Map<string, number>();
    const c = p.connections;
    if (c.appToPgbouncer) values.set('appToPgbouncer', c.appToPgbouncer.utilization);
    if (c.pgbouncerToPostgres) values.set('pgbouncerToPostgres', c.pgbouncerToPostgres.utilization);
    if (c.appToPostgres) values.set('appToPostgres', c.appToPostgres.utilization);
    values.set('redisClients', c.redis.utilization);
    for (const [q, v] of Object.entries(p.queues)) values.set(`queue:${q}`, v.utilization);
    const key = `${namespace}/${name}`;
    for (const old of this.published.get(key) ?? []) {
      if (!values.has(old)) this.metrics.planUtilization.remove({ namespace, name, resource: old });
    }
    for (const [resource, v] of values) this.metrics.planUtilization.set({ namespace, name, resource }, v);
    this.published.set(key, new Set(values.keys()));
    for (const severity of ['error', 'warning'] as const) {
      this.metrics.planFindings.set(
        { namespace, name, severity },
        p.findings.filter((f) => f.severity === severity).length,
      );
    }
  }

  /** Remove the series of a deleted ArenaDeployment (and only its series). */
  private forgetPlanMetrics(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    for (const resource of this.published.get(key) ?? [])
      this.metrics.planUtilization.remove({ namespace, name, resource });
    this.published.delete(key);
    for (const severity of ['error', 'warning']) this.metrics.planFindings.remove({ namespace, name, severity });
  }
}

/**
 * The stored ArenaDeployment validated again (the apiserver checked it against the CRD, which may be
 * older than this operator): defaults and the typed spec, or the errors.
 */
function validateStored(live: KubeObj, namespace: string, name: string): ReturnType<typeof validateObject> {
  const metadata = { name, namespace, labels: live.metadata?.labels, annotations: live.metadata?.annotations };
  return validateObject(structuredClone({ apiVersion: live.apiVersion, kind: live.kind, metadata, spec: live.spec }));
}

function isNonEmpty(findings: Finding[]): findings is [Finding, ...Finding[]] {
  return findings.length > 0;
}

/** The plan summary kept in status.plan. */
export function planSummary(p: CapacityPlan): NonNullable<ArenaDeploymentStatus['plan']> {
  return {
    minReplicas: p.replicas.min,
    maxReplicas: p.replicas.max,
    connectionsPerPod: p.connections.perPod,
    ...(p.pgbouncer.enabled
      ? { pgbouncerMaxClientConn: p.pgbouncer.maxClientConn, pgbouncerDefaultPoolSize: p.pgbouncer.defaultPoolSize }
      : {}),
    redisClientsAtMaxReplicas: p.connections.redis.atMaxReplicas,
  };
}

/** The API pods' label selector as a string (status.selector, for the scale subresource). */
export function selectorString(ad: ArenaDeployment): string {
  return Object.entries(selectorLabels(ad, 'api'))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * Server-side apply each desired child, in order, unless its cached live object already holds every
 * desired field (compare.ts), so a no-op pass sends nothing. An object of a child's name that the owner
 * (uid) does not control is not touched: it is returned as a conflict (`Kind/name`). Both controllers
 * (ArenaDeployment and ArenaLoadTest) apply their children through this.
 */
export async function applyOwned(
  desired: readonly KubeObject[],
  namespace: string,
  uid: string,
  cached: Caches['child'],
  apply: (obj: KubeObject) => Promise<unknown>,
): Promise<{ applied: string[]; conflicts: string[] }> {
  const applied: string[] = [];
  const conflicts: string[] = [];
  for (const obj of desired) {
    const current = cached(obj.apiVersion, obj.kind, namespace, obj.metadata.name);
    if (current && !ownedBy(current, uid)) {
      conflicts.push(label(obj));
      continue;
    }
    if (current && isSubset(stripForCompare(obj), current)) continue;
    await apply(obj);
    applied.push(label(obj));
  }
  return { applied, conflicts };
}

/** What to compare against the live object: the desired object without apiVersion/kind (list items may lack them). */
function stripForCompare(o: KubeObject): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}
