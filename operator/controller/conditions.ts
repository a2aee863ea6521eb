/**
 * metav1.Condition bookkeeping, as apimachinery's meta.SetStatusCondition does:
 * lastTransitionTime changes only when the status changes; reason, message and
 * observedGeneration are updated in place.
 */
import type { Condition } from '../api/v1alpha1/schema.js';

export type ConditionType = 'Ready' | 'Planned' | 'Progressing' | 'Degraded';

/** Return a new list with `next` set; `now` is an RFC 3339 timestamp (seconds precision, as the apiserver stores it). */
export function setCondition(
  list: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition[] {
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

/**
 * metav1.MicroTime as it is in JSON: RFC 3339 with six fractional digits, `2026-12-07T12:00:00.123000Z`
 * (the apiserver rejects three). What a Lease's renewTime / acquireTime and an Event's eventTime take.
 */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * The Event to record when a condition changes, or undefined when the change is not worth one.
 * Recorded: Planned and Ready changing status (Normal, or Warning for Planned=False), and
 * Degraded turning True (Warning). A condition appearing for the first time with status
 * False (Degraded, Progressing) or Progressing flapping is not an Event.
 */
export function transitionEvent(
  before: Condition | undefined,
  after: Condition,
): { type: 'Normal' | 'Warning'; reason: string; message: string } | undefined {
  if (before?.status === after.status) return undefined;
  const message = `${after.type}=${after.status}: ${after.message}`;
  if (after.type === 'Planned')
    return { type: after.status === 'False' ? 'Warning' : 'Normal', reason: after.reason, message };
  if (after.type === 'Degraded' && after.status === 'True') return { type: 'Warning', reason: after.reason, message };
  if (after.type === 'Ready' && before !== undefined) return { type: 'Normal', reason: after.reason, message };
  if (after.type === 'Ready' && after.status === 'True') return { type: 'Normal', reason: after.reason, message };
  return undefined;
}
