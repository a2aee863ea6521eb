/**
 * `arena calibrate` against the real local stack of samples/arena-local.yaml
 * (its default: 10 % of the target in flight, ~457 arrivals/s, 30 s steady;
 * about 60 s): calibration.json holds a positive measured hold per
 * transaction and a factor, the patch merges into the spec and validates,
 * and on the same run's result.json the calibrated spec predicts the
 * PgBouncer server pool's measured utilisation better than the original.
 * Bad input: one line, exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { assertRefused, runArena, runArenaAsync } from '../../testing/cli.js';
import { localStack } from '../../testing/local-stack.js';
import { repoPath } from '../../testing/paths.js';
import { validateObject } from '../../operator/api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { calibratedDeployment, mergeRequestMix, type Calibration } from '../../loadtest/report/calibrate.js';
import { modelComparison } from '../../loadtest/report/model.js';

const SAMPLE = repoPath('samples/arena-local.yaml');

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected} +- ${tol}`);

test('bad input: a missing file, a bad --duration, --rate with --concurrency-level: one line, exit 2', () => {
  assertRefused(runArena(['calibrate', '-f', '/nonexistent/arena.yaml']), /cannot read \/nonexistent\/arena\.yaml/);
  assertRefused(runArena(['calibrate', '-f', SAMPLE, '--duration', '5x']), /--duration.*must be a duration/);
  assertRefused(
    runArena(['calibrate', '-f', SAMPLE, '--rate', '10', '--concurrency-level', '5']),
    /--rate and --concurrency-level: give one of them/,
  );
});

test('real stack: calibrate arena-local; the patch validates; the calibrated model predicts PgBouncer utilisation within 15 points', async (t) => {
  const stack = localStack(SAMPLE, 'calibrate');
  t.after(() => stack.down());
  stack.up();
  const out = join(stack.tmp, 'calibration');
  const patchFile = join(stack.tmp, 'patch.yaml');
  const r = await runArenaAsync(
    ['calibrate', '-f', SAMPLE, '--state-dir', stack.stateDir, '--out', out, '--write-patch', patchFile],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, r.err.slice(-1000));
  assert.match(r.out, /│ read +│ dbTimeMs +│ 2 +│/, 'the table: kind, field, spec, measured');
  assert.match(r.out, /^\+ {6}- \{name: read, .*dbTimeMs: [\d.]+\}$/m, 'the unified diff of the spec');

  const cal = JSON.parse(readFileSync(join(out, 'calibration.json'), 'utf8')) as Calibration;
  assert.ok(cal.db.transactions > 100, `PgBouncer transactions ${cal.db.transactions}`);
  assert.ok(cal.db.meanHoldMs > 0, `measured hold per transaction ${cal.db.meanHoldMs} ms`);
  assert.ok(cal.factors.dbTime > 0 && Number.isFinite(cal.factors.dbTime), `factor ${cal.factors.dbTime}`);
  const read = cal.changes.find((c) => c.kind === 'read' && c.field === 'dbTimeMs');
  assert.equal(read?.measured, Math.round(2 * cal.factors.dbTime * 1000) / 1000, 'read dbTimeMs = 2 x factor');

  // the patch parses, merges by entry name into the spec, and the whole validates
  const original = parse(readFileSync(SAMPLE, 'utf8')) as unknown;
  const merged = mergeRequestMix(original, parse(readFileSync(patchFile, 'utf8')));
  const v = validateObject(merged);
  assert.deepEqual(v.errors, []);
  const patched = v.object!;
  assert.equal(patched.spec.load.requestMix.find((k) => k.name === 'read')!.dbTimeMs, read!.measured);
  // the API's CPU per request: measured from its CPU counter, written to spec.api.cpuMsPerRequest
  assert.ok(cal.cpu && cal.cpu.cpuSeconds > 0 && cal.cpu.requests > 100, JSON.stringify(cal.cpu));
  assert.ok(cal.cpu.cpuMsPerRequest > 0 && cal.cpu.cpuMsPerRequest < 100, `${cal.cpu.cpuMsPerRequest} ms per request`);
  assert.equal(patched.spec.api.cpuMsPerRequest, cal.cpu.cpuMsPerRequest);
  assert.match(r.out, /API CPU: [\d.]+ s of the HTTP workers .* ms per request/);
  const calibratedText = readFileSync(join(out, 'calibrated.yaml'), 'utf8');
  assert.equal(
    validateObject(parse(calibratedText)).object?.spec.api.cpuMsPerRequest,
    cal.cpu.cpuMsPerRequest,
    'calibrated.yaml sets spec.api.cpuMsPerRequest',
  );

  // the same run's result: predicted PgBouncer server pool utilisation with each spec vs measured
  const result = JSON.parse(readFileSync(cal.result, 'utf8')) as LoadTestResult;
  const profile = stack.state!.profile;
  const inputs = { file: SAMPLE, stack: profile, plan: { maxReplicas: 1, defaultPoolSize: 4 } };
  const ad = validateObject(original).object as ArenaDeployment;
  const pool = (a: ArenaDeployment) => modelComparison(result, { ...inputs, ad: a })!.queues['pgbouncerServerPool']!;
  const before = pool(ad);
  const after = pool(patched);
  assert.deepEqual(calibratedDeployment(ad, cal).spec.load.requestMix, patched.spec.load.requestMix);
  // the event loops: not modelled with the spec (no cpuMsPerRequest); with the calibration, predicted from the
  // CPU per request at the run's arrivals, which must give back the busy fraction the counter measured
  assert.equal(modelComparison(result, { ...inputs, ad })!.queues['apiEventLoop'], undefined);
  const loop = modelComparison(result, { ...inputs, ad: patched })!.queues['apiEventLoop']!;
  assert.ok(loop.measured.utilization! > 0, JSON.stringify(loop.measured));
  near(
    loop.predicted.utilization!,
    loop.measured.utilization!,
    0.02,
    'apiEventLoop utilisation, calibrated vs measured',
  );
  const measured = before.measured.utilization!;
  assert.ok(measured > 0, `measured utilisation ${measured}`);
  const errBefore = Math.abs(before.predicted.utilization! - measured);
  const errAfter = Math.abs(after.predicted.utilization! - measured);
  t.diagnostic(
    `pgbouncerServerPool utilisation: spec ${before.predicted.utilization}, calibrated ${after.predicted.utilization}, measured ${measured}`,
  );
  // The calibrated model predicts the pool from the hold this run measured: it must land within 15 points
  // of the sampler's utilisation (two measurements of the same busy servers: PgBouncer's transaction
  // times vs sv_active sampled once a second). Whether it beats the spec depends on how good the spec's
  // guess was (since db_tx the spec is close on this machine at low load), so that is reported, not asserted.
  t.diagnostic(`error: spec ${errBefore.toFixed(3)}, calibrated ${errAfter.toFixed(3)}`);
  assert.ok(
    errAfter <= 0.15,
    `calibrated ${after.predicted.utilization} is within 15 points of measured ${measured} (spec: ${before.predicted.utilization})`,
  );
});
