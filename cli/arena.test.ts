/**
 * The CLI as a user runs it: a child process per case, checking stdout, stderr and the exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { repoPath } from '../testing/paths.js';
import { assertRefused, runArena, type CliRun } from '../testing/cli.js';

const SAMPLE = repoPath('samples/debate-arena.yaml');
const HOLDS = repoPath('samples/debate-arena-holds.yaml');

function arena(args: string[], input?: string) {
  return runArena(args, { input });
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'arena-cli-'));
}

/** A bad-input run: exit 2, a message on stderr naming `what`, every line one `arena...:` line, no stack trace. */
function assertBadInput(r: CliRun, what: RegExp) {
  assertRefused(r, what, { oneLine: false });
}

test('validate: the sample is valid', () => {
  const r = arena(['validate', '-f', SAMPLE]);
  assert.equal(r.code, 0);
  assert.match(r.out, /ArenaDeployment arena\/debate-arena is valid/);
});

test('validate: a schema error is one line naming the field, exit 2', () => {
  const d = tmp();
  const f = join(d, 'bad.yaml');
  writeFileSync(f, readFileSync(SAMPLE, 'utf8').replace('poolSize: 20', 'poolSize: 0'));
  const r = arena(['validate', '-f', f]);
  assertBadInput(r, /bad\.yaml: spec\.api\.db\.poolSize: must be >= 1\n$/);
  rmSync(d, { recursive: true });
});

test('validate: malformed YAML, missing file, directory, stdin', () => {
  assertBadInput(arena(['validate', '-f', '-'], 'spec: [\n'), /^arena: -: \(yaml\): line \d+, column \d+: /);
  assertBadInput(
    arena(['validate', '-f', '/nonexistent/arena.yaml']),
    /^arena: cannot read \/nonexistent\/arena\.yaml: no such file\n$/,
  );
  assertBadInput(arena(['validate', '-f', tmpdir()]), /is a directory/);
  assert.equal(arena(['validate', '-f', '-'], readFileSync(SAMPLE, 'utf8')).code, 0);
});

test('validate: several documents, errors name the document', () => {
  const text = `${readFileSync(SAMPLE, 'utf8')}---\n${readFileSync(SAMPLE, 'utf8').replace('name: debate-arena', 'name: second').replace('maxOverflow: 10', 'maxOverflow: -1')}`;
  const r = arena(['validate', '-f', '-'], text);
  assertBadInput(r, /^arena: - \(document 2, line \d+\): spec\.api\.db\.maxOverflow: must be >= 0\n$/);
});

test('plan -o json: the stable contract, exit 1 with errors at the default --fail-on error', () => {
  const r = arena(['plan', '-f', SAMPLE, '-o', 'json']);
  assert.equal(r.code, 1);
  const p = JSON.parse(r.out);
  assert.equal(p.kind, 'CapacityPlan');
  assert.equal(p.replicas.max, 9);
  assert.equal(p.connections.perPod, 240);
  assert.equal(p.pgbouncer.poolMode, 'transaction');
  assert.ok(p.queues.llmSlots.servers > 0);
  assert.ok(p.findings.some((f: any) => f.code === 'LLMRateLimitBound' && f.severity === 'error'));
  assert.equal(p.derivations, undefined);
});

test('plan: --fail-on none exits 0, a plan that holds exits 0, --fail-on warning counts warnings', () => {
  assert.equal(arena(['plan', '-f', SAMPLE, '--fail-on', 'none', '-o', 'json']).code, 0);
  assert.equal(arena(['plan', '-f', HOLDS]).code, 0);
  const warn = readFileSync(HOLDS, 'utf8')
    .replace('poolMode: transaction', 'poolMode: session')
    .replace('maxConnections: 500', 'maxConnections: 5000');
  const r = arena(['plan', '-f', '-', '--fail-on', 'warning', '-o', 'json'], warn);
  const p = JSON.parse(r.out);
  assert.ok(
    p.findings.every((f: any) => f.severity === 'warning') && p.findings.length > 0,
    JSON.stringify(p.findings),
  );
  assert.equal(r.code, 1);
  assert.equal(arena(['plan', '-f', '-', '--fail-on', 'error'], warn).code, 0);
});

test('plan: table output and --explain', () => {
  const r = arena(['plan', '-f', HOLDS, '--explain']);
  assert.equal(r.code, 0);
  assert.match(r.out, /Capacity plan for arena\/debate-arena-holds/);
  assert.match(r.out, /No findings/);
  assert.match(r.out, /Derivations/);
  assert.match(r.out, /workersPerPod \* \(poolSize \+ maxOverflow\)/);
  const y = parse(arena(['plan', '-f', HOLDS, '-o', 'yaml', '--explain']).out);
  assert.equal(y.derivations['connections.perPod'].value, 240);
});

test('plan: several documents give a CapacityPlanList', () => {
  const text = `${readFileSync(SAMPLE, 'utf8')}---\n${readFileSync(HOLDS, 'utf8')}`;
  const p = JSON.parse(arena(['plan', '-f', '-', '-o', 'json', '--fail-on', 'none'], text).out);
  assert.equal(p.kind, 'CapacityPlanList');
  assert.deepEqual(
    p.items.map((i: any) => i.metadata.name),
    ['debate-arena', 'debate-arena-holds'],
  );
});

test('bad flags: one line naming the flag, exit 2', () => {
  assertBadInput(arena(['plan', '-f', SAMPLE, '-o', 'xml']), /'-o, --output <format>' argument 'xml' is invalid/);
  assertBadInput(
    arena(['plan', '-f', SAMPLE, '--fail-on', 'fatal']),
    /--fail-on <severity>.*must be one of: error, warning, none/,
  );
  assertBadInput(arena(['plan']), /required option '-f, --file <file>' not specified/);
  assertBadInput(arena(['plan', '-f', SAMPLE, '--bogus']), /unknown option '--bogus'/);
  assertBadInput(arena(['nosuch']), /unknown command 'nosuch'/);
  assertBadInput(
    arena(['queue', '--arrival-rate', '100', '--service-time', '10s', '--servers', 'many']),
    /--servers <count>.*must be a positive integer/,
  );
  assertBadInput(
    arena(['queue', '--arrival-rate', '-1', '--service-time', '10s', '--servers', '3']),
    /--arrival-rate <per-second>.*must be a number > 0/,
  );
  assertBadInput(
    arena(['queue', '--arrival-rate', '1', '--service-time', 'ten', '--servers', '3']),
    /--service-time <duration>.*must be a duration/,
  );
});

test('queue: the reference case (100/s, 10 s, 1050 servers) gives P(wait) 0.074 and P99 wait 0.40 s', () => {
  const r = arena(['queue', '--arrival-rate', '100', '--service-time', '10s', '--servers', '1050', '-o', 'json']);
  assert.equal(r.code, 0);
  const q = JSON.parse(r.out);
  assert.equal(q.pWait.toFixed(3), '0.074');
  assert.equal((q.p99WaitMs / 1000).toFixed(2), '0.40');
  const t = arena(['queue', '--arrival-rate', '100', '--service-time', '10s', '--servers', '1050']);
  assert.match(t.out, /P\(wait\)\s+│ 0\.07\d\d/);
  assert.match(
    arena(['queue', '--arrival-rate', '200', '--service-time', '10s', '--servers', '1050']).out,
    /unbounded/,
  );
});

test('render: YAML to stdout, JSON List, and --out-dir writes one file per object', () => {
  const y = arena(['render', '-f', SAMPLE]);
  assert.equal(y.code, 0);
  const docs = parseAllDocuments(y.out).map((d) => d.toJS());
  assert.equal(docs.length, 11);
  assert.deepEqual(docs, JSON.parse(arena(['render', '-f', SAMPLE, '-o', 'json']).out).items);
  const d = tmp();
  const r = arena(['render', '-f', SAMPLE, '--out-dir', join(d, 'out')]);
  assert.equal(r.code, 0);
  assert.match(r.out, /wrote 11 objects/);
  const files = readdirSync(join(d, 'out'));
  assert.equal(files.length, 11);
  assert.ok(files.includes('11-horizontalpodautoscaler-debate-arena-api.yaml'), files.join(','));
  rmSync(d, { recursive: true });
});

test('render: bad input writes nothing', () => {
  const d = tmp();
  const r = arena(
    ['render', '-f', '-', '--out-dir', join(d, 'out')],
    readFileSync(SAMPLE, 'utf8').replace('workersPerPod: 8', 'workersPerPod: 0'),
  );
  assertBadInput(r, /spec\.api\.workersPerPod: must be >= 1/);
  assert.deepEqual(readdirSync(d), []);
  rmSync(d, { recursive: true });
});

test('gen-crd prints the checked-in CRD', () => {
  assert.equal(arena(['gen-crd']).out, readFileSync(repoPath('crds/arenadeployment.yaml'), 'utf8'));
});

test('--help and --version exit 0', () => {
  assert.equal(arena(['--help']).code, 0);
  assert.match(arena(['--version']).out, /^0\.1\.0/);
});
