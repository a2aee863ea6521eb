/**
 * The stack's state directory (default $TMPDIR/arena-stack/<namespace>-<name>):
 *
 *   .arena-stack      marker: only a directory holding it is ever removed
 *   state.json        PIDs (+ start times), ports, paths, profile (mode 600; state.ts)
 *   db-password       the generated password of the app role (mode 600)
 *   pg/               PGDATA (owned by the run-as user, mode 700)
 *   run/              pgbouncer.ini, userlist.txt, users.ini, redis.conf,
 *                     unix sockets, pid files (run-as user, mode 700)
 *   logs/             postgres.log, pgbouncer.log, redis.log, api.log
 *
 * Before `up` creates anything it checks the directory is the stack's (or
 * absent or empty), that nothing runs from it, and that the run-as user can
 * reach it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { owned, type StartContext } from './component.js';
import { alive } from './procs.js';
import { readState } from './state.js';
import type { Tools } from './tools.js';

/** The marker file: `down` only removes a directory that has it. */
export const MARKER = '.arena-stack';

/** Default state directory of a spec: $TMPDIR/arena-stack/<namespace>-<name>. */
export function defaultStateDir(ad: ArenaDeployment): string {
  return join(tmpdir(), 'arena-stack', `${ad.metadata.namespace ?? 'default'}-${ad.metadata.name}`);
}

/** True when the user `uid`/`gid` may enter the directory `st` describes (its x bit for them). */
function enterable(st: { uid: number; gid: number; mode: number }, uid: number, gid: number | null): boolean {
  return !!(st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001);
}

/**
 * The servers run as the run-as user: every existing ancestor of the state dir
 * must let that user through (x permission), or initdb fails with a bare EACCES.
 * @throws InvalidInputError naming the first directory it cannot enter.
 */
export function checkTraversable(tools: Tools, dir: string): void {
  if (tools.runAsUid === null) return;
  let d = dirname(dir);
  const blocked: string[] = [];
  for (;;) {
    if (existsSync(d)) {
      const st = statSync(d);
      if (!enterable(st, tools.runAsUid, tools.runAsGid)) blocked.push(`${d} (mode ${(st.mode & 0o777).toString(8)})`);
    }
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  if (blocked.length > 0)
    throw new InvalidInputError(
      `--state-dir ${dir}: the servers run as user '${tools.runAsUser}', which cannot enter ${blocked[blocked.length - 1]}; ` +
        `choose a directory it can reach (the default is under ${tmpdir()}) or allow it (chmod o+x)`,
    );
}

/**
 * Check the state dir is ours (or absent/empty) and nothing runs from it.
 * @returns whether `down --keep` left a cluster and a password to reuse.
 * @throws InvalidInputError for a foreign directory, a running stack, or the state of a stack no longer running.
 */
export function prepareStateDir(dir: string): { reuse: boolean } {
  if (!existsSync(dir)) return { reuse: false };
  const entries = readdirSync(dir);
  if (entries.length === 0) return { reuse: false };
  if (!entries.includes(MARKER))
    throw new InvalidInputError(
      `--state-dir ${dir}: exists and is not an arena stack directory (no ${MARKER}); choose another directory`,
    );
  const s = readState(dir);
  if (s && !s.stoppedAt) {
    const running = Object.entries(s.components).filter(([, c]) => c && alive(c));
    if (running.length > 0) {
      const what = running.map(([n, c]) => `${n} pid ${c!.pid}`).join(', ');
      throw new InvalidInputError(
        `a stack is already running from ${dir} (${what}); stop it with: arena stack down --state-dir ${dir}`,
      );
    }
    throw new InvalidInputError(
      `${dir} holds the state of a stack that is no longer running; clean up with: arena stack down --state-dir ${dir}`,
    );
  }
  return { reuse: existsSync(join(dir, 'pg', 'PG_VERSION')) && existsSync(join(dir, 'db-password')) };
}

/**
 * Create the state directory (mode 711), its marker, run/, logs/ and pg/ (owned by the run-as user)
 * and db-password (mode 600): the kept password when `reuse`, else 24 random bytes, base64url.
 */
export function createStateDir(
  tools: Tools,
  dir: string,
  reuse: boolean,
): Pick<StartContext, 'dirs' | 'password' | 'passwordFile'> {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  writeFileSync(join(dir, MARKER), 'arena stack state directory: `arena stack down` removes it\n');
  const dirs = { state: dir, run: join(dir, 'run'), logs: join(dir, 'logs'), pgdata: join(dir, 'pg') };
  owned(tools, dirs.run, 0o700);
  owned(tools, dirs.logs, 0o750);
  owned(tools, dirs.pgdata, 0o700);
  const passwordFile = join(dir, 'db-password');
  const password = reuse ? readFileSync(passwordFile, 'utf8').trim() : randomBytes(24).toString('base64url');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);
  return { dirs, password, passwordFile };
}
