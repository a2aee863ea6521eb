import type { Command } from 'commander';
import { Option } from 'commander';
import Table from 'cli-table3';
import { analyzeQueue } from '../../operator/planner/erlang.js';
import { durationMs, nonNegative, positive, positiveInt } from '../options.js';

/** `arena queue`: the Erlang C / Allen-Cunneen calculator on its own. */
export function registerQueue(program: Command): void {
  program
    .command('queue')
    .description('Erlang C (M/M/c) queue calculator, with the Allen-Cunneen correction for --cv != 1')
    .requiredOption('--arrival-rate <per-second>', 'arrival rate, requests per second', positive)
    .requiredOption('--service-time <duration>', 'mean service time: 250ms, 10s, 2m (a bare number is ms)', durationMs)
    .requiredOption('--servers <count>', 'number of servers (connections, slots)', positiveInt)
    .option('--cv <x>', 'coefficient of variation of the service time (1 = exponential, 0 = constant)', nonNegative, 1)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      (opts: { arrivalRate: number; serviceTime: number; servers: number; cv: number; output: 'table' | 'json' }) => {
        const q = analyzeQueue(opts.servers, opts.arrivalRate, opts.serviceTime, opts.cv * opts.cv);
        if (opts.output === 'json') {
          process.stdout.write(`${JSON.stringify(q, null, 2)}\n`);
          return;
        }
        const t = new Table({ style: { head: [], border: [], compact: true } });
        const f = (n: number | null, unit = '') =>
          n === null ? 'unbounded (utilisation >= 1)' : `${n.toFixed(n < 1 ? 4 : 2)}${unit}`;
        t.push(
          { servers: String(q.servers) },
          { 'arrival rate': `${q.arrivalRatePerSecond}/s` },
          { 'service time': `${q.serviceTimeMs} ms (cv^2 ${q.serviceCv2})` },
          { 'offered load': `${f(q.offeredLoad)} Erlangs` },
          { utilisation: f(q.utilization) },
          { 'P(wait)': f(q.pWait) },
          { 'mean wait': f(q.meanWaitMs === null ? null : q.meanWaitMs / 1000, ' s') },
          { 'P99 wait': f(q.p99WaitMs === null ? null : q.p99WaitMs / 1000, ' s') },
        );
        process.stdout.write(`${t.toString()}\n`);
      },
    );
}
