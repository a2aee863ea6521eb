/**
 * k6-compatible thresholds: pass/fail criteria over the metrics of a run.
 *
 * The syntax is k6's (https://grafana.com/docs/k6/latest/using-k6/thresholds/):
 * `options.thresholds` maps a metric selector (`http_req_duration`,
 * `http_req_duration{scenario:read}`) to an array of expressions
 * (`"p(99)<500"`, `"rate<0.01"`) or objects (`{threshold: "p(99)<500"}`).
 * Values are in the metric's own unit; every duration is in milliseconds
 * (see metric-types.ts), written as a plain number without a unit.
 *
 * Differences from k6, all deliberate:
 * - `abortOnFail: true` is rejected (the run always completes); `abortOnFail: false`
 *   and `delayAbortEval` (a string) are accepted and ignored.
 * - Object items with a field other than `threshold`, `abortOnFail`, `delayAbortEval` are rejected (typos).
 * - Extra aggregations: `count` on trends; `min`, `max` and `p(N)` on gauges.
 * - A metric (or metric/tag combination) the run does not have is `missing`,
 *   and so is a trend or rate with no samples (for every aggregation except a
 *   trend's `count`): a missing threshold counts as failed.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { fileErrorText, InvalidInputError } from '../../lib/errors.js';
import type { MetricLookup, MetricValue } from './metric-types.js';

/**
 * A threshold problem: bad syntax in a threshold set, or an unreadable or
 * malformed thresholds file. The message is one line:
 * `[<file>: ][<path>: ]<what is wrong>`, e.g.
 * `thresholds["http_req_duration"][0]: "p99<500": expected an aggregation such as p(99), avg, rate, count`.
 */
export class ThresholdError extends InvalidInputError {
  /**
   * @param path where in the threshold set, e.g. `thresholds["http_req_duration{scenario:read}"][1]`;
   *   '' for a problem with a file as a whole (unreadable, bad YAML).
   * @param problem what is wrong, one line.
   * @param file the thresholds file, when the set came from one (loadThresholdsFile).
   */
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly file?: string,
  ) {
    super([file, path, problem].filter((s) => s !== undefined && s !== '').join(': '), 'ARENA_THRESHOLD_INVALID');
    this.name = 'ThresholdError';
  }
}

/** One threshold expression on one metric selector, parsed and normalised. */
export interface ThresholdSpec {
  /** The selector, normalised: `metric` or `metric{tag:value,...}` (tags in the order written, no spaces). */
  selector: string;
  /** The metric name, e.g. `http_req_duration`. */
  metric: string;
  /** The tags the metric is restricted to (exact match), `{}` for the whole run. */
  tags: Record<string, string>;
  /** The expression, normalised without spaces: `${aggregation}${op}${limit}`, e.g. `p(99.9)<500`. */
  expression: string;
  /** `avg`, `min`, `max`, `med`, `count`, `rate`, `value` or `p(N)` with 0 <= N <= 100 (e.g. `p(99.9)`). */
  aggregation: string;
  /** `<`, `<=`, `>`, `>=`, `==`, `===` (same as `==`) or `!=`. */
  op: string;
  /** The number the aggregated value is compared with, in the metric's unit (ms for durations). */
  limit: number;
}

/** The result of one threshold against a run. */
export interface ThresholdOutcome extends ThresholdSpec {
  /**
   * `pass` or `fail`; `missing` when the run has no such metric/tag combination
   * or it has no samples. A missing threshold counts as failed (as in k6).
   * An aggregation that does not apply to the metric's type is `fail` with value null.
   */
  status: 'pass' | 'fail' | 'missing';
  /** The aggregated value compared with `limit`; null when missing or not applicable. */
  value: number | null;
  /** One human line, e.g. `http_req_duration{scenario:read} p(99)<500: 812.4 (fail)`. */
  message: string;
}

const OPS = new Set(['<', '<=', '>', '>=', '==', '===', '!=']);
const OP_LIST = '<, <=, >, >=, ==, ===, !=';
const AGG_HINT = 'expected an aggregation such as p(99), avg, rate, count';
const PLAIN_AGGS = new Set(['avg', 'min', 'max', 'med', 'count', 'rate', 'value']);
/** k6's rule for metric names. */
const METRIC_NAME = /^[\p{L}\p{N}._ !?/&#()<>%-]{1,128}$/u;
const ITEM_FIELDS = ['threshold', 'abortOnFail', 'delayAbortEval'];

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a ${t}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A tag value as written in a normalised selector: bare when that parses back the same, quoted otherwise. */
function tagValueText(v: string): string {
  if (v !== '' && v === v.trim() && !/[,{}"']/.test(v)) return v;
  return v.includes('"') ? `'${v}'` : `"${v}"`;
}

const skipSpaces = (body: string, j: number) => {
  while (j < body.length && /\s/.test(body[j] ?? '')) j++;
  return j;
};

/** One tag value starting at `j` (bare, or quoted with "..." or '...'): the value and the index after it. */
function parseTagValue(
  body: string,
  j: number,
  key: string,
  fail: (problem: string) => never,
): { value: string; next: number } {
  j = skipSpaces(body, j);
  const q = body[j];
  if (q === '"' || q === "'") {
    const close = body.indexOf(q, j + 1);
    if (close === -1) fail(`tag "${key}": unterminated ${q}`);
    const next = skipSpaces(body, close + 1);
    if (next < body.length && body[next] !== ',') fail(`tag "${key}": expected "," or "}" after the quoted value`);
    return { value: body.slice(j + 1, close), next };
  }
  const end = body.indexOf(',', j);
  const value = body.slice(j, end === -1 ? body.length : end).trim();
  if (value === '') fail(`tag "${key}" has an empty value (quote it, "", to select the empty value)`);
  if (/[{}"']/.test(value)) fail(`tag "${key}": invalid value "${value}" (quote values with braces or quotes)`);
  return { value, next: end === -1 ? body.length : end };
}

/** The tags of `{name:value,...}` (the text between the braces), in the order written. */
function parseTagList(body: string, fail: (problem: string) => never): Map<string, string> {
  const tags = new Map<string, string>();
  if (body.trim() === '') fail('empty tag list "{}" (leave out the braces to select the whole metric)');
  let i = 0;
  for (;;) {
    const colon = body.indexOf(':', i);
    const comma = body.indexOf(',', i);
    if (colon === -1 || (comma !== -1 && comma < colon)) {
      const tag = body.slice(i, comma === -1 ? undefined : comma).trim();
      fail(
        tag === '' ? 'empty tag (expected {name:value,...})' : `tag "${tag}" has no value (expected {name:value,...})`,
      );
    }
    const key = body.slice(i, colon).trim();
    if (key === '') fail('a tag has no name (expected {name:value,...})');
    if (/[{}"']/.test(key)) fail(`invalid tag name "${key}"`);
    const { value, next } = parseTagValue(body, colon + 1, key, fail);
    if (tags.has(key)) fail(`tag "${key}" given twice`);
    tags.set(key, value);
    if (next >= body.length) return tags;
    i = next + 1; // past the comma
    if (body.slice(i).trim() === '') fail('empty tag after ","');
  }
}

/**
 * Parse a selector `name` or `name{key:value,...}` (k6 syntax; whitespace
 * around names, keys and values ignored; a value may be bare or quoted with
 * "..." or '...', and a bare value may contain ':' as in `url:http://x`).
 */
function parseSelector(raw: string, path: string): { metric: string; tags: Record<string, string>; selector: string } {
  const s = raw.trim();
  const open = s.indexOf('{');
  const fail = (problem: string): never => {
    throw new ThresholdError(path, `${JSON.stringify(raw)}: ${problem}`);
  };
  let name = s;
  let tags = new Map<string, string>(); // in the order written; a Map so that any tag name is safe
  if (open === -1) {
    if (s.includes('}')) fail('"}" without "{"');
  } else {
    if (!s.endsWith('}')) fail('the tag list must end the selector with "}"');
    name = s.slice(0, open).trim();
    tags = parseTagList(s.slice(open + 1, -1), fail);
  }
  if (name === '') fail(`expected a metric name${open === -1 ? '' : ' before "{"'}`);
  if (!METRIC_NAME.test(name))
    fail(`invalid metric name "${name}" (at most 128 letters, digits, spaces and ._!?/&#()<>%-)`);
  const tagText = [...tags].map(([k, v]) => `${k}:${tagValueText(v)}`).join(',');
  return { metric: name, tags: Object.fromEntries(tags), selector: tags.size ? `${name}{${tagText}}` : name };
}

/** Parse `<aggregation> <op> <number>`; throws ThresholdError at `path`. */
function parseExpression(
  expr: string,
  path: string,
): { aggregation: string; op: string; limit: number; expression: string } {
  const q = JSON.stringify(expr);
  const fail = (problem: string): never => {
    throw new ThresholdError(path, `${q}: ${problem}`);
  };
  const at = expr.search(/[<>=!]/);
  if (at === -1) fail(`expected a comparison such as p(99)<500 (operators: ${OP_LIST})`);
  const left = expr.slice(0, at).trim();
  const op = /^[<>=!]+/.exec(expr.slice(at))?.[0] ?? '';
  const right = expr.slice(at + op.length).trim();

  let aggregation = left;
  if (!PLAIN_AGGS.has(left)) {
    const p = /^p\s*\(\s*(.*?)\s*\)$/.exec(left);
    if (!p) fail(left === '' ? `${AGG_HINT} before "${op}"` : AGG_HINT);
    const n = p?.[1] ?? '';
    if (!/^\d+(\.\d+)?$/.test(n) || Number(n) > 100)
      fail(`the percentile in p(...) must be a number from 0 to 100, got "${n}"`);
    aggregation = `p(${Number(n)})`;
  }
  if (!OPS.has(op)) fail(`unknown operator "${op}" (expected one of ${OP_LIST})`);
  if (right === '') fail(`expected a number after "${op}"`);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(right)) {
    const withUnit = /^[+-]?[\d.]+\s*(ms|s|m|us|µs|%)$/.test(right);
    const unit = withUnit ? ' (write a plain number: durations are in milliseconds, rates 0..1)' : '';
    fail(`expected a number after "${op}", got "${right}"${unit}`);
  }
  const limit = Number(right);
  return { aggregation, op, limit, expression: `${aggregation}${op}${limit}` };
}

/**
 * Parse a threshold set in the shape of k6's `options.thresholds`:
 * `{ "<selector>": ["<expression>" | {threshold: "<expression>", abortOnFail?: false, delayAbortEval?: string}, ...] }`.
 *
 * Selector: `metric` or `metric{tag:value,...}`; whitespace tolerated; a value
 * may be bare or quoted ("..." or '...'). Expression: `<aggregation> <op> <number>`
 * with aggregation `avg|min|max|med|count|rate|value|p(N)` (0 <= N <= 100) and op
 * `<|<=|>|>=|==|===|!=`. Whether an aggregation fits the metric's type is only known
 * at evaluation; unknown metric names are fine here (metrics are open-ended).
 * An empty array is allowed and yields nothing.
 *
 * @param raw the parsed object (e.g. from JSON or YAML).
 * @param where the path of `raw` used in error messages.
 * @returns one spec per expression, in the order given.
 * @throws ThresholdError naming the path, e.g. `thresholds["http_req_duration"][0]: "p99<500": expected an aggregation ...`,
 *   or `thresholds["http_req_duration"][0].abortOnFail: not supported by arena (the run always completes)`.
 */
export function parseThresholds(raw: unknown, where = 'thresholds'): ThresholdSpec[] {
  if (!isPlainObject(raw)) {
    throw new ThresholdError(
      where,
      `expected an object mapping metric selectors to arrays of expressions, got ${describe(raw)}`,
    );
  }
  const specs: ThresholdSpec[] = [];
  for (const [key, list] of Object.entries(raw)) {
    const keyPath = `${where}[${JSON.stringify(key)}]`;
    const sel = parseSelector(key, keyPath);
    if (!Array.isArray(list)) {
      throw new ThresholdError(
        keyPath,
        `expected an array of expressions such as ["p(99)<500"], got ${describe(list)}`,
      );
    }
    list.forEach((item: unknown, i: number) => {
      const path = `${keyPath}[${i}]`;
      let text: unknown = item;
      if (isPlainObject(item)) {
        for (const f of Object.keys(item)) {
          if (!ITEM_FIELDS.includes(f))
            throw new ThresholdError(`${path}.${f}`, `unknown field (expected ${ITEM_FIELDS.join(', ')})`);
        }
        const abort = item['abortOnFail'];
        if (abort !== undefined && typeof abort !== 'boolean') {
          throw new ThresholdError(`${path}.abortOnFail`, `expected a boolean, got ${describe(abort)}`);
        }
        if (abort === true)
          throw new ThresholdError(`${path}.abortOnFail`, 'not supported by arena (the run always completes)');
        const delay = item['delayAbortEval'];
        if (delay !== undefined && typeof delay !== 'string') {
          throw new ThresholdError(`${path}.delayAbortEval`, `expected a string such as "10s", got ${describe(delay)}`);
        }
        if (!('threshold' in item))
          throw new ThresholdError(path, 'missing field "threshold" (e.g. {threshold: "p(99)<500"})');
        text = item['threshold'];
        if (typeof text !== 'string') {
          throw new ThresholdError(`${path}.threshold`, `expected a string such as "p(99)<500", got ${describe(text)}`);
        }
      } else if (typeof text !== 'string') {
        throw new ThresholdError(
          path,
          `expected a string such as "p(99)<500" or an object {threshold: ...}, got ${describe(item)}`,
        );
      }
      specs.push({ ...sel, tags: { ...sel.tags }, ...parseExpression(text as string, path) });
    });
  }
  return specs;
}

/** What each metric type supports (k6's list plus our extensions: trend `count`; gauge `min`, `max`, `p(N)`). */
const APPLIES: Record<MetricValue['type'], string> = {
  trend: 'avg, min, max, med, count, p(N)',
  rate: 'rate',
  counter: 'count, rate (per second)',
  gauge: 'value, min, max, p(N)',
};

type Aggregated = { value: number } | { missing: string } | { notApplicable: string };

function trendAggregate(
  v: Extract<MetricValue, { type: 'trend' }>,
  agg: string,
  p: number | null,
  na: () => Aggregated,
): Aggregated {
  if (agg === 'count') return { value: v.count };
  const known = agg === 'avg' || agg === 'min' || agg === 'max' || agg === 'med' || p !== null;
  if (!known) return na();
  if (v.count === 0) return { missing: 'no samples in this run' };
  if (agg === 'avg') return { value: v.mean };
  if (agg === 'min' || p === 0) return { value: v.min };
  if (agg === 'max') return { value: v.max };
  return { value: v.percentile(agg === 'med' ? 50 : (p as number)) };
}

function gaugeAggregate(
  v: Extract<MetricValue, { type: 'gauge' }>,
  agg: string,
  p: number | null,
  na: () => Aggregated,
): Aggregated {
  if (agg === 'value') return { value: v.value };
  if (agg === 'min' || p === 0) return { value: v.min };
  if (agg === 'max') return { value: v.max };
  if (p !== null) return { value: v.percentile(p) };
  return na();
}

function aggregate(v: MetricValue, agg: string): Aggregated {
  const pct = /^p\((.+)\)$/.exec(agg);
  const p = pct ? Number(pct[1]) : null;
  const na = (): Aggregated => ({
    notApplicable: `${agg} does not apply to a ${v.type} metric (a ${v.type} has ${APPLIES[v.type]})`,
  });
  switch (v.type) {
    case 'trend':
      return trendAggregate(v, agg, p, na);
    case 'rate':
      if (agg !== 'rate') return na();
      return v.total === 0 ? { missing: 'no samples in this run' } : { value: v.rate };
    case 'counter':
      if (agg === 'count') return { value: v.count };
      if (agg === 'rate') return { value: v.ratePerSecond };
      return na();
    case 'gauge':
      return gaugeAggregate(v, agg, p, na);
  }
}

function compare(value: number, op: string, limit: number): boolean {
  switch (op) {
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    case '==':
    case '===':
      return value === limit;
    case '!=':
      return value !== limit;
    default:
      throw new Error(`unknown operator ${op}`); // parseThresholds only yields the ones above
  }
}

/** A value for a message: integers as they are, else 2 decimals (>= 1) or 3 significant digits (< 1). */
function fmt(v: number): string {
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1 ? String(Math.round(v * 100) / 100) : String(Number(v.toPrecision(3)));
}

/**
 * Evaluate thresholds against a run.
 *
 * Each spec reads `lookup(spec.metric, spec.tags)` (tags matched exactly, by
 * the lookup) and applies its aggregation: trend `avg|min|max|med|count|p(N)`
 * (ms); rate `rate` (0..1); counter `count` and `rate` (per second); gauge
 * `value|min|max|p(N)`. `p(0)` is the minimum.
 *
 * - `missing` (counts as failed, as in k6): the lookup returns undefined, or the
 *   trend/rate has no samples (except a trend's `count`, which is then 0).
 * - `fail` with value null: the aggregation does not apply to the metric's type,
 *   or the value is not a number.
 *
 * Never throws for a spec made by parseThresholds (errors thrown by the lookup propagate).
 * @returns one outcome per spec, in order.
 */
export function evaluateThresholds(specs: ThresholdSpec[], lookup: MetricLookup): ThresholdOutcome[] {
  return specs.map((spec): ThresholdOutcome => {
    const head = `${spec.selector} ${spec.expression}`;
    const metric = lookup(spec.metric, Object.freeze({ ...spec.tags }));
    if (metric === undefined)
      return { ...spec, status: 'missing', value: null, message: `${head}: no such metric in this run (missing)` };
    const a = aggregate(metric, spec.aggregation);
    if ('missing' in a) return { ...spec, status: 'missing', value: null, message: `${head}: ${a.missing} (missing)` };
    if ('notApplicable' in a)
      return { ...spec, status: 'fail', value: null, message: `${head}: ${a.notApplicable} (fail)` };
    if (Number.isNaN(a.value))
      return { ...spec, status: 'fail', value: null, message: `${head}: the value is not a number (fail)` };
    const status = compare(a.value, spec.op, spec.limit) ? 'pass' : 'fail';
    return { ...spec, status, value: a.value, message: `${head}: ${fmt(a.value)} (${status})` };
  });
}

/** Identity of a spec for merging: metric, tags in any order, aggregation, op (=== as ==), limit. */
function identity(s: ThresholdSpec): string {
  const tags = Object.keys(s.tags)
    .sort()
    .map((k) => [k, s.tags[k]]);
  return JSON.stringify([s.metric, tags, s.aggregation, s.op === '===' ? '==' : s.op, s.limit]);
}

/**
 * Merge threshold sets (e.g. built-in defaults, then a file, then flags): later
 * sets add to earlier ones; a threshold identical to an earlier one (same metric,
 * same tags in any order, same normalised expression, `===` same as `==`) is
 * kept once, at its first position. Nothing is overridden: `p(99)<500` and
 * `p(99)<300` on the same selector are both kept (both must hold).
 */
export function mergeThresholds(...sets: ThresholdSpec[][]): ThresholdSpec[] {
  const seen = new Set<string>();
  const out: ThresholdSpec[] = [];
  for (const s of sets.flat()) {
    const id = identity(s);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(s);
  }
  return out;
}

/**
 * Read a thresholds file, YAML or JSON (YAML is a superset of JSON), one document.
 * The top level is either the thresholds object itself
 * (`http_req_duration{scenario:read}: ["p(99)<500"]`) or `{thresholds: {...}}` with no other key.
 *
 * @returns the parsed specs (see parseThresholds).
 * @throws ThresholdError with a one-line message starting with the file path: unreadable
 *   file (`x.yaml: no such file`), bad YAML (`x.yaml: invalid YAML: ... at line 2, column 1`),
 *   wrong shape, or a bad threshold (`x.yaml: thresholds["http_req_duration"][0]: ...`).
 */
export function loadThresholdsFile(path: string): ThresholdSpec[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ThresholdError('', fileErrorText(e), path);
  }
  const doc = parseDocument(text);
  const err = doc.errors[0];
  if (err) throw new ThresholdError('', `invalid YAML: ${(err.message.split('\n')[0] ?? '').replace(/:$/, '')}`, path);
  const top: unknown = doc.toJS();
  if (!isPlainObject(top)) {
    const problem = `expected a mapping of metric selectors to arrays of expressions (or {thresholds: ...}), got ${describe(top)}`;
    throw new ThresholdError('', problem, path);
  }
  try {
    if (Object.hasOwn(top, 'thresholds') && isPlainObject(top['thresholds'])) {
      const other = Object.keys(top).find((k) => k !== 'thresholds');
      if (other !== undefined)
        throw new ThresholdError(other, 'unexpected top-level key (a thresholds file holds only "thresholds")');
      return parseThresholds(top['thresholds'], 'thresholds');
    }
    return parseThresholds(top, 'thresholds');
  } catch (e) {
    if (e instanceof ThresholdError) throw new ThresholdError(e.path, e.problem, path);
    throw e;
  }
}
