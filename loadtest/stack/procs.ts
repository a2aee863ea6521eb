/**
 * Process helpers for the local stack: start servers (as an unprivileged user,
 * with a raised open-files limit), identify processes by PID + start time (so a
 * recycled PID is never signalled), stop them by PID and wait for them to exit.
 * Nothing here looks processes up by name.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { sleep } from '../../lib/util.js';
import type { Tools } from './tools.js';

/** A process the stack started: PID plus its start time (clock ticks after boot, /proc/PID/stat field 22). */
export interface ProcRef {
  pid: number;
  startTime: string | null;
}

function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may contain spaces: split after the last ')'
    const rest = s.slice(s.lastIndexOf(')') + 2).trim();
    return [String(pid), 'comm', ...rest.split(' ')];
  } catch {
    return null;
  }
}

/** Start time of a process (field 22 of /proc/PID/stat), or null when it does not exist. */
export function procStartTime(pid: number): string | null {
  return statFields(pid)?.[21] ?? null;
}

/** A reference to a running process, or null when the PID does not exist. */
export function procRef(pid: number): ProcRef | null {
  const st = procStartTime(pid);
  return st === null ? null : { pid, startTime: st };
}

/**
 * True while the process runs and is the one referenced (same start time).
 * A zombie counts as gone (daemons are reaped late by PID 1 in containers).
 */
export function alive(ref: ProcRef): boolean {
  const f = statFields(ref.pid);
  if (!f) return false;
  if (f[2] === 'Z' || f[2] === 'X') return false;
  return ref.startTime === null || f[21] === ref.startTime;
}

/** All descendants of a process (children first), read from /proc/PID/task/TID/children. */
export function descendants(pid: number): ProcRef[] {
  const out: ProcRef[] = [];
  const walk = (p: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids: number[] = [];
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        continue;
      }
      for (const k of kids) {
        const r = procRef(k);
        if (r) {
          out.push(r);
          walk(k);
        }
      }
    }
  };
  walk(pid);
  return out;
}

/** Clock ticks per second of the times in /proc/PID/stat (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds used so far by `pid` and every descendant: utime + stime (/proc/PID/stat fields
 * 14, 15) plus cutime + cstime (16, 17: children each has waited for, such as PostgreSQL's
 * exited backends). 0 for a process that is gone. Differences of two readings give the CPU a
 * process tree used in between.
 */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid).map((r) => r.pid)]) {
    const f = statFields(p);
    if (f) ticks += [13, 14, 15, 16].reduce((a, i) => a + Number(f[i] ?? 0), 0);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** Wait until the process is gone. @returns true when it exited within timeoutMs. */
export async function waitGone(ref: ProcRef, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(ref)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Send a signal only when the PID is still the referenced process. @returns whether it was sent. */
export function signal(ref: ProcRef, sig: NodeJS.Signals): boolean {
  if (!alive(ref)) return false;
  try {
    process.kill(ref.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stop a process by PID: `sig`, wait `timeoutMs`, then SIGKILL and wait 5 s.
 * @returns how it ended: 'gone' (was not running), 'stopped', 'killed', or 'alive' (survived SIGKILL).
 */
export async function stopProcess(
  ref: ProcRef,
  sig: NodeJS.Signals,
  timeoutMs: number,
): Promise<'gone' | 'stopped' | 'killed' | 'alive'> {
  if (!signal(ref, sig)) return 'gone';
  if (await waitGone(ref, timeoutMs)) return 'stopped';
  signal(ref, 'SIGKILL');
  return (await waitGone(ref, 5000)) ? 'killed' : 'alive';
}

/** Hard limit of open files of this process (what a child may raise its soft limit to). */
export function openFilesHardLimit(): number {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[2] === 'unlimited' ? 1_048_576 : Number(m[2]);
  } catch {
    // not Linux: assume the common default
  }
  return 1024;
}

/**
 * argv that runs `cmd args` with the soft open-files limit raised to `nofile`
 * (`sh -c 'ulimit -n N && exec "$0" "$@"'`), as `user` (runuser) when given:
 * runuser's PAM session resets the soft limit, so the ulimit runs after it.
 */
export function wrapArgv(cmd: string, args: string[], nofile: number, user: string | null): [string, string[]] {
  const sh: [string, string[]] = ['/bin/sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, cmd, ...args]];
  return user ? ['runuser', ['-u', user, '--', sh[0], ...sh[1]]] : sh;
}

/**
 * Run a command to completion (servers that daemonise: pg_ctl start, pgbouncer -d,
 * redis-server with daemonize yes) as the tools' user with raised limits.
 * @returns exit code and combined output.
 */
export function runCommand(
  tools: Tools,
  cmd: string,
  args: string[],
  opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv; asUser?: boolean },
): Promise<{ code: number; output: string }> {
  const [c, a] = wrapArgv(cmd, args, openFilesHardLimit(), opts.asUser === false ? null : tools.runAsUser);
  const env = opts.env ?? { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
  const exitCode = (err: Error | null) => {
    if (!err) return 0;
    const code = (err as { code?: unknown }).code;
    return typeof code === 'number' ? code : 1;
  };
  return new Promise((resolve) => {
    execFile(c, a, { cwd: opts.cwd, timeout: opts.timeoutMs, env, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      resolve({ code: exitCode(err), output: `${stdout}${stderr}`.trim() });
    });
  });
}

/**
 * Start a long-running process detached (own process group, survives the CLI),
 * stdout and stderr appended to `logFile`, with the raised open-files limit.
 * @returns its PID reference (the shell execs the command, so it is the command's PID).
 */
export function spawnDetached(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
): ProcRef {
  const [c, a] = wrapArgv(cmd, args, openFilesHardLimit(), null);
  const fd = openSync(opts.logFile, 'a', 0o600);
  try {
    const child = spawn(c, a, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${cmd}`);
    return { pid: child.pid, startTime: procStartTime(child.pid) };
  } finally {
    closeSync(fd);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bind port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on 127.0.0.1:port (we can bind it). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** PID in the first line of a pid file (postmaster.pid, pgbouncer.pid, redis.pid), or null. */
export function readPidFile(path: string): number | null {
  if (!existsSync(path)) return null;
  const n = Number(readFileSync(path, 'utf8').split('\n', 1)[0]!.trim());
  return Number.isInteger(n) && n > 0 ? n : null;
}
