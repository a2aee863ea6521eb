/**
 * The executor of one worker thread: starts iterations on schedule (open
 * model) or in VU loops (closed model), runs them through the protocol
 * clients, and hands the metrics to the thread's owner once per second and at
 * the end.
 *
 * Connections: each VU owns one undici `Client` (one keep-alive connection,
 * opened on its first iteration), as a k6 VU owns its connections. One Pool
 * over thousands of connections would scan its clients for a free one on
 * every request (O(connections) per request); indexing by VU is O(1).
 *
 * Open model: arrivals come from an `ArrivalSchedule` (this worker's share of
 * the rate, its own random stream). A timer wakes at the next due time and
 * starts every arrival that is due; each keeps its scheduled time as the
 * start of its latency. When all of this worker's VUs (its share of maxVUs)
 * are busy, the arrival is counted in `dropped_iterations` and not started
 * (never delayed).
 *
 * Closed model: this worker's VUs each loop `iteration; think` from their
 * start time (spread over the ramp-up) to their stop time (spread over the
 * ramp-down). Latency counts from the actual start of each iteration.
 *
 * Stop: when the schedule ends (or `stop()` is called), no iteration starts;
 * in-flight ones get `gracefulStopMs`, then the clients are destroyed and what is
 * still running ends as `interrupted_iterations`.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { ArrivalSchedule, phaseAt, rampStages } from './arrivals.js';
import { scheduleMs, slotOf, type RunConfig } from './config.js';
import { ScenarioMetrics, type Counters, type MetricData, type SecondData } from './metrics.js';
import { HttpCall, prepare, runTask, SseCall, type Iteration, type PreparedRequest } from './protocols.js';
import { randomStream, type Random } from './random.js';
import type { TemplateContext } from './scenario.js';

/** What a worker reports once per second. */
export interface SecondReport {
  worker: number;
  /** Second index k: the data covers [k, k+1) s of the engine clock. */
  sec: number;
  scenarios: Record<string, SecondData>;
  /** Iterations in flight at the end of the second, and the most during it. */
  inFlight: number;
  maxInFlight: number;
  /** Iterations started in the second. */
  started: number;
  /** Event-loop delay of this worker in the second, ms (P99 and max). */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  /** Connections open (one per VU that has run an iteration and kept its connection). */
  sockets: number;
}

/** What a worker reports at the end. */
export interface FinalReport {
  worker: number;
  steady: Record<string, MetricData>;
  totals: Record<string, Counters>;
  /** Event-loop delay over the steady phase, ms. */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  /** True when the run was stopped before its schedule ended. */
  stoppedEarly: boolean;
}

const NS_PER_MS = 1e6;
/** Sampling interval of the event-loop delay monitors, ms; node reports the interval plus the delay, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;
/** Event-loop delay beyond the monitor's own interval, ms. */
const lagMs = (ns: number) => Math.max(0, ns / NS_PER_MS - LOOP_RESOLUTION_MS);

/** A cumulative weight table: index of the request for a uniform draw. */
function picker(requests: readonly PreparedRequest[], r: Random): () => number {
  if (requests.length === 1) return () => 0;
  const total = requests.reduce((a, p) => a + p.spec.weight, 0);
  const cum: number[] = [];
  let acc = 0;
  for (const p of requests) cum.push((acc += p.spec.weight / total));
  return () => {
    const u = r.next();
    for (let i = 0; i < cum.length - 1; i++) if (u < cum[i]!) return i;
    return cum.length - 1;
  };
}

/** What a VU keeps between its iterations (one at a time): its connection, template context, iteration record and HTTP handler. */
interface Vu {
  client: Client;
  ctx: TemplateContext;
  it: Iteration;
  http: HttpCall;
  /** Created on the VU's first stream. */
  sse: SseCall | undefined;
}

/** This worker's share of a count split over `of` workers (the first ones take the remainder). */
export function shareOf(n: number, index: number, of: number): number {
  return Math.floor(n / of) + (index < n % of ? 1 : 0);
}

export class Executor {
  private readonly origin: string;
  /** The VUs' state, by VU number (created on first use). */
  private readonly vus: (Vu | undefined)[] = [];
  private sockets = 0;
  private readonly requests: PreparedRequest[];
  private readonly metrics: ScenarioMetrics[];
  private readonly pick: () => number;
  private readonly random: Random;
  /** This worker's slot in the whole run (shards x workers) and the number of slots: its share of arrivals and VUs. */
  private readonly slot: number;
  private readonly slots: number;
  private readonly loopSecond = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private readonly loopSteady = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private startAt = 0;
  private inFlight = 0;
  private maxInFlight = 0;
  private started = 0;
  private iter = 0;
  private stopping = false;
  private stoppedEarly = false;
  private idle: (() => void) | undefined;
  private secondTimer: NodeJS.Timeout | undefined;
  private sec = 0;
  private arrivalTimer: NodeJS.Timeout | undefined;
  private wakeStop: (() => void) | undefined;
  private readonly clock = () => performance.timeOrigin + performance.now() - this.startAt;
  private readonly isStopping = () => this.stopping;

  constructor(
    private readonly config: RunConfig,
    private readonly index: number,
    /** Receives each second's report; its sample buffers may be transferred. */
    private readonly onSecond: (r: SecondReport) => void,
  ) {
    const url = new URL(config.target);
    const basePath = url.pathname.replace(/\/$/, '');
    ({ slot: this.slot, slots: this.slots } = slotOf(config, index));
    this.random = randomStream(config.seed, this.slot);
    this.requests = config.scenario.requests.map((s) => prepare(s, this.random, basePath));
    this.metrics = this.requests.map((p) => new ScenarioMetrics(p.name));
    this.pick = picker(this.requests, this.random);
    this.origin = url.origin;
  }

  /** Run from `startAt` (epoch ms, the same for every worker) until the schedule ends or stop(). */
  async run(startAt: number): Promise<FinalReport> {
    this.startAt = startAt;
    const { phases } = this.config;
    const wait = startAt - (performance.timeOrigin + performance.now());
    if (wait > 0) await sleep(wait);
    this.loopSecond.enable();
    this.scheduleSecond();
    const steadyAt = phases.rampUpMs;
    const steadyEnd = phases.rampUpMs + phases.steadyMs;
    const t1 = setTimeout(() => this.loopSteady.enable(), Math.max(0, steadyAt - this.clock()));
    const t2 = setTimeout(() => this.loopSteady.disable(), Math.max(0, steadyEnd - this.clock()));
    try {
      if (this.config.model.type === 'open') await this.runOpen();
      else await this.runClosed();
      await this.drain();
    } finally {
      clearTimeout(t1);
      clearTimeout(t2);
      this.loopSteady.disable();
    }
    if (this.secondTimer) clearTimeout(this.secondTimer);
    this.flushSecond(); // the last, partial second
    this.loopSecond.disable();
    const lag = this.loopSteady.count > 0 ? this.loopSteady : this.loopSecond;
    return {
      worker: this.index,
      steady: Object.fromEntries(this.metrics.map((m) => [m.name, m.steady()])),
      totals: Object.fromEntries(this.metrics.map((m) => [m.name, m.total])),
      loopLagP99Ms: lag.count > 0 ? lagMs(lag.percentile(99)) : 0,
      loopLagMaxMs: lag.count > 0 ? lagMs(lag.max) : 0,
      stoppedEarly: this.stoppedEarly,
    };
  }

  /** Stop starting iterations now (Ctrl-C); in-flight ones get `graceMs`. */
  stop(graceMs?: number): void {
    if (this.stopping) return;
    if (graceMs !== undefined) this.graceOverride = graceMs;
    this.stoppedEarly = true;
    this.stopping = true;
    if (this.arrivalTimer) clearTimeout(this.arrivalTimer);
    this.wakeStop?.();
  }

  private graceOverride: number | undefined;

  private scheduleSecond(): void {
    const nextAt = (this.sec + 1) * 1000;
    this.secondTimer = setTimeout(
      () => {
        this.flushSecond();
        this.scheduleSecond();
      },
      Math.max(0, nextAt - this.clock()),
    );
  }

  private flushSecond(): void {
    const scenarios: Record<string, SecondData> = {};
    for (const m of this.metrics) scenarios[m.name] = m.flushSecond();
    this.onSecond({
      worker: this.index,
      sec: this.sec,
      scenarios,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      started: this.started,
      loopLagP99Ms: this.loopSecond.count > 0 ? lagMs(this.loopSecond.percentile(99)) : 0,
      loopLagMaxMs: this.loopSecond.count > 0 ? lagMs(this.loopSecond.max) : 0,
      sockets: this.sockets,
    });
    this.loopSecond.reset();
    this.maxInFlight = this.inFlight;
    this.started = 0;
    this.sec++;
  }

  /** Fill a VU's template context for one iteration of `p` (only when `p` has templates). */
  private fill(ctx: TemplateContext, p: PreparedRequest): void {
    ctx.iter = this.iter++;
    if (!p.templated) return;
    const r = this.random.next();
    const a = Math.floor(r * 16);
    ctx.modelA = a;
    ctx.modelB = (a + 1 + Math.floor(this.random.next() * 15)) % 16;
    ctx.rand = Math.floor(r * 2 ** 31);
    ctx.taskId = '';
    ctx.llmLatencyMs = p.llmLatency ? p.llmLatency() : 0;
  }

  /** A VU's state, created on its first iteration: one keep-alive connection and reusable records. */
  private vu(n: number): Vu {
    const have = this.vus[n];
    if (have) return have;
    const client = new Client(this.origin, { pipelining: 1, keepAliveTimeout: 30_000, connectTimeout: 10_000 });
    client.on('connect', () => this.sockets++);
    client.on('disconnect', () => this.sockets--);
    const ctx: TemplateContext = {
      vu: n,
      worker: this.slot,
      iter: 0,
      llmLatencyMs: 0,
      modelA: 0,
      modelB: 1,
      rand: 0,
      taskId: '',
    };
    const it: Iteration = {
      scheduled: 0,
      steady: false,
      ctx,
      m: this.metrics[0]!,
      now: this.clock,
      stopping: this.isStopping,
    };
    const v: Vu = { client, ctx, it, http: new HttpCall(), sse: undefined };
    this.vus[n] = v;
    return v;
  }

  /**
   * Run one iteration of request `i` for VU `n`, scheduled at `scheduled`; `done` is called when it
   * ended (plain HTTP completes through a callback, without a promise).
   */
  private iterate(i: number, n: number, scheduled: number, steady: boolean, done: () => void): void {
    const p = this.requests[i]!;
    const v = this.vu(n);
    this.fill(v.ctx, p);
    const it = v.it;
    it.scheduled = scheduled;
    it.steady = steady;
    it.m = this.metrics[i]!;
    if (p.spec.kind === 'http') return v.http.start(v.client, p, it, done);
    if (p.spec.kind === 'sse') return (v.sse ??= new SseCall()).start(v.client, p, it, done);
    runTask(v.client, p, it).then(done, (e: unknown) => {
      done();
      throw e;
    });
  }

  private begin(): void {
    this.inFlight++;
    this.started++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }

  private end(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.idle?.();
  }

  private runOpen(): Promise<void> {
    const c = this.config;
    const model = c.model as Extract<RunConfig['model'], { type: 'open' }>;
    const schedule = new ArrivalSchedule({
      startRate: 0,
      stages: rampStages(model.rate, c.phases),
      process: model.process,
      random: this.random,
      share: { index: this.slot, of: this.slots },
    });
    const free: number[] = [];
    for (let v = shareOf(model.maxVUs, this.slot, this.slots) - 1; v >= 0; v--) free.push(v);
    let next = schedule.next();
    return new Promise<void>((resolve) => {
      this.wakeStop = resolve;
      const pump = () => {
        if (this.stopping) return resolve();
        const now = this.clock();
        while (next <= now) {
          const scheduled = next;
          next = schedule.next();
          const i = this.pick();
          const steady = phaseAt(c.phases, scheduled) === 'steady';
          const m = this.metrics[i]!;
          const vu = free.pop();
          if (vu === undefined) {
            m.count('dropped_iterations', steady);
            continue;
          }
          this.begin();
          m.trend('schedule_lag', now - scheduled, steady);
          this.iterate(i, vu, scheduled, steady, () => {
            free.push(vu);
            this.end();
          });
        }
        if (next === Infinity) return resolve();
        this.arrivalTimer = setTimeout(pump, Math.max(0, next - this.clock()));
      };
      pump();
    });
  }

  private async runClosed(): Promise<void> {
    const c = this.config;
    const model = c.model as Extract<RunConfig['model'], { type: 'closed' }>;
    const n = model.vus;
    const mine = shareOf(n, this.slot, this.slots);
    const end = scheduleMs(c.phases);
    const stopWait = new Promise<void>((r) => (this.wakeStop = r));
    const loops: Promise<void>[] = [];
    for (let k = 0; k < mine; k++) {
      const g = this.slot + k * this.slots; // global VU index
      const startAt = c.phases.rampUpMs * (g / n);
      const stopAt = end - c.phases.rampDownMs * (g / n);
      loops.push(this.vuLoop(k, startAt, stopAt, model.thinkTimeMs, stopWait));
    }
    await Promise.all(loops);
  }

  private async vuLoop(
    vu: number,
    startAt: number,
    stopAt: number,
    thinkMs: number,
    stopWait: Promise<void>,
  ): Promise<void> {
    const c = this.config;
    const wait = startAt - this.clock();
    if (wait > 0) await Promise.race([sleep(wait), stopWait]);
    while (!this.stopping && this.clock() < stopAt) {
      const i = this.pick();
      const s = this.clock();
      const steady = phaseAt(c.phases, s) === 'steady';
      this.begin();
      await new Promise<void>((resolve) => this.iterate(i, vu, s, steady, resolve));
      this.end();
      if (thinkMs > 0 && !this.stopping) await Promise.race([sleep(thinkMs), stopWait]);
    }
  }

  /** Let in-flight iterations finish within the grace, then destroy the clients (the rest are interrupted). */
  private async drain(): Promise<void> {
    const grace = this.graceOverride ?? this.config.gracefulStopMs;
    if (this.inFlight > 0) {
      const idle = new Promise<void>((r) => (this.idle = r));
      const timer = new Promise<void>((r) => {
        const t = setTimeout(r, grace);
        idle.then(
          () => clearTimeout(t),
          () => undefined,
        );
      });
      await Promise.race([idle, timer]);
    }
    this.stopping = true;
    if (this.inFlight > 0) {
      const idle = new Promise<void>((r) => (this.idle = r));
      await Promise.all(this.vus.map((v) => v?.client.destroy().catch(() => undefined)));
      await Promise.race([idle, sleep(2000)]);
    }
    // Idle keep-alive connections are left to the thread's end (the runner terminates it): closing
    // thousands of clients one by one costs an error object with a stack trace each.
  }
}
