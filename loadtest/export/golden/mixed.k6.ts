// k6 script exported by `arena loadtest export k6` from the scenario mixed (loadtest/scenarios/mixed.yaml).
// Re-export it rather than edit it; the mapping is in arena's docs/loadtest.md, "Exporting to k6".
// Load: open model, 20 arrivals/s in all; ramp-up 10s, steady 60s, ramp-down 0s; one k6 scenario per request.
//
// k6's arrival-rate executors start iterations evenly spaced (uniform arrivals), not as a
// Poisson process as `arena loadtest run` does by default: queueing at the target shows less.
// k6 times each request from its actual start, not from its scheduled start as arena does.
// A task's polls are k6 requests too (tagged task_step: poll); its submit is task_step: submit.
//
// SSE requests use the xk6-sse extension (import sse from 'k6/x/sse'); a k6 without it
// cannot run this script. xk6-sse records http_reqs and http_req_duration, not http_req_failed.
// Its types: loadtest/export/k6-types/xk6-sse.d.ts in arena's source tree.
//
// Run: k6 run -e BASE_URL=http://host:port <this file>
import http, { type Response } from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import sse, { type Params } from 'k6/x/sse';
import type { Options } from 'k6/options';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18000').replace(/\/+$/, '');

// Thresholds arena evaluates that k6 cannot (k6 refuses to start with them):
//   client_saturated: rate<0.2 - client_saturated is not a metric of this k6 script (arena's engine measures it)
export const options: Options = {
  scenarios: {
    read: {
      // 12/s = 12 per 1s. Little's law: L = 12/s x 0.1 s expected duration
      // = 1.2 in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))
      executor: 'ramping-arrival-rate',
      exec: 'req_read',
      startRate: 0,
      timeUnit: '1s',
      stages: [{ duration: '10s', target: 12 }, { duration: '60s', target: 12 }],
      preAllocatedVUs: 2,
      maxVUs: 10,
    },
    'match-save': {
      // 2/s = 2 per 1s. Little's law: L = 2/s x 0.1 s expected duration
      // = 0.2 in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))
      executor: 'ramping-arrival-rate',
      exec: 'req_match_save',
      startRate: 0,
      timeUnit: '1s',
      stages: [{ duration: '10s', target: 2 }, { duration: '60s', target: 2 }],
      preAllocatedVUs: 1,
      maxVUs: 10,
    },
    'debate-stream': {
      // 4/s = 4 per 1s. Little's law: L = 4/s x 2.489 s expected duration
      // = 9.954 in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))
      executor: 'ramping-arrival-rate',
      exec: 'req_debate_stream',
      startRate: 0,
      timeUnit: '1s',
      stages: [{ duration: '10s', target: 4 }, { duration: '60s', target: 4 }],
      preAllocatedVUs: 10,
      maxVUs: 40,
    },
    task: {
      // 2/s = 2 per 1s. Little's law: L = 2/s x 2.739 s expected duration
      // = 5.477 in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))
      executor: 'ramping-arrival-rate',
      exec: 'req_task',
      startRate: 0,
      timeUnit: '1s',
      stages: [{ duration: '10s', target: 2 }, { duration: '60s', target: 2 }],
      preAllocatedVUs: 6,
      maxVUs: 22,
    },
  },
  thresholds: {
    'http_req_duration{scenario:read}': ['p(99)<500'],
    http_req_failed: ['rate<0.05'],
    dropped_iterations: ['count==0'],
  },
};

/** Expected statuses: a status or an inclusive range (as http.expectedStatuses takes them). */
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
  check(res, { [`${req.name}: expected status`]: (r) => isExpected(r.status, req.expect) });
}

/**
 * A draw of the lognormal with median p50 and 99th percentile p99 (ms), as
 * arena's engine draws {{llm_latency_ms}}: sigma = ln(p99 / p50) / z99,
 * Box-Muller, whole ms, capped at 5 x p99.
 */
function lognormalMs(p50: number, p99: number): number {
  const sigma = Math.log(p99 / p50) / 2.3263478740408408;
  const z = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  return Math.min(5 * p99, Math.round(p50 * Math.exp(sigma * z)));
}

const MODELS = ['model-a', 'model-b', 'model-c', 'model-d', 'model-e', 'model-f', 'model-g', 'model-h', 'model-i', 'model-j', 'model-k', 'model-l', 'model-m', 'model-n', 'model-o', 'model-p'];

/** Two different model names of the 16 ({{model_a}}, {{model_b}}). */
function twoModels(): [string, string] {
  const a = Math.floor(Math.random() * MODELS.length);
  const b = (a + 1 + Math.floor(Math.random() * (MODELS.length - 1))) % MODELS.length;
  return [MODELS[a]!, MODELS[b]!];
}

// Stream metrics, named as arena names them (ms; tagged {scenario: <request>}).
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
    [`${req.name}: expected status`]: () => ok,
    [`${req.name}: stream complete`]: () => complete,
  });
}

// Task metrics, named as arena names them (ms; tagged {scenario: <request>}).
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
  if (!check(submit, { [`${req.name}: expected status`]: (r) => isExpected(r.status, req.expect) })) return;
  const id = field(submit, spec.idField);
  if (!check(id, { [`${req.name}: task id`]: (v) => typeof v === 'string' || typeof v === 'number' })) return;
  const url = pollUrl(String(id));
  let outcome = 'task_timeout';
  for (;;) {
    sleep(spec.intervalS);
    if (Date.now() - start > spec.timeoutMs) break;
    const poll = http.get(url, { headers: req.headers, tags: { scenario: req.name, task_step: 'poll' }, timeout: req.timeout });
    taskPolls.add(1, tags);
    if (poll.status !== 200) {
      outcome = `poll_http_${poll.status}`;
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
  check(outcome, { [`${req.name}: task done`]: (o) => o === 'done' });
}

/** read (http, weight 60): GET /api/matches?user_id={{user_id}}&limit=5&db_sleep_ms=5 */
export function req_read(): void {
  const userId = `vu-${exec.vu.idInTest}`;
  const req: Req = {
    name: 'read',
    method: 'GET',
    url: `${BASE_URL}/api/matches?user_id=${userId}&limit=5&db_sleep_ms=5`,
    body: null,
    headers: { 'x-client-id': userId },
    expect: [{ min: 200, max: 299 }],
    timeout: '60s',
  };
  send(req);
}

/** match-save (http, weight 10): POST /api/matches */
export function req_match_save(): void {
  const userId = `vu-${exec.vu.idInTest}`;
  const [modelA, modelB] = twoModels();
  const req: Req = {
    name: 'match-save',
    method: 'POST',
    url: `${BASE_URL}/api/matches`,
    body: JSON.stringify({ user_id: userId, topic: 'capacity', proponent_model: modelA, opponent_model: modelB, winner: 'proponent' }),
    headers: { 'x-client-id': userId, 'content-type': 'application/json' },
    expect: [201],
    timeout: '60s',
  };
  send(req);
}

/** debate-stream (sse, weight 20): POST /api/tournament/match/stream */
export function req_debate_stream(): void {
  const userId = `vu-${exec.vu.idInTest}`;
  const llmLatencyMs = lognormalMs(2000, 8000);
  const [modelA, modelB] = twoModels();
  const req: Req = {
    name: 'debate-stream',
    method: 'POST',
    url: `${BASE_URL}/api/tournament/match/stream`,
    body: JSON.stringify({ user_id: userId, topic: 'capacity', proponent_model: modelA, opponent_model: modelB, llm_latency_ms: llmLatencyMs }),
    headers: { 'x-client-id': userId, 'content-type': 'application/json' },
    expect: [{ min: 200, max: 299 }],
    timeout: '120s',
  };
  stream(req, { tokenEvent: 'message', doneEvent: 'match', errorEvent: 'error' });
}

/** task (task, weight 10): POST /api/llmchat/prompts/arena/api */
export function req_task(): void {
  const userId = `vu-${exec.vu.idInTest}`;
  const llmLatencyMs = lognormalMs(2000, 8000);
  const req: Req = {
    name: 'task',
    method: 'POST',
    url: `${BASE_URL}/api/llmchat/prompts/arena/api`,
    body: JSON.stringify({ prompt: 'summarise the debate', user_id: userId, llm_latency_ms: llmLatencyMs }),
    headers: { 'x-client-id': userId, 'content-type': 'application/json' },
    expect: [202],
    timeout: '60s',
  };
  runTask(req, {
    idField: 'task_id',
    statusField: 'status',
    done: ['done'],
    failed: ['failed'],
    intervalS: 0.25,
    timeoutMs: 300000,
    createdField: 'created_at',
    startedField: 'started_at',
  }, (taskId) => `${BASE_URL}/api/llmchat/tasks/${encodeURIComponent(taskId)}`);
}
