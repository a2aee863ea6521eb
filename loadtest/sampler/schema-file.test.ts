import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SAMPLE_SCHEMA_FILE, sampleSchemaJson } from './schema-file.js';

const WRITE = 'node dist/loadtest/sampler/schema-file.js --write';

test(`the published sample result schema matches SampleResultSchema (run ${WRITE} after a change)`, () => {
  assert.equal(readFileSync(SAMPLE_SCHEMA_FILE, 'utf8'), sampleSchemaJson());
});
