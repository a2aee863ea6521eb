import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PLAN_SCHEMA_FILE, planSchemaJson } from './schema-file.js';

test('the published capacity plan schema matches CapacityPlanSchema (after a change: schema-file.js --write)', () => {
  assert.equal(readFileSync(PLAN_SCHEMA_FILE, 'utf8'), planSchemaJson());
});
