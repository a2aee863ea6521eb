import { test } from 'node:test';
import assert from 'node:assert/strict';
import { microTime, setCondition } from './conditions.js';

test('lastTransitionTime moves only when the status changes', () => {
  let c = setCondition(undefined, { type: 'Planned', status: 'True', reason: 'PlanComputed', message: 'ok', observedGeneration: 1 }, 't1');
  c = setCondition(c, { type: 'Planned', status: 'True', reason: 'PlanComputed', message: 'still ok', observedGeneration: 2 }, 't2');
  assert.equal(c[0]!.lastTransitionTime, 't1');
  assert.equal(c[0]!.observedGeneration, 2);
  assert.equal(c[0]!.message, 'still ok');
  c = setCondition(c, { type: 'Planned', status: 'False', reason: 'LLMRateLimitBound', message: 'x', observedGeneration: 3 }, 't3');
  assert.equal(c[0]!.lastTransitionTime, 't3');
  c = setCondition(c, { type: 'Ready', status: 'False', reason: 'ChildrenNotReady', message: 'y', observedGeneration: 3 }, 't3');
  assert.deepEqual(c.map((x) => x.type), ['Planned', 'Ready']);
});

test('MicroTime has six fractional digits', () => {
  assert.equal(String(microTime(new Date('2026-11-24T03:07:29.638Z'))), '2026-11-24T03:07:29.638000Z');
});
