/**
 * Names and labels of the objects rendered for one ArenaDeployment.
 * Labels follow the Kubernetes recommended labels (app.kubernetes.io/*).
 */
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';

export type Component = 'api' | 'pgbouncer' | 'redis';

/** The field manager the operator and `arena render` use for server-side apply. */
export const FIELD_MANAGER = 'arena-operator';
export const MANAGED_BY = 'arena-operator';
/** Pod-template annotation holding a hash of rendered config, so a config change (and only that) rolls pods. */
export const CONFIG_HASH_ANNOTATION = 'arena.dev/config-hash';

/** `<name>-<component>`: the name of every object of a component. */
export function objectName(ad: ArenaDeployment, component: Component): string {
  return `${ad.metadata.name}-${component}`;
}

/** The labels that select a component's pods (stable: never change them, selectors are immutable). */
export function selectorLabels(ad: ArenaDeployment, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': component === 'api' ? 'arena-api' : component,
    'app.kubernetes.io/instance': ad.metadata.name,
    'app.kubernetes.io/component': component,
  };
}

/** All labels of a component's objects. */
export function labels(ad: ArenaDeployment, component: Component): Record<string, string> {
  return {
    ...selectorLabels(ad, component),
    'app.kubernetes.io/part-of': 'arena',
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}
