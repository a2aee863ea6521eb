/**
 * The ArenaLoadTest resource (arena.dev/v1alpha1): a distributed load test run
 * as an Indexed Job of runner pods (docs/distributed.md). The single source of
 * truth for its shape, like schema.ts for ArenaDeployment: the same TypeBox
 * schema generates crds/arenaloadtest.yaml (crd.ts, `arena gen-crd`), validates
 * files in the CLI (validate.ts: ajv + the CEL rules) and gives the TypeScript
 * types the renderer (operator/render/loadtest.ts) uses.
 *
 * Units are in the field names (`...Seconds` seconds, `...Ms` milliseconds);
 * the load phases are duration strings as the CLI takes them (`250ms`, `30s`,
 * `2m`, `1h`). `rate` is arrivals per second.
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  API_VERSION,
  cel,
  ConditionSchema,
  DNS_LABEL,
  Int32,
  Int64,
  Obj,
  ObjectMetaSchema,
  ResourcesSchema,
  StringEnum,
} from './schema.js';

/** Kind, plural, singular and short names of the resource (crd.ts). */
export const LOADTEST_KIND = 'ArenaLoadTest';
export const LOADTEST_PLURAL = 'arenaloadtests';
export const LOADTEST_SINGULAR = 'arenaloadtest';
export const LOADTEST_SHORT_NAMES = ['alt'];
/** Most runner pods one ArenaLoadTest may have (as `arena loadtest run --shards`). */
export const MAX_PARALLELISM = 64;
/**
 * The bundled scenario names (loadtest/engine/scenario.ts BUNDLED; a test checks they are equal). Listed
 * here rather than imported: scenario.ts imports validate.ts, which imports this file.
 */
export const BUNDLED_SCENARIOS = ['read', 'match-save', 'debate-stream', 'chat-stream', 'task', 'mixed'];

/** A duration as the CLI takes it: a number and a unit (ms, s, m, h), e.g. `250ms`, `30s`, `1.5m`. */
const DURATION = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const Duration = (def: string, description: string) =>
  Type.String({ pattern: DURATION, maxLength: 32, default: def, description });
const ObjectName = (description: string) =>
  Type.String({ minLength: 1, maxLength: 253, pattern: DNS_LABEL, description });

/** Where the load goes: a URL, or the API Service of an ArenaDeployment in the same namespace. */
export const LoadTestTargetSchema = Obj(
  {
    url: Type.Optional(
      Type.String({
        maxLength: 2048,
        pattern: '^https?://[^\\s]+$',
        description: 'The target base URL, e.g. http://api.shop.svc:8000.',
      }),
    ),
    deploymentRef: Type.Optional(
      Obj(
        { name: ObjectName('Name of the ArenaDeployment (same namespace).') },
        {
          description:
            'An ArenaDeployment in the same namespace: its API Service is the target, its plan gives the load.fromPlan rates and its requestMix the bundled `mixed` scenario.',
        },
      ),
    ),
  },
  {
    description: 'Exactly one of url or deploymentRef.',
    ...cel({ rule: 'has(self.url) != has(self.deploymentRef)', message: 'give exactly one of url or deploymentRef' }),
  },
);

/** What each iteration sends: a bundled scenario, or a scenario file in a ConfigMap. */
export const LoadTestScenarioSchema = Obj(
  {
    bundled: Type.Optional(
      StringEnum([...BUNDLED_SCENARIOS], {
        description:
          "A bundled scenario (loadtest/scenarios/). With target.deploymentRef, `mixed` is that ArenaDeployment's requestMix (as `--scenario mixed -f`).",
      }),
    ),
    configMapRef: Type.Optional(
      Obj(
        {
          name: ObjectName('Name of the ConfigMap (same namespace).'),
          key: Type.String({
            minLength: 1,
            maxLength: 253,
            pattern: '^[-._a-zA-Z0-9]+$',
            description: 'The key holding the scenario file (YAML or JSON, docs/loadtest.md).',
          }),
        },
        { description: 'A ConfigMap key holding a scenario file.' },
      ),
    ),
  },
  {
    description: 'Exactly one of bundled or configMapRef.',
    ...cel({
      rule: 'has(self.bundled) != has(self.configMapRef)',
      message: 'give exactly one of bundled or configMapRef',
    }),
  },
);

/** The load model (exactly one of rate, vus, fromPlan) and its phases. */
export const LoadTestLoadSchema = Obj(
  {
    rate: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 10_000_000,
        description: 'Open model: arrivals per second of the whole test (all runners together).',
      }),
    ),
    vus: Type.Optional(
      Int32({
        minimum: 1,
        maximum: 10_000_000,
        description: 'Closed model: virtual users of the whole test, each one request at a time.',
      }),
    ),
    fromPlan: Type.Optional(
      Obj(
        {
          scale: Type.Number({
            exclusiveMinimum: 0,
            maximum: 100,
            default: 1,
            description: 'Offer the plan rates at this fraction of spec.load.targetConcurrency.',
          }),
        },
        { description: "Open model at the plan's arrival rate per request kind (needs target.deploymentRef)." },
      ),
    ),
    duration: Duration('30s', 'Steady phase (only it counts for the headline figures).'),
    ramp: Duration('0s', 'Ramp-up from 0 to the rate (or VUs).'),
    rampDown: Duration('0s', 'Ramp-down to 0 after the steady phase.'),
    gracefulStop: Duration('30s', 'Time in-flight iterations get after the schedule ends.'),
    arrival: StringEnum(['poisson', 'uniform'], {
      default: 'poisson',
      description: 'Open model arrival process.',
    }),
  },
  {
    description: 'Exactly one of rate, vus or fromPlan; phases as duration strings.',
    ...cel({
      rule: '(has(self.rate) ? 1 : 0) + (has(self.vus) ? 1 : 0) + (has(self.fromPlan) ? 1 : 0) == 1',
      message: 'give exactly one of rate, vus or fromPlan',
    }),
  },
);

/** The runner pods: image, resources, how long they may take to be ready for the start signal. */
export const LoadTestRunnerSchema = Obj(
  {
    image: Type.String({
      minLength: 1,
      maxLength: 512,
      description: 'Image with the arena CLI (the operator image: operator.Dockerfile).',
    }),
    resources: Type.Optional(ResourcesSchema),
    startDeadlineSeconds: Int32({
      minimum: 1,
      maximum: 3600,
      default: 120,
      description: 'Every runner must be ready for the start signal within this time, else the test fails.',
    }),
  },
  { description: 'The runner pods.' },
);

const SampleUrl = (what: string) =>
  Type.Optional(Type.String({ maxLength: 2048, pattern: '^[a-z]+://[^\\s]+$', description: what }));

/** Optional pool-saturation sampler endpoints (as `--sample`); sampled by runner 0 only. */
export const LoadTestSampleSchema = Obj(
  {
    pgbouncer: SampleUrl('PgBouncer admin console, postgres://user@host:6432/pgbouncer.'),
    postgres: SampleUrl('PostgreSQL, postgres://user@host:5432/db.'),
    redis: SampleUrl('Redis, redis://host:6379.'),
    health: SampleUrl('The API health endpoint, http://host:8000/health.'),
    passwordSecretRef: Type.Optional(
      Obj(
        { name: ObjectName('Secret name (same namespace).'), key: Type.String({ minLength: 1, maxLength: 253 }) },
        { description: 'Password of the pgbouncer/postgres URLs (PGPASSWORD in the runner).' },
      ),
    ),
  },
  { description: 'Pool-saturation sampler endpoints (docs/loadtest.md); sampled by runner 0 only.' },
);

/** k6-style thresholds: selector -> expressions, e.g. `http_req_duration{scenario:read}: ["p(99)<500"]`. */
const ThresholdsSchema = Type.Unsafe<Record<string, string[]>>({
  type: 'object',
  additionalProperties: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 256 } },
  maxProperties: 64,
  description:
    'k6-style thresholds, evaluated on the merged result: {"http_req_duration{scenario:read}": ["p(99)<500"]}.',
});

/** spec: what to load, how hard, with how many runners; immutable once created (CEL `self == oldSelf`). */
export const ArenaLoadTestSpecSchema = Obj(
  {
    target: LoadTestTargetSchema,
    scenario: LoadTestScenarioSchema,
    load: LoadTestLoadSchema,
    parallelism: Int32({
      minimum: 1,
      maximum: MAX_PARALLELISM,
      default: 1,
      description: 'Runner pods (Job completions = parallelism); each runs shard i of N.',
    }),
    thresholds: Type.Optional(ThresholdsSchema),
    runner: LoadTestRunnerSchema,
    sample: Type.Optional(LoadTestSampleSchema),
    ttlSecondsAfterFinished: Int32({
      minimum: 0,
      maximum: 31_536_000,
      default: 3600,
      description: 'The runner Job is deleted this long after it finishes (the ArenaLoadTest itself is kept).',
    }),
  },
  {
    ...cel(
      {
        rule: '!has(self.load.fromPlan) || has(self.target.deploymentRef)',
        message: 'load.fromPlan needs target.deploymentRef (the plan of that ArenaDeployment gives the rates)',
        fieldPath: '.load.fromPlan',
      },
      {
        rule: 'self == oldSelf',
        message: 'spec is immutable: create a new ArenaLoadTest to run again',
      },
    ),
  },
);

/** States of one runner pod in status.runners. */
export const RUNNER_STATES = ['Pending', 'Ready', 'Running', 'Succeeded', 'Failed'] as const;
/** status.phase values, in the order a test goes through them (Failed from any). */
export const LOADTEST_PHASES = ['Pending', 'Starting', 'Running', 'Merging', 'Succeeded', 'Failed'] as const;

/** One runner pod's state (index = JOB_COMPLETION_INDEX = shard). */
export const RunnerStatusSchema = Obj({
  index: Int32({ minimum: 0, maximum: MAX_PARALLELISM - 1 }),
  state: StringEnum([...RUNNER_STATES]),
  message: Type.Optional(Type.String({ maxLength: 1024 })),
});

const Ms = (description: string) => Type.Number({ minimum: 0, description });

/** The merged latency of one scenario request (the `scenario` tag), ms. */
export const ScenarioSummarySchema = Obj({
  name: Type.String({ maxLength: 63 }),
  requests: Int64({ minimum: 0, description: 'Requests completed in the steady phase.' }),
  p50Ms: Ms('Median latency, ms.'),
  p95Ms: Ms('95th percentile latency, ms.'),
  p99Ms: Ms('99th percentile latency, ms.'),
  maxMs: Ms('Largest latency, ms.'),
  errorRate: Type.Number({ minimum: 0, maximum: 1, description: 'Failed share of requests, 0..1.' }),
});

/** The merged result, written by the operator once every shard is merged. */
export const LoadTestSummarySchema = Obj({
  p99Ms: Type.Optional(Ms('99th percentile latency over every request, ms (the P99 printer column).')),
  scenarios: Type.Optional(
    Type.Array(ScenarioSummarySchema, {
      maxItems: 64,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  ),
  errorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Failed share of all requests.' })),
  droppedIterations: Type.Optional(
    Int64({ minimum: 0, description: 'Arrivals dropped because maxVUs were in flight.' }),
  ),
  thresholds: Type.Optional(
    Type.Array(
      Obj({
        selector: Type.String({ maxLength: 256 }),
        expression: Type.String({ maxLength: 256 }),
        status: StringEnum(['pass', 'fail', 'missing']),
        value: Type.Optional(Type.Number()),
      }),
      { maxItems: 256 },
    ),
  ),
  thresholdsPassed: Type.Optional(Type.Boolean({ description: 'Every threshold passed on the merged result.' })),
  firstSaturatingPool: Type.Optional(
    Obj({
      pool: Type.String({ maxLength: 63 }),
      peakUtilization: Type.Number({ minimum: 0 }),
      atMs: Type.Optional(Ms('First saturated tick, ms since the start.')),
    }),
  ),
  partial: Type.Optional(
    Type.Boolean({ description: 'True when some shard never reported: the figures cover the others only.' }),
  ),
  resultConfigMap: Type.Optional(ObjectName('ConfigMap holding the merged result.json.')),
});

/** status: written by the operator only (the status subresource). */
export const ArenaLoadTestStatusSchema = Obj({
  phase: Type.Optional(StringEnum([...LOADTEST_PHASES])),
  observedGeneration: Type.Optional(Int64({ minimum: 0 })),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  ),
  runners: Type.Optional(
    Type.Array(RunnerStatusSchema, {
      maxItems: MAX_PARALLELISM,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['index'],
    }),
  ),
  startAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'The start signal: every runner starts its schedule at this instant.',
    }),
  ),
  summary: Type.Optional(LoadTestSummarySchema),
});

/** The whole object as it appears in a file. */
export const ArenaLoadTestSchema = Obj(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(LOADTEST_KIND),
    metadata: ObjectMetaSchema,
    spec: ArenaLoadTestSpecSchema,
    status: Type.Optional(ArenaLoadTestStatusSchema),
  },
  { $id: 'https://arena.dev/schemas/v1alpha1/ArenaLoadTest.json' },
);

/** The TypeScript types of the resource, its spec and its status. */
export type ArenaLoadTest = Static<typeof ArenaLoadTestSchema>;
export type ArenaLoadTestSpec = Static<typeof ArenaLoadTestSpecSchema>;
export type ArenaLoadTestStatus = Static<typeof ArenaLoadTestStatusSchema>;
