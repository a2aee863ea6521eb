/**
 * What the component modules (postgres.ts, pgbouncer.ts, redis.ts, api.ts)
 * share: the context `stackUp` hands each `start`, the one-line StackError,
 * waiting for a component to become healthy, the log tail that ends an error,
 * files owned by the run-as user, and how each component is stopped.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { StartFailureError } from '../../lib/errors.js';
import { sleep } from '../../lib/util.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import type { CapacityPlan } from '../../operator/planner/types.js';
import { stopProcess, type ProcRef } from './procs.js';
import type { LocalProfile } from './profile.js';
import type { ComponentName, ComponentState, StackState } from './state.js';
import type { Tools } from './tools.js';

/** The database role the API logs in as. */
export const APP_ROLE = 'arena_app';
/** PostgreSQL superuser of the local cluster (local socket, trust). */
export const PG_SUPERUSER = 'postgres';

/** The ports of a stack on 127.0.0.1. */
export interface Ports {
  api: number;
  postgres: number;
  pgbouncer: number;
  redis: number;
}

/** Everything a component's `start` needs, set up by `stackUp` before the first component starts. */
export interface StartContext {
  tools: Tools;
  profile: LocalProfile;
  /** The plan with the local caps applied (what the renderers get). */
  plan: CapacityPlan;
  /** The spec after --scale (`profile.ad`). */
  ad: ArenaDeployment;
  ports: Ports;
  /** The state directory and its parts: run/ (configs, sockets, pid files), logs/, pg/ (PGDATA). */
  dirs: { state: string; run: string; logs: string; pgdata: string };
  /** The app role's password and the file holding it. */
  password: string;
  passwordFile: string;
  /** True when `down --keep` left a cluster and a password to reuse. */
  reuse: boolean;
  /** Bound on each wait for a component to become healthy, ms. */
  waitMs: number;
  progress: (line: string) => void;
  /** Components started so far, in order (stopped again in reverse when a later one fails). */
  started: { name: ComponentName; ref: ProcRef }[];
  /** What state.json will record per component. */
  components: StackState['components'];
}

/** A failure while starting or stopping: one line, exit code 1. */
export class StackError extends StartFailureError {
  constructor(message: string) {
    super(message, 'ARENA_STACK_START_FAILURE');
    this.name = 'StackError';
  }
}

/**
 * Poll `probe` until it returns a value (not undefined), at most timeoutMs.
 * A StackError from the probe (the process died) ends the wait at once.
 * @throws StackError `<what> not healthy within N s (last error: ...)` + `diagnose()`.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  diagnose: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof StackError) throw e; // a definite failure (the process died): no point waiting
      last = (e as Error).message;
    }
    if (Date.now() >= deadline) {
      const lastError = last ? ` (last error: ${last})` : '';
      throw new StackError(`${what} not healthy within ${Math.round(timeoutMs / 1000)} s${lastError}${diagnose()}`);
    }
    await sleep(100);
  }
}

/** Last non-empty line of a log file, as "; <file>: <line>" (for one-line errors). */
export function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
    const last = lines[lines.length - 1];
    return last ? `; ${file}: ${last.trim().slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

/** The last line of a command's output (for one-line errors). */
export const lastLine = (output: string) => output.split('\n').slice(-1)[0];

/** Create a directory with `mode`, owned by the run-as user when there is one. */
export function owned(tools: Tools, path: string, mode: number): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  if (tools.runAsUid !== null && tools.runAsGid !== null) chownSync(path, tools.runAsUid, tools.runAsGid);
}

/** Write a file with `mode`, owned by the run-as user when there is one. */
export function writeOwned(tools: Tools, path: string, content: string, mode: number): void {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  if (tools.runAsUid !== null && tools.runAsGid !== null) chownSync(path, tools.runAsUid, tools.runAsGid);
}

/**
 * Run one start-up step between `<label> ...` and `<component>: ok (N s)` progress lines
 * (the component is the label up to its first ':').
 */
export async function step<T>(ctx: StartContext, label: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  ctx.progress(`${label} ...`);
  const v = await fn();
  ctx.progress(`${label.split(':', 1)[0]}: ok (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  return v;
}

/**
 * Record a component's process as started (so a later failure stops it) and as
 * running on 127.0.0.1:`port` with its `log` (for state.json).
 * @returns the component's state entry (the API adds its workers to it).
 */
export function running(
  ctx: StartContext,
  name: ComponentName,
  ref: ProcRef,
  port: number,
  log: string,
): ComponentState {
  ctx.started.push({ name, ref });
  ctx.progress(`${name}: running, pid ${ref.pid}`);
  const c: ComponentState = { ...ref, host: '127.0.0.1', port, log };
  ctx.components[name] = c;
  return c;
}

/**
 * Signal and timeout per component: SIGTERM drains the API (its timeout is
 * SHUTDOWN_GRACE_SECONDS + 15 s), Redis shuts down on SIGTERM, SIGINT is
 * PgBouncer's safe shutdown and PostgreSQL's fast shutdown. SIGKILL after the timeout.
 */
export const STOP: Record<ComponentName, { sig: NodeJS.Signals; timeoutMs: number }> = {
  api: { sig: 'SIGTERM', timeoutMs: 45_000 },
  redis: { sig: 'SIGTERM', timeoutMs: 10_000 },
  pgbouncer: { sig: 'SIGINT', timeoutMs: 10_000 },
  postgres: { sig: 'SIGINT', timeoutMs: 30_000 },
};

/** Stop a component's process with its signal (STOP), SIGKILL after `timeoutMs` (default: its STOP timeout). */
export async function stopComponent(name: ComponentName, ref: ProcRef, timeoutMs?: number) {
  return stopProcess(ref, STOP[name].sig, timeoutMs ?? STOP[name].timeoutMs);
}

/** What a component's `probe` reports for `arena stack status`: one line and the figures behind it. */
export interface ProbeResult {
  summary: string;
  saturation: Record<string, unknown>;
}

/** `a` as a percentage of `b` ("42%"), "-" when either is missing or b is not > 0. */
export const pct = (a: number | null, b: number | null) =>
  a !== null && b !== null && b > 0 ? `${Math.round((100 * a) / b)}%` : '-';
