/**
 * The operator's apiserver client (config.ts, client.ts, informer.ts) against a
 * real control plane (testing/control-plane.ts: etcd + kube-apiserver), no
 * mocks: kubeconfigs with a client certificate, a ServiceAccount token, an
 * exec plugin and in-cluster files; bad kubeconfigs as one-line errors;
 * server-side apply, the error codes callers test; one keep-alive connection
 * for many requests; a watch; and an informer that relists after 410 Gone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ControlPlane } from '../../testing/control-plane.js';
import { waitFor } from '../../testing/net.js';
import { serviceAccountKubeconfig } from '../../testing/operator.js';
import type { KindInfo } from '../controller/kinds.js';
import {
  APPLY_PATCH,
  KubeApiError,
  KubeClient,
  MERGE_PATCH,
  resourcePath,
  type KubeObject,
  type Query,
  type WatchEventType,
} from './client.js';
import { KubeConfigError, loadInCluster, loadKubeConfig, loadKubeconfigFile } from './config.js';
import { ListWatch } from './informer.js';

const NS = 'kube-client';
const SA = 'kube-client-test';
const cp = new ControlPlane('arena-kube-client-');
const dir = mkdtempSync(join(tmpdir(), 'arena-kube-client-'));
const clients: KubeClient[] = [];
const CONFIGMAP: KindInfo = { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' };
/** A CRD of this test's own: a cacher the apiserver creates after everything else, so RV 1 is too old for it. */
const WIDGET: KindInfo = { apiVersion: 'kube-test.arena.dev/v1', kind: 'Widget', plural: 'widgets' };

function client(c = loadKubeConfig(cp.kubeconfig)): KubeClient {
  const k = new KubeClient(c);
  clients.push(k);
  return k;
}

before(async () => {
  await cp.start();
  const ok = (r: ReturnType<ControlPlane['kubectl']>) => assert.equal(r.code, 0, r.err);
  ok(cp.kubectl(['create', 'namespace', NS]));
  ok(cp.kubectl(['create', 'serviceaccount', SA, '-n', NS]));
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.kube-test.arena.dev' },
    spec: {
      group: 'kube-test.arena.dev',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
  ok(cp.kubectl(['apply', '-f', '-'], stringify(crd)));
  await waitFor(
    'the Widget CRD to be established',
    () => cp.kubectl(['wait', '--for=condition=Established', 'crd/widgets.kube-test.arena.dev']).code === 0,
  );
});

after(async () => {
  for (const c of clients) c.close();
  await cp.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The KubeApiError `p` rejects with. */
async function apiError(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KubeApiError, `a KubeApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a KubeApiError');
}

test('a client-certificate kubeconfig (the control plane admin), from the file, $KUBECONFIG or ~/.kube/config', async () => {
  const c = loadKubeConfig(cp.kubeconfig);
  assert.equal(c.auth, 'static');
  assert.ok(c.cert && c.key && c.ca, 'client certificate, key and CA from the -data fields');
  assert.match(c.server, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(c.namespace, 'default');
  const version = await client(c).request<{ gitVersion?: string }>('GET', '/version');
  assert.match(version.gitVersion ?? '', /^v1\./);

  const missing = join(dir, 'missing');
  assert.equal(loadKubeConfig(undefined, { KUBECONFIG: `${missing}:${cp.kubeconfig}` }).source, cp.kubeconfig);
  assert.throws(() => loadKubeConfig(undefined, { KUBECONFIG: missing }), /missing: no such file$/);
  assert.throws(
    () => loadKubeConfig(undefined, { HOME: dir }),
    (e: Error) => e instanceof KubeConfigError && e.message.startsWith(join(dir, '.kube', 'config')),
  );
});

/** Read access nowhere: a request as the ServiceAccount is forbidden, and the message names who asked. */
async function assertIsServiceAccount(k: KubeClient): Promise<void> {
  const e = await apiError(k.request('GET', resourcePath(CONFIGMAP, NS)));
  assert.equal(e.code, 403);
  assert.match(e.message, new RegExp(`"system:serviceaccount:${NS}:${SA}" cannot list resource "configmaps"`));
}

test('a token kubeconfig, an exec plugin (through client-node) and in-cluster files authenticate as the ServiceAccount', async () => {
  const tokenConfig = serviceAccountKubeconfig(cp, NS, SA, join(dir, 'token.kubeconfig'));
  const c = loadKubeConfig(tokenConfig);
  assert.equal(c.auth, 'static');
  await assertIsServiceAccount(client(c));

  // exec: a credential plugin printing an ExecCredential with the token
  const cfg = parse(readFileSync(tokenConfig, 'utf8'));
  const token: string = cfg.users[0].user.token;
  const plugin = join(dir, 'plugin.sh');
  const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } };
  writeFileSync(plugin, `#!/bin/sh\ncat <<'EOF'\n${JSON.stringify(credential)}\nEOF\n`);
  chmodSync(plugin, 0o755);
  cfg.users[0].user = {
    exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
  };
  writeFileSync(join(dir, 'exec.kubeconfig'), stringify(cfg));
  const exec = loadKubeConfig(join(dir, 'exec.kubeconfig'));
  assert.equal(exec.auth, 'client-node');
  await assertIsServiceAccount(client(exec));

  // in-cluster: the files a pod has, the token read again (here at every request) as it rotates
  const sa = join(dir, 'serviceaccount');
  mkdirSync(sa, { recursive: true });
  const cluster = cfg.clusters[0].cluster;
  writeFileSync(join(sa, 'ca.crt'), Buffer.from(cluster['certificate-authority-data'], 'base64'));
  writeFileSync(join(sa, 'token'), token);
  writeFileSync(join(sa, 'namespace'), NS);
  const { hostname, port } = new URL(cluster.server);
  const env = { KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port };
  // without a file, KUBERNETES_SERVICE_HOST means in-cluster (here: no pod files, so a one-line error)
  assert.throws(
    () => loadKubeConfig(undefined, env),
    /^KubeConfigError: in-cluster \(\/var\/run\/secrets\/kubernetes\.io\/serviceaccount\): cannot read the token file [^\n]*$/,
  );
  const pod = loadInCluster({ dir: sa, env, tokenRefreshMs: 0 });
  assert.deepEqual([pod.server, pod.namespace, pod.auth], [`https://${hostname}:${port}`, NS, 'token-file']);
  const inPod = client(pod);
  await assertIsServiceAccount(inPod);
  writeFileSync(join(sa, 'token'), 'not-a-token');
  assert.equal((await apiError(inPod.request('GET', resourcePath(CONFIGMAP, NS)))).code, 401, 'the new token was read');
});

test('a bad kubeconfig: one line naming the file and what is wrong', () => {
  const cases: [string, unknown, RegExp][] = [
    ['yaml', ': : [', /: not YAML \(/],
    ['scalar', 'just text', /: not a kubeconfig \(not a YAML mapping\)$/],
    ['no-context', { clusters: [] }, /: no current-context$/],
    ['unknown-context', { 'current-context': 'dev', contexts: [] }, /: current-context dev is not in contexts$/],
    [
      'no-cluster',
      { 'current-context': 'dev', contexts: [{ name: 'dev', context: { user: 'me' } }] },
      /: context dev names no cluster$/,
    ],
    [
      'unknown-cluster',
      { 'current-context': 'dev', contexts: [{ name: 'dev', context: { cluster: 'c' } }], clusters: [] },
      /: context dev names cluster c, which is not in clusters$/,
    ],
    [
      'no-server',
      {
        'current-context': 'dev',
        contexts: [{ name: 'dev', context: { cluster: 'c' } }],
        clusters: [{ name: 'c', cluster: {} }],
      },
      /: cluster c has no server$/,
    ],
    [
      'unknown-user',
      {
        'current-context': 'dev',
        contexts: [{ name: 'dev', context: { cluster: 'c', user: 'me' } }],
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [],
      },
      /: context dev names user me, which is not in users$/,
    ],
    [
      'missing-cert-file',
      {
        'current-context': 'dev',
        contexts: [{ name: 'dev', context: { cluster: 'c', user: 'me' } }],
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'me', user: { 'client-certificate': 'me.crt', 'client-key': 'me.key' } }],
      },
      /: user me: client-certificate \/.*\/me\.crt: cannot read \(ENOENT\)$/,
    ],
    [
      'cert-without-key',
      {
        'current-context': 'dev',
        contexts: [{ name: 'dev', context: { cluster: 'c', user: 'me' } }],
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'me', user: { 'client-certificate-data': 'AAAA' } }],
      },
      /: user me has a client-certificate but no client-key$/,
    ],
  ];
  for (const [name, content, message] of cases) {
    const file = join(dir, `${name}.kubeconfig`);
    writeFileSync(file, typeof content === 'string' ? content : stringify(content));
    assert.throws(
      () => loadKubeconfigFile(file),
      (e: Error) => {
        assert.ok(e instanceof KubeConfigError, name);
        assert.ok(e.message.startsWith(`${file}: `), `${name}: names the file: ${e.message}`);
        assert.ok(!e.message.includes('\n'), `${name}: one line: ${e.message}`);
        assert.match(e.message, message, name);
        return true;
      },
    );
  }
  assert.throws(() => loadKubeconfigFile(join(dir, 'nothing-here')), /nothing-here: cannot read \(ENOENT\)$/);
});

const cm = (name: string, data: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: NS, labels: { test: 'kube-client' } },
  data,
});
const applyQuery = { fieldManager: 'kube-client-test', force: true };

test('server-side apply creates, a second identical apply is a no-op; 404 and 409 reject with .code', async () => {
  const k = client();
  const path = resourcePath(CONFIGMAP, NS, 'ssa');
  const created = await k.request<KubeObject>('PATCH', path, {
    query: applyQuery,
    body: cm('ssa', { a: '1' }),
    contentType: APPLY_PATCH,
  });
  assert.equal((created as any).data.a, '1');
  const again = await k.request<KubeObject>('PATCH', path, {
    query: applyQuery,
    body: cm('ssa', { a: '1' }),
    contentType: APPLY_PATCH,
  });
  assert.equal(again.metadata?.resourceVersion, created.metadata?.resourceVersion, 'no-op: same resourceVersion');
  const merged = await k.request<KubeObject>('PATCH', path, { body: { data: { b: '2' } }, contentType: MERGE_PATCH });
  assert.deepEqual((merged as any).data, { a: '1', b: '2' });

  const missing = await apiError(k.request('GET', resourcePath(CONFIGMAP, NS, 'no-such-configmap')));
  assert.deepEqual([missing.code, missing.reason], [404, 'NotFound']);
  assert.equal(missing.message, 'configmaps "no-such-configmap" not found');
  const exists = await apiError(k.request('POST', resourcePath(CONFIGMAP, NS), { body: cm('ssa', {}) }));
  assert.deepEqual([exists.code, exists.reason], [409, 'AlreadyExists']);
  const stale = {
    ...cm('ssa', {}),
    metadata: { ...cm('ssa', {}).metadata, resourceVersion: created.metadata!.resourceVersion },
  };
  const conflict = await apiError(k.request('PUT', path, { body: stale }));
  assert.deepEqual([conflict.code, conflict.reason], [409, 'Conflict']);
  assert.equal((conflict.body as { kind?: string }).kind, 'Status');

  // non-watch requests time out (here: a watch asked as a plain request never ends its body)
  await assert.rejects(
    k.request('GET', resourcePath(CONFIGMAP, NS), { query: { watch: true }, timeoutMs: 500 }),
    (e: Error) => !(e instanceof KubeApiError) && /no answer within 500 ms/.test(e.message),
  );
});

test('one connection for 50 requests in a row (keep-alive); 4 for 50 requests in 4 parallel lanes', async () => {
  const k = client();
  const path = resourcePath(CONFIGMAP, NS, 'reuse');
  await k.request('PATCH', path, { query: applyQuery, body: cm('reuse', { a: '1' }), contentType: APPLY_PATCH });
  for (let i = 0; i < 50; i++) await k.request('GET', path);
  assert.deepEqual(k.stats, { requests: 51, connections: 1 }, 'every request on the first connection');
  // as the operator's 4 workers do: at most one connection per request in flight, then reused
  const lane = async () => {
    for (let i = 0; i < 12; i++) await k.request('GET', path);
  };
  await Promise.all([lane(), lane(), lane(), lane(), k.request('GET', path), k.request('GET', path)]);
  assert.equal(k.stats.requests, 51 + 50);
  assert.ok(k.stats.connections <= 6, `${k.stats.connections} connections for 50 requests, at most 6 in flight`);
});

test('a watch sees ADDED, MODIFIED and DELETED, and resolves when the apiserver ends it', async () => {
  const k = client();
  const selector = 'watch-test=yes';
  const { resourceVersion } = await k.list(CONFIGMAP, { namespace: NS, labelSelector: selector });
  const events: [WatchEventType, string, string][] = [];
  const ac = new AbortController();
  let opened = false;
  const watching = k.watch(
    resourcePath(CONFIGMAP, NS),
    { resourceVersion, labelSelector: selector, allowWatchBookmarks: true },
    (type, obj: KubeObject) => events.push([type, obj.metadata?.name ?? '', (obj as any).data?.v ?? '']),
    ac.signal,
    () => (opened = true),
  );
  await waitFor('the watch to open', () => opened);
  const body = (v: string) => ({
    ...cm('watched', { v }),
    metadata: { name: 'watched', namespace: NS, labels: { 'watch-test': 'yes' } },
  });
  const path = resourcePath(CONFIGMAP, NS, 'watched');
  await k.request('PATCH', path, { query: applyQuery, body: body('1'), contentType: APPLY_PATCH });
  await k.request('PATCH', path, { query: applyQuery, body: body('2'), contentType: APPLY_PATCH });
  await k.request('DELETE', path);
  const seen = () => events.filter(([t]) => t !== 'BOOKMARK');
  await waitFor('three events', () => seen().length >= 3);
  assert.deepEqual(seen(), [
    ['ADDED', 'watched', '1'],
    ['MODIFIED', 'watched', '2'],
    ['DELETED', 'watched', '2'],
  ]);
  ac.abort();
  await watching; // aborted: resolves

  const t0 = Date.now();
  await k.watch(resourcePath(CONFIGMAP, NS), { timeoutSeconds: 1, labelSelector: selector }, () => undefined);
  assert.ok(Date.now() - t0 < 10_000, 'the apiserver ended the watch after timeoutSeconds');
});

/** A client whose first watch asks for resourceVersion 1 (long gone for the Widget CRD: 410), after `between()`. */
class StaleFirstWatch extends KubeClient {
  watches = 0;
  between: () => void = () => undefined;

  override watch(
    path: string,
    query: Query,
    onEvent: (type: WatchEventType, object: any) => void,
    signal?: AbortSignal,
    opened?: () => void,
  ): Promise<void> {
    if (this.watches++ === 0) {
      this.between();
      return super.watch(path, { ...query, resourceVersion: '1' }, onEvent, signal, opened);
    }
    return super.watch(path, query, onEvent, signal, opened);
  }
}

test('an informer whose watch gets 410 Gone relists: its cache then matches a fresh list', async () => {
  const widget = (name: string, size: number) => ({
    apiVersion: WIDGET.apiVersion,
    kind: WIDGET.kind,
    metadata: { name, namespace: NS },
    spec: { size },
  });
  const k = client();
  const apply = (name: string, size: number) =>
    k.request('PATCH', resourcePath(WIDGET, NS, name), {
      query: applyQuery,
      body: widget(name, size),
      contentType: APPLY_PATCH,
    });
  await apply('a', 1);
  await apply('b', 1);

  const stale = new StaleFirstWatch(loadKubeConfig(cp.kubeconfig));
  clients.push(stale);
  // between the list and the (stale) watch: what only a relist can see
  stale.between = () => {
    for (const args of [
      ['patch', 'widgets.kube-test.arena.dev', 'a', '--type=merge', '-p', '{"spec":{"size":2}}'],
      ['delete', 'widgets.kube-test.arena.dev', 'b'],
      ['apply', '-f', '-'],
    ]) {
      const r = cp.kubectl(['-n', NS, ...args], args[0] === 'apply' ? stringify(widget('c', 1)) : undefined);
      assert.equal(r.code, 0, r.err);
    }
  };
  const inf = new ListWatch(stale, { kind: WIDGET, namespace: NS, transform: (o) => ({ ...o, transformed: true }) });
  const events: string[] = [];
  for (const type of ['add', 'update', 'delete'] as const)
    inf.on(type, (o) => events.push(`${type} ${o.metadata?.name} ${(o as any).spec.size}`));
  const errors: unknown[] = [];
  inf.on('error', (e) => errors.push(e));
  await inf.start();
  await waitFor('the relist after 410', () => inf.lists === 2 && events.length >= 5);
  assert.deepEqual(events, ['add a 1', 'add b 1', 'delete b 1', 'update a 2', 'add c 1']);

  const cacheOf = () => new Map(inf.list(NS).map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!]));
  const fresh = await k.list(WIDGET, { namespace: NS });
  assert.deepEqual(cacheOf(), new Map(fresh.items.map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!])));
  const a = inf.get('a', NS)!;
  assert.deepEqual([a.apiVersion, a.kind, a['transformed']], [WIDGET.apiVersion, WIDGET.kind, true]);

  // and it watches on from the new list
  await apply('d', 4);
  await waitFor('the add after the relist', () => inf.get('d', NS));
  assert.equal(inf.lists, 2);
  assert.deepEqual(errors, []);
  inf.stop();
});
