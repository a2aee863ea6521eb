/**
 * The runner side of a distributed run against the real local control plane
 * (testing/control-plane.ts): `arena loadtest run --start-at-from --publish-configmap`
 * marks its shard ConfigMap ready, waits for the ArenaLoadTest's status.startAt,
 * runs from that instant against a test server, and publishes its shard result,
 * all with the ServiceAccount token of the rendered runner Role (least privilege).
 * Also: the shard encoding (round trip, the size bound) and the start deadline.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ControlPlane } from '../../testing/control-plane.js';
import { serviceAccountKubeconfig } from '../../testing/operator.js';
import { waitFor } from '../../testing/net.js';
import { repoPath } from '../../testing/paths.js';
import { startTestServer, type TestServer } from '../../testing/servers.js';
import { assertRefused, runArenaAsync } from '../../testing/cli.js';
import { shortLoadTest } from '../../testing/loadtest-run.js';
import { validateLoadTestText } from '../../operator/api/v1alpha1/validate.js';
import { loadTestDeps, renderLoadTest } from '../../operator/render/loadtest.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { mergeResults } from '../engine/merge.js';
import { ANNOTATIONS, decodeShard, encodeShard, encodeShardDetailed, shardFromConfigMap, SHARD_KEY } from './shard.js';

const NS = 'arena-run';
const cp = new ControlPlane('arena-ltrunner-');
let server: TestServer;
let tmp = '';
let scenarioFile = '';
let sampleResult: LoadTestResult;

const ok = (r: { code: number | null; out: string; err: string }, what: string) =>
  assert.equal(r.code, 0, `${what}: ${r.err || r.out}`);

/** samples/loadtest-small.yaml as an ArenaLoadTest `name` against `url` at 50/s, one runner. */
function altYaml(name: string, url: string): string {
  const doc = parse(readFileSync(repoPath('samples/loadtest-small.yaml'), 'utf8'));
  doc.metadata = { name, namespace: NS };
  doc.spec.target = { url };
  doc.spec.scenario = { bundled: 'read' };
  doc.spec.load = { rate: 50, duration: '2s' };
  doc.spec.parallelism = 1;
  delete doc.spec.thresholds;
  return stringify(doc);
}

/**
 * Create the ArenaLoadTest `name` and the rendered shard ConfigMap, ServiceAccount, Role and
 * RoleBinding (operator/render/loadtest.ts), and return a kubeconfig holding that
 * ServiceAccount's token: what a runner pod has.
 */
function setUp(name: string): string {
  const text = altYaml(name, server.url);
  ok(cp.kubectl(['apply', '-f', '-'], text), `ArenaLoadTest ${name}`);
  const uid = cp.get(['alt', name, '-n', NS]).metadata.uid as string;
  const lt = validateLoadTestText(text)[0]!.object!;
  const objs = renderLoadTest(lt, loadTestDeps(lt, uid)).filter(
    (o) => o.kind !== 'Job' && !(o.kind === 'ConfigMap' && o.metadata.name === `${name}-runner`),
  );
  assert.deepEqual(
    objs.map((o) => `${o.kind}/${o.metadata.name}`),
    [`ConfigMap/${name}-shard-0`, ...['ServiceAccount', 'Role', 'RoleBinding'].map((k) => `${k}/${name}-runner`)],
  );
  ok(cp.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs })), 'objects');
  return serviceAccountKubeconfig(cp, NS, `${name}-runner`, join(tmp, `${name}.kubeconfig`));
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'arena-ltrunner-'));
  server = await startTestServer({ latencyMs: 5 });
  scenarioFile = join(tmp, 'scenario.yaml');
  writeFileSync(scenarioFile, 'name: dist\nrequests:\n  - name: fixed\n    path: /fixed\n');
  await cp.start();
  ok(cp.kubectl(['apply', '-f', repoPath('crds/arenaloadtest.yaml')]), 'CRD');
  await waitFor(
    'the CRD to be established',
    () =>
      cp.kubectl(['wait', '--for=condition=Established', 'crd/arenaloadtests.arena.dev', '--timeout=20s']).code === 0,
  );
  ok(cp.kubectl(['create', 'namespace', NS]), 'namespace');
});

after(async () => {
  await cp.destroy();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('encodeShard/decodeShard: a real result round-trips; over the bound the per-second histograms go first', async () => {
  const r = await shortLoadTest({
    target: server.url,
    requests: 'requests:\n  - name: fixed\n    path: /fixed\n',
    duration: '2s',
  });
  assert.equal(r.run.code, 0, r.run.err);
  sampleResult = r.result!;
  const enc = encodeShardDetailed(sampleResult);
  assert.equal(enc.droppedSecondHistograms, false);
  assert.deepEqual(decodeShard(enc.data), sampleResult);
  assert.equal(encodeShard(sampleResult), enc.data);
  assert.ok(
    sampleResult.series.some((s) => s.all.trends['http_req_duration']?.hdr),
    'the run has per-second hdr',
  );
  const full = enc.data.length;
  const slim = encodeShardDetailed(sampleResult, full - 1);
  assert.equal(slim.droppedSecondHistograms, true);
  assert.ok(slim.data.length < full);
  const d = decodeShard(slim.data);
  assert.ok(d.series.every((s) => Object.values(s.all.trends).every((t) => t.hdr === undefined)));
  assert.deepEqual(d.all.metrics, sampleResult.all.metrics, 'the steady histograms are kept');
  assert.equal(
    mergeResults([d], []).result.all.metrics['http_req_duration']!.p99,
    sampleResult.all.metrics['http_req_duration']!.p99,
  );
  assert.throws(() => encodeShardDetailed(sampleResult, 100), /over the 100-byte ConfigMap bound/);
  assert.throws(() => decodeShard('bm90IGd6aXA=', 'ConfigMap x/y'), /^LoadTestInputError: ConfigMap x\/y: not a gzip/);
});

test('--start-at-from with the runner Role only: ready, waits for status.startAt, runs from it, publishes the shard', async () => {
  const name = 'lt-run';
  const kubeconfig = setUp(name);
  const out = join(tmp, 'out-run');
  const child = runArenaAsync(
    [
      'loadtest',
      'run',
      '-q',
      '--target',
      server.url,
      '--scenario-file',
      scenarioFile,
      '--rate',
      '50',
      '--duration',
      '2s',
      '--shard',
      '0/1',
      '--start-at-from',
      name,
      '--publish-configmap',
      `${name}-shard-0`,
      '--namespace',
      NS,
      '--kubeconfig',
      kubeconfig,
      '--out',
      out,
    ],
    { timeoutMs: 120_000 },
  );
  const ready = await waitFor(
    'the runner-ready annotation',
    () => cp.get(['configmap', `${name}-shard-0`, '-n', NS]).metadata.annotations?.[ANNOTATIONS.ready],
    60_000,
  );
  assert.ok(Number.isFinite(Date.parse(ready)), `RFC 3339: ${ready}`);
  // 2 s ahead: the runner polls once a second
  const startAt = new Date(Date.now() + 2000).toISOString();
  ok(
    cp.kubectl([
      'patch',
      'alt',
      name,
      '-n',
      NS,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { startAt } }),
    ]),
    'status.startAt',
  );
  const run = await child;
  assert.equal(run.code, 0, run.err);
  assert.match(run.err, /published the shard result to ConfigMap arena-run\/lt-run-shard-0/);
  const local = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadTestResult;
  assert.deepEqual(local.settings.shard, { index: 0, of: 1, startAt: Date.parse(startAt) });
  assert.ok(local.all.counters['http_reqs']! > 50, `requests: ${local.all.counters['http_reqs']}`);

  const cm = cp.get(['configmap', `${name}-shard-0`, '-n', NS]);
  const decoded = shardFromConfigMap(cm);
  assert.deepEqual(decoded, local);
  assert.equal(decoded.all.metrics['http_req_duration']!.p99, local.all.metrics['http_req_duration']!.p99);
  assert.equal(decoded.all.counters['http_reqs'], local.all.counters['http_reqs']);
  assert.equal(
    mergeResults([decoded], []).result.all.metrics['http_req_duration']!.p99,
    local.all.metrics['http_req_duration']!.p99,
  );
  const a = cm.metadata.annotations;
  assert.equal(a[ANNOTATIONS.ready], ready, 'the ready annotation is kept');
  assert.equal(a[ANNOTATIONS.index], '0');
  assert.equal(a[ANNOTATIONS.status], 'complete');
  assert.equal(a[ANNOTATIONS.encodedBytes], String(cm.binaryData[SHARD_KEY].length));
  assert.equal(a[ANNOTATIONS.secondHistograms], undefined);
});

test('no status.startAt within --start-deadline: exit 1 naming the ArenaLoadTest, nothing published', async () => {
  const name = 'lt-nostart';
  const kubeconfig = setUp(name);
  const t0 = Date.now();
  const run = await runArenaAsync(
    [
      'loadtest',
      'run',
      '-q',
      '--target',
      server.url,
      '--scenario-file',
      scenarioFile,
      '--rate',
      '50',
      '--duration',
      '1s',
      '--shard',
      '0/1',
      '--start-at-from',
      name,
      '--start-deadline',
      '2s',
      '--publish-configmap',
      `${name}-shard-0`,
      '--namespace',
      NS,
      '--kubeconfig',
      kubeconfig,
      '--out',
      join(tmp, 'out-nostart'),
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(run.code, 1, run.err);
  assert.ok(Date.now() - t0 >= 2000);
  const lines = run.err.trim().split('\n');
  assert.match(
    lines.at(-1)!,
    /^arena: --start-deadline: ArenaLoadTest arena-run\/lt-nostart had no status\.startAt within 2 s$/,
  );
  assert.doesNotMatch(run.err, /\n\s+at /);
  const cm = cp.get(['configmap', `${name}-shard-0`, '-n', NS]);
  assert.ok(cm.metadata.annotations?.[ANNOTATIONS.ready], 'it did mark itself ready');
  assert.equal(cm.binaryData, undefined, 'nothing published');
  // another ArenaLoadTest is not readable with the runner Role: refused at once, naming it
  const other = await runArenaAsync(
    [
      'loadtest',
      'run',
      '-q',
      '--target',
      server.url,
      '--scenario-file',
      scenarioFile,
      '--rate',
      '50',
      '--start-at-from',
      'lt-run',
      '--namespace',
      NS,
      '--kubeconfig',
      kubeconfig,
      '--out',
      join(tmp, 'out-other'),
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(other.code, 1, other.err);
  assert.match(other.err, /arena: --start-at-from: cannot read ArenaLoadTest arena-run\/lt-run: HTTP 403/);
});

test('distributed flags: bad combinations are refused with one line, exit 2 (before any load)', async () => {
  const base = ['loadtest', 'run', '--target', server.url, '--scenario-file', scenarioFile, '--rate', '5'];
  assertRefused(
    await runArenaAsync([...base, '--start-at', '0', '--start-at-from', 'x']),
    /--start-at or --start-at-from/,
  );
  assertRefused(
    await runArenaAsync([...base, '--start-deadline', '2s']),
    /--start-deadline: only with --start-at-from/,
  );
  assertRefused(await runArenaAsync([...base, '--namespace', 'a']), /--namespace: only with --start-at-from/);
  assertRefused(
    await runArenaAsync([...base, '--start-at-from', 'Bad_Name']),
    /--start-at-from: not a Kubernetes object name/,
  );
  assertRefused(
    await runArenaAsync([...base, '--publish-configmap', 'x', '--kubeconfig', join(tmp, 'missing')]),
    /--kubeconfig: cannot load/,
  );
});
