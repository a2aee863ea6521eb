/**
 * The operator process: informers -> work queue -> reconciler, with leader
 * election, /healthz, /readyz and /metrics, JSON logs and graceful shutdown.
 * `arena operator run` starts it.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { KubeClient } from '../kube/client.js';
import { loadKubeConfig } from '../kube/config.js';
import { ARENA, CHILD_KINDS, LOADTEST, LOADTEST_CHILD_KINDS, kindKey } from './kinds.js';
import { Kube, type KubeObj } from './kube.js';
import { LeaderElector } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { SupervisedInformer, errText } from './informers.js';
import { WorkQueue } from './queue.js';
import { Reconciler, type Caches } from './reconciler.js';
import { LoadTestReconciler, type LoadTestCaches } from './loadtest-reconciler.js';
import { stripForCache } from './transform.js';
import { RelevantChanges } from './predicates.js';
import { MANAGED_BY } from '../render/names.js';

export interface ManagerOptions {
  kubeconfig?: string;
  /** Watch one namespace only (default: all). */
  namespace?: string;
  workers: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  /** Enqueue every ArenaDeployment this often, ms. */
  resyncPeriodMs: number;
  /** Replace every informer with a fresh list+watch this often, ms. */
  relistPeriodMs: number;
  logLevel: string;
}

function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: i > 0 ? addr.slice(0, i) : '127.0.0.1', port: Number(addr.slice(i + 1)) };
}

export class Manager {
  readonly metrics = new OperatorMetrics();
  readonly log: Logger;
  readonly identity = `${hostname()}_${process.pid}`;
  private readonly kube: Kube;
  /** One work queue per controller, as controller-runtime has: ArenaDeployments and ArenaLoadTests. */
  private readonly queue = this.newQueue('arenadeployment');
  private readonly ltQueue = this.newQueue('arenaloadtest');
  private readonly informers = new Map<string, SupervisedInformer>();
  /** Child updates that change nothing a reconciler reads do not enqueue the owner (predicates.ts). */
  private readonly relevant = new RelevantChanges();
  private arenaInformer?: SupervisedInformer;
  private ltInformer?: SupervisedInformer;
  private servers: Server[] = [];
  /** standby: waiting for the Lease (ready: a hot standby); syncing: leader, caches filling; ready: reconciling. */
  private phase: 'starting' | 'standby' | 'syncing' | 'ready' | 'stopping' = 'starting';
  private leader?: LeaderElector;
  private running?: Promise<void>;
  private resyncTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly o: ManagerOptions) {
    this.log = pino({ level: o.logLevel, base: { component: 'arena-operator', identity: this.identity } });
    // Throws KubeConfigError (one line naming the file): `arena operator run` reports it as a UserError.
    this.kube = new Kube(new KubeClient(loadKubeConfig(o.kubeconfig)), this.metrics);
  }

  private caches(): Caches {
    return {
      arena: (ns, name) => this.arenaInformer?.get(name, ns),
      child: (apiVersion, kind, ns, name) => this.informers.get(kindKey(apiVersion, kind))?.get(name, ns),
      children: (apiVersion, kind, ns) => this.informers.get(kindKey(apiVersion, kind))?.list(ns) ?? [],
    };
  }

  private newQueue(controller: string): WorkQueue {
    return new WorkQueue({
      onQueued: (ms) => this.metrics.queueDuration.observe({ controller }, ms / 1000),
      onWorked: (ms) => this.metrics.workDuration.observe({ controller }, ms / 1000),
    });
  }

  private loadTestCaches(): LoadTestCaches {
    return {
      loadTest: (ns, name) => this.ltInformer?.get(name, ns),
      arena: (ns, name) => this.arenaInformer?.get(name, ns),
      child: (apiVersion, kind, ns, name) => this.informers.get(kindKey(apiVersion, kind))?.get(name, ns),
    };
  }

  private setDepth(): void {
    this.metrics.queueDepth.set({ controller: 'arenadeployment' }, this.queue.depth);
    this.metrics.queueDepth.set({ controller: 'arenaloadtest' }, this.ltQueue.depth);
  }

  /** A child changed: enqueue its controlling owner in its controller's queue. */
  private enqueueOwner(obj: KubeObj): void {
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      if (ref.apiVersion !== ARENA.apiVersion) continue;
      const source = `child:${obj.kind ?? 'unknown'}`;
      if (ref.kind === ARENA.kind) {
        this.queue.add(`${obj.metadata!.namespace}/${ref.name}`);
        this.metrics.enqueued.inc({ controller: 'arenadeployment', source });
      } else if (ref.kind === LOADTEST.kind) {
        this.ltQueue.add(`${obj.metadata!.namespace}/${ref.name}`);
        this.metrics.enqueued.inc({ controller: 'arenaloadtest', source });
      }
    }
    this.setDepth();
  }

  /** An ArenaDeployment changed: enqueue it, and the unfinished ArenaLoadTests whose target it is. */
  private enqueueArena(obj: KubeObj): void {
    const ns = obj.metadata!.namespace!;
    this.queue.add(`${ns}/${obj.metadata!.name}`);
    this.metrics.enqueued.inc({ controller: 'arenadeployment', source: 'arenadeployment' });
    for (const lt of this.ltInformer?.list(ns) ?? []) {
      const phase = (lt.status as { phase?: string } | undefined)?.phase;
      const ref = (lt.spec as { target?: { deploymentRef?: { name?: string } } } | undefined)?.target?.deploymentRef;
      if (ref?.name === obj.metadata!.name && phase !== 'Succeeded' && phase !== 'Failed') {
        this.ltQueue.add(`${ns}/${lt.metadata!.name}`);
        this.metrics.enqueued.inc({ controller: 'arenaloadtest', source: 'deployment-ref' });
      }
    }
    this.setDepth();
  }

  /** Serve /metrics and the probes. */
  private async serve(): Promise<void> {
    const handler = (server: 'metrics' | 'probes') =>
      createServer((req, res) => {
        const url = req.url ?? '/';
        if (server === 'metrics' && url === '/metrics') {
          this.setDepth();
          void this.metrics.registry.metrics().then((body) => {
            res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
            res.end(body);
          });
          return;
        }
        if (server === 'probes' && url === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
          return;
        }
        if (server === 'probes' && url === '/readyz') {
          // A standby is ready: it is healthy and takes over when the leader goes, so a rolling
          // update (new pod waits for the Lease the old pod holds) can proceed.
          const ok = this.phase === 'ready' || this.phase === 'standby';
          res
            .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
            .end(this.phase === 'ready' ? 'ok' : this.phase);
          return;
        }
        res.writeHead(404).end();
      });
    for (const [kind, addr] of [
      ['metrics', this.o.metricsBindAddress],
      ['probes', this.o.healthProbeBindAddress],
    ] as const) {
      if (addr === '0') continue;
      const { host, port } = parseAddr(addr);
      const s = handler(kind);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, host, () => resolve());
      });
      this.servers.push(s);
      this.log.info({ address: `${host}:${port}`, serves: kind }, 'listening');
    }
  }

  /** Run until stopped. Resolves after a graceful shutdown. */
  async run(): Promise<void> {
    process.on('unhandledRejection', (err) => this.log.error({ err: errText(err) }, 'unhandled rejection'));
    await this.serve();
    if (this.o.leaderElect) {
      this.phase = 'standby';
      this.leader = new LeaderElector(
        this.kube,
        { namespace: this.o.leaderElectionNamespace, name: this.o.leaderElectionId, identity: this.identity },
        this.metrics,
        this.log,
      );
      await this.leader.acquire();
      if (this.stopping) return;
      this.leader.renewLoop(() => {
        this.log.error('leadership lost: exiting so a new leader starts from a clean state');
        void this.stop().finally(() => process.exit(1));
      });
    }
    this.phase = 'syncing';
    const ns = this.o.namespace;
    const loadTests = await this.servesLoadTests(ns);
    if (this.stopping) return;
    if (!loadTests)
      this.log.warn(
        'the ArenaLoadTest CRD is not installed: ArenaLoadTests are not reconciled (kubectl apply -f crds/, then restart)',
      );
    this.createInformers(ns, loadTests);
    // Children first, so the first reconciles see them (WaitForCacheSync).
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    await Promise.all([this.arenaInformer!.start(), this.ltInformer?.start()]);
    if (this.stopping) return;
    this.phase = 'ready';
    this.log.info({ workers: this.o.workers, namespace: ns ?? '(all)' }, 'caches synced; starting workers');
    this.resyncTimer = setInterval(() => {
      // spread over the period, not all at once: a burst of every key would make a new object wait behind it
      const spread = (q: WorkQueue, controller: string, obj: KubeObj) => {
        q.addAfter(`${obj.metadata!.namespace}/${obj.metadata!.name}`, Math.random() * this.o.resyncPeriodMs * 0.9);
        this.metrics.enqueued.inc({ controller, source: 'resync' });
      };
      for (const obj of this.arenaInformer?.list() ?? []) spread(this.queue, 'arenadeployment', obj);
      for (const obj of this.ltInformer?.list() ?? []) spread(this.ltQueue, 'arenaloadtest', obj);
    }, this.o.resyncPeriodMs);
    this.resyncTimer.unref();
    this.running = this.startWorkers();
    await this.running;
  }

  /** Whether the ArenaLoadTest CRD is installed, asked until the apiserver answers (backoff 0.5 s .. 10 s). */
  private async servesLoadTests(ns: string | undefined): Promise<boolean> {
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        return await this.kube.serves(LOADTEST, ns);
      } catch (err) {
        const retryInMs = Math.min(10_000, 500 * 2 ** attempt);
        this.log.warn({ err: errText(err), retryInMs }, 'cannot ask the apiserver for ArenaLoadTests; retrying');
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
    return false;
  }

  /** The informers: ArenaDeployments, ArenaLoadTests and every child kind (arena-managed only, by label). */
  private createInformers(ns: string | undefined, loadTests: boolean): void {
    const common = {
      client: this.kube.client,
      namespace: ns,
      relistPeriodMs: this.o.relistPeriodMs,
      metrics: this.metrics,
      log: this.log,
    };
    // Relists spread evenly over the period (informer i of n first relists at (i + 1) / (n + 1) of it):
    // a relist holds two copies of one kind's cache for a moment, never of every kind at once.
    const kinds = [ARENA, ...(loadTests ? [LOADTEST] : []), ...CHILD_KINDS, ...(loadTests ? LOADTEST_CHILD_KINDS : [])];
    const offset = (k: { plural: string }) =>
      Math.round((this.o.relistPeriodMs * (kinds.findIndex((x) => x.plural === k.plural) + 1)) / (kinds.length + 1));
    this.arenaInformer = new SupervisedInformer({
      ...common,
      name: ARENA.plural,
      relistOffsetMs: offset(ARENA),
      kind: ARENA,
      transform: stripForCache(ARENA.kind),
      onEvent: (obj, type) => {
        if (this.relevant.changed(obj, type)) this.enqueueArena(obj);
      },
    });
    if (loadTests)
      this.ltInformer = new SupervisedInformer({
        ...common,
        name: LOADTEST.plural,
        relistOffsetMs: offset(LOADTEST),
        kind: LOADTEST,
        transform: stripForCache(LOADTEST.kind),
        onEvent: (obj) => {
          this.ltQueue.add(`${obj.metadata!.namespace}/${obj.metadata!.name}`);
          this.metrics.enqueued.inc({ controller: 'arenaloadtest', source: 'arenaloadtest' });
          this.setDepth();
        },
      });
    for (const k of [...CHILD_KINDS, ...(loadTests ? LOADTEST_CHILD_KINDS : [])]) {
      const selector = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
      this.informers.set(
        kindKey(k.apiVersion, k.kind),
        new SupervisedInformer({
          ...common,
          name: k.plural,
          relistOffsetMs: offset(k),
          kind: k,
          labelSelector: selector,
          transform: stripForCache(k.kind),
          onEvent: (obj, type) => {
            if (this.relevant.changed(obj, type)) this.enqueueOwner(obj);
          },
        }),
      );
    }
  }

  /** One controller per kind, each with its own queue and reconciler. Resolves once both queues are shut down. */
  private startWorkers(): Promise<void> {
    const reconciler = new Reconciler(this.kube, this.caches(), this.metrics, this.log, this.identity);
    const ltReconciler = new LoadTestReconciler(this.kube, this.loadTestCaches(), this.log, this.identity);
    return Promise.all([
      this.runController('arenadeployment', this.queue, this.o.workers, async (key) => {
        const r = await reconciler.reconcile(key);
        const changed = r.applied.length || r.pruned.length || r.statusWritten;
        return { changed: !!changed, fields: { applied: r.applied, pruned: r.pruned, statusWritten: r.statusWritten } };
      }),
      this.ltInformer &&
        this.runController('arenaloadtest', this.ltQueue, Math.max(1, Math.min(2, this.o.workers)), async (key) => {
          const r = await ltReconciler.reconcile(key);
          if (r.requeueAfterMs !== undefined) this.ltQueue.addAfter(key, r.requeueAfterMs);
          return {
            changed: r.applied.length > 0 || r.statusWritten,
            fields: { applied: r.applied, statusWritten: r.statusWritten },
          };
        }),
    ]).then(() => undefined);
  }

  /** Run one controller's workers on its queue, with its metrics and logs. */
  private runController(
    controller: string,
    queue: WorkQueue,
    workers: number,
    reconcile: (key: string) => Promise<{ changed: boolean; fields: Record<string, unknown> }>,
  ): Promise<void> {
    // every series present from the start at 0, as controller-runtime initialises its per-controller metrics
    this.metrics.reconcileErrors.inc({ controller }, 0);
    for (const result of ['success', 'error']) this.metrics.reconcileTotal.inc({ controller, result }, 0);
    return queue.run(
      workers,
      async (key) => {
        const end = this.metrics.reconcileDuration.startTimer({ controller });
        try {
          const r = await reconcile(key);
          this.metrics.reconcileTotal.inc({ controller, result: 'success' });
          if (r.changed) this.log.info({ controller, key, ...r.fields }, 'reconciled');
          else this.log.debug({ controller, key }, 'reconciled: no change');
        } finally {
          end();
          this.setDepth();
        }
      },
      (key, err, retryInMs) => {
        this.metrics.reconcileTotal.inc({ controller, result: 'error' });
        this.metrics.reconcileErrors.inc({ controller });
        this.log.warn({ controller, key, err: errText(err), retryInMs }, 'reconcile failed; retrying with backoff');
      },
    );
  }

  /** Graceful shutdown: stop watching, let workers finish their current key, release the lease, close servers. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.phase = 'stopping';
    this.log.info('shutting down');
    clearInterval(this.resyncTimer);
    this.arenaInformer?.stop();
    this.ltInformer?.stop();
    for (const i of this.informers.values()) i.stop();
    this.queue.shutDown();
    this.ltQueue.shutDown();
    await this.running;
    await this.leader?.release();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.kube.client.close();
  }
}
