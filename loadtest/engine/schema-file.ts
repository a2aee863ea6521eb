/**
 * The published JSON Schema of result.json (docs/schemas/loadtest-result.schema.json),
 * generated from `LoadTestResultSchema`. `node dist/loadtest/engine/schema-file.js --write`
 * (`make schemas`) rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LoadTestResultSchema } from './result-schema.js';

/** Path of the published schema in the repository. */
export const RESULT_SCHEMA_FILE = fileURLToPath(
  new URL('../../../docs/schemas/loadtest-result.schema.json', import.meta.url),
);

/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export function resultSchemaJson(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...LoadTestResultSchema }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(RESULT_SCHEMA_FILE, resultSchemaJson());
  process.stdout.write(`wrote ${RESULT_SCHEMA_FILE}\n`);
}
