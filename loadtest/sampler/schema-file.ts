/**
 * The published JSON Schema of the sampler's result (docs/schemas/sample-result.schema.json),
 * generated from `SampleResultSchema`. `node dist/loadtest/sampler/schema-file.js --write`
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SampleResultSchema } from './result-schema.js';

/** Path of the published schema in the repository. */
export const SAMPLE_SCHEMA_FILE = fileURLToPath(
  new URL('../../../docs/schemas/sample-result.schema.json', import.meta.url),
);

/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export function sampleSchemaJson(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...SampleResultSchema }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(SAMPLE_SCHEMA_FILE, sampleSchemaJson());
  process.stdout.write(`wrote ${SAMPLE_SCHEMA_FILE}\n`);
}
