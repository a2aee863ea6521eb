/**
 * The ArenaDeployment resource (arena.dev/v1alpha1): the single source of truth
 * for its shape. The same TypeBox schema
 * - generates the CustomResourceDefinition in crds/arenadeployment.yaml (see crd.ts),
 * - validates files in the CLI (ajv for the structure, the CEL rules in
 *   `x-kubernetes-validations` evaluated by a CEL library; see validate.ts),
 * - gives the TypeScript types (`ArenaDeployment`, `ArenaDeploymentSpec`) the planner uses.
 *
 * Units are in the field names: `...Ms` milliseconds, `...Seconds` seconds,
 * `requestsPerMinute` per minute. Defaults follow the upstream defaults where
 * one exists (SQLAlchemy pool_size 5 / max_overflow 10 / pool_timeout 30,
 * PostgreSQL max_connections 100 / superuser_reserved_connections 3,
 * Redis maxclients 10000, PgBouncer port 6432).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const GROUP = 'arena.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ArenaDeployment';
export const PLURAL = 'arenadeployments';
export const SINGULAR = 'arenadeployment';
export const SHORT_NAMES = ['arena'];

/** A CEL rule as the Kubernetes apiserver evaluates it (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message: string;
  /** Field path reported with the error, relative to the object the rule is on (for example `.baselineConcurrency`). */
  fieldPath?: string;
}

/** `x-kubernetes-validations` holding these CEL rules, to spread into a schema's options. */
export const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

/** An integer with `format: int32` (Kubernetes int32 fields). */
export const Int32 = (opts: Record<string, unknown> = {}) => Type.Integer({ format: 'int32', ...opts });
/** An integer with `format: int64`. */
export const Int64 = (opts: Record<string, unknown> = {}) => Type.Integer({ format: 'int64', ...opts });
/** A string enum as Kubernetes structural schemas want it (`type: string` + `enum`), typed as a union. */
export const StringEnum = <T extends string[]>(values: [...T], opts: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...opts });
/** An object schema that refuses unknown fields (`additionalProperties: false`; crd.ts drops it for the CRD). */
export const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T, opts: Record<string, unknown> = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

/** The pattern of a DNS label (RFC 1123). */
export const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const QUANTITY = '^[0-9]+(\\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$';

/** Latency percentiles of one LLM call, milliseconds (a lognormal is fitted through them). */
export const LlmTimeSchema = Obj(
  {
    p50: Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'Median LLM call time, ms.' }),
    p99: Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: '99th percentile LLM call time, ms.' }),
  },
  {
    description: 'LLM call latency percentiles, ms.',
    ...cel({ rule: 'self.p50 <= self.p99', message: 'p50 must be <= p99', fieldPath: '.p50' }),
  },
);

/** One kind of request in the workload mix. `weight` is its share of arrivals (requests), not of concurrency. */
export const RequestKindSchema = Obj(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: DNS_LABEL,
      description: 'Name of this request kind (a DNS label).',
    }),
    weight: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1_000_000,
      description: 'Relative share of arrivals (requests), normalised over the mix.',
    }),
    kind: StringEnum(['sync', 'stream', 'async'], {
      default: 'sync',
      description:
        'sync: held until the response; stream: SSE held for the LLM call, guarded by the LLM semaphore; async: 202 + task queue, the LLM call runs in a stream consumer.',
    }),
    serviceTimeMs: Type.Number({
      minimum: 0,
      maximum: 3_600_000,
      default: 5,
      description: 'App time outside the database and the LLM, ms.',
    }),
    dbTimeMs: Type.Number({
      minimum: 0,
      maximum: 3_600_000,
      default: 0,
      description: 'Time one request holds a database connection (its transactions), ms.',
    }),
    // Optional in the TypeScript type (mixes built in code stay valid; read them as `?? 1`); the validator
    // and the apiserver fill the default, so a validated object always carries them.
    dbTransactions: Type.Optional(
      Int32({
        minimum: 1,
        maximum: 1000,
        default: 1,
        description:
          'Database transactions per request: visits to the PgBouncer server pool (transaction pooling) and to the app pool when the app releases its connection between transactions. Each holds a connection for dbTimeMs / dbTransactions on average.',
      }),
    ),
    dbHoldCv2: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        default: 1,
        description:
          "Squared coefficient of variation of one transaction's hold time over this kind's transactions: 1 exponential, 0 fixed-length; transactions of unequal length raise it (docs/capacity-model.md).",
      }),
    ),
    llmTimeMs: Type.Optional(LlmTimeSchema),
  },
  {
    ...cel({
      rule: "self.kind == 'sync' || has(self.llmTimeMs)",
      message: 'stream and async kinds need llmTimeMs',
      fieldPath: '.llmTimeMs',
    }),
  },
);

const ResourceListSchema = Obj({
  cpu: Type.Optional(Type.String({ pattern: QUANTITY, description: 'CPU quantity, e.g. 500m or 2.' })),
  memory: Type.Optional(Type.String({ pattern: QUANTITY, description: 'Memory quantity, e.g. 512Mi.' })),
});
/** Container resources (requests and limits of cpu and memory, as quantities). */
export const ResourcesSchema = Obj(
  { requests: Type.Optional(ResourceListSchema), limits: Type.Optional(ResourceListSchema) },
  { description: 'Container resources; computed from workersPerPod when not set.' },
);

export const ApiSchema = Obj({
  image: Type.String({ minLength: 1, maxLength: 512, description: 'Container image of the API.' }),
  port: Int32({ minimum: 1, maximum: 65535, default: 8000, description: 'HTTP port the API listens on.' }),
  replicas: Type.Optional(
    Int32({
      minimum: 0,
      maximum: 10000,
      description: 'Fixed replica count, used only when autoscaling.enabled is false (scale subresource).',
    }),
  ),
  workersPerPod: Int32({
    minimum: 1,
    maximum: 1024,
    default: 1,
    description: 'Worker processes per pod (gunicorn -w / uvicorn --workers).',
  }),
  concurrencyPerWorker: Int32({
    minimum: 1,
    maximum: 1_000_000,
    default: 100,
    description: 'In-flight requests one async worker holds at once.',
  }),
  llmSlotsPerWorker: Int32({
    minimum: 1,
    maximum: 1_000_000,
    default: 3,
    description: 'MAX_CONCURRENT_REQUESTS: LLM semaphore slots per worker.',
  }),
  llmSlotWaitTimeoutSeconds: Int32({
    minimum: 1,
    maximum: 86400,
    default: 300,
    description: 'How long a request waits for an LLM slot before 503.',
  }),
  cpuMsPerRequest: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      maximum: 60_000,
      description:
        "CPU time one worker's event loop spends per request of the mix, ms (its polls and stream events included); " +
        'models each worker as one server (apiEventLoop). arena calibrate measures it.',
    }),
  ),
  cpuBaseFraction: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 0.99,
      description:
        "Share of a core each worker's event loop is busy under load besides cpuMsPerRequest: busy = cpuBaseFraction " +
        '+ requests per second per worker x cpuMsPerRequest / 1000 (a line through two calibration levels; default 0).',
    }),
  ),
  asyncConcurrencyPerPod: Int32({
    minimum: 0,
    maximum: 1_000_000,
    default: 8,
    description: 'Task-queue entries (Redis Streams consumer) processed at once per pod.',
  }),
  rateLimitPerMinute: Int32({
    minimum: 1,
    maximum: 100_000_000,
    default: 100,
    description: 'Per-client sliding-window rate limit, requests per minute.',
  }),
  healthPath: Type.String({
    pattern: '^/',
    maxLength: 256,
    default: '/health',
    description: 'Readiness endpoint path.',
  }),
  db: Obj(
    {
      poolSize: Int32({
        minimum: 1,
        maximum: 10000,
        default: 5,
        description: 'SQLAlchemy pool_size per worker process.',
      }),
      maxOverflow: Int32({
        minimum: 0,
        maximum: 10000,
        default: 10,
        description: 'SQLAlchemy max_overflow per worker process.',
      }),
      poolTimeoutSeconds: Int32({
        minimum: 1,
        maximum: 3600,
        default: 30,
        description: 'SQLAlchemy pool_timeout: wait for a connection before an error, s.',
      }),
    },
    { default: {} },
  ),
  redis: Obj(
    {
      maxConnections: Int32({
        minimum: 1,
        maximum: 1_000_000,
        default: 50,
        description: 'Redis connection pool size per worker process.',
      }),
    },
    { default: {} },
  ),
  autoscaling: Obj(
    {
      enabled: Type.Boolean({ default: true, description: 'Create a HorizontalPodAutoscaler (autoscaling/v2).' }),
      minReplicas: Type.Optional(
        Int32({ minimum: 1, maximum: 10000, description: 'Override the computed minReplicas.' }),
      ),
      maxReplicas: Type.Optional(
        Int32({ minimum: 1, maximum: 10000, description: 'Override the computed maxReplicas.' }),
      ),
      targetCPUUtilizationPercentage: Int32({ minimum: 1, maximum: 100, default: 70 }),
    },
    {
      default: {},
      ...cel({
        rule: '!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas',
        message: 'minReplicas must be <= maxReplicas',
        fieldPath: '.minReplicas',
      }),
    },
  ),
  resources: Type.Optional(ResourcesSchema),
});

export const LoadSchema = Obj(
  {
    targetConcurrency: Int32({ minimum: 1, maximum: 10_000_000, description: 'Peak in-flight requests to hold.' }),
    baselineConcurrency: Type.Optional(
      Int32({
        minimum: 0,
        maximum: 10_000_000,
        description: 'Steady in-flight requests; drives HPA minReplicas (default 10% of target).',
      }),
    ),
    requestMix: Type.Array(RequestKindSchema, {
      minItems: 1,
      maxItems: 16,
      description: 'The request kinds and their share of arrivals.',
      ...cel({
        rule: 'self.all(x, self.exists_one(y, y.name == x.name))',
        message: 'request kind names must be unique',
      }),
    }),
  },
  {
    ...cel({
      rule: '!has(self.baselineConcurrency) || self.baselineConcurrency <= self.targetConcurrency',
      message: 'baselineConcurrency must be <= targetConcurrency',
      fieldPath: '.baselineConcurrency',
    }),
  },
);

export const LlmSchema = Obj(
  {
    requestsPerMinute: Type.Optional(
      Int32({
        minimum: 1,
        maximum: 1_000_000_000,
        description: 'Provider rate limit (RPM) shared by all LLM calls; unlimited when unset.',
      }),
    ),
  },
  { default: {} },
);

export const PgBouncerSchema = Obj(
  {
    enabled: Type.Boolean({ default: true, description: 'Put PgBouncer between the API and PostgreSQL.' }),
    image: Type.String({ minLength: 1, default: 'ghcr.io/cloudnative-pg/pgbouncer:1.24.1' }),
    replicas: Int32({ minimum: 1, maximum: 64, default: 2 }),
    port: Int32({ minimum: 1, maximum: 65535, default: 6432 }),
    poolMode: StringEnum(['session', 'transaction', 'statement'], {
      default: 'transaction',
      description: 'PgBouncer pool_mode.',
    }),
    maxClientConn: Type.Optional(
      Int32({ minimum: 1, maximum: 1_000_000, description: 'max_client_conn per PgBouncer; computed when unset.' }),
    ),
    defaultPoolSize: Type.Optional(
      Int32({
        minimum: 1,
        maximum: 100_000,
        description: 'default_pool_size per database/user pair per PgBouncer; computed when unset.',
      }),
    ),
    reservePoolSize: Type.Optional(
      Int32({ minimum: 0, maximum: 100_000, description: 'reserve_pool_size; computed when unset.' }),
    ),
    databaseUserPairs: Int32({
      minimum: 1,
      maximum: 1000,
      default: 1,
      description: 'Distinct database/user pairs served (each gets its own server pool).',
    }),
  },
  { default: {} },
);

export const PostgresSchema = Obj(
  {
    host: Type.String({ minLength: 1, maxLength: 253 }),
    port: Int32({ minimum: 1, maximum: 65535, default: 5432 }),
    database: Type.String({ minLength: 1, maxLength: 63 }),
    credentialsSecret: Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: DNS_LABEL,
      description: 'Secret with keys username and password.',
    }),
    maxConnections: Int32({ minimum: 1, maximum: 262143, default: 100, description: 'PostgreSQL max_connections.' }),
    reservedConnections: Int32({
      minimum: 0,
      maximum: 262143,
      default: 3,
      description: 'superuser_reserved_connections + reserved_connections.',
    }),
  },
  {
    ...cel({
      rule: 'self.reservedConnections < self.maxConnections',
      message: 'reservedConnections must be < maxConnections',
      fieldPath: '.reservedConnections',
    }),
  },
);

export const RedisSchema = Obj(
  {
    managed: Type.Boolean({ default: true, description: 'Run Redis as a StatefulSet owned by this ArenaDeployment.' }),
    image: Type.String({ minLength: 1, default: 'docker.io/library/redis:7.4-alpine' }),
    host: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, description: 'External Redis host (when managed is false).' }),
    ),
    port: Int32({ minimum: 1, maximum: 65535, default: 6379 }),
    maxClients: Int32({ minimum: 1, maximum: 10_000_000, default: 10000, description: 'Redis maxclients.' }),
  },
  {
    default: {},
    ...cel({
      rule: '!has(self.managed) || self.managed || has(self.host)',
      message: 'host is required when managed is false',
      fieldPath: '.host',
    }),
  },
);

export const ArenaDeploymentSpecSchema = Obj({
  load: LoadSchema,
  api: ApiSchema,
  llm: LlmSchema,
  pgbouncer: PgBouncerSchema,
  postgres: PostgresSchema,
  redis: RedisSchema,
});

/** metav1.Condition, as controller-runtime operators publish it. */
export const ConditionSchema = Obj({
  type: Type.String({ maxLength: 316 }),
  status: StringEnum(['True', 'False', 'Unknown']),
  observedGeneration: Type.Optional(Int64({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  reason: Type.String({ maxLength: 1024 }),
  message: Type.String({ maxLength: 32768 }),
});

export const FindingSchema = Obj({
  code: Type.String(),
  severity: StringEnum(['error', 'warning']),
  message: Type.String(),
});

export const ArenaDeploymentStatusSchema = Obj({
  observedGeneration: Type.Optional(Int64({ minimum: 0 })),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  ),
  replicas: Type.Optional(Int32({ minimum: 0, description: 'Ready API replicas (scale subresource).' })),
  selector: Type.Optional(Type.String({ description: 'Label selector of the API pods (scale subresource).' })),
  plan: Type.Optional(
    Obj({
      minReplicas: Int32(),
      maxReplicas: Int32(),
      connectionsPerPod: Int32(),
      pgbouncerMaxClientConn: Type.Optional(Int32()),
      pgbouncerDefaultPoolSize: Type.Optional(Int32()),
      redisClientsAtMaxReplicas: Int32(),
    }),
  ),
  findings: Type.Optional(Type.Array(FindingSchema)),
});

/** metadata as a file carries it: name (a DNS label of at most 40 characters), namespace, labels, annotations. */
export const ObjectMetaSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 40,
      pattern: DNS_LABEL,
      description: 'Name (a DNS label of at most 40 characters so derived names stay within 63).',
    }),
    namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: DNS_LABEL })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);

/** The whole object as it appears in a file (metadata limited to what a file carries). */
export const ArenaDeploymentSchema = Obj(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(KIND),
    metadata: ObjectMetaSchema,
    spec: ArenaDeploymentSpecSchema,
    status: Type.Optional(ArenaDeploymentStatusSchema),
  },
  { $id: 'https://arena.dev/schemas/v1alpha1/ArenaDeployment.json' },
);

export type ArenaDeployment = Static<typeof ArenaDeploymentSchema>;
export type ArenaDeploymentSpec = Static<typeof ArenaDeploymentSpecSchema>;
export type ArenaDeploymentStatus = Static<typeof ArenaDeploymentStatusSchema>;
export type RequestKind = Static<typeof RequestKindSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type Finding = Static<typeof FindingSchema>;

/** Walk a schema and yield every CEL rule with the JSON-pointer-like path of the object it applies to (`*` for array items). */
export function* celRules(schema: TSchema, path: string[] = []): Generator<{ path: string[]; rule: CelRule }> {
  const s = schema as Record<string, unknown>;
  for (const rule of (s['x-kubernetes-validations'] as CelRule[] | undefined) ?? []) yield { path, rule };
  const props = s['properties'] as Record<string, TSchema> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) yield* celRules(v, [...path, k]);
  const items = s['items'] as TSchema | undefined;
  if (items) yield* celRules(items, [...path, '*']);
}
