/**
 * `arena loadtest export k6`: golden scripts for the bundled scenarios (the
 * library and the CLI write the same bytes), the scripts type-check against
 * @types/k6 and the xk6-sse declarations (and a broken copy does not), the
 * rates and thresholds the script carries are the ones asked for, and bad
 * input is one line naming the flag.
 *
 * ARENA_UPDATE_GOLDEN=1 (or UPDATE_GOLDEN=1) rewrites the golden files.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { bundledScenario, BUNDLED, validateScenario, type Scenario } from '../engine/scenario.js';
import { loadThresholdsFile } from '../engine/thresholds.js';
import { assertRefused, runArena } from '../../testing/cli.js';
import { repoPath } from '../../testing/paths.js';
import { exportK6, k6Thresholds, splitOpenRate, splitVus, thresholdsRecord, type K6ExportInput } from './k6.js';

const THRESHOLDS_FILE = repoPath('docs/ci/loadtest-thresholds.yaml');
const GOLDEN_ARGS = ['--rate', '20', '--duration', '60s', '--ramp', '10s', '--thresholds', THRESHOLDS_FILE];
const golden = (name: string) => repoPath('loadtest', 'export', 'golden', `${name}.k6.ts`);
const SSE_TYPES = repoPath('loadtest/export/k6-types/xk6-sse.d.ts');
const update = !!(process.env['ARENA_UPDATE_GOLDEN'] || process.env['UPDATE_GOLDEN']);

/** The golden load: 20/s, 10 s ramp-up, 60 s steady, the CI thresholds. */
function goldenInput(scenario: Scenario): K6ExportInput {
  return {
    scenario,
    load: { model: 'open', rate: 20 },
    durationMs: 60_000,
    rampUpMs: 10_000,
    rampDownMs: 0,
    thresholds: thresholdsRecord(loadThresholdsFile(THRESHOLDS_FILE)),
    baseUrl: 'http://127.0.0.1:18000',
  };
}

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-k6-export-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const exportCli = (args: string[]) => runArena(['loadtest', 'export', 'k6', ...args]);

for (const name of BUNDLED) {
  test(`golden k6 script of the bundled scenario ${name} (ARENA_UPDATE_GOLDEN=1 to refresh)`, () => {
    const text = exportK6(goldenInput(bundledScenario(name)));
    if (update) writeFileSync(golden(name), text);
    assert.equal(text, readFileSync(golden(name), 'utf8'));
    const cli = exportCli(['--scenario', name, ...GOLDEN_ARGS]);
    assert.equal(cli.code, 0, cli.err);
    assert.equal(cli.out, text, 'the CLI writes the same bytes');
  });
}

/** Run tsc on `files` with a k6 setup: strict, @types/k6 only, no DOM. */
function typeCheck(dir: string, files: string[]): { code: number | null; out: string } {
  const types = repoPath('node_modules', '@types');
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'ES2020',
      lib: ['ES2020'],
      module: 'ESNext',
      moduleResolution: 'Bundler',
      types: ['k6'],
      typeRoots: [types],
      skipLibCheck: false,
      // the scripts live outside the repository here: resolve k6's modules from arena's @types/k6
      paths: { k6: [join(types, 'k6', 'index.d.ts')], 'k6/*': [join(types, 'k6', '*')] },
    },
    files,
  };
  const tsconfig = join(dir, `tsconfig-${files.length}.json`);
  writeFileSync(tsconfig, JSON.stringify(config, null, 2));
  const r = spawnSync(process.execPath, [repoPath('node_modules/typescript/bin/tsc'), '-p', tsconfig], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** A scenario with every template variable, odd names and a closed model. */
const ODD_SCENARIO = `name: odd
headers: {x-client-id: '{{user_id}}', x-request-id: '{{uuid}}'}
requests:
  - name: a.b
    weight: 3
    path: /items/{{vu}}?w={{worker}}&i={{iter}}&r={{rand}}
  - name: a_b
    method: PUT
    path: /items
    body: {n: '{{rand}}', label: 'it''s {{model_a}} vs {{model_b}}', ids: ['{{uuid}}', 1, true, null], nested: {ms: '{{llm_latency_ms}}'}}
    llmLatencyMs: {p50: 100, p99: 400}
    expect: [200, 204]
    timeout: 1500ms
  - name: chat
    kind: sse
    method: GET
    path: /chat
    sse: {tokenEvent: token}
`;

test('exported scripts type-check against @types/k6 and the xk6-sse declarations; a broken copy does not', (t) => {
  const d = tmp(t);
  const local = join(d, 'arena-local.k6.ts');
  const fromFile = exportCli(['-f', repoPath('samples/arena-local.yaml'), '--duration', '20s', '--out', local]);
  assert.equal(fromFile.code, 0, fromFile.err);
  assert.match(readFileSync(local, 'utf8'), /Its types: .*loadtest\/export\/k6-types\/xk6-sse\.d\.ts\./);
  const scenario = join(d, 'odd.yaml');
  writeFileSync(scenario, ODD_SCENARIO);
  const odd = join(d, 'odd.k6.ts');
  const closed = exportCli([
    '--scenario-file',
    scenario,
    '--concurrency',
    '5',
    '--think-time',
    '1s',
    '--ramp-down',
    '5s',
  ]);
  assert.equal(closed.code, 0, closed.err);
  writeFileSync(odd, closed.out);
  const files = [...BUNDLED.map(golden), local, odd, SSE_TYPES];
  const ok = typeCheck(d, files);
  assert.equal(ok.code, 0, ok.out);

  const broken = join(d, 'broken.k6.ts');
  writeFileSync(
    broken,
    `${readFileSync(golden('read'), 'utf8')}\nexport function broken(): void {\n  http.get(123);\n}\n`,
  );
  const bad = typeCheck(d, [broken, SSE_TYPES]);
  assert.equal(bad.code, 2, bad.out);
  assert.match(bad.out, /broken\.k6\.ts\(\d+,\d+\): error TS2345: Argument of type 'number'/);

  const badSse = join(d, 'bad-sse.k6.ts');
  writeFileSync(badSse, readFileSync(golden('chat-stream'), 'utf8').replace("client.on('error'", "client.on('eror'"));
  const sse = typeCheck(d, [badSse, SSE_TYPES]);
  assert.equal(sse.code, 2, sse.out);
  assert.match(sse.out, /bad-sse\.k6\.ts\(\d+,\d+\): error TS2769: No overload matches this call/);
});

/** The scenarios block of a script: k6 scenario name -> its lines. */
function scenarioBlocks(text: string): Map<string, string> {
  const section = /\n {2}scenarios: \{\n([\s\S]*?)\n {2}\},\n/.exec(text)![1]!;
  const blocks = new Map<string, string>();
  for (const m of section.matchAll(/^ {4}('[^']+'|[\w$]+): \{\n([\s\S]*?)\n {4}\},$/gm))
    blocks.set(m[1]!.replace(/^'|'$/g, ''), m[2]!);
  return blocks;
}

/** A single-quoted literal of the script back to its string. */
const unquote = (s: string) => JSON.parse(`"${s.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"')}"`) as string;

/** The thresholds object of a script. */
function scriptThresholds(text: string): Record<string, string[]> {
  const section = /\n {2}thresholds: \{\n([\s\S]*?)\n {2}\},\n/.exec(text)?.[1] ?? '';
  const out: Record<string, string[]> = {};
  for (const m of section.matchAll(/^ {4}('(?:[^'\\]|\\.)*'|[\w$]+): \[(.*)\],$/gm)) {
    const k = m[1]!.startsWith("'") ? unquote(m[1]!) : m[1]!;
    out[k] = [...m[2]!.matchAll(/'(?:[^'\\]|\\.)*'/g)].map((v) => unquote(v[0]));
  }
  return out;
}

const scenarioOf = (requests: unknown[]) => validateScenario({ name: 't', requests }, 'test');

test('open model: the per-scenario rates sum to the requested rate, and the script carries them', () => {
  const cases: [Scenario, number, Record<string, number>?][] = [
    [bundledScenario('mixed'), 20],
    [bundledScenario('mixed'), 7.3],
    [bundledScenario('read'), 0.25],
    [scenarioOf(['x', 'y', 'z'].map((name) => ({ name, path: '/' }))), 20],
    [
      scenarioOf(['read', 'llm-stream', 'llm-async'].map((name) => ({ name, path: '/' }))),
      4573.646,
      { read: 3201.552, 'llm-stream': 914.729, 'llm-async': 457.365 },
    ],
  ];
  for (const [scenario, rate, ratesByRequest] of cases) {
    const load = { model: 'open' as const, rate, ...(ratesByRequest ? { ratesByRequest } : {}) };
    const split = splitOpenRate(scenario.requests, load);
    const total = split.shares.reduce((a, s) => a + s.rate, 0) / split.unitS;
    assert.ok(
      Math.abs(total - rate) <= 0.5 / split.unitS,
      `${scenario.name} at ${rate}/s: the shares sum to ${total}/s`,
    );
    const exact = split.shares.reduce((a, s) => a + s.perSecond, 0);
    assert.ok(Math.abs(exact - rate) < 1e-9 * rate);
    for (const s of split.shares)
      assert.ok(Math.abs(s.rate / split.unitS - s.perSecond) <= 0.001 * s.perSecond, s.name);
    const text = exportK6({ ...goldenInput(scenario), load, rampUpMs: 0 });
    const blocks = scenarioBlocks(text);
    assert.equal(blocks.size, scenario.requests.length);
    for (const s of split.shares) {
      const block = blocks.get(s.name)!;
      assert.match(block, /executor: 'constant-arrival-rate'/);
      assert.match(block, new RegExp(`\\n\\s+rate: ${s.rate},\\n\\s+timeUnit: '${split.timeUnit}',`), block);
    }
  }
  // 20/s over three equal requests: 400 per minute each, exactly
  const thirds = splitOpenRate(scenarioOf(['x', 'y', 'z'].map((name) => ({ name, path: '/' }))).requests, {
    model: 'open',
    rate: 20,
  });
  assert.deepEqual([thirds.timeUnit, thirds.shares.map((s) => s.rate)], ['1m', [400, 400, 400]]);
  // ramps: ramping-arrival-rate from 0 to the share, and back down
  const ramped = scenarioBlocks(exportK6({ ...goldenInput(bundledScenario('mixed')), rampDownMs: 5000 }));
  assert.match(ramped.get('debate-stream')!, /executor: 'ramping-arrival-rate'/);
  assert.match(
    ramped.get('debate-stream')!,
    /startRate: 0,\n\s+timeUnit: '1s',\n\s+stages: \[\{ duration: '10s', target: 4 \}, \{ duration: '60s', target: 4 \}, \{ duration: '5s', target: 0 \}\]/,
  );
});

test('closed model: the VUs are split by weight, at least one each, and sum to the requested VUs', () => {
  const mixed = bundledScenario('mixed');
  for (const vus of [4, 10, 33, 1000]) {
    const split = splitVus(mixed.requests, vus);
    assert.equal(
      split.reduce((a, b) => a + b, 0),
      vus,
    );
    assert.ok(split.every((n) => n >= 1));
    const text = exportK6({ ...goldenInput(mixed), load: { model: 'closed', vus, thinkTimeMs: 0 }, rampUpMs: 0 });
    const blocks = scenarioBlocks(text);
    mixed.requests.forEach((r, i) => {
      assert.match(blocks.get(r.name)!, /executor: 'constant-vus'/);
      assert.match(blocks.get(r.name)!, new RegExp(`\\n\\s+vus: ${split[i]},\\n`));
    });
  }
  assert.deepEqual(splitVus(mixed.requests, 10), [6, 1, 2, 1]);
  assert.throws(
    () => splitVus(mixed.requests, 3),
    /--concurrency: k6 runs one scenario per request, each with at least one VU: give at least 4 \(got 3\)/,
  );
});

test('the exported thresholds are the input thresholds, except those k6 cannot evaluate (listed)', () => {
  const thresholds = {
    http_req_duration: ['p(99)<2000', 'avg<500'],
    'http_req_duration{scenario:read}': ['p(95)<100', 'max<1000'],
    http_req_failed: ['rate<0.01'],
    'ttft{scenario:debate-stream}': ['p(99)<3000'],
    itl: ['p(99.9)<200'],
    task_e2e: ['med<9000'],
    dropped_iterations: ['count==0'],
  };
  const text = exportK6({ ...goldenInput(bundledScenario('mixed')), thresholds });
  assert.deepEqual(scriptThresholds(text), thresholds);
  assert.deepEqual(k6Thresholds(thresholds, { ttft: 'trend', itl: 'trend', task_e2e: 'trend' }).dropped, []);

  const arenaOnly = {
    ...thresholds,
    client_saturated: ['rate==0'],
    'saturation{pool:pgbouncer_server}': ['max<0.9'],
    'http_req_duration{scenario:read}': ['p(95)<100', 'count>100'],
  };
  const read = exportK6({ ...goldenInput(bundledScenario('read')), thresholds: arenaOnly });
  // the read scenario has no stream and no task: k6 would not know ttft, itl or task_e2e
  assert.deepEqual(scriptThresholds(read), {
    http_req_duration: ['p(99)<2000', 'avg<500'],
    'http_req_duration{scenario:read}': ['p(95)<100'],
    http_req_failed: ['rate<0.01'],
    dropped_iterations: ['count==0'],
  });
  for (const line of [
    '//   client_saturated: rate==0 - client_saturated is not a metric of this k6 script',
    '//   saturation{pool:pgbouncer_server}: max<0.9 - saturation is not a metric of this k6 script',
    '//   http_req_duration{scenario:read}: count>100 - k6 has no count for a trend metric',
    '//   ttft{scenario:debate-stream}: p(99)<3000 - ttft is not a metric of this k6 script',
  ])
    assert.ok(read.includes(line), line);
  // the golden files: the CI thresholds, client_saturated left out with its reason
  const ci = thresholdsRecord(loadThresholdsFile(THRESHOLDS_FILE));
  const { client_saturated: _, ...k6Ci } = ci;
  assert.deepEqual(scriptThresholds(readFileSync(golden('mixed'), 'utf8')), k6Ci);
});

/** A helper function of a script, transpiled to JavaScript and made callable. */
function scriptFunction<F>(text: string, name: string, prelude = ''): F {
  const src = new RegExp(`^function ${name}\\([\\s\\S]*?^\\}$`, 'm').exec(text)![0];
  const js = ts.transpileModule(`${prelude}\n${src}`, {
    compilerOptions: { target: ts.ScriptTarget.ES2020 },
  }).outputText;
  return new Function(`${js}\nreturn ${name};`)() as F;
}

test("the script's {{llm_latency_ms}} and model draws behave as the engine's", () => {
  const text = readFileSync(golden('debate-stream'), 'utf8');
  assert.match(text, /const llmLatencyMs = lognormalMs\(2000, 8000\);/);
  assert.match(text, /llm_latency_ms: llmLatencyMs/);
  const lognormalMs = scriptFunction<(p50: number, p99: number) => number>(text, 'lognormalMs');
  const draws = Array.from({ length: 40_000 }, () => lognormalMs(2000, 8000)).sort((a, b) => a - b);
  const p = (q: number) => draws[Math.floor(q * draws.length)]!;
  assert.ok(Math.abs(p(0.5) - 2000) < 100, `median ${p(0.5)}`);
  assert.ok(Math.abs(p(0.99) - 8000) < 800, `p99 ${p(0.99)}`);
  assert.ok(draws.every((x) => Number.isInteger(x) && x > 0 && x <= 40_000));
  const models = /^const MODELS = .*$/m.exec(text)![0];
  const twoModels = scriptFunction<() => [string, string]>(text, 'twoModels', models);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const [a, b] = twoModels();
    assert.notEqual(a, b);
    seen.add(a).add(b);
  }
  assert.equal(seen.size, 16);
});

test('export k6: bad input is one line naming the flag, exit 2, nothing on stdout', (t) => {
  const d = tmp(t);
  const f = join(d, 's.yaml');
  writeFileSync(f, 'requests: [{name: x, path: /}]\n');
  const local = repoPath('samples/arena-local.yaml');
  assertRefused(
    exportCli(['--scenario', 'read', '--scenario-file', f, '--rate', '1']),
    /give one of --scenario, --scenario-file, -f \(got --scenario and --scenario-file\)/,
  );
  assertRefused(exportCli(['--scenario', 'read', '-f', local]), /give one of .* \(got --scenario and -f\)/);
  assertRefused(exportCli(['--scenario', 'nope', '--rate', '1']), /--scenario: unknown scenario nope/);
  assertRefused(exportCli(['--rate', '1']), /give the scenario: --scenario NAME/);
  assertRefused(exportCli(['--scenario', 'read']), /give the load: --rate R/);
  assertRefused(
    exportCli(['--scenario', 'read', '--rate', '1', '--concurrency', '2']),
    /--rate R or --concurrency N, not both/,
  );
  assertRefused(exportCli(['--scenario', 'mixed', '--concurrency', '2']), /--concurrency: .*give at least 4 \(got 2\)/);
  assertRefused(exportCli(['--scenario', 'read', '--rate', '0']), /--rate.*must be a number > 0/);
  assertRefused(
    exportCli(['--scenario', 'read', '--rate', '1', '--target', 'ftp://x']),
    /--target: not an http\(s\) URL/,
  );
  assertRefused(
    exportCli(['--scenario', 'read', '--rate', '1', '--think-time', '1s']),
    /--think-time: only with --concurrency/,
  );
  assertRefused(
    exportCli(['--scenario', 'read', '--rate', '1', '--thresholds', join(d, 'missing.yaml')]),
    /missing\.yaml: .*(no such file|not found|ENOENT)/i,
  );
  const out = join(d, 'never.k6.ts');
  assertRefused(exportCli(['--scenario', 'nope', '--rate', '1', '--out', out]), /--scenario: unknown scenario/);
  assert.throws(() => readFileSync(out), /ENOENT/);
});
