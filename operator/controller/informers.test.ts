/**
 * SupervisedInformer with the cache transform, against a real control plane
 * (testing/control-plane.ts: etcd + kube-apiserver + kube-controller-manager)
 * and the real kubectl: objects enter the cache stripped (transform.ts) from
 * the initial list and from watch events (add and update); and the reconciler,
 * reading those stripped caches and writing to the real apiserver, sends no
 * write for unchanged children and reverts drifted ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { ControlPlane } from '../../testing/control-plane.js';
import { waitFor } from '../../testing/net.js';
import { repoPath } from '../../testing/paths.js';
import { MANAGED_BY } from '../render/names.js';
import { SupervisedInformer } from './informers.js';
import { KubeClient } from '../kube/client.js';
import { loadKubeConfig } from '../kube/config.js';
import { ARENA, CHILD_KINDS, kindKey, type KindInfo } from './kinds.js';
import { Kube, type KubeObj } from './kube.js';
import { OperatorMetrics } from './metrics.js';
import { Reconciler, type Caches } from './reconciler.js';
import { LAST_APPLIED_ANNOTATION, stripForCache, type CacheTransform } from './transform.js';

const NS = 'arena';
const cp = new ControlPlane('arena-informers-');
const log = pino({ level: 'silent' });
const metrics = new OperatorMetrics();
let kube: Kube;
const informers: SupervisedInformer[] = [];

before(async () => {
  await cp.start();
  kube = new Kube(new KubeClient(loadKubeConfig(cp.kubeconfig)), metrics);
  const crd = cp.kubectl(['apply', '-f', repoPath('crds/arenadeployment.yaml')]);
  assert.equal(crd.code, 0, crd.err);
  const established = ['wait', '--for=condition=Established', 'crd/arenadeployments.arena.dev', '--timeout=30s'];
  await waitFor('the CRD to be established', () => cp.kubectl(established).code === 0);
  assert.equal(cp.kubectl(['create', 'namespace', NS]).code, 0);
});

after(async () => {
  for (const i of informers) i.stop();
  kube.client.close();
  await cp.destroy();
});

/** A started informer of `kind` in NS, as the manager builds one; `events` records what onEvent saw. */
async function informer(kind: KindInfo, transform?: CacheTransform, labelSelector?: string) {
  const events: { type: string; obj: KubeObj }[] = [];
  const inf = new SupervisedInformer({
    name: kind.plural,
    client: kube.client,
    kind,
    namespace: NS,
    labelSelector,
    onEvent: (obj, type) => events.push({ type, obj }),
    relistPeriodMs: 600_000,
    metrics,
    log,
    transform,
  });
  informers.push(inf);
  await inf.start();
  return { inf, events };
}

/** `kubectl apply` (client-side: it stores the last-applied annotation; managedFields as for any write). */
function apply(obj: object): void {
  const r = cp.kubectl(['apply', '-f', '-'], stringify(obj));
  assert.equal(r.code, 0, r.err);
}

const CONFIGMAP: KindInfo = { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' };
const cm = (name: string, data: Record<string, string>, extra: object = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: NS, labels: { app: 'informers-test' }, ...extra },
  data,
});

function assertStripped(o: KubeObj | undefined, what: string): void {
  assert.ok(o, `${what}: cached`);
  assert.equal(o.metadata?.managedFields, undefined, `${what}: no managedFields`);
  assert.equal(o.metadata?.annotations?.[LAST_APPLIED_ANNOTATION], undefined, `${what}: no last-applied annotation`);
}

test('the cached copy of a watched object has no managedFields: after the initial list, an add and an update', async () => {
  apply(cm('listed', { k: 'v1' }));
  const { inf, events } = await informer(CONFIGMAP, stripForCache('ConfigMap'));
  const raw = await informer(CONFIGMAP);
  // The apiserver does send them: the informer without a transform caches them.
  assert.ok(raw.inf.get('listed', NS)?.metadata?.managedFields?.length, 'without a transform: managedFields cached');
  assert.ok(raw.inf.get('listed', NS)?.metadata?.annotations?.[LAST_APPLIED_ANNOTATION]);
  assertStripped(inf.get('listed', NS), 'listed');
  assert.deepEqual(inf.get('listed', NS)!.data, { k: 'v1' });

  apply(cm('watched', { k: 'v1' }));
  const added = await waitFor('the add', () => inf.get('watched', NS));
  assertStripped(added, 'after the add');
  apply(cm('watched', { k: 'v2' }));
  const updated = await waitFor(
    'the update',
    () => (inf.get('watched', NS)?.data as any)?.k === 'v2' && inf.get('watched', NS),
  );
  assertStripped(updated, 'after the update');
  assert.ok(raw.inf.get('watched', NS)?.metadata?.managedFields?.length, 'without a transform: managedFields cached');
  const seen = events.filter((e) => e.obj.metadata?.name === 'watched').map((e) => e.type);
  assert.deepEqual(seen.slice(0, 2), ['add', 'update']);
  for (const e of events) assertStripped(e.obj, `onEvent ${e.type} ${e.obj.metadata?.name}`);

  // A shard ConfigMap: the runner's result is not cached, its annotations are.
  const blob = Buffer.alloc(64 * 1024, 7).toString('base64');
  apply({ ...cm('lt-shard-0', {}, { labels: { 'arena.dev/shard': '0' } }), binaryData: { 'result.json.gz': blob } });
  const annotate = ['annotate', '-n', NS, 'cm/lt-shard-0', 'arena.dev/runner-ready=2026-01-01T00:00:00Z'];
  assert.equal(cp.kubectl(annotate).code, 0);
  const shard = await waitFor('the annotated shard', () => {
    const o = inf.get('lt-shard-0', NS);
    return o?.metadata?.annotations?.['arena.dev/runner-ready'] !== undefined && o;
  });
  assertStripped(shard, 'shard');
  assert.equal('binaryData' in shard, false);
  assert.equal('data' in shard, false);
  assert.equal((raw.inf.get('lt-shard-0', NS) as any)?.binaryData?.['result.json.gz'], blob);
});

/** Informers for the ArenaDeployments and the child kinds, with stripForCache, and the reconciler's view of them. */
async function strippedCaches(): Promise<{ caches: Caches; byKind: Map<string, SupervisedInformer> }> {
  const selector = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
  const byKind = new Map<string, SupervisedInformer>();
  for (const k of CHILD_KINDS)
    byKind.set(kindKey(k.apiVersion, k.kind), (await informer(k, stripForCache(k.kind), selector)).inf);
  const arena = (await informer(ARENA, stripForCache(ARENA.kind))).inf;
  const caches: Caches = {
    arena: (ns, name) => arena.get(name, ns),
    child: (apiVersion, kind, ns, name) => byKind.get(kindKey(apiVersion, kind))?.get(name, ns),
    children: (apiVersion, kind, ns) => byKind.get(kindKey(apiVersion, kind))?.list(ns) ?? [],
  };
  return { caches, byKind };
}

const apiEnv = (o: KubeObj | undefined, name: string) =>
  (o as any)?.spec?.template?.spec?.containers?.[0]?.env?.find((e: any) => e.name === name)?.value;

test('the reconciler over stripped caches: no write for unchanged children, a drifted child reverted', async () => {
  const { caches, byKind } = await strippedCaches();
  const r = cp.kubectl(['apply', '-f', repoPath('samples/debate-arena-holds.yaml')]);
  assert.equal(r.code, 0, r.err);
  const key = `${NS}/debate-arena-holds`;
  const ad = await waitFor('the ArenaDeployment in the cache', () => caches.arena(NS, 'debate-arena-holds'));
  assertStripped(ad, 'ArenaDeployment');
  const reconciler = new Reconciler(kube, caches, metrics, log, 'informers-test');

  const first = await reconciler.reconcile(key);
  assert.ok(first.applied.length >= 9, `every child applied: ${first.applied.join(', ')}`);
  const cached = (label: string) => {
    const [kind, name] = label.split('/') as [string, string];
    const k = CHILD_KINDS.find((c) => c.kind === kind)!;
    return byKind.get(kindKey(k.apiVersion, k.kind))!.get(name, NS);
  };
  await waitFor('every applied child in the caches', () => first.applied.every((l) => cached(l)));
  for (const l of first.applied) {
    assertStripped(cached(l), l);
    const kind = l.split('/')[0]!;
    if (kind !== 'Deployment' && kind !== 'StatefulSet') assert.equal(cached(l)!.status, undefined, `${l}: no status`);
  }
  await waitFor('the API Deployment status (kept in the cache)', () =>
    (cached('Deployment/debate-arena-holds-api')?.status as any)?.observedGeneration === 1 ? true : undefined,
  );

  const applies = () => metrics.kubeRequests.get().then((m) => m.values.find((v) => v.labels.verb === 'apply')?.value);
  const appliesBefore = await applies();
  const noop = await reconciler.reconcile(key);
  assert.deepEqual([noop.applied, noop.pruned], [[], []], 'an unchanged child gets no write');
  assert.equal(await applies(), appliesBefore, 'no apply request');

  // Drift: a manual edit of the API Deployment's env and of the PgBouncer ConfigMap.
  assert.equal(
    cp.kubectl(['set', 'env', '-n', NS, 'deploy/debate-arena-holds-api', 'MAX_CONCURRENT_REQUESTS=1']).code,
    0,
  );
  const tamper = ['patch', '-n', NS, 'cm/debate-arena-holds-pgbouncer', '--type=merge', '-p'];
  assert.equal(cp.kubectl([...tamper, '{"data":{"pgbouncer.ini":"tampered"}}']).code, 0);
  await waitFor('the drift in the caches', () => {
    const cmData = cached('ConfigMap/debate-arena-holds-pgbouncer')?.data as any;
    return (
      apiEnv(cached('Deployment/debate-arena-holds-api'), 'MAX_CONCURRENT_REQUESTS') === '1' &&
      cmData?.['pgbouncer.ini'] === 'tampered'
    );
  });
  const revert = await reconciler.reconcile(key);
  assert.deepEqual(revert.applied.sort(), [
    'ConfigMap/debate-arena-holds-pgbouncer',
    'Deployment/debate-arena-holds-api',
  ]);
  await waitFor('the reverted children in the caches', () => {
    const cmData = cached('ConfigMap/debate-arena-holds-pgbouncer')?.data as any;
    return (
      apiEnv(cached('Deployment/debate-arena-holds-api'), 'MAX_CONCURRENT_REQUESTS') === '120' &&
      /max_client_conn = /.test(cmData?.['pgbouncer.ini'] ?? '')
    );
  });
  assertStripped(cached('Deployment/debate-arena-holds-api'), 'after the revert');
  const settled = await reconciler.reconcile(key);
  assert.deepEqual([settled.applied, settled.pruned], [[], []], 'after the revert: no write');
});

test('a transform that throws loses no object: it is cached as it came', async () => {
  apply(cm('thrown', { k: 'v1' }));
  const boom: CacheTransform = () => {
    throw new Error('boom');
  };
  const { inf, events } = await informer(CONFIGMAP, boom);
  assert.ok(inf.get('thrown', NS)?.metadata?.managedFields?.length, 'listed, unchanged');
  apply(cm('thrown-later', { k: 'v1' }));
  const added = await waitFor('the add', () => inf.get('thrown-later', NS));
  assert.ok(added.metadata?.managedFields?.length, 'watched, unchanged');
  assert.ok(events.some((e) => e.type === 'add' && e.obj.metadata?.name === 'thrown-later'));
});
