/**
 * Helpers for tests that run the `arena` CLI as a user does: a child process,
 * then assertions on stdout, stderr and the exit code.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { repoPath } from './paths.js';

const ARENA = repoPath('dist/cli/arena.js');

/** The outcome of one `arena` run. */
export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/** Run `arena ARGS` (compiled) with colour off; `input` goes to stdin. */
export function runArena(
  args: string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): CliRun {
  const r = spawnSync(process.execPath, [ARENA, ...args], {
    input: opts.input,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env },
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * A refused run: exit `code` (2, bad input, by default), nothing on stdout, no stack trace,
 * and stderr lines that start with `arena`. With `oneLine` (the default) stderr must be exactly
 * one line and that line matches `what`; without it, one line per problem (several schema
 * errors) and the whole of stderr matches `what`.
 */
export function assertRefused(r: CliRun, what: RegExp, opts: { code?: number; oneLine?: boolean } = {}): void {
  assert.equal(r.code, opts.code ?? 2, `exit code (stderr: ${r.err})`);
  const lines = r.err.trim().split('\n');
  const oneLine = opts.oneLine ?? true;
  if (oneLine) assert.equal(lines.length, 1, `one line: ${r.err}`);
  for (const line of lines) assert.match(line, /^arena/);
  assert.match(oneLine ? lines[0]! : r.err, what);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  assert.equal(r.out, '');
}

/** Run `arena ARGS` without blocking this process's event loop (for tests whose servers live in this process). */
export function runArenaAsync(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ARENA, ...args], {
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
