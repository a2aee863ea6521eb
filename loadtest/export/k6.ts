/**
 * `arena loadtest export k6`: an arena scenario and load as a k6 script
 * (TypeScript, for users whose pipelines run k6). arena never builds, vendors
 * or runs k6 (AGPL); the scripts are only type-checked against @types/k6 and
 * the xk6-sse declarations in k6-types/ (see docs/loadtest.md, "Exporting to k6").
 *
 * Mapping: each request of the scenario becomes one k6 scenario (named as the
 * request; its `exec` function issues the request) so `{scenario:<name>}`
 * thresholds keep working. Open model -> `constant-arrival-rate`
 * (`ramping-arrival-rate` with ramps), the rate split by weight; closed model
 * -> `constant-vus` (`ramping-vus`), the VUs split by weight.
 */
import { isAbsolute, relative } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import { REPO_ROOT } from '../../lib/util.js';
import { lognormalFromPercentiles } from '../../operator/planner/latency.js';
import { parseDurationMs } from '../engine/duration.js';
import type { RequestSpec, Scenario } from '../engine/scenario.js';
import type { ThresholdSpec } from '../engine/thresholds.js';
import { customMetrics, execFunction, helpers, imports, jsString, k6Duration, noNeeds, type Needs } from './k6-code.js';

/** Open model: `rate` arrivals per second in all, split by the requests' weights (or by `ratesByRequest`). */
export interface OpenLoad {
  model: 'open';
  /** Arrivals per second, all requests together (> 0). */
  rate: number;
  /** Per-request arrivals per second (e.g. a plan's); used as the weights, normalised to `rate`. */
  ratesByRequest?: Record<string, number>;
}

/** Closed model: `vus` VUs in all, split by the requests' weights, each pausing `thinkTimeMs` after an iteration. */
export interface ClosedLoad {
  model: 'closed';
  /** VUs in all (integer >= the number of requests: each request gets at least one). */
  vus: number;
  /** Pause after each iteration, ms (>= 0). */
  thinkTimeMs: number;
}

/** What to export. Durations in ms. */
export interface K6ExportInput {
  /** The parsed scenario (loadScenarioFile, bundledScenario or fromRequestMix of loadtest/engine/scenario.ts). */
  scenario: Scenario;
  load: OpenLoad | ClosedLoad;
  /** Steady phase, ms (> 0). */
  durationMs: number;
  /** Ramp-up from 0, ms (>= 0). */
  rampUpMs: number;
  /** Ramp-down to 0 after the steady phase, ms (>= 0). */
  rampDownMs: number;
  /** k6 thresholds: selector -> expressions (thresholdsRecord turns arena's parsed thresholds into this). */
  thresholds: Record<string, string[]>;
  /** The default of `BASE_URL` (the script reads `__ENV.BASE_URL` first). */
  baseUrl: string;
  /** Where the xk6-sse declarations are, relative to the script (named in the header when given). */
  sseTypesPath?: string;
}

/** One request's share of an open-model rate: exact, and as k6's integer `rate` per `timeUnit`. */
export interface RateShare {
  /** The request's name. */
  name: string;
  /** The exact share, arrivals per second. */
  perSecond: number;
  /** k6's `rate`: whole arrivals per `timeUnit` (>= 1). */
  rate: number;
}

/** k6 time units a rate is written in, and their length in seconds. */
const UNITS = [
  ['1s', 1],
  ['1m', 60],
  ['1h', 3600],
] as const;

/** Integers proportional to `exact` that sum to `total` (largest remainder; ties to the earlier entry). */
function apportion(exact: number[], total: number): number[] {
  const floors = exact.map(Math.floor);
  let left = total - floors.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    floors[i]!++;
    left--;
  }
  return floors;
}

/**
 * Split an open-model rate over the requests: shares proportional to the
 * weights (or to `load.ratesByRequest`), written as whole arrivals per one
 * common `timeUnit`, the shortest of 1s, 1m, 1h that keeps every share and the
 * total within 0.1 % (1h otherwise). The integers sum to round(rate x unit), so
 * sum(rate) / unit is the requested rate within half an arrival per unit
 * (a share under one arrival per hour is raised to one).
 * @throws InvalidInputError when `ratesByRequest` lacks a request or the rate is not > 0.
 */
export function splitOpenRate(
  requests: RequestSpec[],
  load: OpenLoad,
): { timeUnit: '1s' | '1m' | '1h'; unitS: number; shares: RateShare[] } {
  if (!(load.rate > 0) || !Number.isFinite(load.rate)) throw new InvalidInputError(`--rate: must be > 0`);
  const weights = requests.map((r) => {
    const w = load.ratesByRequest ? load.ratesByRequest[r.name] : r.weight;
    if (w === undefined || !(w >= 0))
      throw new InvalidInputError(`the plan has no rate for the scenario's request ${r.name}`);
    return w;
  });
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new InvalidInputError('the plan gives every request a rate of 0');
  const perSecond = weights.map((w) => (load.rate * w) / sum);
  const close = (a: number, b: number) => Math.abs(a - b) <= 0.001 * b;
  let pick: { unit: (typeof UNITS)[number]; ints: number[] } | undefined;
  for (const unit of UNITS) {
    const total = Math.round(load.rate * unit[1]);
    const ints = apportion(
      perSecond.map((p) => p * unit[1]),
      total,
    );
    pick = { unit, ints };
    if (close(total, load.rate * unit[1]) && ints.every((n, i) => n >= 1 && close(n, perSecond[i]! * unit[1]))) break;
  }
  const { unit, ints } = pick!;
  return {
    timeUnit: unit[0],
    unitS: unit[1],
    shares: requests.map((r, i) => ({ name: r.name, perSecond: perSecond[i]!, rate: Math.max(1, ints[i]!) })),
  };
}

/**
 * Split a closed model's VUs over the requests by weight (largest remainder),
 * at least one each (taken from the request with the most).
 * @throws InvalidInputError (`--concurrency: ...`) when there are fewer VUs than requests.
 */
export function splitVus(requests: RequestSpec[], vus: number): number[] {
  if (!Number.isInteger(vus) || vus < requests.length)
    throw new InvalidInputError(
      `--concurrency: k6 runs one scenario per request, each with at least one VU: give at least ${requests.length} (got ${vus})`,
    );
  const sum = requests.reduce((a, r) => a + r.weight, 0);
  const out = apportion(
    requests.map((r) => (vus * r.weight) / sum),
    vus,
  );
  for (let i = 0; i < out.length; i++) {
    if (out[i]! > 0) continue;
    const most = out.indexOf(Math.max(...out));
    out[most]!--;
    out[i] = 1;
  }
  return out;
}

/** The latency assumed for a request with no LLM time: the export does not know the target's (ms). */
export const NOMINAL_REQUEST_MS = 100;

/**
 * The expected duration of one iteration of `r`, ms, for Little's law:
 * NOMINAL_REQUEST_MS, plus the mean of the `llmLatencyMs` lognormal when the
 * request has one, plus one poll interval for a task.
 */
export function expectedDurationMs(r: RequestSpec): number {
  const llm = r.llmLatencyMs ? lognormalFromPercentiles(r.llmLatencyMs.p50, r.llmLatencyMs.p99).meanMs : 0;
  const poll = r.kind === 'task' ? (r.task?.interval === undefined ? 250 : parseDurationMs(r.task.interval)!) : 0;
  return NOMINAL_REQUEST_MS + llm + poll;
}

/**
 * VUs for an arrival-rate scenario by Little's law: in flight L = rate (1/s) x
 * expected duration (s); preAllocatedVUs = max(1, ceil(L)), maxVUs =
 * max(10, ceil(4 x L)) (room for the latency tail before k6 drops iterations).
 */
export function arrivalVus(perSecond: number, durationMs: number): { inFlight: number; pre: number; max: number } {
  const inFlight = (perSecond * durationMs) / 1000;
  const pre = Math.max(1, Math.ceil(inFlight - 1e-9));
  return { inFlight, pre, max: Math.max(10, Math.ceil(4 * inFlight - 1e-9)) };
}

/** k6's built-in metrics and their types. */
const BUILTIN: Record<string, K6MetricType> = {
  http_req_duration: 'trend',
  http_req_blocked: 'trend',
  http_req_connecting: 'trend',
  http_req_tls_handshaking: 'trend',
  http_req_sending: 'trend',
  http_req_waiting: 'trend',
  http_req_receiving: 'trend',
  iteration_duration: 'trend',
  http_req_failed: 'rate',
  checks: 'rate',
  http_reqs: 'counter',
  iterations: 'counter',
  dropped_iterations: 'counter',
  data_sent: 'counter',
  data_received: 'counter',
  vus: 'gauge',
  vus_max: 'gauge',
};

/** A k6 metric type. */
export type K6MetricType = 'trend' | 'rate' | 'counter' | 'gauge';

const AGGREGATIONS: Record<K6MetricType, string> = {
  trend: 'avg, min, med, max, p(N)',
  rate: 'rate',
  counter: 'count, rate',
  gauge: 'value',
};

function aggregationFits(type: K6MetricType, agg: string): boolean {
  if (type === 'trend') return ['avg', 'min', 'med', 'max'].includes(agg) || /^p\(.+\)$/.test(agg);
  if (type === 'counter') return agg === 'count' || agg === 'rate';
  return agg === (type === 'rate' ? 'rate' : 'value');
}

/** A threshold a k6 script cannot carry, and why. */
export interface DroppedThreshold {
  selector: string;
  expression: string;
  reason: string;
}

/**
 * Split thresholds into those k6 can evaluate in this script and the rest:
 * k6 refuses to start with a threshold on a metric the script does not have
 * (arena's engine-only metrics such as `client_saturated`, `saturation{pool:...}`,
 * `schedule_lag`) or with an aggregation k6 does not define for the metric's
 * type (arena's `count` on a trend). `custom` are the script's own metrics.
 * Kept selectors and expressions are copied unchanged, in input order.
 */
export function k6Thresholds(
  thresholds: Record<string, string[]>,
  custom: Record<string, K6MetricType>,
): { kept: Record<string, string[]>; dropped: DroppedThreshold[] } {
  const kept: Record<string, string[]> = {};
  const dropped: DroppedThreshold[] = [];
  for (const [selector, expressions] of Object.entries(thresholds)) {
    const metric = selector.replace(/\{.*$/, '').trim();
    const type = BUILTIN[metric] ?? custom[metric];
    for (const expression of expressions) {
      const agg = /^\s*(p\([^)]*\)|[a-z]+)/.exec(expression)?.[1] ?? '';
      let reason: string | undefined;
      if (!type) reason = `${metric} is not a metric of this k6 script (arena's engine measures it)`;
      else if (!aggregationFits(type, agg))
        reason = `k6 has no ${agg} for a ${type} metric (it has ${AGGREGATIONS[type]})`;
      if (reason) dropped.push({ selector, expression, reason });
      else (kept[selector] ??= []).push(expression);
    }
  }
  return { kept, dropped };
}

/** arena's parsed thresholds (ThresholdSpec[], merged) as a k6 thresholds object: selector -> expressions. */
export function thresholdsRecord(specs: ThresholdSpec[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of specs) (out[s.selector] ??= []).push(s.expression);
  return out;
}

/** Unique names built from the request names with `clean` (a suffix _2, _3... on a clash). */
function uniqueNames(names: string[], clean: (n: string) => string): string[] {
  const seen = new Set<string>();
  return names.map((n) => {
    const base = clean(n);
    let name = base;
    for (let i = 2; seen.has(name); i++) name = `${base}_${i}`;
    seen.add(name);
    return name;
  });
}

const num = (x: number) => String(+x.toFixed(3));
const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : jsString(k));

/** The phases of a ramping executor as k6 stages (zero-length ramps left out). */
function stages(i: K6ExportInput, target: number): string {
  const list = [
    [i.rampUpMs, target],
    [i.durationMs, target],
    [i.rampDownMs, 0],
  ].filter(([d]) => d! > 0);
  return `[${list.map(([d, t]) => `{ duration: '${k6Duration(d!)}', target: ${t} }`).join(', ')}]`;
}

/** The `options.scenarios` entries (one per request), each a list of lines. */
function scenarioEntries(i: K6ExportInput, keys: string[], fns: string[]): string[][] {
  const reqs = i.scenario.requests;
  const ramps = i.rampUpMs > 0 || i.rampDownMs > 0;
  const duration = `duration: '${k6Duration(i.durationMs)}'`;
  if (i.load.model === 'closed') {
    const vus = splitVus(reqs, i.load.vus);
    const all = i.load.vus;
    const sum = num(reqs.reduce((a, x) => a + x.weight, 0));
    return reqs.map((r, n) => [
      `// ${vus[n]} of ${all} VUs: weight ${num(r.weight)} of ${sum}`,
      `executor: '${ramps ? 'ramping-vus' : 'constant-vus'}'`,
      `exec: '${fns[n]}'`,
      ...(ramps
        ? [`startVUs: ${i.rampUpMs > 0 ? 0 : vus[n]}`, `stages: ${stages(i, vus[n]!)}`]
        : [`vus: ${vus[n]}`, duration]),
    ]);
  }
  const split = splitOpenRate(reqs, i.load);
  return reqs.map((r, n) => {
    const s = split.shares[n]!;
    const e = expectedDurationMs(r);
    const v = arrivalVus(s.perSecond, e);
    return [
      `// ${num(s.perSecond)}/s = ${s.rate} per ${split.timeUnit}. Little's law: L = ${num(s.perSecond)}/s x ${num(e / 1000)} s expected duration`,
      `// = ${num(v.inFlight)} in flight; preAllocatedVUs = max(1, ceil(L)), maxVUs = max(10, ceil(4 x L))`,
      `executor: '${ramps ? 'ramping-arrival-rate' : 'constant-arrival-rate'}'`,
      `exec: '${fns[n]}'`,
      ...(ramps
        ? [`startRate: ${i.rampUpMs > 0 ? 0 : s.rate}`, `timeUnit: '${split.timeUnit}'`, `stages: ${stages(i, s.rate)}`]
        : [`rate: ${s.rate}`, `timeUnit: '${split.timeUnit}'`, duration]),
      `preAllocatedVUs: ${v.pre}`,
      `maxVUs: ${v.max}`,
    ];
  });
}

/** Where the scenario came from, without this machine's path to the repository. */
function sourceLabel(source: string): string {
  if (isAbsolute(source)) {
    const rel = relative(REPO_ROOT, source);
    if (!rel.startsWith('..') && !isAbsolute(rel)) return rel;
  }
  return source;
}

/** The header comment: what the script is, the load, and what differs from arena. */
function header(i: K6ExportInput, needs: Needs): string {
  const l = i.load;
  const phases = `ramp-up ${k6Duration(i.rampUpMs)}, steady ${k6Duration(i.durationMs)}, ramp-down ${k6Duration(i.rampDownMs)}`;
  const load =
    l.model === 'open'
      ? `open model, ${num(l.rate)} arrivals/s in all${l.ratesByRequest ? " (split as the plan's per-kind rates)" : ''}`
      : `closed model, ${l.vus} VUs in all${l.thinkTimeMs > 0 ? `, think time ${k6Duration(l.thinkTimeMs)}` : ''}`;
  const lines = [
    `k6 script exported by \`arena loadtest export k6\` from the scenario ${i.scenario.name} (${sourceLabel(i.scenario.source)}).`,
    'Re-export it rather than edit it; the mapping is in arena\'s docs/loadtest.md, "Exporting to k6".',
    `Load: ${load}; ${phases}; one k6 scenario per request.`,
    '',
    ...(l.model === 'open'
      ? [
          "k6's arrival-rate executors start iterations evenly spaced (uniform arrivals), not as a",
          'Poisson process as `arena loadtest run` does by default: queueing at the target shows less.',
        ]
      : []),
    'k6 times each request from its actual start, not from its scheduled start as arena does.',
    ...(needs.task
      ? ["A task's polls are k6 requests too (tagged task_step: poll); its submit is task_step: submit."]
      : []),
    ...(needs.sse
      ? [
          '',
          "SSE requests use the xk6-sse extension (import sse from 'k6/x/sse'); a k6 without it",
          'cannot run this script. xk6-sse records http_reqs and http_req_duration, not http_req_failed.',
          `Its types: ${i.sseTypesPath ?? "loadtest/export/k6-types/xk6-sse.d.ts in arena's source tree"}.`,
        ]
      : []),
    '',
    'Run: k6 run -e BASE_URL=http://host:port <this file>',
  ];
  return lines.map((s) => (s ? `// ${s}` : '//')).join('\n');
}

/** The `options` object: scenarios and the thresholds k6 can evaluate (the others listed in a comment). */
function optionsText(i: K6ExportInput, entries: string[][], keys: string[], custom: Record<string, K6MetricType>) {
  const { kept, dropped } = k6Thresholds(i.thresholds, custom);
  const scenarios = entries.map((lines, n) => {
    const comments = lines.filter((l) => l.startsWith('//')).map((l) => `      ${l}\n`);
    const fields = lines.filter((l) => !l.startsWith('//'));
    return `    ${key(keys[n]!)}: {\n${comments.join('')}      ${fields.join(',\n      ')},\n    },`;
  });
  const thresholds = Object.entries(kept).map(([s, e]) => `    ${key(s)}: [${e.map(jsString).join(', ')}],`);
  const notes = dropped.length
    ? [
        '// Thresholds arena evaluates that k6 cannot (k6 refuses to start with them):',
        ...dropped.map((d) => `//   ${d.selector}: ${d.expression} - ${d.reason}`),
      ]
    : [];
  return [
    ...notes,
    'export const options: Options = {',
    '  scenarios: {',
    ...scenarios,
    '  },',
    thresholds.length ? `  thresholds: {\n${thresholds.join('\n')}\n  },` : '  thresholds: {},',
    '};',
  ].join('\n');
}

/**
 * The k6 script (TypeScript source) for a scenario and a load. Pure and
 * deterministic: the same input gives the same bytes.
 * @throws InvalidInputError when the load cannot be mapped (see splitOpenRate, splitVus).
 */
export function exportK6(i: K6ExportInput): string {
  const reqs = i.scenario.requests;
  const keys = uniqueNames(
    reqs.map((r) => r.name),
    (n) => n.replace(/[^0-9A-Za-z_-]/g, '_'),
  );
  const fns = uniqueNames(
    reqs.map((r) => r.name),
    (n) => `req_${n.replace(/[^0-9A-Za-z_]/g, '_')}`,
  );
  const entries = scenarioEntries(i, keys, fns);
  const needs = noNeeds();
  const thinkTimeS = i.load.model === 'closed' ? i.load.thinkTimeMs / 1000 : 0;
  const execs = reqs.map((r, n) => execFunction(r, { fn: fns[n]!, thinkTimeS }, needs));
  const custom = customMetrics(needs);
  return [
    header(i, needs),
    imports(needs, thinkTimeS > 0),
    '',
    `const BASE_URL = (__ENV.BASE_URL || ${jsString(i.baseUrl)}).replace(/\\/+$/, '');`,
    '',
    optionsText(i, entries, keys, custom),
    '',
    helpers(needs),
    execs.join('\n'),
  ].join('\n');
}
