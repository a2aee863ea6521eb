/**
 * The sized samples (small ~100, medium ~1,000 and the 10k case): each is a
 * valid ArenaDeployment whose plan has no findings, passes the CI capacity gate
 * (`arena plan --fail-on warning`, docs/ci/example-loadtest.yml), and carries
 * the plan summary it produces in its top comment, checked against plan().
 * Server-side validation by a real apiserver is in install.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { repoPath } from '../../testing/paths.js';
import { validateText } from '../api/v1alpha1/validate.js';
import { plan } from '../planner/plan.js';
import { SAMPLES, planSummaryLines, sampleWithSummary, stale } from './sync.js';

const ARENA = repoPath('dist/cli/arena.js');
const load = (file: string) => {
  const docs = validateText(readFileSync(repoPath(file), 'utf8'));
  assert.equal(docs.length, 1, `${file}: one document`);
  assert.deepEqual(docs[0]!.errors, [], `${file}: valid`);
  return docs[0]!.object!;
};

test('the samples are sized for ~100, ~1,000 and 10,000 in flight', () => {
  const targets = SAMPLES.map((f) => load(f).spec.load.targetConcurrency);
  assert.deepEqual(targets, [100, 1000, 10000]);
});

for (const file of SAMPLES) {
  test(`${file}: the plan summary in its comment matches plan() (make samples-sync refreshes it)`, () => {
    const g = sampleWithSummary(file);
    // stale() compares the whole file; the assertion shows the lines that differ
    if (stale([g]).length)
      assert.equal(
        readFileSync(g.path, 'utf8'),
        g.content,
        `${file}: the plan summary comment is stale; run make samples-sync`,
      );
    const text = readFileSync(g.path, 'utf8');
    assert.match(text, /^# arena plan summary/m);
    assert.match(text, /^# {3}findings: +none$/m);
  });

  test(`${file}: no findings, and the CI gate \`arena plan --fail-on warning -o json\` passes`, () => {
    const ad = load(file);
    const p = plan(ad);
    assert.deepEqual(p.findings, []);
    const r = spawnSync(process.execPath, [ARENA, 'plan', '-f', repoPath(file), '--fail-on', 'warning', '-o', 'json'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.kind, 'CapacityPlan');
    assert.deepEqual(json.replicas, p.replicas);
    // sized for more than one API pod at peak
    assert.ok(p.replicas.max >= 2, `${file}: maxReplicas ${p.replicas.max}`);
  });
}

test('the summary follows the spec: a different pool size gives a different summary (so a stale comment is caught)', () => {
  const ad = load('samples/arena-medium.yaml');
  const before = planSummaryLines(ad, plan(ad));
  const changed = structuredClone(ad);
  changed.spec.api.db.poolSize += 5;
  const after = planSummaryLines(changed, plan(changed));
  assert.notDeepEqual(after, before);
  assert.ok(
    after.some((l) => /connections per pod: +80 DB \(4 x \(15 \+ 5\)\)/.test(l)),
    after.join('\n'),
  );
});
