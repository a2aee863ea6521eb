/**
 * The published JSON Schema of the sampler's result (`arena sample --out`): docs/schemas/sample-result.schema.json,
 * generated from `SampleResultSchema`. `node dist/loadtest/sampler/schema-file.js --write` (`make schemas`)
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { publishSchema } from '../../lib/schema-file.js';
import { SampleResultSchema } from './result-schema.js';

const published = publishSchema(
  SampleResultSchema,
  new URL('../../../docs/schemas/sample-result.schema.json', import.meta.url),
  import.meta.url,
);

/** Path of the published schema in the repository. */
export const SAMPLE_SCHEMA_FILE = published.file;
/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export const sampleSchemaJson = published.json;
