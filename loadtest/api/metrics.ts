/**
 * Prometheus metrics (prom-client). Every process (HTTP workers, queue worker)
 * fills its own registry; GET /metrics asks the cluster primary, which collects
 * every worker's registry over IPC and merges them with prom-client's
 * AggregatorRegistry.aggregate (counters and histograms summed, pool and slot
 * gauges summed over workers, queue gauges: the max, since every process reads
 * the same Redis figures).
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import client from 'prom-client';

const { Registry, Histogram, Gauge, Counter, AggregatorRegistry } = client;

/**
 * Buckets of the queue-wait histograms, seconds: fine below 10 ms (a pool that
 * barely queues) up to the longest timeouts; the report interpolates inside a
 * bucket as Prometheus' histogram_quantile does.
 */
export const WAIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60];

/** Period of the event-loop probe (Metrics.probeEventLoop), ms. */
export const EVENT_LOOP_PROBE_MS = 20;

/** Values the gauges read at scrape time; each process sets the ones it has. */
export interface Probes {
  dbPool?: () => { max: number; total: number; idle: number; waiting: number };
  slots?: () => { max: number; inUse: number; waiting: number };
  redis?: () => { max: number; open: number };
  queue?: () => Promise<{ length: number; lag: number; pending: number }>;
  queueWorker?: () => { inFlight: number; concurrency: number };
}

/** The metrics of one process. */
export class Metrics {
  readonly registry = new Registry();
  private probes: Probes = {};

  readonly httpDuration = new Histogram({
    name: 'arena_http_request_duration_seconds',
    help: 'HTTP request duration (streams: until the stream ends), by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120],
    registers: [this.registry],
  });
  readonly httpInFlight = new Gauge({
    name: 'arena_http_requests_in_flight',
    help: 'HTTP requests being served',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'arena_rate_limited_total',
    help: 'requests answered 429 by the per-client rate limit',
    registers: [this.registry],
  });
  readonly llmCalls = new Counter({
    name: 'arena_llm_calls_total',
    help: 'simulated LLM calls by outcome (ok, error, aborted, rate_limited)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly llmPermitWait = new Histogram({
    name: 'arena_llm_permit_wait_seconds',
    help: 'wait for the provider requests-per-minute limit',
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });
  /** Queue wait for an LLM semaphore slot (timeouts observed at the time they waited), for predicted vs measured. */
  readonly llmSlotWait = new Histogram({
    name: 'arena_llm_slot_wait_seconds',
    help: 'wait for an LLM semaphore slot (MAX_CONCURRENT_REQUESTS), timeouts included',
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });
  /** Queue wait for a pooled DB connection (checkout), for predicted vs measured. */
  readonly dbPoolWait = new Histogram({
    name: 'arena_db_pool_wait_seconds',
    help: 'wait for a DB connection from the worker pool (DB_POOL_SIZE + DB_MAX_OVERFLOW), timeouts included',
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });
  /**
   * How late the HTTP worker's event loop runs a timer (EVENT_LOOP_PROBE_MS period), seconds: what any callback
   * waits before it runs, a DB reply included, so under load it adds to every pooled connection's hold
   * (docs/capacity-model.md, "Round trips"). Fed by probeEventLoop().
   */
  readonly eventLoopDelay = new Histogram({
    name: 'arena_event_loop_delay_seconds',
    help: 'lateness of a timer on the HTTP worker event loop (sampled every 20 ms)',
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });
  /**
   * CPU time of the HTTP worker processes (user + system, process.cpuUsage()), seconds: counted only where
   * countCpu() was called (the HTTP workers), read at each scrape. Its rate / workers is the apiEventLoop
   * queue's measured utilisation, and over a calibration run / requests it is api.cpuMsPerRequest.
   */
  readonly httpWorkerCpu = new Counter({
    name: 'arena_http_worker_cpu_seconds_total',
    help: 'CPU time (user + system) of the HTTP worker processes',
    registers: [this.registry],
    collect: () => this.cpuSinceLastScrape(),
  });
  private cpuCounted: NodeJS.CpuUsage | null = null;
  readonly slotTimeouts = new Counter({
    name: 'arena_llm_slot_timeouts_total',
    help: 'requests answered 503 because no LLM slot freed in time',
    registers: [this.registry],
  });
  readonly dbPoolTimeouts = new Counter({
    name: 'arena_db_pool_timeouts_total',
    help: 'requests answered 503 because no DB connection freed in time',
    registers: [this.registry],
  });
  readonly matchSaveAttempts = new Histogram({
    name: 'arena_match_save_attempts',
    help: 'transaction attempts per saved match (retries on serialization/deadlock/lock errors)',
    buckets: [1, 2, 3, 4, 5],
    registers: [this.registry],
  });
  readonly tasks = new Counter({
    name: 'arena_queue_tasks_total',
    help: 'queue entries handled by the queue worker, by outcome (done, failed, duplicate, expired)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly reclaimed = new Counter({
    name: 'arena_queue_reclaimed_total',
    help: 'queue entries reclaimed with XAUTOCLAIM from a dead or stuck consumer',
    registers: [this.registry],
  });

  /** Count this process's CPU time in arena_http_worker_cpu_seconds_total from now on (call it in HTTP workers). */
  countCpu(): void {
    this.cpuCounted ??= process.cpuUsage();
  }

  private cpuSinceLastScrape(): void {
    if (!this.cpuCounted) return;
    const now = process.cpuUsage();
    const us = now.user - this.cpuCounted.user + (now.system - this.cpuCounted.system);
    this.cpuCounted = now;
    if (us > 0) this.httpWorkerCpu.inc(us / 1e6);
  }

  /**
   * Sample the event loop's delay into arena_event_loop_delay_seconds: a timer every EVENT_LOOP_PROBE_MS ms
   * records how much later than due it ran. The timer is unref'd (it never keeps the process alive).
   * @returns a function that stops the sampling.
   */
  probeEventLoop(): () => void {
    let due = performance.now() + EVENT_LOOP_PROBE_MS;
    const timer = setInterval(() => {
      const now = performance.now();
      this.eventLoopDelay.observe(Math.max(0, now - due) / 1000);
      due = now + EVENT_LOOP_PROBE_MS;
    }, EVENT_LOOP_PROBE_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  constructor() {
    const probes = (): Probes => this.probes; // collect() runs with `this` = the gauge
    const g = (
      name: string,
      help: string,
      read: (p: Probes) => number | undefined,
      aggregator: 'sum' | 'max' = 'sum',
    ) =>
      new Gauge({
        name,
        help,
        aggregator,
        registers: [this.registry],
        collect() {
          const v = read(probes());
          if (v !== undefined) this.set(v);
        },
      });
    g(
      'arena_db_pool_max',
      'DB pool size limit (DB_POOL_SIZE + DB_MAX_OVERFLOW), summed over workers',
      (p) => p.dbPool?.().max,
    );
    g('arena_db_pool_total', 'DB connections open, summed over workers', (p) => p.dbPool?.().total);
    g('arena_db_pool_idle', 'DB connections idle in the pool', (p) => p.dbPool?.().idle);
    g('arena_db_pool_waiting', 'requests waiting for a DB connection', (p) => p.dbPool?.().waiting);
    g(
      'arena_llm_slots_max',
      'LLM semaphore slots (MAX_CONCURRENT_REQUESTS), summed over workers',
      (p) => p.slots?.().max,
    );
    g('arena_llm_slots_in_use', 'LLM semaphore slots held', (p) => p.slots?.().inUse);
    g('arena_llm_slots_waiting', 'requests waiting for an LLM slot', (p) => p.slots?.().waiting);
    g(
      'arena_redis_connections',
      'Redis connections open (at most REDIS_MAX_CONNECTIONS per process)',
      (p) => p.redis?.().open,
    );
    g('arena_queue_in_flight', 'queue entries being processed by the queue worker', (p) => p.queueWorker?.().inFlight);
    g('arena_queue_concurrency', 'queue worker concurrency (ASYNC_CONCURRENCY)', (p) => p.queueWorker?.().concurrency);
    const queueGauge = (name: string, help: string, key: 'length' | 'lag' | 'pending') =>
      new Gauge({
        name,
        help,
        aggregator: 'max',
        registers: [this.registry],
        async collect() {
          const queue = probes().queue;
          if (!queue) return;
          try {
            this.set((await queue())[key]);
          } catch {
            // Redis unavailable: leave the last value
          }
        },
      });
    queueGauge('arena_queue_length', 'entries in the task stream (XLEN): queued + being processed', 'length');
    queueGauge('arena_queue_lag', 'entries not yet delivered to any consumer (consumer-group lag)', 'lag');
    queueGauge('arena_queue_pending', 'entries delivered but not acknowledged (XPENDING count)', 'pending');
  }

  /** Set the probes the gauges read. */
  setProbes(p: Probes): void {
    this.probes = { ...this.probes, ...p };
  }
}

const COLLECT = 'arena:metrics:collect';
const COLLECTED = 'arena:metrics:collected';
const GET = 'arena:metrics:get';
const TEXT = 'arena:metrics:text';

interface Msg {
  type?: string;
  id?: string;
  metrics?: unknown;
  text?: string;
  contentType?: string;
}

/** In a worker: answer the primary's collection requests with this registry. */
export function serveCollection(m: Metrics): void {
  process.on('message', (msg: Msg) => {
    if (msg?.type !== COLLECT) return;
    m.registry
      .getMetricsAsJSON()
      .then((metrics) => process.send?.({ type: COLLECTED, id: msg.id, metrics }))
      .catch(() => process.send?.({ type: COLLECTED, id: msg.id, metrics: [] }));
  });
}

/**
 * In a worker: the merged metrics of the whole process group (asks the
 * primary; falls back to this process's registry after 3 s or without a primary).
 */
export function clusterMetrics(m: Metrics): Promise<{ contentType: string; text: string }> {
  const local = async () => ({ contentType: m.registry.contentType, text: await m.registry.metrics() });
  if (!cluster.isWorker || !process.connected) return local();
  return new Promise((resolve) => {
    const id = randomUUID();
    const onMsg = (msg: Msg) => {
      if (msg?.type !== TEXT || msg.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMsg);
      resolve({ contentType: msg.contentType ?? m.registry.contentType, text: msg.text ?? '' });
    };
    const timer = setTimeout(() => {
      process.off('message', onMsg);
      local().then(resolve, () => resolve({ contentType: 'text/plain', text: '' }));
    }, 3000);
    process.on('message', onMsg);
    process.send?.({ type: GET, id });
  });
}

/**
 * In the primary: answer workers' GET requests by collecting every connected
 * worker's registry (2 s budget; a worker that does not answer is left out).
 */
export function servePrimaryAggregation(): void {
  const pending = new Map<string, { left: number; parts: unknown[]; finish: () => void }>();
  cluster.on('message', (worker, msg: Msg) => {
    if (msg?.type === COLLECTED && msg.id) {
      const p = pending.get(msg.id);
      if (!p) return;
      p.parts.push(msg.metrics);
      if (--p.left === 0) p.finish();
      return;
    }
    if (msg?.type !== GET || !msg.id) return;
    const requestId = msg.id;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
    const id = randomUUID();
    const parts: unknown[] = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      pending.delete(id);
      void Promise.resolve()
        .then(() => AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics())
        .catch((e: Error) => `# aggregation failed: ${e.message}\n`)
        .then((text) => {
          if (worker.isConnected())
            worker.send({ type: TEXT, id: requestId, text, contentType: Registry.PROMETHEUS_CONTENT_TYPE });
        });
    };
    const timer = setTimeout(finish, 2000);
    pending.set(id, { left: workers.length, parts, finish });
    if (workers.length === 0) return finish();
    for (const w of workers) w!.send({ type: COLLECT, id });
  });
}
