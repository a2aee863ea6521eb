/**
 * `arena loadtest` as a user runs it: exit codes, one-line errors, the
 * result.json it writes (valid against its published schema), thresholds
 * deciding the exit code, and Ctrl-C writing a partial result.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LoadTestResultSchema, type LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';
import { repoPath } from '../../testing/paths.js';
import { assertRefused, runArena, runArenaAsync } from '../../testing/cli.js';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;
const validateResult = addFormats(new Ajv({ strict: false, allErrors: true })).compile(LoadTestResultSchema);

let server: TestServer;
before(async () => {
  server = await startTestServer({ latencyMs: 5 });
});
after(() => server.close());

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-loadtest-cli-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function scenarioFile(dir: string, extra = ''): string {
  const f = join(dir, 'scenario.yaml');
  writeFileSync(f, `name: fixed\nrequests:\n  - name: fixed\n    path: /fixed\n${extra}`);
  return f;
}

const run = (args: string[]) => runArenaAsync(['loadtest', 'run', '-q', ...args], { timeoutMs: 60_000 });

test('loadtest run: bad input is one line naming the flag or field, exit 2, nothing written', async (t) => {
  const d = tmp(t);
  const f = scenarioFile(d);
  const out = join(d, 'out');
  assertRefused(
    await run(['--target', 'http://127.0.0.1:1', '--scenario-file', f, '--rate', '10', '--out', out]),
    /--target: http:\/\/127\.0\.0\.1:1\/ is unreachable \(connection refused\)/,
  );
  assertRefused(
    await run(['--target', 'http://192.0.2.7:8000', '--scenario-file', f, '--rate', '10', '--out', out]),
    /--target: 192\.0\.2\.7 is not a loopback address.*--allow-remote/,
  );
  assertRefused(await run(['--target', server.url, '--scenario-file', f, '--out', out]), /give the load: --rate R/);
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', '10', '--concurrency', '3', '--out', out]),
    /give one of --from-plan, --rate, --concurrency/,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', 'fast']),
    /^arena loadtest run: option '--rate <r>' argument 'fast' is invalid/,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario', 'nope', '--rate', '1']),
    /--scenario: unknown scenario nope \(bundled: read, /,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario-file', join(d, 'missing.yaml'), '--rate', '1']),
    /missing\.yaml: cannot read the scenario file \(no such file\)/,
  );
  writeFileSync(join(d, 'bad.yaml'), 'requests:\n  - name: x\n    path: /\n    kind: grpc\n');
  assertRefused(
    await run(['--target', server.url, '--scenario-file', join(d, 'bad.yaml'), '--rate', '1']),
    /bad\.yaml: requests\[0\]\.kind: must be/,
  );
  writeFileSync(join(d, 'tpl.yaml'), 'requests:\n  - name: x\n    path: /?u={{usr}}\n');
  assertRefused(
    await run(['--target', server.url, '--scenario-file', join(d, 'tpl.yaml'), '--rate', '1']),
    /tpl\.yaml: requests\[0\]\.path: unknown template variable \{\{usr\}\}/,
  );
  writeFileSync(join(d, 'th.yaml'), 'http_req_duration: ["p99<500"]\n');
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', '1', '--thresholds', join(d, 'th.yaml')]),
    /th\.yaml: thresholds\["http_req_duration"\]\[0\]: "p99<500": expected an aggregation/,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', '1', '--sample', 'redis=redis://127.0.0.1:1/0']),
    /--sample redis=redis:\/\/127\.0\.0\.1:1\/0: .*(refused|ECONNREFUSED)/,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', '1', '--sample', 'mysql=x']),
    /--sample <targets>.*must be auto or kind=URL/,
  );
  assertRefused(
    await run(['--target', server.url, '--scenario-file', f, '--rate', '1', '--max-vus', '1000000']),
    /--max-vus: .*1,000,000 in flight need .* open files/,
  );
  assert.equal(existsSync(out), false, 'nothing written');
});

test('loadtest run: a passing run exits 0 and writes a result.json valid against its schema; an impossible threshold exits 1', async (t) => {
  const d = tmp(t);
  const f = scenarioFile(d, 'thresholds:\n  http_req_duration: ["p(99)<5000"]\n  http_req_failed: ["rate<0.01"]\n');
  const out = join(d, 'pass');
  const r = await run(['--target', server.url, '--scenario-file', f, '--rate', '50', '--duration', '2s', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /constant-arrival-rate: 50\/s poisson arrivals/);
  assert.match(r.out, /│ fixed +│ http +│/);
  assert.match(r.out, /all thresholds passed/);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.ok(validateResult(result), JSON.stringify(validateResult.errors?.slice(0, 3)));
  assert.equal(result.status, 'complete');
  assert.equal(result.passed, true);
  assert.ok(result.scenarios['fixed']!.metrics['http_req_duration']!.p99 >= 5);
  assert.ok(result.series.length >= 2);
  assert.deepEqual(
    readdirSync(out).sort(),
    ['junit.xml', 'report.html', 'result.json'],
    'the result and its reports, nothing else (no temp file) left in DIR',
  );

  writeFileSync(
    join(d, 'th.json'),
    JSON.stringify({
      thresholds: { 'http_req_duration{scenario:fixed}': ['p(99)<1'], dropped_iterations: ['count==0'] },
    }),
  );
  const out2 = join(d, 'fail');
  const r2 = await run([
    '--target',
    server.url,
    '--scenario-file',
    f,
    '--rate',
    '50',
    '--duration',
    '2s',
    '--out',
    out2,
    '--thresholds',
    join(d, 'th.json'),
    '-o',
    'json',
  ]);
  assert.equal(r2.code, 1, r2.err);
  const res2 = JSON.parse(r2.out) as LoadTestResult;
  assert.equal(res2.passed, false);
  const failed = res2.thresholds.filter((x) => x.status !== 'pass').map((x) => `${x.selector} ${x.expression}`);
  assert.deepEqual(failed, ['http_req_duration{scenario:fixed} p(99)<1']);
  assert.ok(existsSync(join(out2, 'result.json')), 'a failing run still writes its result');
});

test('loadtest run: SIGINT mid-run stops arrivals and writes a result marked partial', async (t) => {
  const d = tmp(t);
  const f = scenarioFile(d);
  const out = join(d, 'partial');
  const child = spawn(
    process.execPath,
    [
      repoPath('dist/cli/arena.js'),
      'loadtest',
      'run',
      '-q',
      '--target',
      server.url,
      '--scenario-file',
      f,
      '--rate',
      '50',
      '--duration',
      '60s',
      '--out',
      out,
    ],
    {
      env: { ...process.env, NO_COLOR: '1' },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  await new Promise((r) => setTimeout(r, 3000));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 0, stderr);
  assert.match(stderr, /SIGINT: stopping arrivals/);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.equal(result.status, 'partial');
  assert.match(result.partialReason ?? '', /interrupted/);
  assert.ok(result.series.length >= 2 && result.series.length < 10, `${result.series.length} seconds recorded`);
  assert.ok(result.scenarios['fixed']!.counters['iterations']! > 50);
  assert.match(stdout, /PARTIAL/);
});

test('loadtest doctor: the limits and the largest in-flight count', () => {
  const r = runArena(['loadtest', 'doctor', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out) as {
    limits: { openFilesHard: number };
    maxInFlight: { withSoftRaised: { value: number } };
  };
  assert.ok(
    info.maxInFlight.withSoftRaised.value > 0 && info.maxInFlight.withSoftRaised.value < info.limits.openFilesHard,
  );
  assert.match(runArena(['loadtest', 'doctor']).out, /largest in-flight count: [\d,]+ \(bound by/);
});
