/**
 * Protocol clients of one iteration, on undici's dispatcher API
 * (`Dispatcher.request` on the VU's own `Client`: no fetch, no response
 * buffering for streams):
 * - `http`: one request; the body is read to the end.
 * - `sse`: one request whose body is parsed with eventsource-parser as it
 *   arrives; token events give TTFT and ITL.
 * - `task`: submit (POST), then poll the task until it is done or failed.
 *
 * Each records into its scenario's `ScenarioMetrics` (metrics.ts) relative to
 * the iteration's scheduled start. A request that fails is counted with a
 * reason (`failureReason`). When the engine is stopping and destroys its pools,
 * requests still running end as `interrupted_iterations`, not as failures.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createParser } from 'eventsource-parser';
import type { Dispatcher } from 'undici';
import { parseDurationMs } from './duration.js';
import type { ScenarioMetrics } from './metrics.js';
import { lognormalSampler, type Random } from './random.js';
import { Template, type RequestSpec, type TemplateContext } from './scenario.js';

/** Default timeout of a request (headers, and the gap between body chunks), ms. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** A request spec compiled for the hot path: templates parsed once, static headers shared. */
export interface PreparedRequest {
  spec: RequestSpec;
  name: string;
  method: Dispatcher.HttpMethod;
  path: Template;
  /** Static headers (shared object) or templated ones. */
  headers: Record<string, string> | [string, Template][];
  body: Template | undefined;
  expected: (status: number) => boolean;
  timeoutMs: number;
  llmLatency: (() => number) | undefined;
  poll: Template | undefined;
  pollIntervalMs: number;
  taskTimeoutMs: number;
  /** The request options when nothing in them is templated (shared, never mutated). */
  fixedOptions: Dispatcher.DispatchOptions | undefined;
  /** Whether any template reads the iteration's variables (else the context is not built). */
  templated: boolean;
  /** Latency objectives, ms (NaN: none); `hasObjectives` when any is set. */
  objectives: Objectives;
  hasObjectives: boolean;
}

/** Latency objectives of a request, ms; NaN where there is none. */
export interface Objectives {
  http_req_duration: number;
  ttft: number;
  e2e_latency: number;
  task_e2e: number;
}

const OBJECTIVE_NAMES = ['http_req_duration', 'ttft', 'e2e_latency', 'task_e2e'] as const;

/**
 * Whether a successful request met every objective (goodput, as in DistServe,
 * Zhong et al. 2024: requests served within their latency objectives). An
 * objective on a metric the request did not record (NaN) is not met.
 */
export function meetsObjectives(o: Objectives, duration: number, ttft: number, e2e: number, taskE2e: number): boolean {
  return (
    !(duration > o.http_req_duration) &&
    !(o.ttft === o.ttft && !(ttft <= o.ttft)) &&
    !(o.e2e_latency === o.e2e_latency && !(e2e <= o.e2e_latency)) &&
    !(o.task_e2e === o.task_e2e && !(taskE2e <= o.task_e2e))
  );
}

/** Compile a request spec (validated by scenario.ts) for `random` (its LLM latency draws). */
export function prepare(spec: RequestSpec, random: Random, basePath = ''): PreparedRequest {
  const headerEntries = Object.entries(spec.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  if (spec.body !== undefined && !headerEntries.some(([k]) => k === 'content-type'))
    headerEntries.push(['content-type', 'application/json']);
  if (spec.kind === 'sse' && !headerEntries.some(([k]) => k === 'accept'))
    headerEntries.push(['accept', 'text/event-stream']);
  const templated = headerEntries.some(([, v]) => v.includes('{{'));
  const expect = spec.expect ? new Set(spec.expect) : undefined;
  const anyTemplate =
    templated ||
    (basePath + spec.path).includes('{{') ||
    (spec.body !== undefined && JSON.stringify(spec.body).includes('{{'));
  const timeoutMs = spec.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDurationMs(spec.timeout)!;
  const fixedOptions: Dispatcher.DispatchOptions | undefined = anyTemplate
    ? undefined
    : {
        path: basePath + spec.path,
        method: spec.method as Dispatcher.HttpMethod,
        headers: Object.fromEntries(headerEntries),
        ...(spec.body !== undefined ? { body: JSON.stringify(spec.body) } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      };
  const objectives = Object.fromEntries(
    OBJECTIVE_NAMES.map((n) => {
      const v = spec.objectives?.[n];
      return [n, v === undefined ? NaN : parseDurationMs(v)!];
    }),
  ) as unknown as Objectives;
  return {
    objectives,
    hasObjectives: OBJECTIVE_NAMES.some((n) => objectives[n] === objectives[n]),
    fixedOptions,
    templated: anyTemplate,
    spec,
    name: spec.name,
    method: spec.method as Dispatcher.HttpMethod,
    path: new Template(basePath + spec.path),
    headers: templated
      ? headerEntries.map(([k, v]): [string, Template] => [k, new Template(v)])
      : Object.fromEntries(headerEntries),
    body: spec.body === undefined ? undefined : new Template(JSON.stringify(spec.body), true),
    expected: expect ? (s) => expect.has(s) : (s) => s >= 200 && s < 300,
    timeoutMs,
    llmLatency: spec.llmLatencyMs ? lognormalSampler(spec.llmLatencyMs.p50, spec.llmLatencyMs.p99, random) : undefined,
    poll: spec.task ? new Template(basePath + spec.task.poll) : undefined,
    pollIntervalMs: spec.task?.interval === undefined ? 250 : parseDurationMs(spec.task.interval)!,
    taskTimeoutMs: spec.task?.timeout === undefined ? 300_000 : parseDurationMs(spec.task.timeout)!,
  };
}

/** One iteration as the protocol clients see it. */
export interface Iteration {
  /** Scheduled start, ms on the engine clock. */
  scheduled: number;
  steady: boolean;
  ctx: TemplateContext;
  m: ScenarioMetrics;
  /** The engine clock (ms since the run's start). */
  now: () => number;
  /** True once the engine is stopping (interrupted requests are not failures). */
  stopping: () => boolean;
}

function headersOf(p: PreparedRequest, ctx: TemplateContext): Record<string, string> {
  if (!Array.isArray(p.headers)) return p.headers;
  const h: Record<string, string> = {};
  for (const [k, t] of p.headers) h[k] = t.render(ctx);
  return h;
}

/**
 * The failure reason of an error thrown by undici or the socket: `timeout`,
 * `connect_timeout`, `refused`, `reset`, `dns`, `tls`, `interrupted` (pool
 * destroyed or aborted) or `error <code>`.
 */
export function failureReason(e: unknown): string {
  let err = e as (Error & { code?: string; cause?: unknown }) | undefined;
  for (let depth = 0; err && depth < 4; depth++) {
    const code = err.code ?? '';
    const known = REASON_OF_CODE[code];
    if (known) return known;
    if (/^(ERR_TLS|CERT_|DEPTH_ZERO|UNABLE_TO|SELF_SIGNED)/.test(code) || /SSL|TLS/.test(err.message)) return 'tls';
    if (err.name === 'AbortError') return 'interrupted';
    if (err.cause === undefined) return code ? `error ${code}` : `error ${err.name || 'Error'}`;
    err = err.cause as typeof err;
  }
  return 'error';
}

/** Failure reasons of undici's and the socket's error codes. */
const REASON_OF_CODE: Record<string, string> = {
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'connect_timeout',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  UND_ERR_DESTROYED: 'interrupted',
  UND_ERR_CLOSED: 'interrupted',
  UND_ERR_ABORTED: 'interrupted',
  ABORT_ERR: 'interrupted',
  EMFILE: 'out_of_files',
  ENFILE: 'out_of_files',
  EADDRNOTAVAIL: 'out_of_ports',
};

/** `http_503 llm_slots_busy`: the status and, when the body is JSON with an `error` code, that code. */
async function statusReason(status: number, body: Dispatcher.ResponseData['body']): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      if (text.length < 4096) text += (chunk as Buffer).toString('utf8');
    }
  } catch {
    // the reason is the status
  }
  return reasonOf(status, text);
}

/**
 * Record one completed request of an iteration that ends with it: counted in
 * `http_reqs` and `iterations`, its duration from the scheduled start in
 * `http_req_duration`, and either in `http_req_duration_expected` (no
 * `failure`) or as a failure with that reason.
 */
function recordResponse(it: Iteration, failure: string | undefined, p?: PreparedRequest): void {
  const m = it.m;
  const d = it.now() - it.scheduled;
  m.count('http_reqs', it.steady);
  m.trend('http_req_duration', d, it.steady);
  if (failure === undefined) {
    m.trend('http_req_duration_expected', d, it.steady);
    if (p?.hasObjectives && meetsObjectives(p.objectives, d, NaN, NaN, NaN)) m.count('good_iterations', it.steady);
  } else m.fail(failure, it.steady);
  m.count('iterations', it.steady);
}

/** Record an error thrown by a request: interrupted when the engine stops, else a failure. Returns false. */
function failed(it: Iteration, e: unknown, durationOf = true): false {
  const reason = failureReason(e);
  if (reason === 'interrupted' || it.stopping()) {
    it.m.count('interrupted_iterations', it.steady);
    return false;
  }
  it.m.count('http_reqs', it.steady);
  if (durationOf) it.m.trend('http_req_duration', it.now() - it.scheduled, it.steady);
  it.m.fail(reason, it.steady);
  it.m.count('iterations', it.steady);
  return false;
}

function options(
  p: PreparedRequest,
  it: Iteration,
  path?: string,
  method?: Dispatcher.HttpMethod,
): Dispatcher.RequestOptions {
  if (p.fixedOptions && method === undefined) return p.fixedOptions as Dispatcher.RequestOptions;
  const ctx = it.ctx;
  const body = method === undefined && p.body ? p.body.render(ctx) : undefined;
  return {
    path: path ?? p.path.render(ctx),
    method: method ?? p.method,
    headers: headersOf(p, ctx),
    ...(body !== undefined ? { body } : {}),
    headersTimeout: p.timeoutMs,
    bodyTimeout: p.timeoutMs,
  };
}

/** `http_503 llm_slots_busy` from a status and the start of an error body. */
function reasonOf(status: number, body: string): string {
  const m = /"error"\s*:\s*"([a-z0-9_]{1,40})"/.exec(body);
  return m ? `http_${status} ${m[1]}` : `http_${status}`;
}

/**
 * One plain HTTP request at a time, through `Dispatcher.dispatch` with this
 * object as the handler: no response stream and no promise per request (the
 * cheapest path undici offers). A VU owns one and reuses it for each of its
 * iterations, so the hot path allocates almost nothing. `http_req_duration`
 * ends when the last body byte arrived.
 */
export class HttpCall {
  private p!: PreparedRequest;
  private it!: Iteration;
  private done!: () => void;
  private status = 0;
  private ok = false;
  private errorBody = '';

  /** Send `p` for iteration `it`; `done` is called once it completed or failed. */
  start(client: Dispatcher, p: PreparedRequest, it: Iteration, done: () => void): void {
    this.p = p;
    this.it = it;
    this.done = done;
    this.status = 0;
    this.ok = false;
    this.errorBody = '';
    // undici 7's Client takes the handler callbacks below (onConnect ... onComplete/onError)
    client.dispatch(options(p, it), this as unknown as Dispatcher.DispatchHandler);
  }

  onConnect(): void {}

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    this.ok = this.p.expected(statusCode);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (!this.ok && this.errorBody.length < 4096) this.errorBody += chunk.toString('utf8');
    return true;
  }

  onComplete(): void {
    recordResponse(this.it, this.ok ? undefined : reasonOf(this.status, this.errorBody), this.p);
    this.done();
  }

  onError(e: Error): void {
    failed(this.it, e);
    this.done();
  }
}

/**
 * One SSE stream at a time, through `Dispatcher.dispatch` with this object as
 * the handler (like HttpCall: no response stream, no promise per chunk): each
 * body chunk is decoded and fed to eventsource-parser as it arrives; token
 * events give TTFT and ITL. A stream without its done event (or with an error
 * event, or broken) is cut short. A VU owns one and reuses it.
 */
export class SseCall {
  private p!: PreparedRequest;
  private it!: Iteration;
  private done!: () => void;
  private status = 0;
  private ok = false;
  private errorBody = '';
  private tokens = 0;
  private first = 0;
  private last = 0;
  private sawDone = false;
  private errorCode: string | undefined;
  private readonly decoder = new TextDecoder();
  private readonly parser = createParser({ onEvent: (ev) => this.onEvent(ev.event ?? 'message', ev.data) });

  /** Open stream `p` for iteration `it`; `done` is called once it ended, failed or was cut. */
  start(client: Dispatcher, p: PreparedRequest, it: Iteration, done: () => void): void {
    this.p = p;
    this.it = it;
    this.done = done;
    this.status = 0;
    this.ok = false;
    this.errorBody = '';
    this.tokens = 0;
    this.first = 0;
    this.last = 0;
    this.sawDone = false;
    this.errorCode = undefined;
    this.parser.reset();
    this.decoder.decode(); // drop any partial character of the previous stream
    client.dispatch(options(p, it), this as unknown as Dispatcher.DispatchHandler);
  }

  private onEvent(type: string, data: string): void {
    const sse = this.p.spec.sse!;
    const it = this.it;
    if (type === sse.tokenEvent) {
      const t = it.now();
      if (this.tokens === 0) {
        this.first = t;
        it.m.trend('ttft', t - it.scheduled, it.steady);
      } else it.m.trend('itl', t - this.last, it.steady);
      this.last = t;
      this.tokens++;
    } else if (type === sse.doneEvent) this.sawDone = true;
    else if (type === sse.errorEvent) this.errorCode = /"error"\s*:\s*"([a-z0-9_]{1,40})"/.exec(data)?.[1] ?? 'error';
  }

  onConnect(): void {}

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    this.ok = this.p.expected(statusCode);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.ok) this.parser.feed(this.decoder.decode(chunk, { stream: true }));
    else if (this.errorBody.length < 4096) this.errorBody += chunk.toString('utf8');
    return true;
  }

  onComplete(): void {
    if (this.ok) this.finish(undefined);
    else recordResponse(this.it, reasonOf(this.status, this.errorBody));
    this.done();
  }

  onError(e: Error): void {
    const reason = failureReason(e);
    if (!this.ok) failed(this.it, e);
    else if (reason === 'interrupted' || this.it.stopping()) this.it.m.count('interrupted_iterations', this.it.steady);
    else this.finish(`stream_${reason}`);
    this.done();
  }

  /** Record a stream that ended (cut: why it was cut short, if it was). */
  private finish(broken: string | undefined): void {
    const it = this.it;
    const m = it.m;
    const end = it.now();
    const e2e = end - it.scheduled;
    let cut = broken;
    if (this.errorCode !== undefined) cut = `sse_error ${this.errorCode}`;
    else if (!cut && this.p.spec.sse!.doneEvent !== undefined && !this.sawDone) cut = 'stream_cut_short';
    m.count('http_reqs', it.steady);
    m.trend('http_req_duration', e2e, it.steady);
    m.trend('e2e_latency', e2e, it.steady);
    m.count('tokens', it.steady, this.tokens);
    if (this.tokens >= 2) m.trend('tpot', (end - this.first) / (this.tokens - 1), it.steady);
    if (cut) {
      m.count('streams_cut_short', it.steady);
      m.fail(cut, it.steady);
    } else {
      m.trend('http_req_duration_expected', e2e, it.steady);
      const ttft = this.tokens > 0 ? this.first - it.scheduled : NaN;
      if (this.p.hasObjectives && meetsObjectives(this.p.objectives, e2e, ttft, e2e, NaN))
        m.count('good_iterations', it.steady);
    }
    m.count('iterations', it.steady);
  }
}

const field = (o: unknown, k: string): unknown =>
  o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined;

/** The async task round trip: submit, then poll until done (task_e2e, task_queue_wait) or failed. */
export async function runTask(pool: Dispatcher, p: PreparedRequest, it: Iteration): Promise<void> {
  const m = it.m;
  const task = p.spec.task!;
  let res: Dispatcher.ResponseData;
  let json: unknown;
  try {
    res = await pool.request(options(p, it));
    if (!p.expected(res.statusCode)) {
      recordResponse(it, await statusReason(res.statusCode, res.body));
      return;
    }
    json = await res.body.json();
  } catch (e) {
    failed(it, e);
    return;
  }
  const submitted = it.now() - it.scheduled;
  m.count('http_reqs', it.steady);
  m.trend('http_req_duration', submitted, it.steady);
  const id = field(json, task.idField);
  if (typeof id !== 'string' && typeof id !== 'number') {
    m.fail('task_no_id', it.steady);
    m.count('iterations', it.steady);
    return;
  }
  m.trend('http_req_duration_expected', submitted, it.steady);
  it.ctx.taskId = String(id);
  const path = p.poll!.render(it.ctx);
  for (;;) {
    await sleep(p.pollIntervalMs);
    if (it.stopping()) {
      m.count('interrupted_iterations', it.steady);
      return;
    }
    if (it.now() - it.scheduled > p.taskTimeoutMs) {
      m.fail('task_timeout', it.steady);
      m.count('iterations', it.steady);
      return;
    }
    let status: unknown;
    let body: unknown;
    try {
      const r = await pool.request(options(p, it, path, 'GET'));
      m.count('task_polls', it.steady);
      if (r.statusCode !== 200) {
        const reason = await statusReason(r.statusCode, r.body);
        m.fail(`poll_${reason}`, it.steady);
        m.count('iterations', it.steady);
        return;
      }
      body = await r.body.json();
      status = field(body, task.statusField);
    } catch (e) {
      failed(it, e, false);
      return;
    }
    if (task.done.includes(String(status))) {
      const e2e = it.now() - it.scheduled;
      m.trend('task_e2e', e2e, it.steady);
      if (p.hasObjectives && meetsObjectives(p.objectives, NaN, NaN, NaN, e2e)) m.count('good_iterations', it.steady);
      const created = task.createdField ? Date.parse(String(field(body, task.createdField))) : NaN;
      const started = task.startedField ? Date.parse(String(field(body, task.startedField))) : NaN;
      if (Number.isFinite(created) && Number.isFinite(started))
        m.trend('task_queue_wait', Math.max(0, started - created), it.steady);
      m.count('iterations', it.steady);
      return;
    }
    if (task.failed.includes(String(status))) {
      m.fail('task_failed', it.steady);
      m.count('iterations', it.steady);
      return;
    }
  }
}
