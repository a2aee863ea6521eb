/**
 * The operator process: informers -> work queue -> reconciler, with leader
 * election, /healthz, /readyz and /metrics, JSON logs and graceful shutdown.
 * `arena operator run` starts it.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { ARENA, CHILD_KINDS, collectionPath, kindKey } from './kinds.js';
import { Kube, loadKubeConfig, type KubeObj } from './kube.js';
import { LeaderElector } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { SupervisedInformer, errText } from './informers.js';
import { WorkQueue } from './queue.js';
import { Reconciler, type Caches } from './reconciler.js';
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
  private readonly queue = new WorkQueue();
  private readonly informers = new Map<string, SupervisedInformer>();
  private arenaInformer?: SupervisedInformer;
  private servers: Server[] = [];
  /** standby: waiting for the Lease (ready: a hot standby); syncing: leader, caches filling; ready: reconciling. */
  private phase: 'starting' | 'standby' | 'syncing' | 'ready' | 'stopping' = 'starting';
  private leader?: LeaderElector;
  private running?: Promise<void>;
  private resyncTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly o: ManagerOptions) {
    this.log = pino({ level: o.logLevel, base: { component: 'arena-operator', identity: this.identity } });
    this.kube = new Kube(loadKubeConfig(o.kubeconfig), this.metrics);
  }

  private caches(): Caches {
    return {
      arena: (ns, name) => this.arenaInformer?.get(name, ns),
      child: (apiVersion, kind, ns, name) => this.informers.get(kindKey(apiVersion, kind))?.get(name, ns),
      children: (apiVersion, kind, ns) => this.informers.get(kindKey(apiVersion, kind))?.list(ns) ?? [],
    };
  }

  private enqueueOwner(obj: KubeObj): void {
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      if (ref.kind === ARENA.kind && ref.apiVersion === ARENA.apiVersion)
        this.queue.add(`${obj.metadata!.namespace}/${ref.name}`);
    }
    this.metrics.queueDepth.set(this.queue.depth);
  }

  /** Serve /metrics and the probes. */
  private async serve(): Promise<void> {
    const handler = (server: 'metrics' | 'probes') =>
      createServer((req, res) => {
        const url = req.url ?? '/';
        if (server === 'metrics' && url === '/metrics') {
          this.metrics.queueDepth.set(this.queue.depth);
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
    const common = { kc: this.kube.kc, relistPeriodMs: this.o.relistPeriodMs, metrics: this.metrics, log: this.log };
    this.arenaInformer = new SupervisedInformer({
      ...common,
      name: ARENA.plural,
      path: collectionPath(ARENA, ns),
      list: this.kube.lister(ARENA, ns),
      onEvent: (obj) => {
        this.queue.add(`${obj.metadata!.namespace}/${obj.metadata!.name}`);
        this.metrics.queueDepth.set(this.queue.depth);
      },
    });
    for (const k of CHILD_KINDS) {
      const selector = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
      this.informers.set(
        kindKey(k.apiVersion, k.kind),
        new SupervisedInformer({
          ...common,
          name: k.plural,
          path: collectionPath(k, ns),
          list: this.kube.lister(k, ns, selector),
          labelSelector: selector,
          onEvent: (obj) => this.enqueueOwner(obj),
        }),
      );
    }
    // Children first, so the first reconciles see them (WaitForCacheSync).
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    await this.arenaInformer.start();
    if (this.stopping) return;
    this.phase = 'ready';
    this.log.info({ workers: this.o.workers, namespace: ns ?? '(all)' }, 'caches synced; starting workers');
    this.resyncTimer = setInterval(() => {
      for (const obj of this.arenaInformer?.list() ?? [])
        this.queue.add(`${obj.metadata!.namespace}/${obj.metadata!.name}`);
    }, this.o.resyncPeriodMs);
    this.resyncTimer.unref();
    const reconciler = new Reconciler(this.kube, this.caches(), this.metrics, this.log, this.identity);
    this.running = this.queue.run(
      this.o.workers,
      async (key) => {
        const end = this.metrics.reconcileDuration.startTimer();
        try {
          const r = await reconciler.reconcile(key);
          this.metrics.reconcileTotal.inc({ result: 'success' });
          if (r.applied.length || r.pruned.length || r.statusWritten)
            this.log.info({ key, applied: r.applied, pruned: r.pruned, statusWritten: r.statusWritten }, 'reconciled');
          else this.log.debug({ key }, 'reconciled: no change');
        } finally {
          end();
          this.metrics.queueDepth.set(this.queue.depth);
        }
      },
      (key, err, retryInMs) => {
        this.metrics.reconcileTotal.inc({ result: 'error' });
        this.metrics.reconcileErrors.inc();
        this.log.warn({ key, err: errText(err), retryInMs }, 'reconcile failed; retrying with backoff');
      },
    );
    await this.running;
  }

  /** Graceful shutdown: stop watching, let workers finish their current key, release the lease, close servers. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.phase = 'stopping';
    this.log.info('shutting down');
    clearInterval(this.resyncTimer);
    this.arenaInformer?.stop();
    for (const i of this.informers.values()) i.stop();
    this.queue.shutDown();
    await this.running;
    await this.leader?.release();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
