/**
 * Deterministic rendering of pgbouncer.ini and redis.conf: parameters sorted by
 * name, one per line, no timestamps, so the same plan always gives the same
 * bytes and the same hash (nothing rolls out needlessly; the CloudNativePG
 * Pooler approach). Secrets never appear here: credentials reach PgBouncer
 * from the Secret at container start (see pgbouncer.ts).
 */
import { createHash } from 'node:crypto';

/** Render an INI file: sections in the given order, keys sorted within each. */
export function renderIni(sections: [string, Record<string, string | number>][]): string {
  return sections
    .map(([name, params]) => {
      const lines = Object.keys(params)
        .sort()
        .map((k) => `${k} = ${params[k]}`);
      return `[${name}]\n${lines.join('\n')}\n`;
    })
    .join('\n');
}

/** Render a redis.conf: directives sorted by name. Empty-string values are written as "". */
export function renderRedisConf(params: Record<string, string | number>): string {
  return (
    Object.keys(params)
      .sort()
      .map((k) => `${k} ${params[k] === '' ? '""' : params[k]}`)
      .join('\n') + '\n'
  );
}

/** sha256 of a config text, hex, first 16 characters (the pod-template annotation value). */
export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
