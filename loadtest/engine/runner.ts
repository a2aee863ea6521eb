/**
 * The engine's main-thread side: starts the worker threads, gives them one
 * common start time, merges what they report each second (histograms added
 * exactly, counters summed) into the time series, and their final reports
 * into the steady-phase figures. It also watches the process itself each
 * second: CPU (all threads), RSS, the main thread's event-loop delay.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { phaseAt, type PhaseName } from './arrivals.js';
import type { RunConfig } from './config.js';
import type { FinalReport, SecondReport } from './executor.js';
import { encode, histogramOf, mergeEncoded, newHistogram, percentilesOf, type Percentiles } from './histogram.js';
import {
  addCounters,
  addFailures,
  TRENDS,
  zeroCounters,
  type Counters,
  type MetricData,
  type SecondData,
  type TrendName,
} from './metrics.js';

/** A trend of one second: exact percentiles of its samples (nearest rank), and its HDR histogram encoded when kept. */
export type SecondTrend = Percentiles & { hdr?: string };

/** One scenario (or all together) in one second. */
export interface SecondMetrics {
  trends: Partial<Record<TrendName, SecondTrend>>;
  counters: Counters;
  failures: Record<string, number>;
}

/** One second of the run, merged over the workers. */
export interface SecondPoint {
  /** Second index k: [k, k+1) s after the start. */
  t: number;
  phase: PhaseName;
  scenarios: Record<string, SecondMetrics>;
  all: SecondMetrics;
  inFlight: number;
  maxInFlight: number;
  started: number;
  sockets: number;
  /** Worst worker's event-loop delay in the second (P99, max), ms; the main thread's separately. */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  mainLoopLagP99Ms: number;
  /** Process CPU (all threads) in the second, seconds, and RSS at its end, bytes. */
  cpuSeconds: number;
  rssBytes: number;
}

/** The steady phase of one scenario (or all): encoded histograms, counters, failures. */
export type PhaseData = MetricData;

/** What the engine returns. */
export interface EngineOutcome {
  /** The common start, epoch ms. */
  startAt: number;
  endAt: number;
  seconds: SecondPoint[];
  steady: Record<string, PhaseData>;
  steadyAll: PhaseData;
  /** Counters over every phase, per scenario. */
  totals: Record<string, Counters>;
  stoppedEarly: boolean;
  /** Event-loop delay over the steady phase: the worst worker, ms. */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  /** Process CPU over the whole run, s, and the peak RSS seen, bytes. */
  cpuSeconds: number;
  peakRssBytes: number;
}

export interface EngineHooks {
  /** Called once per merged second, in order. */
  onSecond?: (p: SecondPoint) => void;
  /** Called once the common start time is set (epoch ms). */
  onStart?: (startAt: number) => void;
  /** Aborting stops arrivals; in-flight iterations get `stopGraceMs`. */
  signal?: AbortSignal;
  stopGraceMs?: number;
}

/** Merge several scenarios' (or workers') data: encoded histograms added, counters and failures summed. */
export function mergeData(parts: readonly MetricData[]): MetricData {
  const trends: MetricData['trends'] = {};
  for (const t of TRENDS) {
    const hs = parts.flatMap((p) => (p.trends[t] ? [p.trends[t]!] : []));
    if (hs.length === 1) trends[t] = hs[0]!;
    else if (hs.length > 1) trends[t] = encode(mergeEncoded(hs));
  }
  return { trends, ...sumCounts(parts) };
}

/** Counters and failures of several parts, summed. */
function sumCounts(
  parts: readonly Pick<MetricData, 'counters' | 'failures'>[],
): Pick<MetricData, 'counters' | 'failures'> {
  const counters = zeroCounters();
  const failures: Record<string, number> = {};
  for (const p of parts) {
    addCounters(counters, p.counters);
    addFailures(failures, p.failures);
  }
  return { counters, failures };
}

/** Concatenate sample arrays. */
function concat(arrays: readonly Float64Array[]): Float64Array {
  if (arrays.length === 1) return arrays[0]!;
  const out = new Float64Array(arrays.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Merge the same second of several workers (or scenarios): samples concatenated, counters and failures summed. */
export function mergeSecond(parts: readonly SecondData[]): SecondData {
  const trends: SecondData['trends'] = {};
  for (const t of TRENDS) {
    const xs = parts.flatMap((p) => (p.trends[t] ? [p.trends[t]!] : []));
    if (xs.length > 0) trends[t] = concat(xs);
  }
  return { trends, ...sumCounts(parts) };
}

const scratch = newHistogram();

/** Summarise one second: exact percentiles of the samples, and their encoded histogram when kept. */
function secondMetrics(d: SecondData, keep: boolean): SecondMetrics {
  const trends: SecondMetrics['trends'] = {};
  for (const [t, values] of Object.entries(d.trends) as [TrendName, Float64Array][]) {
    const hdr = keep ? encode(histogramOf(values, scratch)) : undefined;
    const pc = percentilesOf(values);
    trends[t] = hdr ? { ...pc, hdr } : pc;
  }
  return { trends, counters: d.counters, failures: d.failures };
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

/**
 * Run the load: `config.workers` threads, each with its share of the arrivals
 * or VUs. Resolves when every worker is done.
 * @throws Error when a worker fails (an engine bug): the others are terminated.
 */
/**
 * Merges what the workers report each second into one SecondPoint per
 * second, in order, once every worker has reported that second; watches the
 * process (CPU of all threads, RSS, the main thread's event-loop delay).
 */
class SecondMerger {
  private readonly pending = new Map<number, SecondReport[]>();
  readonly seconds: SecondPoint[] = [];
  private readonly mainLoop = monitorEventLoopDelay({ resolution: 10 });
  private cpuPrev = process.cpuUsage();
  readonly cpu0 = this.cpuPrev;
  peakRss = process.memoryUsage.rss();
  private next = 0;

  constructor(
    private readonly config: RunConfig,
    private readonly onSecond: ((p: SecondPoint) => void) | undefined,
  ) {
    this.mainLoop.enable();
  }

  /** One worker's report of one second. */
  add(r: SecondReport): void {
    const list = this.pending.get(r.sec) ?? [];
    list.push(r);
    this.pending.set(r.sec, list);
    this.emitReady();
  }

  /** At the end: seconds some worker did not report (its last, partial second) are merged with what there is. */
  flush(): void {
    const n = this.config.workers;
    for (const [sec, list] of [...this.pending.entries()].sort((a, b) => a[0] - b[0])) {
      const names = Object.keys(list[0]!.scenarios);
      const empty = Object.fromEntries(names.map((k) => [k, { trends: {}, counters: zeroCounters(), failures: {} }]));
      while (list.length < n)
        list.push({ ...list[0]!, scenarios: empty, inFlight: 0, maxInFlight: 0, started: 0, sockets: 0 });
      if (sec === this.next) this.emitReady();
    }
    this.mainLoop.disable();
  }

  private emitReady(): void {
    const n = this.config.workers;
    while (this.pending.get(this.next)?.length === n) {
      const reports = this.pending.get(this.next)!;
      this.pending.delete(this.next);
      const p = this.point(this.next, reports);
      this.seconds.push(p);
      this.next++;
      this.onSecond?.(p);
    }
  }

  private point(t: number, reports: SecondReport[]): SecondPoint {
    const keep = this.config.keepSecondHistograms;
    const scenarios: Record<string, SecondMetrics> = {};
    const merged: SecondData[] = [];
    for (const name of Object.keys(reports[0]!.scenarios)) {
      const d = mergeSecond(reports.map((r) => r.scenarios[name]!));
      merged.push(d);
      scenarios[name] = secondMetrics(d, keep);
    }
    const cpu = process.cpuUsage();
    const rss = process.memoryUsage.rss();
    this.peakRss = Math.max(this.peakRss, rss);
    const sum = (f: (r: SecondReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    const loop = this.mainLoop;
    const p: SecondPoint = {
      t,
      phase: phaseAt(this.config.phases, t * 1000),
      scenarios,
      all: secondMetrics(mergeSecond(merged), keep),
      inFlight: sum((r) => r.inFlight),
      maxInFlight: sum((r) => r.maxInFlight),
      started: sum((r) => r.started),
      sockets: sum((r) => r.sockets),
      loopLagP99Ms: round(Math.max(...reports.map((r) => r.loopLagP99Ms))),
      loopLagMaxMs: round(Math.max(...reports.map((r) => r.loopLagMaxMs))),
      mainLoopLagP99Ms: round(loop.count > 0 ? Math.max(0, loop.percentile(99) / 1e6 - 10) : 0),
      cpuSeconds: round((cpu.user - this.cpuPrev.user + cpu.system - this.cpuPrev.system) / 1e6),
      rssBytes: rss,
    };
    loop.reset();
    this.cpuPrev = cpu;
    return p;
  }
}

type WorkerMessage = {
  type: 'ready' | 'second' | 'done' | 'fatal';
  report?: unknown;
  message?: string;
  stack?: string;
};

/** Start the workers together once all are ready, feed their seconds to `merger`, resolve with their final reports. */
function driveWorkers(
  workers: Worker[],
  merger: SecondMerger,
  hooks: EngineHooks,
  onStart: (at: number) => void,
  notBefore = 0,
): Promise<FinalReport[]> {
  const n = workers.length;
  const finals: FinalReport[] = [];
  const stop = () => {
    for (const w of workers) w.postMessage({ type: 'stop', graceMs: hooks.stopGraceMs });
  };
  let ready = 0;
  return new Promise<FinalReport[]>((resolve, reject) => {
    const fail = (e: Error) => {
      for (const w of workers) void w.terminate();
      reject(e);
    };
    const onMessage = (msg: WorkerMessage) => {
      if (msg.type === 'ready' && ++ready === n) {
        // a shard starts at the common --start-at, or as soon as it is ready when that has passed
        const startAt = Math.max(performance.timeOrigin + performance.now() + 50, notBefore);
        onStart(startAt);
        for (const x of workers) x.postMessage({ type: 'start', startAt });
        if (hooks.signal?.aborted) stop();
        hooks.signal?.addEventListener('abort', stop, { once: true });
      } else if (msg.type === 'second') merger.add(msg.report as SecondReport);
      else if (msg.type === 'done') {
        finals.push(msg.report as FinalReport);
        if (finals.length === n) resolve(finals);
      } else if (msg.type === 'fatal') {
        const e = new Error(`engine worker: ${msg.message}`);
        if (msg.stack) e.stack = msg.stack;
        fail(e);
      }
    };
    for (const w of workers) {
      w.on('error', (e) => fail(e));
      w.on('exit', (code) => {
        if (finals.length < n && code !== 0) fail(new Error(`engine worker exited with code ${code}`));
      });
      w.on('message', onMessage);
    }
  }).finally(() => hooks.signal?.removeEventListener('abort', stop));
}

/**
 * Run the load: `config.workers` threads, each with its share of the arrivals
 * or VUs. Resolves when every worker is done.
 * @throws Error when a worker fails (an engine bug): the others are terminated.
 */
export async function runEngine(config: RunConfig, hooks: EngineHooks = {}): Promise<EngineOutcome> {
  const workers = Array.from(
    { length: config.workers },
    (_, index) => new Worker(WORKER_URL, { workerData: { config, index } }),
  );
  const merger = new SecondMerger(config, hooks.onSecond);
  let startAt = 0;
  let finals: FinalReport[];
  try {
    finals = await driveWorkers(
      workers,
      merger,
      hooks,
      (at) => {
        startAt = at;
        hooks.onStart?.(at);
      },
      config.startAt,
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  merger.flush();
  const endAt = performance.timeOrigin + performance.now();
  const steady: Record<string, PhaseData> = {};
  const totals: Record<string, Counters> = {};
  for (const { name } of config.scenario.requests) {
    steady[name] = mergeData(finals.map((f) => f.steady[name]!));
    totals[name] = finals.reduce((acc, f) => addCounters(acc, f.totals[name]!), zeroCounters());
  }
  const cpu = process.cpuUsage(merger.cpu0);
  return {
    startAt,
    endAt,
    seconds: merger.seconds,
    steady,
    steadyAll: mergeData(Object.values(steady)),
    totals,
    stoppedEarly: finals.some((f) => f.stoppedEarly),
    loopLagP99Ms: round(Math.max(...finals.map((f) => f.loopLagP99Ms))),
    loopLagMaxMs: round(Math.max(...finals.map((f) => f.loopLagMaxMs))),
    cpuSeconds: round((cpu.user + cpu.system) / 1e6),
    peakRssBytes: Math.max(merger.peakRss, process.memoryUsage.rss()),
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;
