/**
 * state.json (state.ts): what `up` writes reads back; a file that is not JSON,
 * of another version or of another shape is a one-line InvalidInputError
 * naming the file and what is wrong, for the library and for `arena stack
 * status|down` (exit 2, nothing touched). No servers.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import { assertRefused, runArena } from '../../testing/cli.js';
import { readState, STATE_VERSION, validateState, writeState, type StackState } from './state.js';

/** A temporary state directory (with the marker), removed when the test ends. */
function stateDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'arena-state-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  writeFileSync(join(d, '.arena-stack'), 'test\n');
  return d;
}

/** A state as `up` writes it (shape of a real one, made-up values; PIDs that do not run). */
function aState(dir: string): StackState {
  const comp = (port: number, log: string) => ({
    pid: 999_999,
    startTime: '123',
    host: '127.0.0.1',
    port,
    log: join(dir, 'logs', log),
  });
  return {
    version: STATE_VERSION,
    name: 'arena-local',
    namespace: 'default',
    file: '/repo/samples/arena-local.yaml',
    stateDir: dir,
    startedAt: '2026-11-24T04:19:43.616Z',
    upSeconds: 2.7,
    runAsUser: null,
    database: { name: 'arena', user: 'arena_app', passwordFile: join(dir, 'db-password') },
    components: {
      postgres: comp(15432, 'postgres.log'),
      pgbouncer: comp(16432, 'pgbouncer.log'),
      redis: comp(16379, 'redis.log'),
      api: { ...comp(18000, 'api.log'), workers: [{ pid: 999_998, startTime: '124' }] },
    },
    endpoints: {
      api: 'http://127.0.0.1:18000',
      postgres: 'postgresql://arena_app@127.0.0.1:15432/arena',
      redis: 'redis://127.0.0.1:16379/0',
    },
    profile: {
      scale: 1,
      webConcurrency: 2,
      asyncConcurrency: 2,
      pgbouncer: {
        enabled: true,
        maxClientConn: 100,
        defaultPoolSize: 4,
        reservePoolSize: 1,
        poolMode: 'transaction',
        databaseUserPairs: 1,
      },
      postgres: { maxConnections: 40, superuserReservedConnections: 3 },
      redis: { maxClients: 1000 },
      openFilesHardLimit: 20000,
      changes: [
        { setting: 'API replicas (pods)', plan: '1..2', local: 1, why: 'one machine = one pod (one process group)' },
      ],
      checks: [{ what: 'Redis open files (maxclients + 32)', need: 1032, limit: 20000, ok: true, note: 'fits' }],
    },
    apiEnv: { DB_PASSWORD: '<db-password>', PORT: '18000' },
  };
}

/** Write `content` as state.json and expect readState to refuse it with one line matching `what`. */
function assertRefusedState(dir: string, content: string, what: RegExp): void {
  const f = join(dir, 'state.json');
  writeFileSync(f, content);
  assert.throws(
    () => readState(dir),
    (e: unknown) => {
      assert.ok(e instanceof InvalidInputError, `an InvalidInputError: ${String(e)}`);
      assert.equal(e.code, 'ARENA_INVALID_INPUT');
      assert.doesNotMatch(e.message, /\n/, 'one line');
      assert.ok(e.message.startsWith(`${f}: `), `names the file: ${e.message}`);
      assert.match(e.message, what);
      return true;
    },
  );
}

test('state.json: what writeState writes (mode 600) reads back, validated; no file is null', (t) => {
  const d = stateDir(t);
  assert.equal(readState(d), null);
  const s = aState(d);
  writeState(s);
  assert.equal(statSync(join(d, 'state.json')).mode & 0o777, 0o600);
  assert.deepEqual(readState(d), s);
  assert.deepEqual(readState(d), validateState(JSON.parse(JSON.stringify(s)), 'x'));
  writeState({ ...s, stoppedAt: new Date().toISOString() });
  assert.ok(readState(d)!.stoppedAt);
  assert.deepEqual(readdirSync(d).sort(), ['.arena-stack', 'state.json'], 'no temp file left');
});

test('state.json: a corrupt file is one line naming the file', (t) => {
  const d = stateDir(t);
  assertRefusedState(d, '{"version": 1, "name": "arena-lo', /: not a stack state file \(.*JSON.*\)$/);
  assertRefusedState(d, '', /: not a stack state file \(Unexpected end of JSON input\)$/);
  assertRefusedState(d, '[1, 2]', /: not a stack state file \(not a JSON object\)$/);
  assertRefusedState(d, 'null', /: not a stack state file \(not a JSON object\)$/);
});

test('state.json: another version is one line naming the file, its version and the one this arena reads', (t) => {
  const d = stateDir(t);
  const s = aState(d);
  assertRefusedState(
    d,
    JSON.stringify({ ...s, version: 2 }),
    /: state file version 2, this arena reads version 1; manage that stack with the arena that wrote it$/,
  );
  assertRefusedState(d, JSON.stringify({ ...s, version: '1' }), /: state file version "1", this arena reads version 1/);
  const { version: _, ...noVersion } = s;
  assertRefusedState(d, JSON.stringify(noVersion), /: not a stack state file \(no version\)$/);
});

test('state.json: another shape is one line naming the file and the field', (t) => {
  const d = stateDir(t);
  const s = aState(d);
  const broken = (f: (x: any) => void) => {
    const x = JSON.parse(JSON.stringify(s));
    f(x);
    return JSON.stringify(x);
  };
  assertRefusedState(
    d,
    broken((x) => (x.components.api.port = 'eighteen-thousand')),
    /: not a stack state file \(components\.api\.port: must be an integer\)$/,
  );
  assertRefusedState(
    d,
    broken((x) => delete x.database),
    /: not a stack state file \(database: required field is missing\)$/,
  );
  assertRefusedState(
    d,
    broken((x) => (x.components.redis.startTime = 5)),
    /\(components\.redis\.startTime: must be a string or null\)$/,
  );
  assertRefusedState(
    d,
    broken((x) => (x.startedAt = 'yesterday')),
    /\(startedAt: must be a valid date-time\)$/,
  );
  assertRefusedState(
    d,
    broken((x) => {
      delete x.name;
      x.profile.checks[0].ok = 'yes';
    }),
    /\(name: required field is missing; 1 more problem\(s\)\)$/,
  );
});

test('arena stack status|down on a state file of another version: one line naming the file, exit 2, nothing removed', (t) => {
  const d = stateDir(t);
  writeFileSync(join(d, 'state.json'), JSON.stringify({ ...aState(d), version: 99 }));
  const what = new RegExp(`^arena: ${join(d, 'state.json')}: state file version 99, this arena reads version 1`);
  assertRefused(runArena(['stack', 'status', '--state-dir', d]), what);
  assertRefused(runArena(['stack', 'down', '--state-dir', d]), what);
  assert.ok(existsSync(join(d, 'state.json')), 'down removed nothing');
});
