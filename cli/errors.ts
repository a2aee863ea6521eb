/**
 * Exit codes and the error type for user mistakes. A UserError is printed as
 * one line (`arena: <message>`) with no stack trace.
 *
 * Exit codes: 0 ok; 1 the plan has findings at or above --fail-on; 2 bad input
 * (file, YAML, schema, flag); 3 internal error (a bug: set ARENA_DEBUG=1 for the stack).
 */
export const EXIT = { ok: 0, findings: 1, badInput: 2, internal: 3 } as const;

/** A mistake in the user's input: file, document, field or flag. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.badInput,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
