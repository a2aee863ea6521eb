/**
 * The real local stack (PostgreSQL, PgBouncer, Redis, the reference API) for
 * a test file: `arena stack up -f SPEC --free-ports` in a fresh temporary
 * state directory (readable by the unprivileged user the servers run as when
 * the tests run as root), and `stack down` plus cleanup afterwards.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from './paths.js';
import type { StackState } from '../loadtest/stack/state.js';

/** Run `arena ARGS` (compiled) synchronously, colour off, at most 3 min. */
export function arenaSync(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [repoPath('dist/cli/arena.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A local stack owned by one test file. */
export interface LocalStack {
  /** The temporary folder (the state directory is `stateDir` inside it; put outputs here too). */
  tmp: string;
  stateDir: string;
  /** Set by up(). */
  state: StackState | undefined;
  /** Bring it up; asserts it started. */
  up(): void;
  /** Take it down (when up) and remove the temporary folder. */
  down(): void;
}

/** A stack of `spec` (a path) in a new temporary folder named after `prefix`. */
export function localStack(spec: string, prefix: string): LocalStack {
  const tmp = mkdtempSync(join(tmpdir(), `arena-${prefix}-`));
  chmodSync(tmp, 0o711); // the servers run as the unprivileged user when the tests run as root
  const s: LocalStack = {
    tmp,
    stateDir: join(tmp, 'stack'),
    state: undefined,
    up() {
      const r = arenaSync(['stack', 'up', '-f', spec, '--state-dir', s.stateDir, '--free-ports', '-o', 'json']);
      assert.equal(r.code, 0, `stack up failed: ${r.err}`);
      s.state = JSON.parse(r.out) as StackState;
    },
    down() {
      // whenever a state file exists, even if up() could not read its output: never leave servers behind
      if (existsSync(join(s.stateDir, 'state.json'))) arenaSync(['stack', 'down', '--state-dir', s.stateDir]);
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  return s;
}
