/**
 * The local profile rule (pure): what `arena stack up` runs for a spec on a
 * given machine, what --scale changes, and when the open-files limit caps the plan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validateText } from '../../operator/api/v1alpha1/validate.js';
import { ENV, REFERENCE_ENV } from '../../operator/render/env.js';
import { repoPath } from '../../testing/paths.js';
import { effectivePlan, localProfile } from './profile.js';
import { stackApiEnv } from './stack.js';

/** The (defaulted) ArenaDeployment of a sample file. */
const sample = (file: string) => validateText(readFileSync(repoPath(file), 'utf8'))[0]!.object!;
const SAMPLE = sample('samples/debate-arena.yaml');
const LOCAL = sample('samples/arena-local.yaml');
const machine = { scale: 1, cores: 2, openFilesHardLimit: 20000 };

test('local profile of the debate arena on 2 cores: 2 workers, the plan per PgBouncer, everything fits in 20000 files', () => {
  const p = localProfile(SAMPLE, machine);
  assert.equal(p.webConcurrency, 2);
  assert.equal(p.asyncConcurrency, 8);
  assert.deepEqual(
    { ...p.pgbouncer },
    {
      enabled: true,
      maxClientConn: 1300,
      defaultPoolSize: 17,
      reservePoolSize: 2,
      poolMode: 'transaction',
      databaseUserPairs: 1,
    },
  );
  assert.deepEqual(p.postgres, { maxConnections: 500, superuserReservedConnections: 10 });
  assert.equal(p.redis.maxClients, 10000);
  assert.ok(
    p.checks.every((c) => c.ok),
    JSON.stringify(p.checks.filter((c) => !c.ok)),
  );
  const redisFd = p.checks.find((c) => c.what.startsWith('Redis open files'))!;
  assert.deepEqual([redisFd.need, redisFd.limit], [10032, 20000]);
  assert.ok(p.changes.some((c) => c.setting.startsWith('WEB_CONCURRENCY') && c.plan === 8 && c.local === 2));
  assert.ok(p.changes.some((c) => c.setting === 'PgBouncer replicas' && c.plan === 2 && c.local === 1));
  assert.equal(localProfile(SAMPLE, { ...machine, workers: 5 }).webConcurrency, 5);
  assert.equal(localProfile(SAMPLE, { ...machine, cores: 16 }).webConcurrency, 8);
});

test('--scale re-plans for a smaller target: computed PgBouncer sizes shrink, explicit ones stay, and the changes are listed', () => {
  const full = localProfile(SAMPLE, machine);
  const p = localProfile(SAMPLE, { ...machine, scale: 0.1 });
  assert.equal(p.ad.spec.load.targetConcurrency, 1000);
  assert.equal(p.ad.spec.load.baselineConcurrency, 100);
  assert.ok(p.pgbouncer.maxClientConn < full.pgbouncer.maxClientConn, `${p.pgbouncer.maxClientConn}`);
  assert.ok(p.pgbouncer.defaultPoolSize <= full.pgbouncer.defaultPoolSize);
  const names = p.changes.map((c) => c.setting);
  assert.ok(names.includes('spec.load.targetConcurrency'));
  assert.ok(names.includes('pgbouncer max_client_conn'), names.join(', '));
  // explicit values in the spec are not scaled
  const l = localProfile(LOCAL, { ...machine, scale: 0.5 });
  assert.deepEqual([l.pgbouncer.maxClientConn, l.pgbouncer.defaultPoolSize, l.pgbouncer.reservePoolSize], [100, 4, 1]);
  assert.equal(SAMPLE.spec.load.targetConcurrency, 10000, 'the input spec is not modified');
  assert.throws(() => localProfile(SAMPLE, { ...machine, scale: 0 }), RangeError);
  assert.throws(() => localProfile(SAMPLE, { ...machine, scale: 1.5 }), RangeError);
});

test('a low open-files hard limit caps Redis maxclients and PgBouncer max_client_conn, and says so', () => {
  const p = localProfile(SAMPLE, { ...machine, openFilesHardLimit: 1024 });
  assert.equal(p.redis.maxClients, 1024 - 32);
  assert.equal(p.pgbouncer.maxClientConn, 1024 - 19 - 16);
  const capped = p.checks.filter((c) => !c.ok).map((c) => c.note);
  assert.ok(
    capped.some((n) => /CAPS THE PLAN: maxclients lowered from 10000 to 992/.test(n)),
    capped.join('\n'),
  );
  assert.ok(
    capped.some((n) => /CAPS THE PLAN: max_client_conn lowered from 1300 to 989/.test(n)),
    capped.join('\n'),
  );
  const e = effectivePlan(p);
  assert.equal(e.redis.maxClients, 992);
  assert.equal(e.pgbouncer.maxClientConn, 989);
});

test('the API environment: every variable the rendered Deployment sets, local endpoints, overrides last', () => {
  const p = localProfile(SAMPLE, machine);
  const env = stackApiEnv(p, { api: 1, db: 2, redis: 3 }, 'pw', { LLM_ERROR_RATE: '0.1', [ENV.llmSlots]: '9' });
  for (const name of Object.values(ENV)) assert.ok(env[name] !== undefined, `${name} is set`);
  assert.equal(env[ENV.port], '1');
  assert.equal(env[ENV.workers], '2');
  assert.equal(env[ENV.dbHost], '127.0.0.1');
  assert.equal(env[ENV.dbPort], '2');
  assert.equal(env[ENV.dbPassword], 'pw');
  assert.equal(env[ENV.databaseUrl], 'postgresql://arena_app:pw@127.0.0.1:2/arena');
  assert.equal(env[ENV.redisUrl], 'redis://127.0.0.1:3/0');
  assert.equal(env[ENV.dbPoolSize], '20');
  assert.equal(env[ENV.dbMaxOverflow], '10');
  assert.equal(env[ENV.llmLatencyP50Ms], '8000');
  assert.equal(env[REFERENCE_ENV.host], '127.0.0.1');
  assert.equal(env[REFERENCE_ENV.llmErrorRate], '0.1');
  assert.equal(env[ENV.llmSlots], '9');
});
