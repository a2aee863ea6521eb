/**
 * The published JSON Schema of the result of `arena loadtest run` (result.json): docs/schemas/loadtest-result.schema.json,
 * generated from `LoadTestResultSchema`. `node dist/loadtest/engine/schema-file.js --write` (`make schemas`)
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { publishSchema } from '../../lib/schema-file.js';
import { LoadTestResultSchema } from './result-schema.js';

const published = publishSchema(
  LoadTestResultSchema,
  new URL('../../../docs/schemas/loadtest-result.schema.json', import.meta.url),
  import.meta.url,
);

/** Path of the published schema in the repository. */
export const RESULT_SCHEMA_FILE = published.file;
/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export const resultSchemaJson = published.json;
