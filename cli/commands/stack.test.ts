/**
 * `arena stack` input errors, as a user sees them: one line naming the flag,
 * file, tool or directory, exit 2, nothing started. (The running stack is
 * tested in loadtest/stack/stack.test.ts.)
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive } from '../../loadtest/stack/procs.js';
import { repoPath } from '../../testing/paths.js';
import { assertRefused, runArena, type CliRun } from '../../testing/cli.js';

const SAMPLE = repoPath('samples/arena-local.yaml');

function arena(args: string[], env: Record<string, string> = {}) {
  return runArena(args, { env });
}

/** A temporary directory removed when the test ends (also when it fails). */
function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-stack-cli-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function assertOneLine(r: CliRun, what: RegExp, code = 2) {
  assertRefused(r, what, { code });
}

test('stack: bad flags are one line naming the flag, exit 2', () => {
  assertOneLine(arena(['stack', 'up', '-f', SAMPLE, '--scale', '0']), /--scale <x>.*must be a number > 0 and <= 1/);
  assertOneLine(arena(['stack', 'up', '-f', SAMPLE, '--scale', '2']), /--scale/);
  assertOneLine(arena(['stack', 'up', '-f', SAMPLE, '--workers', '0']), /--workers <n>.*positive integer/);
  assertOneLine(arena(['stack', 'up', '-f', SAMPLE, '--api-env', 'lower=1']), /--api-env <KEY=VALUE>.*KEY=VALUE/);
  assertOneLine(arena(['stack', 'up', '-f', SAMPLE, '-o', 'xml']), /-o, --output <format>.*invalid/);
  assertOneLine(arena(['stack', 'up']), /^arena stack up: required option '-f, --file <file>' not specified$/);
  assertOneLine(arena(['stack', 'down']), /give -f FILE .* or --state-dir DIR/);
  assertOneLine(arena(['stack', 'nosuch']), /unknown command 'nosuch'/);
  assertOneLine(arena(['stack', 'up', '-f', '/nonexistent.yaml']), /cannot read \/nonexistent\.yaml: no such file/);
});

test('stack up: a missing Debian tool is one line naming it and the set-up command; nothing is created', (t) => {
  const d = tmp(t);
  const state = join(d, 'state');
  const r = arena(['stack', 'up', '-f', SAMPLE, '--state-dir', state, '--free-ports'], {
    ARENA_PGBOUNCER: '/nonexistent/pgbouncer',
  });
  assertOneLine(
    r,
    /^arena: pgbouncer not found \(looked for \/nonexistent\/pgbouncer, from \$ARENA_PGBOUNCER\); install the Debian packages with scripts\/install-debian-deps\.sh/,
  );
  const pgr = arena(['stack', 'up', '-f', SAMPLE, '--state-dir', state, '--free-ports'], { ARENA_PG_BIN: d });
  assertOneLine(pgr, /^arena: PostgreSQL initdb not found \(looked for .*\/initdb, from \$ARENA_PG_BIN\)/);
  assert.equal(existsSync(state), false);
});

test('stack up/down/status: a state directory that is not ours, or holds no stack, is refused', (t) => {
  const d = tmp(t);
  const foreign = join(d, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'precious.txt'), 'keep me');
  if (process.getuid?.() === 0) {
    // as root the servers run as the unprivileged user, which must be able to enter the state dir
    assertOneLine(
      arena(['stack', 'up', '-f', SAMPLE, '--state-dir', join(d, 'stack'), '--free-ports']),
      /the servers run as user 'arena', which cannot enter .*arena-stack-cli-\w+ \(mode 700\)/,
    );
    chmodSync(d, 0o711);
  }
  assertOneLine(
    arena(['stack', 'up', '-f', SAMPLE, '--state-dir', foreign, '--free-ports']),
    /--state-dir .*foreign: exists and is not an arena stack directory/,
  );
  assertOneLine(arena(['stack', 'down', '--state-dir', foreign]), /foreign is not an arena stack directory/);
  assert.deepEqual(readdirSync(foreign), ['precious.txt'], 'nothing was touched');
  assertOneLine(
    arena(['stack', 'status', '--state-dir', join(d, 'none')]),
    /^arena: no stack state in .*none; start one with: arena stack up -f FILE$/,
  );
  assertOneLine(
    arena(['stack', 'down', '--state-dir', join(d, 'none')]),
    /^arena: no stack state in .*none \(nothing to stop\)$/,
  );
});

test('stack up: a file with several documents is refused', (t) => {
  const d = tmp(t);
  const f = join(d, 'two.yaml');
  const text = spawnSync('cat', [SAMPLE], { encoding: 'utf8' }).stdout;
  writeFileSync(f, `${text}---\n${text.replace('name: arena-local', 'name: second')}`);
  assertOneLine(arena(['stack', 'up', '-f', f]), /the stack runs one ArenaDeployment, the file has 2 documents/);
});

test('stack up: a component that fails to start is one line with its log line, exit 1; what started is stopped and the directory removed', (t) => {
  const d = tmp(t);
  chmodSync(d, 0o711);
  const state = join(d, 'stack');
  const r = arena(['stack', 'up', '-f', SAMPLE, '--state-dir', state, '--free-ports', '--api-env', 'DB_POOL_SIZE=abc']);
  assert.equal(r.code, 1, r.err);
  const last = r.err.trim().split('\n').pop()!;
  assert.match(
    last,
    /^arena: the API exited during start-up; .*api\.log: arena-api: DB_POOL_SIZE: must be an integer, got 'abc' \(state directory removed; re-run with --keep to keep its logs\)$/,
  );
  assert.match(r.err, /\[stack\] start-up failed: stopping what was started/);
  assert.equal(existsSync(state), false);
  const pids = [...r.err.matchAll(/\[stack\] (\w+): running, pid (\d+)/g)].map((m) => ({
    name: m[1],
    pid: Number(m[2]),
  }));
  assert.deepEqual(
    pids.map((p) => p.name),
    ['postgres', 'pgbouncer', 'redis', 'api'],
  );
  for (const p of pids)
    assert.equal(alive({ pid: p.pid, startTime: null }), false, `${p.name} pid ${p.pid} was stopped`);
});
