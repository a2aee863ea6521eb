/**
 * The published JSON Schema of the stack's state.json (docs/schemas/stack-state.schema.json),
 * generated from `StackStateSchema`. `node dist/loadtest/stack/schema-file.js --write`
 * rewrites it; schema-file.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StackStateSchema } from './state.js';

/** Path of the published schema in the repository. */
export const STATE_SCHEMA_FILE = fileURLToPath(
  new URL('../../../docs/schemas/stack-state.schema.json', import.meta.url),
);

/** The schema as published: draft-07 JSON, two-space indented, with a trailing newline. */
export function stateSchemaJson(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...StackStateSchema }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(STATE_SCHEMA_FILE, stateSchemaJson());
  process.stdout.write(`wrote ${STATE_SCHEMA_FILE}\n`);
}
