/**
 * The published JSON Schema of the local stack's state.json: docs/schemas/stack-state.schema.json,
 * generated from `StackStateSchema`. `node dist/loadtest/stack/schema-file.js --write` (`make schemas`)
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { publishSchema } from '../../lib/schema-file.js';
import { StackStateSchema } from './state.js';

const published = publishSchema(
  StackStateSchema,
  new URL('../../../docs/schemas/stack-state.schema.json', import.meta.url),
  import.meta.url,
);

/** Path of the published schema in the repository. */
export const STATE_SCHEMA_FILE = published.file;
/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export const stateSchemaJson = published.json;
