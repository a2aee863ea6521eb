/**
 * Operator benchmark against the local control plane (`make bench-operator`):
 * - latency from `kubectl apply` of one ArenaDeployment to all its children
 *   applied (p50/p99 over sequential creates), watched with an informer;
 * - apiserver requests the operator sends per create and per no-op resync
 *   (its own counter, arena_operator_kube_requests_total);
 * - time to reconcile N ArenaDeployments applied at once;
 * - the operator's RSS after that.
 * Prints a Markdown table to stdout. Not a test: numbers depend on the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { freePort } from '../../testing/net.js';
import { ControlPlane } from '../../testing/control-plane.js';

const SINGLE = Number(process.env['BENCH_SINGLE'] ?? 40);
const MANY = Number(process.env['BENCH_MANY'] ?? 200);
const NS = 'bench';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function main(): Promise<void> {
  const cp = new ControlPlane('arena-bench-');
  const procs: ChildProcess[] = [];
  try {
    await cp.start();
    const kubeconfig = cp.kubeconfig;
    const kubectl = (args: string[], input?: string) => {
      const r = cp.kubectl(args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.err}`);
      return r.out;
    };
    kubectl(['apply', '-f', repoPath('crds/')]);
    kubectl(['wait', '--for=condition=Established', 'crd/arenadeployments.arena.dev']);
    kubectl(['create', 'namespace', NS]);

    const metricsPort = await freePort();
    const op = spawn(
      process.execPath,
      [
        repoPath('dist/cli/arena.js'),
        'operator',
        'run',
        '--kubeconfig',
        kubeconfig,
        '--metrics-bind-address',
        `127.0.0.1:${metricsPort}`,
        '--health-probe-bind-address',
        '0',
        '--log-level',
        'warn',
      ],
      { stdio: 'ignore' },
    );
    procs.push(op);
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
    };
    for (;;) {
      try {
        await metric('arena_operator_reconcile_total');
        break;
      } catch {
        await sleep(200);
      }
    }

    // Watch HPAs: the last child render() emits, so its arrival means every child was applied.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const appsApi = kc.makeApiClient(k8s.AutoscalingV2Api);
    const seen = new Map<string, number>();
    const inf = k8s.makeInformer(kc, `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers`, () =>
      appsApi.listNamespacedHorizontalPodAutoscaler({ namespace: NS }),
    );
    inf.on('add', (o) => seen.set(o.metadata!.name!.replace(/-api$/, ''), Date.now()));
    await inf.start();

    const sample = parse(readFileSync(repoPath('samples/debate-arena-holds.yaml'), 'utf8'));
    const doc = (name: string) => stringify({ ...sample, metadata: { name, namespace: NS } });

    // 1. sequential creates
    const latencies: number[] = [];
    const perCreate: number[] = [];
    for (let i = 0; i < SINGLE; i++) {
      const name = `single-${i}`;
      const before = await metric('arena_operator_kube_requests_total');
      const t0 = Date.now();
      kubectl(['apply', '-f', '-'], doc(name));
      while (!seen.has(name)) await sleep(2);
      latencies.push(seen.get(name)! - t0);
      await sleep(300); // let status and events settle before counting
      perCreate.push((await metric('arena_operator_kube_requests_total')) - before);
    }

    // 2. no-op resync: once writes have settled (status changes from the Deployment controller
    //    are real changes), touch an annotation of each ArenaDeployment to reconcile all of them.
    let settled = await metric('arena_operator_kube_requests_total');
    for (;;) {
      await sleep(3000);
      const now = await metric('arena_operator_kube_requests_total');
      if (now === settled) break;
      settled = now;
    }
    const beforeNoop = await metric('arena_operator_kube_requests_total');
    const reconcilesBefore = await metric('arena_operator_reconcile_total');
    kubectl(['annotate', '-n', NS, 'arena', '--all', 'arena.dev/touch=1', '--overwrite']);
    while ((await metric('arena_operator_reconcile_total')) < reconcilesBefore + SINGLE) await sleep(50);
    await sleep(1000);
    const noopRequests = (await metric('arena_operator_kube_requests_total')) - beforeNoop;

    // 3. many at once
    const many = Array.from({ length: MANY }, (_, i) => doc(`many-${i}`)).join('---\n');
    const tMany = Date.now();
    kubectl(['apply', '-f', '-'], many);
    while ([...seen.keys()].filter((k) => k.startsWith('many-')).length < MANY) await sleep(20);
    const manyMs = Date.now() - tMany;
    await sleep(2000);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${op.pid}/status`, 'utf8'))?.[1] ?? 0);
    await inf.stop();

    const date = new Date().toISOString().slice(0, 10);
    console.log(`| measure | value |`);
    console.log(`|---|---|`);
    console.log(`| apply -> all 11 children applied, p50 (${SINGLE} sequential creates) | ${pct(latencies, 50)} ms |`);
    console.log(`| apply -> all 11 children applied, p99 | ${pct(latencies, 99)} ms |`);
    console.log(
      `| operator requests per create (11 applies + status + events) | ${pct(perCreate, 50)} (min ${Math.min(...perCreate)}, max ${Math.max(...perCreate)}) |`,
    );
    console.log(`| operator requests for a no-op resync of ${SINGLE} ArenaDeployments | ${noopRequests} |`);
    console.log(
      `| ${MANY} ArenaDeployments applied at once -> all children applied | ${(manyMs / 1000).toFixed(1)} s (${((MANY * 11) / (manyMs / 1000)).toFixed(0)} objects/s) |`,
    );
    console.log(`| operator RSS after ${SINGLE + MANY} ArenaDeployments | ${(rssKb / 1024).toFixed(0)} MiB |`);
    console.log(
      `\n${date}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, 4 workers`,
    );
  } finally {
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await sleep(1000);
    await cp.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
