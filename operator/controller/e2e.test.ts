/**
 * End-to-end tests of the operator against a real control plane: etcd +
 * kube-apiserver + kube-controller-manager (garbage collector included) from
 * operator/testenv, the real kubectl, and the operator running out-of-cluster
 * as `arena operator run`. Built by `make test` (operator/testenv/build.sh, cached).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { waitFor } from '../../testing/net.js';
import { ControlPlane } from '../../testing/control-plane.js';
import {
  installCrds,
  operatorKubeconfig as serviceAccountKubeconfig,
  operatorMetric,
  startOperatorProcess,
  stopOperatorProcess,
  type OperatorProcess,
} from '../../testing/operator.js';
import { plan } from '../planner/plan.js';
import { validateText } from '../api/v1alpha1/validate.js';

const HOLDS = repoPath('samples/debate-arena-holds.yaml');
const NS = 'arena';

const cp = new ControlPlane('arena-e2e-');
/** The operator's kubeconfig: a ServiceAccount token bound to operator/rbac/*.yaml, not admin. */
let operatorKubeconfig = '';
const operators: OperatorProcess[] = [];

function kubectl(args: string[], input?: string) {
  return cp.kubectl(args, input);
}

function getJson(args: string[]): any {
  const r = kubectl(['get', ...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out);
}

async function startOperator(extra: string[] = []): Promise<OperatorProcess> {
  const op = await startOperatorProcess(operatorKubeconfig, extra);
  operators.push(op);
  return op;
}

const stopOperator = stopOperatorProcess;
const metric = operatorMetric;

/** Writes to the apiserver that the operator would make: child objects (not their status) and ArenaDeployment status. */
function apiserverWrites(): number {
  const r = kubectl(['get', '--raw', '/metrics']);
  const children = [
    'configmaps',
    'services',
    'deployments',
    'statefulsets',
    'poddisruptionbudgets',
    'horizontalpodautoscalers',
  ];
  let n = 0;
  for (const line of r.out.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (!/verb="(APPLY|PATCH|POST|PUT|DELETE)"/.test(line)) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    const sub = /subresource="([^"]*)"/.exec(line)?.[1] ?? '';
    if ((children.includes(resource) && sub === '') || (resource === 'arenadeployments' && sub === 'status'))
      n += Number(line.split(' ').pop());
  }
  return n;
}

const env = (dep: any, name: string) =>
  dep.spec.template.spec.containers[0].env.find((e: any) => e.name === name)?.value;
const holds = () => validateText(readFileSync(HOLDS, 'utf8'))[0]!.object!;

before(async () => {
  await cp.start();
  await installCrds(cp);
  assert.equal(kubectl(['create', 'namespace', NS]).code, 0);
  operatorKubeconfig = serviceAccountKubeconfig(cp, NS);
  await startOperator();
});

test('the operator ServiceAccount has only what operator/rbac grants', () => {
  const can = (verb: string, resource: string, ns = NS, sub?: string) =>
    kubectl([
      'auth',
      'can-i',
      verb,
      resource,
      '-n',
      ns,
      '--as=system:serviceaccount:arena-system:arena-operator',
      ...(sub ? [`--subresource=${sub}`] : []),
    ]).out.trim();
  assert.equal(can('patch', 'deployments.apps'), 'yes');
  assert.equal(can('patch', 'arenadeployments.arena.dev', NS, 'status'), 'yes');
  assert.equal(can('patch', 'arenadeployments.arena.dev'), 'no');
  assert.equal(can('get', 'secrets'), 'no');
  assert.equal(can('create', 'pods'), 'no');
  assert.equal(can('update', 'leases.coordination.k8s.io'), 'yes');
  assert.equal(can('update', 'leases.coordination.k8s.io', 'kube-system'), 'no');
});

after(async () => {
  for (const op of operators) await stopOperator(op);
  await cp.destroy();
});

test('kubectl apply of a sample creates every child with the plan in it', async () => {
  const r = kubectl(['apply', '-f', HOLDS]);
  assert.equal(r.code, 0, r.err);
  const w = kubectl(['wait', '-n', NS, '--for=condition=Planned', 'arena/debate-arena-holds', '--timeout=30s']);
  assert.equal(w.code, 0, w.err);
  const p = plan(holds());
  const api = await waitFor('the API Deployment', () => getJson(['-n', NS, 'deploy/debate-arena-holds-api']));
  assert.equal(env(api, 'DB_POOL_SIZE'), '20');
  assert.equal(env(api, 'DB_MAX_OVERFLOW'), '10');
  assert.equal(env(api, 'MAX_CONCURRENT_REQUESTS'), '120');
  const ini = getJson(['-n', NS, 'cm/debate-arena-holds-pgbouncer']).data['pgbouncer.ini'];
  assert.match(ini, new RegExp(`^max_client_conn = ${p.pgbouncer.maxClientConn}$`, 'm'));
  assert.match(ini, new RegExp(`^default_pool_size = ${p.pgbouncer.defaultPoolSize}$`, 'm'));
  const hpa = getJson(['-n', NS, 'hpa/debate-arena-holds-api']);
  assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [p.replicas.min, p.replicas.max]);
  assert.match(getJson(['-n', NS, 'cm/debate-arena-holds-redis']).data['redis.conf'], /^maxclients 10000$/m);
  const ad = getJson(['-n', NS, 'arena/debate-arena-holds']);
  for (const name of [
    'deploy/debate-arena-holds-api',
    'deploy/debate-arena-holds-pgbouncer',
    'sts/debate-arena-holds-redis',
    'svc/debate-arena-holds-api',
    'pdb/debate-arena-holds-api',
    'hpa/debate-arena-holds-api',
    'cm/debate-arena-holds-redis',
  ]) {
    const o = getJson(['-n', NS, name, '--show-managed-fields']);
    assert.deepEqual(
      o.metadata.ownerReferences?.map((x: any) => [x.kind, x.name, x.uid, x.controller]),
      [['ArenaDeployment', 'debate-arena-holds', ad.metadata.uid, true]],
      name,
    );
    assert.ok(
      o.metadata.managedFields.some((m: any) => m.manager === 'arena-operator' && m.operation === 'Apply'),
      `${name} applied with field manager arena-operator`,
    );
  }
  assert.equal(ad.status.observedGeneration, ad.metadata.generation);
  assert.equal(ad.status.plan.maxReplicas, p.replicas.max);
  const types = ad.status.conditions.map((c: any) => c.type).sort();
  assert.deepEqual(types, ['Degraded', 'Planned', 'Progressing', 'Ready']);
  for (const c of ad.status.conditions) assert.equal(c.observedGeneration, ad.metadata.generation);
});

test('the apiserver rejects specs the CRD forbids, with readable messages (schema and CEL)', () => {
  const base = readFileSync(HOLDS, 'utf8').replace('name: debate-arena-holds', 'name: rejected');
  const bad = kubectl(['apply', '-f', '-'], base.replace('poolSize: 20', 'poolSize: 0'));
  assert.notEqual(bad.code, 0);
  assert.match(
    bad.err,
    /spec\.api\.db\.poolSize: Invalid value: 0: spec\.api\.db\.poolSize in body should be greater than or equal to 1/,
  );
  const cel = kubectl(['apply', '-f', '-'], base.replace('baselineConcurrency: 1000', 'baselineConcurrency: 20000'));
  assert.notEqual(cel.code, 0);
  assert.match(
    cel.err,
    /spec\.load\.baselineConcurrency: Invalid value: "object": baselineConcurrency must be <= targetConcurrency/,
  );
  const unknown = kubectl(['apply', '-f', '-'], base.replace('port: 8000', 'port: 8000\n    dbPool: 3'));
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.err, /unknown field "spec\.api\.dbPool"/);
  assert.notEqual(kubectl(['get', '-n', NS, 'arena/rejected']).code, 0, 'nothing was stored');
});

test('an infeasible spec is Planned=False with the finding code and creates nothing', async () => {
  assert.equal(kubectl(['apply', '-f', repoPath('samples/debate-arena.yaml')]).code, 0);
  assert.equal(
    kubectl(['wait', '-n', NS, '--for=condition=Planned=False', 'arena/debate-arena', '--timeout=30s']).code,
    0,
  );
  const ad = getJson(['-n', NS, 'arena/debate-arena']);
  const planned = ad.status.conditions.find((c: any) => c.type === 'Planned');
  assert.equal(planned.reason, 'LLMRateLimitBound');
  assert.ok(ad.status.findings.some((f: any) => f.code === 'QueueUnstable'));
  assert.notEqual(kubectl(['get', '-n', NS, 'deploy/debate-arena-api']).code, 0, 'no children for an infeasible plan');
  const events = getJson(['-n', NS, 'events', '--field-selector', 'involvedObject.name=debate-arena']);
  assert.ok(events.items.some((e: any) => e.reason === 'LLMRateLimitBound' && e.type === 'Warning'));
  assert.equal(kubectl(['delete', '-n', NS, 'arena/debate-arena', '--wait=true']).code, 0);
  // its plan metrics go with it; another ArenaDeployment's stay
  const series = async () =>
    (await (await fetch(`http://127.0.0.1:${operators[0]!.metrics}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('arena_plan_utilization{'));
  await waitFor(
    "the deleted ArenaDeployment's series to go",
    async () => !(await series()).some((l) => l.includes('name="debate-arena"')),
  );
  assert.ok(
    (await series()).some((l) => l.includes('name="debate-arena-holds"')),
    'the other ArenaDeployment keeps its series',
  );
});

test('an edit that makes a running spec infeasible keeps the last good children', async () => {
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"llm":{"requestsPerMinute":100},"api":{"db":{"poolSize":21}}}}',
    ]).code,
    0,
  );
  assert.equal(
    kubectl(['wait', '-n', NS, '--for=condition=Planned=False', 'arena/debate-arena-holds', '--timeout=30s']).code,
    0,
  );
  await sleep(1000);
  assert.equal(env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'DB_POOL_SIZE'), '20', 'nothing new applied');
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"llm":{"requestsPerMinute":90000},"api":{"db":{"poolSize":20}}}}',
    ]).code,
    0,
  );
  assert.equal(
    kubectl(['wait', '-n', NS, '--for=condition=Planned=True', 'arena/debate-arena-holds', '--timeout=30s']).code,
    0,
  );
});

test('editing the spec updates the children and bumps observedGeneration', async () => {
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"api":{"db":{"poolSize":25}}}}',
    ]).code,
    0,
  );
  await waitFor(
    'DB_POOL_SIZE=25',
    () => env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'DB_POOL_SIZE') === '25',
  );
  const ad = await waitFor('observedGeneration', () => {
    const o = getJson(['-n', NS, 'arena/debate-arena-holds']);
    return o.status.observedGeneration === o.metadata.generation && o;
  });
  assert.equal(ad.status.plan.connectionsPerPod, 8 * (25 + 10));
});

test('a manual edit of a child is reverted', async () => {
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'cm/debate-arena-holds-pgbouncer',
      '--type=merge',
      '-p',
      '{"data":{"pgbouncer.ini":"tampered"}}',
    ]).code,
    0,
  );
  assert.equal(kubectl(['set', 'env', '-n', NS, 'deploy/debate-arena-holds-api', 'MAX_CONCURRENT_REQUESTS=1']).code, 0);
  await waitFor('pgbouncer.ini restored', () =>
    /max_client_conn = /.test(getJson(['-n', NS, 'cm/debate-arena-holds-pgbouncer']).data['pgbouncer.ini']),
  );
  await waitFor(
    'env restored',
    () => env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'MAX_CONCURRENT_REQUESTS') === '120',
  );
});

test('a no-op reconcile sends zero write requests (counted by the apiserver and by the operator)', async () => {
  const op = operators[0]!;
  await sleep(2000); // let the previous test's reconciles settle
  const writesBefore = apiserverWrites();
  const opBefore = await metric(op, 'arena_operator_kube_requests_total');
  const reconcilesBefore = await metric(op, 'arena_operator_reconcile_total');
  for (let i = 0; i < 3; i++) {
    assert.equal(
      kubectl(['annotate', '-n', NS, 'arena/debate-arena-holds', `arena.dev/touch=${i}`, '--overwrite']).code,
      0,
    );
    await sleep(300);
  }
  await waitFor(
    'reconciles to run',
    async () => (await metric(op, 'arena_operator_reconcile_total')) >= reconcilesBefore + 3,
  );
  await sleep(1500);
  assert.equal(await metric(op, 'arena_operator_kube_requests_total'), opBefore, 'the operator sent no request');
  assert.equal(apiserverWrites(), writesBefore, 'the apiserver saw no write to children or status');
});

test('children no longer desired are pruned (redis.managed switched off)', async () => {
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"redis":{"managed":false,"host":"redis.example.svc"}}}',
    ]).code,
    0,
  );
  await waitFor(
    'the Redis StatefulSet to be deleted',
    () => kubectl(['get', '-n', NS, 'sts/debate-arena-holds-redis']).code !== 0,
  );
  await waitFor(
    'the Redis ConfigMap to be deleted',
    () => kubectl(['get', '-n', NS, 'cm/debate-arena-holds-redis']).code !== 0,
  );
  await waitFor('REDIS_URL to point at the external host', () =>
    /redis\.example\.svc/.test(env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'REDIS_URL')),
  );
});

test('restarting the apiserver while the operator runs loses no update', async () => {
  await cp.stop();
  await sleep(1000);
  await cp.start();
  // An update made as soon as the apiserver is back, while the operator's watches are still broken.
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"api":{"db":{"poolSize":30}}}}',
    ]).code,
    0,
  );
  await waitFor(
    'DB_POOL_SIZE=30 after the restart',
    () => env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'DB_POOL_SIZE') === '30',
    90_000,
    500,
  );
  assert.ok((await metric(operators[0]!, 'arena_operator_watch_restarts_total')) > 0, 'the informers were restarted');
});

test('two operators with --leader-elect: one leader, the other takes over when it stops', async () => {
  await stopOperator(operators[0]!);
  const a = await startOperator(['--leader-elect', '--leader-election-namespace', NS]);
  const b = await startOperator(['--leader-elect', '--leader-election-namespace', NS]);
  await waitFor(
    'one leader',
    async () => (await metric(a, 'arena_operator_leader')) + (await metric(b, 'arena_operator_leader')) === 1,
  );
  await sleep(3000);
  assert.equal(
    (await metric(a, 'arena_operator_leader')) + (await metric(b, 'arena_operator_leader')),
    1,
    'still exactly one leader',
  );
  const [leader, standby] = (await metric(a, 'arena_operator_leader')) === 1 ? [a, b] : [b, a];
  const readyz = async (op: OperatorProcess) => {
    const r = await fetch(`http://127.0.0.1:${op.probes}/readyz`);
    return `${r.status} ${await r.text()}`;
  };
  assert.equal(await readyz(standby), '200 standby', 'a standby is ready (so rolling updates proceed)');
  assert.equal(await readyz(leader), '200 ok');
  const lease = getJson(['-n', NS, 'lease/arena-operator']);
  assert.match(lease.spec.holderIdentity, /_\d+$/);
  await stopOperator(leader);
  await waitFor('the standby to take over', async () => (await metric(standby, 'arena_operator_leader')) === 1, 30_000);
  assert.equal(
    kubectl([
      'patch',
      '-n',
      NS,
      'arena/debate-arena-holds',
      '--type=merge',
      '-p',
      '{"spec":{"api":{"db":{"poolSize":31}}}}',
    ]).code,
    0,
  );
  await waitFor(
    'the new leader to reconcile',
    () => env(getJson(['-n', NS, 'deploy/debate-arena-holds-api']), 'DB_POOL_SIZE') === '31',
  );
});

test('deleting the ArenaDeployment removes its children through the garbage collector', async () => {
  assert.equal(kubectl(['delete', '-n', NS, 'arena/debate-arena-holds']).code, 0);
  for (const name of [
    'deploy/debate-arena-holds-api',
    'deploy/debate-arena-holds-pgbouncer',
    'svc/debate-arena-holds-api',
    'cm/debate-arena-holds-pgbouncer',
    'hpa/debate-arena-holds-api',
    'pdb/debate-arena-holds-api',
  ]) {
    await waitFor(`${name} to be garbage collected`, () => kubectl(['get', '-n', NS, name]).code !== 0, 60_000, 500);
  }
  void parse;
});
