/**
 * What the informer caches keep: every object is passed through a transform on
 * its way into a cache (list items and watch events alike, see informers.ts),
 * as controller-runtime's `cache.TransformStripManagedFields` does. The
 * operator's memory is mostly its caches, and most of a cached object is what
 * the reconcilers never read.
 *
 * `stripForCache(kind)` drops, from every object:
 * - `metadata.managedFields` (server-side apply bookkeeping, often the largest part);
 * - the annotation `kubectl.kubernetes.io/last-applied-configuration` (a second
 *   copy of the object, from `kubectl apply`);
 * and, by kind:
 * - `status` of the kinds whose status no reconciler reads (`STATUS_DROPPED_KINDS`:
 *   ConfigMap, Service, PodDisruptionBudget, HorizontalPodAutoscaler,
 *   ServiceAccount, Role, RoleBinding). Deployment, StatefulSet and Job status
 *   is readiness, and the arena.dev kinds' status is their own record: kept, as
 *   is the status of any kind not listed;
 * - `data` and `binaryData` of ConfigMaps labelled `arena.dev/shard` or
 *   `arena.dev/result` (an ArenaLoadTest's shard results and merged result, up
 *   to ~1 MiB each). Their metadata stays (annotations such as
 *   `arena.dev/runner-ready` and `arena.dev/shard-status` are what the load-test
 *   controller watches); whoever needs their content reads it with a GET.
 *
 * Everything else stays, in particular every field `render()` sets (spec, data
 * of the other ConfigMaps, labels, annotations, ownerReferences) and the
 * metadata the reconcilers and the informers use (name, namespace, uid,
 * resourceVersion, generation, deletionTimestamp): `isSubset(desired, cached)`
 * (compare.ts) gives the same answer on the stripped copy as on the full
 * object, so an unchanged child still gets no write and a drifted one is still
 * reverted (transform.test.ts, informers.test.ts).
 *
 * The transform does not modify its argument: it returns a shallow copy (the
 * unchanged parts are shared, not cloned).
 */
import type { KubeObj } from './kube.js';

/** A function every object passes through on its way into an informer cache. */
export type CacheTransform = (obj: KubeObj) => KubeObj;

/** The annotation `kubectl apply` stores the whole applied object in. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** Kinds whose `status` no reconciler reads: dropped from the cache. */
export const STATUS_DROPPED_KINDS: ReadonlySet<string> = new Set([
  'ConfigMap',
  'Service',
  'PodDisruptionBudget',
  'HorizontalPodAutoscaler',
  'ServiceAccount',
  'Role',
  'RoleBinding',
]);

/**
 * Labels of the ConfigMaps whose `data` and `binaryData` are dropped from the cache: an
 * ArenaLoadTest's shard ConfigMaps (`SHARD_LABEL` of operator/render/loadtest.ts) and its
 * merged result ConfigMap.
 */
export const PAYLOAD_CONFIGMAP_LABELS: readonly string[] = ['arena.dev/shard', 'arena.dev/result'];

type Meta = NonNullable<KubeObj['metadata']>;

function stripMetadata(m: Meta): Meta {
  const { managedFields: _managedFields, ...rest } = m;
  if (rest.annotations && LAST_APPLIED_ANNOTATION in rest.annotations) {
    const { [LAST_APPLIED_ANNOTATION]: _lastApplied, ...annotations } = rest.annotations;
    rest.annotations = annotations;
  }
  return rest;
}

function isPayloadConfigMap(obj: KubeObj): boolean {
  const labels = obj.metadata?.labels;
  return labels !== undefined && PAYLOAD_CONFIGMAP_LABELS.some((l) => l in labels);
}

/** The cache transform for objects of `kind` (see the file comment for what it keeps and drops). */
export function stripForCache(kind: string): CacheTransform {
  const dropStatus = STATUS_DROPPED_KINDS.has(kind);
  const configMap = kind === 'ConfigMap';
  return (obj) => {
    const out: KubeObj = { ...obj };
    if (obj.metadata) out.metadata = stripMetadata(obj.metadata);
    if (dropStatus) delete out.status;
    if (configMap && isPayloadConfigMap(obj)) {
      delete out['data'];
      delete out['binaryData'];
    }
    return out;
  };
}
