import { test } from 'node:test';
import assert from 'node:assert/strict';
import { microTime, setCondition, transitionEvent } from './conditions.js';

test('lastTransitionTime moves only when the status changes', () => {
  let c = setCondition(
    undefined,
    { type: 'Planned', status: 'True', reason: 'PlanComputed', message: 'ok', observedGeneration: 1 },
    't1',
  );
  c = setCondition(
    c,
    { type: 'Planned', status: 'True', reason: 'PlanComputed', message: 'still ok', observedGeneration: 2 },
    't2',
  );
  assert.equal(c[0]!.lastTransitionTime, 't1');
  assert.equal(c[0]!.observedGeneration, 2);
  assert.equal(c[0]!.message, 'still ok');
  c = setCondition(
    c,
    { type: 'Planned', status: 'False', reason: 'LLMRateLimitBound', message: 'x', observedGeneration: 3 },
    't3',
  );
  assert.equal(c[0]!.lastTransitionTime, 't3');
  c = setCondition(
    c,
    { type: 'Ready', status: 'False', reason: 'ChildrenNotReady', message: 'y', observedGeneration: 3 },
    't3',
  );
  assert.deepEqual(
    c.map((x) => x.type),
    ['Planned', 'Ready'],
  );
});

test('MicroTime has six fractional digits', () => {
  assert.equal(String(microTime(new Date('2026-11-24T03:07:29.638Z'))), '2026-11-24T03:07:29.638000Z');
});

test('which condition changes become Events', () => {
  const c = (type: string, status: 'True' | 'False', reason = 'R') => ({
    type,
    status,
    reason,
    message: 'm',
    lastTransitionTime: 't',
  });
  assert.deepEqual(transitionEvent(undefined, c('Planned', 'False', 'LLMRateLimitBound')), {
    type: 'Warning',
    reason: 'LLMRateLimitBound',
    message: 'Planned=False: m',
  });
  assert.equal(transitionEvent(undefined, c('Planned', 'True'))?.type, 'Normal');
  assert.equal(transitionEvent(c('Planned', 'True'), c('Planned', 'True')), undefined, 'no change, no Event');
  assert.equal(transitionEvent(c('Degraded', 'False'), c('Degraded', 'True'))?.type, 'Warning');
  assert.equal(transitionEvent(undefined, c('Degraded', 'False')), undefined);
  assert.equal(
    transitionEvent(undefined, c('Ready', 'False')),
    undefined,
    'a new object that is not ready yet is not news',
  );
  assert.equal(transitionEvent(c('Ready', 'False'), c('Ready', 'True'))?.type, 'Normal');
  assert.equal(transitionEvent(c('Progressing', 'True'), c('Progressing', 'False')), undefined);
});
