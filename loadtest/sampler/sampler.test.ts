/**
 * The saturation sampler on real servers (no mocks): a private stack from
 * samples/arena-local.yaml (PgBouncer pool 4 + 1, max_client_conn 100,
 * PostgreSQL max_connections 40, Redis maxclients 1000, 2 API workers x 4 LLM
 * slots and 2 x (5 + 5) DB connections) on free ports; the test drives a burst
 * of slow queries at the API while the sampler runs, then checks the series
 * and summaries. Also: `arena sample` with a target that never answers, and
 * a target that goes away mid-run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { repoPath } from '../../testing/paths.js';
import { freePort } from '../stack/procs.js';
import type { StackState } from '../stack/stack.js';
import {
  FIGURES,
  healthTarget,
  makeTarget,
  parseProcStat,
  redisTarget,
  sample,
  type SampleResult,
  type TargetKind,
} from './sampler.js';
import { SampleResultSchema } from './result-schema.js';

const ARENA = repoPath('dist/cli/arena.js');
const SAMPLE = repoPath('samples/arena-local.yaml');
const TMP = mkdtempSync(join(tmpdir(), 'arena-sampler-it-'));
chmodSync(TMP, 0o711); // the servers run as the unprivileged user when the tests run as root
const STATE_DIR = join(TMP, 'stack');

let state: StackState;
let urls: Record<TargetKind, string>;
/** The results the tests below produced, checked against the published schema by the last test. */
const produced: { what: string; result: unknown }[] = [];

function arena(args: string[]) {
  const r = spawnSync(process.execPath, [ARENA, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `arena ...` without blocking the event loop (the test drives load meanwhile). */
function arenaAsync(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [ARENA, ...args], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

function get(path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: state.components.api!.port,
        path,
        agent: false,
        headers: { 'x-client-id': `s-${randomUUID()}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

before(() => {
  const r = arena([
    'stack',
    'up',
    '-f',
    SAMPLE,
    '--state-dir',
    STATE_DIR,
    '--free-ports',
    '-o',
    'json',
    '--api-env',
    'SHUTDOWN_GRACE_SECONDS=5',
  ]);
  assert.equal(r.code, 0, `stack up failed: ${r.err}`);
  state = JSON.parse(r.out) as StackState;
  const pw = encodeURIComponent(readFileSync(state.database.passwordFile, 'utf8').trim());
  const c = state.components;
  urls = {
    pgbouncer: `postgresql://${state.database.user}:${pw}@127.0.0.1:${c.pgbouncer!.port}/pgbouncer`,
    postgres: `postgresql://${state.database.user}:${pw}@127.0.0.1:${c.postgres!.port}/${state.database.name}`,
    redis: `redis://127.0.0.1:${c.redis!.port}/0`,
    health: `http://127.0.0.1:${c.api!.port}/health`,
    host: 'file:///proc/stat',
  };
});

after(() => {
  if (state) {
    const r = arena(['stack', 'down', '--state-dir', STATE_DIR]);
    assert.equal(r.code, 0, r.err);
  }
  rmSync(TMP, { recursive: true, force: true });
});

/** One point per tick for every figure of every target, tick times in order. */
function assertCoverage(r: SampleResult, kinds: TargetKind[]) {
  const expected = Math.floor(r.durationMs / r.intervalMs) + 1;
  assert.ok(Math.abs(r.ticks - expected) <= 1, `ticks ${r.ticks} ~ ${expected}`);
  for (const k of kinds) {
    for (const f of FIGURES[k]) {
      const s = r.series[`${k}.${f}`];
      assert.ok(s, `series ${k}.${f}`);
      assert.equal(s.length, r.ticks, `${k}.${f}: one point per tick`);
      for (let i = 1; i < s.length; i++) assert.ok(s[i]![0] > s[i - 1]![0], `${k}.${f}: times increase`);
      assert.ok(s[0]![0] < r.intervalMs / 2, `${k}.${f} starts at the start`);
      assert.ok(
        s[s.length - 1]![0] >= r.durationMs - r.intervalMs,
        `${k}.${f} reaches the end (${s[s.length - 1]![0]} ms)`,
      );
    }
  }
}

test('sampler under a burst: every figure has a full series, PgBouncer clients and servers rise, limits are the plan values, summaries are consistent', async () => {
  const kinds: TargetKind[] = ['pgbouncer', 'postgres', 'redis', 'health', 'host'];
  const user = `burst-${randomUUID()}`;
  let burst: Promise<number[]> | undefined;
  const r = await sample(
    kinds.map((k) => makeTarget(k, urls[k])),
    {
      intervalMs: 1000,
      durationMs: 4000,
      // tick 1 is the idle baseline; then 60 concurrent slow reads, each holding a PgBouncer server connection 300 ms
      onTick: (n) => {
        if (n === 1)
          burst = Promise.all(
            Array.from({ length: 60 }, () => get(`/api/matches?user_id=${user}&limit=1&db_sleep_ms=300`)),
          );
      },
    },
  );
  produced.push({ what: 'sample() under a burst', result: r });
  const statuses = await burst!;
  assert.ok(statuses.filter((s) => s === 200).length >= 20, `most reads succeeded: ${statuses.join(',')}`);

  assertCoverage(r, kinds);
  for (const k of kinds) {
    assert.deepEqual(r.targets[k]!.errors, [], `${k}: no error`);
    assert.equal(r.targets[k]!.ok, r.ticks);
  }
  for (const [f, s] of Object.entries(r.series)) {
    if (f === 'pgbouncer.avg_wait_time_us') continue;
    assert.ok(
      s.every(([, v]) => v !== null && v >= 0),
      `${f}: a value every tick`,
    );
  }
  assert.doesNotMatch(
    r.targets.pgbouncer!.url,
    new RegExp(encodeURIComponent(readFileSync(state.database.passwordFile, 'utf8').trim())),
    'password redacted',
  );

  // the burst shows: clients and servers above the idle baseline (tick 0)
  const v = (f: string) => r.series[f]!.map(([, x]) => x as number);
  const p = state.profile.pgbouncer;
  const [clIdle, ...clBusy] = v('pgbouncer.cl_active');
  const [svIdle, ...svBusy] = v('pgbouncer.sv_active');
  assert.ok(Math.max(...clBusy) > clIdle!, `cl_active rises: ${v('pgbouncer.cl_active')}`);
  assert.ok(Math.max(...svBusy) > svIdle!, `sv_active rises: ${v('pgbouncer.sv_active')}`);
  assert.ok(Math.max(...svBusy) >= p.defaultPoolSize, `the server pool fills: ${v('pgbouncer.sv_active')}`);
  assert.ok(Math.max(...v('pgbouncer.cl_waiting')) > 0, `clients wait: ${v('pgbouncer.cl_waiting')}`);
  // SHOW STATS total_xact_time is a counter of server time in transactions: the 300 ms sleeps add up in it
  const xactTime = v('pgbouncer.total_xact_time_us');
  assert.ok(
    xactTime.every((x, i) => i === 0 || x >= xactTime[i - 1]!),
    `total_xact_time_us never falls: ${xactTime}`,
  );
  assert.ok(
    xactTime.at(-1)! - xactTime[0]! >= 10 * 300_000,
    `at least ten 300 ms sleeps in total_xact_time_us: ${xactTime}`,
  );
  assert.ok(Math.max(...v('health.in_flight')) >= 20, `in flight at the API: ${v('health.in_flight')}`);
  assert.ok(
    Math.max(...v('postgres.active')) >= p.defaultPoolSize,
    `pg_sleep backends active: ${v('postgres.active')}`,
  );

  // limits are the plan's (local profile) values
  const sum = r.summary;
  assert.equal(sum['pgbouncer.sv_active']!.limit, p.defaultPoolSize + p.reservePoolSize);
  assert.equal(sum['pgbouncer.cl_active']!.limit, p.maxClientConn);
  assert.equal(sum['postgres.backends']!.limit, state.profile.postgres.maxConnections);
  assert.equal(sum['redis.connected_clients']!.limit, state.profile.redis.maxClients);
  assert.equal(sum['health.processing_count']!.limit, 2 * 4, '2 workers x 4 LLM slots');
  assert.equal(sum['health.db_pool_total']!.limit, 2 * (5 + 5), '2 workers x (DB_POOL_SIZE + DB_MAX_OVERFLOW)');
  assert.equal(sum['pgbouncer.cl_waiting']!.limit, null);
  assert.equal(sum['host.cpu_busy']!.limit, cpus().length, "the machine's cores");
  assert.ok(
    v('host.cpu_busy').every((x) => x >= 0 && x <= cpus().length),
    `busy cores: ${v('host.cpu_busy')}`,
  );
  for (const [f, s] of Object.entries(sum)) {
    assert.equal(s.samples + s.missing, r.ticks, f);
    assert.ok(s.peak !== null && s.p95 !== null, `${f}: peak and P95`);
    assert.ok(s.peak >= s.p95! && s.p95! >= 0, `${f}: peak ${s.peak} >= p95 ${s.p95} >= 0`);
    assert.equal(s.peak, Math.max(...v(f)), `${f}: peak = max of the series`);
    if (s.limit !== null) {
      assert.ok(
        Math.abs(s.peakUtilization! - s.peak! / s.limit) < 1e-12 &&
          Math.abs(s.p95Utilization! - s.p95! / s.limit) < 1e-12,
        `${f}: utilisation = value / limit`,
      );
      assert.ok(s.peakUtilization! >= s.p95Utilization!);
    }
  }
  const top = Object.entries(sum)
    .filter(([, s]) => s.peakUtilization !== null)
    .sort((a, b) => b[1].peakUtilization! - a[1].peakUtilization!)[0]!;
  assert.equal(r.saturatesFirst!.peakUtilization, top[1].peakUtilization);
  assert.ok(r.cost.cpuMsPerTick > 0 && r.cost.wallMsPerTick > 0);
  process.stderr.write(
    `# sampler cost: ${r.cost.cpuMsPerTick} ms CPU, ${r.cost.wallMsPerTick} ms wall per tick; reads: ${kinds.map((k) => `${k} mean ${r.targets[k]!.meanReadMs} ms`).join(', ')}\n`,
  );
});

test('host target: busy cores from /proc/stat rise while this process spins, within 0..cores', async () => {
  const t = makeTarget('host', 'file:///proc/stat');
  await t.read(1000); // baseline
  const until = Date.now() + 400;
  while (Date.now() < until); // one core busy for 400 ms
  const r = await t.read(1000);
  const busy = r.values['host.cpu_busy']!;
  assert.equal(r.limits['host.cpu_busy'], cpus().length);
  assert.ok(busy >= 0.5 && busy <= cpus().length, `busy cores while spinning: ${busy}`);
  assert.deepEqual(
    parseProcStat('cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 5 0 2 40 3 0 0 0 0 0\ncpu1 5 0 3 40 2 0 0 0 0 0\n'),
    { busy: 15, total: 100, cores: 2 },
  );
});

test('arena sample: a --health with nothing listening gives error entries every tick, the others keep sampling; the file is written, exit 1', async () => {
  const port = await freePort();
  const out = join(TMP, 'res', 'sample.json');
  const r = await arenaAsync([
    'sample',
    '--pgbouncer',
    urls.pgbouncer,
    '--redis',
    urls.redis,
    '--health',
    `http://127.0.0.1:${port}/health`,
    '--duration',
    '2s',
    '--interval',
    '500ms',
    '--out',
    out,
  ]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /\[sample\] 0\.0 s: health: connect ECONNREFUSED/);
  assert.match(
    r.err.trim().split('\n').pop()!,
    /^arena: sample: --health answered no tick \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/,
  );
  const res = JSON.parse(readFileSync(out, 'utf8')) as SampleResult;
  produced.push({ what: 'arena sample --out', result: res });
  assert.deepEqual(readdirSync(join(TMP, 'res')), ['sample.json'], 'no temp file left');
  assertCoverage(res, ['pgbouncer', 'redis', 'health']);
  assert.equal(res.targets.health!.failed, res.ticks);
  assert.equal(res.targets.health!.errors.length, res.ticks);
  assert.ok(res.targets.health!.errors.every((e) => /ECONNREFUSED/.test(e.error)));
  assert.ok(
    res.series['health.in_flight']!.every(([, x]) => x === null),
    'gaps are null',
  );
  assert.equal(res.summary['health.in_flight']!.missing, res.ticks);
  assert.equal(res.summary['health.in_flight']!.peak, null);
  for (const k of ['pgbouncer', 'redis'] as const) {
    assert.equal(res.targets[k]!.ok, res.ticks, `${k} kept sampling`);
    assert.ok(res.series[`${k}.${FIGURES[k][0]}`]!.every(([, x]) => typeof x === 'number'));
  }
  assert.equal(res.summary['redis.connected_clients']!.limit, 1000);
  assert.match(r.out, /redis\.connected_clients\s+│ 1000 \(maxclients\)/);
  assert.match(r.out, /health: \d+ of \d+ ticks failed \(first at 0 ms: connect ECONNREFUSED/);
  assert.match(r.out, /saturates first: pgbouncer\.\w+|saturates first: redis\./);
});

test('sampler: a target that goes away mid-run records errors from then on; the others are not held up', async () => {
  // a stand-in /health (the real API's answer) that stops listening after the second tick
  const body = await new Promise<string>((resolve, reject) => {
    request(urls.health, { agent: false }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    })
      .on('error', reject)
      .end();
  });
  const server = createServer((_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const r = await sample([redisTarget(urls.redis), healthTarget(`http://127.0.0.1:${port}/health`)], {
    intervalMs: 400,
    durationMs: 2000,
    onTick: (n) => {
      if (n === 2) {
        server.close();
        server.closeAllConnections();
      }
    },
  });
  produced.push({ what: 'sample() with a target that went away', result: r });
  assertCoverage(r, ['redis', 'health']);
  const h = r.targets.health!;
  assert.ok(h.ok >= 2 && h.failed >= 2, `health: ${h.ok} ok, ${h.failed} failed`);
  assert.equal(h.ok + h.failed, r.ticks);
  const firstError = h.errors[0]!.tMs;
  const pts = r.series['health.processing_count']!;
  assert.ok(
    pts.every(([t, x]) => (t < firstError ? x !== null : x === null)),
    'values before, gaps after it went away',
  );
  assert.equal(r.targets.redis!.ok, r.ticks, 'redis kept sampling');
  assert.ok(r.series['redis.connected_clients']!.every(([, x]) => typeof x === 'number'));
  assert.equal(existsSync(join(TMP, 'nothing')), false);
});

test('every result above is valid against the published schema (docs/schemas/sample-result.schema.json)', () => {
  // ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
  const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
    ajv: Ajv,
  ) => Ajv;
  const validate = addFormats(new Ajv({ allErrors: true, strict: true, strictTypes: false })).compile(
    SampleResultSchema,
  );
  assert.equal(produced.length, 3, 'the three tests above produced a result each');
  for (const { what, result } of produced) {
    assert.ok(validate(JSON.parse(JSON.stringify(result))), `${what}: ${JSON.stringify(validate.errors)}`);
  }
  const bad = JSON.parse(JSON.stringify(produced[0]!.result)) as { series: Record<string, unknown[]> };
  bad.series['pgbouncer.cl_active']![0] = [0, 'busy'];
  assert.equal(validate(bad), false, 'the schema is not vacuous');
});
