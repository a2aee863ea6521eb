/**
 * The human view of a capacity plan: coloured tables (cli-table3 + chalk).
 * Colour is off when stdout is not a terminal or NO_COLOR is set (chalk's rules).
 */
import chalk from 'chalk';
import Table from 'cli-table3';
import type { CapacityPlan, QueueName } from '../../operator/planner/types.js';

const pct = (u: number) => `${(u * 100).toFixed(1)}%`;
const num = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d });
const ms = (n: number | null) => (n === null ? chalk.red('unbounded') : `${num(n, n < 10 ? 2 : 0)} ms`);

/** Colour a utilisation: green below 70%, yellow below 90% (85% for queues), red above. */
function util(u: number, warnAt = 0.7, errAt = 0.9): string {
  const s = pct(u);
  return u >= errAt ? chalk.red(s) : u >= warnAt ? chalk.yellow(s) : chalk.green(s);
}

function table(head: string[]): Table.Table {
  return new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [], compact: true } });
}

const QUEUE_LABEL: Record<QueueName, string> = {
  appDbPool: 'app DB pool',
  pgbouncerServerPool: 'PgBouncer server pool',
  llmSlots: 'LLM slots',
  asyncConsumers: 'async consumers',
  llmRateLimit: 'LLM rate limit',
};

/** Render a plan as text tables. */
export function planTable(p: CapacityPlan): string {
  const out: string[] = [];
  out.push(chalk.bold(`Capacity plan for ${p.metadata.namespace}/${p.metadata.name}`));
  const w = p.workload;
  out.push(
    `Target ${num(w.targetConcurrency)} in flight (baseline ${num(w.baselineConcurrency)}): ${num(w.arrivalRatePerSecond, 1)} req/s, ${num(w.apiConcurrency)} in the API, ${num(w.llmCallsPerSecond, 1)} LLM calls/s`,
  );

  const kinds = table(['request kind', 'kind', 'share', 'req/s', 'mean latency', 'in flight', 'in API']);
  for (const [name, k] of Object.entries(w.kinds))
    kinds.push([
      name,
      k.kind,
      pct(k.share),
      num(k.arrivalRatePerSecond, 1),
      ms(k.meanLatencyMs),
      num(k.concurrency),
      num(k.apiConcurrency),
    ]);
  out.push(kinds.toString());

  const r = p.replicas;
  const rep = table(['replicas', 'value']);
  rep.push(
    ['min (baseline)', String(r.min)],
    ['max (target)', String(r.max)],
    ['needed for target', String(r.neededForTarget)],
    ['connection cap', r.connectionCap === null ? 'none' : String(r.connectionCap)],
    ['per-pod concurrency', num(r.perPodConcurrency)],
  );
  out.push(rep.toString());

  const c = p.connections;
  const conn = table(['connections at maxReplicas', 'used', 'limit', 'utilisation']);
  conn.push(['per pod (workers x (pool_size + max_overflow))', num(c.perPod), '', '']);
  if (c.appToPgbouncer)
    conn.push([
      'app -> PgBouncer (max_client_conn)',
      num(c.appToPgbouncer.atMaxReplicas),
      num(c.appToPgbouncer.limit),
      util(c.appToPgbouncer.utilization),
    ]);
  if (c.pgbouncerToPostgres)
    conn.push([
      'PgBouncer -> PostgreSQL',
      num(c.pgbouncerToPostgres.total),
      num(c.pgbouncerToPostgres.limit),
      util(c.pgbouncerToPostgres.utilization),
    ]);
  if (c.appToPostgres)
    conn.push([
      'app -> PostgreSQL (no PgBouncer)',
      num(c.appToPostgres.atMaxReplicas),
      num(c.appToPostgres.limit),
      util(c.appToPostgres.utilization),
    ]);
  conn.push(['app -> Redis (maxclients)', num(c.redis.atMaxReplicas), num(c.redis.limit), util(c.redis.utilization)]);
  out.push(conn.toString());

  if (p.pgbouncer.enabled) {
    const b = p.pgbouncer;
    out.push(
      `PgBouncer x${b.replicas}: pool_mode=${b.poolMode} max_client_conn=${b.maxClientConn} default_pool_size=${b.defaultPoolSize} reserve_pool_size=${b.reservePoolSize} (fds ${num(b.fileDescriptors)}); Redis maxclients=${num(p.redis.maxClients)} (fds ${num(p.redis.fileDescriptors)})`,
    );
  }

  const q = table([
    'queue at target',
    'servers',
    'req/s',
    'service',
    'utilisation',
    'P(wait)',
    'mean wait',
    'P99 wait',
  ]);
  for (const [name, v] of Object.entries(p.queues) as [QueueName, NonNullable<CapacityPlan['queues'][QueueName]>][]) {
    q.push([
      QUEUE_LABEL[name],
      v.partitions > 1 ? `${num(v.servers)} (${v.partitions} x ${v.servers / v.partitions})` : num(v.servers),
      num(v.arrivalRatePerSecond, 1),
      ms(v.serviceTimeMs),
      util(v.utilization, 0.7, 0.85),
      v.stable ? v.pWait.toFixed(3) : chalk.red('1'),
      ms(v.meanWaitMs),
      ms(v.p99WaitMs),
    ]);
  }
  out.push(q.toString());

  if (p.findings.length === 0) out.push(chalk.green('No findings: the plan holds the target.'));
  for (const f of p.findings)
    out.push(
      `${f.severity === 'error' ? chalk.red('error  ') : chalk.yellow('warning')} ${chalk.bold(f.code)}: ${f.message}`,
    );

  if (p.derivations) {
    const d = new Table({
      head: ['value', 'formula', 'inputs', 'source'].map((h) => chalk.bold(h)),
      style: { head: [], border: [] },
      colWidths: [34, 44, 40, 30],
      wordWrap: true,
    });
    for (const [path, v] of Object.entries(p.derivations)) {
      const inputs = Object.entries(v.inputs)
        .map(([k, x]) => `${k}=${x}`)
        .join(', ');
      d.push([`${path} = ${v.value} ${v.unit}`, v.formula, inputs, v.source]);
    }
    out.push(chalk.bold('Derivations'), d.toString());
  }
  return out.join('\n');
}
