import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';

/** The repository root, from dist/cli/commands/dev-cluster.js. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'operator', 'testenv', 'dev-cluster.sh'))) {
    const up = dirname(dir);
    if (up === dir)
      throw new UserError('operator/testenv/dev-cluster.sh not found: run arena from a checkout of the repository');
    dir = up;
  }
  return dir;
}

/** `arena dev-cluster up|down|status`: a local control plane (etcd + kube-apiserver + kube-controller-manager) built from Go modules. */
export function registerDevCluster(program: Command): void {
  const dc = program
    .command('dev-cluster')
    .description(
      'a local Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager), built from Go modules',
    );
  for (const [cmd, what] of [
    ['up', 'build (cached) and start it; prints the kubeconfig path'],
    ['down', 'stop it (by PID)'],
    ['status', 'say whether it runs and is ready'],
  ] as const) {
    dc.command(cmd)
      .description(what)
      .option('--data-dir <dir>', 'state folder (default .tools/dev-cluster)')
      .action((opts: { dataDir?: string }) => {
        const root = repoRoot();
        const args = [
          join(root, 'operator', 'testenv', 'dev-cluster.sh'),
          cmd,
          ...(opts.dataDir ? ['--data-dir', opts.dataDir] : []),
        ];
        const r = spawnSync('bash', args, { stdio: 'inherit' });
        process.exitCode = r.status ?? 1;
      });
  }
}
