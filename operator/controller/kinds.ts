/**
 * The kinds the operator reads and writes: ArenaDeployment and the child kinds
 * `render()` produces, with their plurals (their apiserver paths:
 * operator/kube/client.ts `resourcePath`).
 */
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../api/v1alpha1/schema.js';
import { LOADTEST_KIND, LOADTEST_PLURAL } from '../api/v1alpha1/loadtest-schema.js';

export interface KindInfo {
  apiVersion: string;
  kind: string;
  plural: string;
}

export const ARENA: KindInfo = { apiVersion: API_VERSION, kind: KIND, plural: PLURAL };
export const LOADTEST: KindInfo = { apiVersion: API_VERSION, kind: LOADTEST_KIND, plural: LOADTEST_PLURAL };
export { GROUP, VERSION };

/** core/v1 ConfigMap: a child of both kinds, and what the ArenaLoadTest controller reads shards from. */
export const CONFIGMAP: KindInfo = { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' };

/** Child kinds, in the order render() emits them. */
export const CHILD_KINDS: KindInfo[] = [
  CONFIGMAP,
  { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers' },
];

/** Child kinds of an ArenaLoadTest besides ConfigMap (already in CHILD_KINDS), in the order renderLoadTest() emits them. */
export const LOADTEST_CHILD_KINDS: KindInfo[] = [
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', plural: 'roles' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', plural: 'rolebindings' },
  { apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs' },
];

/** `Kind.apiVersion` key used to index caches. */
export function kindKey(apiVersion: string, kind: string): string {
  return `${kind}.${apiVersion}`;
}
