/**
 * junit.xml from real load tests (`arena loadtest run` against a test server):
 * the document validates against the Jenkins xunit plugin's junit-10.xsd with
 * xmllint, and what a CI viewer reads back from it (counts, failure messages,
 * error rates, latencies) agrees with result.json.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { renderJunit } from './junit.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';
import { shortLoadTest } from '../../testing/loadtest-run.js';
import { repoPath } from '../../testing/paths.js';

const XSD = repoPath('loadtest/report/testdata/junit-10.xsd');
const XMLLINT = process.env['ARENA_XMLLINT'] ?? 'xmllint';

interface Outcome {
  type: string;
  message: string;
  '#text'?: string;
}
interface ParsedCase {
  classname: string;
  name: string;
  failure?: Outcome;
  error?: Outcome;
  'system-out'?: string;
}
interface ParsedSuite {
  name: string;
  tests: string;
  failures: string;
  errors: string;
  skipped: string;
  time: string;
  timestamp: string;
  properties: { property: { name: string; value: string }[] };
  testcase: ParsedCase[];
}

let server: TestServer;
before(async () => {
  server = await startTestServer({ latencyMs: 10 });
});
after(() => server.close());

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-junit-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** xmllint --noout --schema junit-10.xsd FILE: exit status and messages. Fails (never skips) without xmllint. */
function xmllint(file: string): { status: number | null; err: string } {
  const r = spawnSync(XMLLINT, ['--noout', '--schema', XSD, file], { encoding: 'utf8' });
  if (r.error) {
    assert.fail(
      `xmllint not found (${XMLLINT}: ${r.error.message}): run scripts/install-debian-deps.sh xml, then . .tools/env.sh`,
    );
  }
  return { status: r.status, err: r.stderr };
}

function assertValid(t: TestContext, xml: string): void {
  const f = join(tmp(t), 'junit.xml');
  writeFileSync(f, xml);
  const v = xmllint(f);
  assert.equal(v.status, 0, `junit.xml does not validate against junit-10.xsd:\n${v.err}\n${xml}`);
  assert.match(v.err, /validates/);
}

function parse(xml: string): ParsedSuite {
  const p = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
  });
  const doc = p.parse(xml) as { testsuites: { testsuite: ParsedSuite[]; tests: string; failures: string } };
  assert.equal(doc.testsuites.testsuite.length, 1, 'one testsuite per run');
  const s = doc.testsuites.testsuite[0]!;
  assert.equal(doc.testsuites.tests, s.tests);
  assert.equal(doc.testsuites.failures, s.failures);
  return s;
}

function findCase(s: ParsedSuite, classname: string, name: string): ParsedCase {
  const c = s.testcase.find((x) => x.classname === classname && x.name === name);
  assert.ok(c, `testcase ${classname} / ${name} in ${s.testcase.map((x) => x.name).join(', ')}`);
  return c;
}

/** A number read from a message, within the rounding of its formatting (3 significant digits or 2 decimals). */
function assertClose(actual: number, expected: number, what: string): void {
  const tol = Math.max(0.006, Math.abs(expected) * 0.006);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: read ${actual}, result.json has ${expected}`);
}

function numberAfter(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  assert.ok(m?.[1], `${what}: ${re} in "${text}"`);
  return Number(m[1]);
}

/** What the counts must be, from result.json alone. */
function expectedCounts(r: LoadTestResult): { tests: number; failures: number; errors: number } {
  const scenarios = Object.values(r.scenarios);
  const accepted = (name: string) => {
    const own = r.thresholds.filter((t) => t.selector === `http_req_failed{scenario:${name}}`);
    return own.length > 0 && own.every((t) => t.status === 'pass');
  };
  const badScenarios = scenarios.filter((s) => (s.counters['http_req_failed'] ?? 0) > 0 && !accepted(s.name));
  const saturated = r.engine.clientSaturated ? 1 : 0;
  const partial = r.status === 'partial' ? 1 : 0;
  return {
    tests: r.thresholds.length + scenarios.length + saturated + partial,
    failures: r.thresholds.filter((t) => t.status !== 'pass').length + badScenarios.length + saturated,
    errors: partial,
  };
}

function assertCounts(s: ParsedSuite, r: LoadTestResult): void {
  const e = expectedCounts(r);
  assert.equal(s.testcase.length, e.tests);
  assert.equal(Number(s.tests), e.tests);
  assert.equal(Number(s.failures), e.failures);
  assert.equal(s.testcase.filter((c) => c.failure).length, e.failures);
  assert.equal(Number(s.errors), e.errors);
  assert.equal(s.testcase.filter((c) => c.error).length, e.errors);
  assert.equal(Number(s.skipped), 0);
}

const MIXED = `requests:
  - name: ok
    weight: 3
    path: /fixed
  - name: broken
    weight: 1
    path: /status/500
`;

test('junit.xml of a run with a passing, a failing and a missing threshold and a failing endpoint', async (t) => {
  const { run, result } = await shortLoadTest({
    target: server.url,
    requests: MIXED,
    rate: 40,
    duration: '2s',
    thresholds: {
      'http_req_duration{scenario:ok}': ['p(99)<5000', 'p(50)<1'],
      'ttft{scenario:ok}': ['p(99)<100'],
    },
  });
  assert.equal(run.code, 1, `a failed threshold exits 1 (stderr: ${run.err})`);
  assert.ok(result, 'result.json written');
  const xml = renderJunit(result);
  assertValid(t, xml);
  const s = parse(xml);
  assertCounts(s, result);
  assert.ok(Number(s.failures) >= 3, 'the failing and the missing threshold and the 500s fail');

  assert.equal(s.name, 'arena loadtest short');
  assert.equal(s.timestamp, result.startedAt);
  assertClose(Number(s.time), (Date.parse(result.endedAt) - Date.parse(result.startedAt)) / 1000, 'time (s)');
  const props = new Map(s.properties.property.map((p) => [p.name, p.value]));
  assert.equal(props.get('target'), result.settings.target);
  assert.equal(props.get('executor'), 'constant-arrival-rate');
  assert.equal(Number(props.get('rate_per_s')), 40);
  assert.equal(props.get('steady'), '2s');
  assert.equal(Number(props.get('seed')), result.settings.seed);
  assert.equal(props.get('status'), 'complete');

  const [pass, fail, missing] = result.thresholds;
  assert.equal(pass?.status, 'pass');
  assert.equal(fail?.status, 'fail');
  assert.equal(missing?.status, 'missing');
  assert.equal(findCase(s, 'thresholds', 'http_req_duration{scenario:ok} p(99)<5000').failure, undefined);
  const f = findCase(s, 'thresholds', 'http_req_duration{scenario:ok} p(50)<1').failure;
  assert.equal(f?.type, 'threshold');
  assertClose(numberAfter(f.message, /measured ([0-9.]+) ms/, 'failure message'), fail.value!, 'measured P50 (ms)');
  assert.match(f.message, /scenario ok\b/);
  const m = findCase(s, 'thresholds', 'ttft{scenario:ok} p(99)<100').failure;
  assert.equal(m?.type, 'missing_metric');
  assert.match(m.message, /not measured.*scenario ok/);

  const broken = result.scenarios['broken']!;
  const bf = findCase(s, 'scenarios', 'broken error rate').failure;
  assert.equal(bf?.type, 'error_rate');
  const counts = /\((\d+) of (\d+)\)/.exec(bf.message);
  assert.equal(Number(counts?.[1]), broken.counters['http_req_failed']);
  assert.equal(Number(counts?.[2]), broken.counters['http_reqs']);
  assert.ok(Number(counts?.[2]) > 0, 'the broken endpoint was hit');
  assertClose(
    numberAfter(bf.message, /([0-9.]+)% of requests failed/, 'rate'),
    100 * broken.http_req_failed,
    'error %',
  );
  const [topReason, topCount] = Object.entries(broken.failures).sort(([, x], [, y]) => y - x)[0] ?? [];
  assert.match(topReason ?? '', /^http_500/);
  assert.ok(bf.message.includes(`top reasons: ${topReason} (${topCount})`), bf.message);

  const ok = findCase(s, 'scenarios', 'ok error rate');
  assert.equal(ok.failure, undefined);
  const d = result.scenarios['ok']!.metrics['http_req_duration']!;
  const out = ok['system-out'] ?? '';
  assertClose(numberAfter(out, /P50 ([0-9.]+) ms/, 'system-out'), d.p50, 'P50');
  assertClose(numberAfter(out, /P95 ([0-9.]+) ms/, 'system-out'), d.p95, 'P95');
  assertClose(numberAfter(out, /P99 ([0-9.]+) ms/, 'system-out'), d.p99, 'P99');

  assert.equal(renderJunit(result), xml, 'rendering twice gives the same bytes');
  const copy = JSON.parse(JSON.stringify(result)) as LoadTestResult;
  assert.equal(renderJunit(copy), xml, 'a copy of the result gives the same bytes');
});

test('junit.xml of a passing run: failures="0", errors accepted by a threshold do not fail', async (t) => {
  const { run, result } = await shortLoadTest({
    target: server.url,
    requests: MIXED,
    rate: 40,
    duration: '2s',
    thresholds: {
      'http_req_duration{scenario:ok}': ['p(99)<5000'],
      'http_req_failed{scenario:broken}': ['rate>0.99'],
    },
  });
  assert.equal(run.code, 0, `every threshold passed (stderr: ${run.err})`);
  assert.ok(result?.passed);
  const xml = renderJunit(result, { name: 'nightly capacity' });
  assertValid(t, xml);
  const s = parse(xml);
  assertCounts(s, result);
  assert.equal(s.name, 'nightly capacity');
  // the load generator saturating (a busy machine) is the one failure a passing run may have
  const expected = result.engine.clientSaturated ? 1 : 0;
  assert.equal(Number(s.failures), expected, xml);
  const broken = findCase(s, 'scenarios', 'broken error rate');
  assert.equal(broken.failure, undefined);
  assert.ok((result.scenarios['broken']!.counters['http_req_failed'] ?? 0) > 0, 'the 500s were counted');
  assert.match(broken['system-out'] ?? '', /accepted by http_req_failed\{scenario:broken\} rate>0\.99/);
});

/** A real run stopped by Ctrl-C: `arena loadtest run --duration 60s`, SIGINT after 2 s. */
async function interruptedRun(dir: string): Promise<LoadTestResult> {
  const scenario = join(dir, 'scenario.yaml');
  writeFileSync(scenario, `name: short\n${MIXED}`);
  const out = join(dir, 'out');
  const args = ['loadtest', 'run', '-q', '--target', server.url, '--scenario-file', scenario, '--rate', '20'];
  const child = spawn(process.execPath, [repoPath('dist/cli/arena.js'), ...args, '--duration', '60s', '--out', out], {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  await new Promise((r) => setTimeout(r, 2000));
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  return JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
}

test('junit.xml of a partial run (Ctrl-C), also client-saturated: an error and a failure testcase, still valid', async (t) => {
  const result = await interruptedRun(tmp(t));
  assert.equal(result.status, 'partial');
  const xml = renderJunit(result);
  assertValid(t, xml);
  const s = parse(xml);
  assertCounts(s, result);
  const partial = findCase(s, 'run', 'run complete').error;
  assert.equal(partial?.type, 'partial_run');
  assert.ok(partial.message.includes(result.partialReason ?? '?'), partial.message);
  assert.equal(new Map(s.properties.property.map((p) => [p.name, p.value])).get('status'), 'partial');

  // the same real result as if its load generator had saturated (not something a test can cause reliably)
  const r: LoadTestResult = {
    ...result,
    partialReason: `${result.partialReason} <&> "quotes"`,
    engine: { ...result.engine, clientSaturated: true, clientSaturatedReasons: ['schedule lag P99 81.2 ms > 50 ms'] },
  };
  const xml2 = renderJunit(r);
  assertValid(t, xml2);
  const s2 = parse(xml2);
  assertCounts(s2, r);
  assert.match(findCase(s2, 'run', 'run complete').error?.message ?? '', /<&> "quotes"/);
  const sat = findCase(s2, 'engine', 'client not saturated').failure;
  assert.equal(sat?.type, 'client_saturated');
  assert.match(sat.message, /schedule lag P99 81\.2 ms > 50 ms.*load generator, not the target/);
});

test('xmllint rejects a document junit-10.xsd does not allow (the validation can fail)', (t) => {
  const f = join(tmp(t), 'bad.xml');
  writeFileSync(f, '<?xml version="1.0"?>\n<testsuites><testsuite name="x" tests="1"/></testsuites>\n');
  const v = xmllint(f);
  assert.notEqual(v.status, 0);
  assert.match(v.err, /failures|errors/);
});
