/**
 * The ArenaLoadTest CRD: in sync with its schema, structural, and enforced by a
 * real kube-apiserver (the local control plane of operator/testenv): the sample
 * is accepted with strict field validation, bad specs are refused naming the field.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { arenaDeploymentCrdYaml, arenaLoadTestCrd, arenaLoadTestCrdYaml } from './crd.js';
import { ArenaLoadTestSchema, BUNDLED_SCENARIOS } from './loadtest-schema.js';
import { celRules } from './schema.js';
import { validateLoadTestText } from './validate.js';
import { BUNDLED } from '../../../loadtest/engine/scenario.js';
import { repoPath } from '../../../testing/paths.js';
import { runArena } from '../../../testing/cli.js';
import { ControlPlane } from '../../../testing/control-plane.js';
import { waitFor } from '../../../testing/net.js';

const SAMPLE = repoPath('samples/loadtest-small.yaml');
const NS = 'arena';
const cp = new ControlPlane('arena-ltcrd-');

function walk(node: unknown, visit: (n: Record<string, unknown>, path: string) => void, path = ''): void {
  if (Array.isArray(node)) node.forEach((n, i) => walk(n, visit, `${path}[${i}]`));
  else if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>, path);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${path}.${k}`);
  }
}

test('crds/arenaloadtest.yaml is in sync with the schema (run `make crd` to regenerate); gen-crd --kind writes it', () => {
  assert.equal(readFileSync(repoPath('crds/arenaloadtest.yaml'), 'utf8'), arenaLoadTestCrdYaml());
  const r = runArena(['gen-crd', '--kind', 'ArenaLoadTest']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, arenaLoadTestCrdYaml());
  // the default is still the ArenaDeployment CRD, byte for byte
  assert.equal(runArena(['gen-crd']).out, arenaDeploymentCrdYaml());
});

test('the ArenaLoadTest CRD schema is structural and carries every CEL rule', () => {
  const schema = (arenaLoadTestCrd() as any).spec.versions[0].schema.openAPIV3Schema;
  walk(schema, (n, path) => {
    assert.notEqual(n['additionalProperties'], false, `${path} has additionalProperties: false`);
    assert.ok(!('const' in n) && !('patternProperties' in n) && !('anyOf' in n), `${path} is not structural`);
    if ('exclusiveMinimum' in n) assert.equal(typeof n['exclusiveMinimum'], 'boolean', `${path}.exclusiveMinimum`);
  });
  const inCrd: string[] = [];
  walk(parse(arenaLoadTestCrdYaml()), (n) => {
    for (const r of (n['x-kubernetes-validations'] as { rule: string }[] | undefined) ?? []) inCrd.push(r.rule);
  });
  const inSchema = [...celRules(ArenaLoadTestSchema)].map((r) => r.rule.rule);
  assert.ok(inSchema.length >= 5);
  assert.deepEqual([...inCrd].sort(), [...inSchema, 'self.metadata.name.size() <= 40'].sort());
  const v = (arenaLoadTestCrd() as any).spec.versions[0];
  assert.deepEqual(
    v.additionalPrinterColumns.map((c: any) => c.name),
    ['Phase', 'Runners', 'P99', 'Age'],
  );
  assert.deepEqual((arenaLoadTestCrd() as any).spec.names.shortNames, ['alt']);
  assert.deepEqual(BUNDLED_SCENARIOS, [...BUNDLED], 'the enum lists the bundled scenarios');
});

test('the CLI validator accepts the sample (defaults filled) and names the field of a bad spec', () => {
  const [doc] = validateLoadTestText(readFileSync(SAMPLE, 'utf8'));
  assert.deepEqual(doc!.errors, []);
  assert.equal(doc!.object!.spec.load.arrival, 'poisson');
  const bad = readFileSync(SAMPLE, 'utf8').replace('parallelism: 4', 'parallelism: 0');
  assert.deepEqual(validateLoadTestText(bad)[0]!.errors, [{ path: 'spec.parallelism', message: 'must be >= 1' }]);
  const two = readFileSync(SAMPLE, 'utf8').replace(
    'deploymentRef: {name: arena-small}',
    `${'deploymentRef: {name: arena-small}'}\n    url: http://x:1`,
  );
  assert.deepEqual(validateLoadTestText(two)[0]!.errors, [
    { path: 'spec.target', message: 'give exactly one of url or deploymentRef' },
  ]);
});

before(async () => {
  await cp.start();
  const r = cp.kubectl(['apply', '-f', repoPath('crds/arenaloadtest.yaml')]);
  assert.equal(r.code, 0, r.err);
  await waitFor(
    'the CRD to be established',
    () =>
      cp.kubectl(['wait', '--for=condition=Established', 'crd/arenaloadtests.arena.dev', '--timeout=20s']).code === 0,
  );
  assert.equal(cp.kubectl(['create', 'namespace', NS]).code, 0);
});

after(async () => {
  await cp.destroy();
});

test('the apiserver accepts samples/loadtest-small.yaml with strict field validation, and fills the defaults', () => {
  const r = cp.kubectl(['apply', '--validate=strict', '-f', SAMPLE]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /arenaloadtest\.arena\.dev\/loadtest-small created/);
  const o = cp.get(['alt', 'loadtest-small', '-n', NS]);
  assert.equal(o.spec.parallelism, 4);
  assert.equal(o.spec.load.arrival, 'poisson');
  assert.equal(o.spec.load.fromPlan.scale, 1);
  const table = cp.kubectl(['get', 'alt', '-n', NS]);
  assert.match(table.out, /^NAME\s+PHASE\s+RUNNERS\s+P99\s+AGE$/m);
  assert.match(table.out, /^loadtest-small\s+4\s+/m);
  // the spec is immutable: a re-run is a new resource
  const edit = cp.kubectl(
    ['apply', '-f', '-'],
    readFileSync(SAMPLE, 'utf8').replace('parallelism: 4', 'parallelism: 8'),
  );
  assert.notEqual(edit.code, 0);
  assert.match(edit.err, /spec: Invalid value: "object": spec is immutable: create a new ArenaLoadTest to run again/);
});

/** Apply a variant of the sample (named `bad`) and return the apiserver's error text; asserts it was refused. */
function refused(mutate: (o: any) => void): string {
  const o = parse(readFileSync(SAMPLE, 'utf8'));
  o.metadata.name = 'bad';
  mutate(o);
  const r = cp.kubectl(['apply', '--validate=strict', '-f', '-'], stringify(o));
  assert.notEqual(r.code, 0, `accepted: ${JSON.stringify(o.spec)}`);
  return r.err;
}

test('the apiserver refuses bad specs with the field path (CEL and schema)', () => {
  assert.match(
    refused((o) => (o.spec.target.url = 'http://api.shop.svc:8000')),
    /spec\.target: Invalid value: "object": give exactly one of url or deploymentRef/,
  );
  assert.match(
    refused((o) => (o.spec.target = {})),
    /spec\.target: Invalid value: "object": give exactly one of url or deploymentRef/,
  );
  assert.match(
    refused((o) => delete o.spec.scenario),
    /spec\.scenario: Required value/,
  );
  assert.match(
    refused((o) => (o.spec.scenario = {})),
    /spec\.scenario: Invalid value: "object": give exactly one of bundled or configMapRef/,
  );
  assert.match(
    refused((o) => (o.spec.parallelism = 0)),
    /spec\.parallelism: Invalid value: 0: spec\.parallelism in body should be greater than or equal to 1/,
  );
  assert.match(
    refused((o) => (o.spec.parallelism = 65)),
    /spec\.parallelism: Invalid value: 65: spec\.parallelism in body should be less than or equal to 64/,
  );
  assert.match(
    refused((o) => (o.spec.load.duration = '2 minutes')),
    /spec\.load\.duration: Invalid value: "2 minutes": spec\.load\.duration in body should match/,
  );
  assert.match(
    refused((o) => (o.spec.load.rate = 100)),
    /spec\.load: Invalid value: "object": give exactly one of rate, vus or fromPlan/,
  );
  assert.match(
    refused((o) => (o.spec.scenario.bundled = 'soak')),
    /spec\.scenario\.bundled: Unsupported value: "soak"/,
  );
  assert.match(
    refused((o) => (o.spec.target = { url: 'http://api.shop.svc:8000' })),
    /spec\.load\.fromPlan: Invalid value: "object": load\.fromPlan needs target\.deploymentRef/,
  );
  assert.match(
    refused((o) => (o.spec.runner.startDeadline = 60)),
    /unknown field "spec\.runner\.startDeadline"/,
  );
  assert.equal(cp.get(['alt', 'bad', '-n', NS]), undefined, 'nothing was stored');
});
