/**
 * render(): ArenaDeployment + CapacityPlan -> the Kubernetes objects the operator
 * applies (and `arena render` prints), in apply order: config before workloads,
 * workloads before Services, PDBs and the HPA. Pure and deterministic.
 */
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import type { CapacityPlan } from '../planner/types.js';
import { apiDeployment, apiHorizontalPodAutoscaler, apiPodDisruptionBudget, apiService } from './api.js';
import {
  pgbouncerConfigMap,
  pgbouncerDeployment,
  pgbouncerPodDisruptionBudget,
  pgbouncerService,
} from './pgbouncer.js';
import { redisConfigMap, redisService, redisStatefulSet } from './redis.js';

/** The least every rendered object has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** Render every child object of one ArenaDeployment. */
export function render(ad: ArenaDeployment, plan: CapacityPlan): KubeObject[] {
  const out: unknown[] = [];
  const { pgbouncer, redis } = ad.spec;
  if (pgbouncer.enabled) out.push(pgbouncerConfigMap(ad, plan));
  if (redis.managed) out.push(redisConfigMap(ad, plan));
  if (redis.managed) out.push(redisStatefulSet(ad, plan), redisService(ad, plan));
  if (pgbouncer.enabled) {
    out.push(pgbouncerDeployment(ad, plan), pgbouncerService(ad, plan));
    if (pgbouncer.replicas >= 2) out.push(pgbouncerPodDisruptionBudget(ad, plan));
  }
  out.push(apiDeployment(ad, plan), apiService(ad, plan), apiPodDisruptionBudget(ad, plan));
  if (plan.hpa.enabled) out.push(apiHorizontalPodAutoscaler(ad, plan));
  return out as KubeObject[];
}
