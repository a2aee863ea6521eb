/**
 * SHOW POOLS / SHOW STATS / SHOW CONFIG parsing on rows captured from
 * PgBouncer 1.18 (node-postgres, rowMode 'array'), from an older layout
 * (1.7: no maxwait_us, total_requests), and on rows with NULLs and missing
 * columns: columns are read by name, missing or NULL cells read as null.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxOf, num, parseConfig, parsePools, parseStats, sumOf, userPools } from './pgbouncer.js';

// captured from PgBouncer 1.18.0 during a burst (arena stack, samples/arena-local.yaml)
const POOLS_118_FIELDS = [
  'database',
  'user',
  'cl_active',
  'cl_waiting',
  'cl_active_cancel_req',
  'cl_waiting_cancel_req',
  'sv_active',
  'sv_active_cancel',
  'sv_being_canceled',
  'sv_idle',
  'sv_used',
  'sv_tested',
  'sv_login',
  'maxwait',
  'maxwait_us',
  'pool_mode',
];
const POOLS_118_ROWS = [
  ['arena', 'arena_app', 20, 16, 0, 0, 4, 0, 0, 0, 0, 0, 0, 1, 44385, 'transaction'],
  ['pgbouncer', 'pgbouncer', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'statement'],
];
const STATS_118_FIELDS = [
  'database',
  'total_xact_count',
  'total_query_count',
  'total_received',
  'total_sent',
  'total_xact_time',
  'total_query_time',
  'total_wait_time',
  'avg_xact_count',
  'avg_query_count',
  'avg_recv',
  'avg_sent',
  'avg_xact_time',
  'avg_query_time',
  'avg_wait_time',
];
const STATS_118_ROWS = [
  [
    'arena',
    '111',
    '121',
    '30857',
    '33678',
    '77264583',
    '77246857',
    '60918356',
    '4',
    '4',
    '1176',
    '1284',
    '696077',
    '638403',
    '2323481',
  ],
  ['pgbouncer', '3', '3', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0'],
];

test('SHOW POOLS 1.18: every figure by name, maxwait + maxwait_us in ms, the admin console left out', () => {
  const rows = parsePools(POOLS_118_FIELDS, POOLS_118_ROWS);
  assert.equal(rows.length, 2);
  const [arena] = userPools(rows);
  assert.deepEqual(arena, {
    database: 'arena',
    user: 'arena_app',
    cl_active: 20,
    cl_waiting: 16,
    sv_active: 4,
    sv_idle: 0,
    sv_used: 0,
    sv_tested: 0,
    sv_login: 0,
    maxwait: 1,
    maxwait_us: 44385,
    maxwait_ms: 1044.385,
    pool_mode: 'transaction',
  });
  assert.equal(userPools(rows).length, 1);
  assert.equal(userPools(rows, 'other').length, 0);
});

test('SHOW POOLS: column order does not matter (by name, not position)', () => {
  const order = [...POOLS_118_FIELDS].reverse();
  const rows = POOLS_118_ROWS.map((r) => [...r].reverse());
  assert.deepEqual(parsePools(order, rows), parsePools(POOLS_118_FIELDS, POOLS_118_ROWS));
});

test('SHOW POOLS 1.7 layout (no maxwait_us, no cancel columns): maxwait alone, the rest parses', () => {
  const fields = [
    'database',
    'user',
    'cl_active',
    'cl_waiting',
    'sv_active',
    'sv_idle',
    'sv_used',
    'sv_tested',
    'sv_login',
    'maxwait',
    'pool_mode',
  ];
  const [r] = parsePools(fields, [['app', 'u', '7', '2', '3', '1', '0', '0', '0', '2', 'session']]);
  assert.equal(r!.cl_active, 7, 'text cells become numbers');
  assert.equal(r!.maxwait_us, null);
  assert.equal(r!.maxwait_ms, 2000);
});

test('SHOW POOLS: a row missing columns and with NULLs reads as null, never NaN or a crash', () => {
  const fields = ['database', 'user', 'cl_active', 'sv_active', 'maxwait_us'];
  const rows = parsePools(fields, [
    ['app', null, null, '3', null],
    ['app2', 'u', 5, 'x', 250000],
    ['app3'], // short row
  ]);
  assert.equal(rows[0]!.user, null);
  assert.equal(rows[0]!.cl_active, null);
  assert.equal(rows[0]!.sv_active, 3);
  assert.equal(rows[0]!.cl_waiting, null, 'absent column');
  assert.equal(rows[0]!.sv_idle, null);
  assert.equal(rows[0]!.pool_mode, null);
  assert.equal(rows[0]!.maxwait_ms, null, 'neither maxwait nor maxwait_us');
  assert.equal(rows[1]!.sv_active, null, "'x' is not a number");
  assert.equal(rows[1]!.maxwait_ms, 250, 'maxwait_us without maxwait');
  assert.equal(rows[2]!.database, 'app3');
  assert.equal(rows[2]!.cl_active, null);
  for (const r of rows) for (const v of Object.values(r)) assert.ok(!Number.isNaN(v), 'no NaN');
  // sums skip nulls, and are null when no row has the figure
  assert.equal(sumOf(rows, 'cl_active'), 5);
  assert.equal(sumOf(rows, 'sv_active'), 3);
  assert.equal(sumOf(rows, 'cl_waiting'), null);
  assert.equal(maxOf(rows, 'maxwait_ms'), 250);
  assert.deepEqual(parsePools(fields, []), []);
});

test('SHOW STATS 1.18 and the pre-1.8 total_requests name; NULL cells', () => {
  const [arena, admin] = parseStats(STATS_118_FIELDS, STATS_118_ROWS);
  assert.deepEqual(arena, {
    database: 'arena',
    total_xact_count: 111,
    total_query_count: 121,
    total_wait_time_us: 60918356,
    total_xact_time_us: 77264583,
    avg_xact_time_us: 696077,
    avg_query_time_us: 638403,
    avg_wait_time_us: 2323481,
  });
  assert.equal(admin!.database, 'pgbouncer');
  const [old] = parseStats(['database', 'total_requests', 'total_received', 'avg_req'], [['app', '42', '10', '1']]);
  assert.equal(old!.total_query_count, 42);
  assert.equal(old!.total_xact_count, null);
  assert.equal(old!.avg_wait_time_us, null);
  const [nulls] = parseStats(STATS_118_FIELDS, [
    [null, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
  ]);
  assert.ok(Object.values(nulls!).every((v) => v === null));
});

test('SHOW CONFIG: the pool limits by key; absent keys are null', () => {
  const fields = ['key', 'value', 'default', 'changeable'];
  const rows = [
    ['max_client_conn', '100', '100', 'yes'],
    ['default_pool_size', '4', '20', 'yes'],
    ['reserve_pool_size', '1', '0', 'yes'],
    ['pool_mode', 'transaction', 'session', 'yes'],
  ];
  assert.deepEqual(parseConfig(fields, rows), { max_client_conn: 100, default_pool_size: 4, reserve_pool_size: 1 });
  assert.deepEqual(parseConfig(fields, rows.slice(0, 1)), {
    max_client_conn: 100,
    default_pool_size: null,
    reserve_pool_size: null,
  });
});

test('num: numbers and numeric text; null for NULL, empty, missing, not numeric', () => {
  assert.equal(num(3), 3);
  assert.equal(num('12'), 12);
  assert.equal(num('1.5'), 1.5);
  for (const v of [null, undefined, '', 'abc', Number.NaN, Infinity]) assert.equal(num(v), null, String(v));
});
