import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dbConnectionsPerPod,
  pgbouncerFileDescriptors,
  pgbouncerServerConnections,
  postgresBudget,
  redisClients,
  redisConnectionsPerPod,
  redisFileDescriptors,
  replicasWithin,
} from './connections.js';

test('design notes: 8 workers x (20 + 10) = 240 connections per instance overflow max_connections 100', () => {
  const perPod = dbConnectionsPerPod(8, 20, 10);
  assert.equal(perPod, 240);
  const budget = postgresBudget(100, 3);
  assert.equal(budget, 97);
  assert.ok(perPod > budget, 'one instance already exceeds PostgreSQL max_connections');
  assert.equal(replicasWithin(budget, perPod), 0);
});

test('PgBouncer server connections and file descriptors', () => {
  // 2 PgBouncers x (100 + 5) x 1 pair = 210 server connections
  assert.equal(pgbouncerServerConnections(2, 100, 5, 1), 210);
  assert.equal(pgbouncerServerConnections(2, 20, 0, 3), 120);
  // PgBouncer docs: max_client_conn + (max pool_size * total databases * total users)
  assert.equal(pgbouncerFileDescriptors(2000, 100, 5, 1), 2105);
});

test('Redis clients and file descriptors', () => {
  assert.equal(redisConnectionsPerPod(8, 50), 400);
  assert.equal(redisClients(13, 400), 5202);
  assert.equal(redisFileDescriptors(10000), 10032);
});

test('replicasWithin floors and treats no budget as unbounded', () => {
  assert.equal(replicasWithin(2000, 240), 8);
  assert.equal(replicasWithin(Infinity, 240), Infinity);
});
