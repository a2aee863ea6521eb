/**
 * The capacity plan: the one type that flows from the planner to the CLI, the
 * renderer, the operator's status and the load-test report.
 *
 * `arena plan -o json` prints this object (plus `derivations` with --explain);
 * its field names are a stable contract. One TypeBox schema, `CapacityPlanSchema`,
 * gives both the TypeScript type (`Static<>`, so the two cannot drift) and the
 * JSON Schema published as docs/schemas/capacity-plan.schema.json (see
 * schema-file.ts; a test fails when the file differs, another validates real
 * plans against it). Every object whose keys are fixed is closed
 * (`additionalProperties: false`), so a field the schema does not describe is an error.
 *
 * Units: connections and replicas are counts, rates are per second, times are
 * milliseconds unless the name says otherwise, utilisation is a fraction 0..1
 * (may exceed 1 when over budget).
 */
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';
import { FindingSchema, type Finding } from '../api/v1alpha1/schema.js';

export type { Finding };
export type Severity = Finding['severity'];

/** A closed object: no properties beyond those listed. */
const Obj = <T extends TProperties>(props: T, opts: Record<string, unknown> = {}) =>
  Type.Object(props, { ...opts, additionalProperties: false });
/** A string enum as `type: string` + `enum`, typed as the union of its values. */
const StringEnum = <T extends string[]>(values: [...T], opts: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...opts });
/** A whole number (connections, replicas, servers, file descriptors, seconds). */
const Count = (description?: string) => Type.Integer(description === undefined ? {} : { description });
const Num = (description?: string) => Type.Number(description === undefined ? {} : { description });
const Nullable = <T extends TSchema>(schema: T, description: string) =>
  Type.Union([schema, Type.Null()], { description });

const UTILIZATION = 'Used / limit, a fraction (> 1: over budget).';

/** How one value was derived (`arena plan --explain`). `unit` uses the field's units. */
export const DerivationSchema = Obj(
  {
    value: Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Null()], {
      description: 'The value recorded.',
    }),
    unit: Type.String({ description: 'Unit of the value (connections, replicas, ms, requests/s, ...).' }),
    formula: Type.String({ description: 'The formula, or the spec field the value comes from.' }),
    inputs: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Null()]), {
      description: 'The inputs the formula used, by name.',
    }),
    source: Type.String({ description: 'Where the formula comes from (documentation, paper, arena sizing rule).' }),
  },
  { description: 'How one value was derived: formula, inputs and source.' },
);

const budgetProperties = {
  atMaxReplicas: Count('Connections (clients) in use at replicas.max.'),
  limit: Count('The limit those connections count against.'),
  utilization: Num(UTILIZATION),
};
/** A connection budget: how many are used at maxReplicas, the limit, and used/limit. */
const budget = (description: string) => Obj(budgetProperties, { description });
export const BudgetSchema = budget(
  'A connection budget: connections used at maxReplicas, the limit, and used / limit.',
);

const queuePlanProperties = {
  servers: Count('Total servers (connections, slots, consumers) across all partitions.'),
  partitions: Count('Independent queues the servers are split into (one per worker process, per PgBouncer, ...).'),
  arrivalRatePerSecond: Num('Arrivals to all partitions together, per second.'),
  serviceTimeMs: Num('Mean service time, ms.'),
  serviceCv2: Num('Squared coefficient of variation of the service time (1 = exponential, 0 = constant).'),
  utilization: Num('Offered load / servers per partition (>= 1: unstable).'),
  pWait: Num('Probability an arrival waits (Erlang C); 1 when unstable.'),
  meanWaitMs: Nullable(Type.Number(), 'Mean wait in queue, ms (Allen-Cunneen); null when unstable.'),
  p99WaitMs: Nullable(Type.Number(), '99th percentile of the wait in queue, ms; null when unstable.'),
  stable: Type.Boolean({ description: 'Utilisation < 1.' }),
  visitsPerRequest: Type.Optional(
    Num(
      'Mean visits (transactions) per request that uses the queue: sum_k lambda_k dbTransactions_k / sum_k lambda_k. ' +
        'Only when not 1; arrivals, service time and waits above are then per visit.',
    ),
  ),
  meanWaitPerRequestMs: Type.Optional(
    Nullable(
      Type.Number(),
      'visitsPerRequest x meanWaitMs: the mean wait a request accumulates over its visits, ms; null when unstable. ' +
        'Only with visitsPerRequest. No per-request P99 is given: the P99 of a sum of waits is not visits x P99WaitMs.',
    ),
  ),
};
/** One queue analysed with Erlang C / Allen-Cunneen (see erlang.ts). */
const queuePlan = (description: string) => Obj(queuePlanProperties, { description });
export const QueuePlanSchema = queuePlan(
  'One queue analysed with Erlang C and the Allen-Cunneen correction (erlang.ts).',
);

/** The queues of a plan, all at the target with maxReplicas; a queue without arrivals is left out. */
export const QueuesSchema = Obj(
  {
    appDbPool: Type.Optional(queuePlan('SQLAlchemy pool per worker process: poolSize + maxOverflow servers.')),
    pgbouncerServerPool: Type.Optional(
      queuePlan('PgBouncer server pool per PgBouncer: default_pool_size servers (not modelled in session mode).'),
    ),
    llmSlots: Type.Optional(
      queuePlan('LLM semaphore per worker process: llmSlotsPerWorker servers (sync and stream kinds).'),
    ),
    asyncConsumers: Type.Optional(queuePlan('Task-queue consumers of all pods, one consumer group (async kinds).')),
    llmRateLimit: Type.Optional(queuePlan("The LLM provider's rate limit as one deterministic server (M/D/1).")),
    apiEventLoop: Type.Optional(
      queuePlan("Each API worker's event loop as one server (M/G/1): S = api.cpuMsPerRequest (only when set)."),
    ),
  },
  { description: 'Queues at the target with maxReplicas; waits are null when a queue is unstable.' },
);

/** Per request kind at the target concurrency. */
export const KindPlanSchema = Obj(
  {
    kind: StringEnum(['sync', 'stream', 'async']),
    share: Num('Share of arrivals, 0..1.'),
    arrivalRatePerSecond: Num('Arrivals of this kind, per second.'),
    meanLatencyMs: Num('End-to-end time T_k, ms.'),
    concurrency: Num('In-flight requests of this kind (lambda_k * T_k).'),
    apiConcurrency: Num('In-flight requests of this kind inside the API (async kinds only while submitting).'),
  },
  { description: 'One request kind at the target concurrency.' },
);

const HpaPolicySchema = Obj({
  type: StringEnum(['Pods', 'Percent']),
  value: Count(),
  periodSeconds: Count(),
});
const hpaRules = <P extends string>(selectPolicy: P, description: string) =>
  Obj(
    {
      stabilizationWindowSeconds: Count(),
      selectPolicy: Type.Literal(selectPolicy),
      policies: Type.Array(HpaPolicySchema),
    },
    { description },
  );

export const CapacityPlanSchema = Obj(
  {
    apiVersion: Type.Literal('arena.dev/v1alpha1'),
    kind: Type.Literal('CapacityPlan'),
    metadata: Obj(
      { name: Type.String(), namespace: Type.String() },
      { description: 'Of the ArenaDeployment planned.' },
    ),
    workload: Obj(
      {
        targetConcurrency: Count('Peak in-flight requests to hold (spec.load.targetConcurrency).'),
        baselineConcurrency: Count('Steady in-flight requests (spec, else 10% of the target).'),
        arrivalRatePerSecond: Num("Arrivals at the target, per second (Little's law)."),
        apiConcurrency: Num('In-flight requests inside the API at the target.'),
        llmCallsPerSecond: Num('LLM calls at the target, per second.'),
        kinds: Type.Record(Type.String(), KindPlanSchema, { description: 'By request kind name.' }),
      },
      { description: "The workload at the target concurrency (Little's law, workload.ts)." },
    ),
    replicas: Obj({
      min: Count('minReplicas (the replica count when autoscaling is disabled).'),
      max: Count('maxReplicas (the replica count when autoscaling is disabled).'),
      neededForTarget: Count('Replicas the target concurrency needs.'),
      neededForBaseline: Count('Replicas the baseline concurrency needs.'),
      connectionCap: Nullable(
        Type.Integer(),
        'Most replicas the connection budgets allow (null when no budget binds).',
      ),
      perPodConcurrency: Count('In-flight requests one pod holds: workersPerPod * concurrencyPerWorker.'),
    }),
    connections: Obj({
      perPod: Count('Database connections one pod may open: workersPerPod * (poolSize + maxOverflow).'),
      redisPerPod: Count('Redis connections one pod may open: workersPerPod * api.redis.maxConnections.'),
      redis: budget('Redis clients at maxReplicas (plus 2 for the operator and sampler) against maxclients.'),
      appToPgbouncer: Type.Optional(
        budget('Present when PgBouncer is enabled: app client connections against replicas * max_client_conn.'),
      ),
      pgbouncerToPostgres: Type.Optional(
        Obj(
          {
            total: Count('Server connections all PgBouncers may open.'),
            limit: Count('PostgreSQL maxConnections - reservedConnections.'),
            utilization: Num(UTILIZATION),
          },
          {
            description:
              "Present when PgBouncer is enabled: PgBouncer's server connections against PostgreSQL's budget.",
          },
        ),
      ),
      appToPostgres: Type.Optional(
        budget('Present when PgBouncer is disabled: the app connects to PostgreSQL directly.'),
      ),
    }),
    pgbouncer: Obj({
      enabled: Type.Boolean(),
      replicas: Count(),
      poolMode: StringEnum(['session', 'transaction', 'statement']),
      maxClientConn: Count('max_client_conn per PgBouncer (spec, else computed).'),
      defaultPoolSize: Count('default_pool_size per database/user pair per PgBouncer (spec, else computed).'),
      reservePoolSize: Count('reserve_pool_size (spec, else computed).'),
      databaseUserPairs: Count(),
      fileDescriptors: Count('File descriptors one PgBouncer needs.'),
    }),
    redis: Obj({
      managed: Type.Boolean(),
      maxClients: Count(),
      fileDescriptors: Count('maxclients + 32 reserved by Redis.'),
    }),
    api: Obj({
      workersPerPod: Count(),
      terminationGracePeriodSeconds: Count('Longest LLM p99 in seconds, rounded up, + 15.'),
      resources: Obj({
        requests: Obj({ cpu: Type.String(), memory: Type.String() }),
        limits: Obj({ cpu: Type.Optional(Type.String()), memory: Type.String() }),
      }),
    }),
    hpa: Obj({
      enabled: Type.Boolean(),
      minReplicas: Count(),
      maxReplicas: Count(),
      targetCPUUtilizationPercentage: Count(),
      behavior: Obj({
        scaleUp: hpaRules(
          'Max',
          'Scale up fast: LLM-bound load arrives in bursts and new pods take time to become ready.',
        ),
        scaleDown: hpaRules('Min', 'Scale down slowly: a pod being removed holds streams of up to the LLM p99.'),
      }),
    }),
    queues: QueuesSchema,
    findings: Type.Array(FindingSchema, { description: 'What will not hold, errors first (findings.ts).' }),
    derivations: Type.Optional(
      Type.Record(Type.String(), DerivationSchema, {
        description: 'Formula, inputs and source of each value, by plan path (only with --explain).',
      }),
    ),
  },
  { $id: 'https://arena.dev/schemas/capacity-plan.schema.json', title: 'arena CapacityPlan (arena plan -o json)' },
);

export type CapacityPlan = Static<typeof CapacityPlanSchema>;
export type Derivation = Static<typeof DerivationSchema>;
/** A connection budget: how many are used at maxReplicas, the limit, and used/limit. */
export type Budget = Static<typeof BudgetSchema>;
/** One queue analysed with Erlang C / Allen-Cunneen (see erlang.ts). */
export type QueuePlan = Static<typeof QueuePlanSchema>;
export type QueueName = keyof Static<typeof QueuesSchema>;
/** Per request kind at the target concurrency. */
export type KindPlan = Static<typeof KindPlanSchema>;
