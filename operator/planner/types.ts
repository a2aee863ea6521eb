/**
 * The capacity plan: the one type that flows from the planner to the CLI, the
 * renderer, the operator's status and the load-test report.
 *
 * `arena plan -o json` prints this object (plus `derivations` with --explain);
 * its field names are a stable contract. Units: connections and replicas are
 * counts, rates are per second, times are milliseconds unless the name says
 * otherwise, utilisation is a fraction 0..1 (may exceed 1 when over budget).
 */
import type { Finding } from '../api/v1alpha1/schema.js';
import type { Derivation } from './ledger.js';

export type { Finding };
export type Severity = Finding['severity'];

/** A connection budget: how many are used at maxReplicas, the limit, and used/limit. */
export interface Budget {
  atMaxReplicas: number;
  limit: number;
  utilization: number;
}

/** One queue analysed with Erlang C / Allen-Cunneen (see erlang.ts). */
export interface QueuePlan {
  /** Total servers (connections, slots, consumers) across all partitions. */
  servers: number;
  /** Independent queues the servers are split into (one per worker process, per PgBouncer, ...). */
  partitions: number;
  arrivalRatePerSecond: number;
  serviceTimeMs: number;
  serviceCv2: number;
  utilization: number;
  pWait: number;
  meanWaitMs: number | null;
  p99WaitMs: number | null;
  stable: boolean;
}

export type QueueName = 'appDbPool' | 'pgbouncerServerPool' | 'llmSlots' | 'asyncConsumers' | 'llmRateLimit';

/** Per request kind at the target concurrency. */
export interface KindPlan {
  kind: 'sync' | 'stream' | 'async';
  share: number;
  arrivalRatePerSecond: number;
  meanLatencyMs: number;
  concurrency: number;
  apiConcurrency: number;
}

export interface CapacityPlan {
  apiVersion: 'arena.dev/v1alpha1';
  kind: 'CapacityPlan';
  metadata: { name: string; namespace: string };
  workload: {
    targetConcurrency: number;
    baselineConcurrency: number;
    arrivalRatePerSecond: number;
    apiConcurrency: number;
    llmCallsPerSecond: number;
    kinds: Record<string, KindPlan>;
  };
  replicas: {
    min: number;
    max: number;
    neededForTarget: number;
    neededForBaseline: number;
    /** Most replicas the connection budgets allow (null when no budget binds). */
    connectionCap: number | null;
    perPodConcurrency: number;
  };
  connections: {
    perPod: number;
    redisPerPod: number;
    /** Present when PgBouncer is enabled. */
    appToPgbouncer?: Budget;
    /** Present when PgBouncer is enabled. */
    pgbouncerToPostgres?: { total: number; limit: number; utilization: number };
    /** Present when PgBouncer is disabled: the app connects to PostgreSQL directly. */
    appToPostgres?: Budget;
    redis: Budget;
  };
  pgbouncer: {
    enabled: boolean;
    replicas: number;
    poolMode: 'session' | 'transaction' | 'statement';
    maxClientConn: number;
    defaultPoolSize: number;
    reservePoolSize: number;
    databaseUserPairs: number;
    fileDescriptors: number;
  };
  redis: { managed: boolean; maxClients: number; fileDescriptors: number };
  api: {
    workersPerPod: number;
    terminationGracePeriodSeconds: number;
    resources: { requests: { cpu: string; memory: string }; limits: { cpu?: string; memory: string } };
  };
  hpa: {
    enabled: boolean;
    minReplicas: number;
    maxReplicas: number;
    targetCPUUtilizationPercentage: number;
    behavior: {
      scaleUp: { stabilizationWindowSeconds: number; selectPolicy: 'Max'; policies: { type: 'Pods' | 'Percent'; value: number; periodSeconds: number }[] };
      scaleDown: { stabilizationWindowSeconds: number; selectPolicy: 'Min'; policies: { type: 'Pods' | 'Percent'; value: number; periodSeconds: number }[] };
    };
  };
  queues: Partial<Record<QueueName, QueuePlan>>;
  findings: Finding[];
  /** Formula, inputs and source of each value, by plan path (only with --explain). */
  derivations?: Record<string, Derivation>;
}
