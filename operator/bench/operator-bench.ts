/**
 * Operator benchmark against the local control plane (`make bench-operator`), in levels
 * of ArenaDeployments (BENCH_LEVELS, default 240,1000,2000). At each level L:
 * a. bulk creates up to L - BENCH_SINGLE (16 requests in flight; at the first level the
 *    first 200 are created at once: the "200 at once" figure), timed to all children applied;
 * b. BENCH_SINGLE (default 40) sequential creates: apply -> all children applied (P50/P99),
 *    operator requests per create, and the deltas of the operator's queue-wait and
 *    work-duration histograms over them;
 * c. a no-op resync of all L (an annotation on each): operator requests (should be 0);
 * d. operator RSS and V8 heap, and the control plane's RSS, after 5 s idle.
 * Then 50 ArenaLoadTests (BENCH_LOADTESTS) held in Starting: time to reconcile, memory per test.
 *
 * Every ArenaDeployment is created in process with @kubernetes/client-node (server-side
 * apply), so the latency no longer includes starting kubectl as the figures before did.
 * "All children applied" is when the HorizontalPodAutoscaler, the last of the 11 objects
 * render() emits, arrives in a watch. Markdown tables on stdout, progress on stderr, raw
 * figures in out/bench-operator/<time>.json. Not a test: the numbers depend on the machine.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ControlPlane, TESTENV } from '../../testing/control-plane.js';
import { treeCpuSeconds } from '../../loadtest/stack/procs.js';
import { repoPath } from '../../testing/paths.js';
import { delta, histogram, meanP99, total, type Sample } from './prom.js';
import { findPid, log, memory, OperatorProc, pool, waitUntil, watch } from './support.js';

const env = (name: string, dflt: string) => process.env[name] ?? dflt;
const LEVELS = env('BENCH_LEVELS', '240,1000,2000').split(',').map(Number);
const SINGLE = Number(env('BENCH_SINGLE', '40'));
const LOADTESTS = Number(env('BENCH_LOADTESTS', '50'));
const WORKERS = Number(env('BENCH_WORKERS', '4'));
const LEVEL_TIMEOUT_MS = Number(env('BENCH_LEVEL_TIMEOUT_S', '900')) * 1000;
const AT_ONCE = 200;
const IN_FLIGHT = 16;
const CHILDREN = 11;
const NS = 'bench';
const GROUP = 'arena.dev';
const VERSION = 'v1alpha1';
const AD = { controller: 'arenadeployment' };

interface Ctx {
  cp: ControlPlane;
  op: OperatorProc;
  objects: k8s.KubernetesObjectApi;
  /** ArenaDeployment name -> when its HPA arrived (performance.now()). */
  hpaSeen: Map<string, number>;
  /** ArenaLoadTest name -> its last phase, and when it was first Starting. */
  ltPhase: Map<string, string>;
  ltStarting: Map<string, number>;
  /** Every ArenaDeployment created so far. */
  names: string[];
}

interface Bulk {
  count: number;
  seconds: number;
  requestsSeconds: number;
  objectsPerSecond: number;
}
type Stat = { mean: number; p99: number; count: number } | undefined;
interface Memory {
  /** VmRSS after 5 s idle, before the forced GC (what the kernel charged at that moment). */
  operatorIdleRssMiB: number;
  /** VmRSS after a full GC. */
  operatorRssMiB: number;
  operatorPeakRssMiB: number;
  operatorProcesses: number;
  heapUsedMiB: number | undefined;
  /** V8 heap committed (used + free pages V8 keeps), and memory outside it that V8 knows of (Buffers). */
  heapTotalMiB: number | undefined;
  externalMiB: number | undefined;
  controlPlaneRssMiB: number | undefined;
}
interface Level {
  level: number;
  atOnce?: Bulk;
  bulk?: Bulk;
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  requestsPerCreate: number[];
  queueWait: Stat;
  work: Stat;
  reconcileDuration: Stat;
  /** Per reconcile over the sequential creates: the operator process's CPU, and the time it waited for the apiserver (ms). */
  perReconcile: { operatorCpuMs: number; apiserverMs: number; reconciles: number } | undefined;
  noop: { requests: number; reconciles: number; seconds: number };
  memory: Memory;
  /**
   * Over the sequential creates: keys added to the ArenaDeployment queue by source
   * (arena_operator_enqueued_total), reconcile errors, and informer restarts by resource and reason.
   */
  enqueuedBySource: Record<string, number>;
  reconcileErrors: number;
  watchRestarts: Record<string, number>;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};
const mib = (bytes: number) => bytes / 2 ** 20;
const num = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The levels must leave room for BENCH_SINGLE sequential creates above the previous one. */
function checkLevels(): void {
  let prev = 0;
  for (const l of LEVELS) {
    if (!Number.isInteger(l) || l - SINGLE < prev)
      throw new Error(`BENCH_LEVELS=${LEVELS.join(',')}: each level must be an integer >= previous + BENCH_SINGLE`);
    prev = l;
  }
}

const sample = parse(readFileSync(repoPath('samples/debate-arena-holds.yaml'), 'utf8'));
const arenaDeployment = (name: string): k8s.KubernetesObject => ({ ...sample, metadata: { name, namespace: NS } });
const loadTest = (name: string): k8s.KubernetesObject & { spec: unknown } => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'ArenaLoadTest',
  metadata: { name, namespace: NS },
  spec: {
    target: { url: 'http://127.0.0.1:9/' },
    scenario: { bundled: 'read' },
    load: { rate: 10, duration: '10s' },
    parallelism: 2,
    runner: { image: 'ghcr.io/example/arena-operator:0.1.0', startDeadlineSeconds: 3600 },
  },
});

/** Server-side apply, as a client would (field manager arena-bench). */
const apply = (ctx: Ctx, obj: k8s.KubernetesObject) =>
  ctx.objects.patch(obj, undefined, undefined, 'arena-bench', true, k8s.PatchStrategy.ServerSideApply);

/** CRDs, namespace, operator, and the watches on HPAs and ArenaLoadTests. */
async function setup(cp: ControlPlane, ctx: Partial<Ctx>): Promise<() => Promise<void>> {
  const kubectl = (args: string[]) => {
    const r = cp.kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.err}`);
  };
  kubectl(['apply', '-f', repoPath('crds/')]);
  for (const crd of ['arenadeployments', 'arenaloadtests'])
    kubectl(['wait', '--for=condition=Established', `crd/${crd}.${GROUP}`, '--timeout=60s']);
  kubectl(['create', 'namespace', NS]);
  ctx.op = await OperatorProc.start(cp.kubeconfig, WORKERS);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  ctx.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const hpas = kc.makeApiClient(k8s.AutoscalingV2Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const [hpaSeen, ltPhase, ltStarting] = [new Map<string, number>(), new Map<string, string>(), new Map()];
  Object.assign(ctx, { hpaSeen, ltPhase, ltStarting, names: [] });
  const stopHpas = await watch(
    kc,
    `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers`,
    () => hpas.listNamespacedHorizontalPodAutoscaler({ namespace: NS }),
    (o) => {
      const name = o.metadata!.name!.replace(/-api$/, '');
      if (!hpaSeen.has(name)) hpaSeen.set(name, performance.now());
    },
  );
  const stopLts = await watch(
    kc,
    `/apis/${GROUP}/${VERSION}/namespaces/${NS}/arenaloadtests`,
    () =>
      custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: 'arenaloadtests' }),
    (o) => {
      const phase = String(o.status?.phase ?? '');
      ltPhase.set(o.metadata!.name!, phase);
      if (phase === 'Starting' && !ltStarting.has(o.metadata!.name!)) ltStarting.set(o.metadata!.name!, Date.now());
    },
  );
  return async () => Promise.all([stopHpas(), stopLts()]).then(() => undefined);
}

/** Create `count` more ArenaDeployments (16 in flight) and wait until each has all its children. */
async function bulk(ctx: Ctx, count: number, deadline: number, what: string): Promise<Bulk> {
  const names = Array.from({ length: count }, (_, i) => `bulk-${ctx.names.length + i}`);
  ctx.names.push(...names);
  const t0 = performance.now();
  await pool(names, IN_FLIGHT, (n) => apply(ctx, arenaDeployment(n)));
  const requestsSeconds = (performance.now() - t0) / 1000;
  const check = () => ctx.op.checkAlive();
  await waitUntil(
    `${what}: all children of ${count} ArenaDeployments`,
    () => names.every((n) => ctx.hpaSeen.has(n)),
    deadline,
    20,
    check,
  );
  const seconds = (performance.now() - t0) / 1000;
  const r = { count, seconds, requestsSeconds, objectsPerSecond: (count * CHILDREN) / seconds };
  log(
    `${what}: ${count} created in ${num(seconds, 1)} s (${num(r.objectsPerSecond)} objects/s; requests done in ${num(requestsSeconds, 1)} s)`,
  );
  return r;
}

const QUEUE = 'arena_operator_workqueue_queue_duration_seconds';
const WORK = 'arena_operator_workqueue_work_duration_seconds';
const RECONCILE = 'arena_operator_reconcile_duration_seconds';
const KUBE = 'arena_operator_kube_request_duration_seconds';
const stat = (before: Sample[], after: Sample[], name: string): Stat => {
  const h = histogram(after, name, AD);
  return h && meanP99(delta(histogram(before, name, AD), h));
};

/**
 * The operator's own share of a reconcile: its process CPU per reconcile, and the apiserver's answer time
 * per reconcile (arena_operator_kube_request_duration_seconds, every verb), over the same window.
 */
function perReconcile(before: Sample[], after: Sample[], cpuSeconds: number): Level['perReconcile'] {
  const reconciles = (total(after, `${WORK}_count`, AD) ?? 0) - (total(before, `${WORK}_count`, AD) ?? 0);
  const api = total(after, `${KUBE}_sum`);
  if (reconciles <= 0 || api === undefined) return undefined;
  return {
    operatorCpuMs: (1000 * cpuSeconds) / reconciles,
    apiserverMs: (1000 * (api - (total(before, `${KUBE}_sum`) ?? 0))) / reconciles,
    reconciles,
  };
}

/** The increase of counter `name` between two scrapes, by a key of its labels (only where it grew). */
function deltaBy(
  before: Sample[],
  after: Sample[],
  name: string,
  key: (labels: Record<string, string>) => string,
  only: Record<string, string> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  const keep = (x: Sample) => x.name === name && Object.entries(only).every(([k, v]) => x.labels[k] === v);
  for (const a of after.filter(keep)) {
    const b = before.find((x) => keep(x) && JSON.stringify(x.labels) === JSON.stringify(a.labels))?.value ?? 0;
    if (a.value > b) out[key(a.labels)] = (out[key(a.labels)] ?? 0) + a.value - b;
  }
  return out;
}

/** BENCH_SINGLE sequential creates, each timed from the request to the HPA's arrival. */
async function sequential(ctx: Ctx, level: number, deadline: number) {
  await ctx.op.settle(deadline);
  const before = await ctx.op.scrape();
  const cpu0 = treeCpuSeconds(ctx.op.pid);
  const latenciesMs: number[] = [];
  const requestsPerCreate: number[] = [];
  for (let i = 0; i < SINGLE; i++) {
    const name = `single-${level}-${i}`;
    ctx.names.push(name);
    const reqs = await ctx.op.requests();
    const t0 = performance.now();
    await apply(ctx, arenaDeployment(name));
    await waitUntil(
      `the children of ${name}`,
      () => ctx.hpaSeen.has(name),
      deadline,
      2,
      () => ctx.op.checkAlive(),
    );
    latenciesMs.push(Math.round(ctx.hpaSeen.get(name)! - t0));
    await sleep(300); // let status and events settle before counting
    requestsPerCreate.push((await ctx.op.requests()) - reqs);
  }
  const after = await ctx.op.scrape();
  const cpu = treeCpuSeconds(ctx.op.pid) - cpu0;
  const r = {
    latenciesMs,
    p50Ms: pct(latenciesMs, 50),
    p99Ms: pct(latenciesMs, 99),
    requestsPerCreate,
    queueWait: stat(before, after, QUEUE),
    work: stat(before, after, WORK),
    reconcileDuration: stat(before, after, RECONCILE),
    perReconcile: perReconcile(before, after, cpu),
    enqueuedBySource: deltaBy(before, after, 'arena_operator_enqueued_total', (l) => l['source'] ?? '?', {
      controller: 'arenadeployment',
    }),
    reconcileErrors:
      (total(after, 'arena_operator_reconcile_errors_total') ?? 0) -
      (total(before, 'arena_operator_reconcile_errors_total') ?? 0),
    watchRestarts: deltaBy(
      before,
      after,
      'arena_operator_watch_restarts_total',
      (l) => `${l['resource']}/${l['reason']}`,
    ),
  };
  log(`level ${level}: ${SINGLE} sequential creates, apply -> children P50 ${r.p50Ms} ms, P99 ${r.p99Ms} ms`);
  return r;
}

/** Touch an annotation on every ArenaDeployment once writes settled; count the operator's requests. */
async function noopResync(ctx: Ctx, level: number, deadline: number): Promise<Level['noop']> {
  await ctx.op.settle(deadline);
  const reqs = await ctx.op.requests();
  const reconciles = await ctx.op.value('arena_operator_reconcile_total', AD);
  const t0 = performance.now();
  await pool(ctx.names, IN_FLIGHT, (name) =>
    ctx.objects.patch(
      {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ArenaDeployment',
        metadata: { name, namespace: NS, annotations: { 'arena.dev/touch': String(level) } },
      },
      undefined,
      undefined,
      'arena-bench',
      undefined,
      k8s.PatchStrategy.MergePatch,
    ),
  );
  let now = reconciles;
  await waitUntil(
    `${ctx.names.length} reconciles after touching every ArenaDeployment (the operator must reconcile on annotation changes)`,
    async () => (now = await ctx.op.value('arena_operator_reconcile_total', AD)) >= reconciles + ctx.names.length,
    deadline,
    100,
    () => ctx.op.checkAlive(),
  );
  const seconds = (performance.now() - t0) / 1000;
  await sleep(1000);
  const r = { requests: (await ctx.op.requests()) - reqs, reconciles: now - reconciles, seconds };
  log(`level ${level}: no-op resync, ${r.reconciles} reconciles in ${num(seconds, 1)} s, ${r.requests} requests`);
  return r;
}

/** Memory after 5 s idle and a full GC: the operator (and any child it started), its V8 heap, the control plane. */
async function snapshot(ctx: Ctx): Promise<Memory> {
  await sleep(5000);
  const idle = memory(ctx.op.pid);
  process.kill(ctx.op.pid, 'SIGUSR2'); // a full GC (support.ts)
  await sleep(1000);
  const op = memory(ctx.op.pid);
  const samples = await ctx.op.scrape();
  const heap = total(samples, 'arena_operator_nodejs_heap_size_used_bytes');
  const heapTotal = total(samples, 'arena_operator_nodejs_heap_size_total_bytes');
  const external = total(samples, 'arena_operator_nodejs_external_memory_bytes');
  const cpPid = findPid([TESTENV, ctx.cp.dir]);
  return {
    operatorIdleRssMiB: idle.rssKiB / 1024,
    operatorRssMiB: op.rssKiB / 1024,
    operatorPeakRssMiB: op.hwmKiB / 1024,
    operatorProcesses: op.processes,
    heapUsedMiB: heap === undefined ? undefined : mib(heap),
    heapTotalMiB: heapTotal === undefined ? undefined : mib(heapTotal),
    externalMiB: external === undefined ? undefined : mib(external),
    controlPlaneRssMiB: cpPid === undefined ? undefined : memory(cpPid).rssKiB / 1024,
  };
}

async function runLevel(ctx: Ctx, level: number, first: boolean): Promise<Level> {
  const deadline = Date.now() + LEVEL_TIMEOUT_MS;
  let need = level - SINGLE - ctx.names.length;
  log(`level ${level}: ${ctx.names.length} ArenaDeployments so far; ${need} bulk creates, then ${SINGLE} sequential`);
  const atOnce =
    first && need > 0 ? await bulk(ctx, Math.min(AT_ONCE, need), deadline, `level ${level}, at once`) : undefined;
  need -= atOnce?.count ?? 0;
  const more = need > 0 ? await bulk(ctx, need, deadline, `level ${level}`) : undefined;
  const seq = await sequential(ctx, level, deadline);
  const noop = await noopResync(ctx, level, deadline);
  const mem = await snapshot(ctx);
  log(
    `level ${level}: operator RSS ${num(mem.operatorIdleRssMiB)} MiB idle, ${num(mem.operatorRssMiB)} MiB after a GC, heap used ${mem.heapUsedMiB === undefined ? '-' : num(mem.heapUsedMiB)} MiB of ${num(mem.heapTotalMiB ?? NaN)} committed, external ${num(mem.externalMiB ?? NaN)} MiB`,
  );
  return { level, atOnce, bulk: more, ...seq, noop, memory: mem };
}

/** LOADTESTS ArenaLoadTests that stay Starting (no runner can start): time to reconcile, memory per test. */
async function loadTests(ctx: Ctx, before: Memory) {
  const deadline = Date.now() + LEVEL_TIMEOUT_MS;
  const names = Array.from({ length: LOADTESTS }, (_, i) => `lt-${i}`);
  const reqs = await ctx.op.requests();
  const t0 = Date.now();
  await pool(names, IN_FLIGHT, (n) => apply(ctx, loadTest(n)));
  const failed = () => names.filter((n) => ctx.ltPhase.get(n) === 'Failed');
  await waitUntil(
    `${LOADTESTS} ArenaLoadTests in phase Starting`,
    () => names.every((n) => ctx.ltStarting.has(n)),
    deadline,
    50,
    () => {
      ctx.op.checkAlive();
      if (failed().length) throw new Error(`ArenaLoadTests failed: ${failed().join(', ')}`);
    },
  );
  const seconds = (Math.max(...names.map((n) => ctx.ltStarting.get(n)!)) - t0) / 1000;
  log(`${LOADTESTS} ArenaLoadTests Starting in ${num(seconds, 1)} s`);
  await ctx.op.settle(deadline);
  const requests = (await ctx.op.requests()) - reqs;
  const mem = await snapshot(ctx);
  const perTestKiB = ((mem.operatorRssMiB - before.operatorRssMiB) * 1024) / LOADTESTS;
  return {
    count: LOADTESTS,
    seconds,
    requestsPerLoadTest: requests / LOADTESTS,
    memory: mem,
    rssDeltaPerTestKiB: perTestKiB,
  };
}

const ms = (s: Stat) => (s ? `${num(s.mean * 1000, 1)} ms / ${num(s.p99 * 1000, 1)} ms (${s.count} reconciles)` : '-');
const bulkRow = (what: string, b: Bulk | undefined) =>
  b
    ? [
        `| ${what}: ${num(b.count)} ArenaDeployments -> all children applied | ${num(b.seconds, 1)} s (${num(b.objectsPerSecond)} objects/s) |`,
      ]
    : [];

function levelTable(l: Level): string[] {
  const m = l.memory;
  return [
    `### ${num(l.level)} ArenaDeployments (${num(l.level * CHILDREN)} children)`,
    '',
    '| measure | value |',
    '|---|---|',
    ...bulkRow('at once (16 requests in flight)', l.atOnce),
    ...bulkRow('bulk (16 requests in flight)', l.bulk),
    `| apply -> all ${CHILDREN} children applied, P50 (${SINGLE} sequential creates) | ${l.p50Ms} ms |`,
    `| apply -> all ${CHILDREN} children applied, P99 | ${l.p99Ms} ms |`,
    `| queue wait (workqueue_queue_duration), mean / P99 over the sequential creates | ${ms(l.queueWait)} |`,
    `| reconcile work (workqueue_work_duration), mean / P99 | ${ms(l.work)} |`,
    `| reconcile duration (reconcile_duration_seconds), mean / P99 | ${ms(l.reconcileDuration)} |`,
    `| keys enqueued during the sequential creates, by source (enqueued_total) | ${bySource(l.enqueuedBySource)} |`,
    `| reconcile errors / informer restarts during the sequential creates | ${l.reconcileErrors} / ${bySource(l.watchRestarts)} |`,
    ...(l.perReconcile
      ? [
          `| per reconcile: operator CPU / waiting for the apiserver (kube_request_duration) | ${num(l.perReconcile.operatorCpuMs, 1)} ms / ${num(l.perReconcile.apiserverMs, 1)} ms |`,
        ]
      : []),
    `| operator requests per create | ${pct(l.requestsPerCreate, 50)} (min ${Math.min(...l.requestsPerCreate)}, max ${Math.max(...l.requestsPerCreate)}) |`,
    `| operator requests for a no-op resync of ${num(l.level)} ArenaDeployments | ${l.noop.requests} (${num(l.noop.reconciles)} reconciles in ${num(l.noop.seconds, 1)} s) |`,
    `| operator RSS after 5 s idle / after a full GC (peak) | ${num(m.operatorIdleRssMiB)} / ${num(m.operatorRssMiB)} MiB (${num(m.operatorPeakRssMiB)} MiB)${m.operatorProcesses > 1 ? `, ${m.operatorProcesses} processes` : ''} |`,
    `| operator V8 heap used / committed after the GC; external (Buffers) | ${m.heapUsedMiB === undefined ? '-' : `${num(m.heapUsedMiB)} / ${num(m.heapTotalMiB ?? NaN)} MiB; ${num(m.externalMiB ?? NaN)} MiB`} |`,
    `| control plane RSS (arena-testenv: etcd + apiserver + controller-manager) | ${m.controlPlaneRssMiB === undefined ? '-' : `${num(m.controlPlaneRssMiB)} MiB`} |`,
    '',
  ];
}

const bySource = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${num(v)}`)
    .join(', ') || 'none';

function report(levels: Level[], lt: Awaited<ReturnType<typeof loadTests>> | undefined, started: Date): void {
  const lines = ['# Operator benchmark', ''];
  for (const l of levels) lines.push(...levelTable(l));
  if (lt) {
    const last = levels.at(-1)!;
    lines.push(
      `### ${lt.count} ArenaLoadTests (after ${num(last.level)} ArenaDeployments)`,
      '',
      '| measure | value |',
      '|---|---|',
    );
    lines.push(`| created -> all in phase Starting | ${num(lt.seconds, 1)} s |`);
    lines.push(`| operator requests per ArenaLoadTest | ${num(lt.requestsPerLoadTest, 1)} |`);
    lines.push(
      `| operator RSS after (5 s idle) | ${num(lt.memory.operatorRssMiB)} MiB (${num(lt.rssDeltaPerTestKiB)} KiB per ArenaLoadTest) |`,
    );
    lines.push(
      `| operator V8 heap used | ${lt.memory.heapUsedMiB === undefined ? '-' : `${num(lt.memory.heapUsedMiB)} MiB`} |`,
      '',
    );
  }
  lines.push(
    'Creates are server-side applies sent in process (@kubernetes/client-node): unlike the figures before, the apply latency does not include starting kubectl.',
    '',
    `${started.toISOString().slice(0, 10)}, ${cpus().length} cores, ${num(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${WORKERS} workers`,
  );
  console.log(lines.join('\n'));
  const stamp = started
    .toISOString()
    .replace(/:/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const file = repoPath(`out/bench-operator/${stamp}.json`);
  mkdirSync(repoPath('out/bench-operator'), { recursive: true });
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version };
  writeFileSync(
    file,
    JSON.stringify({ started, machine, workers: WORKERS, single: SINGLE, levels, loadTests: lt }, null, 2),
  );
  log(`raw figures: ${file}`);
}

async function main(): Promise<void> {
  checkLevels();
  const started = new Date();
  const cp = new ControlPlane('arena-bench-');
  const ctx: Partial<Ctx> = { cp };
  let stopWatches: (() => Promise<void>) | undefined;
  try {
    await cp.start();
    log(`control plane up (${cp.dir}); levels ${LEVELS.join(', ')}, ${SINGLE} sequential creates each`);
    stopWatches = await setup(cp, ctx);
    const levels: Level[] = [];
    for (const [i, l] of LEVELS.entries()) levels.push(await runLevel(ctx as Ctx, l, i === 0));
    const lt = LOADTESTS > 0 ? await loadTests(ctx as Ctx, levels.at(-1)!.memory) : undefined;
    report(levels, lt, started);
  } finally {
    await stopWatches?.().catch(() => {});
    await ctx.op?.stop();
    await cp.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[bench-operator] failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
