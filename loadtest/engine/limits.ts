/**
 * The operating-system limits that cap a load test run on Linux: open files
 * (per process), the ephemeral port range (connections per target ip:port),
 * the listen backlogs and the system-wide file limit. `arena loadtest doctor`
 * prints them; `arena loadtest run` checks them before it starts.
 *
 * Reading is in readLimits (never throws: an unreadable file gives null);
 * everything else is pure and takes the parsed limits as an argument.
 *
 * Note: node raises its own soft open-files limit to the hard one at startup
 * (src/node.cc, "Raise the open file descriptor limit"; limits.test.ts checks it),
 * so inside node readLimits normally shows soft == hard and nofileReexecCommand
 * returns null: the re-exec is a safety net for runtimes that do not.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The limits, as read from /proc. Each field is null when its file could not be
 * read or parsed (not Linux, a restricted container). `Infinity` stands for "unlimited".
 */
export interface OsLimits {
  /** Soft limit of open files of this process (RLIMIT_NOFILE; "Max open files" in /proc/self/limits). */
  openFilesSoft: number | null;
  /** Hard limit of open files: what the soft limit may be raised to without privileges. */
  openFilesHard: number | null;
  /** Ephemeral (local) port range, inclusive (net.ipv4.ip_local_port_range). */
  localPortRange: { lo: number; hi: number } | null;
  /** Maximum accept queue of a listening socket (net.core.somaxconn). */
  somaxconn: number | null;
  /** Maximum half-open connections per listener (net.ipv4.tcp_max_syn_backlog). */
  tcpMaxSynBacklog: number | null;
  /** System-wide maximum of open files (fs.file-max). */
  fileMax: number | null;
}

/** Open-files figures assumed when /proc/self/limits is unreadable (the usual Linux defaults). */
export const ASSUMED_OPEN_FILES = { soft: 1024, hard: 4096 } as const;
/** Port range assumed when /proc/sys/net/ipv4/ip_local_port_range is unreadable (the Linux default). */
export const ASSUMED_PORT_RANGE = { lo: 32768, hi: 60999 } as const;
/** Descriptors kept for the engine process itself by default: node, worker threads, sampler connections, files. */
export const DEFAULT_RESERVE_FDS = 256;
/** Environment variable the caller sets on the re-executed process so that it does not re-exec again. */
export const REEXEC_ENV = 'ARENA_NOFILE_RAISED';

/** A limit as written by the kernel: a non-negative integer, or "unlimited" (Infinity); null otherwise. */
function limitNumber(s: string | undefined): number | null {
  if (s === undefined) return null;
  if (s === 'unlimited') return Number.POSITIVE_INFINITY;
  return /^\d+$/.test(s) ? Number(s) : null;
}

/** The soft and hard "Max open files" of a /proc/PID/limits text; nulls when absent or malformed. */
export function parseProcLimits(text: string): { soft: number | null; hard: number | null } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  return { soft: limitNumber(m?.[1]), hard: limitNumber(m?.[2]) };
}

/** The `lo hi` of ip_local_port_range (tab or spaces); null unless 0 < lo <= hi <= 65535. */
export function parsePortRange(text: string): { lo: number; hi: number } | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return null;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo > 0 && lo <= hi && hi <= 65535 ? { lo, hi } : null;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function readNumber(path: string): number | null {
  const t = readText(path);
  return t === null ? null : limitNumber(t.trim());
}

/**
 * Read the limits of this process and machine from /proc. Never throws: a file
 * that cannot be read or parsed gives null for its field(s).
 * @param proc the procfs root (for tests; default `/proc`).
 */
export function readLimits(proc = '/proc'): OsLimits {
  const limitsText = readText(join(proc, 'self/limits'));
  const nofile = limitsText === null ? { soft: null, hard: null } : parseProcLimits(limitsText);
  const range = readText(join(proc, 'sys/net/ipv4/ip_local_port_range'));
  return {
    openFilesSoft: nofile.soft,
    openFilesHard: nofile.hard,
    localPortRange: range === null ? null : parsePortRange(range),
    somaxconn: readNumber(join(proc, 'sys/net/core/somaxconn')),
    tcpMaxSynBacklog: readNumber(join(proc, 'sys/net/ipv4/tcp_max_syn_backlog')),
    fileMax: readNumber(join(proc, 'sys/fs/file-max')),
  };
}

/** `12,345` (en-US grouping); "unlimited" for Infinity. */
function n(v: number): string {
  return Number.isFinite(v) ? v.toLocaleString('en-US') : 'unlimited';
}

function plural(count: number, word: string): string {
  return `${n(count)} ${word}${count === 1 ? '' : 's'}`;
}

/** The open-files and port figures to compute with: the read ones, or the assumed defaults (flagged). */
function effective(l: OsLimits): { soft: number; hard: number; lo: number; hi: number; notes: string[] } {
  const notes: string[] = [];
  let soft = l.openFilesSoft;
  let hard = l.openFilesHard;
  if (soft === null && hard === null) {
    soft = ASSUMED_OPEN_FILES.soft;
    hard = ASSUMED_OPEN_FILES.hard;
    notes.push(`open-files limits unknown, assumed ${n(soft)} soft / ${n(hard)} hard`);
  } else if (soft === null) {
    soft = Math.min(ASSUMED_OPEN_FILES.soft, hard as number);
    notes.push(`soft open-files limit unknown, assumed ${n(soft)}`);
  } else if (hard === null) {
    hard = soft;
    notes.push(`hard open-files limit unknown, assumed equal to the soft one`);
  }
  const range = l.localPortRange ?? ASSUMED_PORT_RANGE;
  if (l.localPortRange === null) notes.push(`local port range unknown, assumed ${range.lo}-${range.hi}`);
  return { soft: soft as number, hard: Math.max(hard as number, soft as number), lo: range.lo, hi: range.hi, notes };
}

/** The largest number of simultaneous connections, the limit that binds it, and how it was computed. */
export interface InFlightBound {
  value: number;
  boundBy: 'open files (soft)' | 'open files (hard)' | 'local port range';
  /** One line, e.g. `768 = open files (soft) 1,024 - 256 reserved; local port range 32768-60999 allows 28,232 x 1 target`. */
  detail: string;
}

/**
 * The largest number of simultaneous connections one engine process can hold.
 *
 * Each connection (to a loopback target) takes one descriptor, and `reserveFds`
 * (default 256) are kept for the process itself; a target ip:port can take at
 * most hi - lo + 1 connections, one per ephemeral port, so `targets` distinct
 * ip:port targets take at most targets x (hi - lo + 1). The figure is the smaller
 * of the two (ties name open files), never below 0.
 *
 * Unknown limits (null) are replaced by ASSUMED_OPEN_FILES / ASSUMED_PORT_RANGE and
 * the detail says so.
 *
 * @returns the figure under the current soft limit, and `withSoftRaised`: the figure
 *   once the soft limit is raised to the hard one (what `run` does: nofileReexecCommand).
 * @throws RangeError when targets is not a positive integer or reserveFds is negative.
 */
export function maxInFlight(
  l: OsLimits,
  o: { targets: number; reserveFds?: number },
): InFlightBound & { withSoftRaised: InFlightBound } {
  const reserve = o.reserveFds ?? DEFAULT_RESERVE_FDS;
  if (!Number.isInteger(o.targets) || o.targets < 1)
    throw new RangeError(`targets must be a positive integer, got ${o.targets}`);
  if (!Number.isInteger(reserve) || reserve < 0)
    throw new RangeError(`reserveFds must be an integer >= 0, got ${reserve}`);
  const e = effective(l);
  const perTarget = e.hi - e.lo + 1;
  const ports = perTarget * o.targets;
  const portsText = `local port range ${e.lo}-${e.hi} allows ${n(perTarget)} x ${plural(o.targets, 'target')}`;
  const bound = (which: 'soft' | 'hard'): InFlightBound => {
    const limit = which === 'soft' ? e.soft : e.hard;
    const fds = Math.max(0, limit - reserve);
    const byFds = fds <= ports;
    const value = byFds ? fds : ports;
    const fdText = `open files (${which}) ${n(limit)} - ${n(reserve)} reserved`;
    const detail = byFds ? `${n(value)} = ${fdText}; ${portsText}` : `${n(value)} = ${portsText}; ${fdText}`;
    return {
      value,
      boundBy: byFds ? (which === 'soft' ? 'open files (soft)' : 'open files (hard)') : 'local port range',
      detail: e.notes.length ? `${detail} (${e.notes.join('; ')})` : detail,
    };
  };
  return { ...bound('soft'), withSoftRaised: bound('hard') };
}

/**
 * Whether a run can hold `inFlight` connections spread evenly over `targets`
 * ip:port targets, once its soft open-files limit is raised to the hard one.
 * Checked in order: the hard open-files limit (inFlight + reserveFds descriptors,
 * reserveFds default 256), fs.file-max (when known), the ephemeral ports per target.
 * Unknown limits are assumed as in maxInFlight (and the message says so).
 *
 * @returns null when it fits; else one line naming the limit and how to raise it, e.g.
 *   `10,000 in flight need 10,256 open files but the hard limit is 4,096 (raise it with ulimit -Hn or in /etc/security/limits.conf)`.
 * @throws RangeError on a negative inFlight or a targets count that is not a positive integer.
 */
export function checkCapacity(
  l: OsLimits,
  o: { inFlight: number; targets: number; reserveFds?: number },
): null | string {
  const reserve = o.reserveFds ?? DEFAULT_RESERVE_FDS;
  if (!Number.isInteger(o.inFlight) || o.inFlight < 0)
    throw new RangeError(`inFlight must be an integer >= 0, got ${o.inFlight}`);
  if (!Number.isInteger(o.targets) || o.targets < 1)
    throw new RangeError(`targets must be a positive integer, got ${o.targets}`);
  const e = effective(l);
  const assumed = e.notes.length ? ` (${e.notes.join('; ')})` : '';
  const need = o.inFlight + reserve;
  if (need > e.hard) {
    return (
      `${n(o.inFlight)} in flight need ${n(need)} open files but the hard limit is ${n(e.hard)}` +
      ` (raise it with ulimit -Hn or in /etc/security/limits.conf)${assumed}`
    );
  }
  if (l.fileMax !== null && need > l.fileMax) {
    return (
      `${n(o.inFlight)} in flight need ${n(need)} open files but the system-wide limit fs.file-max is ${n(l.fileMax)}` +
      ' (raise it with sysctl -w fs.file-max=N)'
    );
  }
  const perTarget = Math.ceil(o.inFlight / o.targets);
  const ports = e.hi - e.lo + 1;
  if (perTarget > ports) {
    return (
      `${n(o.inFlight)} in flight over ${plural(o.targets, 'target')} need ${n(perTarget)} local ports per target` +
      ` but net.ipv4.ip_local_port_range ${e.lo}-${e.hi} has ${n(ports)}` +
      ` (widen it with sysctl -w net.ipv4.ip_local_port_range="1024 65535" or add target addresses)${assumed}`
    );
  }
  return null;
}

/**
 * The command that re-executes this program with its soft open-files limit raised
 * to the hard one (Node cannot call setrlimit; a shell's `ulimit -n` can):
 * `/bin/sh -c 'ulimit -n "$0" && exec "$@"' <hard> <execPath> <argv...>`. No argument is
 * interpolated into the shell text: the limit arrives as $0 and the command as "$@".
 *
 * The caller runs it with stdio inherited and `REEXEC_ENV` set in its environment (and
 * does not re-exec when it is already set), then exits with the child's status.
 * Under node this is normally null: node already raised its soft limit to the hard one
 * at startup (see the module note).
 *
 * @param needed descriptors the run needs (in flight + reserve).
 * @param execPath the node binary (process.execPath).
 * @param argv what follows it: `[...process.execArgv, ...process.argv.slice(1)]`.
 * @returns null when the soft limit already suffices (soft >= needed), when the hard limit is
 *   no higher than the soft one, or when either is unknown; else the command (raising to the
 *   hard limit even when that is below `needed`: checkCapacity reports that case).
 */
export function nofileReexecCommand(
  l: OsLimits,
  needed: number,
  execPath: string,
  argv: string[],
): { cmd: string; args: string[] } | null {
  const soft = l.openFilesSoft;
  const hard = l.openFilesHard;
  if (soft === null || hard === null || soft >= needed || hard <= soft) return null;
  const limit = Number.isFinite(hard) ? String(hard) : 'unlimited';
  return { cmd: '/bin/sh', args: ['-c', 'ulimit -n "$0" && exec "$@"', limit, execPath, ...argv] };
}
