/**
 * Publishing a TypeBox schema as a JSON Schema file in docs/schemas/ (one
 * helper for every documented contract). Each contract has a small
 * `schema-file.ts` module that calls `publishSchema`; running that module with
 * `--write` (`make schemas`) rewrites the file, and its test fails when the
 * file and the schema differ.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A published schema: where it lives and the text it must hold. */
export interface PublishedSchema {
  /** Absolute path of the file in docs/schemas/. */
  file: string;
  /** The schema as published: draft-07 JSON (`$schema` first), two-space indented, a trailing newline. */
  json: () => string;
}

/**
 * Describe the published form of `schema` at `file` (a URL relative to the
 * calling module), and write it when `moduleUrl` (the caller's
 * `import.meta.url`) is the program being run with `--write`.
 */
export function publishSchema(schema: object, file: URL, moduleUrl: string): PublishedSchema {
  const path = fileURLToPath(file);
  const json = () => `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
  if (process.argv[1] === fileURLToPath(moduleUrl) && process.argv.includes('--write')) {
    writeFileSync(path, json());
    process.stdout.write(`wrote ${path}\n`);
  }
  return { file: path, json };
}
