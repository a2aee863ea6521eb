/**
 * docs/ci/example-loadtest.yml is an example for users' CI and is not run by
 * this repository's CI. This test checks it as far as it can without GitHub:
 *
 * - every `arena` command line in it (all jobs) uses only flags that the CLI's
 *   `--help` for that command lists, so a renamed flag breaks here and not in
 *   a user's CI;
 * - the capacity-gate job: the shell of its `validate` and `gate` steps runs (as
 *   GitHub Actions runs it: bash, the workflow's env) on the samples;
 * - the load-test job: its thresholds file parses, the artifact holds
 *   report.html, junit.xml and result.json, the upload, JUnit, stack-down,
 *   compare and verdict steps run `if: always()`, the baseline is the previous
 *   successful run's artifact; and the shell of its loadtest, compare and
 *   verdict steps runs for real against a test server standing in for a
 *   deployed target (TARGET_URL), keeping `arena loadtest run`'s exit 1 for the
 *   verdict, which then fails saying which gate failed.
 *
 * The whole job against the local stack: docs/ci/run-locally.sh (by hand, ~1 min).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { runArena } from '../../testing/cli.js';
import { startTestServer } from '../../testing/servers.js';
import { SAMPLES } from './sync.js';
import { loadThresholdsFile } from '../../loadtest/engine/thresholds.js';

const WORKFLOW = 'docs/ci/example-loadtest.yml';
const THRESHOLDS = 'docs/ci/loadtest-thresholds.yaml';
const wf = parse(readFileSync(repoPath(WORKFLOW), 'utf8'));
const gateSteps: any[] = wf.jobs['capacity-gate'].steps;
const lt = wf.jobs['load-test'];
const ltSteps: any[] = lt.steps;

/** The step with this id in a job's steps (asserting it exists). */
function stepOf(steps: any[], id: string): any {
  const s = steps.find((x) => x.id === id);
  assert.ok(s, `step ${id}`);
  return s;
}
/** The step that `uses` this action (asserting it exists). */
function usesStep(steps: any[], action: string): any {
  const s = steps.find((x) => String(x.uses ?? '').startsWith(action));
  assert.ok(s, `a step uses ${action}`);
  return s;
}

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh working dir that has the repo's dist/, samples/ and docs/ (the checkout after the build step). */
function checkout(): string {
  const cwd = mkdtempSync(join(tmpdir(), 'arena-ci-example-'));
  dirs.push(cwd);
  for (const d of ['dist', 'samples', 'docs']) symlinkSync(repoPath(d), join(cwd, d), 'dir');
  return cwd;
}

/** Run the capacity-gate job's step `id` with ARENA_SPECS=specs, as Actions does (bash -e). */
function runGateStep(id: string, specs: string) {
  const cwd = checkout();
  const r = spawnSync('bash', ['-e', '-c', stepOf(gateSteps, id).run], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ARENA_SPECS: specs },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr, cwd };
}

/** What a load-test step left: exit code, stdout/stderr, its GITHUB_OUTPUT as a map, the job summary so far. */
interface StepRun {
  code: number | null;
  out: string;
  err: string;
  outputs: Record<string, string>;
  summary: string;
}

/**
 * Run the load-test job's step `id` in `cwd` as GitHub Actions runs a `shell: bash`
 * step (bash --noprofile --norc -eo pipefail), with the job's plain env, `env`
 * on top, and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files. Asynchronous: the
 * target may be a server of this process.
 */
function runJobStep(cwd: string, id: string, env: Record<string, string>): Promise<StepRun> {
  const output = join(cwd, `${id}.output`);
  const summary = join(cwd, 'summary.md');
  writeFileSync(output, '');
  if (!existsSync(summary)) writeFileSync(summary, '');
  const jobEnv = Object.fromEntries(
    Object.entries(lt.env as Record<string, string>).filter(([, v]) => !/\$\{\{/.test(String(v))),
  );
  const script: string = stepOf(ltSteps, id).run;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', ...jobEnv, GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const outputs = Object.fromEntries(
        readFileSync(output, 'utf8')
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      resolve({ code, out, err, outputs, summary: readFileSync(summary, 'utf8') });
    });
  });
}

/** One `arena` invocation found in a step's script: the subcommand words and the flags passed. */
interface ArenaCall {
  job: string;
  line: string;
  command: string[];
  flags: string[];
}

/**
 * Every `node dist/cli/arena.js ...` command line in the workflow's `run:` scripts:
 * continuation lines joined, the command cut at the first `|`, `>`, `;`, `&&` or
 * `||`, and `"${NAME[@]}"` replaced by the flags of the script's `NAME=(...)` arrays.
 */
function arenaCalls(workflow: any): ArenaCall[] {
  const calls: ArenaCall[] = [];
  for (const [job, spec] of Object.entries<any>(workflow.jobs)) {
    for (const s of spec.steps as any[]) {
      if (typeof s.run !== 'string') continue;
      const script: string = s.run.replace(/\\\n\s*/g, ' ');
      const arrays = new Map<string, string[]>();
      for (const m of script.matchAll(/^\s*([A-Za-z_]\w*)=\((.*)\)\s*$/gm)) {
        arrays.set(m[1]!, [...(arrays.get(m[1]!) ?? []), ...m[2]!.split(/\s+/)]);
      }
      for (const line of script.split('\n')) {
        const at = line.indexOf('dist/cli/arena.js');
        if (at < 0) continue;
        const cmd = line.slice(at + 'dist/cli/arena.js'.length).split(/\s(?:\||>|;|&&|\|\|)|\s\d?>/)[0]!;
        const tokens = cmd.trim().split(/\s+/);
        const command: string[] = [];
        while (tokens.length && /^[a-z][a-z-]*$/.test(tokens[0]!)) command.push(tokens.shift()!);
        const expanded = tokens.flatMap((t) => {
          const m = /^"?\$\{(\w+)\[@\]\}"?$/.exec(t);
          return m ? (arrays.get(m[1]!) ?? []) : [t];
        });
        const flags = expanded.filter((t) => /^--?[A-Za-z]/.test(t)).map((t) => t.split('=')[0]!);
        calls.push({ job, line: line.trim(), command, flags });
      }
    }
  }
  return calls;
}

const helps = new Map<string, string>();
/** `arena COMMAND --help` (cached); asserts it exits 0. */
function helpOf(command: string[]): string {
  const key = command.join(' ');
  if (!helps.has(key)) {
    const r = runArena([...command, '--help']);
    assert.equal(r.code, 0, `arena ${key} --help: ${r.err}`);
    helps.set(key, r.out);
  }
  return helps.get(key)!;
}
/** The flags of a call that `arena <command> --help` does not list (an option line: `  -f, --file <file>`). */
function unknownFlags(call: ArenaCall): string[] {
  const help = helpOf(call.command);
  const listed = (flag: string) =>
    new RegExp(`^\\s+(?:-\\w, )?(?:--[\\w-]+, )?${flag.replace(/[-]/g, '\\-')}(?=[\\s,<[]|$)`, 'm').test(help);
  return call.flags.filter((f) => !listed(f));
}

test('every arena command line in the workflow uses flags the CLI lists in its --help', () => {
  const calls = arenaCalls(wf);
  const commands = new Set(calls.map((c) => c.command.join(' ')));
  for (const c of ['validate', 'plan', 'stack up', 'stack down', 'loadtest run', 'loadtest compare'])
    assert.ok(commands.has(c), `the workflow runs arena ${c}`);
  for (const call of calls) assert.deepEqual(unknownFlags(call), [], `${call.job}: ${call.line}`);
  // the flags of the run, including those of the target=(...) arrays of both modes
  const run = calls.find((c) => c.command.join(' ') === 'loadtest run')!;
  for (const f of ['-f', '--scenario', '--rate', '--duration', '--ramp', '--thresholds', '--out'])
    assert.ok(run.flags.includes(f), `loadtest run ${f}`);
  for (const f of ['--sample', '--target', '--allow-remote']) assert.ok(run.flags.includes(f), `loadtest run ${f}`);
  const compare = calls.find((c) => c.command.join(' ') === 'loadtest compare')!;
  assert.deepEqual(compare.flags, ['--max-regression']);
  // the check can fail: a flag the CLI does not have, or one of another command, is caught
  const [bad] = arenaCalls({
    jobs: {
      x: { steps: [{ run: 'node dist/cli/arena.js loadtest compare a b --max-regresion 5% --sample auto | tee x' }] },
    },
  });
  assert.deepEqual(unknownFlags(bad!), ['--max-regresion', '--sample']);
});

test('the load-test job: the run of the brief, its thresholds parse, the local stack or TARGET_URL', () => {
  assert.equal(lt.needs, 'capacity-gate');
  assert.ok(existsSync(repoPath(lt.env.LOADTEST_SPEC)), 'the spec exists');
  assert.deepEqual(
    { rate: lt.env.RATE, duration: lt.env.DURATION, ramp: lt.env.RAMP, max: lt.env.MAX_REGRESSION },
    { rate: '100', duration: '60s', ramp: '10s', max: '10%' },
  );
  assert.match(lt.env.TARGET_URL, /inputs\.target_url/);
  assert.equal(wf.on.workflow_dispatch.inputs.target_url.required, false);
  const run: string = stepOf(ltSteps, 'loadtest').run.replace(/\\\n\s*/g, ' ');
  assert.match(
    run,
    /arena\.js loadtest run -f "\$LOADTEST_SPEC" --scenario mixed\s+--rate "\$RATE" --duration "\$DURATION" --ramp "\$RAMP" "\$\{target\[@\]\}"\s+--thresholds docs\/ci\/loadtest-thresholds\.yaml --out out\/loadtest/,
  );
  assert.match(run, /target=\(--target "\$TARGET_URL" --allow-remote\)/);
  assert.match(run, /target=\(--sample auto\)/);
  const specs = loadThresholdsFile(repoPath(THRESHOLDS));
  assert.ok(specs.length >= 3, 'thresholds parse');
  // no stack (nor its packages) when a deployed URL is the target
  assert.equal(ltSteps.find((s) => /install-debian-deps\.sh db/.test(String(s.run ?? '')))?.if, "env.TARGET_URL == ''");
  assert.equal(stepOf(ltSteps, 'stack-up').if, "env.TARGET_URL == ''");
  assert.match(stepOf(ltSteps, 'stack-up').run, /arena\.js stack up -f "\$LOADTEST_SPEC"/);
  // the scripts run the same outside Actions (run-locally.sh, this test): no ${{ }} inside them
  for (const s of ltSteps) if (s.run) assert.doesNotMatch(s.run, /\$\{\{/, `step ${s.id ?? s.name}`);
});

test('the load-test job always uploads report.html, junit.xml and result.json, publishes junit.xml and takes the stack down', () => {
  const upload = usesStep(ltSteps, 'actions/upload-artifact@v4');
  assert.equal(upload.if, 'always()');
  assert.deepEqual(String(upload.with.path).trim().split('\n').sort(), [
    'out/loadtest/junit.xml',
    'out/loadtest/report.html',
    'out/loadtest/result.json',
  ]);
  const junit = usesStep(ltSteps, 'mikepenz/action-junit-report@v4');
  assert.equal(junit.if, 'always()');
  assert.equal(junit.with.report_paths, 'out/loadtest/junit.xml');
  assert.equal(junit.with.job_summary, true);
  const down = stepOf(ltSteps, 'stack-down');
  assert.match(down.if, /^always\(\)/);
  assert.match(down.run, /arena\.js stack down -f "\$LOADTEST_SPEC"/);
  // down comes after the load test, the verdict is the last step
  const index = (id: string) => ltSteps.findIndex((s) => s.id === id);
  assert.ok(index('stack-down') > index('loadtest'));
  assert.equal(ltSteps.at(-1).id, 'verdict');
  assert.equal(ltSteps.at(-1).if, 'always()');
});

test('the baseline is the artifact of the last successful run on the default branch, compared with if: always()', () => {
  assert.equal(lt.permissions.actions, 'read');
  const base = stepOf(ltSteps, 'baseline');
  assert.match(base.env.GH_TOKEN, /github\.token/);
  const gh = base.run.replace(/\\\n\s*/g, ' ');
  assert.match(
    gh,
    /gh run list --repo "\$GITHUB_REPOSITORY" --workflow "\$wf" --status success\s+--branch "\$BASELINE_BRANCH" --limit 1 --json databaseId/,
  );
  assert.match(gh, /run-id=\$id" >>"\$GITHUB_OUTPUT"/);
  assert.ok(wf.on.push.branches.includes('main'), 'runs on main make the baselines');
  const download = usesStep(ltSteps, 'actions/download-artifact@v4');
  assert.equal(download.with['run-id'], '${{ steps.baseline.outputs.run-id }}');
  assert.match(download.with['github-token'], /github\.token/);
  assert.equal(download.with.path, 'out/baseline');
  assert.equal(
    download.with.name,
    usesStep(ltSteps, 'actions/upload-artifact@v4').with.name,
    'the artifact this job uploads',
  );
  assert.equal(download['continue-on-error'], true);
  const compare = stepOf(ltSteps, 'compare');
  assert.match(compare.if, /^always\(\)/);
  assert.match(
    compare.run.replace(/\\\n\s*/g, ' '),
    /arena\.js loadtest compare out\/baseline out\/loadtest\s+--max-regression "\$MAX_REGRESSION"/,
  );
  const verdict = stepOf(ltSteps, 'verdict');
  assert.equal(verdict.env.LOADTEST_EXIT, '${{ steps.loadtest.outputs.exit }}');
  assert.equal(verdict.env.COMPARE_EXIT, '${{ steps.compare.outputs.exit }}');
});

test('the verdict step passes only when the thresholds passed and there is no regression, and says which failed', async () => {
  const cwd = checkout();
  const verdict = (LOADTEST_EXIT: string, COMPARE_EXIT: string) =>
    runJobStep(cwd, 'verdict', { LOADTEST_EXIT, COMPARE_EXIT });
  const pass = await verdict('0', '0');
  assert.equal(pass.code, 0, pass.out);
  assert.match(pass.out, /load test gate: passed/);
  const noBase = await verdict('0', 'none');
  assert.equal(noBase.code, 0);
  assert.match(noBase.out, /regression: not checked \(no baseline result\.json\)/);
  const thresholds = await verdict('1', '0');
  assert.equal(thresholds.code, 1);
  assert.match(thresholds.out, /::error title=load test gate::thresholds failed \(arena loadtest run exit 1/);
  assert.doesNotMatch(thresholds.out, /::error.*regression/);
  const regression = await verdict('0', '1');
  assert.equal(regression.code, 1);
  assert.match(
    regression.out,
    /::error title=load test gate::regression against the last successful run \(arena loadtest compare exit 1, --max-regression 10%\)/,
  );
  assert.doesNotMatch(regression.out, /::error.*thresholds failed/);
  const both = await verdict('1', '1');
  assert.equal(both.code, 1);
  assert.match(both.out, /FAILED \(2 reason\(s\)\)/);
  assert.match(both.summary, /- FAILED: thresholds failed/);
  assert.match(both.summary, /- FAILED: regression against/);
  const broken = await verdict('2', '');
  assert.equal(broken.code, 1);
  assert.match(broken.out, /the load test did not complete \(arena loadtest run exit 2/);
});

test('the loadtest and compare steps against a deployed target (TARGET_URL): exit 1 kept for the verdict, the artifact written', async () => {
  // a test server stands in for the deployed API: it answers 200 "ok" to every
  // path, so the stream and task requests of the mix fail and so does http_req_failed rate<0.05
  const server = await startTestServer({ latencyMs: 2 });
  const cwd = checkout();
  try {
    const env = { TARGET_URL: server.url, RATE: '20', DURATION: '2s', RAMP: '0s' };
    const run = await runJobStep(cwd, 'loadtest', env);
    assert.equal(run.code, 0, `the step itself passes, the exit code waits for the verdict: ${run.err}`);
    assert.equal(run.outputs['exit'], '1', run.out);
    assert.match(run.out, new RegExp(`arena loadtest: arena-local-mix against ${server.url}/`));
    assert.match(run.out, /FAIL http_req_failed rate<0\.05/i);
    assert.doesNotMatch(run.err, /sampling/, 'no pool sampling against a deployed target');
    assert.deepEqual(readdirSync(join(cwd, 'out/loadtest')).sort(), ['junit.xml', 'report.html', 'result.json']);
    assert.match(run.summary, /### arena loadtest run \(exit 1\)\n```text\narena loadtest: arena-local-mix/);
    // no baseline yet: compare is skipped, not failed
    const none = await runJobStep(cwd, 'compare', env);
    assert.equal(none.code, 0, none.err);
    assert.equal(none.outputs['exit'], 'none');
    // a baseline equal to the new run: no regression
    cpSync(join(cwd, 'out/loadtest'), join(cwd, 'out/baseline'), { recursive: true });
    const same = await runJobStep(cwd, 'compare', env);
    assert.equal(same.code, 0, same.err);
    assert.equal(same.outputs['exit'], '0', same.out);
    assert.match(same.summary, /### arena loadtest compare \(exit 0\)/);
    const verdict = await runJobStep(cwd, 'verdict', {
      LOADTEST_EXIT: run.outputs['exit']!,
      COMPARE_EXIT: same.outputs['exit']!,
    });
    assert.equal(verdict.code, 1);
    assert.match(verdict.out, /::error title=load test gate::thresholds failed/);
  } finally {
    await server.close();
  }
});

test('the validate and gate steps pass on the samples and write one CapacityPlan per spec', () => {
  assert.deepEqual(wf.env.ARENA_SPECS.split(' '), SAMPLES);
  const upload = usesStep(gateSteps, 'actions/upload-artifact');
  assert.equal(upload.if, 'always()');
  assert.equal(upload.with.path, 'plans/');
  const v = runGateStep('validate', wf.env.ARENA_SPECS);
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out.trim().split('\n').length, SAMPLES.length);
  const g = runGateStep('gate', wf.env.ARENA_SPECS);
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
  const g = runGateStep('gate', 'samples/arena-small.yaml samples/debate-arena.yaml');
  assert.equal(g.code, 1);
  assert.match(g.out, /^ok {4}samples\/arena-small\.yaml/m);
  assert.match(g.out, /^FAIL {2}samples\/debate-arena\.yaml \(exit 1\): error LLMRateLimitBound/m);
  const p = JSON.parse(readFileSync(join(g.cwd, 'plans', 'debate-arena.json'), 'utf8'));
  assert.ok(p.findings.length > 0);
});
