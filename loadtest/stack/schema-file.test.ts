import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { STATE_SCHEMA_FILE, stateSchemaJson } from './schema-file.js';

const WRITE = 'node dist/loadtest/stack/schema-file.js --write';

test(`the published state.json schema matches StackStateSchema (run ${WRITE} after a change)`, () => {
  assert.equal(readFileSync(STATE_SCHEMA_FILE, 'utf8'), stateSchemaJson());
});
