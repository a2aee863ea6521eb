/**
 * A load test's `result.json` as a JUnit XML document (`junit.xml`), the
 * format CI test viewers load (Jenkins' junit and xunit plugins, GitLab's
 * test reports, GitHub test-report actions).
 *
 * One `<testsuite>` per run inside `<testsuites>`, with the run's settings as
 * `<properties>`, and these testcases, in this order:
 * - classname `thresholds`: one per threshold outcome, named
 *   `<selector> <expression>`; `fail` gives a `<failure type="threshold">`,
 *   `missing` (the metric was not measured) a `<failure type="missing_metric">`.
 * - classname `scenarios`: one per scenario (request name), `<name> error rate`,
 *   failing (`type="error_rate"`) when the scenario had failed requests unless
 *   thresholds on `http_req_failed{scenario:<name>}` accept them; its
 *   `<system-out>` has the scenario's http_req_duration P50/P95/P99.
 * - classname `run`: `run complete` with an `<error type="partial_run">`, only
 *   for a partial run.
 * - classname `engine`: `client not saturated` with a
 *   `<failure type="client_saturated">`, only when the load generator saturated.
 *
 * The document validates against junit-10.xsd of the Jenkins xunit plugin
 * (`loadtest/report/testdata/junit-10.xsd`). The output depends on the result
 * only (no clock, no host name unless given): the same result gives the same bytes.
 */
import { create } from 'xmlbuilder2';
import type { LoadTestResult, ScenarioResult, ThresholdOutcomeJson } from '../engine/result-schema.js';
import { parseThresholds } from '../engine/thresholds.js';
import { formatDuration } from '../engine/duration.js';
import { TRENDS } from '../engine/metrics.js';

/** Options of {@link renderJunit}. */
export interface JunitOptions {
  /** The testsuite's name (default `arena loadtest <scenario name>`). */
  name?: string;
  /** The testsuite's `hostname` attribute (default: none, so the output depends on the result only). */
  hostname?: string;
}

/** One testcase before it is written: at most one failure or error. */
interface Case {
  classname: string;
  name: string;
  failure?: { type: string; message: string; body: string };
  error?: { type: string; message: string; body: string };
  out?: string;
}

/** Metrics whose values are durations in ms (every aggregation except `count`). */
const DURATION_METRICS = new Set<string>([...TRENDS, 'event_loop_lag']);
type XMLBuilder = ReturnType<typeof create>;

/** How many failure reasons the error-rate failure message names. */
const TOP_REASONS = 3;

/** A number for a message: integers as they are, else 2 decimals (>= 1) or 3 significant digits (< 1). */
function num(v: number): string {
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1 ? String(Math.round(v * 100) / 100) : String(Number(v.toPrecision(3)));
}

const pct = (share: number) => `${(100 * share).toFixed(1)}%`;

/** The metric and tags of a threshold selector; a selector that does not parse counts as an untagged metric. */
function selectorParts(t: ThresholdOutcomeJson): { metric: string; tags: Record<string, string>; aggregation: string } {
  try {
    const [spec] = parseThresholds({ [t.selector]: [t.expression] }, 'result.thresholds');
    if (spec) return { metric: spec.metric, tags: spec.tags, aggregation: spec.aggregation };
  } catch {
    // a hand-edited result: fall through
  }
  return { metric: t.selector.split('{')[0] ?? t.selector, tags: {}, aggregation: '' };
}

/** The measured value with its unit: `812.4 ms`, `0.25 (25.0%)`, `12`. */
function valueText(t: ThresholdOutcomeJson, metric: string, aggregation: string): string {
  if (t.value === null) return 'no value';
  if (DURATION_METRICS.has(metric) && aggregation !== 'count') return `${num(t.value)} ms`;
  if (aggregation === 'rate' && (metric === 'http_req_failed' || metric === 'client_saturated'))
    return `${num(t.value)} (${pct(t.value)})`;
  return num(t.value);
}

/** The reason part of an engine message `<selector> <expression>: <reason> (<status>)`. */
function reasonOf(t: ThresholdOutcomeJson): string {
  const head = `${t.selector} ${t.expression}: `;
  const m = t.message.startsWith(head) ? t.message.slice(head.length) : t.message;
  return m.replace(/ \((pass|fail|missing)\)$/, '');
}

function thresholdCase(t: ThresholdOutcomeJson): Case {
  const name = `${t.selector} ${t.expression}`;
  const { metric, tags, aggregation } = selectorParts(t);
  const scenario = tags['scenario'] ?? 'all';
  const body = [
    `threshold: ${name}`,
    `status: ${t.status}`,
    `measured: ${t.value === null ? 'none' : String(t.value)}`,
    `scenario: ${scenario}`,
    `message: ${t.message}`,
  ].join('\n');
  const c: Case = { classname: 'thresholds', name, out: t.message };
  if (t.status === 'fail') {
    const measured = t.value === null ? `no value (${reasonOf(t)})` : valueText(t, metric, aggregation);
    c.failure = {
      type: 'threshold',
      message: `threshold ${name} failed: measured ${measured}; scenario ${scenario}`,
      body,
    };
  } else if (t.status === 'missing') {
    c.failure = {
      type: 'missing_metric',
      message: `threshold ${name}: metric not measured in this run (${reasonOf(t)}); scenario ${scenario}`,
      body,
    };
  }
  return c;
}

/** Failure reasons by count, highest first, then by name: `[['http_500 llm_slots_busy', 25], ...]`. */
function reasons(s: ScenarioResult): [string, number][] {
  return Object.entries(s.failures)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
}

function latencyText(s: ScenarioResult): string {
  const d = s.metrics['http_req_duration'];
  if (!d || d.count === 0) return 'http_req_duration: no requests in the steady phase';
  return `http_req_duration P50 ${num(d.p50)} ms, P95 ${num(d.p95)} ms, P99 ${num(d.p99)} ms (${d.count} requests)`;
}

function errorRateCase(s: ScenarioResult, thresholds: ThresholdOutcomeJson[]): Case {
  const failed = s.counters['http_req_failed'] ?? 0;
  const reqs = s.counters['http_reqs'] ?? 0;
  const counts = `${failed} of ${reqs}`;
  const own = thresholds.filter((t) => {
    const p = selectorParts(t);
    const keys = Object.keys(p.tags);
    return p.metric === 'http_req_failed' && keys.length === 1 && p.tags['scenario'] === s.name;
  });
  const accepted = own.length > 0 && own.every((t) => t.status === 'pass');
  const out = [latencyText(s), `http_req_failed ${num(s.http_req_failed)} (${pct(s.http_req_failed)}, ${counts})`];
  const c: Case = { classname: 'scenarios', name: `${s.name} error rate`, out: out.join('\n') };
  if (failed === 0) return c;
  if (accepted) {
    out.push(`accepted by ${own.map((t) => `${t.selector} ${t.expression}`).join(', ')}`);
    c.out = out.join('\n');
    return c;
  }
  const all = reasons(s);
  const top =
    all.length > 0
      ? `; top reasons: ${all
          .slice(0, TOP_REASONS)
          .map(([r, n]) => `${r} (${n})`)
          .join(', ')}`
      : '';
  c.failure = {
    type: 'error_rate',
    message: `${s.name}: ${pct(s.http_req_failed)} of requests failed (${counts})${top}`,
    body: [
      `http_req_failed: ${s.http_req_failed} (${counts})`,
      'failures by reason:',
      ...all.map(([r, n]) => `  ${r}: ${n}`),
    ].join('\n'),
  };
  return c;
}

function runCases(r: LoadTestResult): Case[] {
  const cases: Case[] = [];
  if (r.status === 'partial') {
    const why = r.partialReason ?? 'stopped before the schedule ended';
    cases.push({
      classname: 'run',
      name: 'run complete',
      error: { type: 'partial_run', message: `partial run: ${why}`, body: `${r.startedAt} .. ${r.endedAt}: ${why}` },
    });
  }
  const e = r.engine;
  if (e.clientSaturated) {
    const why = e.clientSaturatedReasons.length > 0 ? e.clientSaturatedReasons.join('; ') : 'saturated';
    cases.push({
      classname: 'engine',
      name: 'client not saturated',
      failure: {
        type: 'client_saturated',
        message: `the load generator saturated (${why}): the figures may measure the load generator, not the target`,
        body: [
          ...e.clientSaturatedReasons,
          `bounds: schedule lag P99 ${num(e.bounds.scheduleLagP99Ms)} ms, event-loop delay P99 ${num(e.bounds.loopLagP99Ms)} ms`,
          `measured: schedule lag P99 ${num(e.scheduleLagP99Ms)} ms, event-loop delay P99 ${num(e.loopLagP99Ms)} ms`,
        ].join('\n'),
      },
    });
  }
  return cases;
}

/** The run's settings as `[name, value]` properties, in a fixed order. */
function properties(r: LoadTestResult): [string, string][] {
  const st = r.settings;
  const m = st.model;
  const p: [string, string][] = [
    ['target', st.target],
    ['scenario', st.scenario.name],
    ['executor', st.executor],
    ['model', m.type],
  ];
  if (m.rate !== undefined) p.push(['rate_per_s', String(m.rate)]);
  if (m.arrivalProcess !== undefined) p.push(['arrival', m.arrivalProcess]);
  if (m.maxVUs !== undefined) p.push(['max_vus', String(m.maxVUs)]);
  if (m.vus !== undefined) p.push(['vus', String(m.vus)]);
  if (m.thinkTimeMs !== undefined) p.push(['think_time', formatDuration(m.thinkTimeMs)]);
  p.push(
    ['ramp_up', formatDuration(st.phases.rampUpMs)],
    ['steady', formatDuration(st.phases.steadyMs)],
    ['ramp_down', formatDuration(st.phases.rampDownMs)],
    ['seed', String(st.seed)],
    ['workers', String(st.workers)],
    ['status', r.status],
  );
  if (r.partialReason !== undefined) p.push(['partial_reason', r.partialReason]);
  p.push(['passed', String(r.passed)], ['engine_version', st.engine.version]);
  return p;
}

/** Seconds with 3 decimals, never negative (junit-10.xsd's SUREFIRE_TIME allows at most 3). */
function seconds(r: LoadTestResult): string {
  const ms = Date.parse(r.endedAt) - Date.parse(r.startedAt);
  return (Number.isFinite(ms) && ms > 0 ? ms / 1000 : 0).toFixed(3);
}

function writeCase(suite: XMLBuilder, c: Case): void {
  const tc = suite.ele('testcase', { classname: c.classname, name: c.name });
  if (c.failure) tc.ele('failure', { message: c.failure.message, type: c.failure.type }).txt(c.failure.body);
  if (c.error) tc.ele('error', { message: c.error.message, type: c.error.type }).txt(c.error.body);
  if (c.out !== undefined) tc.ele('system-out').txt(c.out);
}

/**
 * Render a load test's result as a JUnit XML document.
 *
 * @param result a `result.json` (LoadTestResult, schema version 1).
 * @param opts `name`: the testsuite's name (default `arena loadtest <scenario name>`);
 *   `hostname`: the testsuite's hostname attribute (default none).
 * @returns the XML document (UTF-8 text, ending with a newline): `<testsuites>`
 *   holding one `<testsuite>` whose `timestamp` is `result.startedAt`, `time`
 *   the run's duration in seconds (3 decimals), and `tests`, `failures`,
 *   `errors`, `skipped` (always 0) counting its testcases (see the module doc).
 *   The same result always gives the same bytes. Never throws for a result that
 *   matches its schema; characters XML cannot carry are replaced by U+FFFD.
 */
export function renderJunit(result: LoadTestResult, opts: JunitOptions = {}): string {
  const cases: Case[] = [
    ...result.thresholds.map(thresholdCase),
    ...Object.values(result.scenarios).map((s) => errorRateCase(s, result.thresholds)),
    ...runCases(result),
  ];
  const counts = {
    tests: String(cases.length),
    failures: String(cases.filter((c) => c.failure).length),
    errors: String(cases.filter((c) => c.error).length),
  };
  const name = opts.name ?? `arena loadtest ${result.settings.scenario.name}`;
  const time = seconds(result);
  const doc = create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: '\uFFFD' });
  const root = doc.ele('testsuites', { name, ...counts, time });
  const suite = root.ele('testsuite', {
    name,
    ...counts,
    skipped: '0',
    time,
    timestamp: result.startedAt,
    ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
  });
  const props = suite.ele('properties');
  for (const [n, v] of properties(result)) props.ele('property', { name: n, value: v });
  for (const c of cases) writeCase(suite, c);
  return `${doc.end({ prettyPrint: true, wellFormed: true })}\n`;
}
