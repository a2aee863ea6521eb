/**
 * renderLoadTest(): golden files, the shape of every object, and the real
 * apiserver (operator/testenv's control plane) accepting them with strict field
 * validation in a namespace that enforces the restricted Pod Security Standard;
 * the Job controller creating the runner pods; the runners' RBAC granting
 * exactly what a runner needs; the operator's RBAC (operator/rbac/role.yaml)
 * being enough to create the runners' Role without `escalate`; and deleting the
 * ArenaLoadTest removing everything through the ownerReferences.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { loadTestDeps, renderLoadTest } from './loadtest.js';
import type { KubeObject } from './index.js';
import { validateLoadTestText, validateText } from '../api/v1alpha1/validate.js';
import type { ArenaLoadTest } from '../api/v1alpha1/loadtest-schema.js';
import { loadScenarioFile, SCENARIO_DIR } from '../../loadtest/engine/scenario.js';
import { repoPath } from '../../testing/paths.js';
import { ControlPlane } from '../../testing/control-plane.js';
import { bindOperatorServiceAccount } from '../../testing/operator.js';
import { waitFor } from '../../testing/net.js';

const NS = 'arena';
const UID = '6f1c0d2e-0000-4000-8000-000000000013';
const GOLDEN = repoPath('operator/render/testdata/loadtest-small.golden.yaml');
const toYaml = (objs: KubeObject[]) => objs.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
const sample = (): ArenaLoadTest =>
  validateLoadTestText(readFileSync(repoPath('samples/loadtest-small.yaml'), 'utf8'))[0]!.object!;
const arenaSmall = () => validateText(readFileSync(repoPath('samples/arena-small.yaml'), 'utf8'))[0]!.object!;
const sampleObjects = (uid = UID) => renderLoadTest(sample(), loadTestDeps(sample(), uid, arenaSmall()));
const find = (objs: KubeObject[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name)) as any;

/** A variant of the sample against a URL, with another scenario source. */
function urlVariant(scenario: ArenaLoadTest['spec']['scenario'], extra: Partial<ArenaLoadTest['spec']> = {}) {
  const lt = sample();
  lt.metadata.name = 'url-test';
  lt.spec = { ...lt.spec, ...extra, target: { url: 'http://api.shop.svc:8000' }, scenario };
  lt.spec.load = { ...lt.spec.load, fromPlan: undefined, rate: 250 };
  delete lt.spec.load.fromPlan;
  delete lt.spec.thresholds;
  return lt;
}

test('golden render of samples/loadtest-small.yaml (UPDATE_GOLDEN=1 to refresh), deterministic', () => {
  const text = toYaml(sampleObjects());
  if (process.env['UPDATE_GOLDEN']) writeFileSync(GOLDEN, text);
  assert.equal(text, readFileSync(GOLDEN, 'utf8'));
  assert.equal(toYaml(sampleObjects()), text, 'the same input gives the same bytes');
  assert.deepEqual(
    parseAllDocuments(readFileSync(GOLDEN, 'utf8')).map((d) => d.toJS()),
    JSON.parse(JSON.stringify(sampleObjects())),
  );
  assert.doesNotMatch(text, /[&*]a\d/, 'no YAML anchors or aliases');
});

test('every object: the ArenaLoadTest as controlling owner, the arena labels, the namespace', () => {
  const objs = sampleObjects();
  assert.deepEqual(
    objs.map((o) => `${o.kind}/${o.metadata.name}`),
    [
      'ConfigMap/loadtest-small-runner',
      'ConfigMap/loadtest-small-shard-0',
      'ConfigMap/loadtest-small-shard-1',
      'ConfigMap/loadtest-small-shard-2',
      'ConfigMap/loadtest-small-shard-3',
      'ServiceAccount/loadtest-small-runner',
      'Role/loadtest-small-runner',
      'RoleBinding/loadtest-small-runner',
      'Job/loadtest-small-runner',
    ],
  );
  for (const o of objs as any[]) {
    assert.equal(o.metadata.namespace, NS);
    assert.deepEqual(o.metadata.ownerReferences, [
      {
        apiVersion: 'arena.dev/v1alpha1',
        kind: 'ArenaLoadTest',
        name: 'loadtest-small',
        uid: UID,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'arena-operator');
    assert.equal(o.metadata.labels['arena.dev/loadtest'], 'loadtest-small');
  }
  assert.equal(find(objs, 'ConfigMap', 'loadtest-small-shard-2').metadata.labels['arena.dev/shard'], '2');
});

test('the Job: Indexed, N completions and parallelism, no retries, the runner command, restricted security', () => {
  const job = find(sampleObjects(), 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, 4);
  assert.equal(job.spec.parallelism, 4);
  // no runner is retried (a retried shard would double-count its arrivals), and one failure does not stop the others
  assert.equal(job.spec.backoffLimitPerIndex, 0);
  assert.equal(job.spec.backoffLimit, undefined);
  assert.equal(job.spec.ttlSecondsAfterFinished, 3600);
  // start deadline 120 s + ramp 30 s + 2 min + ramp-down 10 s + graceful stop 30 s + 300 s margin
  assert.equal(job.spec.activeDeadlineSeconds, 120 + 30 + 120 + 10 + 30 + 300);
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  assert.equal(pod.serviceAccountName, 'loadtest-small-runner');
  assert.deepEqual(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  const c = pod.containers[0];
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  const args = (c.args as string[]).join(' ');
  assert.deepEqual(c.command, ['arena']);
  assert.match(args, /^loadtest run --target http:\/\/arena-small-api\.arena\.svc:8000 --allow-remote /);
  assert.match(
    args,
    / -f \/etc\/arena\/input\/arenadeployment\.yaml --scenario-file \/etc\/arena\/input\/scenario\.yaml /,
  );
  assert.match(
    args,
    / --from-plan --scale 1 --arrival poisson --ramp 30s --duration 2m --ramp-down 10s --graceful-stop 30s /,
  );
  assert.match(args, / --shard \$\(JOB_COMPLETION_INDEX\)\/4 --start-at-from loadtest-small --start-deadline 120s /);
  assert.match(args, / --out \/tmp\/result --publish-configmap loadtest-small-shard-\$\(JOB_COMPLETION_INDEX\) /);
});

test('the scenario ConfigMap: bundled mixed with a deploymentRef is its requestMix, a valid scenario file', () => {
  const cm = find(sampleObjects(), 'ConfigMap', 'loadtest-small-runner');
  assert.deepEqual(Object.keys(cm.data), ['arenadeployment.yaml', 'scenario.yaml', 'thresholds.yaml']);
  const dir = mkdtempSync(join(tmpdir(), 'arena-lt-render-'));
  try {
    for (const [k, v] of Object.entries(cm.data as Record<string, string>)) writeFileSync(join(dir, k), v);
    const s = loadScenarioFile(join(dir, 'scenario.yaml'));
    assert.deepEqual(
      s.requests.map((r) => r.name),
      arenaSmall().spec.load.requestMix.map((k) => k.name),
      "--from-plan needs the scenario's requests to be the ArenaDeployment's request kinds",
    );
    const ad = validateText(readFileSync(join(dir, 'arenadeployment.yaml'), 'utf8'))[0]!;
    assert.deepEqual(ad.errors, []);
    assert.deepEqual(ad.object!.spec, arenaSmall().spec);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a URL target: bundled read ships the bundled file; a configMapRef renders no input ConfigMap', () => {
  const read = urlVariant({ bundled: 'read' });
  const objs = renderLoadTest(read, loadTestDeps(read, UID));
  const cm = find(objs, 'ConfigMap', 'url-test-runner');
  assert.deepEqual(cm.data, { 'scenario.yaml': readFileSync(join(SCENARIO_DIR, 'read.yaml'), 'utf8') });
  const args = (find(objs, 'Job').spec.template.spec.containers[0].args as string[]).join(' ');
  assert.match(
    args,
    /--target http:\/\/api\.shop\.svc:8000 --allow-remote --scenario-file \S+ --rate 250 --arrival poisson /,
  );
  assert.doesNotMatch(args, / -f |--thresholds/);

  const ref = urlVariant({ configMapRef: { name: 'my-scenarios', key: 'checkout.yaml' } }, { parallelism: 2 });
  const objs2 = renderLoadTest(ref, loadTestDeps(ref, UID));
  assert.equal(find(objs2, 'ConfigMap', 'url-test-runner'), undefined);
  assert.deepEqual(find(objs2, 'Job').spec.template.spec.volumes[1].projected.sources, [
    { configMap: { name: 'my-scenarios', items: [{ key: 'checkout.yaml', path: 'scenario.yaml' }] } },
  ]);
  assert.deepEqual(find(objs2, 'Role').rules[1].resourceNames, ['url-test-shard-0', 'url-test-shard-1']);
  // a missing ArenaDeployment is refused naming the field, not a stack trace later
  assert.throws(
    () => renderLoadTest(sample(), { uid: UID }),
    /^InvalidInputError: spec\.target\.deploymentRef: the ArenaDeployment arena-small was not given$/,
  );
});

// ------------------------------------------------------------------ the real apiserver

const cp = new ControlPlane('arena-ltrender-');
const ok = (r: { code: number | null; out: string; err: string }, what: string) =>
  assert.equal(r.code, 0, `${what}: ${r.err || r.out}`);
const RUNNER = `system:serviceaccount:${NS}:loadtest-small-runner`;
const OPERATOR = 'system:serviceaccount:arena-system:arena-operator';
const can = (as: string, verb: string, resource: string, name?: string) =>
  cp.kubectl(['auth', 'can-i', verb, `${resource}${name ? `/${name}` : ''}`, '-n', NS, `--as=${as}`]).out.trim();

before(async () => {
  await cp.start();
  ok(cp.kubectl(['apply', '-f', repoPath('crds/arenaloadtest.yaml')]), 'CRD');
  await waitFor(
    'the CRD to be established',
    () =>
      cp.kubectl(['wait', '--for=condition=Established', 'crd/arenaloadtests.arena.dev', '--timeout=20s']).code === 0,
  );
  ok(cp.kubectl(['create', 'namespace', NS]), 'namespace');
  ok(cp.kubectl(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']), 'restricted');
  // the operator's ServiceAccount bound to operator/rbac/role.yaml, as the chart does
  bindOperatorServiceAccount(cp);
});

after(async () => {
  await cp.destroy();
});

/** Create rendered objects as `as` (admin when undefined) with strict field validation. */
function create(objs: KubeObject[], as?: string) {
  const list = { apiVersion: 'v1', kind: 'List', items: objs };
  return cp.kubectl(['create', '--validate=strict', ...(as ? [`--as=${as}`] : []), '-f', '-'], JSON.stringify(list));
}

test('the apiserver accepts every rendered object (strict), as the operator ServiceAccount, and the Job controller creates restricted runner pods', async () => {
  ok(cp.kubectl(['apply', '-f', repoPath('samples/loadtest-small.yaml')]), 'the ArenaLoadTest');
  const uid = cp.get(['alt', 'loadtest-small', '-n', NS]).metadata.uid as string;
  const objs = sampleObjects(uid);
  // created with the operator's own permissions: creating the runners' Role needs no escalate or bind
  const r = create(objs, OPERATOR);
  ok(r, 'kubectl create --validate=strict as the operator');
  assert.equal(r.out.trim().split('\n').length, objs.length);
  // strict validation is on, so this can fail: an unknown field is refused
  const bad = structuredClone(find(sampleObjects(uid), 'ServiceAccount')) as any;
  bad.metadata.name = 'typo';
  bad.spec = { automount: true };
  const refused = create([bad]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /unknown field "spec"/);

  const pods = await waitFor(
    'the 4 runner pods',
    () => {
      const items = cp.get(['pods', '-n', NS, '-l', 'arena.dev/loadtest=loadtest-small']).items as any[];
      return items.length === 4 && items;
    },
    30_000,
  );
  const indexes = pods.map((p) => p.metadata.annotations['batch.kubernetes.io/job-completion-index']).sort();
  assert.deepEqual(indexes, ['0', '1', '2', '3']);
  for (const p of pods) {
    const env = p.spec.containers[0].env.map((e: any) => e.name);
    assert.ok(env.includes('JOB_COMPLETION_INDEX'), 'the index is in the environment, for $(JOB_COMPLETION_INDEX)');
    assert.equal(p.spec.serviceAccountName, 'loadtest-small-runner');
  }
});

test("the runners' Role: get their own ArenaLoadTest and update their shard ConfigMaps, nothing else", () => {
  assert.equal(can(RUNNER, 'get', 'arenaloadtests.arena.dev', 'loadtest-small'), 'yes');
  assert.equal(can(RUNNER, 'get', 'arenaloadtests.arena.dev', 'another'), 'no');
  assert.equal(can(RUNNER, 'patch', 'arenaloadtests.arena.dev', 'loadtest-small'), 'no');
  assert.equal(can(RUNNER, 'list', 'arenaloadtests.arena.dev'), 'no');
  assert.equal(can(RUNNER, 'update', 'configmaps', 'loadtest-small-shard-3'), 'yes');
  assert.equal(can(RUNNER, 'patch', 'configmaps', 'loadtest-small-shard-0'), 'yes');
  assert.equal(can(RUNNER, 'update', 'configmaps', 'loadtest-small-shard-4'), 'no');
  assert.equal(can(RUNNER, 'update', 'configmaps', 'loadtest-small-runner'), 'no');
  assert.equal(can(RUNNER, 'create', 'configmaps'), 'no');
  assert.equal(can(RUNNER, 'get', 'secrets'), 'no');
  assert.equal(can(RUNNER, 'create', 'pods'), 'no');
  // and the operator can manage what it will create for ArenaLoadTests
  for (const [verb, res] of [
    ['patch', 'jobs.batch'],
    ['delete', 'jobs.batch'],
    ['patch', 'roles.rbac.authorization.k8s.io'],
    ['patch', 'rolebindings.rbac.authorization.k8s.io'],
    ['patch', 'serviceaccounts'],
    ['watch', 'arenaloadtests.arena.dev'],
  ])
    assert.equal(can(OPERATOR, verb!, res!), 'yes', `operator ${verb} ${res}`);
  assert.equal(
    cp
      .kubectl([
        'auth',
        'can-i',
        'patch',
        'arenaloadtests.arena.dev',
        '--subresource=status',
        '-n',
        NS,
        `--as=${OPERATOR}`,
      ])
      .out.trim(),
    'yes',
  );
  assert.equal(can(OPERATOR, 'patch', 'arenaloadtests.arena.dev'), 'no', 'the operator writes status only');
  assert.equal(can(OPERATOR, 'escalate', 'roles.rbac.authorization.k8s.io'), 'no');
  assert.equal(can(OPERATOR, 'create', 'pods'), 'no');
});

test('deleting the ArenaLoadTest removes every rendered object (ownerReferences, garbage collector)', async () => {
  ok(cp.kubectl(['delete', 'alt', 'loadtest-small', '-n', NS, '--wait=true', '--timeout=60s']), 'delete');
  await waitFor(
    'the children to be garbage-collected',
    () =>
      ['jobs', 'configmaps', 'serviceaccounts', 'roles', 'rolebindings'].every(
        (k) => cp.get([k, '-n', NS, '-l', 'arena.dev/loadtest=loadtest-small']).items.length === 0,
      ),
    60_000,
  );
});
