/**
 * The kernel settings a run of thousands of loopback connections wants, and
 * applying them where this process is permitted (`arena loadtest doctor
 * --apply`, `arena bench`). Each setting is only ever raised, never lowered;
 * one that cannot be written (not root, a read-only /proc/sys in a container)
 * is reported with the command an administrator would run.
 *
 * - net.ipv4.ip_local_port_range: at least 15000-64999 (50,000 ports per
 *   target address: every VU holds one connection and a closed one waits in
 *   TIME_WAIT for 60 s);
 * - net.ipv4.tcp_tw_reuse: 1 or 2 (2, loopback only, is Linux's default since
 *   4.x): lets a new connection reuse a TIME_WAIT port between bench levels;
 * - net.core.somaxconn and net.ipv4.tcp_max_syn_backlog: at least 4096, so a
 *   ramp of thousands of connects does not overflow the target's accept queue.
 * Open files are not set here: node raises its soft limit to the hard one
 * itself (limits.ts), and the hard limit is the machine's.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One setting: what it was, what was wanted, and what happened. */
export interface TuningOutcome {
  setting: string;
  before: string | null;
  wanted: string;
  /** applied: written now; ok: already enough; low: not enough, not applied (no --apply); denied: could not be written; unknown: could not be read. */
  status: 'applied' | 'ok' | 'low' | 'denied' | 'unknown';
  detail: string;
}

interface Wanted {
  setting: string;
  path: string;
  /** The value to write when `good` says the current one is not enough. */
  value: (current: string) => string;
  good: (current: string) => boolean;
}

const atLeast = (min: number) => ({
  value: () => String(min),
  good: (c: string) => Number(c.trim()) >= min,
});

/** The settings, by sysctl name, under /proc/sys. */
export const WANTED: readonly Wanted[] = [
  {
    setting: 'net.ipv4.ip_local_port_range',
    path: 'net/ipv4/ip_local_port_range',
    good: (c) => {
      const [lo, hi] = c.trim().split(/\s+/).map(Number);
      return lo! <= 15000 && hi! >= 64999;
    },
    value: (c) => {
      const [lo, hi] = c.trim().split(/\s+/).map(Number);
      return `${Math.min(lo ?? 15000, 15000)}\t${Math.max(hi ?? 64999, 64999)}`;
    },
  },
  {
    setting: 'net.ipv4.tcp_tw_reuse',
    path: 'net/ipv4/tcp_tw_reuse',
    good: (c) => c.trim() === '1' || c.trim() === '2',
    value: () => '2',
  },
  { setting: 'net.core.somaxconn', path: 'net/core/somaxconn', ...atLeast(4096) },
  { setting: 'net.ipv4.tcp_max_syn_backlog', path: 'net/ipv4/tcp_max_syn_backlog', ...atLeast(4096) },
];

/**
 * Check every setting and, when `apply`, raise the ones that are not enough.
 * Never throws: a setting that cannot be read or written is reported.
 * @param procSys the /proc/sys root (for tests).
 */
export function tune(apply: boolean, procSys = '/proc/sys'): TuningOutcome[] {
  return WANTED.map((w) => {
    const file = join(procSys, w.path);
    let before: string;
    try {
      before = readFileSync(file, 'utf8').trim();
    } catch (e) {
      return { setting: w.setting, before: null, wanted: '?', status: 'unknown', detail: (e as Error).message };
    }
    if (w.good(before)) return { setting: w.setting, before, wanted: before, status: 'ok', detail: 'already enough' };
    const wanted = w.value(before);
    if (!apply)
      return {
        setting: w.setting,
        before,
        wanted,
        status: 'low',
        detail: `sysctl -w ${w.setting}="${wanted.replace(/\t/, ' ')}"`,
      };
    try {
      writeFileSync(file, `${wanted}\n`);
      return { setting: w.setting, before, wanted, status: 'applied', detail: `was ${before.replace(/\s+/g, ' ')}` };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return {
        setting: w.setting,
        before,
        wanted,
        status: 'denied',
        detail: `${code}: run as root: sysctl -w ${w.setting}="${wanted.replace(/\t/, ' ')}"`,
      };
    }
  });
}
