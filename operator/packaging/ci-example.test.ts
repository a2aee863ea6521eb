/**
 * docs/ci/example-loadtest.yml is an example for users' CI and is not run by
 * this repository's CI; this test runs the shell of its `validate` and `gate`
 * steps (as GitHub Actions would: bash, the workflow's env) on the samples, and
 * checks the load-test job's flags and thresholds (the same run is the CI
 * smoke test, loadtest/engine/smoke.test.ts), so a renamed sample or a changed
 * CLI flag breaks here and not in a user's CI.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { SAMPLES } from './sync.js';
import { loadThresholdsFile } from '../../loadtest/engine/thresholds.js';

const wf = parse(readFileSync(repoPath('docs/ci/example-loadtest.yml'), 'utf8'));
const steps: any[] = wf.jobs['capacity-gate'].steps;
const step = (id: string) => {
  const s = steps.find((x) => x.id === id);
  assert.ok(s?.run, `step ${id}`);
  return s.run as string;
};

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Run a step's script in a fresh working dir that has the repo's dist/ and samples/ (the checkout after the build step). */
function runStep(id: string, specs: string) {
  const cwd = mkdtempSync(join(tmpdir(), 'arena-ci-example-'));
  dirs.push(cwd);
  symlinkSync(repoPath('dist'), join(cwd, 'dist'), 'dir');
  symlinkSync(repoPath('samples'), join(cwd, 'samples'), 'dir');
  const r = spawnSync('bash', ['-e', '-c', step(id)], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ARENA_SPECS: specs },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr, cwd };
}

test('the example gates the three samples and uploads the plans even when the gate fails', () => {
  assert.deepEqual(wf.env.ARENA_SPECS.split(' '), SAMPLES);
  const upload = steps.find((s) => String(s.uses ?? '').startsWith('actions/upload-artifact'));
  assert.equal(upload?.if, 'always()');
  assert.equal(upload.with.path, 'plans/');
  assert.equal(wf.jobs['load-test'].needs, 'capacity-gate');
});

test('the load-test job runs arena loadtest with thresholds that parse, and always takes the stack down', () => {
  const lt: any[] = wf.jobs['load-test'].steps;
  const run = lt.find((s) => s.id === 'loadtest')?.run as string;
  assert.match(run, /arena\.js loadtest run -f "\$LOADTEST_SPEC" --scenario mixed/);
  assert.match(run, /--thresholds docs\/ci\/loadtest-thresholds\.yaml/);
  assert.ok(existsSync(repoPath(wf.jobs['load-test'].env.LOADTEST_SPEC)), 'the spec exists');
  const specs = loadThresholdsFile(repoPath('docs/ci/loadtest-thresholds.yaml'));
  assert.ok(specs.length >= 3, 'thresholds parse');
  const down = lt.find((s) => /stack down/.test(String(s.run ?? '')));
  assert.equal(down?.if, 'always()');
  // the flags the job passes exist (a renamed flag fails here, not in a user's CI)
  const help = spawnSync(process.execPath, [repoPath('dist/cli/arena.js'), 'loadtest', 'run', '--help'], {
    encoding: 'utf8',
  }).stdout;
  for (const flag of run.match(/--[a-z-]+/g) ?? []) assert.ok(help.includes(flag), `arena loadtest run has ${flag}`);
});

test('the validate and gate steps pass on the samples and write one CapacityPlan per spec', () => {
  const v = runStep('validate', wf.env.ARENA_SPECS);
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out.trim().split('\n').length, SAMPLES.length);
  const g = runStep('gate', wf.env.ARENA_SPECS);
  assert.equal(g.code, 0, `${g.out}\n${g.err}`);
  assert.deepEqual(readdirSync(join(g.cwd, 'plans')).sort(), [
    'arena-10k.json',
    'arena-medium.json',
    'arena-small.json',
  ]);
  for (const f of readdirSync(join(g.cwd, 'plans'))) {
    const p = JSON.parse(readFileSync(join(g.cwd, 'plans', f), 'utf8'));
    assert.equal(p.kind, 'CapacityPlan');
    assert.deepEqual(p.findings, []);
  }
});

test('the gate fails on a spec whose plan has findings, names them, and still writes its plan', () => {
  const g = runStep('gate', 'samples/arena-small.yaml samples/debate-arena.yaml');
  assert.equal(g.code, 1);
  assert.match(g.out, /^ok {4}samples\/arena-small\.yaml/m);
  assert.match(g.out, /^FAIL {2}samples\/debate-arena\.yaml \(exit 1\): error LLMRateLimitBound/m);
  const p = JSON.parse(readFileSync(join(g.cwd, 'plans', 'debate-arena.json'), 'utf8'));
  assert.ok(p.findings.length > 0);
});
