/**
 * The API's objects: Deployment (pool settings as environment variables),
 * Service, PodDisruptionBudget and HorizontalPodAutoscaler (autoscaling/v2).
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import type { CapacityPlan } from '../planner/types.js';
import { ENV } from './env.js';
import { labels, objectName, selectorLabels } from './names.js';
import { containerSecurityContext, podSecurityContext } from './security.js';

/** Where the API reaches PostgreSQL: the PgBouncer Service when enabled, else PostgreSQL itself. */
function dbEndpoint(ad: ArenaDeployment): { host: string; port: number } {
  const { pgbouncer, postgres } = ad.spec;
  return pgbouncer.enabled
    ? { host: objectName(ad, 'pgbouncer'), port: pgbouncer.port }
    : { host: postgres.host, port: postgres.port };
}

/** Where the API reaches Redis. */
export function redisEndpoint(ad: ArenaDeployment): { host: string; port: number } {
  const { redis } = ad.spec;
  return redis.managed ? { host: objectName(ad, 'redis'), port: redis.port } : { host: redis.host!, port: redis.port };
}

/** The LLM kind with the largest weight (its latency model goes to the reference API), if any. */
function dominantLlm(ad: ArenaDeployment) {
  return [...ad.spec.load.requestMix].filter((k) => k.llmTimeMs).sort((a, b) => b.weight - a.weight)[0]?.llmTimeMs;
}

/** Environment of the API container; credentials only by secretKeyRef. */
export function apiEnv(ad: ArenaDeployment): IEnvVar[] {
  const { api, postgres, llm } = ad.spec;
  const db = dbEndpoint(ad);
  const redis = redisEndpoint(ad);
  const llmTime = dominantLlm(ad);
  const v = (name: string, value: string | number): IEnvVar => ({ name, value: String(value) });
  const secret = (name: string, key: string): IEnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: postgres.credentialsSecret, key } },
  });
  return [
    v(ENV.port, api.port),
    v(ENV.workers, api.workersPerPod),
    v(ENV.concurrencyPerWorker, api.concurrencyPerWorker),
    v(ENV.dbHost, db.host),
    v(ENV.dbPort, db.port),
    v(ENV.dbName, postgres.database),
    secret(ENV.dbUser, 'username'),
    secret(ENV.dbPassword, 'password'),
    v(ENV.databaseUrl, `postgresql://$(${ENV.dbUser}):$(${ENV.dbPassword})@${db.host}:${db.port}/${postgres.database}`),
    v(ENV.dbPoolSize, api.db.poolSize),
    v(ENV.dbMaxOverflow, api.db.maxOverflow),
    v(ENV.dbPoolTimeoutSeconds, api.db.poolTimeoutSeconds),
    v(ENV.redisUrl, `redis://${redis.host}:${redis.port}/0`),
    v(ENV.redisMaxConnections, api.redis.maxConnections),
    v(ENV.llmSlots, api.llmSlotsPerWorker),
    v(ENV.llmSlotWaitTimeoutSeconds, api.llmSlotWaitTimeoutSeconds),
    v(ENV.asyncConcurrency, api.asyncConcurrencyPerPod),
    v(ENV.rateLimitPerMinute, api.rateLimitPerMinute),
    ...(llm.requestsPerMinute !== undefined ? [v(ENV.llmRequestsPerMinute, llm.requestsPerMinute)] : []),
    ...(llmTime ? [v(ENV.llmLatencyP50Ms, llmTime.p50), v(ENV.llmLatencyP99Ms, llmTime.p99)] : []),
  ];
}

export function apiDeployment(ad: ArenaDeployment, plan: CapacityPlan): IDeployment {
  const { api } = ad.spec;
  const name = objectName(ad, 'api');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: plan.metadata.namespace, labels: labels(ad, 'api') },
    spec: {
      // With an HPA the replica count belongs to the HPA: leave it out so server-side apply does not fight it.
      ...(plan.hpa.enabled ? {} : { replicas: plan.replicas.max }),
      selector: { matchLabels: selectorLabels(ad, 'api') },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
      template: {
        metadata: { labels: labels(ad, 'api') },
        spec: {
          securityContext: podSecurityContext(),
          terminationGracePeriodSeconds: plan.api.terminationGracePeriodSeconds,
          containers: [
            {
              name: 'api',
              image: api.image,
              ports: [{ name: 'http', containerPort: api.port, protocol: 'TCP' }],
              env: apiEnv(ad),
              resources: plan.api.resources,
              readinessProbe: {
                httpGet: { path: api.healthPath, port: 'http' },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 3,
              },
              livenessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 6 },
              startupProbe: { httpGet: { path: api.healthPath, port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
              securityContext: containerSecurityContext(),
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}

export function apiService(ad: ArenaDeployment, plan: CapacityPlan): IService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: objectName(ad, 'api'), namespace: plan.metadata.namespace, labels: labels(ad, 'api') },
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(ad, 'api'),
      ports: [{ name: 'http', port: ad.spec.api.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function apiPodDisruptionBudget(ad: ArenaDeployment, plan: CapacityPlan): IPodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: objectName(ad, 'api'), namespace: plan.metadata.namespace, labels: labels(ad, 'api') },
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(ad, 'api') } },
  };
}

export function apiHorizontalPodAutoscaler(ad: ArenaDeployment, plan: CapacityPlan): IHorizontalPodAutoscaler {
  const name = objectName(ad, 'api');
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, namespace: plan.metadata.namespace, labels: labels(ad, 'api') },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: plan.hpa.minReplicas,
      maxReplicas: plan.hpa.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: {
            name: 'cpu',
            target: { type: 'Utilization', averageUtilization: plan.hpa.targetCPUUtilizationPercentage },
          },
        },
      ],
      behavior: plan.hpa.behavior,
    },
  };
}
