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
  apiEventLoop: 'API event loop',
};

/** The workload at the target: rates, latencies and concurrency per request kind. */
function workloadLines(p: CapacityPlan): string[] {
  const w = p.workload;
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
  return [
    chalk.bold(`Capacity plan for ${p.metadata.namespace}/${p.metadata.name}`),
    `Target ${num(w.targetConcurrency)} in flight (baseline ${num(w.baselineConcurrency)}): ${num(w.arrivalRatePerSecond, 1)} req/s, ${num(w.apiConcurrency)} in the API, ${num(w.llmCallsPerSecond, 1)} LLM calls/s`,
    kinds.toString(),
  ];
}

function replicaLines(p: CapacityPlan): string[] {
  const r = p.replicas;
  const rep = table(['replicas', 'value']);
  rep.push(
    ['min (baseline)', String(r.min)],
    ['max (target)', String(r.max)],
    ['needed for target', String(r.neededForTarget)],
    ['connection cap', r.connectionCap === null ? 'none' : String(r.connectionCap)],
    ['per-pod concurrency', num(r.perPodConcurrency)],
  );
  return [rep.toString()];
}

function connectionLines(p: CapacityPlan): string[] {
  const c = p.connections;
  const conn = table(['connections at maxReplicas', 'used', 'limit', 'utilisation']);
  conn.push(['per pod (workers x (pool_size + max_overflow))', num(c.perPod), '', '']);
  const row = (label: string, used: number, limit: number, u: number) =>
    conn.push([label, num(used), num(limit), util(u)]);
  if (c.appToPgbouncer)
    row(
      'app -> PgBouncer (max_client_conn)',
      c.appToPgbouncer.atMaxReplicas,
      c.appToPgbouncer.limit,
      c.appToPgbouncer.utilization,
    );
  if (c.pgbouncerToPostgres)
    row(
      'PgBouncer -> PostgreSQL',
      c.pgbouncerToPostgres.total,
      c.pgbouncerToPostgres.limit,
      c.pgbouncerToPostgres.utilization,
    );
  if (c.appToPostgres)
    row(
      'app -> PostgreSQL (no PgBouncer)',
      c.appToPostgres.atMaxReplicas,
      c.appToPostgres.limit,
      c.appToPostgres.utilization,
    );
  row('app -> Redis (maxclients)', c.redis.atMaxReplicas, c.redis.limit, c.redis.utilization);
  const out = [conn.toString()];
  if (p.pgbouncer.enabled) {
    const b = p.pgbouncer;
    out.push(
      `PgBouncer x${b.replicas}: pool_mode=${b.poolMode} max_client_conn=${b.maxClientConn} default_pool_size=${b.defaultPoolSize} reserve_pool_size=${b.reservePoolSize} (fds ${num(b.fileDescriptors)}); Redis maxclients=${num(p.redis.maxClients)} (fds ${num(p.redis.fileDescriptors)})`,
    );
  }
  return out;
}

function queueLines(p: CapacityPlan): string[] {
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
  return [q.toString()];
}

function findingLines(p: CapacityPlan): string[] {
  if (p.findings.length === 0) return [chalk.green('No findings: the plan holds the target.')];
  return p.findings.map(
    (f) =>
      `${f.severity === 'error' ? chalk.red('error  ') : chalk.yellow('warning')} ${chalk.bold(f.code)}: ${f.message}`,
  );
}

function derivationLines(p: CapacityPlan): string[] {
  if (!p.derivations) return [];
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
  return [chalk.bold('Derivations'), d.toString()];
}

/** Render a plan as text tables: workload, replicas, connection budgets, queues, findings, and the derivations with --explain. */
export function planTable(p: CapacityPlan): string {
  return [
    ...workloadLines(p),
    ...replicaLines(p),
    ...connectionLines(p),
    ...queueLines(p),
    ...findingLines(p),
    ...derivationLines(p),
  ].join('\n');
}
