/**
 * Helpers of the operator benchmark (operator-bench.ts): the operator process
 * and its /metrics, bounded waits, a request pool, a restarting watch, and
 * memory read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { freePort } from '../../testing/net.js';
import { repoPath } from '../../testing/paths.js';
import { parseProm, total, type Sample } from './prom.js';

export const log = (msg: string) => process.stderr.write(`[bench-operator] ${msg}\n`);

/** `arena operator run` out of cluster, its metrics port and the tail of what it printed. */
export class OperatorProc {
  readonly tail: string[] = [];

  private constructor(
    readonly proc: ChildProcess,
    readonly metricsPort: number,
  ) {
    const keep = (d: Buffer) => {
      this.tail.push(...d.toString().split('\n').filter(Boolean));
      this.tail.splice(0, Math.max(0, this.tail.length - 40));
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    // BENCH_OPERATOR_LOG=FILE: the operator's whole log (at info level) in FILE, to see what a figure hides
    const file = process.env['BENCH_OPERATOR_LOG'];
    if (file) {
      const out = createWriteStream(file);
      proc.stdout!.pipe(out);
      proc.stderr!.pipe(out);
    }
  }

  /** Start it and wait (60 s at most) until /metrics answers. */
  static async start(kubeconfig: string, workers: number): Promise<OperatorProc> {
    const port = await freePort();
    const args = ['operator', 'run', '--kubeconfig', kubeconfig, '--metrics-bind-address', `127.0.0.1:${port}`];
    const level = process.env['BENCH_OPERATOR_LOG'] ? 'info' : 'warn';
    args.push('--health-probe-bind-address', '0', '--log-level', level, '--workers', String(workers));
    // --expose-gc and a SIGUSR2 handler (bench only): memory is read after a full GC, so the figures are
    // what the operator keeps, not garbage a GC had not collected yet.
    const gcOnSignal = `data:text/javascript,process.on('SIGUSR2', () => globalThis.gc())`;
    // BENCH_OPERATOR_NODE_OPTIONS: extra node flags for the operator only (e.g. --max-semi-space-size=2),
    // to measure a setting before the chart renders it.
    const extra = (process.env['BENCH_OPERATOR_NODE_OPTIONS'] ?? '').split(/\s+/).filter(Boolean);
    const node = ['--expose-gc', '--import', gcOnSignal, ...extra];
    const proc = spawn(process.execPath, [...node, repoPath('dist/cli/arena.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const op = new OperatorProc(proc, port);
    const alive = () => op.checkAlive();
    await waitUntil(
      'the operator to serve /metrics',
      () => op.scrape().then(() => true),
      Date.now() + 60_000,
      200,
      alive,
    );
    return op;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Throw (with the operator's last lines) when the process has exited. */
  checkAlive(): void {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null)
      throw new Error(`the operator exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.tail.join('\n')}`);
  }

  async scrape(): Promise<Sample[]> {
    this.checkAlive();
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return parseProm(await res.text());
  }

  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    return total(await this.scrape(), name, labels) ?? 0;
  }

  /** Requests the operator sent to the apiserver so far (informers' list/watch not counted). */
  requests(): Promise<number> {
    return this.value('arena_operator_kube_requests_total');
  }

  /** Wait until the request counter has not moved for `stillMs`. */
  async settle(deadline: number, stillMs = 3000): Promise<void> {
    let last = await this.requests();
    await waitUntil(
      `the operator's writes to settle (no request for ${stillMs / 1000} s)`,
      async () => {
        await sleep(stillMs);
        const now = await this.requests();
        const still = now === last;
        last = now;
        return still;
      },
      deadline,
      0,
      () => this.checkAlive(),
    );
  }

  /** SIGTERM this process (by its PID), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/**
 * Poll `fn` until it returns true. Throws naming `what` once `deadline` (epoch ms) has passed,
 * or at once when `check` throws (the operator died).
 */
export async function waitUntil(
  what: string,
  fn: () => boolean | Promise<boolean>,
  deadline: number,
  everyMs = 50,
  check: () => void = () => {},
): Promise<void> {
  let last: unknown;
  for (;;) {
    check();
    try {
      if (await fn()) return;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    if (everyMs) await sleep(everyMs);
  }
}

/** Run `fn` over `items` with at most `inFlight` at a time. */
export async function pool<T>(items: T[], inFlight: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
}

/**
 * Watch `path` with an informer, calling `onObject` on every add and update; the
 * informer is started again 1 s after an error (client-node's stops on one).
 */
export async function watch(
  kc: k8s.KubeConfig,
  path: string,
  list: () => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>,
  onObject: (o: k8s.KubernetesObject & { status?: any }) => void,
): Promise<() => Promise<void>> {
  const inf = k8s.makeInformer(kc, path, list);
  let stopped = false;
  inf.on('add', onObject);
  inf.on('update', onObject);
  inf.on('error', () => {
    if (!stopped) setTimeout(() => void inf.start().catch(() => {}), 1000);
  });
  await inf.start();
  return async () => {
    stopped = true;
    await inf.stop();
  };
}

const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const kib = (text: string, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);

/** PIDs of `pid` and its descendants (from /proc/<n>/stat's ppid). */
function tree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc'))
    if (/^\d+$/.test(d))
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

/** VmRSS and VmHWM (KiB) of `pid` and its descendants, summed, and how many processes that is. */
export function memory(pid: number): { rssKiB: number; hwmKiB: number; processes: number } {
  const pids = tree(pid);
  const texts = pids.map(status);
  return {
    rssKiB: texts.reduce((a, t) => a + kib(t, 'VmRSS'), 0),
    hwmKiB: texts.reduce((a, t) => a + kib(t, 'VmHWM'), 0),
    processes: pids.length,
  };
}

/** The PID of the process whose command line contains every one of `parts`, if any. */
export function findPid(parts: string[]): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (parts.every((p) => cmd.includes(p))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
