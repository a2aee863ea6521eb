/**
 * The published JSON Schema of the `GET /health` body (docs/schemas/health.schema.json),
 * generated from `HealthSchema`. `node dist/loadtest/api/schema-file.js --write`
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HealthSchema } from './health-schema.js';

/** Path of the published schema in the repository. */
export const HEALTH_SCHEMA_FILE = fileURLToPath(new URL('../../../docs/schemas/health.schema.json', import.meta.url));

/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export function healthSchemaJson(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...HealthSchema }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(HEALTH_SCHEMA_FILE, healthSchemaJson());
  process.stdout.write(`wrote ${HEALTH_SCHEMA_FILE}\n`);
}
