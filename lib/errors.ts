/**
 * The errors every layer shares, at the bottom (in the spirit of undici's
 * `UndiciError`): one base class with a stable `code`, and subclasses for the
 * kinds of failure a caller treats differently. Only the CLI maps them to exit
 * codes (cli/errors.ts, `exitCodeOf`); lower layers never know about exit codes.
 *
 * Messages are one line a person can act on, naming the field, flag, file or
 * tool, without a stack trace.
 */

/** The base of arena's own errors. `code` is stable (tests and callers match on it, not on the message). */
export class ArenaError extends Error {
  constructor(
    message: string,
    readonly code: string = 'ARENA_ERROR',
  ) {
    super(message);
    this.name = 'ArenaError';
  }
}

/** Input the user can fix: a file, document, field, flag, directory or URL. */
export class InvalidInputError extends ArenaError {
  constructor(message: string, code = 'ARENA_INVALID_INPUT') {
    super(message, code);
    this.name = 'InvalidInputError';
  }
}

/** A tool or package the machine lacks (PostgreSQL, PgBouncer, Redis, helm, the control plane, ...). */
export class MissingToolError extends InvalidInputError {
  constructor(message: string) {
    super(message, 'ARENA_MISSING_TOOL');
    this.name = 'MissingToolError';
  }
}

/** Something that was asked for could not be started, stopped, or is unhealthy (a component, a server, a run). */
export class StartFailureError extends ArenaError {
  constructor(message: string, code = 'ARENA_START_FAILURE') {
    super(message, code);
    this.name = 'StartFailureError';
  }
}

/** The first line of an error's message (or its code, or its string form), at most 300 characters. */
export function errText(e: unknown): string {
  const err = e as (Error & { code?: string; errors?: Error[] }) | undefined;
  const inner = err?.errors?.[0]?.message;
  return String(err?.message || inner || err?.code || e)
    .split('\n')[0]!
    .slice(0, 300);
}

/** Why a file could not be read, in words: `no such file`, `is a directory`, `permission denied`, else the error's first line. */
export function fileErrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return errText(e);
}
