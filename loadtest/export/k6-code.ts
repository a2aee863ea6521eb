/**
 * The TypeScript text of one arena request as a k6 `exec` function, and the
 * helpers the exported script carries (exportK6 in k6.ts puts them together).
 *
 * Templates (loadtest/engine/scenario.ts) become JavaScript expressions:
 * `{{user_id}}` -> `vu-<exec.vu.idInTest>` (one client per k6 VU), `{{vu}}` ->
 * `exec.vu.idInTest`, `{{worker}}` -> `0` (k6 runs one process), `{{iter}}` ->
 * `exec.vu.iterationInScenario`, `{{uuid}}` -> `uuidv4()` (random bytes from
 * `k6/crypto`: k6 has no `crypto.randomUUID`), `{{rand}}` -> an integer in
 * [0, 2^31), `{{llm_latency_ms}}` -> `lognormalMs(p50, p99)` (the engine's
 * lognormal, drawn inline), `{{model_a}}`/`{{model_b}}` -> two different model
 * names of 16, `{{task_id}}` -> the submit response's id, URL-encoded. As in the
 * engine, `user_id`, `rand`, `llm_latency_ms` and the models are drawn once per
 * iteration, `uuid` once per use.
 */
import { parseDurationMs } from '../engine/duration.js';
import type { RequestSpec } from '../engine/scenario.js';
import { Z99 } from '../../operator/planner/latency.js';

/** Default request timeout of the engine (protocols.ts DEFAULT_TIMEOUT_MS), ms. */
const DEFAULT_TIMEOUT_MS = 60_000;

/** Which optional pieces a script needs (imports, helpers, custom metrics). */
export interface Needs {
  exec: boolean;
  uuid: boolean;
  llm: boolean;
  models: boolean;
  sse: boolean;
  task: boolean;
}

/** No optional piece. */
export const noNeeds = (): Needs => ({ exec: false, uuid: false, llm: false, models: false, sse: false, task: false });

/** A string as a single-quoted JavaScript literal. */
export function jsString(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

/**
 * A duration as k6 writes it: whole seconds as `30s`, otherwise whole milliseconds as `250ms`
 * (k6 and xk6-sse read both, Go-style). `ms` is rounded to a whole millisecond.
 */
export function k6Duration(ms: number): string {
  const whole = Math.round(ms);
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}

/** The template variables whose value is a number (the others are strings). */
const NUMERIC = new Set(['vu', 'worker', 'iter', 'rand', 'llm_latency_ms']);
const TEMPLATE = /\{\{\s*([a-z_]+)\s*\}\}/g;

/** The JavaScript expression of one template variable (marking what the script then needs). */
function varExpr(v: string, needs: Needs): string {
  switch (v) {
    case 'vu':
      needs.exec = true;
      return 'exec.vu.idInTest';
    case 'worker':
      return '0';
    case 'iter':
      needs.exec = true;
      return 'exec.vu.iterationInScenario';
    case 'user_id':
      needs.exec = true;
      return 'userId';
    case 'uuid':
      needs.uuid = true;
      return 'uuidv4()';
    case 'rand':
      return 'rand';
    case 'llm_latency_ms':
      needs.llm = true;
      return 'llmLatencyMs';
    case 'model_a':
      needs.models = true;
      return 'modelA';
    case 'model_b':
      needs.models = true;
      return 'modelB';
    default: // task_id (validateScenario refuses any other name)
      return 'encodeURIComponent(taskId)';
  }
}

/** A templated string as a JavaScript expression: a plain literal, or a template literal. */
function templateExpr(text: string, needs: Needs, prefix = ''): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
  if (!prefix && !text.includes('{{')) return jsString(text);
  const only = prefix ? null : /^\{\{\s*([a-z_]+)\s*\}\}$/.exec(text);
  if (only) return NUMERIC.has(only[1]!) ? `String(${varExpr(only[1]!, needs)})` : varExpr(only[1]!, needs);
  let out = prefix;
  let last = 0;
  for (const m of text.matchAll(TEMPLATE)) {
    const expr = varExpr(m[1]!, needs);
    out += esc(text.slice(last, m.index)) + (/^\d+$/.test(expr) ? expr : `\${${expr}}`);
    last = m.index + m[0].length;
  }
  return `\`${out}${esc(text.slice(last))}\``;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/**
 * A JSON body value as a JavaScript expression: a string that is exactly
 * `{{var}}` becomes the variable itself, so a numeric one (vu, worker, iter,
 * rand, llm_latency_ms) is sent as a JSON number, as the engine sends it.
 */
function bodyExpr(v: unknown, needs: Needs): string {
  if (typeof v === 'string') {
    const only = /^\{\{\s*([a-z_]+)\s*\}\}$/.exec(v);
    if (only) return varExpr(only[1]!, needs);
    return templateExpr(v, needs);
  }
  if (Array.isArray(v)) return `[${v.map((x) => bodyExpr(x, needs)).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const fields = Object.entries(v as Record<string, unknown>).map(
      ([k, x]) => `${IDENT.test(k) ? k : jsString(k)}: ${bodyExpr(x, needs)}`,
    );
    return fields.length ? `{ ${fields.join(', ')} }` : '{}';
  }
  return JSON.stringify(v) ?? 'null';
}

/** The request's headers as the engine sends them: lower-case names, content-type for a JSON body. */
function headersExpr(r: RequestSpec, needs: Needs): string {
  const entries = Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  if (r.body !== undefined && !entries.some(([k]) => k === 'content-type'))
    entries.push(['content-type', 'application/json']);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, v]) => `${IDENT.test(k) ? k : jsString(k)}: ${templateExpr(v, needs)}`).join(', ')} }`;
}

/** The per-iteration variables a request's templates read, as `const` lines. */
function declarations(used: Set<string>, llm: RequestSpec['llmLatencyMs']): string[] {
  const lines: string[] = [];
  if (used.has('user_id')) lines.push('const userId = `vu-${exec.vu.idInTest}`;');
  if (used.has('rand')) lines.push('const rand = Math.floor(Math.random() * 2147483648);');
  if (used.has('llm_latency_ms') && llm) lines.push(`const llmLatencyMs = lognormalMs(${llm.p50}, ${llm.p99});`);
  if (used.has('model_a') || used.has('model_b')) lines.push('const [modelA, modelB] = twoModels();');
  return lines;
}

/** Every template variable a request reads (path, headers, body, poll path). */
function usedVars(r: RequestSpec): Set<string> {
  const texts = [r.path, ...Object.values(r.headers ?? {}), JSON.stringify(r.body ?? null), r.task?.poll ?? ''];
  return new Set(texts.flatMap((t) => [...t.matchAll(TEMPLATE)].map((m) => m[1]!)));
}

const ms = (d: string | number | undefined, dflt: number) => (d === undefined ? dflt : parseDurationMs(d)!);

/** What one exec function needs to know about the request: its k6 name and think time. */
export interface ExecOptions {
  /** The exported function's name (a JavaScript identifier). */
  fn: string;
  /** Closed model: seconds to sleep after each iteration (0: none). */
  thinkTimeS: number;
}

/**
 * The exec function of one request: declares the iteration's variables, then
 * calls `send` (http), `stream` (sse) or `runTask` (task) of the script's
 * helpers. `needs` is updated with what the text uses.
 */
export function execFunction(r: RequestSpec, o: ExecOptions, needs: Needs): string {
  const used = usedVars(r);
  const expect = r.expect ? `[${r.expect.join(', ')}]` : '[{ min: 200, max: 299 }]';
  const req = [
    `name: ${jsString(r.name)}`,
    `method: ${jsString(r.method)}`,
    `url: ${templateExpr(r.path, needs, '${BASE_URL}')}`,
    `body: ${r.body === undefined ? 'null' : `JSON.stringify(${bodyExpr(r.body, needs)})`}`,
    `headers: ${headersExpr(r, needs)}`,
    `expect: ${expect}`,
    `timeout: ${jsString(k6Duration(ms(r.timeout, DEFAULT_TIMEOUT_MS)))}`,
  ];
  let call: string;
  if (r.kind === 'sse') {
    needs.sse = true;
    const s = r.sse ?? { tokenEvent: 'message', errorEvent: 'error' };
    const done = s.doneEvent === undefined ? 'undefined' : jsString(s.doneEvent);
    call = `stream(req, { tokenEvent: ${jsString(s.tokenEvent)}, doneEvent: ${done}, errorEvent: ${jsString(s.errorEvent)} });`;
  } else if (r.kind === 'task' && r.task) {
    needs.task = true;
    const t = r.task;
    const spec = [
      `idField: ${jsString(t.idField)}`,
      `statusField: ${jsString(t.statusField)}`,
      `done: [${t.done.map(jsString).join(', ')}]`,
      `failed: [${t.failed.map(jsString).join(', ')}]`,
      `intervalS: ${ms(t.interval, 250) / 1000}`,
      `timeoutMs: ${ms(t.timeout, 300_000)}`,
      `createdField: ${t.createdField === undefined ? 'undefined' : jsString(t.createdField)}`,
      `startedField: ${t.startedField === undefined ? 'undefined' : jsString(t.startedField)}`,
    ];
    const poll = `(taskId) => ${templateExpr(t.poll, needs, '${BASE_URL}')}`;
    call = `runTask(req, {\n    ${spec.join(',\n    ')},\n  }, ${poll});`;
  } else call = 'send(req);';
  const body = [
    ...declarations(used, r.llmLatencyMs),
    `const req: Req = {\n    ${req.join(',\n    ')},\n  };`,
    call,
    ...(o.thinkTimeS > 0 ? [`sleep(${o.thinkTimeS});`] : []),
  ];
  const what = `${r.name} (${r.kind}, weight ${r.weight}): ${r.method} ${r.path}`.replace(/\*\//g, '*\\/');
  return `/** ${what} */\nexport function ${o.fn}(): void {\n  ${body.join('\n  ')}\n}\n`;
}

/** The imports of a script. */
export function imports(needs: Needs, think: boolean): string {
  const lines = [
    needs.task ? "import http, { type Response } from 'k6/http';" : "import http from 'k6/http';",
    `import { check${think || needs.task ? ', sleep' : ''} } from 'k6';`,
  ];
  if (needs.exec) lines.push("import exec from 'k6/execution';");
  if (needs.sse || needs.task) lines.push("import { Counter, Trend } from 'k6/metrics';");
  if (needs.uuid) lines.push("import { randomBytes } from 'k6/crypto';");
  if (needs.sse) lines.push("import sse, { type Params } from 'k6/x/sse';");
  lines.push("import type { Options } from 'k6/options';");
  return lines.join('\n');
}

/** The helpers every script has: the request shape, expected statuses, `send`. */
const COMMON = `/** Expected statuses: a status or an inclusive range (as http.expectedStatuses takes them). */
type Expected = number | { min: number; max: number };

/** One request of an iteration, its templates already filled in. */
interface Req {
  name: string;
  method: string;
  url: string;
  body: string | null;
  headers: Record<string, string>;
  expect: Expected[];
  timeout: string;
}

function isExpected(status: number, expect: Expected[]): boolean {
  return expect.some((e) => (typeof e === 'number' ? status === e : status >= e.min && status <= e.max));
}

/** A plain HTTP request; http_req_failed counts the statuses outside req.expect. */
function send(req: Req): void {
  const res = http.request(req.method, req.url, req.body, {
    headers: req.headers,
    tags: { scenario: req.name },
    timeout: req.timeout,
    responseCallback: http.expectedStatuses(...req.expect),
  });
  check(res, { [\`\${req.name}: expected status\`]: (r) => isExpected(r.status, req.expect) });
}
`;

const UUID = `/** A random (version 4) UUID from k6/crypto's random bytes. */
function uuidv4(): string {
  const b = new Uint8Array(randomBytes(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return \`\${h.slice(0, 8)}-\${h.slice(8, 12)}-\${h.slice(12, 16)}-\${h.slice(16, 20)}-\${h.slice(20)}\`;
}
`;

const LLM = `/**
 * A draw of the lognormal with median p50 and 99th percentile p99 (ms), as
 * arena's engine draws {{llm_latency_ms}}: sigma = ln(p99 / p50) / z99,
 * Box-Muller, whole ms, capped at 5 x p99.
 */
function lognormalMs(p50: number, p99: number): number {
  const sigma = Math.log(p99 / p50) / ${Z99};
  const z = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  return Math.min(5 * p99, Math.round(p50 * Math.exp(sigma * z)));
}
`;

const MODELS = `const MODELS = [${Array.from({ length: 16 }, (_, i) => `'model-${String.fromCharCode(97 + i)}'`).join(', ')}];

/** Two different model names of the 16 ({{model_a}}, {{model_b}}). */
function twoModels(): [string, string] {
  const a = Math.floor(Math.random() * MODELS.length);
  const b = (a + 1 + Math.floor(Math.random() * (MODELS.length - 1))) % MODELS.length;
  return [MODELS[a]!, MODELS[b]!];
}
`;

const STREAM = `// Stream metrics, named as arena names them (ms; tagged {scenario: <request>}).
const ttft = new Trend('ttft', true);
const itl = new Trend('itl', true);
const tpot = new Trend('tpot', true);
const e2eLatency = new Trend('e2e_latency', true);
const tokens = new Counter('tokens');
const streamsCutShort = new Counter('streams_cut_short');

/** The event types of a stream: a token, the end of a complete stream, an error. */
interface StreamSpec {
  tokenEvent: string;
  doneEvent: string | undefined;
  errorEvent: string;
}

/**
 * An SSE request through xk6-sse (blocks the VU until the stream ends).
 * TTFT: iteration start to the first token event; ITL: gaps between token
 * events. A stream without its done event, with an error event or a read
 * error counts in streams_cut_short and fails the "stream complete" check.
 */
function stream(req: Req, spec: StreamSpec): void {
  const tags = { scenario: req.name };
  const start = Date.now();
  let first = 0;
  let last = 0;
  let count = 0;
  let sawDone = false;
  let broken = false;
  const params: Params = { method: req.method, headers: req.headers, tags, timeout: req.timeout };
  if (req.body !== null) params.body = req.body;
  const res = sse.open(req.url, params, (client) => {
    client.on('event', (event) => {
      const type = event.name === '' ? 'message' : event.name;
      if (type === spec.errorEvent) broken = true;
      else if (spec.doneEvent !== undefined && type === spec.doneEvent) sawDone = true;
      else if (type === spec.tokenEvent && event.data !== '') {
        const now = Date.now();
        if (count === 0) {
          first = now;
          ttft.add(now - start, tags);
        } else itl.add(now - last, tags);
        last = now;
        count++;
      }
    });
    client.on('error', () => {
      broken = true;
    });
  });
  const end = Date.now();
  e2eLatency.add(end - start, tags);
  tokens.add(count, tags);
  if (count >= 2) tpot.add((end - first) / (count - 1), tags);
  const ok = isExpected(res.status, req.expect);
  const complete = ok && !broken && res.error === '' && (spec.doneEvent === undefined || sawDone);
  if (ok && !complete) streamsCutShort.add(1, tags);
  check(res, {
    [\`\${req.name}: expected status\`]: () => ok,
    [\`\${req.name}: stream complete\`]: () => complete,
  });
}
`;

const TASK = `// Task metrics, named as arena names them (ms; tagged {scenario: <request>}).
const taskE2e = new Trend('task_e2e', true);
const taskQueueWait = new Trend('task_queue_wait', true);
const taskPolls = new Counter('task_polls');

/** How to read a task's submit and poll responses. */
interface TaskSpec {
  idField: string;
  statusField: string;
  done: string[];
  failed: string[];
  intervalS: number;
  timeoutMs: number;
  createdField: string | undefined;
  startedField: string | undefined;
}

/** A field of a JSON object response (undefined when the body is not a JSON object). */
function field(res: Response, key: string): unknown {
  let doc: unknown;
  try {
    doc = res.json();
  } catch {
    return undefined;
  }
  return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>)[key] : undefined;
}

/**
 * The async task round trip: submit (tagged task_step: submit), then poll
 * (task_step: poll) every intervalS until the status is done (task_e2e from
 * the iteration start) or failed, a poll answers non-200, or timeoutMs passed.
 */
function runTask(req: Req, spec: TaskSpec, pollUrl: (taskId: string) => string): void {
  const tags = { scenario: req.name };
  const start = Date.now();
  const submit = http.request(req.method, req.url, req.body, {
    headers: req.headers,
    tags: { scenario: req.name, task_step: 'submit' },
    timeout: req.timeout,
    responseCallback: http.expectedStatuses(...req.expect),
  });
  if (!check(submit, { [\`\${req.name}: expected status\`]: (r) => isExpected(r.status, req.expect) })) return;
  const id = field(submit, spec.idField);
  if (!check(id, { [\`\${req.name}: task id\`]: (v) => typeof v === 'string' || typeof v === 'number' })) return;
  const url = pollUrl(String(id));
  let outcome = 'task_timeout';
  for (;;) {
    sleep(spec.intervalS);
    if (Date.now() - start > spec.timeoutMs) break;
    const poll = http.get(url, { headers: req.headers, tags: { scenario: req.name, task_step: 'poll' }, timeout: req.timeout });
    taskPolls.add(1, tags);
    if (poll.status !== 200) {
      outcome = \`poll_http_\${poll.status}\`;
      break;
    }
    const status = String(field(poll, spec.statusField));
    if (spec.done.includes(status)) {
      outcome = 'done';
      taskE2e.add(Date.now() - start, tags);
      const created = spec.createdField ? Date.parse(String(field(poll, spec.createdField))) : NaN;
      const started = spec.startedField ? Date.parse(String(field(poll, spec.startedField))) : NaN;
      if (Number.isFinite(created) && Number.isFinite(started)) taskQueueWait.add(Math.max(0, started - created), tags);
      break;
    }
    if (spec.failed.includes(status)) {
      outcome = 'task_failed';
      break;
    }
  }
  check(outcome, { [\`\${req.name}: task done\`]: (o) => o === 'done' });
}
`;

/** The helper functions and metrics a script needs, in a fixed order. */
export function helpers(needs: Needs): string {
  return [
    COMMON,
    needs.uuid ? UUID : '',
    needs.llm ? LLM : '',
    needs.models ? MODELS : '',
    needs.sse ? STREAM : '',
    needs.task ? TASK : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** The custom metrics a script defines (name -> k6 metric type), for the thresholds it can keep. */
export function customMetrics(needs: Needs): Record<string, 'trend' | 'counter'> {
  return {
    ...(needs.sse
      ? {
          ttft: 'trend',
          itl: 'trend',
          tpot: 'trend',
          e2e_latency: 'trend',
          tokens: 'counter',
          streams_cut_short: 'counter',
          sse_event: 'counter',
        }
      : {}),
    ...(needs.task ? { task_e2e: 'trend', task_queue_wait: 'trend', task_polls: 'counter' } : {}),
  };
}
