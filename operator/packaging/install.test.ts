/**
 * The two install paths of the README, against a private local control plane
 * (etcd + kube-apiserver + kube-controller-manager from operator/testenv) with
 * the real kubectl and helm:
 *
 * 1. `kubectl apply -f crds/ && kubectl apply -f samples/<each>.yaml`: the
 *    apiserver's strict server-side validation accepts every sample;
 * 2. `helm install arena-operator charts/arena-operator -n arena-system`:
 *    the CRD and the operator's objects are created, the operator pod passes
 *    the restricted Pod Security Standard, the chart's ServiceAccount token is
 *    enough for the operator (run with the Deployment's own arguments) to
 *    reconcile every sample, the metrics the alerts use are published,
 *    `helm upgrade` with non-default values works, and `helm uninstall`
 *    removes the operator's objects (and, as Helm does, keeps the CRD).
 *
 * There are no nodes: pods stay Pending, so the operator runs out-of-cluster
 * here, with the token of the ServiceAccount the chart created.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { validateText } from '../api/v1alpha1/validate.js';
import { plan } from '../planner/plan.js';
import { ControlPlane, freePort, helmAvailable, template, waitFor } from './tools.js';
import { SAMPLES } from './sync.js';

const NS = 'arena-system';
const APP_NS = 'arena';
const RELEASE = 'arena-operator';
const CRD = 'customresourcedefinition/arenadeployments.arena.dev';
const cp = new ControlPlane();
let operator: { proc: ChildProcess; metrics: number; probes: number; log: string[] } | undefined;

const ok = (r: { code: number | null; out: string; err: string }, what: string) =>
  assert.equal(r.code, 0, `${what}: ${r.err || r.out}`);
/** `kubectl create namespace` that succeeds when it exists. */
const ensureNamespace = (ns: string) =>
  ok(
    cp.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })),
    `namespace ${ns}`,
  );
const sampleName = (file: string) => validateText(readFileSync(repoPath(file), 'utf8'))[0]!.object!.metadata.name;

/** The operator's objects, as `kind/name` with the namespace flag they need. */
const OPERATOR_OBJECTS: [string, string[]][] = [
  ['serviceaccount/arena-operator', ['-n', NS]],
  ['clusterrole/arena-operator', []],
  ['clusterrolebinding/arena-operator', []],
  ['role/arena-operator-leader-election', ['-n', NS]],
  ['rolebinding/arena-operator-leader-election', ['-n', NS]],
  ['deployment/arena-operator', ['-n', NS]],
  ['service/arena-operator-metrics', ['-n', NS]],
];

before(async () => {
  const missing = helmAvailable();
  assert.ok(!missing, missing);
  await cp.start();
});

after(async () => {
  if (operator && operator.proc.exitCode === null) operator.proc.kill('SIGKILL');
  await cp.destroy();
});

test('helm install rejects bad values before it creates the operator objects', () => {
  const r = cp.helm([
    'install',
    RELEASE,
    repoPath('charts/arena-operator'),
    '-n',
    NS,
    '--create-namespace',
    '--set',
    'operator.logLevel=verbose',
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /at '\/operator\/logLevel': value must be one of 'debug', 'info', 'warn', 'error'/);
  for (const [obj, ns] of OPERATOR_OBJECTS) assert.equal(cp.get([obj, ...ns]), undefined, `${obj} was created`);
  assert.equal(cp.helm(['list', '-n', NS, '-a', '-q']).out.trim(), '', 'no release is recorded');
  // Note: Helm installs a chart's crds/ before it validates the values, so the CRD may exist now (docs/install.md).
});

test('kubectl apply -f crds/ && kubectl apply -f samples/<each>.yaml: the apiserver accepts every sample', async () => {
  ok(cp.kubectl(['apply', '-f', repoPath('crds/')]), 'kubectl apply -f crds/');
  ok(cp.kubectl(['wait', '--for=condition=Established', CRD, '--timeout=30s']), 'CRD established');
  ensureNamespace(APP_NS);
  for (const file of SAMPLES) {
    const r = cp.kubectl(['apply', '--validate=strict', '-f', repoPath(file)]);
    ok(r, file);
    assert.match(r.out, /arenadeployment\.arena\.dev\/\S+ created/);
  }
  const listed = cp
    .get(['arena', '-n', APP_NS])
    .items.map((o: any) => [o.metadata.name, o.spec.load.targetConcurrency]);
  assert.deepEqual(
    listed.sort(),
    SAMPLES.map((f) => [
      sampleName(f),
      validateText(readFileSync(repoPath(f), 'utf8'))[0]!.object!.spec.load.targetConcurrency,
    ]).sort(),
  );
  // server-side validation is on, so the check can fail: an unknown field is refused
  const bad = parse(readFileSync(repoPath(SAMPLES[0]!), 'utf8'));
  bad.metadata.name = 'typo';
  bad.spec.api.poolSize = 20;
  const r = cp.kubectl(['apply', '--validate=strict', '-f', '-'], stringify(bad));
  assert.notEqual(r.code, 0);
  assert.match(r.err, /unknown field "spec\.api\.poolSize"/);
  // remove the CRD (and the samples with it) so that helm install creates it
  ok(cp.kubectl(['delete', '-f', repoPath('crds/'), '--wait=true', '--timeout=60s']), 'kubectl delete -f crds/');
});

test('helm install creates the CRD and the operator objects, and the operator pod passes the restricted Pod Security Standard', async () => {
  // the namespace enforces the restricted Pod Security Standard (admission rejects a non-compliant pod)
  ensureNamespace(NS);
  ok(cp.kubectl(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']), 'label');
  const r = cp.helm(['install', RELEASE, repoPath('charts/arena-operator'), '-n', NS, '--create-namespace']);
  ok(r, 'helm install');
  assert.match(r.out, /STATUS: deployed/);
  assert.match(r.out, /kubectl -n arena-system rollout status deploy\/arena-operator/, 'NOTES.txt');
  ok(cp.kubectl(['wait', '--for=condition=Established', CRD, '--timeout=30s']), 'the chart installed the CRD');
  for (const [obj, ns] of OPERATOR_OBJECTS) {
    const o = cp.get([obj, ...ns]);
    assert.ok(o, `${obj} exists`);
    assert.equal(o.metadata.annotations?.['meta.helm.sh/release-name'], RELEASE, `${obj} belongs to the release`);
  }
  // the ReplicaSet controller creates the pod only if PodSecurity admission lets it
  const pods = await waitFor(
    'the operator pod',
    () =>
      cp.get(['pods', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`]).items.length > 0 &&
      cp.get(['pods', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`]).items,
    30_000,
  );
  assert.equal(pods.length, 1);
  assert.equal(pods[0].spec.serviceAccountName, 'arena-operator');
  // and the admission does reject a pod that is not restricted, so the check can fail
  const dep = cp.get(['deployment/arena-operator', '-n', NS]);
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'not-restricted', namespace: NS },
    spec: structuredClone(dep.spec.template.spec),
  };
  delete pod.spec.containers[0].securityContext.allowPrivilegeEscalation;
  const denied = cp.kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
  assert.notEqual(denied.code, 0);
  assert.match(denied.err, /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
});

test("the chart's ServiceAccount is enough for the operator: run with the Deployment's arguments and its token, it reconciles every sample", async () => {
  const can = (verb: string, resource: string, ns: string) =>
    cp
      .kubectl(['auth', 'can-i', verb, resource, '-n', ns, `--as=system:serviceaccount:${NS}:arena-operator`])
      .out.trim();
  assert.equal(can('patch', 'deployments.apps', APP_NS), 'yes');
  assert.equal(can('update', 'leases.coordination.k8s.io', NS), 'yes');
  assert.equal(can('update', 'leases.coordination.k8s.io', 'kube-system'), 'no');
  assert.equal(can('get', 'secrets', APP_NS), 'no');
  assert.equal(can('create', 'pods', APP_NS), 'no');

  // a kubeconfig with the ServiceAccount's token (not admin)
  const token = cp.kubectl(['create', 'token', 'arena-operator', '-n', NS, '--duration=1h']);
  ok(token, 'kubectl create token');
  const admin = parse(readFileSync(cp.kubeconfig, 'utf8'));
  const saKubeconfig = join(cp.dir, 'arena-operator.kubeconfig');
  writeFileSync(
    saKubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: admin.clusters,
      users: [{ name: 'sa', user: { token: token.out.trim() } }],
      contexts: [{ name: 'sa', context: { cluster: admin.clusters[0].name, user: 'sa' } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );

  // the container's command line, as the kubelet would run it (ports moved to free loopback ones)
  const c = cp.get(['deployment/arena-operator', '-n', NS]).spec.template.spec.containers[0];
  assert.deepEqual(c.command, ['arena']);
  const metrics = await freePort();
  const probes = await freePort();
  const args = (c.args as string[]).map((a) =>
    a
      .replace('$(POD_NAMESPACE)', NS)
      .replace(/^--metrics-bind-address=.*/, `--metrics-bind-address=127.0.0.1:${metrics}`)
      .replace(/^--health-probe-bind-address=.*/, `--health-probe-bind-address=127.0.0.1:${probes}`),
  );
  assert.ok(args.includes('--leader-elect'));
  const proc = spawn(process.execPath, [repoPath('dist/cli/arena.js'), ...args, '--kubeconfig', saKubeconfig], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, POD_NAMESPACE: NS },
  });
  const op = { proc, metrics, probes, log: [] as string[] };
  operator = op;
  proc.stdout!.on('data', (d) => op.log.push(String(d)));
  proc.stderr!.on('data', (d) => op.log.push(String(d)));
  const logs = () => op.log.join('').slice(-4000);
  await waitFor('the operator /healthz', async () => (await fetch(`http://127.0.0.1:${probes}/healthz`)).ok, 20_000);
  await waitFor(
    'the operator to lead and sync (/readyz says ok)',
    async () => (await (await fetch(`http://127.0.0.1:${probes}/readyz`)).text()) === 'ok',
    30_000,
  ).catch((e) => assert.fail(`${e.message}\n${logs()}`));
  const lease = cp.get(['lease', 'arena-operator', '-n', NS]);
  assert.ok(lease?.spec.holderIdentity, 'the Lease in the release namespace has a holder');

  // the README's second path again, now with the operator running
  ok(cp.kubectl(['apply', '-f', repoPath('crds/')]), 'kubectl apply -f crds/');
  ensureNamespace(APP_NS);
  for (const file of SAMPLES) ok(cp.kubectl(['apply', '-f', repoPath(file)]), file);
  for (const file of SAMPLES) {
    const name = sampleName(file);
    const w = cp.kubectl(['wait', '-n', APP_NS, '--for=condition=Planned', `arena/${name}`, '--timeout=60s']);
    assert.equal(w.code, 0, `${file}: ${w.err}\n${logs()}`);
    const ad = validateText(readFileSync(repoPath(file), 'utf8'))[0]!.object!;
    const p = plan(ad);
    const hpa = await waitFor(`${name}: the HPA`, () => cp.get(['hpa', `${name}-api`, '-n', APP_NS]));
    assert.deepEqual(
      [hpa.spec.minReplicas, hpa.spec.maxReplicas],
      [p.replicas.min, p.replicas.max],
      `${name}: HPA min/max = the plan`,
    );
    const ini = cp.get(['cm', `${name}-pgbouncer`, '-n', APP_NS]).data['pgbouncer.ini'];
    assert.match(ini, new RegExp(`^max_client_conn = ${p.pgbouncer.maxClientConn}$`, 'm'));
  }

  // the series the PrometheusRule uses are published (so the alerts can fire), and no reconcile failed (no RBAC error)
  const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  const rule = template({ 'metrics.prometheusRule.enabled': true }).find((o) => o.kind === 'PrometheusRule')!;
  const used = new Set<string>(
    rule.spec.groups.flatMap((g: any) =>
      g.rules.flatMap((r: any) => [...(r.expr as string).matchAll(/\b(arena_[a-z_]+)\{/g)].map((m) => m[1]!)),
    ),
  );
  assert.ok(used.size >= 3, [...used].join(', '));
  for (const name of used) assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? `, 'm'), `${name} is not on /metrics`);
  const sample = (re: RegExp) => [...text.matchAll(re)].map((m) => Number(m[1]));
  // one series per controller (arenadeployment, arenaloadtest), every one 0
  const errors = sample(/^arena_operator_reconcile_errors_total\{controller="[a-z]+"\} (\S+)$/gm);
  assert.deepEqual(errors, [0, 0], logs());
  assert.deepEqual(sample(/^arena_operator_leader (\S+)$/gm), [1]);
  const tenK = plan(validateText(readFileSync(repoPath('samples/arena-10k.yaml'), 'utf8'))[0]!.object!);
  const published = sample(
    /^arena_plan_utilization\{namespace="arena",name="arena-10k",resource="appToPgbouncer"\} (\S+)$/gm,
  );
  assert.equal(published.length, 1);
  assert.ok(Math.abs(published[0]! - tenK.connections.appToPgbouncer!.utilization) < 1e-9);
  // the samples are sized below the alert threshold, and have no error findings
  const utilizations = sample(/^arena_plan_utilization\{[^}]*\} (\S+)$/gm);
  assert.ok(utilizations.length >= SAMPLES.length * 4);
  assert.ok(
    Math.max(...utilizations) < 0.9,
    `a sample would fire ArenaPlanNearSaturation: ${Math.max(...utilizations)}`,
  );
  assert.ok(sample(/^arena_plan_findings\{[^}]*severity="error"\} (\S+)$/gm).every((v) => v === 0));
  assert.doesNotMatch(op.log.join(''), /forbidden/i);

  // a graceful stop releases the Lease
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  assert.equal(await Promise.race([exited, sleep(15_000, 'timeout', { ref: false })]), 0);
  assert.ok(!cp.get(['lease', 'arena-operator', '-n', NS]).spec.holderIdentity, `the Lease is released: ${logs()}`);
});

test('helm upgrade with non-default values: two replicas and a PodDisruptionBudget', () => {
  const r = cp.helm([
    'upgrade',
    RELEASE,
    repoPath('charts/arena-operator'),
    '-n',
    NS,
    '--set',
    'replicaCount=2',
    '--set',
    'podDisruptionBudget.enabled=true',
    '--set',
    'resources.limits.memory=1Gi',
  ]);
  ok(r, 'helm upgrade');
  const dep = cp.get(['deployment/arena-operator', '-n', NS]);
  assert.equal(dep.spec.replicas, 2);
  assert.equal(dep.spec.template.spec.containers[0].resources.limits.memory, '1Gi');
  assert.equal(cp.get(['pdb', 'arena-operator', '-n', NS]).spec.minAvailable, 1);
  // bad values are refused at upgrade time too, and the release stays as it was
  const bad = cp.helm(['upgrade', RELEASE, repoPath('charts/arena-operator'), '-n', NS, '--set', 'replicaCount=-1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /at '\/replicaCount': minimum/);
  assert.equal(cp.get(['deployment/arena-operator', '-n', NS]).spec.replicas, 2);
});

test('helm uninstall removes the operator objects; the CRD and the ArenaDeployments stay (Helm never deletes CRDs)', async () => {
  ok(cp.helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '60s']), 'helm uninstall');
  for (const [obj, ns] of [
    ...OPERATOR_OBJECTS,
    ['poddisruptionbudget/arena-operator', ['-n', NS]] as [string, string[]],
  ]) {
    await waitFor(`${obj} to be deleted`, () => cp.get([obj, ...ns]) === undefined, 30_000);
  }
  await waitFor(
    'the operator pods to be deleted',
    () => cp.get(['pods', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`]).items.length === 0,
    30_000,
  );
  assert.ok(cp.get([CRD]), 'the CRD stays');
  assert.equal(cp.get(['arena', '-n', APP_NS]).items.length, SAMPLES.length, 'the ArenaDeployments stay');
});
