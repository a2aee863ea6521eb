/**
 * `arena loadtest collect NAME`: the merged result of a distributed run (an
 * ArenaLoadTest the operator has merged) written locally as DIR/result.json,
 * DIR/report.html and DIR/junit.xml, with the terminal report on stdout.
 *
 * Exit codes: 0 the test Succeeded and every threshold passed on the merged
 * result; 1 a threshold failed, the test Failed (its partial result is still
 * written), or it has no merged result yet / cannot be read; 2 bad flags.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { collectMergedResult } from '../../loadtest/distributed/collect.js';
import { runnerKubeConfig } from '../../loadtest/distributed/runner.js';
import { writeResult } from '../../loadtest/engine/run.js';
import { reportText } from '../../loadtest/report/terminal.js';
import { UserError } from '../errors.js';
import { writeReports } from './loadtest-report.js';

interface CollectOpts {
  namespace?: string;
  kubeconfig?: string;
  out?: string;
  output?: string;
  quiet?: boolean;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

async function collect(name: string, o: CollectOpts): Promise<void> {
  if (!NAME.test(name) || name.length > 253)
    throw new UserError(`NAME: ${JSON.stringify(name)} is not a Kubernetes object name`);
  if (o.output !== undefined && o.output !== 'text' && o.output !== 'json')
    throw new UserError(`--output: expected text or json, got ${JSON.stringify(o.output)}`);
  const kc = runnerKubeConfig(o.kubeconfig);
  const namespace = o.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const { status, result } = await collectMergedResult(kc, namespace, name);
  const dir = resolve(o.out ?? join('out', 'loadtest', name));
  const file = writeResult(dir, result);
  const reports = writeReports(dir, result);
  process.stdout.write(o.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : reportText(result));
  if (!o.quiet) {
    const partial = status.summary?.partial ? ' (partial: some runner did not publish; see status.runners)' : '';
    process.stderr.write(
      `[loadtest] ArenaLoadTest ${namespace}/${name}: phase ${status.phase}${partial}; wrote ${file}, ${reports.html}, ${reports.junit}\n`,
    );
  }
  if (status.phase !== 'Succeeded' || !result.passed) process.exitCode = 1;
}

/** Register `arena loadtest collect NAME` under `arena loadtest`. */
export function registerCollect(lt: Command): void {
  lt.command('collect')
    .description(
      'write the merged result of a distributed run (ArenaLoadTest NAME) as DIR/result.json, report.html and junit.xml; exit 1 when it failed or a threshold failed',
    )
    .argument('<name>', 'the ArenaLoadTest')
    .option('-n, --namespace <ns>', "its namespace (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <file>', 'the credentials (default: in-cluster, else $KUBECONFIG / ~/.kube/config)')
    .option('--out <dir>', 'where to write (default: out/loadtest/NAME)')
    .option('-o, --output <format>', 'stdout: text (the terminal report) or json (result.json)')
    .option('-q, --quiet', 'no progress line on stderr')
    .action((name: string, opts: CollectOpts) => collect(name, opts));
}
