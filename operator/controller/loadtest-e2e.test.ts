/**
 * The distributed run end to end (issue 13, docs/distributed.md) on the real
 * control plane (etcd + kube-apiserver + kube-controller-manager: the Job
 * controller and the garbage collector run) and the real local stack
 * (PostgreSQL, PgBouncer, Redis, the reference API). There is no kubelet, so
 * the test plays its part (testing/kubelet.ts): for each pod the Job
 * controller creates, it runs the pod's own command, env and volumes as a local
 * process with the runner ServiceAccount's token, and writes the pod's phase.
 * The operator runs out of cluster with its own RBAC (operator/rbac).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { ControlPlane } from '../../testing/control-plane.js';
import { jobPod, runPod, type LocalPod } from '../../testing/kubelet.js';
import { localStack } from '../../testing/local-stack.js';
import { waitFor } from '../../testing/net.js';
import {
  installCrds,
  operatorKubeconfig,
  startOperatorProcess,
  stopOperatorProcess,
  type OperatorProcess,
} from '../../testing/operator.js';
import { repoPath } from '../../testing/paths.js';
import { runArenaAsync } from '../../testing/cli.js';
import { mergeResults } from '../../loadtest/engine/merge.js';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { thresholdSpecsOf } from './loadtest-reconciler.js';

const NS = 'arena-lt';
const cp = new ControlPlane('arena-lt-e2e-');
const stack = localStack(repoPath('samples/arena-local.yaml'), 'lt-e2e');
let op: OperatorProcess | undefined;
let api = '';
const pods: LocalPod[] = [];

/** An ArenaLoadTest against the local stack's API: the bundled read scenario at `rate`/s for `duration`. */
function loadTest(name: string, parallelism: number, extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaLoadTest',
    metadata: { name, namespace: NS },
    spec: {
      target: { url: api },
      scenario: { bundled: 'read' },
      load: { rate: 40, duration: '6s', gracefulStop: '5s' },
      parallelism,
      thresholds: { http_req_failed: ['rate<0.01'], 'http_req_duration{scenario:read}': ['p(99)<3000'] },
      runner: { image: 'arena:e2e', startDeadlineSeconds: 60 },
      sample: { health: `${api}/health` },
      ...extra,
    },
  });
}

const get = (what: string[]) => cp.get([...what, '-n', NS]);
const status = (name: string) => get(['alt', name])?.status ?? {};
const condition = (name: string, type: string) => status(name).conditions?.find((c: any) => c.type === type);

async function waitCompleted(name: string, timeoutMs = 120_000): Promise<any> {
  await waitFor(`ArenaLoadTest ${name} Completed`, () => condition(name, 'Completed')?.status === 'True', timeoutMs);
  return status(name);
}

/** Play the kubelet for runner `i` of the ArenaLoadTest `name`: run its pod's container locally. */
async function runner(name: string, i: number): Promise<LocalPod> {
  const pod = await jobPod(cp, NS, `${name}-runner`, i);
  const p = runPod(cp, pod, join(stack.tmp, name, `runner-${i}`));
  pods.push(p);
  return p;
}

/** The shard result runner `p` wrote locally (its /tmp/result, an emptyDir). */
const localResult = (p: LocalPod): LoadTestResult =>
  JSON.parse(readFileSync(join(p.dir, 'volumes', 'tmp', 'result', 'result.json'), 'utf8')) as LoadTestResult;

before(async () => {
  stack.up();
  api = stack.state!.endpoints['api']!;
  await cp.start();
  await installCrds(cp);
  assert.equal(cp.kubectl(['create', 'namespace', NS]).code, 0);
  op = await startOperatorProcess(operatorKubeconfig(cp, NS));
});

after(async () => {
  for (const p of pods) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  if (op) await stopOperatorProcess(op);
  if (process.exitCode && op) process.stderr.write(op.log.join('').slice(-6000));
  await cp.destroy();
  stack.down();
});

test('kubectl apply an ArenaLoadTest: the operator runs 2 runners together, merges their shards exactly into status; collect writes result.json and report.html', async () => {
  const name = 'lt-ok';
  assert.equal(cp.kubectl(['apply', '-f', '-'], loadTest(name, 2)).code, 0);
  await waitFor('the runner Job', () => !!get(['job', `${name}-runner`]));
  const job = get(['job', `${name}-runner`]);
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.metadata.ownerReferences[0].kind, 'ArenaLoadTest');
  await waitFor('phase Starting', () => status(name).phase === 'Starting');
  const runners = [await runner(name, 0), await runner(name, 1)];
  const done = await waitCompleted(name);
  const codes = await Promise.all(runners.map((r) => r.exited));
  assert.deepEqual(codes, [0, 0], runners.map((r) => r.stderr()).join('\n'));
  assert.equal(done.phase, 'Succeeded', JSON.stringify(done.conditions));
  assert.ok(done.startAt, 'status.startAt: the start signal');
  assert.equal(condition(name, 'Started')?.reason, 'StartSignalGiven');
  assert.deepEqual(
    done.runners.map((r: any) => [r.index, r.state]),
    [
      [0, 'Succeeded'],
      [1, 'Succeeded'],
    ],
  );
  // Both runners began at status.startAt.
  const shards = runners.map(localResult);
  for (const s of shards) assert.equal(s.settings.shard?.startAt, Date.parse(done.startAt));
  // The merged P99 in status is the P99 of one histogram of every shard's samples.
  const { result: merged } = mergeResults(shards, thresholdSpecsOf(shards[0]!));
  const p99 = merged.all.metrics['http_req_duration']!.p99;
  assert.equal(done.summary.p99Ms, Math.round(p99 * 1000) / 1000);
  const read = done.summary.scenarios.find((s: any) => s.name === 'read');
  assert.equal(
    read.requests,
    shards.reduce((a, s) => a + (s.all.counters['http_reqs'] ?? 0), 0),
  );
  assert.ok(read.requests > 150, `2 runners at 40/s for 6 s: ${read.requests} requests`);
  assert.equal(done.summary.errorRate, 0);
  assert.equal(done.summary.thresholdsPassed, true);
  assert.equal(done.summary.thresholds.length, 2);
  assert.equal(done.summary.partial, false);
  assert.equal(condition(name, 'ThresholdsPassed')?.status, 'True');
  // runner 0 sampled the target (spec.sample): the pool that saturates first is in status beside the P99
  const first = merged.saturation?.saturatesFirst;
  assert.ok(first, 'runner 0 sampled the API health endpoint');
  assert.equal(done.summary.firstSaturatingPool.pool, first.pool);
  // The Job finished as a Job does once its pods succeeded.
  await waitFor('the Job to complete', () =>
    (get(['job', `${name}-runner`])?.status?.conditions ?? []).some(
      (c: any) => c.type === 'Complete' && c.status === 'True',
    ),
  );
  // kubectl wait works as documented
  const w = cp.kubectl(['wait', '--for=condition=Completed', `arenaloadtest/${name}`, '-n', NS, '--timeout=5s']);
  assert.equal(w.code, 0, w.err);

  const out = join(stack.tmp, 'collected');
  const c = await runArenaAsync(['loadtest', 'collect', name, '-n', NS, '--kubeconfig', cp.kubeconfig, '--out', out]);
  assert.equal(c.code, 0, c.err);
  const collected = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.equal(collected.all.metrics['http_req_duration']!.p99, p99);
  assert.equal(collected.all.counters['http_reqs'], read.requests);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<html/);
  assert.match(c.out, /http_req_duration/);
});

test('a runner that dies: the test is Failed naming it, the other shard is kept and marked partial; collect exits 1', async () => {
  const name = 'lt-dies';
  assert.equal(cp.kubectl(['apply', '-f', '-'], loadTest(name, 2, { ttlSecondsAfterFinished: 1 })).code, 0);
  const r0 = await runner(name, 0);
  const r1 = await runner(name, 1);
  await waitFor('phase Running', () => status(name).phase === 'Running');
  await sleep(1500);
  r1.proc.kill('SIGKILL'); // the pod dies mid-run: no shard published
  const done = await waitCompleted(name);
  assert.equal(await r0.exited, 0, r0.stderr());
  assert.equal(done.phase, 'Failed');
  const completed = condition(name, 'Completed');
  assert.equal(completed.reason, 'RunnerFailed');
  assert.match(completed.message, /runner 1 failed before publishing its shard/);
  assert.deepEqual(
    done.runners.map((r: any) => [r.index, r.state]),
    [
      [0, 'Succeeded'],
      [1, 'Failed'],
    ],
  );
  assert.equal(done.summary.partial, true);
  const shard0 = localResult(r0);
  assert.equal(done.summary.scenarios[0].requests, shard0.all.counters['http_reqs']);
  const out = join(stack.tmp, 'collected-partial');
  const c = await runArenaAsync(['loadtest', 'collect', name, '-n', NS, '--kubeconfig', cp.kubeconfig, '--out', out]);
  assert.equal(c.code, 1, 'a Failed test collects with exit 1');
  const collected = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.equal(collected.status, 'partial');
  assert.match(collected.partialReason ?? '', /runner 1/);
  // ttlSecondsAfterFinished: the Job goes, the finished ArenaLoadTest and its result stay, nothing is re-run
  await waitFor('the TTL controller to delete the finished Job', () => !get(['job', `${name}-runner`]), 60_000);
  await sleep(3000);
  assert.equal(get(['job', `${name}-runner`]), undefined, 'the operator does not create the Job again');
  assert.equal(status(name).phase, 'Failed');
  assert.ok(get(['configmap', `${name}-result`]), 'the merged result is kept');
});

test('no runner starts within startDeadlineSeconds: Failed naming each, the Job deleted', async () => {
  const name = 'lt-late';
  const text = loadTest(name, 2, { runner: { image: 'arena:e2e', startDeadlineSeconds: 4 } });
  assert.equal(cp.kubectl(['apply', '-f', '-'], text).code, 0);
  const done = await waitCompleted(name, 60_000);
  assert.equal(done.phase, 'Failed');
  const completed = condition(name, 'Completed');
  assert.equal(completed.reason, 'StartDeadlineExceeded');
  assert.match(completed.message, /runner 0, runner 1 not ready within spec\.runner\.startDeadlineSeconds \(4 s\)/);
  await waitFor('the runner Job to be deleted', () => !get(['job', `${name}-runner`]), 30_000);
  const c = await runArenaAsync(['loadtest', 'collect', name, '-n', NS, '--kubeconfig', cp.kubeconfig]);
  assert.equal(c.code, 1);
  assert.match(c.err, /has no merged result yet \(phase Failed: runner 0, runner 1 not ready/);
  assert.equal(c.err.trim().split('\n').length, 1, 'one line');
});

test('target.deploymentRef: Pending until the ArenaDeployment exists, then runners get its Service, plan rates and requestMix', async () => {
  const inNs = (file: string) => {
    const doc = parse(readFileSync(repoPath(file), 'utf8'));
    doc.metadata.namespace = NS;
    return stringify(doc);
  };
  assert.equal(cp.kubectl(['apply', '-f', '-'], inNs('samples/loadtest-small.yaml')).code, 0);
  await waitFor('Pending: the ArenaDeployment does not exist', () => {
    const c = condition('loadtest-small', 'Completed');
    return status('loadtest-small').phase === 'Pending' && c?.reason === 'DeploymentNotFound';
  });
  assert.match(
    condition('loadtest-small', 'Completed').message,
    /the ArenaDeployment arena-lt\/arena-small does not exist/,
  );
  assert.equal(get(['job', 'loadtest-small-runner']), undefined, 'no runner before the target exists');
  assert.equal(cp.kubectl(['apply', '-f', '-'], inNs('samples/arena-small.yaml')).code, 0);
  await waitFor('Starting once the ArenaDeployment exists', () => status('loadtest-small').phase === 'Starting');
  const args: string[] = get(['job', 'loadtest-small-runner']).spec.template.spec.containers[0].args;
  const flag = (f: string) => args[args.indexOf(f) + 1];
  assert.equal(flag('--target'), `http://arena-small-api.${NS}.svc:8000`);
  assert.ok(args.includes('--from-plan'));
  assert.equal(flag('--shard'), '$(JOB_COMPLETION_INDEX)/4');
  const input = get(['configmap', 'loadtest-small-runner']).data;
  assert.equal(parse(input['arenadeployment.yaml']).metadata.name, 'arena-small');
  assert.match(input['scenario.yaml'], /The requestMix of the ArenaDeployment arena-small/);
  assert.deepEqual(
    status('loadtest-small').runners.map((r: any) => r.state),
    ['Pending', 'Pending', 'Pending', 'Pending'],
  );
  assert.equal(cp.kubectl(['delete', 'alt', 'loadtest-small', '-n', NS, '--wait=false']).code, 0);
});

test('deleting an ArenaLoadTest deletes its Job, ConfigMaps and RBAC (ownerReferences)', async () => {
  const name = 'lt-ok';
  assert.ok(get(['configmap', `${name}-result`]), 'the merged result ConfigMap exists');
  assert.equal(cp.kubectl(['delete', 'alt', name, '-n', NS]).code, 0);
  const left = () =>
    ['job', 'serviceaccount', 'role', 'rolebinding', 'configmap']
      .flatMap((k) => get([k, '-l', `arena.dev/loadtest=${name}`])?.items ?? [])
      .map((o: any) => `${o.kind}/${o.metadata.name}`);
  await waitFor('the garbage collector to delete every child', () => left().length === 0, 60_000);
});
