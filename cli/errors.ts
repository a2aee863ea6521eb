/**
 * The CLI's exit codes, and the one place errors become exit codes.
 *
 * Exit codes: 0 ok; 1 the plan has findings at or above --fail-on, a load
 * test threshold failed, or something could not start/stop (StartFailureError);
 * 2 bad input (InvalidInputError: file, YAML, schema, flag, missing tool, busy
 * port, unreachable target); 3 internal error (a bug: set ARENA_DEBUG=1 for the stack).
 */
import { ArenaError, InvalidInputError, StartFailureError } from '../lib/errors.js';

export const EXIT = { ok: 0, findings: 1, badInput: 2, internal: 3 } as const;

/** A mistake in the user's input found by the CLI itself (a flag, a file): exit 2. */
export class UserError extends InvalidInputError {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** The exit code of an error: 2 for input the user can fix, 1 for what could not start, 3 for anything else (a bug). */
export function exitCodeOf(e: unknown): number {
  if (e instanceof InvalidInputError) return EXIT.badInput;
  if (e instanceof StartFailureError) return 1;
  if (e instanceof ArenaError) return EXIT.internal;
  return EXIT.internal;
}

export { ArenaError };
