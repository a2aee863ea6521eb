/**
 * Durations as people write them: `250ms`, `10s`, `1.5m`, `1h`; a bare number
 * is milliseconds. One parser for flags, scenario files and thresholds.
 */

/** Milliseconds of a duration string or number, or null when it is not one (or not > 0 with `positive`). */
export function parseDurationMs(value: string | number, o: { positive?: boolean } = {}): number | null {
  let ms: number;
  if (typeof value === 'number') ms = value;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (!m) return null;
    ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  }
  if (!Number.isFinite(ms) || ms < 0) return null;
  if (o.positive && !(ms > 0)) return null;
  return ms;
}

/** `1500` -> `1.5s`, `90000` -> `1m30s`, `250` -> `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}
