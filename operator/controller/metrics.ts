/**
 * The operator's Prometheus metrics (prom-client), served on /metrics.
 * Names follow controller-runtime's where one exists (controller_runtime_reconcile_total,
 * workqueue_depth) with an `arena_operator_` prefix.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Buckets of the work-queue histograms, seconds: 0.5 ms (a cached no-op) to 30 s (a backed-up queue). */
const QUEUE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets of the reconcile and apiserver-request duration histograms, seconds: 1 ms to 10 s. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({
    name: 'arena_operator_reconcile_total',
    help: 'Reconciles by controller (arenadeployment, arenaloadtest) and result (success, error).',
    labelNames: ['controller', 'result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'arena_operator_reconcile_errors_total',
    help: 'Reconciles that failed and were retried with backoff, by controller.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'arena_operator_reconcile_duration_seconds',
    help: 'Time per reconcile by controller, seconds.',
    labelNames: ['controller'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'arena_operator_workqueue_depth',
    help: 'Keys waiting in the work queue, by controller.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly queueDuration = new Histogram({
    name: 'arena_operator_workqueue_queue_duration_seconds',
    help: 'How long a key waited in the work queue before a worker took it, by controller, seconds (client-go workqueue_queue_duration_seconds).',
    labelNames: ['controller'],
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  readonly workDuration = new Histogram({
    name: 'arena_operator_workqueue_work_duration_seconds',
    help: 'How long a worker spent on a key (the reconcile), by controller, seconds (client-go workqueue_work_duration_seconds).',
    labelNames: ['controller'],
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  /**
   * Keys added to a work queue, by controller and by what asked: `arenadeployment` / `arenaloadtest`
   * (an event of the object itself), `child:<Kind>` (an event of an owned child that passed the
   * predicates), `deployment-ref` (an ArenaLoadTest's target ArenaDeployment changed), `resync`.
   * Adds of a key already queued count too (the queue coalesces them): this says where the work
   * comes from, reconcile_total how much of it ran.
   */
  readonly enqueued = new Counter({
    name: 'arena_operator_enqueued_total',
    help: 'Keys added to a work queue (coalesced adds included), by controller and source.',
    labelNames: ['controller', 'source'],
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({
    name: 'arena_operator_watch_restarts_total',
    help: 'Informer restarts by resource and reason (error, relist).',
    labelNames: ['resource', 'reason'],
    registers: [this.registry],
  });
  readonly kubeRequests = new Counter({
    name: 'arena_operator_kube_requests_total',
    help: 'Requests the operator sent to the apiserver (not counting list/watch of informers), by verb.',
    labelNames: ['verb'],
    registers: [this.registry],
  });
  readonly kubeRequestDuration = new Histogram({
    name: 'arena_operator_kube_request_duration_seconds',
    help: 'Time the apiserver took to answer the operator, by verb, seconds (client-go rest_client_request_duration_seconds).',
    labelNames: ['verb'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'arena_operator_leader',
    help: '1 when this process holds the leader lease.',
    registers: [this.registry],
  });
  readonly planUtilization = new Gauge({
    name: 'arena_plan_utilization',
    help: 'Planned utilisation (0..1+) at the target of each connection budget and queue of an ArenaDeployment.',
    labelNames: ['namespace', 'name', 'resource'],
    registers: [this.registry],
  });
  readonly planFindings = new Gauge({
    name: 'arena_plan_findings',
    help: 'Findings of the current plan by severity.',
    labelNames: ['namespace', 'name', 'severity'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'arena_operator_' });
  }
}
