import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { validateText } from './validate.js';
import { repoPath } from '../../../testing/paths.js';

const sample = readFileSync(repoPath('samples/debate-arena.yaml'), 'utf8');

/** The sample with a change applied to its parsed object. */
function variant(change: (o: any) => void): string {
  const o = parse(sample);
  change(o);
  return stringify(o);
}

function errorsOf(text: string): string[] {
  return validateText(text).flatMap((d) => d.errors.map((e) => `${e.path}: ${e.message}`));
}

test('the sample from the issue is valid and gets defaults', () => {
  const [doc] = validateText(sample);
  assert.deepEqual(doc!.errors, []);
  const spec = doc!.object!.spec;
  assert.equal(spec.load.requestMix[0]!.kind, 'sync');
  assert.equal(spec.pgbouncer.port, 6432);
  assert.equal(spec.pgbouncer.enabled, true);
  assert.equal(spec.api.llmSlotWaitTimeoutSeconds, 300);
  assert.equal(spec.api.autoscaling.enabled, true);
});

const cases: [string, (o: any) => void, string][] = [
  ['pool size below 1', (o) => (o.spec.api.db.poolSize = 0), 'spec.api.db.poolSize: must be >= 1'],
  ['negative max overflow', (o) => (o.spec.api.db.maxOverflow = -5), 'spec.api.db.maxOverflow: must be >= 0'],
  [
    'string instead of integer',
    (o) => (o.spec.api.workersPerPod = 'eight'),
    'spec.api.workersPerPod: must be an integer',
  ],
  [
    'float instead of integer',
    (o) => (o.spec.load.targetConcurrency = 10000.5),
    'spec.load.targetConcurrency: must be an integer',
  ],
  ['unknown field', (o) => (o.spec.api.dbPool = 3), 'spec.api.dbPool: unknown field'],
  ['unknown top-level spec field', (o) => (o.spec.cache = {}), 'spec.cache: unknown field'],
  ['missing required field', (o) => delete o.spec.api.image, 'spec.api.image: required field is missing'],
  [
    'bad enum',
    (o) => (o.spec.pgbouncer.poolMode = 'txn'),
    'spec.pgbouncer.poolMode: must be one of: session, transaction, statement',
  ],
  [
    'bad kind enum',
    (o) => (o.spec.load.requestMix[1].kind = 'sse'),
    'spec.load.requestMix[1].kind: must be one of: sync, stream, async',
  ],
  ['zero weight', (o) => (o.spec.load.requestMix[0].weight = 0), 'spec.load.requestMix[0].weight: must be > 0'],
  ['empty mix', (o) => (o.spec.load.requestMix = []), 'spec.load.requestMix: must have at least 1 item(s)'],
  [
    'baseline above target (CEL)',
    (o) => (o.spec.load.baselineConcurrency = 20000),
    'spec.load.baselineConcurrency: baselineConcurrency must be <= targetConcurrency',
  ],
  [
    'min above max (CEL)',
    (o) => Object.assign(o.spec.api.autoscaling, { minReplicas: 5, maxReplicas: 2 }),
    'spec.api.autoscaling.minReplicas: minReplicas must be <= maxReplicas',
  ],
  [
    'p50 above p99 (CEL)',
    (o) => (o.spec.load.requestMix[1].llmTimeMs = { p50: 9000, p99: 100 }),
    'spec.load.requestMix[1].llmTimeMs.p50: p50 must be <= p99',
  ],
  [
    'stream without LLM time (CEL)',
    (o) => delete o.spec.load.requestMix[1].llmTimeMs,
    'spec.load.requestMix[1].llmTimeMs: stream and async kinds need llmTimeMs',
  ],
  [
    'duplicate kind names (CEL)',
    (o) => (o.spec.load.requestMix[2].name = 'read'),
    'spec.load.requestMix: request kind names must be unique',
  ],
  [
    'external redis without host (CEL)',
    (o) => (o.spec.redis = { managed: false }),
    'spec.redis.host: host is required when managed is false',
  ],
  [
    'reserved >= max connections (CEL)',
    (o) => (o.spec.postgres.reservedConnections = 500),
    'spec.postgres.reservedConnections: reservedConnections must be < maxConnections',
  ],
  [
    'bad name',
    (o) => (o.metadata.name = 'Debate_Arena'),
    'metadata.name: must be a DNS label (lowercase letters, digits and -, starting and ending with a letter or digit)',
  ],
  [
    'wrong apiVersion',
    (o) => (o.apiVersion = 'arena.dev/v1'),
    'apiVersion: must be arena.dev/v1alpha1, got "arena.dev/v1"',
  ],
  ['wrong kind', (o) => (o.kind = 'Deployment'), 'kind: must be ArenaDeployment, got "Deployment"'],
];

for (const [name, change, expected] of cases) {
  test(`bad input: ${name}`, () => {
    assert.deepEqual(errorsOf(variant(change)), [expected]);
  });
}

test('malformed YAML is reported with line and column', () => {
  const errs = errorsOf('apiVersion: arena.dev/v1alpha1\nkind: [ArenaDeployment\n');
  assert.ok(errs.length >= 1);
  assert.match(errs[0]!, /^\(yaml\): line \d+, column \d+: /);
});

test('duplicate keys are a YAML error', () => {
  assert.match(errorsOf('a: 1\na: 2\n')[0]!, /Map keys must be unique/);
});

test('several documents: each is validated on its own', () => {
  const text = `${sample}\n---\n${variant((o) => {
    o.metadata.name = 'second';
    o.spec.api.db.poolSize = -1;
  })}---\napiVersion: v1\nkind: ConfigMap\n`;
  const res = validateText(text);
  assert.equal(res.length, 3);
  assert.deepEqual(res[0]!.errors, []);
  assert.deepEqual(
    res[1]!.errors.map((e) => e.path),
    ['spec.api.db.poolSize'],
  );
  assert.deepEqual(
    res[2]!.errors.map((e) => e.path),
    ['apiVersion', 'kind'],
  );
});

test('an empty file and a non-mapping document are errors', () => {
  assert.deepEqual(errorsOf(''), ['(document): the file holds no YAML document']);
  assert.match(errorsOf('- a\n- b\n')[0]!, /^\(document\): must be a mapping/);
});
