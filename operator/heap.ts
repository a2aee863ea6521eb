/**
 * V8's heap sized from the container's memory limit, for `arena operator run`.
 *
 * The rule: when the process runs under a cgroup memory limit (cgroup v2
 * `/sys/fs/cgroup/memory.max`, "max" meaning none; cgroup v1
 * `/sys/fs/cgroup/memory/memory.limit_in_bytes`) below the machine's memory,
 * and neither NODE_OPTIONS nor node's own flags set `--max-old-space-size`,
 * V8's old space is 60% of the limit (`heapLimitMiB`). The other 40% is for
 * what is not old space: the young generation (up to 48 MiB with V8's
 * defaults), code, Buffers and sockets (watch streams, TLS), and old-space
 * pages V8 keeps after a collection. Measured with `make bench-operator`
 * (docs/benchmarks.md): RSS after a full GC minus the live heap was 239 MiB
 * with 2,000 ArenaDeployments on 2026-12-07 (client-node, V8's default young
 * generation), where a quarter of the limit would not have covered it: the
 * kernel would kill the pod before V8 ran out of heap. On 2026-12-08, with
 * the operator's own client and MEMORY_FLAGS, it was 105 MiB (peak RSS 241
 * MiB), inside 40% of the chart's 512Mi (205 MiB). Left alone, V8
 * sizes the old space at about a quarter of the memory Node reports to it
 * (with a floor), which says nothing about where the pod is killed: the heap
 * can stop far below the limit (a "JavaScript heap out of memory" crash with
 * memory to spare) or, where Node does not see the cgroup limit, lie above it
 * (the OOM killer ends the process instead of a garbage collection).
 *
 * How it is applied. Node reads `--max-old-space-size` only at start, so there
 * are two ways, and both are used:
 * 1. The chart renders the rule at install time into NODE_OPTIONS (helper
 *    `arena-operator.heapMiB` from `resources.limits.memory`), so in the chart's
 *    pods the process starts with the flag and nothing below happens.
 * 2. Anywhere else (`docker run --memory`, a systemd unit with MemoryMax, a
 *    hand-written manifest) `sizeHeapFromContainerLimit()` re-executes the
 *    process once: a child `node <execArgv> --max-old-space-size=N <same script
 *    and arguments>`, with `ARENA_HEAP_SIZED` set in its environment so it does
 *    not do it again. The parent stays as a supervisor: it forwards SIGTERM,
 *    SIGINT, SIGHUP and SIGUSR2 and exits with the child's exit code (or dies of
 *    its signal). The child runs in its own session (`detached`, as dumb-init
 *    does), so a terminal's Ctrl-C reaches it once, through the parent.
 *
 * Why not only the re-execution: the parent stays resident in the same cgroup.
 * `cli/arena.ts` loads only the command that runs, and the operator command
 * loads the Kubernetes client only in the child, so the supervisor holds
 * about 45 MiB RSS (measured: importing cli/commands/operator.js); still
 * memory the limit pays for, so the chart passes the flag itself. Why not an image
 * entrypoint script (`exec node --max-old-space-size=...`, no resident parent):
 * the chart runs `command: [arena]` and the image's `arena` is the compiled CLI
 * itself, which the chart and the packaging tests rely on; an entrypoint would
 * only apply when the command is not overridden. Node 22.15+'s `process.execve`
 * would make the re-execution free; the image is on Node 20.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants, totalmem } from 'node:os';

export const CGROUP_V2_MEMORY_MAX = '/sys/fs/cgroup/memory.max';
export const CGROUP_V1_MEMORY_LIMIT = '/sys/fs/cgroup/memory/memory.limit_in_bytes';
/** The share of the memory limit given to V8's old space. */
export const HEAP_FRACTION = 0.6;
/**
 * V8 flags the operator runs with beside the old-space size (re-executed child and the chart's
 * NODE_OPTIONS alike): a 1 MiB semi-space (young generation of about 3 MiB instead of up to 48 MiB)
 * and `--optimize-for-size` (a smaller heap growing factor, among others). Measured with
 * `make bench-operator` at 1,000 ArenaDeployments (docs/benchmarks.md, 2026-12-08): V8's committed
 * heap 51 MiB instead of 106 for the same 47-48 MiB live, RSS after a GC 129 MiB instead of 182;
 * the price, 27 ms of operator CPU per reconcile instead of 17 (more frequent collections), is
 * well inside the 100 ms the operator's own share may take.
 */
export const MEMORY_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size'] as const;
/** Set (to the flag) in the re-executed child's environment: it must not re-execute again. */
export const HEAP_SIZED_ENV = 'ARENA_HEAP_SIZED';

const MIB = 2 ** 20;

/** V8's old space, MiB, for a memory limit of `limitBytes`: 60% of it, rounded down (at least 16 MiB). */
export function heapLimitMiB(limitBytes: number): number {
  return Math.max(16, Math.floor((limitBytes * HEAP_FRACTION) / MIB));
}

/**
 * The memory limit in a cgroup file (`memory.max` or `memory.limit_in_bytes`), bytes, or
 * undefined when it sets none: "max", a missing or unreadable file, or anything but a positive integer.
 */
export function readCgroupMemoryLimit(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (!/^\d+$/.test(text)) return undefined;
  const bytes = Number(text);
  return bytes > 0 ? bytes : undefined;
}

/** The first limit the cgroup files set (v2, then v1), or undefined. */
export function containerMemoryLimit(
  paths: readonly string[] = [CGROUP_V2_MEMORY_MAX, CGROUP_V1_MEMORY_LIMIT],
): number | undefined {
  for (const p of paths) {
    const limit = readCgroupMemoryLimit(p);
    if (limit !== undefined) return limit;
  }
  return undefined;
}

/** Whether node options (NODE_OPTIONS, or node's own arguments) already set the old space size. */
export function hasHeapFlag(nodeOptions: string | undefined, execArgv: readonly string[]): boolean {
  const flag = /--max[-_]old[-_]space[-_]size\b/;
  return flag.test(nodeOptions ?? '') || execArgv.some((a) => flag.test(a));
}

export interface HeapContext {
  env: NodeJS.ProcessEnv;
  execArgv: readonly string[];
  /** The cgroup memory limit, bytes (undefined: none). */
  limitBytes: number | undefined;
  /** The machine's memory, bytes: a limit at or above it limits nothing. */
  totalBytes: number;
}

/** The `--max-old-space-size=N` flag to re-execute with, or undefined when the heap is to be left as it is. */
export function heapFlag(c: HeapContext): string | undefined {
  if (c.env[HEAP_SIZED_ENV] !== undefined) return undefined;
  if (hasHeapFlag(c.env['NODE_OPTIONS'], c.execArgv)) return undefined;
  if (c.limitBytes === undefined || c.limitBytes >= c.totalBytes) return undefined;
  return `--max-old-space-size=${heapLimitMiB(c.limitBytes)}`;
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2'];

/**
 * Run this script again as `node <execArgv> <flag> <MEMORY_FLAGS> <argv>` with HEAP_SIZED_ENV set, forward
 * signals to it, and exit as it exits. Never resolves (the process exits); rejects when the
 * child cannot be started.
 */
export function reexecWithFlag(flag: string): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, flag, ...MEMORY_FLAGS, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [HEAP_SIZED_ENV]: flag },
      detached: true,
    });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const handlers = FORWARDED.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    child.once('error', (err) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      if (signal === null) process.exit(code ?? 1);
      // Die of the same signal; PID 1 in a container ignores it without a handler, so exit 128+n after.
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 100).unref();
    });
  });
}

/**
 * At the start of a long-running command: when the container's memory limit calls for it (see
 * the file comment), re-execute with V8's old space at 60% of the limit; the returned promise
 * then never resolves (the process exits with the child). Otherwise resolve at once.
 */
export async function sizeHeapFromContainerLimit(
  paths: readonly string[] = [CGROUP_V2_MEMORY_MAX, CGROUP_V1_MEMORY_LIMIT],
): Promise<void> {
  const flag = heapFlag({
    env: process.env,
    execArgv: process.execArgv,
    limitBytes: containerMemoryLimit(paths),
    totalBytes: totalmem(),
  });
  if (flag !== undefined) await reexecWithFlag(flag);
}
