import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { arenaDeploymentCrd, arenaDeploymentCrdYaml } from './crd.js';
import { ArenaDeploymentSchema, celRules } from './schema.js';
import { repoPath } from '../../../testing/paths.js';

test('crds/arenadeployment.yaml is in sync with the schema (run `make crd` to regenerate)', () => {
  assert.equal(readFileSync(repoPath('crds/arenadeployment.yaml'), 'utf8'), arenaDeploymentCrdYaml());
});

function walk(node: unknown, visit: (n: Record<string, unknown>, path: string) => void, path = ''): void {
  if (Array.isArray(node)) node.forEach((n, i) => walk(n, visit, `${path}[${i}]`));
  else if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>, path);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${path}.${k}`);
  }
}

test('the CRD schema is structural: no additionalProperties:false, const or numeric exclusive bounds', () => {
  const schema = (arenaDeploymentCrd() as any).spec.versions[0].schema.openAPIV3Schema;
  walk(schema, (n, path) => {
    assert.notEqual(n['additionalProperties'], false, `${path} has additionalProperties: false`);
    assert.ok(!('const' in n), `${path} has const`);
    if ('exclusiveMinimum' in n) assert.equal(typeof n['exclusiveMinimum'], 'boolean', `${path}.exclusiveMinimum`);
    if (n['properties'] && Array.isArray(n['required'])) {
      for (const r of n['required'] as string[])
        assert.ok(!('default' in (n['properties'] as any)[r]), `${path}: ${r} is required but has a default`);
    }
  });
});

test('the CRD carries every CEL rule the CLI evaluates, plus the metadata.name rule', () => {
  const inCrd: string[] = [];
  walk(parse(arenaDeploymentCrdYaml()), (n) => {
    for (const r of (n['x-kubernetes-validations'] as { rule: string }[] | undefined) ?? []) inCrd.push(r.rule);
  });
  const inCli = [...celRules(ArenaDeploymentSchema)].map((r) => r.rule.rule);
  assert.ok(inCli.length >= 7);
  assert.deepEqual([...inCrd].sort(), [...inCli, 'self.metadata.name.size() <= 40'].sort());
});

test('printer columns, short name and subresources', () => {
  const v = (arenaDeploymentCrd() as any).spec.versions[0];
  assert.deepEqual(v.subresources.scale, {
    specReplicasPath: '.spec.api.replicas',
    statusReplicasPath: '.status.replicas',
    labelSelectorPath: '.status.selector',
  });
  assert.deepEqual(
    v.additionalPrinterColumns.map((c: any) => c.name),
    ['Target', 'Min', 'Max', 'Replicas', 'Ready', 'Age'],
  );
  assert.deepEqual((arenaDeploymentCrd() as any).spec.names.shortNames, ['arena']);
});
