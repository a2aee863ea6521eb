/**
 * Validation of ArenaDeployment documents with the one schema in schema.ts:
 * ajv checks structure, types, bounds and unknown fields and fills defaults
 * (as the apiserver's structural defaulting does); the CEL rules in
 * `x-kubernetes-validations` are evaluated with a CEL library, so the CLI
 * enforces the same rules the apiserver enforces for the CRD.
 *
 * Pure: takes text, returns values and errors. No I/O.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { evaluate } from '@marcbachmann/cel-js';
import { parseAllDocuments } from 'yaml';
import type { TSchema } from '@sinclair/typebox';
import { API_VERSION, ArenaDeploymentSchema, celRules, KIND, type ArenaDeployment } from './schema.js';
import { ArenaLoadTestSchema, LOADTEST_KIND, type ArenaLoadTest } from './loadtest-schema.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
  formats?: string[],
) => Ajv;

/** One problem with one field: `path` is the dotted field path (`spec.api.db.poolSize`), `message` says what is wrong. */
export interface FieldError {
  path: string;
  message: string;
}

/** The outcome for one YAML document of a file. `index` is 1-based; `line` is where the document starts. */
export interface DocumentResult {
  index: number;
  line: number;
  /** The defaulted object when the document is valid. */
  object?: ArenaDeployment;
  errors: FieldError[];
}

const compiled = new Map<TSchema, ValidateFunction>();

/** The compiled ajv validator of a resource schema (ArenaDeployment by default; compiled once per schema, lazily). */
function validator(schema: TSchema = ArenaDeploymentSchema): ValidateFunction {
  const done = compiled.get(schema);
  if (done) return done;
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false });
  addFormats(ajv, ['date-time']);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  for (const k of ['x-kubernetes-validations', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys'])
    ajv.addKeyword(k);
  const fn = ajv.compile(schema);
  compiled.set(schema, fn);
  return fn;
}

/** `/spec/load/requestMix/0/name` -> `spec.load.requestMix[0].name` */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

function join(path: string, child: string): string {
  return path === '' ? child : `${path}.${child}`;
}

/** Turn one ajv error into a field error with a message a person can act on. */
export function describe(e: ErrorObject): FieldError | undefined {
  const path = pointerToPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: join(path, String(p['missingProperty'])), message: 'required field is missing' };
    case 'additionalProperties':
      return { path: join(path, String(p['additionalProperty'])), message: 'unknown field' };
    case 'type':
      return { path, message: `must be ${p['type'] === 'integer' ? 'an integer' : `a ${String(p['type'])}`}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { path, message: `must be ${String(p['comparison'])} ${String(p['limit'])}` };
    case 'minLength':
      return {
        path,
        message: Number(p['limit']) === 1 ? 'must not be empty' : `must be at least ${String(p['limit'])} characters`,
      };
    case 'maxLength':
      return { path, message: `must be at most ${String(p['limit'])} characters` };
    case 'minItems':
      return { path, message: `must have at least ${String(p['limit'])} item(s)` };
    case 'maxItems':
      return { path, message: `must have at most ${String(p['limit'])} items` };
    case 'enum':
      return { path, message: `must be one of: ${(p['allowedValues'] as unknown[]).join(', ')}` };
    case 'const':
      return { path, message: `must be ${String(p['allowedValue'])}` };
    case 'pattern':
      return {
        path,
        message: path.endsWith('name')
          ? 'must be a DNS label (lowercase letters, digits and -, starting and ending with a letter or digit)'
          : `must match ${String(p['pattern'])}`,
      };
    case 'format':
      return {
        path,
        message: p['format'] === 'int32' ? 'must be a 32-bit integer' : `must be a valid ${String(p['format'])}`,
      };
    default:
      return { path, message: e.message ?? e.keyword };
  }
}

/** Values in `obj` at a rule path (`*` walks array items), with their concrete dotted paths. */
function* valuesAt(obj: unknown, path: string[], concrete = ''): Generator<{ value: unknown; path: string }> {
  if (path.length === 0) {
    yield { value: obj, path: concrete };
    return;
  }
  const [head, ...rest] = path as [string, ...string[]];
  if (head === '*') {
    if (Array.isArray(obj)) for (let i = 0; i < obj.length; i++) yield* valuesAt(obj[i], rest, `${concrete}[${i}]`);
    return;
  }
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj) && head in obj) {
    yield* valuesAt((obj as Record<string, unknown>)[head], rest, join(concrete, head));
  }
}

/**
 * Evaluate every CEL rule of the schema against a (defaulted) object.
 * Rules whose evaluation fails because the object is structurally broken are skipped:
 * ajv has already reported why.
 */
export function celErrors(obj: unknown, schema: TSchema = ArenaDeploymentSchema): FieldError[] {
  const errors: FieldError[] = [];
  for (const { path, rule } of celRules(schema)) {
    for (const { value, path: at } of valuesAt(obj, path)) {
      let ok: unknown;
      try {
        ok = evaluate(rule.rule, { self: value });
      } catch {
        continue;
      }
      if (ok !== true) {
        const field = rule.fieldPath ? at + rule.fieldPath : at;
        errors.push({ path: field, message: rule.message });
      }
    }
  }
  return errors;
}

/**
 * Validate one already-parsed value as an ArenaDeployment. Mutates `value` by filling defaults.
 * apiVersion and kind are checked first: a document of another kind gets one error, not dozens.
 */
export function validateObject(value: unknown): { object?: ArenaDeployment; errors: FieldError[] } {
  return validateResource<ArenaDeployment>(value, KIND, ArenaDeploymentSchema);
}

/**
 * Validate one already-parsed value as an ArenaLoadTest (loadtest-schema.ts): the same checks
 * as validateObject (ajv with defaults filled in, then the CEL rules; `oldSelf` rules are
 * the apiserver's alone). Mutates `value` by filling defaults.
 */
export function validateLoadTestObject(value: unknown): { object?: ArenaLoadTest; errors: FieldError[] } {
  return validateResource<ArenaLoadTest>(value, LOADTEST_KIND, ArenaLoadTestSchema);
}

function validateResource<T>(value: unknown, kind: string, schema: TSchema): { object?: T; errors: FieldError[] } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      errors: [{ path: '(document)', message: `must be a mapping with apiVersion ${API_VERSION} and kind ${kind}` }],
    };
  }
  const v = value as Record<string, unknown>;
  const head: FieldError[] = [];
  if (v['apiVersion'] !== API_VERSION)
    head.push({
      path: 'apiVersion',
      message: `must be ${API_VERSION}, got ${JSON.stringify(v['apiVersion'] ?? null)}`,
    });
  if (v['kind'] !== kind)
    head.push({ path: 'kind', message: `must be ${kind}, got ${JSON.stringify(v['kind'] ?? null)}` });
  if (head.length > 0) return { errors: head };
  const validate = validator(schema);
  const errors: FieldError[] = [];
  if (!validate(value)) {
    const seen = new Set<string>();
    const typeErrorAt = new Set((validate.errors ?? []).filter((e) => e.keyword === 'type').map((e) => e.instancePath));
    for (const e of validate.errors ?? []) {
      if (e.keyword === 'format' && typeErrorAt.has(e.instancePath)) continue; // "must be an integer" says it already
      const fe = describe(e);
      if (!fe) continue;
      const key = `${fe.path}\u0000${fe.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        errors.push(fe);
      }
    }
  }
  errors.push(...celErrors(value, schema));
  return errors.length === 0 ? { object: value as T, errors } : { errors };
}

/**
 * Parse a YAML (or JSON) text that may hold several documents and validate each.
 * Empty documents (a lone `---`) are ignored; a text with no document gets one error.
 * YAML syntax errors carry `line:col` in the message.
 */
export function validateText(text: string): DocumentResult[] {
  return validateDocuments(text, validateObject);
}

/** validateText for ArenaLoadTest documents: one result per document, `object` the defaulted ArenaLoadTest. */
export function validateLoadTestText(text: string): LoadTestDocumentResult[] {
  return validateDocuments(text, validateLoadTestObject);
}

/** The outcome for one document of an ArenaLoadTest file (as DocumentResult). */
export interface LoadTestDocumentResult {
  index: number;
  line: number;
  object?: ArenaLoadTest;
  errors: FieldError[];
}

function validateDocuments<T>(
  text: string,
  validateOne: (value: unknown) => { object?: T; errors: FieldError[] },
): { index: number; line: number; object?: T; errors: FieldError[] }[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  const list = Array.isArray(docs) ? docs : [];
  const results: { index: number; line: number; object?: T; errors: FieldError[] }[] = [];
  let index = 0;
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  for (const doc of list) {
    index++;
    const line = lineOf(doc.range[0]);
    if (doc.errors.length > 0) {
      results.push({
        index,
        line,
        errors: doc.errors.map((e) => {
          const pos = e.linePos?.[0];
          const where = pos ? `line ${pos.line}, column ${pos.col}` : `line ${line}`;
          return {
            path: '(yaml)',
            message: `${where}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
          };
        }),
      });
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) {
      index--;
      continue;
    }
    results.push({ index, line, ...validateOne(value) });
  }
  if (results.length === 0)
    results.push({ index: 1, line: 1, errors: [{ path: '(document)', message: 'the file holds no YAML document' }] });
  return results;
}
