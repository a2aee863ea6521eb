/**
 * The published JSON Schema of the API's `/health` body: docs/schemas/health.schema.json,
 * generated from `HealthSchema`. `node dist/loadtest/api/schema-file.js --write` (`make schemas`)
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { publishSchema } from '../../lib/schema-file.js';
import { HealthSchema } from './health-schema.js';

const published = publishSchema(
  HealthSchema,
  new URL('../../../docs/schemas/health.schema.json', import.meta.url),
  import.meta.url,
);

/** Path of the published schema in the repository. */
export const HEALTH_SCHEMA_FILE = published.file;
/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export const healthSchemaJson = published.json;
