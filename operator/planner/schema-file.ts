/**
 * The published JSON Schema of `arena plan -o json` (docs/schemas/capacity-plan.schema.json),
 * generated from `CapacityPlanSchema` (types.ts). `node dist/operator/planner/schema-file.js --write`
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CapacityPlanSchema } from './types.js';

/** Path of the published schema in the repository. */
export const PLAN_SCHEMA_FILE = fileURLToPath(
  new URL('../../../docs/schemas/capacity-plan.schema.json', import.meta.url),
);

/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export function planSchemaJson(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...CapacityPlanSchema }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(PLAN_SCHEMA_FILE, planSchemaJson());
  process.stdout.write(`wrote ${PLAN_SCHEMA_FILE}\n`);
}
