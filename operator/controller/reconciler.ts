/**
 * The ArenaDeployment reconciler: level-based and idempotent.
 *
 *   read the ArenaDeployment from the cache
 *   -> plan (pure) -> if the plan has error findings: Planned=False (reason = the
 *      finding's code), apply nothing, keep the last good children as they are
 *   -> desired children = render(plan) + ownerReferences
 *   -> for each child: skip if the live object (cache) already holds every desired
 *      field; refuse to touch an object of the same name we do not own; else
 *      server-side apply (field manager arena-operator, force)
 *   -> prune our children that are no longer desired (for example redis.managed: false)
 *   -> status (observedGeneration, plan summary, conditions) through the status
 *      subresource, written only when it changed; Events on transitions.
 *
 * A reconcile that finds nothing to change sends no write request.
 */
import type { Logger } from 'pino';
import { validateObject } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment, ArenaDeploymentStatus, Condition } from '../api/v1alpha1/schema.js';
import { plan as computePlan } from '../planner/plan.js';
import type { CapacityPlan } from '../planner/types.js';
import { render, type KubeObject } from '../render/index.js';
import { MANAGED_BY, objectName, selectorLabels } from '../render/names.js';
import { isSubset } from './compare.js';
import { findCondition, nowRfc3339, setCondition, transitionEvent, type ConditionType } from './conditions.js';
import { ARENA, CHILD_KINDS, kindKey } from './kinds.js';
import type { Kube, KubeObj } from './kube.js';
import type { OperatorMetrics } from './metrics.js';

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
  return { apiVersion: ARENA.apiVersion, kind: ARENA.kind, name: ad.metadata!.name!, uid: ad.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

/** True when `obj` is controlled by the ArenaDeployment with this uid. */
export function ownedBy(obj: KubeObj, uid: string): boolean {
  return (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

const label = (o: { kind: string; metadata: { name?: string } }) => `${o.kind}/${o.metadata.name}`;

export class Reconciler {
  constructor(
    private readonly kube: Kube,
    private readonly caches: Caches,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
    private readonly instance: string,
  ) {}

  /** Reconcile one ArenaDeployment by `namespace/name`. Throws on apiserver errors (the queue retries with backoff). */
  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const result: ReconcileResult = { applied: [], pruned: [], statusWritten: false };
    const live = this.caches.arena(namespace, name);
    if (!live || live.metadata?.deletionTimestamp) {
      this.forgetPlanMetrics(namespace, name);
      return result; // deleted: the garbage collector removes the children through their ownerReferences
    }
    const generation = live.metadata?.generation ?? 0;
    const prev = (live.status ?? {}) as ArenaDeploymentStatus;
    const now = nowRfc3339();
    let conditions = prev.conditions ?? [];
    const set = (type: ConditionType, status: Condition['status'], reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: generation }, now);
    };

    // The apiserver validated the object against the CRD; validate again to get defaults and the typed spec.
    const copy = structuredClone({ apiVersion: live.apiVersion, kind: live.kind, metadata: { name, namespace, labels: live.metadata?.labels, annotations: live.metadata?.annotations }, spec: live.spec });
    const checked = validateObject(copy);
    if (!checked.object) {
      const msg = checked.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      set('Planned', 'False', 'InvalidSpec', msg);
      set('Degraded', 'True', 'InvalidSpec', msg);
      result.statusWritten = await this.writeStatus(live, prev, { ...prev, observedGeneration: generation, conditions });
      return result;
    }
    const ad = checked.object;
    const p = computePlan(ad);
    this.publishPlanMetrics(namespace, name, p);
    const errors = p.findings.filter((f) => f.severity === 'error');
    const base: ArenaDeploymentStatus = { ...prev, observedGeneration: generation, plan: planSummary(p), findings: p.findings };

    if (errors.length > 0) {
      const first = errors[0]!;
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more error finding(s); see status.findings)` : '';
      set('Planned', 'False', first.code, `${first.message}${more}`);
      set('Progressing', 'False', 'PlanInfeasible', 'the last good children are kept; nothing new is applied until the plan is feasible');
      set('Degraded', 'True', 'PlanInfeasible', 'the spec passes the schema but its capacity plan cannot hold the target');
      const fresh = this.readiness(ad, namespace);
      set('Ready', fresh.ready ? 'True' : 'False', fresh.ready ? 'AllChildrenReady' : 'ChildrenNotReady', fresh.message);
      const status = { ...base, conditions, replicas: fresh.replicas, selector: selectorString(ad) };
      result.statusWritten = await this.writeStatus(live, prev, status);
      return result;
    }
    set('Planned', 'True', 'PlanComputed', `maxReplicas ${p.replicas.max}, minReplicas ${p.replicas.min}, ${p.findings.length} warning(s)`);

    // Desired children with ownerReferences; skip what already matches; never touch what we do not own.
    const uid = live.metadata!.uid!;
    const desired = render(ad, p).map((o) => ({ ...o, metadata: { ...o.metadata, ownerReferences: [ownerReference(live)] } }) as KubeObject);
    const conflicts: string[] = [];
    for (const obj of desired) {
      const current = this.caches.child(obj.apiVersion, obj.kind, namespace, obj.metadata.name);
      if (current && !ownedBy(current, uid)) {
        conflicts.push(label(obj));
        continue;
      }
      if (current && isSubset(stripForCompare(obj), current)) continue;
      await this.kube.apply(obj);
      result.applied.push(label(obj));
    }

    // Prune children we own that are no longer desired.
    const wanted = new Set(desired.map((o) => kindKey(o.apiVersion, o.kind) + '/' + o.metadata.name));
    for (const k of CHILD_KINDS) {
      for (const obj of this.caches.children(k.apiVersion, k.kind, namespace)) {
        if (!ownedBy(obj, uid) || obj.metadata?.labels?.['app.kubernetes.io/managed-by'] !== MANAGED_BY) continue;
        if (wanted.has(kindKey(k.apiVersion, k.kind) + '/' + obj.metadata!.name)) continue;
        await this.kube.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name: obj.metadata!.name, namespace } });
        result.pruned.push(`${k.kind}/${obj.metadata!.name}`);
      }
    }

    const fresh = this.readiness(ad, namespace);
    const progressing = result.applied.length > 0 || result.pruned.length > 0 || !fresh.rolledOut;
    set('Progressing', progressing ? 'True' : 'False', result.applied.length + result.pruned.length > 0 ? 'ChildrenApplied' : progressing ? 'RollingOut' : 'Stable', progressing ? (result.applied.length + result.pruned.length > 0 ? `applied ${result.applied.length}, pruned ${result.pruned.length}` : fresh.message) : 'every child matches the plan');
    if (conflicts.length > 0) set('Degraded', 'True', 'ChildNotOwned', `objects exist with the names of children but are not owned by this ArenaDeployment: ${conflicts.join(', ')}`);
    else set('Degraded', 'False', 'AsExpected', 'no errors');
    set('Ready', fresh.ready && conflicts.length === 0 ? 'True' : 'False', fresh.ready && conflicts.length === 0 ? 'AllChildrenReady' : 'ChildrenNotReady', fresh.message);

    const status: ArenaDeploymentStatus = { ...base, conditions, replicas: fresh.replicas, selector: selectorString(ad) };
    result.statusWritten = await this.writeStatus(live, prev, status);
    if (result.pruned.length > 0) await this.kube.event(live, 'Normal', 'Pruned', `deleted children no longer desired: ${result.pruned.join(', ')}`, this.instance);
    return result;
  }

  /** Readiness from the cached children: API and PgBouncer Deployments available, Redis StatefulSet ready. */
  private readiness(ad: ArenaDeployment, namespace: string): { ready: boolean; rolledOut: boolean; replicas: number; message: string } {
    const waiting: string[] = [];
    let rolledOut = true;
    const dep = (component: 'api' | 'pgbouncer') => this.caches.child('apps/v1', 'Deployment', namespace, objectName(ad, component)) as any;
    const check = (obj: any, what: string, readyField: 'availableReplicas' | 'readyReplicas') => {
      if (!obj) {
        waiting.push(`${what} missing`);
        rolledOut = false;
        return;
      }
      const s = obj.status ?? {};
      if ((s.observedGeneration ?? 0) < (obj.metadata?.generation ?? 0) || (s.updatedReplicas ?? 0) < (obj.spec?.replicas ?? 1)) rolledOut = false;
      if ((s[readyField] ?? 0) < 1) waiting.push(`${what} has no ${readyField === 'availableReplicas' ? 'available' : 'ready'} replica`);
    };
    const api = dep('api');
    check(api, `Deployment ${objectName(ad, 'api')}`, 'availableReplicas');
    if (ad.spec.pgbouncer.enabled) check(dep('pgbouncer'), `Deployment ${objectName(ad, 'pgbouncer')}`, 'availableReplicas');
    if (ad.spec.redis.managed) check(this.caches.child('apps/v1', 'StatefulSet', namespace, objectName(ad, 'redis')), `StatefulSet ${objectName(ad, 'redis')}`, 'readyReplicas');
    return { ready: waiting.length === 0, rolledOut, replicas: api?.status?.readyReplicas ?? 0, message: waiting.length === 0 ? 'all children are ready' : waiting.join('; ') };
  }

  /** Write status only if it differs; emit Events when a condition's status changes. */
  private async writeStatus(live: KubeObj, prev: ArenaDeploymentStatus, next: ArenaDeploymentStatus): Promise<boolean> {
    if (isSubset(next, prev) && isSubset(prev, next)) return false;
    await this.kube.applyStatus(live.metadata!.namespace!, live.metadata!.name!, next);
    for (const c of next.conditions ?? []) {
      const e = transitionEvent(findCondition(prev.conditions, c.type as ConditionType), c);
      if (e) await this.kube.event(live, e.type, e.reason, e.message, this.instance);
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
    for (const old of this.published.get(key) ?? []) if (!values.has(old)) this.metrics.planUtilization.remove({ namespace, name, resource: old });
    for (const [resource, v] of values) this.metrics.planUtilization.set({ namespace, name, resource }, v);
    this.published.set(key, new Set(values.keys()));
    for (const sev of ['error', 'warning'] as const) this.metrics.planFindings.set({ namespace, name, severity: sev }, p.findings.filter((f) => f.severity === sev).length);
  }

  /** Remove the series of a deleted ArenaDeployment (and only its series). */
  private forgetPlanMetrics(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    for (const resource of this.published.get(key) ?? []) this.metrics.planUtilization.remove({ namespace, name, resource });
    this.published.delete(key);
    for (const severity of ['error', 'warning']) this.metrics.planFindings.remove({ namespace, name, severity });
  }
}

/** The plan summary kept in status.plan. */
export function planSummary(p: CapacityPlan): NonNullable<ArenaDeploymentStatus['plan']> {
  return {
    minReplicas: p.replicas.min,
    maxReplicas: p.replicas.max,
    connectionsPerPod: p.connections.perPod,
    ...(p.pgbouncer.enabled ? { pgbouncerMaxClientConn: p.pgbouncer.maxClientConn, pgbouncerDefaultPoolSize: p.pgbouncer.defaultPoolSize } : {}),
    redisClientsAtMaxReplicas: p.connections.redis.atMaxReplicas,
  };
}

/** The API pods' label selector as a string (status.selector, for the scale subresource). */
export function selectorString(ad: ArenaDeployment): string {
  return Object.entries(selectorLabels(ad, 'api'))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** What to compare against the live object: the desired object without apiVersion/kind (list items may lack them). */
function stripForCompare(o: KubeObject): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}
