/**
 * PgBouncer's objects: ConfigMap (pgbouncer.ini, parameters sorted), Deployment,
 * Service and (with 2+ replicas) a PodDisruptionBudget.
 *
 * Credentials: the ConfigMap holds no secret. At container start a shell writes
 * the auth file (userlist.txt) and an included ini fragment (stats_users) into an
 * in-memory emptyDir from the Secret's `username` and `password` keys, then execs pgbouncer.
 *
 * The fragment (users.ini) holds bare `key = value` lines and is %included at
 * the end of the [pgbouncer] section, so it is parsed in that section. It must
 * not open with its own `[pgbouncer]` header: PgBouncer re-applies every
 * default of a section each time its header appears (seen with 1.18 in the
 * local stack; upstream issue pgbouncer/pgbouncer#1586, still open), which
 * silently discarded the whole rendered [pgbouncer] section (listen_addr, pool
 * sizes, max_client_conn).
 */
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import type { CapacityPlan } from '../planner/types.js';
import { configHash, renderIni } from './config.js';
import { CONFIG_HASH_ANNOTATION, labels, objectName, selectorLabels } from './names.js';
import { containerSecurityContext, podSecurityContext, SIDE_SERVICE_UID } from './security.js';

export const PGBOUNCER_CONFIG_DIR = '/etc/pgbouncer';
export const PGBOUNCER_AUTH_DIR = '/etc/pgbouncer-auth';

/** pgbouncer.ini for a plan. `listenAddr` and the paths are parameters so the local stack can reuse it. */
export function pgbouncerIni(
  ad: ArenaDeployment,
  plan: CapacityPlan,
  where: {
    listenAddr: string;
    listenPort: number;
    authDir: string;
    postgresHost: string;
    postgresPort: number;
    extra?: Record<string, string | number>;
  },
): string {
  const { postgres } = ad.spec;
  const p = plan.pgbouncer;
  return (
    renderIni([
      [
        'databases',
        { [postgres.database]: `host=${where.postgresHost} port=${where.postgresPort} dbname=${postgres.database}` },
      ],
      [
        'pgbouncer',
        {
          auth_file: `${where.authDir}/userlist.txt`,
          auth_type: 'scram-sha-256',
          default_pool_size: p.defaultPoolSize,
          ignore_startup_parameters: 'extra_float_digits,options',
          listen_addr: where.listenAddr,
          listen_port: where.listenPort,
          max_client_conn: p.maxClientConn,
          max_db_connections: (p.defaultPoolSize + p.reservePoolSize) * p.databaseUserPairs,
          pool_mode: p.poolMode,
          reserve_pool_size: p.reservePoolSize,
          reserve_pool_timeout: 3,
          server_idle_timeout: 600,
          ...where.extra,
        },
      ],
    ]) + `\n%include ${where.authDir}/users.ini\n`
  );
}

export function pgbouncerConfigMap(ad: ArenaDeployment, plan: CapacityPlan): IConfigMap {
  const ini = pgbouncerIni(ad, plan, {
    listenAddr: '0.0.0.0',
    listenPort: ad.spec.pgbouncer.port,
    authDir: PGBOUNCER_AUTH_DIR,
    postgresHost: ad.spec.postgres.host,
    postgresPort: ad.spec.postgres.port,
  });
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: objectName(ad, 'pgbouncer'),
      namespace: plan.metadata.namespace,
      labels: labels(ad, 'pgbouncer'),
    },
    data: { 'pgbouncer.ini': ini },
  };
}

/** The start script: auth file from the Secret's env, then exec pgbouncer. */
const START = [
  'set -eu',
  `umask 077`,
  `printf '"%s" "%s"\\n' "$PGBOUNCER_USER" "$PGBOUNCER_PASSWORD" > ${PGBOUNCER_AUTH_DIR}/userlist.txt`,
  `printf 'stats_users = %s\\n' "$PGBOUNCER_USER" > ${PGBOUNCER_AUTH_DIR}/users.ini`,
  `exec pgbouncer ${PGBOUNCER_CONFIG_DIR}/pgbouncer.ini`,
].join('\n');

export function pgbouncerDeployment(ad: ArenaDeployment, plan: CapacityPlan): IDeployment {
  const { pgbouncer, postgres } = ad.spec;
  const cm = pgbouncerConfigMap(ad, plan);
  const secret = (name: string, key: string) => ({
    name,
    valueFrom: { secretKeyRef: { name: postgres.credentialsSecret, key } },
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: objectName(ad, 'pgbouncer'),
      namespace: plan.metadata.namespace,
      labels: labels(ad, 'pgbouncer'),
    },
    spec: {
      replicas: pgbouncer.replicas,
      selector: { matchLabels: selectorLabels(ad, 'pgbouncer') },
      template: {
        metadata: {
          labels: labels(ad, 'pgbouncer'),
          annotations: { [CONFIG_HASH_ANNOTATION]: configHash(cm.data!['pgbouncer.ini']!) },
        },
        spec: {
          securityContext: podSecurityContext(SIDE_SERVICE_UID),
          containers: [
            {
              name: 'pgbouncer',
              image: pgbouncer.image,
              command: ['/bin/sh', '-c', START],
              ports: [{ name: 'pgbouncer', containerPort: pgbouncer.port, protocol: 'TCP' }],
              env: [secret('PGBOUNCER_USER', 'username'), secret('PGBOUNCER_PASSWORD', 'password')],
              resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              readinessProbe: { tcpSocket: { port: 'pgbouncer' }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 'pgbouncer' }, periodSeconds: 10, failureThreshold: 6 },
              securityContext: containerSecurityContext(),
              volumeMounts: [
                { name: 'config', mountPath: PGBOUNCER_CONFIG_DIR, readOnly: true },
                { name: 'auth', mountPath: PGBOUNCER_AUTH_DIR },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: objectName(ad, 'pgbouncer') } },
            { name: 'auth', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
          ],
        },
      },
    },
  };
}

export function pgbouncerService(ad: ArenaDeployment, plan: CapacityPlan): IService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: objectName(ad, 'pgbouncer'),
      namespace: plan.metadata.namespace,
      labels: labels(ad, 'pgbouncer'),
    },
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(ad, 'pgbouncer'),
      ports: [{ name: 'pgbouncer', port: ad.spec.pgbouncer.port, targetPort: 'pgbouncer', protocol: 'TCP' }],
    },
  };
}

export function pgbouncerPodDisruptionBudget(ad: ArenaDeployment, plan: CapacityPlan): IPodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: {
      name: objectName(ad, 'pgbouncer'),
      namespace: plan.metadata.namespace,
      labels: labels(ad, 'pgbouncer'),
    },
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(ad, 'pgbouncer') } },
  };
}
