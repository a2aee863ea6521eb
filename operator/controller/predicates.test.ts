/**
 * predicates.ts: status churn on a child does not enqueue its owner; a change of
 * anything a reconciler reads does (readiness fields, spec, labels, ConfigMap data).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObj } from './kube.js';
import { RelevantChanges } from './predicates.js';

const deployment = (status: Record<string, unknown>, patch: Partial<KubeObj> = {}): KubeObj => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'a-api', namespace: 'ns', uid: 'u1', resourceVersion: String(Math.random()), generation: 1 },
  spec: { replicas: 2, template: { spec: { containers: [{ name: 'api', image: 'x:1' }] } } },
  status,
  ...patch,
});
const ready = { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 };

test('a Deployment: condition churn is not relevant; readiness, spec and labels are', () => {
  const r = new RelevantChanges();
  assert.equal(r.changed(deployment({ ...ready }), 'add'), true, 'first seen');
  assert.equal(r.changed(deployment({ ...ready }), 'add'), false, "a relist's replay of an unchanged object");
  const churn = {
    ...ready,
    conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
  };
  assert.equal(r.changed(deployment(churn), 'update'), false, 'status conditions only');
  assert.equal(
    r.changed(deployment({ ...ready, availableReplicas: 1 }), 'update'),
    true,
    'a replica became unavailable',
  );
  const image = deployment(
    { ...ready, availableReplicas: 1 },
    { spec: { replicas: 2, template: { spec: { containers: [{ name: 'api', image: 'x:2' }] } } } },
  );
  assert.equal(r.changed(image, 'update'), true, 'spec drift');
  const labelled = { ...image, metadata: { ...image.metadata, labels: { drift: 'yes' } } };
  assert.equal(r.changed(labelled, 'update'), true, 'label drift');
  assert.equal(r.changed(labelled, 'delete'), true, 'a delete');
  assert.equal(r.size, 0, 'forgotten after the delete');
  assert.equal(r.changed(labelled, 'add'), true, 'seen again after a delete');
});

test('a ConfigMap data change and a Job status change are relevant', () => {
  const r = new RelevantChanges();
  const cm = (data: Record<string, string>): KubeObj => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'ns', uid: 'u2', resourceVersion: '1' },
    data,
  });
  r.changed(cm({ a: '1' }), 'add');
  assert.equal(
    r.changed({ ...cm({ a: '1' }), metadata: { ...cm({}).metadata, resourceVersion: '2' } }, 'update'),
    false,
  );
  assert.equal(r.changed(cm({ a: '2' }), 'update'), true);
  const job = (status: Record<string, unknown>): KubeObj => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'j', namespace: 'ns', uid: 'u3' },
    status,
  });
  r.changed(job({ active: 2 }), 'add');
  assert.equal(r.changed(job({ active: 1, failedIndexes: '1' }), 'update'), true, 'the load-test controller reads it');
});

test("a relist's item is the watch's object with its keys in another order: not a change", () => {
  // a watch event's object: kind and apiVersion first; a list item: the apiserver leaves them out and
  // the informer appends them, after metadata, spec and status
  const watched = deployment({ ...ready });
  const { apiVersion, kind, ...rest } = watched;
  const listed = { ...rest, metadata: { ...rest.metadata }, apiVersion, kind } as KubeObj;
  assert.notEqual(Object.keys(listed)[0], Object.keys(watched)[0]);
  const r = new RelevantChanges();
  assert.equal(r.changed(watched, 'add'), true, 'first seen');
  assert.equal(r.changed(listed, 'add'), false, 'the relist replays it unchanged');
  const reordered = { ...listed, spec: { template: listed.spec && (listed.spec as any).template, replicas: 2 } };
  assert.equal(r.changed(reordered as KubeObj, 'update'), false, 'nested keys in another order');
});
