/**
 * The API's CPU in calibration (calibrate.ts fitCpu / withCpuFit): a line through two runs' busy
 * fractions per worker, written as spec.api.cpuMsPerRequest and cpuBaseFraction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject } from '../../operator/api/v1alpha1/validate.js';
import { calibratedDeployment, fitCpu, withCpuFit, type Calibration, type CpuMeasurement } from './calibrate.js';

/** A measurement of `workers` workers each `busy` at `perWorker` requests/s over 60 s. */
function run(perWorker: number, busy: number, workers = 2): CpuMeasurement {
  const seconds = 60;
  const requests = perWorker * workers * seconds;
  const cpuSeconds = busy * seconds * workers;
  return {
    cpuSeconds,
    seconds,
    requests,
    cpuMsPerRequest: (cpuSeconds * 1000) / requests,
    workers,
    requestsPerSecondPerWorker: perWorker,
    busyPerWorker: busy,
  };
}

test('fitCpu: the line through two runs (this machine: 12.4 % busy at 60/s, 29.4 % at 297/s per worker)', () => {
  const fit = fitCpu(run(297, 0.294), run(60, 0.124))!;
  // slope (0.294 - 0.124) / (297 - 60) = 0.000717 s = 0.717 ms; intercept 0.124 - 60 x 0.000717 = 0.081
  assert.equal(fit.cpuMsPerRequest, 0.717);
  assert.equal(fit.cpuBaseFraction, 0.081);
  assert.equal(fit.levels[0].requestsPerSecondPerWorker, 60, 'the lower rate first');
  // a line with a negative intercept is replaced by the line through the origin and the busier run
  const origin = fitCpu(run(60, 0.05), run(300, 0.4))!;
  assert.equal(origin.cpuBaseFraction, 0);
  assert.equal(origin.cpuMsPerRequest, run(300, 0.4).cpuMsPerRequest);
  assert.equal(fitCpu(run(60, 0.1), run(60, 0.2)), null, 'equal rates: no line');
});

test('withCpuFit: the calibration writes both fields, and the calibrated spec carries them', () => {
  const ad = validateObject({
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'ArenaDeployment',
    metadata: { name: 'cpu', namespace: 'n' },
    spec: {
      load: { targetConcurrency: 10, requestMix: [{ name: 'read', weight: 1, serviceTimeMs: 1, dbTimeMs: 1 }] },
      api: { image: 'x', workersPerPod: 2 },
      postgres: { host: 'pg', database: 'arena', credentialsSecret: 'db' },
    },
  }).object!;
  const low = run(60, 0.124);
  const c = {
    cpu: low,
    changes: [{ kind: '(api)', field: 'cpuMsPerRequest', spec: null, measured: low.cpuMsPerRequest }],
  } as unknown as Calibration;
  const fitted = withCpuFit(c, ad, run(297, 0.294));
  assert.deepEqual(
    fitted.changes.map((x) => [x.field, x.measured]),
    [
      ['cpuMsPerRequest', 0.717],
      ['cpuBaseFraction', 0.081],
    ],
  );
  const api = calibratedDeployment(ad, fitted).spec.api;
  assert.equal(api.cpuMsPerRequest, 0.717);
  assert.equal(api.cpuBaseFraction, 0.081);
  assert.equal(withCpuFit(c, ad, null), c, 'no second measurement: unchanged');
});
