/**
 * Reading a result.json (a file or text from a ConfigMap) and the load test's
 * input error. Kept apart from run.ts, which loads undici and the samplers, so
 * that the operator (which merges shard results) loads only this
 * (operator/kube/import-graph.test.ts keeps its import graph lean).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { fileErrorText, InvalidInputError } from '../../lib/errors.js';
import { describe, pointerToPath } from '../../operator/api/v1alpha1/validate.js';
import { LoadTestResultSchema, RESULT_SCHEMA_VERSION, type LoadTestResult } from './result-schema.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
  formats?: string[],
) => Ajv;

/** A mistake the user can fix; the CLI exits 2 with this one line. */
export class LoadTestInputError extends InvalidInputError {
  constructor(message: string) {
    super(message, 'ARENA_LOADTEST_INPUT');
    this.name = 'LoadTestInputError';
  }
}

let validateResult: ValidateFunction | undefined;

/**
 * Read a result.json (for `report`, `compare` and tests) and check it against
 * `LoadTestResultSchema` (schema version 1).
 * @throws LoadTestInputError, one line naming the file and, for an invalid one, the first wrong field.
 */
export function readResult(file: string): LoadTestResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LoadTestInputError(`${file}: not a readable result.json (${fileErrorText(e)})`);
  }
  return parseResult(text, file);
}

/**
 * Parse and validate a result.json given as text (as readResult does a file);
 * `where` names the source in errors (a file, a ConfigMap).
 * @throws LoadTestInputError naming `where` when the text is not JSON, not an
 * arena LoadTestResult, another schema version, or does not match the schema.
 */
export function parseResult(text: string, where: string): LoadTestResult {
  let v: LoadTestResult;
  try {
    v = JSON.parse(text) as LoadTestResult;
  } catch (e) {
    throw new LoadTestInputError(`${where}: not a readable result.json (${fileErrorText(e)})`);
  }
  if (v?.kind !== 'LoadTestResult') throw new LoadTestInputError(`${where}: not an arena LoadTestResult`);
  if (v.schemaVersion !== RESULT_SCHEMA_VERSION)
    throw new LoadTestInputError(
      `${where}: result.json schema version ${JSON.stringify(v.schemaVersion)}, this arena reads version ${RESULT_SCHEMA_VERSION}`,
    );
  validateResult ??= addFormats(new Ajv({ strict: false, allErrors: false }), ['date-time']).compile(
    LoadTestResultSchema,
  );
  if (!validateResult(v)) {
    const e = validateResult.errors?.[0];
    const d = e ? (describe(e) ?? { path: pointerToPath(e.instancePath), message: e.message ?? e.keyword }) : null;
    throw new LoadTestInputError(
      `${where}: not a valid result.json (${d ? `${d.path || '(document)'}: ${d.message}` : 'does not match the schema'})`,
    );
  }
  return v;
}
