/**
 * The published JSON Schema of the capacity plan (`arena plan -o json`): docs/schemas/capacity-plan.schema.json,
 * generated from `CapacityPlanSchema`. `node dist/operator/planner/schema-file.js --write` (`make schemas`)
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { publishSchema } from '../../lib/schema-file.js';
import { CapacityPlanSchema } from './types.js';

const published = publishSchema(
  CapacityPlanSchema,
  new URL('../../../docs/schemas/capacity-plan.schema.json', import.meta.url),
  import.meta.url,
);

/** Path of the published schema in the repository. */
export const PLAN_SCHEMA_FILE = published.file;
/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export const planSchemaJson = published.json;
