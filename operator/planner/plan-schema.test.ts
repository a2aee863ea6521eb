import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { plan } from './plan.js';
import { CapacityPlanSchema, type CapacityPlan } from './types.js';
import { validateObject, validateText } from '../api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../api/v1alpha1/schema.js';
import { repoPath } from '../../testing/paths.js';

const validate = new Ajv({ strict: false, allErrors: true }).compile(CapacityPlanSchema);

/** Schema violations of a value, one line each (empty when valid). */
function problems(value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** What `arena plan -o json` prints, parsed back. */
const asJson = (p: CapacityPlan) => JSON.parse(JSON.stringify(p)) as Record<string, any>;

// the ArenaDeployment samples (samples/loadtest-*.yaml are ArenaLoadTests)
const SAMPLES = readdirSync(repoPath('samples'))
  .filter((f) => f.endsWith('.yaml') && !f.startsWith('loadtest-'))
  .sort();

function sampleDeployments(): { label: string; ad: ArenaDeployment }[] {
  return SAMPLES.flatMap((file) =>
    validateText(readFileSync(repoPath('samples', file), 'utf8')).map((doc, i) => {
      assert.deepEqual(doc.errors, [], `${file} document ${i + 1} is valid`);
      return { label: `samples/${file} document ${i + 1}`, ad: doc.object! };
    }),
  );
}

test('the plan of every sample, with and without --explain, is valid against the published schema', () => {
  const deployments = sampleDeployments();
  assert.ok(deployments.length >= 6, `found ${deployments.length} sample documents`);
  for (const { label, ad } of deployments) {
    for (const explain of [false, true]) {
      const p = plan(ad, { explain });
      assert.equal(p.derivations !== undefined, explain);
      assert.deepEqual(problems(asJson(p)), [], `${label}, explain ${explain} (JSON)`);
      assert.deepEqual(problems(p), [], `${label}, explain ${explain} (object)`);
    }
  }
});

test('a field the schema does not describe, a missing field or a wrong type fails validation', () => {
  const file = SAMPLES.includes('debate-arena.yaml') ? 'debate-arena.yaml' : SAMPLES[0]!;
  const ad = validateText(readFileSync(repoPath('samples', file), 'utf8'))[0]!.object!;
  const good = asJson(plan(ad, { explain: true }));
  assert.deepEqual(problems(good), []);
  const firstQueue = Object.keys(good['queues'])[0]!;
  const mutations: [string, (p: Record<string, any>) => void][] = [
    ['unknown top-level field', (p) => (p['extra'] = 1)],
    ['unknown field in replicas', (p) => (p['replicas']['desired'] = 3)],
    ['unknown field in a connection budget', (p) => (p['connections']['redis']['peak'] = 3)],
    [
      'unknown connection budget',
      (p) => (p['connections']['appToRedis'] = { atMaxReplicas: 1, limit: 2, utilization: 0.5 }),
    ],
    ['unknown field in a queue', (p) => (p['queues'][firstQueue]['p95WaitMs'] = 1)],
    ['unknown queue', (p) => (p['queues']['gpuSlots'] = p['queues'][firstQueue])],
    ['unknown field in a request kind', (p) => (Object.values<any>(p['workload']['kinds'])[0]['p99'] = 1)],
    ['unknown field in a finding', (p) => (p['findings'][0]['hint'] = 'x')],
    ['unknown field in a derivation', (p) => (p['derivations']['replicas.max']['note'] = 'x')],
    ['unknown field in the HPA behavior', (p) => (p['hpa']['behavior']['scaleUp']['tolerance'] = 0.1)],
    ['missing replicas.min', (p) => delete p['replicas']['min']],
    ['missing findings', (p) => delete p['findings']],
    ['replicas.max as a string', (p) => (p['replicas']['max'] = '9')],
    ['replicas.max not a whole number', (p) => (p['replicas']['max'] = 9.5)],
    ['a queue wait as a string', (p) => (p['queues'][firstQueue]['p99WaitMs'] = '1 ms')],
    ['an unknown pool mode', (p) => (p['pgbouncer']['poolMode'] = 'pipeline')],
    ['an unknown severity', (p) => (p['findings'][0]['severity'] = 'info')],
    ['another kind', (p) => (p['kind'] = 'CapacityPlanList')],
    ['a derivation input as an object', (p) => (p['derivations']['replicas.max']['inputs']['x'] = {})],
  ];
  assert.ok(good['findings'].length > 0, `${file} has findings to mutate`);
  for (const [what, mutate] of mutations) {
    const bad = structuredClone(good);
    mutate(bad);
    assert.notDeepEqual(problems(bad), [], `${what} must fail validation`);
  }
});

/** Every object schema with fixed keys is closed; maps (Record) are the only open objects. */
test('every object with fixed keys in the schema is closed (additionalProperties: false)', () => {
  const open: string[] = [];
  const walk = (s: Record<string, any>, path: string) => {
    if (s['type'] === 'object' && s['properties'] && s['additionalProperties'] !== false) open.push(path);
    for (const [k, v] of Object.entries<any>(s['properties'] ?? {})) walk(v, `${path}.${k}`);
    for (const v of Object.values<any>(s['patternProperties'] ?? {})) walk(v, `${path}.*`);
    if (s['items']) walk(s['items'], `${path}[]`);
    for (const v of [...(s['anyOf'] ?? []), ...(s['oneOf'] ?? []), ...(s['allOf'] ?? [])]) walk(v, path);
  };
  walk(CapacityPlanSchema, '$');
  assert.deepEqual(open, []);
});

const postgres = { host: 'pg', database: 'arena', credentialsSecret: 'db' };
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** Generated valid specs covering the plan's shapes: with and without PgBouncer, fixed replicas, every pool mode. */
const specArb = fc
  .record({
    target: fc.integer({ min: 1, max: 100_000 }),
    workers: fc.integer({ min: 1, max: 16 }),
    pool: fc.integer({ min: 1, max: 50 }),
    overflow: fc.integer({ min: 0, max: 50 }),
    pgbEnabled: fc.boolean(),
    poolMode: fc.constantFrom('session', 'transaction', 'statement'),
    maxClientConn: optional(fc.integer({ min: 1, max: 5000 })),
    maxConn: fc.integer({ min: 20, max: 5000 }),
    rpm: optional(fc.integer({ min: 1, max: 1_000_000 })),
    autoscaling: fc.boolean(),
    cpuLimit: fc.boolean(),
    mix: fc.array(
      fc.record({
        weight: fc.integer({ min: 1, max: 100 }),
        kind: fc.constantFrom('sync', 'stream', 'async'),
        dbTimeMs: fc.integer({ min: 0, max: 100 }),
        dbTransactions: optional(fc.integer({ min: 1, max: 5 })),
        dbHoldCv2: optional(fc.double({ min: 0, max: 4, noNaN: true })),
        p50: fc.integer({ min: 100, max: 20_000 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map((g) => {
    const r = validateObject({
      apiVersion: 'arena.dev/v1alpha1',
      kind: 'ArenaDeployment',
      metadata: { name: 't' },
      spec: {
        load: {
          targetConcurrency: g.target,
          requestMix: g.mix.map((k, i) => ({
            name: `k${i}`,
            weight: k.weight,
            kind: k.kind,
            dbTimeMs: k.dbTimeMs,
            ...(k.dbTransactions === undefined ? {} : { dbTransactions: k.dbTransactions }),
            ...(k.dbHoldCv2 === undefined ? {} : { dbHoldCv2: k.dbHoldCv2 }),
            ...(k.kind === 'sync' ? {} : { llmTimeMs: { p50: k.p50, p99: k.p50 * 3 } }),
          })),
        },
        api: {
          image: 'x',
          workersPerPod: g.workers,
          db: { poolSize: g.pool, maxOverflow: g.overflow },
          autoscaling: { enabled: g.autoscaling },
          ...(g.autoscaling ? {} : { replicas: 3 }),
          ...(g.cpuLimit ? { resources: { limits: { cpu: '2' } } } : {}),
        },
        llm: g.rpm === undefined ? {} : { requestsPerMinute: g.rpm },
        pgbouncer: {
          enabled: g.pgbEnabled,
          poolMode: g.poolMode,
          ...(g.maxClientConn ? { maxClientConn: g.maxClientConn } : {}),
        },
        postgres: { ...postgres, maxConnections: g.maxConn },
      },
    });
    assert.deepEqual(r.errors, []);
    return r.object!;
  });

test('plans of generated specs are valid against the schema', () => {
  fc.assert(
    fc.property(specArb, fc.boolean(), (ad, explain) => {
      const p = plan(ad, { explain });
      assert.deepEqual(problems(asJson(p)), []);
    }),
    { numRuns: 200 },
  );
});
