/**
 * Integration tests on real servers (no mocks): `arena stack up` brings up
 * PostgreSQL, PgBouncer, Redis and the reference API from
 * samples/arena-local.yaml on free ports in a private state directory; the
 * tests drive the API over HTTP and look at the servers directly (SHOW POOLS,
 * SHOW CONFIG, XPENDING, SQL), then `arena stack down` must leave no process.
 *
 * The sample keeps everything small and fast: LLM calls of 100-400 ms (the
 * tests ask for specific latencies with `llm_latency_ms`), 4 LLM slots per
 * worker with a 2 s wait, PgBouncer pool 4 + 1, app pools 2 x (5 + 5) with a
 * 3 s timeout, rate limit 600/min on a 2 s window (20 per 2 s per client).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { repoPath } from '../../testing/paths.js';
import { alive, descendants, freePort, type ProcRef } from './procs.js';
import { showPools, type StackState } from './stack.js';
import { validateState } from './state.js';
import { eloDelta } from '../api/elo.js';

const ARENA = repoPath('dist/cli/arena.js');
const SAMPLE = repoPath('samples/arena-local.yaml');
const TMP = mkdtempSync(join(tmpdir(), 'arena-stack-it-'));
chmodSync(TMP, 0o711); // the servers run as the unprivileged user when the tests run as root
const STATE_DIR = join(TMP, 'stack');
const API_ENV = [
  'RATE_LIMIT_WINDOW_SECONDS=2',
  'QUEUE_CLAIM_MIN_IDLE_MS=1500',
  'LEADERBOARD_CACHE_TTL_SECONDS=30',
  'SHUTDOWN_GRACE_SECONDS=10',
];

let state: StackState;
let apiPort: number;
let password: string;
let downDone = false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function arena(args: string[]) {
  const r = spawnSync(process.execPath, [ARENA, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/** One HTTP request on a fresh connection (so the cluster spreads them over the workers). */
function http(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; headers?: Record<string, string>; client?: string; port?: number } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const headers: Record<string, string> = { 'x-client-id': opts.client ?? `t-${randomUUID()}`, ...opts.headers };
    if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const req = request(
      { host: '127.0.0.1', port: opts.port ?? apiPort, path, method, headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

interface SseEvent {
  event: string;
  data: any;
}

/**
 * POST an SSE endpoint and parse the stream. `stopAfter(events)` returning true
 * disconnects the client mid-stream. Non-200 answers come back as `status` + `json`.
 */
function sse(
  path: string,
  body: unknown,
  stopAfter?: (events: SseEvent[]) => boolean,
  port = apiPort,
): Promise<{ status: number; contentType: string; events: SseEvent[]; raw: string; json?: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-client-id': `sse-${randomUUID()}` },
        agent: false,
      },
      (res) => {
        let raw = '';
        const events: SseEvent[] = [];
        let parsed = 0;
        res.setEncoding('utf8');
        const finish = () => {
          const ct = String(res.headers['content-type'] ?? '');
          if (res.statusCode !== 200) {
            let json;
            try {
              json = JSON.parse(raw);
            } catch {
              /* not JSON */
            }
            return resolve({ status: res.statusCode ?? 0, contentType: ct, events, raw, json });
          }
          resolve({ status: 200, contentType: ct, events, raw });
        };
        res.on('data', (c: string) => {
          raw += c;
          if (res.statusCode !== 200) return;
          let i: number;
          while ((i = raw.indexOf('\n\n', parsed)) >= 0) {
            const block = raw.slice(parsed, i);
            parsed = i + 2;
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            events.push({ event, data: JSON.parse(data.join('\n')) });
          }
          if (stopAfter?.(events)) {
            req.destroy();
            finish();
          }
        });
        res.on('end', finish);
        res.on('error', () => finish());
      },
    );
    req.on('error', (e) => (stopAfter ? undefined : reject(e)));
    req.end(JSON.stringify(body));
  });
}

type Health = {
  pid: number;
  max_concurrent: number;
  available_slots: number;
  processing_count: number;
  waiting_count: number;
  active_sessions: number;
  db_pool: { max: number; total: number; idle: number; waiting: number };
  cluster: {
    primary_pid: number;
    http_workers_expected: number;
    http_workers_ready: number;
    queue_worker_pid: number | null;
  };
};

/** /health of every HTTP worker (fresh connections until each PID answered). */
async function allHealth(): Promise<Map<number, Health>> {
  const seen = new Map<number, Health>();
  for (let i = 0; i < 40 && seen.size < state.profile.webConcurrency; i++) {
    const r = await http('GET', '/health');
    seen.set(r.json.pid, r.json);
  }
  assert.equal(seen.size, state.profile.webConcurrency, 'every worker answered /health');
  return seen;
}

/** Poll until `check` holds for every worker's /health. */
async function untilAllHealth(check: (h: Health) => boolean, timeoutMs: number): Promise<Map<number, Health>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hs = await allHealth();
    if ([...hs.values()].every(check) || Date.now() > deadline) return hs;
    await sleep(100);
  }
}

function dbClient(database = state.database.name): pg.Client {
  const c = state.components.pgbouncer!;
  return new pg.Client({ host: '127.0.0.1', port: c.port, user: state.database.user, password, database });
}

function redis(): Redis {
  return new Redis({ host: '127.0.0.1', port: state.components.redis!.port, maxRetriesPerRequest: 1 });
}

before(async () => {
  const args = [
    'stack',
    'up',
    '-f',
    SAMPLE,
    '--state-dir',
    STATE_DIR,
    '--free-ports',
    '-o',
    'json',
    ...API_ENV.flatMap((e) => ['--api-env', e]),
  ];
  const r = arena(args);
  assert.equal(r.code, 0, `stack up failed: ${r.err}`);
  state = JSON.parse(r.out) as StackState;
  apiPort = state.components.api!.port;
  password = readFileSync(state.database.passwordFile, 'utf8').trim();
});

after(() => {
  if (!downDone && state) arena(['stack', 'down', '--state-dir', STATE_DIR]);
  rmSync(TMP, { recursive: true, force: true });
});

test('stack up: state file, private secrets, every server alive and running the rendered settings', async () => {
  assert.equal(state.version, 1);
  for (const name of ['postgres', 'pgbouncer', 'redis', 'api'] as const) {
    const c = state.components[name]!;
    assert.ok(alive(c), `${name} pid ${c.pid} alive`);
  }
  assert.equal(statSync(join(STATE_DIR, 'state.json')).mode & 0o777, 0o600);
  assert.equal(statSync(state.database.passwordFile).mode & 0o777, 0o600);
  assert.ok(
    !readFileSync(join(STATE_DIR, 'state.json'), 'utf8').includes(password),
    'the password is not in state.json',
  );
  assert.equal(state.apiEnv['DB_PASSWORD'], '<db-password>');
  assert.equal(state.profile.webConcurrency, 2);
  assert.equal(state.apiEnv['WEB_CONCURRENCY'], '2');
  assert.equal(state.apiEnv['MAX_CONCURRENT_REQUESTS'], '4');
  assert.ok(state.components.api!.workers!.length >= 3, 'two HTTP workers and the queue worker');

  // PgBouncer really runs the planner's pgbouncer.ini (a repeated [pgbouncer] header would reset it to defaults)
  const admin = dbClient('pgbouncer');
  await admin.connect();
  const cfg = Object.fromEntries((await admin.query('SHOW CONFIG')).rows.map((r: any) => [r.key, r.value]));
  await admin.end();
  assert.equal(cfg['max_client_conn'], '100');
  assert.equal(cfg['default_pool_size'], '4');
  assert.equal(cfg['reserve_pool_size'], '1');
  assert.equal(cfg['pool_mode'], 'transaction');
  assert.equal(cfg['listen_addr'], '127.0.0.1');
  assert.equal(cfg['stats_users'], 'arena_app');
  assert.equal(cfg['auth_type'], 'scram-sha-256');

  const r = redis();
  assert.deepEqual(await r.config('GET', 'maxclients'), ['maxclients', '1000']);
  r.disconnect();
  const db = dbClient();
  await db.connect();
  assert.equal((await db.query('SHOW max_connections')).rows[0].max_connections, '40');
  const tables = (
    await db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
  ).rows.map((x: any) => x.table_name);
  await db.end();
  assert.deepEqual(tables, ['elo_ratings', 'matches', 'schema_migrations', 'users']);
});

test('stack up: state.json and the printed state are valid against the published schema (docs/schemas/stack-state.schema.json)', () => {
  const f = join(STATE_DIR, 'state.json');
  const fromFile = validateState(JSON.parse(readFileSync(f, 'utf8')), f);
  assert.deepEqual(validateState(state, 'stdout'), fromFile);
});

test('stack status -o json: every component up with its saturation figures', () => {
  const r = arena(['stack', 'status', '--state-dir', STATE_DIR, '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.equal(s.healthy, true);
  assert.deepEqual(
    s.components.map((c: any) => c.component),
    ['postgres', 'pgbouncer', 'redis', 'api'],
  );
  const by = Object.fromEntries(s.components.map((c: any) => [c.component, c.saturation]));
  assert.equal(by.postgres.max_connections, 40);
  assert.ok(by.postgres.backends >= 1);
  assert.equal(by.pgbouncer.default_pool_size, 4);
  assert.ok(by.pgbouncer.cl_active >= 1, 'the API holds PgBouncer client connections');
  assert.equal(by.redis.maxclients, 1000);
  assert.ok(by.redis.connected_clients >= 3);
  assert.equal(by.api.llm_slots, 8);
  assert.equal(by.api.http_workers_ready, 2);
  const table = arena(['stack', 'status', '--state-dir', STATE_DIR]);
  assert.equal(table.code, 0);
  assert.match(table.out, /healthy/);
  assert.match(table.out, /pgbouncer .*clients \d+ active \+ \d+ waiting/);
});

test('GET /health: slots, sessions, pool figures and the process group', async () => {
  const hs = await allHealth();
  for (const h of hs.values()) {
    assert.equal(h.max_concurrent, 4);
    assert.equal(h.available_slots, 4);
    assert.equal(h.processing_count, 0);
    assert.equal(h.active_sessions, 0);
    assert.equal(h.db_pool.max, 10);
    assert.equal(h.cluster.http_workers_expected, 2);
    assert.equal(h.cluster.http_workers_ready, 2);
    assert.equal(h.cluster.primary_pid, state.components.api!.pid);
    assert.ok(h.cluster.queue_worker_pid);
  }
});

test('bad input: 404 unknown route, 400 malformed JSON and schema errors, 413 oversize body, 415 not JSON', async () => {
  const nf = await http('GET', '/nope');
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error, 'not_found');
  const badJson = await http('POST', '/api/matches', { raw: '{"user_id": ' });
  assert.equal(badJson.status, 400);
  assert.equal(badJson.json.error, 'bad_request');
  const schema = await http('POST', '/api/matches', {
    body: { user_id: 'u', topic: 't', proponent_model: 'a', opponent_model: 'b', winner: 'nobody' },
  });
  assert.equal(schema.status, 400);
  assert.match(schema.json.message, /winner/);
  const same = await http('POST', '/api/matches', {
    body: { user_id: 'u', topic: 't', proponent_model: 'a', opponent_model: 'a', winner: 'draw' },
  });
  assert.equal(same.status, 400);
  assert.match(same.json.message, /must differ/);
  const noUser = await http('GET', '/api/matches');
  assert.equal(noUser.status, 400);
  assert.match(noUser.json.message, /user_id/);
  const big = await http('POST', '/chat/stream', { body: { question: 'x'.repeat(70_000) } });
  assert.equal(big.status, 413);
  assert.equal(big.json.error, 'payload_too_large');
  const text = await http('POST', '/chat/stream', { raw: 'hello', headers: { 'content-type': 'text/plain' } });
  assert.equal(text.status, 415);
  const task = await http('GET', '/api/llmchat/tasks/not-a-uuid');
  assert.equal(task.status, 400);
  const scene = await http('POST', '/api/llmchat/prompts/Bad%20Scene/api', { body: { prompt: 'p' } });
  assert.equal(scene.status, 400);
});

test('POST /api/matches, GET /api/matches?user_id=, and the leaderboard cache (MISS, HIT, invalidated by a save)', async () => {
  const user = `u-${randomUUID()}`;
  const m = {
    user_id: user,
    topic: 'cats vs dogs',
    proponent_model: 'lb-a',
    opponent_model: 'lb-b',
    winner: 'proponent',
  };
  const saved = await http('POST', '/api/matches', { body: m });
  assert.equal(saved.status, 201, saved.body);
  assert.equal(saved.json.match.rating_delta, 16);
  assert.equal(saved.json.match.proponent_rating_after, 1516);
  const list = await http('GET', `/api/matches?user_id=${user}&limit=5`);
  assert.equal(list.status, 200);
  assert.equal(list.json.matches.length, 1);
  assert.equal(list.json.matches[0].id, saved.json.match.id);
  // db_sleep_ms holds the connection first, in the same statement as the read, even when no row matches
  for (const q of [`user_id=${user}&limit=5&db_sleep_ms=300`, 'user_id=nobody&db_sleep_ms=300&db_tx=2']) {
    const t0 = performance.now();
    const slow = await http('GET', `/api/matches?${q}`);
    assert.equal(slow.status, 200, slow.body);
    assert.ok(performance.now() - t0 >= 300, `${q}: answered in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(slow.json.matches.length, q.startsWith('user_id=nobody') ? 0 : 1);
  }

  const first = await http('GET', '/api/leaderboard');
  const second = await http('GET', '/api/leaderboard');
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-cache'], 'MISS');
  assert.equal(second.headers['x-cache'], 'HIT');
  assert.equal(second.json.cached, true);
  assert.deepEqual(second.json.models, first.json.models);
  assert.ok(first.json.models.some((x: any) => x.model_id === 'lb-a' && x.rating === 1516));
  await http('POST', '/api/matches', { body: { ...m, winner: 'opponent' } });
  const third = await http('GET', '/api/leaderboard');
  assert.equal(third.headers['x-cache'], 'MISS', 'a saved match invalidates the cache');
  const r = redis();
  const ttl = await r.ttl('arena:cache:leaderboard');
  r.disconnect();
  assert.ok(ttl > 0 && ttl <= 30, `TTL ${ttl}`);
});

test('POST /chat/stream: SSE framing, tokens spread over the call, a final done event', async () => {
  const t0 = Date.now();
  const r = await sse('/chat/stream', { question: 'why?', llm_latency_ms: 400 });
  assert.equal(r.status, 200);
  assert.match(r.contentType, /^text\/event-stream/);
  assert.ok(r.raw.endsWith('\n\n'), 'every event ends with a blank line');
  assert.equal(r.events[0]!.event, 'start');
  const tokens = r.events.filter((e) => e.event === 'message');
  assert.ok(tokens.length >= 5, `${tokens.length} tokens`);
  assert.deepEqual(
    tokens.map((t) => t.data.index),
    tokens.map((_, i) => i),
  );
  const done = r.events[r.events.length - 1]!;
  assert.equal(done.event, 'done');
  assert.equal(done.data.tokens, tokens.length);
  assert.ok(Date.now() - t0 >= 380);
});

test('POST /api/tournament/match/stream: debate tokens by speaker, then the saved match as the final event', async () => {
  const user = `deb-${randomUUID()}`;
  const r = await sse('/api/tournament/match/stream', {
    user_id: user,
    topic: 'tabs or spaces',
    proponent_model: 'deb-a',
    opponent_model: 'deb-b',
    llm_latency_ms: 300,
  });
  assert.equal(r.status, 200);
  const tokens = r.events.filter((e) => e.event === 'message');
  assert.ok(tokens.some((t) => t.data.speaker === 'proponent') && tokens.some((t) => t.data.speaker === 'opponent'));
  const last = r.events[r.events.length - 1]!;
  assert.equal(last.event, 'match');
  assert.equal(last.data.match.user_id, user);
  assert.equal(last.data.match.tokens, tokens.length);
  assert.equal(last.data.match.proponent_rating_before + last.data.match.opponent_rating_before, 3000);
  const list = await http('GET', `/api/matches?user_id=${user}`);
  assert.equal(list.json.matches[0].id, last.data.match.id);
});

test('async queue: 202 + task_id, poll to done; ?sync=true waits; unknown task 404', async () => {
  const q = await http('POST', '/api/llmchat/prompts/summary/api', {
    body: { prompt: 'summarise', user_id: 'q-user', llm_latency_ms: 300 },
  });
  assert.equal(q.status, 202);
  assert.match(q.json.task_id, /^[0-9a-f-]{36}$/);
  assert.equal(q.headers['location'], `/api/llmchat/tasks/${q.json.task_id}`);
  let t: any;
  for (let i = 0; i < 50; i++) {
    t = (await http('GET', `/api/llmchat/tasks/${q.json.task_id}`)).json;
    if (t.status === 'done') break;
    await sleep(100);
  }
  assert.equal(t.status, 'done');
  assert.equal(t.scene, 'summary');
  assert.equal(t.completions, 1);
  assert.ok(t.result.tokens > 0 && t.result.text.length > 0);

  const t0 = Date.now();
  const s = await http('POST', '/api/llmchat/prompts/chat/api?sync=true', {
    body: { prompt: 'now', llm_latency_ms: 500 },
  });
  assert.equal(s.status, 200, s.body);
  assert.equal(s.json.status, 'done');
  assert.ok(Date.now() - t0 >= 480, 'waited for the LLM call');
  const missing = await http('GET', `/api/llmchat/tasks/${randomUUID()}`);
  assert.equal(missing.status, 404);
});

test('LLM semaphore: past MAX_CONCURRENT_REQUESTS x workers the rest get 503 after SLOT_WAIT_TIMEOUT_SECONDS, then it recovers', async () => {
  const n = 16; // 2 workers x 4 slots = 8 served at once
  // A 6 s call against the 2 s slot wait: a waiting request is refused 4 s
  // before a slot frees, so the outcome holds on a loaded CI machine too.
  const llmMs = 6000;
  const t0 = Date.now();
  const runs = Array.from({ length: n }, () => sse('/chat/stream', { question: 'busy', llm_latency_ms: llmMs }));
  try {
    const during = await untilAllHealth((h) => h.processing_count === 4 && h.waiting_count >= 1, 1900);
    for (const h of during.values()) {
      assert.equal(h.processing_count, 4, 'every slot is taken');
      assert.equal(h.available_slots, 0);
      assert.ok(h.waiting_count >= 1, 'requests wait for a slot');
    }
    const results = await Promise.all(runs);
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 503);
    assert.equal(ok.length, 8, results.map((r) => r.status).join(','));
    assert.equal(busy.length, 8);
    for (const b of busy) {
      assert.equal(b.json.error, 'llm_slots_busy');
      assert.equal(b.json.max_concurrent, 4);
      assert.ok(b.json.waited_ms >= 1900, `waited ${b.json.waited_ms} ms`);
    }
    for (const r of ok) assert.equal(r.events[r.events.length - 1]!.event, 'done');
    assert.ok(Date.now() - t0 >= llmMs);
  } finally {
    await Promise.allSettled(runs); // a failure here must not leave busy slots to the next test
  }
  const afterwards = await untilAllHealth((h) => h.available_slots === 4, 2000);
  for (const h of afterwards.values()) assert.equal(h.available_slots, 4);
  assert.equal((await sse('/chat/stream', { question: 'again', llm_latency_ms: 100 })).status, 200);
});

test('a client that disconnects mid-stream frees its slot at once, and an abandoned debate is not saved', async () => {
  let pid = 0;
  await sse('/chat/stream', { question: 'bye', llm_latency_ms: 20_000 }, (events) => {
    pid = events[0]?.data.worker_pid ?? 0;
    return events.length >= 2;
  });
  assert.ok(pid > 0);
  const hs = await untilAllHealth((h) => h.processing_count === 0 && h.active_sessions === 0, 5000);
  assert.equal(hs.get(pid)!.processing_count, 0, 'the slot is free well before the 20 s call would end');
  assert.equal(hs.get(pid)!.available_slots, 4);

  const user = `gone-${randomUUID()}`;
  await sse(
    '/api/tournament/match/stream',
    { user_id: user, topic: 't', proponent_model: 'gone-a', opponent_model: 'gone-b', llm_latency_ms: 2000 },
    (events) => events.length >= 3,
  );
  await sleep(2500);
  const list = await http('GET', `/api/matches?user_id=${user}`);
  assert.equal(list.json.matches.length, 0);
  for (const h of (await allHealth()).values()) {
    assert.equal(h.db_pool.waiting, 0);
    assert.equal(h.db_pool.idle, h.db_pool.total, 'no DB connection is held');
  }
});

test('rate limit: 429 with Retry-After past the window limit (per client), then it lets the client in again', async () => {
  const client = `rl-${randomUUID()}`;
  const limit = 20; // 600 per minute on a 2 s window
  for (let i = 0; i < limit; i++) {
    const r = await http('GET', '/api/leaderboard', { client });
    assert.equal(r.status, 200, `request ${i + 1}`);
    assert.equal(Number(r.headers['x-ratelimit-remaining']), limit - i - 1);
  }
  const limited = await http('GET', '/api/leaderboard', { client });
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error, 'rate_limited');
  const retry = Number(limited.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);
  assert.equal((await http('GET', '/api/leaderboard')).status, 200, 'another client is not limited');
  assert.equal((await http('GET', '/health', { client })).status, 200, '/health is not rate limited');
  await sleep(retry * 1000 + 100);
  assert.equal((await http('GET', '/api/leaderboard', { client })).status, 200, 'admitted again after Retry-After');
});

test('ELO: 200 concurrent match saves on 3 models keep the ratings consistent (zero-sum, no lost update, per-model chain)', async () => {
  const tag = randomUUID().slice(0, 8);
  const models = ['a', 'b', 'c'].map((x) => `elo-${x}-${tag}`);
  const winners = ['proponent', 'opponent', 'draw'];
  const res = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      http('POST', '/api/matches', {
        body: {
          user_id: `elo-user-${i % 7}`,
          topic: `t${i}`,
          proponent_model: models[i % 3],
          opponent_model: models[(i + 1 + (i % 2)) % 3],
          winner: winners[i % 3],
        },
      }),
    ),
  );
  assert.deepEqual(
    [...new Set(res.map((r) => r.status))],
    [201],
    res
      .filter((r) => r.status !== 201)
      .map((r) => r.body)
      .slice(0, 3)
      .join('\n'),
  );
  const db = dbClient();
  await db.connect();
  try {
    const matches = (await db.query('SELECT * FROM matches WHERE proponent_model = ANY($1) ORDER BY id', [models]))
      .rows;
    assert.equal(matches.length, 200, 'no lost match');
    const ratings = (
      await db.query('SELECT model_id, rating, matches FROM elo_ratings WHERE model_id = ANY($1)', [models])
    ).rows;
    assert.equal(
      ratings.reduce((s: number, r: any) => s + r.rating, 0),
      3 * 1500,
      'zero-sum',
    );
    assert.equal(
      ratings.reduce((s: number, r: any) => s + r.matches, 0),
      400,
    );
    for (const r of ratings) {
      let current = 1500;
      for (const m of matches) {
        if (m.proponent_model === r.model_id) {
          assert.equal(
            m.proponent_rating_before,
            current,
            `match ${m.id}: ${r.model_id} starts where the previous match left it`,
          );
          current = m.proponent_rating_after;
        } else if (m.opponent_model === r.model_id) {
          assert.equal(m.opponent_rating_before, current, `match ${m.id}: ${r.model_id} chain`);
          current = m.opponent_rating_after;
        }
      }
      assert.equal(r.rating, current, `${r.model_id}: rating = 1500 + its deltas`);
    }
    // the delta PostgreSQL computed (arena_save_match) is elo.ts's formula, over the spread of ratings 200 matches make
    for (const m of matches)
      assert.equal(
        m.rating_delta,
        eloDelta(m.proponent_rating_before, m.opponent_rating_before, m.winner),
        `match ${m.id}`,
      );
    assert.ok(new Set(matches.map((m: any) => m.rating_delta)).size > 5, 'the matches covered several deltas');
  } finally {
    await db.end();
  }
});

test('PgBouncer SHOW POOLS under load: servers stay within default_pool_size + reserve, clients queue (cl_waiting > 0), app pool timeouts answer 503', async () => {
  const p = state.profile.pgbouncer;
  const samples: { sv: number; active: number; waiting: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rows = await showPools(state);
      const sum = (k: string) => rows.reduce((s, r: any) => s + r[k], 0);
      samples.push({
        sv: sum('sv_active') + sum('sv_idle') + sum('sv_used') + sum('sv_tested') + sum('sv_login'),
        active: sum('sv_active'),
        waiting: sum('cl_waiting'),
      });
      await sleep(100);
    }
  })();
  const user = `pool-${randomUUID()}`;
  const res = await Promise.all(
    Array.from({ length: 40 }, () => http('GET', `/api/matches?user_id=${user}&db_sleep_ms=1200`)),
  );
  sampling = false;
  await sampler;
  const maxSv = Math.max(...samples.map((s) => s.sv));
  const maxWaiting = Math.max(...samples.map((s) => s.waiting));
  const maxActive = Math.max(...samples.map((s) => s.active));
  assert.ok(
    maxSv <= p.defaultPoolSize + p.reservePoolSize,
    `server connections ${maxSv} <= ${p.defaultPoolSize}+${p.reservePoolSize}`,
  );
  assert.ok(maxActive >= p.defaultPoolSize, `the pool was used fully (sv_active ${maxActive})`);
  assert.ok(maxWaiting > 0, 'clients waited for a server connection');
  const ok = res.filter((r) => r.status === 200).length;
  const timeouts = res.filter((r) => r.status === 503);
  assert.equal(ok + timeouts.length, 40, res.map((r) => r.status).join(','));
  assert.ok(timeouts.length >= 1, 'some requests waited longer than DB_POOL_TIMEOUT for an app connection');
  for (const t of timeouts) {
    assert.equal(t.json.error, 'db_pool_timeout');
    assert.match(t.json.message, /no database connection free within 3 s/);
  }
  for (const h of (await untilAllHealth((x) => x.db_pool.waiting === 0, 3000)).values())
    assert.equal(h.db_pool.waiting, 0);
});

test('queue: a queue worker killed (SIGKILL) mid-task is restarted, the entry is reclaimed with XAUTOCLAIM and completed exactly once', async () => {
  const r = redis();
  try {
    const q = await http('POST', '/api/llmchat/prompts/long/api', {
      body: { prompt: 'slow one', llm_latency_ms: 3000 },
    });
    assert.equal(q.status, 202);
    const id = q.json.task_id as string;
    let consumer = '';
    for (let i = 0; i < 50 && !consumer; i++) {
      const pending = (await r.xpending('arena:llm:tasks', 'llm-workers', '-', '+', 100)) as [
        string,
        string,
        number,
        number,
      ][];
      const task = await r.hget(`arena:task:${id}`, 'status');
      for (const [entry, owner] of pending) {
        const fields = ((await r.xrange('arena:llm:tasks', entry, entry))[0]?.[1] ?? []) as string[];
        if (task === 'running' && fields[fields.indexOf('task_id') + 1] === id) consumer = owner;
      }
      if (!consumer) await sleep(50);
    }
    assert.match(consumer, /^qw-.+-\d+$/);
    const oldPid = Number(consumer.split('-').pop());
    const h = (await allHealth()).values().next().value as Health;
    assert.equal(h.cluster.queue_worker_pid, oldPid);
    process.kill(oldPid, 'SIGKILL');

    let newPid: number | null = null;
    for (let i = 0; i < 50 && (!newPid || newPid === oldPid); i++) {
      await sleep(100);
      newPid = ((await http('GET', '/health')).json as Health).cluster.queue_worker_pid;
    }
    assert.ok(newPid && newPid !== oldPid, `the primary restarted the queue worker (${oldPid} -> ${newPid})`);

    let t: any;
    for (let i = 0; i < 150; i++) {
      t = (await http('GET', `/api/llmchat/tasks/${id}`)).json;
      if (t.status === 'done' || t.status === 'failed') break;
      await sleep(100);
    }
    assert.equal(t.status, 'done', JSON.stringify(t));
    assert.equal(t.completions, 1, 'completed exactly once');
    assert.equal(t.attempts, 2, 'delivered twice: to the killed worker, then reclaimed');
    assert.equal(t.reclaimed, true);
    assert.equal(t.completed_by, `${consumer.split('-').slice(0, -1).join('-')}-${newPid}`);
    assert.equal(
      Number(((await r.xpending('arena:llm:tasks', 'llm-workers')) as unknown[])[0]),
      0,
      'nothing left pending',
    );
    await sleep(300);
    assert.equal((await http('GET', `/api/llmchat/tasks/${id}`)).json.completions, 1, 'still once');
  } finally {
    r.disconnect();
  }
});

test('GET /metrics: Prometheus text aggregated over the workers (duration histogram, in-flight, pool, slots, queue)', async () => {
  const r = await http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body)?.[1]);
  assert.match(
    r.body,
    /^arena_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/leaderboard",status="200"\} \d+$/m,
  );
  assert.match(
    r.body,
    /^arena_http_request_duration_seconds_count\{method="POST",route="\/chat\/stream",status="503"\} 8$/m,
  );
  assert.equal(value('arena_db_pool_max'), 20, '2 workers x (5 + 5)');
  assert.equal(value('arena_llm_slots_max'), 8, '2 workers x 4');
  assert.ok(value('arena_http_requests_in_flight') >= 1);
  assert.ok(value('arena_db_pool_total') >= 1);
  assert.equal(value('arena_llm_slots_in_use'), 0);
  assert.ok(Number.isFinite(value('arena_queue_length')));
  assert.ok(Number.isFinite(value('arena_queue_lag')));
  assert.ok(value('arena_queue_reclaimed_total') >= 1);
  assert.ok(value('arena_rate_limited_total') >= 1);
  assert.ok(value('arena_llm_slot_timeouts_total') >= 8);
  // the HTTP workers sample their event loop every 20 ms: by now each has many samples
  assert.ok(value('arena_event_loop_delay_seconds_count') >= 20, 'event-loop delay samples');
  // the HTTP workers' CPU time: by now they have served every test above
  assert.ok(value('arena_http_worker_cpu_seconds_total') > 0.1, 'HTTP worker CPU seconds');
});

test('node dist/loadtest/api/main.js on its own: SIGTERM drains an in-flight stream, refuses new work, exits 0', async () => {
  const port = await freePort();
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  for (const [k, v] of Object.entries(state.apiEnv))
    env[k] = v.split('<db-password>').join(k === 'DATABASE_URL' ? encodeURIComponent(password) : password);
  Object.assign(env, {
    PORT: String(port),
    WEB_CONCURRENCY: '1',
    ASYNC_CONCURRENCY: '0',
    SHUTDOWN_GRACE_SECONDS: '10',
  });
  const child = spawn(process.execPath, [repoPath('dist/loadtest/api/main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (c) => (log += c));
  child.stderr.on('data', (c) => (log += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 100; i++) {
      const h = await http('GET', '/health', { port }).catch(() => null);
      if (h?.status === 200) break;
      await sleep(100);
    }
    let termAt = 0;
    const stream = sse(
      '/chat/stream',
      { question: 'drain me', llm_latency_ms: 1500 },
      (events) => {
        if (events.length === 2 && !termAt) {
          termAt = Date.now();
          child.kill('SIGTERM');
        }
        return false;
      },
      port,
    );
    const r = await stream;
    assert.equal(r.status, 200);
    assert.equal(r.events[r.events.length - 1]!.event, 'done', 'the stream in flight finished');
    const late = await http('GET', '/health', { port }).then(
      (x) => x.status,
      (e: NodeJS.ErrnoException) => e.code,
    );
    assert.ok(late === 'ECONNREFUSED' || late === 'ECONNRESET' || late === 503, `a new request after SIGTERM: ${late}`);
    assert.equal(await exited, 0, log);
    assert.match(log, /SIGTERM: draining workers/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('stack down: stops exactly the processes it started (servers, API primary, every worker), leaves none, removes the state dir', () => {
  const c = state.components;
  const refs: ProcRef[] = [c.postgres!, c.pgbouncer!, c.redis!, c.api!, ...c.api!.workers!, ...descendants(c.api!.pid)];
  assert.ok(refs.length >= 7);
  const r = arena(['stack', 'down', '--state-dir', STATE_DIR]);
  downDone = true;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /removed /);
  const left = refs.filter((x) => alive(x)).map((x) => x.pid);
  assert.deepEqual(left, [], 'no process left behind');
  assert.equal(existsSync(STATE_DIR), false);
  const again = arena(['stack', 'status', '--state-dir', STATE_DIR]);
  assert.equal(again.code, 2);
  assert.match(again.err, /^arena: no stack state in .*\n$/);
});
