import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSubset, quantityValue } from './compare.js';

test('quantities compare by value', () => {
  assert.equal(quantityValue('2000m'), 2);
  assert.equal(quantityValue('2Gi'), 2 ** 31);
  assert.equal(quantityValue('http'), undefined);
  assert.ok(isSubset({ cpu: '2000m', memory: '2048Mi' }, { cpu: '2', memory: '2Gi' }));
  assert.ok(!isSubset({ cpu: '2000m' }, { cpu: '2500m' }));
});

test('defaults and status added by the apiserver are ignored; changed or missing fields are not', () => {
  const desired = {
    spec: {
      replicas: 2,
      template: { spec: { containers: [{ name: 'a', image: 'x:1', env: [{ name: 'A', value: '1' }] }] } },
    },
  };
  const live = {
    metadata: { resourceVersion: '5' },
    spec: {
      replicas: 2,
      progressDeadlineSeconds: 600,
      template: {
        spec: {
          restartPolicy: 'Always',
          containers: [{ name: 'a', image: 'x:1', imagePullPolicy: 'IfNotPresent', env: [{ name: 'A', value: '1' }] }],
        },
      },
    },
    status: { readyReplicas: 0 },
  };
  assert.ok(isSubset(desired, live));
  assert.ok(!isSubset(desired, { ...live, spec: { ...live.spec, replicas: 3 } }));
  const edited = structuredClone(live);
  edited.spec.template.spec.containers[0]!.env[0]!.value = '2';
  assert.ok(!isSubset(desired, edited), 'an edited env value is drift');
  const extra = structuredClone(live);
  (extra.spec.template.spec.containers as unknown[]).push({ name: 'b' });
  assert.ok(!isSubset(desired, extra), 'a list of another length is drift');
  assert.ok(!isSubset({ a: { b: 1 } }, { a: null }));
  assert.ok(!isSubset({ a: 1 }, {}));
});
