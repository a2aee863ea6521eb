/**
 * Which child updates are worth a reconcile of the owner, in the spirit of
 * controller-runtime's predicates (GenerationChangedPredicate and friends):
 * an update whose only change is in status fields no reconciler reads (a
 * Deployment's `conditions[].lastUpdateTime`, `ProgressDeadlineExceeded`, a
 * ReplicaSet rollover) must not enqueue the owner. At 1,000 ArenaDeployments
 * such status churn reconciled every owner at once and a new ArenaDeployment
 * waited seconds in the queue behind them (docs/benchmarks.md, 2026-12-07).
 *
 * `RelevantChanges.changed(obj)` compares a fingerprint of what the
 * reconcilers read, by uid, with the last one seen: everything but
 * `metadata.resourceVersion` and `status`, plus the status fields read:
 * - Deployment, StatefulSet: `observedGeneration`, `replicas`,
 *   `updatedReplicas`, `readyReplicas`, `availableReplicas` (readiness,
 *   reconciler.ts);
 * - Job: the whole status (the ArenaLoadTest controller reads
 *   `failedIndexes` and the conditions);
 * - other kinds: none (their status is not cached, transform.ts).
 */
import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import type { KubeObj } from './kube.js';

/** Status fields of a Deployment or StatefulSet the readiness check reads. */
export const READINESS_FIELDS = [
  'observedGeneration',
  'replicas',
  'updatedReplicas',
  'readyReplicas',
  'availableReplicas',
] as const;

/** What of `obj`'s status the reconcilers read. */
function readStatus(obj: KubeObj): unknown {
  const status = obj.status as Record<string, unknown> | undefined;
  if (!status) return undefined;
  if (obj.kind === 'Job') return status;
  if (obj.kind === 'Deployment' || obj.kind === 'StatefulSet') return READINESS_FIELDS.map((f) => status[f] ?? null);
  return undefined;
}

/**
 * A digest (SHA-1, base64: 28 characters, so a uid map costs little) that changes exactly when
 * something a reconciler reads of `obj` changes. Keys are serialised sorted (safe-stable-stringify):
 * the same object can come with its keys in another order, and must give the same digest. A list's
 * items come without apiVersion and kind (the informer adds them, at the end), a watch event's
 * object has them first; with JSON.stringify every relist of a child kind looked like a change of
 * every child and reconciled every owner (docs/benchmarks.md, 2026-12-08).
 */
export function fingerprint(obj: KubeObj): string {
  const { resourceVersion: _rv, ...metadata } = obj.metadata ?? {};
  const { status: _s, metadata: _m, ...rest } = obj;
  return createHash('sha1')
    .update(stringify([metadata, rest, readStatus(obj)]) ?? '')
    .digest('base64');
}

/** The last fingerprint seen per object uid, to tell a relevant update from status churn. */
export class RelevantChanges {
  private readonly seen = new Map<string, string>();

  /**
   * True for an object not seen before (the first list, a new object), a delete, or an add or
   * update that changed what a reconciler reads; false when nothing of it changed, which includes
   * a relist's replay of an object whose events were all seen (the periodic resync of every
   * ArenaDeployment is the manager's --resync-period, spread over the period, not the relists).
   */
  changed(obj: KubeObj, type: 'add' | 'update' | 'delete'): boolean {
    const uid = obj.metadata?.uid;
    if (!uid) return true;
    if (type === 'delete') {
      this.seen.delete(uid);
      return true;
    }
    const fp = fingerprint(obj);
    const before = this.seen.get(uid);
    this.seen.set(uid, fp);
    return before !== fp;
  }

  /** Objects tracked (the memory this costs: one string per cached child). */
  get size(): number {
    return this.seen.size;
  }
}
