import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sizePgBouncer, type PgBouncerSizingInput } from './pgbouncer.js';
import { erlangC } from './erlang.js';
import { pgbouncerServerConnections } from './connections.js';

const base: PgBouncerSizingInput = {
  replicas: 2,
  databaseUserPairs: 1,
  poolMode: 'transaction',
  postgresBudget: 490,
  appClientConnections: 13 * 240,
  transactionsPerSecond: 3000,
  transactionTimeMs: 10,
};

test('computed max_client_conn: 3120 clients over 2 PgBouncers + 20% -> 1900', () => {
  // ceil(3120/2) = 1560; 1560 * 1.2 = 1872; rounded up to 100 -> 1900
  assert.equal(sizePgBouncer(base).maxClientConn, 1900);
});

test('computed default_pool_size is the Erlang C need at P(wait) <= 0.1, reserve 10%', () => {
  const s = sizePgBouncer(base);
  // each PgBouncer: 1500 tx/s * 10 ms = 15 Erlangs
  assert.ok(erlangC(s.serversNeeded, 15) <= 0.1 && erlangC(s.serversNeeded - 1, 15) > 0.1);
  assert.equal(s.defaultPoolSize, s.serversNeeded);
  assert.equal(s.reservePoolSize, Math.ceil(s.serversNeeded * 0.1));
});

test('the PostgreSQL budget caps the computed pool', () => {
  const s = sizePgBouncer({ ...base, postgresBudget: 20 });
  // 20 / 2 PgBouncers = 10 per pool: default + reserve must fit
  assert.equal(s.budgetPerPool, 10);
  assert.ok(s.defaultPoolSize + s.reservePoolSize <= 10);
});

test('values set in the spec are kept', () => {
  const s = sizePgBouncer({ ...base, maxClientConn: 1000, defaultPoolSize: 100, reservePoolSize: 0 });
  assert.deepEqual([s.maxClientConn, s.defaultPoolSize, s.reservePoolSize], [1000, 100, 0]);
  assert.deepEqual(s.computed, { maxClientConn: false, defaultPoolSize: false, reservePoolSize: false });
});

test('session mode needs a server connection per client', () => {
  const s = sizePgBouncer({ ...base, poolMode: 'session', postgresBudget: 100_000 });
  assert.equal(s.serversNeeded, 1560);
});

test('invariant: computed pools always fit the PostgreSQL budget when it allows at least 2 per pool', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 16, max: 5000 }),
      fc.double({ min: 0, max: 50_000, noNaN: true }),
      fc.double({ min: 0.1, max: 200, noNaN: true }),
      (replicas, pairs, budget, tps, ms) => {
        fc.pre(Math.floor(budget / (replicas * pairs)) >= 2);
        const s = sizePgBouncer({
          ...base,
          replicas,
          databaseUserPairs: pairs,
          postgresBudget: budget,
          transactionsPerSecond: tps,
          transactionTimeMs: ms,
        });
        assert.ok(pgbouncerServerConnections(replicas, s.defaultPoolSize, s.reservePoolSize, pairs) <= budget);
        assert.ok(s.defaultPoolSize >= 1 && s.reservePoolSize >= 0 && s.maxClientConn >= 100);
      },
    ),
    { numRuns: 300 },
  );
});

test('no floating-point noise in the rounding: 30 * 0.1 is a reserve of 3, 1500 * 1.2 rounds to 1800', () => {
  const s = sizePgBouncer({
    ...base,
    defaultPoolSize: undefined,
    transactionsPerSecond: 0,
    appClientConnections: 3000,
    replicas: 2,
  });
  assert.equal(s.maxClientConn, 1800);
  const t = sizePgBouncer({
    ...base,
    postgresBudget: 10_000,
    transactionsPerSecond: 2 * 1000 * 30,
    transactionTimeMs: 0.4,
  });
  // 12 Erlangs per PgBouncer -> serversNeeded >= 13; reserve = ceil(0.1 * need) computed without noise
  assert.equal(t.reservePoolSize, Math.max(1, Math.round(Math.max(t.serversNeeded, 5) * 0.1 + 0.4999999)));
});
