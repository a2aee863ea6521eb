import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { RESULT_SCHEMA_FILE, resultSchemaJson } from './schema-file.js';

test('the published result.json schema matches LoadTestResultSchema (run make schemas after a change)', () => {
  assert.equal(readFileSync(RESULT_SCHEMA_FILE, 'utf8'), resultSchemaJson());
});
