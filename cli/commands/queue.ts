import type { Command } from 'commander';
import { Option } from 'commander';
import Table from 'cli-table3';
import { analyzeQueue, type QueueResult } from '../../operator/planner/erlang.js';
import { durationMs, nonNegative, positive, positiveInt } from '../options.js';

/** The options of `arena queue` (rates per second, times in ms). */
interface QueueOptions {
  arrivalRate: number;
  serviceTime: number;
  servers: number;
  cv: number;
  visits?: number;
  output: 'table' | 'json';
}

/**
 * The queue `arena queue` analyses. Without --visits: one visit per arrival, as given. With --visits N
 * (transactions per request, as spec.load.requestMix[].dbTransactions): --arrival-rate and --service-time
 * are per request, so the queue sees N x arrival-rate visits per second of service-time / N ms each, --cv
 * being one visit's; the result adds visitsPerRequest and meanWaitPerRequestMs = N x the mean wait per visit
 * (null when unstable). No per-request P99: the P99 of a sum of waits is not N x the P99 per visit.
 */
export function queueFor(
  o: QueueOptions,
): QueueResult | (QueueResult & { visitsPerRequest: number; meanWaitPerRequestMs: number | null }) {
  if (o.visits === undefined) return analyzeQueue(o.servers, o.arrivalRate, o.serviceTime, o.cv * o.cv);
  const n = o.visits;
  const q = analyzeQueue(o.servers, o.arrivalRate * n, o.serviceTime / n, o.cv * o.cv);
  return { ...q, visitsPerRequest: n, meanWaitPerRequestMs: q.meanWaitMs === null ? null : n * q.meanWaitMs };
}

/** `arena queue`: the Erlang C / Allen-Cunneen calculator on its own. */
export function registerQueue(program: Command): void {
  program
    .command('queue')
    .description('Erlang C (M/M/c) queue calculator, with the Allen-Cunneen correction for --cv != 1')
    .requiredOption('--arrival-rate <per-second>', 'arrival rate, requests per second', positive)
    .requiredOption('--service-time <duration>', 'mean service time: 250ms, 10s, 2m (a bare number is ms)', durationMs)
    .requiredOption('--servers <count>', 'number of servers (connections, slots)', positiveInt)
    .option('--cv <x>', 'coefficient of variation of the service time (1 = exponential, 0 = constant)', nonNegative, 1)
    .option(
      '--visits <n>',
      'visits (transactions) per request: the queue sees n x arrival-rate visits of service-time / n each ' +
        '(--cv per visit); adds the mean wait per request = n x the mean wait per visit',
      positiveInt,
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action((opts: QueueOptions) => {
      const q = queueFor(opts);
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify(q, null, 2)}\n`);
        return;
      }
      const t = new Table({ style: { head: [], border: [], compact: true } });
      const f = (n: number | null, unit = '') =>
        n === null ? 'unbounded (utilisation >= 1)' : `${n.toFixed(n < 1 ? 4 : 2)}${unit}`;
      const perVisit = 'visitsPerRequest' in q ? ' per visit' : '';
      t.push(
        { servers: String(q.servers) },
        { [`arrival rate${perVisit ? ' (visits)' : ''}`]: `${q.arrivalRatePerSecond}/s` },
        { [`service time${perVisit}`]: `${q.serviceTimeMs} ms (cv^2 ${q.serviceCv2})` },
        { 'offered load': `${f(q.offeredLoad)} Erlangs` },
        { utilisation: f(q.utilization) },
        { 'P(wait)': f(q.pWait) },
        { [`mean wait${perVisit}`]: f(q.meanWaitMs === null ? null : q.meanWaitMs / 1000, ' s') },
        { [`P99 wait${perVisit}`]: f(q.p99WaitMs === null ? null : q.p99WaitMs / 1000, ' s') },
      );
      if ('visitsPerRequest' in q)
        t.push(
          { 'visits per request': String(q.visitsPerRequest) },
          {
            'mean wait per request': f(q.meanWaitPerRequestMs === null ? null : q.meanWaitPerRequestMs / 1000, ' s'),
          },
        );
      process.stdout.write(`${t.toString()}\n`);
    });
}
