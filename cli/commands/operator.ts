import { getHeapStatistics } from 'node:v8';
import type { Command } from 'commander';
import { Option } from 'commander';
// The operator's modules (its apiserver client, informers, reconcilers) are loaded only when it runs:
// about 30 MiB of RSS the re-executing parent (operator/heap.ts) does not need.
import type { Manager } from '../../operator/controller/manager.js';
import { HEAP_SIZED_ENV, containerMemoryLimit, sizeHeapFromContainerLimit } from '../../operator/heap.js';
import { durationMs, positiveInt } from '../options.js';
import { UserError } from '../errors.js';

const mib = (bytes: number | undefined) => (bytes === undefined ? null : Math.round(bytes / 2 ** 20));

const ADDR = /^(?:[\w.-]+:)?\d{1,5}$|^0$/;
function address(flag: string) {
  return (v: string) => {
    if (!ADDR.test(v)) throw new UserError(`${flag}: must be HOST:PORT, :PORT or 0 (off), got ${JSON.stringify(v)}`);
    return v.startsWith(':') ? `0.0.0.0${v}` : v;
  };
}

/** `arena operator run`: the controller, out-of-cluster (kubeconfig) or in-cluster (service account). */
export function registerOperator(program: Command): void {
  const op = program.command('operator').description('the ArenaDeployment operator');
  op.command('run')
    .description('run the operator: watch ArenaDeployments and keep their children in shape')
    .option(
      '--kubeconfig <file>',
      'kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)',
    )
    .option('--namespace <ns>', 'watch only this namespace (default: all)')
    .option('--workers <n>', 'parallel reconciles', positiveInt, 4)
    .option('--metrics-bind-address <addr>', 'address of /metrics (0 = off)', '127.0.0.1:8080')
    .option('--health-probe-bind-address <addr>', 'address of /healthz and /readyz (0 = off)', '127.0.0.1:8081')
    .option(
      '--leader-elect',
      'elect a leader through a Lease before reconciling (use with more than one replica)',
      false,
    )
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: the pod namespace, else default)')
    .option('--leader-election-id <name>', 'name of the Lease', 'arena-operator')
    .option('--resync-period <duration>', 'reconcile every ArenaDeployment this often', durationMs, 600_000)
    .option(
      '--relist-period <duration>',
      'replace every watch with a fresh list+watch this often (guards against stalled watches)',
      durationMs,
      300_000,
    )
    .addOption(
      new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'),
    )
    .action(async (opts: Record<string, any>) => {
      const metrics = address('--metrics-bind-address')(opts.metricsBindAddress);
      const probes = address('--health-probe-bind-address')(opts.healthProbeBindAddress);
      // Under a container memory limit: re-execute once with V8's old space at 60% of it (operator/heap.ts).
      await sizeHeapFromContainerLimit();
      const { Manager } = await import('../../operator/controller/manager.js');
      let manager: Manager;
      try {
        manager = new Manager({
          kubeconfig: opts.kubeconfig,
          namespace: opts.namespace,
          workers: opts.workers,
          metricsBindAddress: metrics,
          healthProbeBindAddress: probes,
          leaderElect: opts.leaderElect === true,
          leaderElectionNamespace: opts.leaderElectionNamespace ?? process.env['POD_NAMESPACE'] ?? 'default',
          leaderElectionId: opts.leaderElectionId,
          resyncPeriodMs: opts.resyncPeriod,
          relistPeriodMs: opts.relistPeriod,
          logLevel: opts.logLevel,
        });
      } catch (e) {
        throw new UserError(
          `cannot load the kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${(e as Error).message}`,
        );
      }
      manager.log.info(
        {
          memoryLimitMiB: mib(containerMemoryLimit()),
          heapSizeLimitMiB: mib(getHeapStatistics().heap_size_limit),
          heapFlag: process.env[HEAP_SIZED_ENV] ?? null,
        },
        'heap',
      );
      const shutdown = (signal: string) => {
        manager.log.info({ signal }, 'signal received');
        void manager.stop().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      try {
        await manager.run();
      } catch (e) {
        const msg = (e as Error).message;
        if (/EADDRINUSE/.test(msg))
          throw new UserError(
            `cannot listen: ${msg} (choose another --metrics-bind-address / --health-probe-bind-address)`,
          );
        throw e;
      }
    });
}
