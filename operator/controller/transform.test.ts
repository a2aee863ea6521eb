/**
 * The cache transform (transform.ts) keeps every field `isSubset` (compare.ts)
 * needs: for every child the reconciler renders from the samples, a live-like
 * copy (server-set metadata and defaults, managedFields, kubectl's
 * last-applied annotation, a status) still holds the desired child after the
 * transform, so an unchanged child gets no write; a drifted copy still does
 * not, so the drift is reverted. And it drops exactly what transform.ts says.
 * informers.test.ts checks the same through real informers on a real apiserver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { validateLoadTestText, validateObject, validateText } from '../api/v1alpha1/validate.js';
import { plan } from '../planner/plan.js';
import { loadTestDeps, renderLoadTest, SHARD_LABEL } from '../render/loadtest.js';
import { repoPath } from '../../testing/paths.js';
import { isSubset } from './compare.js';
import type { KubeObj } from './kube.js';
import { desiredChildren } from './reconciler.js';
import { LAST_APPLIED_ANNOTATION, PAYLOAD_CONFIGMAP_LABELS, STATUS_DROPPED_KINDS, stripForCache } from './transform.js';

const SAMPLES = ['arena-small.yaml', 'debate-arena-holds.yaml'];

/** A stored ArenaDeployment: a sample with server-set metadata. */
function storedArena(sample: string): KubeObj {
  const obj = parse(readFileSync(repoPath('samples', sample), 'utf8'));
  Object.assign(obj.metadata, { uid: `uid-${sample}`, generation: 2, resourceVersion: '41' });
  return obj;
}

/** The children the reconciler would apply for a sample (with its ownerReference). */
function desiredOf(sample: string): KubeObj[] {
  const arena = storedArena(sample);
  const ad = validateObject(structuredClone(arena)).object!;
  return desiredChildren(arena, ad, plan(ad)) as KubeObj[];
}

/** What the reconciler compares: the desired object without apiVersion/kind (reconciler.ts stripForCompare). */
function forCompare(o: KubeObj): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

/** `fieldsV1` for every field of `v`, as server-side apply records it (arrays as one set entry). */
function fieldsOf(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return {};
  if (Array.isArray(v)) return { '.': {} };
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [`f:${k}`, fieldsOf(x)]));
}

/** Set `key` on `o` unless the desired object already did (the apiserver defaults only what is unset). */
function dflt(o: any, key: string, value: unknown): void {
  if (o[key] === undefined) o[key] = value;
}

function defaultPodSpec(spec: any): void {
  for (const [k, v] of Object.entries({
    dnsPolicy: 'ClusterFirst',
    restartPolicy: 'Always',
    schedulerName: 'default-scheduler',
    terminationGracePeriodSeconds: 30,
    securityContext: {},
  }))
    dflt(spec, k, v);
  for (const c of spec.containers ?? []) {
    dflt(c, 'imagePullPolicy', 'IfNotPresent');
    dflt(c, 'terminationMessagePath', '/dev/termination-log');
    dflt(c, 'terminationMessagePolicy', 'File');
    for (const p of c.ports ?? []) dflt(p, 'protocol', 'TCP');
  }
}

const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' });

/** Defaults and status the apiserver and the controllers add, per kind. */
function serverAdded(o: any): void {
  const spec = o.spec;
  switch (o.kind) {
    case 'Deployment':
      dflt(spec, 'progressDeadlineSeconds', 600);
      dflt(spec, 'revisionHistoryLimit', 10);
      dflt(spec, 'strategy', { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } });
      defaultPodSpec(spec.template.spec);
      o.status = { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 };
      o.status.conditions = [condition('Available'), condition('Progressing')];
      break;
    case 'StatefulSet':
      dflt(spec, 'podManagementPolicy', 'OrderedReady');
      dflt(spec, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
      dflt(spec, 'persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' });
      defaultPodSpec(spec.template.spec);
      o.status = {
        observedGeneration: 1,
        replicas: 1,
        readyReplicas: 1,
        currentRevision: 'r-1',
        updateRevision: 'r-1',
      };
      break;
    case 'Service':
      Object.assign(spec, { clusterIP: '10.0.0.17', clusterIPs: ['10.0.0.17'], ipFamilies: ['IPv4'] });
      dflt(spec, 'type', 'ClusterIP');
      dflt(spec, 'sessionAffinity', 'None');
      dflt(spec, 'internalTrafficPolicy', 'Cluster');
      for (const p of spec.ports ?? []) dflt(p, 'protocol', 'TCP');
      o.status = { loadBalancer: {} };
      break;
    case 'PodDisruptionBudget':
      o.status = {
        observedGeneration: 1,
        currentHealthy: 2,
        desiredHealthy: 1,
        expectedPods: 2,
        disruptionsAllowed: 1,
      };
      o.status.conditions = [condition('DisruptionAllowed')];
      break;
    case 'HorizontalPodAutoscaler':
      o.status = { currentReplicas: 2, desiredReplicas: 2, currentMetrics: [], conditions: [condition('AbleToScale')] };
      break;
  }
}

/**
 * `child` as a watch or list hands it over: uid, resourceVersion, generation, creationTimestamp,
 * managedFields of the operator's apply and of kubectl, kubectl's last-applied annotation, the
 * apiserver's defaults and the controllers' status.
 */
function asLive(child: KubeObj): KubeObj {
  const o = structuredClone(child) as any;
  serverAdded(o);
  Object.assign(o.metadata, {
    uid: `uid-${o.kind}-${o.metadata.name}`,
    resourceVersion: '1234',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
    annotations: { ...o.metadata.annotations, [LAST_APPLIED_ANNOTATION]: JSON.stringify(child) },
    managedFields: [
      { manager: 'arena-operator', operation: 'Apply', apiVersion: o.apiVersion, fieldsType: 'FieldsV1' },
      { manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: o.apiVersion, fieldsType: 'FieldsV1' },
      { manager: 'kube-controller-manager', operation: 'Update', subresource: 'status', fieldsType: 'FieldsV1' },
    ].map((e) => ({ ...e, time: '2026-01-01T00:00:00Z', fieldsV1: fieldsOf(child) })),
  });
  return o;
}

const strip = (o: KubeObj) => stripForCache(o.kind!)(o);

for (const sample of SAMPLES) {
  test(`${sample}: every rendered child, live with server fields, managedFields and status, still holds the desired child after the transform`, () => {
    const desired = desiredOf(sample);
    assert.ok(desired.length >= 9, 'the sample renders its children');
    for (const d of desired) {
      const what = `${d.kind}/${d.metadata!.name}`;
      const live = asLive(d);
      const before = structuredClone(live);
      const cached = strip(live);
      assert.deepEqual(live, before, `${what}: the transform does not modify its argument`);
      assert.ok(isSubset(forCompare(d), live), `${what}: the untransformed live copy holds the desired child`);
      assert.ok(isSubset(forCompare(d), cached), `${what}: the cached copy still holds it (no write on a resync)`);
      assert.equal(cached.metadata!.managedFields, undefined, `${what}: no managedFields`);
      assert.equal(cached.metadata!.annotations![LAST_APPLIED_ANNOTATION], undefined, `${what}: no last-applied`);
      const statusKept = d.kind === 'Deployment' || d.kind === 'StatefulSet';
      assert.equal(cached.status !== undefined, statusKept, `${what}: status kept only where it is read`);
      assert.ok(JSON.stringify(cached).length < JSON.stringify(live).length / 2, `${what}: less than half the bytes`);
    }
  });
}

/** A drift someone could make to a live child, by `kubectl edit` or another controller. */
interface Drift {
  what: string;
  kind: string;
  name: (sample: string) => string;
  edit: (live: any) => void;
}

const api = (s: string) => `${s.replace('.yaml', '')}-api`;
const pgbouncer = (s: string) => `${s.replace('.yaml', '')}-pgbouncer`;
const redis = (s: string) => `${s.replace('.yaml', '')}-redis`;

const DRIFTS: Drift[] = [
  {
    what: 'an env value of the API container',
    kind: 'Deployment',
    name: api,
    edit: (o) => {
      const e = o.spec.template.spec.containers[0].env.find((x: any) => x.value !== undefined);
      e.value = `${e.value}0`;
    },
  },
  {
    what: 'an env var removed',
    kind: 'Deployment',
    name: api,
    edit: (o) => o.spec.template.spec.containers[0].env.pop(),
  },
  {
    what: 'the image',
    kind: 'Deployment',
    name: api,
    edit: (o) => (o.spec.template.spec.containers[0].image = 'ghcr.io/example/other:9.9.9'),
  },
  { what: 'the PgBouncer replicas', kind: 'Deployment', name: pgbouncer, edit: (o) => (o.spec.replicas += 1) },
  { what: 'the Redis replicas', kind: 'StatefulSet', name: redis, edit: (o) => (o.spec.replicas = 3) },
  {
    what: 'a memory limit',
    kind: 'StatefulSet',
    name: redis,
    edit: (o) => (o.spec.template.spec.containers[0].resources.limits.memory = '3Gi'),
  },
  {
    what: 'a ConfigMap data key edited',
    kind: 'ConfigMap',
    name: pgbouncer,
    edit: (o) =>
      (o.data['pgbouncer.ini'] = o.data['pgbouncer.ini'].replace(/max_client_conn = \d+/, 'max_client_conn = 1')),
  },
  { what: 'a ConfigMap data key removed', kind: 'ConfigMap', name: redis, edit: (o) => (o.data = {}) },
  { what: 'a Service port', kind: 'Service', name: api, edit: (o) => (o.spec.ports[0].port += 1) },
  { what: 'the HPA maximum', kind: 'HorizontalPodAutoscaler', name: api, edit: (o) => (o.spec.maxReplicas += 5) },
  { what: 'a PDB maxUnavailable', kind: 'PodDisruptionBudget', name: api, edit: (o) => (o.spec.maxUnavailable = 0) },
  {
    what: 'a label removed',
    kind: 'Service',
    name: redis,
    edit: (o) => delete o.metadata.labels['app.kubernetes.io/managed-by'],
  },
  {
    what: 'the ownerReference lost its controller flag',
    kind: 'ConfigMap',
    name: redis,
    edit: (o) => (o.metadata.ownerReferences[0].controller = false),
  },
  {
    what: 'a pod template annotation (the config hash)',
    kind: 'Deployment',
    name: pgbouncer,
    edit: (o) => (o.spec.template.metadata.annotations['arena.dev/config-hash'] = 'stale'),
  },
];

for (const sample of SAMPLES) {
  test(`${sample}: a drifted child still fails isSubset after the transform (the reconciler reverts it)`, () => {
    const desired = desiredOf(sample);
    for (const drift of DRIFTS) {
      const d = desired.find((o) => o.kind === drift.kind && o.metadata!.name === drift.name(sample));
      assert.ok(d, `${sample} renders ${drift.kind}/${drift.name(sample)}`);
      const live = asLive(d) as any;
      drift.edit(live);
      assert.equal(isSubset(forCompare(d), live), false, `${drift.what}: the untransformed copy differs`);
      assert.equal(isSubset(forCompare(d), strip(live)), false, `${drift.what}: the cached copy still differs`);
    }
  });
}

test('what is dropped, by kind: status only where unread, managedFields and last-applied always, identity kept', () => {
  const meta: any = {
    name: 'x',
    namespace: 'arena',
    uid: 'u-1',
    resourceVersion: '77',
    generation: 4,
    deletionTimestamp: '2026-01-02T00:00:00Z',
    finalizers: ['example.com/f'],
    labels: { a: 'b' },
    annotations: { keep: 'me', [LAST_APPLIED_ANNOTATION]: '{}' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'o', uid: 'u-0', controller: true }],
    managedFields: [{ manager: 'm', operation: 'Apply' }],
  };
  const { managedFields: _m, ...kept } = meta;
  const keptMeta = { ...kept, annotations: { keep: 'me' } };
  const status = { observedGeneration: 4, replicas: 1 };
  const kinds = [
    ...STATUS_DROPPED_KINDS,
    'Deployment',
    'StatefulSet',
    'Job',
    'ArenaDeployment',
    'ArenaLoadTest',
    'SomethingElse',
  ];
  for (const kind of kinds) {
    const out = stripForCache(kind)({
      apiVersion: 'v1',
      kind,
      metadata: structuredClone(meta),
      spec: { s: 1 },
      status,
    });
    assert.deepEqual(out.metadata, keptMeta, `${kind}: metadata`);
    assert.deepEqual(out.spec, { s: 1 }, `${kind}: spec`);
    assert.equal(out.status !== undefined, !STATUS_DROPPED_KINDS.has(kind), `${kind}: status`);
  }
  assert.deepEqual([...STATUS_DROPPED_KINDS].sort(), [
    'ConfigMap',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
    'Role',
    'RoleBinding',
    'Service',
    'ServiceAccount',
  ]);
  // Only the last-applied annotation: an empty map remains (a desired `annotations: {}` still matches).
  const only = { name: 'y', annotations: { [LAST_APPLIED_ANNOTATION]: '{}' } };
  assert.deepEqual(stripForCache('Service')({ kind: 'Service', metadata: only }).metadata, {
    name: 'y',
    annotations: {},
  });
  assert.deepEqual(stripForCache('Service')({ kind: 'Service' }), { kind: 'Service' }, 'no metadata: unchanged');
});

test("ConfigMaps labelled arena.dev/shard or arena.dev/result: data and binaryData dropped, metadata kept; others' data kept", () => {
  assert.ok(PAYLOAD_CONFIGMAP_LABELS.includes(SHARD_LABEL), "the shard label is render/loadtest.ts's SHARD_LABEL");
  const annotations = {
    'arena.dev/runner-ready': '2026-01-01T00:00:00Z',
    'arena.dev/shard-status': 'complete',
    'arena.dev/shard-index': '2',
  };
  const cm = (labels: Record<string, string>): KubeObj => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'lt-shard-2', namespace: 'arena', labels, annotations, resourceVersion: '9' },
    data: { 'summary.txt': 'ok' },
    binaryData: { 'result.json.gz': 'H4sIAAAAAAAAA'.repeat(10_000) },
  });
  for (const label of ['arena.dev/shard', 'arena.dev/result']) {
    const labels = { 'app.kubernetes.io/managed-by': 'arena-operator', [label]: '2' };
    const out = stripForCache('ConfigMap')(cm(labels));
    assert.equal('data' in out, false, `${label}: no data`);
    assert.equal('binaryData' in out, false, `${label}: no binaryData`);
    assert.deepEqual(out.metadata, { ...cm(labels).metadata }, `${label}: labels and annotations kept`);
  }
  const other = stripForCache('ConfigMap')(cm({ 'arena.dev/loadtest': 'lt' }));
  assert.deepEqual([other['data'], other['binaryData']], [cm({}).data, cm({}).binaryData], 'other ConfigMaps: kept');
  const notCm = stripForCache('Secret')({
    kind: 'Secret',
    metadata: { labels: { [SHARD_LABEL]: '1' } },
    data: { k: 'v' },
  });
  assert.deepEqual(notCm['data'], { k: 'v' }, 'only ConfigMaps');
});

test('samples/loadtest-small.yaml: every rendered child, live (shard ConfigMaps holding a result), still holds the desired child after the transform', () => {
  const lt = validateLoadTestText(readFileSync(repoPath('samples/loadtest-small.yaml'), 'utf8'))[0]!.object!;
  const ad = validateText(readFileSync(repoPath('samples/arena-small.yaml'), 'utf8'))[0]!.object!;
  const desired = renderLoadTest(lt, loadTestDeps(lt, 'uid-lt', ad)) as KubeObj[];
  const shards = desired.filter((o) => o.metadata?.labels?.[SHARD_LABEL] !== undefined);
  assert.equal(shards.length, lt.spec.parallelism);
  for (const d of desired) {
    const live = asLive(d) as any;
    if (shards.includes(d)) {
      live.metadata.annotations['arena.dev/shard-status'] = 'complete';
      live.binaryData = { 'result.json.gz': 'H4sI'.repeat(1000) };
    }
    if (d.kind === 'Job') live.status = { active: 4, ready: 4 };
    const cached = strip(live);
    assert.ok(isSubset(forCompare(d), cached), `${d.kind}/${d.metadata!.name}: still holds the desired child`);
    assert.equal(cached.status !== undefined, d.kind === 'Job', `${d.kind}: status kept only for the Job`);
  }
});
