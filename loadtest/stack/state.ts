/**
 * The stack's state file, `<state dir>/state.json` (mode 600): one TypeBox
 * schema gives the TypeScript type (`StackState`) and the JSON Schema
 * published as docs/schemas/stack-state.schema.json (schema-file.ts; a test
 * fails when they differ). `readState` validates what it reads with ajv and
 * checks `version`, so a file of another arena version or shape is a one-line
 * InvalidInputError naming the file and what is wrong, never a crash later.
 */
import { existsSync, chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { InvalidInputError } from '../../lib/errors.js';
import { describe, pointerToPath } from '../../operator/api/v1alpha1/validate.js';
import type { ProcRef } from './procs.js';
import type { Change, LimitCheck, LocalProfile } from './profile.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
  formats?: string[],
) => Ajv;

/** The version of state.json this arena writes and reads. */
export const STATE_VERSION = 1;
/** The state file's name in the state directory. */
export const STATE_FILE = 'state.json';
/** The components of a stack, in start order. */
export const COMPONENT_NAMES = ['postgres', 'pgbouncer', 'redis', 'api'] as const;
/** One component of the stack. */
export type ComponentName = (typeof COMPONENT_NAMES)[number];

const Int = Type.Integer();
const Str = Type.String();

/** A process: PID plus its start time (/proc/PID/stat field 22), null when it could not be read. */
export const ProcRefSchema = Type.Object({
  pid: Type.Integer({ minimum: 1 }),
  startTime: Type.Union([Type.String(), Type.Null()], {
    description: 'Clock ticks after boot (/proc/PID/stat field 22).',
  }),
});

/** One running component: its process, where it listens, its log. */
export const ComponentStateSchema = Type.Object({
  ...ProcRefSchema.properties,
  host: Str,
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  log: Type.String({ description: 'Log file (absolute path).' }),
  workers: Type.Optional(
    Type.Array(ProcRefSchema, {
      description: 'API only: worker PIDs when the stack came up (checked again by `down`).',
    }),
  ),
});

/** One setting that differs between the Kubernetes plan and the local stack (profile.ts `Change`). */
export const ChangeSchema = Type.Object({
  setting: Str,
  plan: Type.Union([Type.String(), Type.Number()]),
  local: Type.Union([Type.String(), Type.Number()]),
  why: Str,
});

/** A budget checked locally (profile.ts `LimitCheck`): `need` must fit in `limit`. */
export const LimitCheckSchema = Type.Object({
  what: Str,
  need: Type.Number(),
  limit: Type.Number(),
  ok: Type.Boolean(),
  note: Type.String({ description: 'What happens when it does not fit (a cap, or what will fail).' }),
});

/** The local profile as recorded in state.json (the servers' effective settings, the changes and the checks). */
export const StateProfileSchema = Type.Object({
  scale: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
  webConcurrency: Type.Integer({ minimum: 1 }),
  asyncConcurrency: Type.Integer({ minimum: 0 }),
  pgbouncer: Type.Object({
    enabled: Type.Boolean(),
    maxClientConn: Int,
    defaultPoolSize: Int,
    reservePoolSize: Int,
    poolMode: Str,
    databaseUserPairs: Int,
  }),
  postgres: Type.Object({ maxConnections: Int, superuserReservedConnections: Int }),
  redis: Type.Object({ maxClients: Int }),
  openFilesHardLimit: Int,
  changes: Type.Array(ChangeSchema),
  checks: Type.Array(LimitCheckSchema),
});

/** The state file (state.json), version 1. */
export const StackStateSchema = Type.Object(
  {
    version: Type.Literal(STATE_VERSION),
    name: Type.String({ description: 'metadata.name of the ArenaDeployment.' }),
    namespace: Str,
    file: Type.String({ description: 'The spec file (absolute path), or "-" for standard input.' }),
    stateDir: Type.String({ description: 'The state directory (absolute path).' }),
    startedAt: Type.String({ format: 'date-time' }),
    upSeconds: Type.Number({ minimum: 0, description: 'Seconds `up` took until every component was healthy.' }),
    stoppedAt: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'Set when `down` keeps the directory (--keep, or a process survived): the stack no longer runs.',
      }),
    ),
    runAsUser: Type.Union([Type.String(), Type.Null()], {
      description: 'The user the servers run as (when arena runs as root), else null.',
    }),
    database: Type.Object({
      name: Str,
      user: Str,
      passwordFile: Type.String({
        description: 'File holding the app role password (mode 600); the password is never in state.json.',
      }),
    }),
    components: Type.Object(
      {
        postgres: Type.Optional(ComponentStateSchema),
        pgbouncer: Type.Optional(ComponentStateSchema),
        redis: Type.Optional(ComponentStateSchema),
        api: Type.Optional(ComponentStateSchema),
      },
      { description: 'The components started (pgbouncer only when enabled).' },
    ),
    endpoints: Type.Record(Type.String(), Type.String(), {
      description: 'api, pgbouncer, postgres, redis URLs (without password).',
    }),
    profile: StateProfileSchema,
    apiEnv: Type.Record(Type.String(), Type.String(), {
      description: 'The API\'s environment, DB_PASSWORD and the password in URLs replaced by "<db-password>".',
    }),
  },
  { $id: 'https://arena.dev/schemas/stack-state.schema.json', title: 'arena local stack state (state.json)' },
);

/** The state file (state.json): PIDs + start times, ports, paths, the local profile, the API env. */
export type StackState = Static<typeof StackStateSchema>;
/** One component as recorded in state.json. */
export type ComponentState = Static<typeof ComponentStateSchema>;

// The schema and the types it records must not drift apart (a compile error when they do).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameTypes: [
  Same<Static<typeof ProcRefSchema>, ProcRef>,
  Same<Static<typeof ChangeSchema>, Change>,
  Same<Static<typeof LimitCheckSchema>, LimitCheck>,
  Same<StackState['profile']['pgbouncer'], LocalProfile['pgbouncer']>,
  Same<StackState['profile']['postgres'], LocalProfile['postgres']>,
  Same<StackState['profile']['redis'], LocalProfile['redis']>,
  Same<keyof StackState['components'], ComponentName>,
] = [true, true, true, true, true, true, true];

let compiled: ValidateFunction | undefined;

/** The compiled ajv validator of StackStateSchema (compiled once, lazily). */
function validator(): ValidateFunction {
  compiled ??= addFormats(new Ajv({ allErrors: true, strict: true, strictTypes: false }), ['date-time']).compile(
    StackStateSchema,
  );
  return compiled;
}

const A_TYPE: Record<string, string> = { integer: 'an integer', array: 'an array', object: 'an object', null: 'null' };

/**
 * The problems ajv found, one per field: `field: what is wrong`; the `type` errors of a union
 * (a string or null) merged into one.
 */
function problems(errors: readonly ErrorObject[]): string[] {
  const types = new Map<string, string[]>();
  const out = new Map<string, string>();
  for (const e of errors) {
    if (e.keyword === 'anyOf') continue;
    const d = describe(e) ?? { path: pointerToPath(e.instancePath), message: e.message ?? e.keyword };
    const path = d.path || '(document)';
    if (e.keyword === 'type') {
      const t = String((e.params as { type?: unknown }).type);
      types.set(path, [...(types.get(path) ?? []), A_TYPE[t] ?? `a ${t}`]);
      out.set(path, `${path}: must be ${types.get(path)!.join(' or ')}`);
    } else if (!out.has(path)) out.set(path, `${path}: ${d.message}`);
  }
  return [...out.values()];
}

/** The first problem, and how many more, for a one-line error. */
function firstProblem(errors: readonly ErrorObject[]): string {
  const lines = problems(errors);
  if (lines.length === 0) return 'does not match the schema';
  return lines.length === 1 ? lines[0]! : `${lines[0]}; ${lines.length - 1} more problem(s)`;
}

/**
 * Check a parsed state file: its `version`, then its shape.
 * @returns the value as a StackState.
 * @throws InvalidInputError, one line naming `file` and what is wrong.
 */
export function validateState(value: unknown, file: string): StackState {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidInputError(`${file}: not a stack state file (not a JSON object)`);
  const version = (value as { version?: unknown }).version;
  if (version === undefined) throw new InvalidInputError(`${file}: not a stack state file (no version)`);
  if (version !== STATE_VERSION)
    throw new InvalidInputError(
      `${file}: state file version ${JSON.stringify(version)}, this arena reads version ${STATE_VERSION}; ` +
        'manage that stack with the arena that wrote it',
    );
  const v = validator();
  if (!v(value)) throw new InvalidInputError(`${file}: not a stack state file (${firstProblem(v.errors ?? [])})`);
  return value as StackState;
}

/**
 * Read and validate `<stateDir>/state.json`.
 * @returns the state, or null when there is none.
 * @throws InvalidInputError when it is unreadable, not JSON, of another version or shape (one line naming the file).
 */
export function readState(stateDir: string): StackState | null {
  const f = join(stateDir, STATE_FILE);
  if (!existsSync(f)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new InvalidInputError(`${f}: not a stack state file (${(e as Error).message})`);
  }
  return validateState(value, f);
}

/** Write `<s.stateDir>/state.json` atomically (temp file + rename), mode 600. */
export function writeState(s: StackState): void {
  const f = join(s.stateDir, STATE_FILE);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  chmodSync(`${f}.tmp`, 0o600);
  renameSync(`${f}.tmp`, f);
}
