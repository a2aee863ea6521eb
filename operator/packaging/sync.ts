#!/usr/bin/env node
/**
 * Files that are copied or generated from a single source of truth, and the
 * command that refreshes them:
 *
 *   node dist/operator/packaging/sync.js chart     # make chart-sync
 *   node dist/operator/packaging/sync.js samples   # make samples-sync
 *   node dist/operator/packaging/sync.js --check   # exit 1 and list what is stale
 *
 * - chart: the CRD (crds/ -> charts/arena-operator/crds/) and the operator's
 *   RBAC (operator/rbac/ -> charts/arena-operator/files/rbac/; Helm's .Files
 *   cannot read outside the chart), and the values table of the chart's README
 *   (from the `# --` comments in values.yaml);
 * - samples: the "arena plan summary" comment at the top of each sample listed
 *   in SAMPLES, computed with plan().
 *
 * The tests in this folder compare the files with what this module generates,
 * so a change to a source that is not synced fails `make test`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { validateText } from '../api/v1alpha1/validate.js';
import { plan } from '../planner/plan.js';
import type { CapacityPlan } from '../planner/types.js';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';

export const CHART = repoPath('charts/arena-operator');
/** Samples whose top comment carries the plan summary (small, medium and the 10k case). */
export const SAMPLES = ['samples/arena-small.yaml', 'samples/arena-medium.yaml', 'samples/arena-10k.yaml'];

export interface Generated {
  /** Absolute path of the file. */
  path: string;
  /** What the file must contain. */
  content: string;
  /** Where it comes from, for messages. */
  source: string;
}

const read = (p: string) => readFileSync(p, 'utf8');

// ---------------------------------------------------------------- chart: copies

/** Verbatim copies into the chart. */
export function chartCopies(): Generated[] {
  const copies: [string, string][] = [
    ['crds/arenadeployment.yaml', 'charts/arena-operator/crds/arenadeployment.yaml'],
    ['crds/arenaloadtest.yaml', 'charts/arena-operator/crds/arenaloadtest.yaml'],
    ['operator/rbac/role.yaml', 'charts/arena-operator/files/rbac/role.yaml'],
    ['operator/rbac/leader-election-role.yaml', 'charts/arena-operator/files/rbac/leader-election-role.yaml'],
  ];
  return copies.map(([from, to]) => ({ path: repoPath(to), content: read(repoPath(from)), source: from }));
}

// ---------------------------------------------------------------- chart: README values table

export interface ValueDoc {
  /** Dotted path, e.g. `metrics.serviceMonitor.enabled`. */
  key: string;
  type: string;
  /** The default, as one line of YAML-ish JSON. */
  default: string;
  description: string;
}

const typeOf = (v: unknown) =>
  Array.isArray(v)
    ? 'list'
    : v === null
      ? 'null'
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? 'int'
          : 'float'
        : typeof v === 'object'
          ? 'object'
          : typeof v;

function getPath(obj: unknown, path: string[]): unknown {
  let cur: any = obj;
  for (const p of path) cur = cur?.[p];
  return cur;
}

/**
 * The documented values of values.yaml: a key is documented by the `# --`
 * comment (continued by following `#` lines) right above it; a documented map
 * is one row (its whole default); an undocumented map is descended into. Throws
 * when a leaf value has no description, so every value ends up in the README.
 */
export function valuesDocs(text: string): ValueDoc[] {
  const values = parse(text) as Record<string, unknown>;
  const docs: ValueDoc[] = [];
  const stack: { indent: number; key: string }[] = [];
  const documented = new Set<string>();
  let pending: string[] | null = null;
  const lines = text.split('\n');
  for (const line of lines) {
    const comment = /^\s*# -- ?(.*)$/.exec(line);
    if (comment) {
      pending = [comment[1]!.trim()];
      continue;
    }
    const cont = /^\s*#\s?(.*)$/.exec(line);
    if (cont) {
      if (pending) pending.push(cont[1]!.trim());
      continue;
    }
    const key = /^(\s*)([A-Za-z0-9_]+):(?:\s|$)/.exec(line);
    if (!key) {
      if (line.trim() === '') pending = null;
      continue;
    }
    const indent = key[1]!.length;
    while (stack.length && stack[stack.length - 1]!.indent >= indent) stack.pop();
    // keys inside a documented value (e.g. resources.requests.cpu) are part of its default
    const parent = stack.map((s) => s.key);
    const insideDocumented = parent.some((_, i) => documented.has(parent.slice(0, i + 1).join('.')));
    stack.push({ indent, key: key[2]! });
    if (insideDocumented) {
      pending = null;
      continue;
    }
    const path = stack.map((s) => s.key);
    const value = getPath(values, path);
    if (pending) {
      docs.push({
        key: path.join('.'),
        type: typeOf(value),
        default: JSON.stringify(value),
        description: pending.join(' '),
      });
      documented.add(path.join('.'));
      pending = null;
    } else if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) {
      throw new Error(`values.yaml: ${path.join('.')} has no "# --" description`);
    }
  }
  return docs;
}

const BEGIN = '<!-- values:begin (generated from values.yaml by `make chart-sync`; do not edit) -->';
const END = '<!-- values:end -->';

export function valuesTable(docs: ValueDoc[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = docs.map((d) => `| \`${d.key}\` | ${d.type} | \`${esc(d.default)}\` | ${esc(d.description)} |`);
  return [BEGIN, '| key | type | default | description |', '|---|---|---|---|', ...rows, END].join('\n');
}

/** The chart's README with its values table regenerated. */
export function chartReadme(): Generated {
  const path = `${CHART}/README.md`;
  const readme = read(path);
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < b) throw new Error(`${relative(repoPath(), path)}: missing the ${BEGIN} ... ${END} markers`);
  const table = valuesTable(valuesDocs(read(`${CHART}/values.yaml`)));
  return {
    path,
    content: readme.slice(0, b) + table + readme.slice(e + END.length),
    source: 'charts/arena-operator/values.yaml',
  };
}

// ---------------------------------------------------------------- samples: plan summaries

const n = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 1 });
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The plan summary of one ArenaDeployment, as the comment lines that follow `# arena plan summary`. */
export function planSummaryLines(ad: ArenaDeployment, p: CapacityPlan): string[] {
  const api = ad.spec.api;
  const c = p.connections;
  const out: string[] = [];
  const row = (k: string, v: string) => out.push(`#   ${`${k}:`.padEnd(26)}${v}`);
  row(
    'replicas',
    `min ${p.replicas.min}, max ${p.replicas.max}${p.hpa.enabled ? ` (HPA, CPU target ${p.hpa.targetCPUUtilizationPercentage}%)` : ' (fixed)'}; ${p.replicas.neededForTarget} needed for the target`,
  );
  row(
    'per pod',
    `${api.workersPerPod} workers x ${api.concurrencyPerWorker} = ${n(p.replicas.perPodConcurrency)} in flight`,
  );
  row(
    'connections per pod',
    `${n(c.perPod)} DB (${api.workersPerPod} x (${api.db.poolSize} + ${api.db.maxOverflow})), ${n(c.redisPerPod)} Redis`,
  );
  if (p.pgbouncer.enabled) {
    const pg = p.pgbouncer;
    row(
      'PgBouncer',
      `${pg.replicas} x pool_mode=${pg.poolMode} max_client_conn=${pg.maxClientConn} default_pool_size=${pg.defaultPoolSize} reserve_pool_size=${pg.reservePoolSize}`,
    );
    if (c.appToPgbouncer)
      row(
        'app -> PgBouncer',
        `${n(c.appToPgbouncer.atMaxReplicas)} of ${n(c.appToPgbouncer.limit)} (${pct(c.appToPgbouncer.utilization)})`,
      );
    if (c.pgbouncerToPostgres)
      row(
        'PgBouncer -> PostgreSQL',
        `${n(c.pgbouncerToPostgres.total)} of ${n(c.pgbouncerToPostgres.limit)} (${pct(c.pgbouncerToPostgres.utilization)})`,
      );
  } else if (c.appToPostgres) {
    row(
      'app -> PostgreSQL',
      `${n(c.appToPostgres.atMaxReplicas)} of ${n(c.appToPostgres.limit)} (${pct(c.appToPostgres.utilization)})`,
    );
  }
  row('Redis clients', `${n(c.redis.atMaxReplicas)} of maxclients ${n(c.redis.limit)} (${pct(c.redis.utilization)})`);
  const busiest = Object.entries(p.queues).sort((a, b) => b[1].utilization - a[1].utilization)[0];
  if (busiest) row('busiest queue', `${busiest[0]} at ${pct(busiest[1].utilization)}`);
  const findings = p.findings.map((f) => `${f.severity} ${f.code}`);
  row('findings', findings.length ? findings.join(', ') : 'none');
  return out;
}

const SUMMARY_HEAD = '# arena plan summary';

/** A sample file with its summary block (the `# arena plan summary` line and the `#   ` lines after it) regenerated. */
export function sampleWithSummary(file: string): Generated {
  const path = repoPath(file);
  const text = read(path);
  const docs = validateText(text);
  const d = docs[0];
  if (docs.length !== 1 || !d?.object)
    throw new Error(`${file}: expected one valid ArenaDeployment: ${JSON.stringify(d?.errors ?? [])}`);
  const head = `${SUMMARY_HEAD} (\`arena plan -f ${file}\`; checked by operator/packaging/samples.test.ts, refreshed by \`make samples-sync\`):`;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(SUMMARY_HEAD));
  if (start < 0) throw new Error(`${file}: no "${SUMMARY_HEAD}" comment`);
  let end = start + 1;
  while (end < lines.length && lines[end]!.startsWith('#   ')) end++;
  const block = [head, ...planSummaryLines(d.object, plan(d.object))];
  return {
    path,
    content: [...lines.slice(0, start), ...block, ...lines.slice(end)].join('\n'),
    source: `plan() of ${file}`,
  };
}

export function generated(group: 'chart' | 'samples' | 'all'): Generated[] {
  const out: Generated[] = [];
  if (group !== 'samples') out.push(...chartCopies(), chartReadme());
  if (group !== 'chart') out.push(...SAMPLES.map(sampleWithSummary));
  return out;
}

/** The generated files whose content on disk differs. */
export function stale(files: Generated[]): Generated[] {
  return files.filter((g) => {
    try {
      return read(g.path) !== g.content;
    } catch {
      return true;
    }
  });
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const group = (argv.find((a) => !a.startsWith('-')) ?? 'all') as 'chart' | 'samples' | 'all';
  if (!['chart', 'samples', 'all'].includes(group)) {
    process.stderr.write(`usage: sync.js [chart|samples|all] [--check]\n`);
    return 2;
  }
  const bad = stale(generated(group));
  for (const g of bad) {
    const rel = relative(repoPath(), g.path);
    if (check) process.stdout.write(`stale: ${rel} (from ${g.source})\n`);
    else {
      writeFileSync(g.path, g.content);
      process.stdout.write(`wrote ${rel} (from ${g.source})\n`);
    }
  }
  if (!bad.length) process.stdout.write(`${group}: up to date\n`);
  return check && bad.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = main(process.argv.slice(2));
