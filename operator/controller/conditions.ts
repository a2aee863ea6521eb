/**
 * metav1.Condition bookkeeping, as apimachinery's meta.SetStatusCondition does:
 * lastTransitionTime changes only when the status changes; reason, message and
 * observedGeneration are updated in place.
 */
import type { V1MicroTime } from '@kubernetes/client-node';
import type { Condition } from '../api/v1alpha1/schema.js';

export type ConditionType = 'Ready' | 'Planned' | 'Progressing' | 'Degraded';

/** Return a new list with `next` set; `now` is an RFC 3339 timestamp (seconds precision, as the apiserver stores it). */
export function setCondition(list: Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: string): Condition[] {
  const out = (list ?? []).map((c) => ({ ...c }));
  const i = out.findIndex((c) => c.type === next.type);
  if (i < 0) {
    out.push({ ...next, lastTransitionTime: now });
  } else {
    const prev = out[i]!;
    out[i] = { ...next, lastTransitionTime: prev.status === next.status ? prev.lastTransitionTime : now };
  }
  return out;
}

/** The condition of a type, if present. */
export function findCondition(list: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** RFC 3339 with seconds precision (metav1.Time). */
export function nowRfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** metav1.MicroTime: RFC 3339 with six fractional digits (the apiserver rejects three). */
export function microTime(d: Date): V1MicroTime {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as V1MicroTime;
}
