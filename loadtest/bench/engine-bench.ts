/**
 * Load-engine benchmark (`make bench-engine`): arena's engine side by side with
 * two peers, in the same run, against the same fixed-latency target
 * (loadtest/bench/target-server.ts, every request held 2.000 s):
 *
 * - `http`: 10,000 in flight. arena and vegeta 12.13 (Go) in the open model at
 *   5,000/s (5,000/s x 2 s = 10,000 in flight), autocannon 9 (Node) in the
 *   closed model with 10,000 connections. P99, P99 - 2000 ms (what the harness
 *   added), peak RSS, CPU seconds.
 * - `sse`: arena only (the peers do not speak SSE): ~1,000 streams in flight
 *   (500/s x ~2 s; first event at once, 20 events 100 ms apart, then
 *   `event: done`). TTFT P99 vs the floor (the first-event delay, 0 ms) and
 *   ITL P99 vs the 100 ms interval.
 * - `cost`: arena's peak RSS and CPU per 1,000 in flight at 1k, 5k and 10k in
 *   flight (500/s, 2,500/s, 5,000/s against the 2 s hold); the 10k point reuses
 *   the `http` case's arena run when that ran.
 *
 * Every tool runs as a child under `/usr/bin/time -f '%e %U %S %M'` (wall, user
 * CPU, sys CPU, max RSS), so all are measured the same external way, one at a
 * time, each against a fresh target (itself under /usr/bin/time: its CPU and RSS
 * are what the shared cores were also doing), with a pause between runs.
 * Latency figures are each tool's own: vegeta's JSON report (ns), autocannon's
 * `--json` (ms; percentiles 2.5/50/97.5/99/99.9 ...), arena's result.json.
 *
 * Before each run it also waits (up to 90 s) until the previous run's
 * TIME_WAIT sockets have expired: thousands of them on 127.0.0.1 make the next
 * 10,000 connect()s far more expensive (see drainTimeWait).
 *
 * Env: BENCH_DURATION (30s), BENCH_ONLY (http,sse,cost), BENCH_TOOLS
 * (arena,vegeta,autocannon), BENCH_PAUSE (5s between runs),
 * BENCH_TIME_WAIT_MAX (1000: start a run when at most this many are left).
 * Peers come from scripts/install-bench-peers.sh (.tools/). Prints a Markdown
 * table per case and writes the raw figures to out/bench-engine/<date>.json.
 * Not a test: numbers depend on the (2-core) machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../../lib/util.js';

// ---------------------------------------------------------------- settings

/** Seconds from "30s", "2m", "1m30s", "45" (whole seconds, >= 1). */
export function parseDurationS(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.max(1, Math.ceil(Number(t)));
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(t)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    end = re.lastIndex;
  }
  if (end !== t.length || end === 0) throw new Error(`bad duration '${text}' (use e.g. 30s, 2m, 1m30s)`);
  return Math.max(1, Math.ceil(total));
}

const CASES = ['http', 'sse', 'cost'] as const;
type CaseName = (typeof CASES)[number];
const TOOL_NAMES = ['arena', 'vegeta', 'autocannon'] as const;
type ToolName = (typeof TOOL_NAMES)[number];

function listEnv<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...all];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((s) => !(all as readonly string[]).includes(s));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(', ')} (choose from ${all.join(', ')})`);
  return items as T[];
}

const HOLD_MS = 2000;
const SSE = { path: '/sse', firstMs: 0, events: 20, intervalMs: 100 };
/** Open-model rate (per s) for `inFlight` requests held HOLD_MS each (Little's law). */
const rateFor = (inFlight: number) => Math.round(inFlight / (HOLD_MS / 1000));

const ARENA_JS = repoPath('dist/cli/arena.js');
const TARGET_JS = repoPath('dist/loadtest/bench/target-server.js');
const VEGETA = process.env['ARENA_VEGETA'] ?? repoPath('.tools/bin/vegeta');
const AUTOCANNON_JS = repoPath('.tools/peers/node_modules/autocannon/autocannon.js');
const GNU_TIME = '/usr/bin/time';

// ---------------------------------------------------------------- processes

/** What /usr/bin/time -f '%e %U %S %M' reported. */
export interface TimeFigures {
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  maxRssKiB: number;
}

/** Parse GNU time's -o file: maybe "Command exited with non-zero status N", then "%e %U %S %M". */
export function parseTimeFile(text: string): TimeFigures | null {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    const f = lines[i]!.split(/\s+/).map(Number);
    if (f.length === 4 && f.every((x) => Number.isFinite(x))) {
      const [wallS, userS, sysS, maxRssKiB] = f as [number, number, number, number];
      return { wallS, userS, sysS, cpuS: Math.round((userS + sysS) * 100) / 100, maxRssKiB };
    }
  }
  return null;
}

/** The open-files limits of this process (inherited by every child). */
function nofileLimits(): { soft: number; hard: number } {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const f = line?.trim().split(/\s+/) ?? [];
  const num = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: num(f[3]), hard: num(f[4]) };
}

/**
 * argv, wrapped in `sh -c 'ulimit -n <hard> && exec ...'` when the soft
 * open-files limit is below `needed` (sockets + slack). Notes go to `notes`.
 */
function withNofile(argv: string[], needed: number, notes: string[]): string[] {
  const { soft, hard } = nofileLimits();
  if (soft >= needed) return argv;
  if (hard < needed)
    notes.push(`open-files hard limit ${hard} < ${needed} needed: raise it (ulimit -Hn) or expect EMFILE`);
  const to = Math.min(hard, 1 << 20);
  notes.push(`soft open-files limit ${soft} < ${needed}: children started with ulimit -n ${to}`);
  return ['sh', '-c', `ulimit -n ${to} && exec "$@"`, 'sh', ...argv];
}

/** PIDs of a process's direct children (/proc/PID/task/TID/children). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** TIME_WAIT sockets in this network namespace (/proc/net/sockstat, `TCP: ... tw N`). */
function timeWaitCount(): number {
  try {
    const m = /^TCP:.*\btw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** TcpExt counters from /proc/net/netstat (ListenOverflows, TCPSynRetrans, ...). */
function tcpExt(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i]!.startsWith('TcpExt:') || !lines[i + 1]!.startsWith('TcpExt:')) continue;
      const names = lines[i]!.split(/\s+/).slice(1);
      const values = lines[i + 1]!.split(/\s+/).slice(1).map(Number);
      names.forEach((n, j) => (out[n] = values[j] ?? 0));
      break;
    }
  } catch {
    /* not Linux */
  }
  return out;
}

/** The kernel TCP counters that explain a latency outlier, as a delta over one run. */
const KERNEL_COUNTERS = [
  'ListenOverflows',
  'ListenDrops',
  'TCPSynRetrans',
  'TCPTimeouts',
  'TCPAbortOnClose',
  'TCPAbortOnData',
] as const;

/**
 * Wait (at most maxS) until the TIME_WAIT sockets of the previous run have
 * expired (Linux keeps them 60 s). Measured on this machine: with ~10,000 of
 * them left on 127.0.0.1, the next 10,000 connect()s cost the client several
 * times the CPU (kernel time) and vegeta fell from 5,000/s to ~3,200/s, so
 * every run starts from the same clean slate. Returns {waitedS, left}.
 */
async function drainTimeWait(max: number, maxS: number): Promise<{ waitedS: number; before: number; left: number }> {
  const t0 = Date.now();
  const before = timeWaitCount();
  let n = before;
  if (n > max)
    process.stderr.write(`[bench] waiting for ${n} TIME_WAIT sockets to expire (<= ${max}, at most ${maxS} s) ...\n`);
  while (n > max && Date.now() - t0 < maxS * 1000) {
    await sleep(1000);
    n = timeWaitCount();
  }
  return { waitedS: Math.round((Date.now() - t0) / 100) / 10, before, left: n };
}

/** Every process this benchmark started and has not seen exit (for cleanup on a signal). */
const live = new Set<ChildProcess>();

/** Signal the measured process under /usr/bin/time (time's child), or time itself when it has none. */
function signalMeasured(timeProc: ChildProcess, sig: NodeJS.Signals): void {
  if (timeProc.pid === undefined || timeProc.exitCode !== null || timeProc.signalCode !== null) return;
  const kids = childPids(timeProc.pid);
  for (const pid of kids.length ? kids : [timeProc.pid]) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

interface Measured {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  time: TimeFigures | null;
}

/**
 * Run argv under /usr/bin/time, wait for it (at most timeoutS, then SIGTERM,
 * then SIGKILL 5 s later, by PID), and return its output and figures.
 */
async function runMeasured(
  argv: string[],
  opts: { timeoutS: number; dir: string; label: string; cwd?: string },
): Promise<Measured> {
  const timeFile = join(opts.dir, `${opts.label}.time`);
  const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...argv], {
    cwd: opts.cwd ?? repoPath(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-200_000);
  });
  let timedOut = false;
  const kill = setTimeout(() => {
    timedOut = true;
    signalMeasured(child, 'SIGTERM');
    setTimeout(() => signalMeasured(child, 'SIGKILL'), 5000).unref();
  }, opts.timeoutS * 1000);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => {
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
      resolve([null, null]);
    });
    child.on('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(kill);
  live.delete(child);
  const time = existsSync(timeFile) ? parseTimeFile(readFileSync(timeFile, 'utf8')) : null;
  return { code, signal, timedOut, stdout, stderr, time };
}

/** What the target server reported on exit (its `stats` line). */
interface TargetStats {
  requests: number;
  responses: number;
  streams: number;
  aborted: number;
  maxOpen: number;
  maxConnections: number;
  lateMs: { count: number; p50: number; p99: number; max: number };
  [k: string]: unknown;
}

interface TargetRun {
  port: number;
  stop(): Promise<{ time: TimeFigures | null; stats: TargetStats | null }>;
}

/** Start a fresh target server under /usr/bin/time; resolves once it prints `listening <port>`. */
async function startTarget(
  args: string[],
  needed: number,
  dir: string,
  label: string,
  notes: string[],
): Promise<TargetRun> {
  const timeFile = join(dir, `${label}.target.time`);
  const argv = withNofile([process.execPath, TARGET_JS, '--port', '0', ...args], needed, notes);
  const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`target server did not start in 15 s: ${err.trim()}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.on('close', (c) => {
      clearTimeout(t);
      reject(new Error(`target server exited (${c}) before listening: ${err.trim()}`));
    });
  }).catch((e: unknown) => {
    signalMeasured(child, 'SIGKILL');
    live.delete(child);
    throw e;
  });
  return {
    port,
    async stop() {
      signalMeasured(child, 'SIGTERM');
      const k = setTimeout(() => signalMeasured(child, 'SIGKILL'), 10_000);
      await closed;
      clearTimeout(k);
      live.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('stats '));
      let stats: TargetStats | null = null;
      try {
        stats = line ? (JSON.parse(line.slice(6)) as TargetStats) : null;
      } catch {
        stats = null;
      }
      return { time: existsSync(timeFile) ? parseTimeFile(readFileSync(timeFile, 'utf8')) : null, stats };
    },
  };
}

// ---------------------------------------------------------------- results

/** One measured run of one tool. */
interface Row {
  case: CaseName;
  tool: ToolName;
  /** e.g. "open, 5,000/s" or "closed, 10,000 conns". */
  model: string;
  inFlight: number;
  rate: number | null;
  connections: number | null;
  /** Not run / failed: why (the figures below are then null). */
  notRun: string | null;
  /** P99 (ms) of the headline metric, its floor, and the difference. */
  p99Ms: number | null;
  floorMs: number;
  addedMs: number | null;
  p50Ms: number | null;
  maxMs: number | null;
  /** Other P99s (arena SSE: ttft, itl), ms, with their floors. */
  extra: Record<string, { p99Ms: number | null; floorMs: number; addedMs: number | null }>;
  requests: number | null;
  okRatio: number | null;
  achievedRate: number | null;
  errors: string[];
  time: TimeFigures | null;
  target: { time: TimeFigures | null; stats: TargetStats | null } | null;
  command: string[];
  /** Kernel TCP counters over the run (ListenOverflows: the accept queue, capped by somaxconn, was full; each costs that client a 1 s SYN retransmit). */
  kernel: Record<string, number> | null;
  /** TIME_WAIT sockets when the run started (after waiting for the previous run's to expire). */
  timeWait: { waitedS: number; before: number; left: number } | null;
  exit: { code: number | null; signal: string | null; timedOut: boolean } | null;
  raw: unknown;
}

const round = (x: number | null | undefined, d = 1): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d;

function emptyRow(c: CaseName, tool: ToolName, model: string, inFlight: number, floorMs: number): Row {
  return {
    case: c,
    tool,
    model,
    inFlight,
    rate: null,
    connections: null,
    notRun: null,
    p99Ms: null,
    floorMs,
    addedMs: null,
    p50Ms: null,
    maxMs: null,
    extra: {},
    requests: null,
    okRatio: null,
    achievedRate: null,
    errors: [],
    time: null,
    target: null,
    command: [],
    kernel: null,
    timeWait: null,
    exit: null,
    raw: null,
  };
}

/**
 * The one place that knows arena's result.json schema (LoadTestResult,
 * schemaVersion 1 as of 2026-11-29; adjust here when it changes):
 * `scenarios.<name>.metrics.<metric>.{p50,p99,max}` in ms (metric names as in
 * loadtest/engine/metric-types.ts: http_req_duration, ttft, itl, ...),
 * `scenarios.<name>.counters.{http_reqs,http_req_failed,dropped_iterations}`,
 * `scenarios.<name>.rates.http_reqs` (/s), and `engine.{clientSaturated,
 * clientSaturatedReasons,peakInFlight,scheduleLagP99Ms,cpuSeconds,peakRssBytes}`.
 * Also accepts k6-like spellings (`p(99)`, `values`, a metric with `count`/`rate`).
 */
export function readArenaResult(
  result: unknown,
  scenario: string,
): {
  p99: (metric: string) => number | null;
  p50: (metric: string) => number | null;
  max: (metric: string) => number | null;
  requests: number | null;
  failedRate: number | null;
  dropped: number | null;
  ratePerS: number | null;
  engine: {
    clientSaturated: boolean | null;
    reasons: string[];
    peakInFlight: number | null;
    scheduleLagP99Ms: number | null;
  };
  /** The figures without the HDR blobs and time series, for the raw JSON. */
  summary: unknown;
} {
  type Obj = Record<string, unknown>;
  const obj = (v: unknown): Obj | undefined =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const r = obj(result);
  const scen = obj(obj(r?.['scenarios'])?.[scenario]) ?? obj(r?.['all']);
  const metrics = obj(scen?.['metrics']) ?? obj(r?.['metrics']);
  const metric = (name: string) => obj(metrics?.[name]);
  const numOf = (m: Obj | undefined, keys: string[]): number | null => {
    for (const k of keys) {
      const v = num(m?.[k] ?? obj(m?.['values'])?.[k] ?? obj(m?.['percentiles'])?.[k]);
      if (v !== null) return v;
    }
    return null;
  };
  const counter = (name: string) =>
    num(obj(scen?.['counters'])?.[name]) ?? num(obj(scen?.['totals'])?.[name]) ?? numOf(metric(name), ['count']);
  const requests = counter('http_reqs');
  const failedCount = num(obj(scen?.['counters'])?.['http_req_failed']);
  const failedRate =
    failedCount !== null && requests ? failedCount / requests : numOf(metric('http_req_failed'), ['rate']);
  const engine = obj(r?.['engine']);
  const reasons = engine?.['clientSaturatedReasons'];
  const strip = (m: Obj | undefined) =>
    m
      ? Object.fromEntries(
          Object.entries(m).map(([k, v]) => [
            k,
            obj(v) ? Object.fromEntries(Object.entries(v as Obj).filter(([kk]) => kk !== 'hdr')) : v,
          ]),
        )
      : null;
  return {
    p99: (name) => numOf(metric(name), ['p99', 'p(99)', '99']),
    p50: (name) => numOf(metric(name), ['p50', 'p(50)', 'med', '50']),
    max: (name) => numOf(metric(name), ['max']),
    requests,
    failedRate,
    dropped: counter('dropped_iterations'),
    ratePerS: num(obj(scen?.['rates'])?.['http_reqs']),
    engine: {
      clientSaturated: typeof engine?.['clientSaturated'] === 'boolean' ? (engine['clientSaturated'] as boolean) : null,
      reasons: Array.isArray(reasons) ? reasons.map(String) : [],
      peakInFlight: num(engine?.['peakInFlight']),
      scheduleLagP99Ms: num(engine?.['scheduleLagP99Ms']),
    },
    summary: {
      status: r?.['status'],
      settings: r?.['settings'],
      metrics: strip(metrics),
      counters: scen?.['counters'] ?? null,
      rates: scen?.['rates'] ?? null,
      engine: engine ?? null,
    },
  };
}

// ---------------------------------------------------------------- the tools

interface RunCtx {
  durationS: number;
  /** Start a run only when at most this many TIME_WAIT sockets are left (waiting up to twWaitS). */
  twMax: number;
  twWaitS: number;
  /** Scratch (deleted at the end): time files, vegeta's results, targets. */
  dir: string;
  /** Kept: arena's --out dirs and scenario files, out/bench-engine/<stamp>/. */
  keepDir: string;
  notes: string[];
  arenaMissing: string | null;
}

/** nofile needed per process: the in-flight sockets plus slack. */
const needFiles = (inFlight: number) => Math.ceil(inFlight * 1.2) + 1024;

/** Fresh target, one tool run under /usr/bin/time, target stopped; fills row.time/target/exit. */
async function measured(
  ctx: RunCtx,
  row: Row,
  targetArgs: string[],
  label: string,
  build: (port: number) => string[],
  timeoutS: number,
): Promise<Measured | null> {
  row.timeWait = await drainTimeWait(ctx.twMax, ctx.twWaitS);
  if (row.timeWait.left > ctx.twMax)
    ctx.notes.push(
      `${row.case}/${row.tool}: started with ${row.timeWait.left} TIME_WAIT sockets left after waiting ${ctx.twWaitS} s`,
    );
  const target = await startTarget(targetArgs, needFiles(row.inFlight), ctx.dir, label, ctx.notes);
  let m: Measured | null = null;
  try {
    const argv = build(target.port);
    row.command = argv.map((a) => a.replace(`127.0.0.1:${target.port}`, '127.0.0.1:PORT'));
    const k0 = tcpExt();
    m = await runMeasured(withNofile(argv, needFiles(row.inFlight), ctx.notes), { timeoutS, dir: ctx.dir, label });
    const k1 = tcpExt();
    row.kernel = Object.fromEntries(KERNEL_COUNTERS.map((k) => [k, (k1[k] ?? 0) - (k0[k] ?? 0)]));
    const lo = row.kernel['ListenOverflows'] ?? 0;
    if (lo > 0)
      ctx.notes.push(
        `${row.case}/${row.tool}: ${lo} listen-queue overflows (SYN retransmitted after 1 s; ${row.kernel['TCPSynRetrans']} SYN retransmits) while it ran`,
      );
  } finally {
    row.target = await target.stop();
  }
  row.time = m.time;
  row.exit = { code: m.code, signal: m.signal, timedOut: m.timedOut };
  return m;
}

const tail = (s: string, n = 300) => {
  const t = s.trim().split('\n').filter(Boolean);
  return (t.slice(-3).join(' | ') || '').slice(-n);
};

async function runVegeta(ctx: RunCtx, c: CaseName, inFlight: number): Promise<Row> {
  const rate = rateFor(inFlight);
  const row = emptyRow(c, 'vegeta', `open, ${rate.toLocaleString('en-US')}/s`, inFlight, HOLD_MS);
  row.rate = rate;
  if (!existsSync(VEGETA)) return { ...row, notRun: `${VEGETA} missing: run scripts/install-bench-peers.sh` };
  const label = `${c}-vegeta-${inFlight}`;
  const targets = join(ctx.dir, `${label}.targets`);
  const results = join(ctx.dir, `${label}.bin`);
  const m = await measured(
    ctx,
    row,
    ['--hold-ms', String(HOLD_MS)],
    label,
    (port) => {
      writeFileSync(targets, `GET http://127.0.0.1:${port}/\n`);
      // -connections: idle keep-alive pool per host (default 10000; above the in-flight count
      // so no connection is closed and re-dialled at the start); -max-connections 0: no cap on
      // open ones; -max-workers caps the goroutines like arena's --max-vus.
      return [
        VEGETA,
        'attack',
        '-targets',
        targets,
        '-rate',
        `${rate}/1s`,
        '-duration',
        `${ctx.durationS}s`,
        '-timeout',
        '30s',
        '-connections',
        String(Math.ceil(inFlight * 1.2)),
        '-max-connections',
        '0',
        '-max-workers',
        String(Math.ceil(inFlight * 1.2)),
        '-output',
        results,
      ];
    },
    ctx.durationS + 90,
  );
  if (!m || m.code !== 0 || !existsSync(results)) {
    row.notRun = `vegeta attack failed (exit ${m?.code}${m?.timedOut ? ', timed out' : ''}): ${tail(m?.stderr ?? '')}`;
    return row;
  }
  const rep = spawnSync(VEGETA, ['report', '-type=json', results], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  rmSync(results, { force: true });
  if (rep.status !== 0) {
    row.notRun = `vegeta report failed: ${tail(rep.stderr ?? String(rep.error))}`;
    return row;
  }
  interface VegetaReport {
    latencies: Record<string, number>;
    requests: number;
    rate: number;
    throughput: number;
    success: number;
    status_codes: Record<string, number>;
    errors: string[] | null;
  }
  const j = JSON.parse(rep.stdout) as VegetaReport;
  const ms = (ns: number | undefined) => (ns === undefined ? null : ns / 1e6);
  row.p99Ms = round(ms(j.latencies['99th']), 1);
  row.p50Ms = round(ms(j.latencies['50th']), 1);
  row.maxMs = round(ms(j.latencies['max']), 1);
  row.addedMs = row.p99Ms === null ? null : round(row.p99Ms - HOLD_MS, 1);
  row.requests = j.requests;
  row.okRatio = j.success;
  row.achievedRate = round(j.rate, 1);
  row.errors = (j.errors ?? []).slice(0, 10);
  row.raw = j;
  return row;
}

async function runAutocannon(ctx: RunCtx, c: CaseName, inFlight: number): Promise<Row> {
  const row = emptyRow(c, 'autocannon', `closed, ${inFlight.toLocaleString('en-US')} conns`, inFlight, HOLD_MS);
  row.connections = inFlight;
  if (!existsSync(AUTOCANNON_JS))
    return { ...row, notRun: `${AUTOCANNON_JS} missing: run scripts/install-bench-peers.sh` };
  const label = `${c}-autocannon-${inFlight}`;
  const m = await measured(
    ctx,
    row,
    ['--hold-ms', String(HOLD_MS)],
    label,
    (port) =>
      // closed model: each connection sends its next request when the previous answer arrived
      // (no -R/--overallRate: that would make it rate-limited but still connection-bound).
      [
        process.execPath,
        AUTOCANNON_JS,
        '-c',
        String(inFlight),
        '-d',
        String(ctx.durationS),
        '-t',
        '30',
        '-j',
        `http://127.0.0.1:${port}/`,
      ],
    ctx.durationS + 90,
  );
  let j: Record<string, unknown> | null = null;
  try {
    j = JSON.parse(m!.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
  } catch {
    j = null;
  }
  if (!m || m.code !== 0 || !j) {
    row.notRun = `autocannon failed (exit ${m?.code}${m?.timedOut ? ', timed out' : ''}): ${tail(m?.stderr ?? '')}`;
    return row;
  }
  const lat = j['latency'] as Record<string, number>;
  const req = j['requests'] as Record<string, number>;
  row.p99Ms = round(lat['p99'], 1);
  row.p50Ms = round(lat['p50'], 1);
  row.maxMs = round(lat['max'], 1);
  row.addedMs = row.p99Ms === null ? null : round(row.p99Ms - HOLD_MS, 1);
  const total = req['total'] ?? null;
  const bad = ((j['errors'] as number) ?? 0) + ((j['timeouts'] as number) ?? 0) + ((j['non2xx'] as number) ?? 0);
  row.requests = total;
  row.okRatio = total ? round((Number(j['2xx']) || 0) / Math.max(1, total), 4) : null;
  row.achievedRate = round(total !== null ? total / Number(j['duration'] ?? ctx.durationS) : null, 1);
  if (bad)
    row.errors = [`errors ${j['errors']}, timeouts ${j['timeouts']}, non2xx ${j['non2xx']}, resets ${j['resets']}`];
  row.raw = j;
  return row;
}

/** `arena loadtest run` in the open model at rateFor(inFlight)/s; kind http (path /) or sse (path /sse). */
async function runArena(ctx: RunCtx, c: CaseName, inFlight: number, kind: 'http' | 'sse', rampS = 0): Promise<Row> {
  const rate =
    kind === 'sse' ? Math.round(inFlight / ((SSE.firstMs + SSE.events * SSE.intervalMs) / 1000)) : rateFor(inFlight);
  const floor = kind === 'sse' ? SSE.firstMs + SSE.events * SSE.intervalMs : HOLD_MS;
  const model = `open, ${rate.toLocaleString('en-US')}/s${rampS > 0 ? ` after a ${rampS} s ramp (steady phase only)` : ''}`;
  const row = emptyRow(c, 'arena', model, inFlight, floor);
  row.rate = rate;
  if (ctx.arenaMissing) return { ...row, notRun: ctx.arenaMissing };
  const label = `${c}-arena-${kind}-${inFlight}${rampS > 0 ? `-ramp${rampS}` : ''}`;
  const outDir = join(ctx.keepDir, label);
  mkdirSync(outDir, { recursive: true });
  const scenarioFile = join(ctx.keepDir, `${label}.yaml`);
  const scenario = kind === 'sse' ? 'stream' : 'hold';
  writeFileSync(
    scenarioFile,
    `requests:\n  - name: ${scenario}\n    kind: ${kind}\n    method: GET\n    path: ${kind === 'sse' ? SSE.path : '/'}\n`,
  );
  const targetArgs =
    kind === 'sse'
      ? [
          '--hold-ms',
          String(HOLD_MS),
          '--sse-path',
          SSE.path,
          '--sse-first-ms',
          String(SSE.firstMs),
          '--sse-events',
          String(SSE.events),
          '--sse-interval-ms',
          String(SSE.intervalMs),
        ]
      : ['--hold-ms', String(HOLD_MS)];
  const maxVus = Math.max(100, Math.ceil(inFlight * 1.2));
  const m = await measured(
    ctx,
    row,
    targetArgs,
    label,
    (port) => [
      process.execPath,
      ARENA_JS,
      'loadtest',
      'run',
      '--target',
      `http://127.0.0.1:${port}`,
      '--scenario-file',
      scenarioFile,
      '--rate',
      String(rate),
      '--duration',
      `${ctx.durationS}s`,
      '--max-vus',
      String(maxVus),
      ...(rampS > 0 ? ['--ramp', `${rampS}s`] : []),
      '--out',
      outDir,
      '-o',
      'json',
    ],
    ctx.durationS + 120,
  );
  const resultFile = join(outDir, 'result.json');
  let result: unknown = null;
  try {
    result = JSON.parse(readFileSync(resultFile, 'utf8'));
  } catch {
    try {
      result = JSON.parse(m?.stdout ?? '');
    } catch {
      result = null;
    }
  }
  if (!result) {
    row.notRun = `arena loadtest run exit ${m?.code}${m?.timedOut ? ' (timed out)' : ''}, no ${resultFile.replace(repoPath() + '/', '')}: ${tail(m?.stderr ?? '')}`;
    return row;
  }
  if (m && m.code !== 0) row.errors.push(`arena exited ${m.code} (result.json read anyway)`);
  const a = readArenaResult(result, scenario);
  row.p99Ms = round(a.p99('http_req_duration'), 1);
  row.p50Ms = round(a.p50('http_req_duration'), 1);
  row.maxMs = round(a.max('http_req_duration'), 1);
  row.addedMs = row.p99Ms === null ? null : round(row.p99Ms - floor, 1);
  if (kind === 'sse') {
    for (const [name, fl] of [
      ['ttft', SSE.firstMs],
      ['itl', SSE.intervalMs],
    ] as const) {
      const p = round(a.p99(name), 1);
      row.extra[name] = { p99Ms: p, floorMs: fl, addedMs: p === null ? null : round(p - fl, 1) };
    }
  }
  row.requests = a.requests;
  row.okRatio = a.failedRate === null ? null : round(1 - a.failedRate, 4);
  row.achievedRate = a.ratePerS ?? (a.requests === null ? null : round(a.requests / ctx.durationS, 1));
  if (a.dropped)
    row.errors.push(`dropped_iterations ${a.dropped} (arrivals not started: no free VU under --max-vus ${maxVus})`);
  if (a.engine.clientSaturated)
    row.errors.push(
      `arena reports the client saturated (peak in flight ${a.engine.peakInFlight}): ${a.engine.reasons.join('; ')}`,
    );
  row.raw = { resultFile: resultFile.replace(repoPath() + '/', ''), ...(a.summary as Record<string, unknown>) };
  return row;
}

/** Why arena cannot run, or null when `arena loadtest run --help` answers. */
function probeArena(): string | null {
  if (!existsSync(ARENA_JS)) return 'dist/cli/arena.js missing: run make build';
  const r = spawnSync(process.execPath, [ARENA_JS, 'loadtest', 'run', '--help'], { encoding: 'utf8', timeout: 30_000 });
  // commander answers `--help` of an unknown subcommand with the top-level help (exit 0),
  // so look for the flags this benchmark passes
  const missing = ['--scenario-file', '--rate', '--max-vus'].filter((f) => !(r.stdout ?? '').includes(f));
  if (r.status === 0 && missing.length === 0) return null;
  const why =
    r.status !== 0
      ? ((r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n')[0] ?? '')
      : `its --help lists no ${missing.join(', ')}`;
  return `'arena loadtest run' not available (exit ${r.status}${why ? `: ${why.slice(0, 160)}` : ''})`;
}

// ---------------------------------------------------------------- output

const fmt = (x: number | null | undefined, d = 1) =>
  x === null || x === undefined
    ? '–'
    : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const mb = (kib: number | null | undefined) => (kib === null || kib === undefined ? null : kib / 1024);
const signed = (x: number | null) => (x === null ? '–' : `${x >= 0 ? '+' : ''}${fmt(x)}`);

function table(rows: Row[], metricName = 'P99'): string {
  const head = `| tool | model | ${metricName} (ms) | added over ${fmt(rows[0]?.floorMs ?? HOLD_MS, 0)} ms floor | peak RSS (MB) | CPU (s) | wall (s) | requests (ok) | achieved /s | target CPU (s) | target RSS (MB) | target timer late P99 (ms) |`;
  const sep = `|${'---|'.repeat(12)}`;
  const lines = rows.map((r) => {
    if (r.notRun) return `| ${r.tool} | ${r.model} | not run (${r.notRun.replace(/\|/g, '/')}) | | | | | | | | | |`;
    const ok = r.okRatio === null ? '' : ` (${fmt(r.okRatio * 100, 1)}%)`;
    return `| ${r.tool} | ${r.model} | ${fmt(r.p99Ms)} | ${signed(r.addedMs)} | ${fmt(mb(r.time?.maxRssKiB), 0)} | ${fmt(r.time?.cpuS, 1)} | ${fmt(r.time?.wallS, 1)} | ${r.requests?.toLocaleString('en-US') ?? '–'}${ok} | ${fmt(r.achievedRate, 0)} | ${fmt(r.target?.time?.cpuS, 1)} | ${fmt(mb(r.target?.time?.maxRssKiB), 0)} | ${fmt(r.target?.stats?.lateMs.p99, 1)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

function sseTable(r: Row): string {
  if (r.notRun) return `arena: not run (${r.notRun})`;
  const lines = ['| metric | P99 (ms) | floor (ms) | added (ms) |', '|---|---|---|---|'];
  for (const [name, v] of Object.entries(r.extra))
    lines.push(`| ${name} | ${fmt(v.p99Ms)} | ${fmt(v.floorMs, 0)} | ${signed(v.addedMs)} |`);
  lines.push(`| stream duration (http_req_duration) | ${fmt(r.p99Ms)} | ${fmt(r.floorMs, 0)} | ${signed(r.addedMs)} |`);
  return lines.join('\n');
}

function costTable(rows: Row[]): string {
  const lines = [
    '| in flight | rate (/s) | P99 (ms) | peak RSS (MB) | RSS per 1k in flight (MB) | CPU (s) | CPU per 1k in flight (s) | CPU (% of a core) |',
    `|${'---|'.repeat(8)}`,
  ];
  for (const r of rows) {
    if (r.notRun) {
      lines.push(
        `| ${r.inFlight.toLocaleString('en-US')} | ${r.rate?.toLocaleString('en-US')} | not run (${r.notRun.replace(/\|/g, '/')}) | | | | | |`,
      );
      continue;
    }
    const k = r.inFlight / 1000;
    const rss = mb(r.time?.maxRssKiB);
    const pct = r.time ? (100 * r.time.cpuS) / Math.max(0.001, r.time.wallS) : null;
    lines.push(
      `| ${r.inFlight.toLocaleString('en-US')} | ${r.rate?.toLocaleString('en-US')} | ${fmt(r.p99Ms)} | ${fmt(rss, 0)} | ${fmt(rss === null ? null : rss / k)} | ${fmt(r.time?.cpuS)} | ${fmt(r.time ? r.time.cpuS / k : null, 2)} | ${fmt(pct, 0)} |`,
    );
  }
  const ok = rows.filter((r) => !r.notRun && r.time);
  if (ok.length >= 2) {
    const a = ok[0]!;
    const b = ok[ok.length - 1]!;
    const dk = (b.inFlight - a.inFlight) / 1000;
    lines.push(
      '',
      `Marginal cost ${a.inFlight.toLocaleString('en-US')} -> ${b.inFlight.toLocaleString('en-US')} in flight: ` +
        `${fmt((mb(b.time!.maxRssKiB)! - mb(a.time!.maxRssKiB)!) / dk)} MB and ${fmt((b.time!.cpuS - a.time!.cpuS) / dk, 2)} CPU s per extra 1,000 in flight.`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

function machine(): Record<string, unknown> {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return null;
    }
  };
  const ver = (argv: string[]) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? ((r.stdout || r.stderr).trim().split('\n')[0] ?? null) : null;
  };
  let acVersion: string | null = null;
  try {
    acVersion = (
      JSON.parse(readFileSync(repoPath('.tools/peers/node_modules/autocannon/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    acVersion = null;
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    somaxconn: read('/proc/sys/net/core/somaxconn'),
    tcpMaxSynBacklog: read('/proc/sys/net/ipv4/tcp_max_syn_backlog'),
    ipLocalPortRange: read('/proc/sys/net/ipv4/ip_local_port_range'),
    nofile: nofileLimits(),
    vegeta: existsSync(VEGETA) ? ver([VEGETA, '-version']) : null,
    autocannon: acVersion,
  };
}

async function main(): Promise<void> {
  const durationS = parseDurationS(process.env['BENCH_DURATION'] ?? '30s');
  const only = listEnv('BENCH_ONLY', CASES);
  const tools = listEnv('BENCH_TOOLS', TOOL_NAMES);
  const pauseS = parseDurationS(process.env['BENCH_PAUSE'] ?? '5s');
  if (!existsSync(GNU_TIME))
    throw new Error(`${GNU_TIME} missing: run scripts/install-bench-peers.sh (Debian package 'time')`);
  if (!existsSync(TARGET_JS)) throw new Error(`${TARGET_JS} missing: run make build`);

  const started = new Date();
  const stamp = started
    .toISOString()
    .replace(/:/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const outRoot = repoPath('out/bench-engine');
  mkdirSync(outRoot, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'arena-bench-engine-'));
  const arenaDir = join(outRoot, stamp);
  const notes: string[] = [];
  const twMax = Number(process.env['BENCH_TIME_WAIT_MAX'] ?? 1000);
  const ctx: RunCtx = {
    durationS,
    twMax,
    twWaitS: 90,
    dir,
    keepDir: arenaDir,
    notes,
    arenaMissing: tools.includes('arena') ? probeArena() : 'excluded by BENCH_TOOLS',
  };
  const mach = machine();
  if (Number(mach['somaxconn']) < 10_000)
    notes.push(
      `net.core.somaxconn is ${String(mach['somaxconn'])}: the target's listen backlog (16384) is capped to it; a burst of new connections beyond it overflows the accept queue and that client retries its SYN 1 s later (ListenOverflows below); \`sysctl -w net.core.somaxconn=16384\` (machine-wide, as root) removes that from the closed-model figures`,
    );

  console.log(`# Load-engine benchmark, ${started.toISOString()}`);
  console.log(
    `${mach['cpus']} cores, ${mach['memGiB']} GiB, Node ${process.version}, kernel ${release()}; vegeta ${mach['vegeta'] ?? 'missing'}, autocannon ${mach['autocannon'] ?? 'missing'}`,
  );
  console.log(
    `duration ${durationS} s per run, hold ${HOLD_MS} ms, cases ${only.join(',')}, tools ${tools.join(',')}, ${pauseS} s pause between runs`,
  );
  if (ctx.arenaMissing && tools.includes('arena')) console.log(`arena: not run (${ctx.arenaMissing})`);

  const results: Partial<Record<CaseName, Row[]>> = {};
  let first = true;
  /** The pause between runs (none before the first, none for a tool that will not run). */
  const pause = async (tool: ToolName) => {
    if (tool === 'arena' && ctx.arenaMissing) return;
    if (!first) await sleep(pauseS * 1000);
    first = false;
  };

  const onSignal = (sig: NodeJS.Signals) => {
    for (const c of live) signalMeasured(c, 'SIGTERM');
    for (const c of live)
      if (c.pid)
        try {
          process.kill(c.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`engine-bench: ${sig}, stopped the runs\n`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (only.includes('http')) {
      const rows: Row[] = [];
      const inFlight = 10_000;
      for (const tool of tools) {
        await pause(tool);
        process.stderr.write(`[bench] http: ${tool} ...\n`);
        if (tool === 'arena') {
          rows.push(await runArena(ctx, 'http', inFlight, 'http'));
          // the same with a 3 s ramp: connections open while the rate rises, the steady phase is measured
          await pause(tool);
          process.stderr.write('[bench] http: arena with a 3 s ramp ...\n');
          rows.push(await runArena(ctx, 'http', inFlight, 'http', 3));
        } else if (tool === 'vegeta') rows.push(await runVegeta(ctx, 'http', inFlight));
        else rows.push(await runAutocannon(ctx, 'http', inFlight));
      }
      results.http = rows;
      console.log(`\n## 10,000 in flight against a ${HOLD_MS} ms hold, ${durationS} s per tool\n`);
      console.log(table(rows));
      for (const r of rows) for (const e of r.errors) console.log(`- ${r.tool}: ${e}`);
    }
    if (only.includes('sse') && tools.includes('arena')) {
      await pause('arena');
      process.stderr.write('[bench] sse: arena ...\n');
      const r = await runArena(ctx, 'sse', 1000, 'sse');
      results.sse = [r];
      console.log(
        `\n## 1,000 SSE streams (first event at ${SSE.firstMs} ms, ${SSE.events} events ${SSE.intervalMs} ms apart), arena, ${durationS} s\n`,
      );
      console.log(sseTable(r));
      if (!r.notRun)
        console.log(
          `\ntarget: CPU ${fmt(r.target?.time?.cpuS)} s, RSS ${fmt(mb(r.target?.time?.maxRssKiB), 0)} MB, timer late P99 ${fmt(r.target?.stats?.lateMs.p99)} ms; arena: peak RSS ${fmt(mb(r.time?.maxRssKiB), 0)} MB, CPU ${fmt(r.time?.cpuS)} s, ${r.requests ?? '–'} streams`,
        );
    }
    if (only.includes('cost') && tools.includes('arena')) {
      const rows: Row[] = [];
      for (const inFlight of [1000, 5000, 10_000]) {
        const reuse = inFlight === 10_000 ? results.http?.find((r) => r.tool === 'arena' && !r.notRun) : undefined;
        if (reuse) {
          rows.push({ ...reuse, case: 'cost' });
          continue;
        }
        await pause('arena');
        process.stderr.write(`[bench] cost: arena at ${inFlight} in flight ...\n`);
        rows.push(await runArena(ctx, 'cost', inFlight, 'http'));
      }
      results.cost = rows;
      console.log(`\n## arena's cost per 1,000 in flight (${HOLD_MS} ms hold, ${durationS} s per point)\n`);
      const reasons = new Set(rows.map((r) => r.notRun));
      console.log(reasons.size === 1 && rows[0]?.notRun ? `arena: not run (${rows[0].notRun})` : costTable(rows));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (notes.length) {
    console.log('\nNotes:');
    for (const n of [...new Set(notes)]) console.log(`- ${n}`);
  }
  const file = join(outRoot, `${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ date: started.toISOString(), machine: mach, config: { durationS, holdMs: HOLD_MS, sse: SSE, only, tools, pauseS }, notes: [...new Set(notes)], cases: results }, null, 2)}\n`,
  );
  console.log(`\nraw figures: ${file.replace(repoPath() + '/', '')}`);
}

// Run only as the entry script, so tests can import the parsers above.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`engine-bench: ${(e as Error).message}\n`);
    if (process.env['ARENA_DEBUG']) process.stderr.write(`${(e as Error).stack}\n`);
    for (const c of live) signalMeasured(c, 'SIGKILL');
    process.exit(1);
  });
}
