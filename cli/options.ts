/**
 * Parsers for CLI flag values. Each throws commander's InvalidArgumentError,
 * which the CLI prints as one line naming the flag, with exit code 2.
 */
import { InvalidArgumentError } from 'commander';

/** A positive integer (>= 1). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** A finite number >= 0. */
export function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0');
  return n;
}

/** A positive finite number. */
export function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number > 0');
  return n;
}

/**
 * A duration in milliseconds: `250ms`, `10s`, `1.5m`, `1h`; a bare number is milliseconds.
 */
export function durationMs(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be a duration such as 250ms, 10s or 2m (a bare number is milliseconds)');
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const ms = n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  if (!(ms > 0)) throw new InvalidArgumentError('must be greater than 0');
  return ms;
}

/** An integer >= 0 (seeds, counts that may be zero). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

/** A duration as durationMs, or zero written as `0`, `0s`, `0ms`... (ramps, think times, graceful stops). */
export function durationOrZero(value: string): number {
  if (/^\s*0+(\.0+)?\s*(ms|s|m|h)?\s*$/.test(value)) return 0;
  return durationMs(value);
}

/** One of a fixed set of choices. */
export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`must be one of: ${choices.join(', ')}`);
    return value as T;
  };
}
