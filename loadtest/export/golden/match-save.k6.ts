// k6 script exported by `arena loadtest export k6` from the scenario match-save (loadtest/scenarios/match-save.yaml).
// Re-export it rather than edit it; the mapping is in arena's docs/loadtest.md, "Exporting to k6".
// Load: open model, 20 arrivals/s in all; ramp-up 10s, steady 60s, ramp-down 0s; one k6 scenario per request.
//
// k6's arrival-rate executors start iterations evenly spaced (uniform arrivals), not as a
// Poisson process as `arena loadtest run` does by default: queueing at the target shows less.
// k6 times each request from its actual start, not from its scheduled start as arena does.
//
// Run: k6 run -e BASE_URL=http://host:port <this file>
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import type { Options } from 'k6/options';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18000').replace(/\/+$/, '');

// Thresholds arena evaluates that k6 cannot (k6 refuses to start with them):
//   client_saturated: rate<0.2 - client_saturated is not a metric of this k6 script (arena's engine measures it)
export const options: Options = {
  scenarios: {
    'match-save': {
      // 20/s = 20 per 1s. Little's law: L = 20/s x 0.1 s expected duration
      // = 2 in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))
      executor: 'ramping-arrival-rate',
      exec: 'req_match_save',
      startRate: 0,
      timeUnit: '1s',
      stages: [{ duration: '10s', target: 20 }, { duration: '60s', target: 20 }],
      preAllocatedVUs: 2,
      maxVUs: 10,
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

const MODELS = ['model-a', 'model-b', 'model-c', 'model-d', 'model-e', 'model-f', 'model-g', 'model-h', 'model-i', 'model-j', 'model-k', 'model-l', 'model-m', 'model-n', 'model-o', 'model-p'];

/** Two different model names of the 16 ({{model_a}}, {{model_b}}). */
function twoModels(): [string, string] {
  const a = Math.floor(Math.random() * MODELS.length);
  const b = (a + 1 + Math.floor(Math.random() * (MODELS.length - 1))) % MODELS.length;
  return [MODELS[a]!, MODELS[b]!];
}

/** match-save (http, weight 1): POST /api/matches */
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
