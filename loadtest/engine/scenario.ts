/**
 * Scenarios: what each iteration sends. A scenario is a weighted list of named
 * requests (each a k6-style "scenario" in the result: metrics are tagged
 * `{scenario:<name>}`), from a scenario file (YAML or JSON, validated by
 * `ScenarioFileSchema`), from a bundled file in `loadtest/scenarios/`, or
 * generated from an ArenaDeployment's `spec.load.requestMix` (`fromRequestMix`).
 *
 * Templates: strings in `path`, `headers` and `body` may hold `{{var}}`:
 * `vu` (the VU number, unique per worker), `worker`, `iter` (iteration number
 * of the worker), `user_id` (`vu-<worker>-<vu>`: one client per VU, so
 * per-client rate limits behave as in production), `uuid`, `rand` (an integer
 * in [0, 2^31)), `llm_latency_ms` (a draw from the request's `llmLatencyMs`
 * lognormal), `model_a`/`model_b` (two different model names of 16) and, in a
 * task's poll path only, `task_id`. A body string that is exactly
 * `"{{var}}"` of a numeric variable becomes a JSON number.
 */
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { fileErrorText, InvalidInputError } from '../../lib/errors.js';
import { parseDocument } from 'yaml';
import { describe, pointerToPath } from '../../operator/api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { parseDurationMs } from './duration.js';

/** The directory of the bundled scenarios (loadtest/scenarios/ in the repository). */
export const SCENARIO_DIR = fileURLToPath(new URL('../../../loadtest/scenarios/', import.meta.url));
/** Bundled scenario names (files `loadtest/scenarios/<name>.yaml`). */
export const BUNDLED = ['read', 'match-save', 'debate-stream', 'chat-stream', 'task', 'mixed'] as const;

/** A string enum (`type: string` + `enum`): one error naming the choices, typed as a union. */
const StringEnum = <T extends string[]>(values: [...T], opts: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...opts });

const Duration = Type.Union(
  [Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)?\\s*$' }), Type.Number({ exclusiveMinimum: 0 })],
  {
    description: 'A duration: 250ms, 30s, 2m; a bare number is milliseconds.',
  },
);
const Headers = Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Type.String(), {
  description: 'HTTP headers (templated values).',
});

export const RequestSpecSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$',
      description: 'Name of the request: the `scenario` tag of its metrics.',
    }),
    weight: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Relative share of iterations.' }),
    kind: StringEnum(['http', 'sse', 'task'], { default: 'http' }),
    method: StringEnum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'], { default: 'GET' }),
    path: Type.String({ pattern: '^/', description: 'Path and query, templated.' }),
    headers: Type.Optional(Headers),
    body: Type.Optional(
      Type.Unknown({ description: 'A JSON body (sent with content-type application/json), templated.' }),
    ),
    expect: Type.Optional(
      Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
        minItems: 1,
        description: 'Statuses that count as success (default: 200-299).',
      }),
    ),
    timeout: Type.Optional(Duration),
    objectives: Type.Optional(
      Type.Object(
        {
          http_req_duration: Type.Optional(Duration),
          ttft: Type.Optional(Duration),
          e2e_latency: Type.Optional(Duration),
          task_e2e: Type.Optional(Duration),
        },
        {
          additionalProperties: false,
          description:
            'Latency objectives per request (goodput: the requests that succeed within every one). Thresholds such as "p(99)<500" on these metrics add objectives too.',
        },
      ),
    ),
    llmLatencyMs: Type.Optional(
      Type.Object(
        { p50: Type.Number({ exclusiveMinimum: 0 }), p99: Type.Number({ exclusiveMinimum: 0 }) },
        { additionalProperties: false, description: 'Lognormal source of {{llm_latency_ms}}.' },
      ),
    ),
    sse: Type.Optional(
      Type.Object(
        {
          tokenEvent: Type.String({
            default: 'message',
            description: 'Event type of a token (`message` = a data: line without event:).',
          }),
          doneEvent: Type.Optional(
            Type.String({
              description: 'Event type that ends a complete stream; without it the end of the body does.',
            }),
          ),
          errorEvent: Type.String({ default: 'error' }),
        },
        { additionalProperties: false },
      ),
    ),
    task: Type.Optional(
      Type.Object(
        {
          poll: Type.String({
            pattern: '^/',
            description: 'Poll path; {{task_id}} is the id from the submit response.',
          }),
          idField: Type.String({ default: 'task_id' }),
          statusField: Type.String({ default: 'status' }),
          done: Type.Array(Type.String(), { default: ['done'], minItems: 1 }),
          failed: Type.Array(Type.String(), { default: ['failed'] }),
          interval: Type.Optional(Duration),
          timeout: Type.Optional(Duration),
          createdField: Type.Optional(
            Type.String({ description: 'Field with the ISO time the task was queued (for task_queue_wait).' }),
          ),
          startedField: Type.Optional(Type.String({ description: 'Field with the ISO time a consumer started it.' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ScenarioFileSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1 })),
    description: Type.Optional(Type.String()),
    headers: Type.Optional(Headers),
    requests: Type.Array(RequestSpecSchema, { minItems: 1, maxItems: 64 }),
    thresholds: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'k6 thresholds (see docs/loadtest.md).' }),
    ),
  },
  { additionalProperties: false },
);

export type RequestSpec = Static<typeof RequestSpecSchema>;
export type ScenarioFile = Static<typeof ScenarioFileSchema>;

/** A scenario ready to run: the defaulted file plus where it came from. Plain data (sent to worker threads). */
export interface Scenario {
  name: string;
  source: string;
  requests: RequestSpec[];
  thresholds?: Record<string, unknown>;
}

/** A scenario file that does not fit the schema, or a template that names an unknown variable: one line, naming the field. */
export class ScenarioError extends InvalidInputError {
  constructor(message: string) {
    super(message, 'ARENA_SCENARIO_INVALID');
    this.name = 'ScenarioError';
  }
}

const VARS = [
  'vu',
  'worker',
  'iter',
  'user_id',
  'uuid',
  'rand',
  'llm_latency_ms',
  'model_a',
  'model_b',
  'task_id',
] as const;
type Var = (typeof VARS)[number];
const NUMERIC: ReadonlySet<string> = new Set(['vu', 'worker', 'iter', 'rand', 'llm_latency_ms']);

let validateFn: ReturnType<Ajv['compile']> | undefined;

/**
 * Validate and default a parsed scenario file.
 * @throws ScenarioError with one line per problem: `<where>: requests[0].kind: must be one of: http, sse, task`.
 */
export function validateScenario(value: unknown, where: string): Scenario {
  validateFn ??= new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(ScenarioFileSchema);
  if (!validateFn(value)) {
    const lines = new Set<string>();
    for (const e of validateFn.errors ?? []) {
      if (e.keyword === 'anyOf' || e.keyword === 'if') continue;
      const fe = describe(e) ?? { path: pointerToPath(e.instancePath), message: e.message ?? e.keyword };
      lines.add(`${where}: ${fe.path || '(document)'}: ${fe.message}`);
    }
    throw new ScenarioError([...lines].join('\n'));
  }
  const f = value as ScenarioFile;
  const names = new Set<string>();
  f.requests.forEach((r, i) => {
    const at = `${where}: requests[${i}]`;
    if (names.has(r.name)) throw new ScenarioError(`${at}.name: duplicate request name ${r.name}`);
    names.add(r.name);
    if (r.kind === 'task' && !r.task) throw new ScenarioError(`${at}.task: a task request needs task.poll`);
    if (r.kind !== 'task' && r.task) throw new ScenarioError(`${at}.task: only for kind task`);
    if (r.kind !== 'sse' && r.sse) throw new ScenarioError(`${at}.sse: only for kind sse`);
    if (r.kind === 'sse') r.sse ??= { tokenEvent: 'message', errorEvent: 'error' };
    if (r.llmLatencyMs && r.llmLatencyMs.p99 < r.llmLatencyMs.p50)
      throw new ScenarioError(`${at}.llmLatencyMs.p99: must be >= p50`);
    if (r.headers || f.headers) r.headers = { ...f.headers, ...r.headers };
    const check = (field: string, s: string, allowTask = false) => {
      for (const m of s.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
        const v = m[1]!;
        if (!(VARS as readonly string[]).includes(v) || (v === 'task_id' && !allowTask))
          throw new ScenarioError(
            `${at}.${field}: unknown template variable {{${v}}} (known: ${VARS.filter((x) => x !== 'task_id').join(', ')}${allowTask ? ', task_id' : ''})`,
          );
        if (v === 'llm_latency_ms' && !r.llmLatencyMs)
          throw new ScenarioError(`${at}.${field}: {{llm_latency_ms}} needs llmLatencyMs: {p50, p99}`);
      }
    };
    check('path', r.path);
    for (const [k, v] of Object.entries(r.headers ?? {})) check(`headers.${k}`, v);
    if (r.body !== undefined) check('body', JSON.stringify(r.body));
    if (r.task) check('task.poll', r.task.poll, true);
    for (const [field, d] of [
      ['timeout', r.timeout],
      ['task.interval', r.task?.interval],
      ['task.timeout', r.task?.timeout],
    ] as const)
      if (d !== undefined && parseDurationMs(d, { positive: true }) === null)
        throw new ScenarioError(`${at}.${field}: must be a duration > 0 such as 250ms or 30s`);
  });
  return {
    name: f.name ?? 'scenario',
    source: where,
    requests: f.requests,
    ...(f.thresholds ? { thresholds: f.thresholds } : {}),
  };
}

/**
 * Read a scenario file (YAML or JSON).
 * @throws ScenarioError (one line each) when it cannot be read, parsed or validated.
 */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(`${path}: cannot read the scenario file (${fileErrorText(e)})`);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ScenarioError(
      `${path}: ${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    );
  }
  const value = doc.toJS() as unknown;
  const s = validateScenario(value ?? {}, path);
  if (s.name === 'scenario') s.name = path.replace(/^.*\//, '').replace(/\.(ya?ml|json)$/, '');
  return s;
}

/** A bundled scenario by name (`loadtest/scenarios/<name>.yaml`). @throws ScenarioError for an unknown name. */
export function bundledScenario(name: string): Scenario {
  if (!(BUNDLED as readonly string[]).includes(name))
    throw new ScenarioError(
      `--scenario: unknown scenario ${name} (bundled: ${BUNDLED.join(', ')}; or give --scenario-file)`,
    );
  return loadScenarioFile(join(SCENARIO_DIR, `${name}.yaml`));
}

/**
 * The poll interval of a task kind: a quarter of its LLM p50, between 250 ms
 * and 5 s, so thousands of tasks in flight do not turn into tens of thousands
 * of polls per second (task_queue_wait comes from the server's timestamps and
 * is exact; task_e2e is late by up to one interval).
 */
function pollInterval(llmP50Ms: number | undefined): string {
  return `${Math.round(Math.min(5000, Math.max(250, (llmP50Ms ?? 0) / 4)))}ms`;
}

/** The most transactions the reference API splits one read into (`db_tx`; loadtest/api/db.ts MAX_DB_TRANSACTIONS). */
export const REFERENCE_API_MAX_DB_TX = 10;

/**
 * The `&db_tx=N` of a sync kind's read, always sent: without it the API runs
 * the sleep and the read in one checkout but as two PgBouncer transactions
 * (autocommit), while the model counts dbTransactions (default 1).
 */
function dbTxParam(k: ArenaDeployment['spec']['load']['requestMix'][number], i: number): string {
  const n = k.dbTransactions ?? 1;
  if (n > REFERENCE_API_MAX_DB_TX)
    throw new ScenarioError(
      `spec.load.requestMix[${i}].dbTransactions: ${n} transactions, the reference API runs at most ${REFERENCE_API_MAX_DB_TX} per request (db_tx)`,
    );
  return `&db_tx=${n}`;
}

/**
 * The reference API's requests for an ArenaDeployment's request mix, one per
 * kind, weighted as the mix: `sync` -> `GET /api/matches?db_sleep_ms=<dbTimeMs>`
 * (holds a pooled connection for the kind's DB time; with `&db_tx=<dbTransactions>`
 * when that is not 1: that many transactions, each its own checkout), `stream` -> the SSE
 * debate (`POST /api/tournament/match/stream`, one LLM call, then the ELO
 * save), `async` -> the task round trip (`POST /api/llmchat/prompts/arena/api`,
 * then poll `GET /api/llmchat/tasks/{task_id}` every LLM p50 / 4, 250 ms to 5 s). Stream and async requests send
 * `llm_latency_ms` drawn from the kind's `llmTimeMs` lognormal, so the offered
 * service time is the plan's. Every request sends `X-Client-Id: {{user_id}}`.
 * @throws ScenarioError when a sync kind asks for more than REFERENCE_API_MAX_DB_TX transactions.
 */
export function fromRequestMix(ad: ArenaDeployment): Scenario {
  const requests: RequestSpec[] = ad.spec.load.requestMix.map((k, i) => {
    const base = { name: k.name, weight: k.weight, headers: { 'x-client-id': '{{user_id}}' } };
    const llm = k.llmTimeMs ? { llmLatencyMs: { p50: k.llmTimeMs.p50, p99: k.llmTimeMs.p99 } } : {};
    switch (k.kind) {
      case 'stream':
        return {
          ...base,
          ...llm,
          kind: 'sse',
          method: 'POST',
          path: '/api/tournament/match/stream',
          body: {
            user_id: '{{user_id}}',
            topic: 'capacity',
            proponent_model: '{{model_a}}',
            opponent_model: '{{model_b}}',
            llm_latency_ms: '{{llm_latency_ms}}',
          },
          sse: { tokenEvent: 'message', doneEvent: 'match', errorEvent: 'error' },
        } satisfies RequestSpec;
      case 'async':
        return {
          ...base,
          ...llm,
          kind: 'task',
          method: 'POST',
          path: '/api/llmchat/prompts/arena/api',
          body: { prompt: 'summarise the debate', user_id: '{{user_id}}', llm_latency_ms: '{{llm_latency_ms}}' },
          expect: [202],
          task: {
            poll: '/api/llmchat/tasks/{{task_id}}',
            idField: 'task_id',
            statusField: 'status',
            done: ['done'],
            failed: ['failed'],
            interval: pollInterval(k.llmTimeMs?.p50),
            createdField: 'created_at',
            startedField: 'started_at',
          },
        } satisfies RequestSpec;
      default:
        return {
          ...base,
          kind: 'http',
          method: 'GET',
          path: `/api/matches?user_id={{user_id}}&limit=5&db_sleep_ms=${Math.round(k.dbTimeMs)}${dbTxParam(k, i)}`,
        } satisfies RequestSpec;
    }
  });
  return validateScenario({ name: `${ad.metadata.name}-mix`, requests }, `${ad.metadata.name}: spec.load.requestMix`);
}

/** The values one iteration's templates read. */
export interface TemplateContext {
  vu: number;
  worker: number;
  iter: number;
  llmLatencyMs: number;
  modelA: number;
  modelB: number;
  rand: number;
  taskId: string;
}

/** A literal piece of text, or a variable. */
type Part = string | { v: Var };

/** A compiled template: literal parts and variables, joined per iteration. */
export class Template {
  private readonly parts: Part[] = [];
  /** The text when it holds no variable. */
  private readonly fixed: string | undefined;

  /**
   * @param json the text is a JSON document: a string that is exactly `"{{var}}"` of a numeric
   * variable becomes the bare number.
   */
  constructor(text: string, json = false) {
    const re = json ? /"\{\{\s*([a-z_]+)\s*\}\}"|\{\{\s*([a-z_]+)\s*\}\}/g : /\{\{\s*([a-z_]+)\s*\}\}()/g;
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index! > last) this.parts.push(text.slice(last, m.index));
      const quoted = json ? m[1] : undefined;
      if (quoted !== undefined) {
        if (NUMERIC.has(quoted)) this.parts.push({ v: quoted as Var });
        else this.parts.push('"', { v: quoted as Var }, '"');
      } else this.parts.push({ v: (json ? m[2] : m[1]) as Var });
      last = m.index! + m[0].length;
    }
    if (last < text.length) this.parts.push(text.slice(last));
    this.fixed = this.parts.every((p) => typeof p === 'string') ? (this.parts as string[]).join('') : undefined;
  }

  /** The text for one iteration. */
  render(c: TemplateContext): string {
    if (this.fixed !== undefined) return this.fixed;
    let out = '';
    for (const p of this.parts) out += typeof p === 'string' ? p : value(p.v, c);
    return out;
  }
}

const MODELS = Array.from({ length: 16 }, (_, i) => `model-${String.fromCharCode(97 + i)}`);

function value(v: Var, c: TemplateContext): string {
  switch (v) {
    case 'vu':
      return String(c.vu);
    case 'worker':
      return String(c.worker);
    case 'iter':
      return String(c.iter);
    case 'user_id':
      return `vu-${c.worker}-${c.vu}`;
    case 'uuid':
      return randomUUID();
    case 'rand':
      return String(c.rand);
    case 'llm_latency_ms':
      return String(c.llmLatencyMs);
    case 'model_a':
      return MODELS[c.modelA % 16]!;
    case 'model_b':
      return MODELS[c.modelB % 16]!;
    case 'task_id':
      return encodeURIComponent(c.taskId);
  }
}

/** The latency metrics a request can have an objective on (goodput). */
export const OBJECTIVE_METRICS = ['http_req_duration', 'ttft', 'e2e_latency', 'task_e2e'] as const;

/** A threshold as far as objectives need it (thresholds.ts ThresholdSpec). */
interface ThresholdLike {
  metric: string;
  tags: Record<string, string>;
  aggregation: string;
  op: string;
  limit: number;
}

/**
 * Latency objectives from thresholds: `p(N)`, `med` or `max` bounded with `<`
 * or `<=` on an objective metric (OBJECTIVE_METRICS) become that request's
 * objective (all requests without a `scenario` tag; other tags are skipped);
 * where the scenario file already has one, the tighter of the two wins.
 * Mutates the scenario's requests.
 */
export function objectivesFromThresholds(scenario: Scenario, thresholds: readonly ThresholdLike[]): void {
  for (const t of thresholds) {
    if (!(OBJECTIVE_METRICS as readonly string[]).includes(t.metric)) continue;
    if (!/^(p\(|med$|max$)/.test(t.aggregation) || (t.op !== '<' && t.op !== '<=')) continue;
    const tagNames = Object.keys(t.tags);
    if (tagNames.some((k) => k !== 'scenario')) continue;
    const metric = t.metric as (typeof OBJECTIVE_METRICS)[number];
    for (const r of scenario.requests) {
      if (t.tags['scenario'] !== undefined && t.tags['scenario'] !== r.name) continue;
      const o = (r.objectives ??= {});
      const had = o[metric] === undefined ? null : parseDurationMs(o[metric]);
      if (had === null || t.limit < had) o[metric] = t.limit;
    }
  }
}
