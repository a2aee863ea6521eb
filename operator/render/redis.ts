/**
 * Managed Redis: ConfigMap (redis.conf with maxclients, directives sorted),
 * StatefulSet (one replica) and Service.
 */
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import type { CapacityPlan } from '../planner/types.js';
import { configHash, renderRedisConf } from './config.js';
import { CONFIG_HASH_ANNOTATION, labels, objectName, selectorLabels } from './names.js';
import { containerSecurityContext, podSecurityContext, SIDE_SERVICE_UID } from './security.js';

/** redis.conf for a plan; `bind`, `port` and `dir` are parameters so the local stack can reuse it. */
export function redisConf(
  plan: CapacityPlan,
  where: { bind: string; port: number; dir: string; extra?: Record<string, string | number> },
): string {
  return renderRedisConf({
    appendonly: 'no',
    bind: where.bind,
    dir: where.dir,
    maxclients: plan.redis.maxClients,
    port: where.port,
    'protected-mode': 'no',
    save: '',
    'tcp-backlog': 511,
    ...where.extra,
  });
}

export function redisConfigMap(ad: ArenaDeployment, plan: CapacityPlan): IConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: objectName(ad, 'redis'), namespace: plan.metadata.namespace, labels: labels(ad, 'redis') },
    data: { 'redis.conf': redisConf(plan, { bind: '0.0.0.0', port: ad.spec.redis.port, dir: '/data' }) },
  };
}

export function redisStatefulSet(ad: ArenaDeployment, plan: CapacityPlan): IStatefulSet {
  const name = objectName(ad, 'redis');
  const conf = redisConfigMap(ad, plan).data!['redis.conf']!;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: plan.metadata.namespace, labels: labels(ad, 'redis') },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: selectorLabels(ad, 'redis') },
      template: {
        metadata: { labels: labels(ad, 'redis'), annotations: { [CONFIG_HASH_ANNOTATION]: configHash(conf) } },
        spec: {
          securityContext: podSecurityContext(SIDE_SERVICE_UID),
          containers: [
            {
              name: 'redis',
              image: ad.spec.redis.image,
              command: ['redis-server', '/etc/redis/redis.conf'],
              ports: [{ name: 'redis', containerPort: ad.spec.redis.port, protocol: 'TCP' }],
              resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
              readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10, failureThreshold: 6 },
              securityContext: containerSecurityContext(),
              volumeMounts: [
                { name: 'config', mountPath: '/etc/redis', readOnly: true },
                { name: 'data', mountPath: '/data' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name } },
            { name: 'data', emptyDir: {} },
          ],
        },
      },
    },
  };
}

export function redisService(ad: ArenaDeployment, plan: CapacityPlan): IService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: objectName(ad, 'redis'), namespace: plan.metadata.namespace, labels: labels(ad, 'redis') },
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(ad, 'redis'),
      ports: [{ name: 'redis', port: ad.spec.redis.port, targetPort: 'redis', protocol: 'TCP' }],
    },
  };
}
