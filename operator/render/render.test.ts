import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { render, type KubeObject } from './index.js';
import { plan } from '../planner/plan.js';
import { validateText } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import { CONFIG_HASH_ANNOTATION } from './names.js';
import { repoPath } from '../../testing/paths.js';

const load = (file: string) => validateText(readFileSync(repoPath(file), 'utf8'))[0]!.object!;
const toYaml = (objs: KubeObject[]) => objs.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');

for (const sample of ['debate-arena', 'debate-arena-holds']) {
  test(`golden render of samples/${sample}.yaml (UPDATE_GOLDEN=1 to refresh)`, () => {
    const ad = load(`samples/${sample}.yaml`);
    const text = toYaml(render(ad, plan(ad)));
    const golden = repoPath(`operator/render/testdata/${sample}.golden.yaml`);
    if (process.env['UPDATE_GOLDEN']) writeFileSync(golden, text);
    assert.equal(text, readFileSync(golden, 'utf8'));
  });
}

/** Validate an object against the Kubernetes OpenAPI schema (kubernetes-models: generated from the upstream OpenAPI spec). */
async function validateK8s(o: KubeObject): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const mod = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`);
  new mod[o.kind](o).validate();
}

function variants(): [string, ArenaDeployment][] {
  const base = load('samples/debate-arena.yaml');
  const noPgb = structuredClone(base);
  noPgb.spec.pgbouncer.enabled = false;
  const external = structuredClone(base);
  external.spec.redis = { ...external.spec.redis, managed: false, host: 'redis.example.svc' };
  const fixed = structuredClone(base);
  fixed.spec.api.autoscaling.enabled = false;
  fixed.spec.api.replicas = 3;
  return [
    ['sample', base],
    ['pgbouncer disabled', noPgb],
    ['external redis', external],
    ['fixed replicas', fixed],
  ];
}

for (const [name, ad] of variants()) {
  test(`every rendered object is valid against the Kubernetes OpenAPI schema (${name})`, async () => {
    const objs = render(ad, plan(ad));
    assert.ok(objs.length >= 4);
    for (const o of objs) await validateK8s(o);
    // and a broken object is rejected, so the check can fail
    const broken = structuredClone(objs.find((o) => o.kind === 'Deployment')!) as any;
    broken.spec.replicas = 'three';
    await assert.rejects(validateK8s(broken));
  });
}

test('children follow the spec: PgBouncer and Redis objects only when enabled/managed', () => {
  const kinds = (ad: ArenaDeployment) => render(ad, plan(ad)).map((o) => `${o.kind}/${o.metadata.name}`);
  const v = Object.fromEntries(variants());
  const [base, noPgb, external, fixed] = [
    v['sample'],
    v['pgbouncer disabled'],
    v['external redis'],
    v['fixed replicas'],
  ];
  assert.deepEqual(kinds(base!), [
    'ConfigMap/debate-arena-pgbouncer',
    'ConfigMap/debate-arena-redis',
    'StatefulSet/debate-arena-redis',
    'Service/debate-arena-redis',
    'Deployment/debate-arena-pgbouncer',
    'Service/debate-arena-pgbouncer',
    'PodDisruptionBudget/debate-arena-pgbouncer',
    'Deployment/debate-arena-api',
    'Service/debate-arena-api',
    'PodDisruptionBudget/debate-arena-api',
    'HorizontalPodAutoscaler/debate-arena-api',
  ]);
  assert.ok(!kinds(noPgb!).some((k) => k.includes('pgbouncer')));
  assert.ok(!kinds(external!).some((k) => k.includes('redis')));
  assert.ok(!kinds(fixed!).some((k) => k.startsWith('HorizontalPodAutoscaler')));
});

test('the API Deployment carries the pool settings; replicas only without an HPA', () => {
  const v = Object.fromEntries(variants());
  const [base, fixed] = [v['sample'], v['fixed replicas']];
  const dep = (ad: ArenaDeployment) =>
    render(ad, plan(ad)).find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-api')) as any;
  const env = Object.fromEntries(
    dep(base!)
      .spec.template.spec.containers[0].env.filter((e: any) => 'value' in e)
      .map((e: any) => [e.name, e.value]),
  );
  assert.equal(env.DB_POOL_SIZE, '20');
  assert.equal(env.DB_MAX_OVERFLOW, '10');
  assert.equal(env.DB_POOL_TIMEOUT, '30');
  assert.equal(env.WEB_CONCURRENCY, '8');
  assert.equal(env.MAX_CONCURRENT_REQUESTS, '3');
  assert.equal(env.REDIS_MAX_CONNECTIONS, '50');
  assert.equal(env.DB_HOST, 'debate-arena-pgbouncer');
  assert.equal(dep(base!).spec.replicas, undefined);
  assert.equal(dep(fixed!).spec.replicas, 3);
  const hpa = render(base!, plan(base!)).find((o) => o.kind === 'HorizontalPodAutoscaler') as any;
  assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [plan(base!).replicas.min, plan(base!).replicas.max]);
  assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 300);
});

test('credentials come only from the Secret: no ConfigMap or env value holds them', () => {
  const ad = load('samples/debate-arena.yaml');
  const objs = render(ad, plan(ad));
  for (const o of objs.filter((x) => x.kind === 'ConfigMap'))
    assert.doesNotMatch(JSON.stringify(o), /password|PGPASSWORD|secret/i);
  const refs = JSON.stringify(objs).match(/"secretKeyRef":\{[^}]*\}/g) ?? [];
  assert.ok(refs.length >= 4);
  for (const r of refs) assert.match(r, /"name":"arena-db"/);
});

test('pgbouncer.ini is deterministic with sorted parameters, and its hash rolls pods only when it changes', () => {
  const ad = load('samples/debate-arena.yaml');
  const ini = (a: ArenaDeployment) =>
    (render(a, plan(a)).find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('pgbouncer')) as any).data[
      'pgbouncer.ini'
    ] as string;
  const text = ini(ad);
  const keys = text
    .split('[pgbouncer]')[1]!
    .split('\n')
    .filter((l) => l.includes(' = '))
    .map((l) => l.split(' = ')[0]!);
  assert.deepEqual(keys, [...keys].sort());
  assert.match(text, /^max_client_conn = 1300$/m);
  assert.match(text, /^pool_mode = transaction$/m);
  assert.equal(ini(ad), text);
  const hash = (a: ArenaDeployment) =>
    (render(a, plan(a)).find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('pgbouncer')) as any).spec
      .template.metadata.annotations[CONFIG_HASH_ANNOTATION];
  const same = structuredClone(ad);
  same.spec.api.image = 'other:2';
  assert.equal(hash(same), hash(ad), 'an unrelated change must not roll PgBouncer');
  const changed = structuredClone(ad);
  changed.spec.pgbouncer.maxClientConn = 5000;
  assert.notEqual(hash(changed), hash(ad));
});

test('pods meet the restricted Pod Security Standard', () => {
  const ad = load('samples/debate-arena.yaml');
  for (const o of render(ad, plan(ad)) as any[]) {
    const pod = o.spec?.template?.spec;
    if (!pod) continue;
    assert.equal(pod.securityContext.runAsNonRoot, true, o.metadata.name);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    for (const c of pod.containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.ok(c.resources.requests && c.readinessProbe && c.livenessProbe, `${c.name} needs resources and probes`);
    }
  }
});

test('the golden files parse back to the same objects', () => {
  const ad = load('samples/debate-arena.yaml');
  const docs = parseAllDocuments(
    readFileSync(repoPath('operator/render/testdata/debate-arena.golden.yaml'), 'utf8'),
  ).map((d) => d.toJS());
  assert.deepEqual(docs, JSON.parse(JSON.stringify(render(ad, plan(ad)))));
  void parse;
});
