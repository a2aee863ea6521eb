/**
 * Where the stack finds the Debian-installed servers, and who runs them.
 *
 * Order: an environment variable (ARENA_PG_BIN, ARENA_PGBOUNCER,
 * ARENA_REDIS_SERVER, ARENA_RUN_AS_USER) when set, even if wrong, so a test or
 * a user can point at another build; else the same variable from .tools/env.sh
 * (written by scripts/install-debian-deps.sh); else the Debian locations
 * (/usr/lib/postgresql/<highest>/bin, /usr/sbin/pgbouncer, /usr/bin/redis-server).
 * Nothing is installed at run time: a missing tool is a one-line MissingToolError
 * naming it and the set-up command.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError, MissingToolError } from '../../lib/errors.js';
import { isExecutable } from '../../lib/util.js';

/** The set-up command named in every "missing tool" error. */
export const SETUP_COMMAND = 'scripts/install-debian-deps.sh (as root; `make test` and `make demo` run it)';

export interface Tools {
  initdb: string;
  pgCtl: string;
  postgres: string;
  pgbouncer: string;
  redisServer: string;
  /** Unprivileged user the servers run as (via runuser) when the stack runs as root; null otherwise. */
  runAsUser: string | null;
  runAsUid: number | null;
  runAsGid: number | null;
}

/** Values of `export KEY='VALUE'` lines in .tools/env.sh (empty when absent). */
export function readToolsEnv(repoRoot: string): Record<string, string> {
  const f = join(repoRoot, '.tools', 'env.sh');
  const out: Record<string, string> = {};
  if (!existsSync(f)) return out;
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^export ([A-Z_][A-Z0-9_]*)='([^']*)'$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function highestPgBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v) && isExecutable(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : null;
}

/**
 * Find every tool the stack needs.
 * @param env process environment
 * @param repoRoot where .tools/env.sh lives
 * @throws MissingToolError (one line) naming the first missing tool and SETUP_COMMAND.
 */
export function findTools(env: NodeJS.ProcessEnv, repoRoot: string): Tools {
  const file = readToolsEnv(repoRoot);
  const pick = (name: string, fallback: string | null): { value: string | null; from: string } => {
    if (env[name]) return { value: env[name]!, from: `$${name}` };
    if (file[name]) return { value: file[name]!, from: `${name} in .tools/env.sh` };
    return { value: fallback, from: 'the Debian default location' };
  };
  const missing = (tool: string, where: string) =>
    new MissingToolError(`${tool} not found (${where}); install the Debian packages with ${SETUP_COMMAND}`);

  const pgBin = pick('ARENA_PG_BIN', highestPgBin());
  if (!pgBin.value)
    throw missing('PostgreSQL server (initdb, pg_ctl, postgres)', 'no /usr/lib/postgresql/*/bin/postgres');
  const inPg = (b: string) => {
    const p = join(pgBin.value!, b);
    if (!isExecutable(p)) throw missing(`PostgreSQL ${b}`, `looked for ${p}, from ${pgBin.from}`);
    return p;
  };
  const initdb = inPg('initdb');
  const pgCtl = inPg('pg_ctl');
  const postgres = inPg('postgres');
  const bin = (name: string, tool: string, dflt: string) => {
    const v = pick(name, dflt);
    if (!isExecutable(v.value!)) throw missing(tool, `looked for ${v.value}, from ${v.from}`);
    return v.value!;
  };
  const pgbouncer = bin('ARENA_PGBOUNCER', 'pgbouncer', '/usr/sbin/pgbouncer');
  const redisServer = bin('ARENA_REDIS_SERVER', 'redis-server', '/usr/bin/redis-server');

  let runAsUser: string | null = null;
  let runAsUid: number | null = null;
  let runAsGid: number | null = null;
  if (process.getuid?.() === 0) {
    runAsUser = pick('ARENA_RUN_AS_USER', 'arena').value!;
    try {
      runAsUid = Number(
        execFileSync('id', ['-u', runAsUser], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
      runAsGid = Number(
        execFileSync('id', ['-g', runAsUser], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
    } catch {
      throw new InvalidInputError(
        `system user '${runAsUser}' not found (PostgreSQL refuses to run as root, the stack runs the servers as that user); create it with ${SETUP_COMMAND}`,
      );
    }
    if (!isExecutable('/usr/sbin/runuser') && !isExecutable('/sbin/runuser'))
      throw missing('runuser (util-linux)', 'needed to run the servers as an unprivileged user');
  }
  return { initdb, pgCtl, postgres, pgbouncer, redisServer, runAsUser, runAsUid, runAsGid };
}
