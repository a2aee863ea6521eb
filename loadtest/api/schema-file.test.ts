import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { HEALTH_SCHEMA_FILE, healthSchemaJson } from './schema-file.js';

test('the published /health schema matches HealthSchema (run node dist/loadtest/api/schema-file.js --write after a change)', () => {
  assert.equal(readFileSync(HEALTH_SCHEMA_FILE, 'utf8'), healthSchemaJson());
});
