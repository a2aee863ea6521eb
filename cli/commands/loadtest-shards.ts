/**
 * `arena loadtest run --shards N`: the run split over N processes on this
 * machine, each `arena loadtest run --shard i/N --start-at T` (the sharding a
 * Kubernetes Indexed Job of runners uses, issue 13), whose results the parent
 * merges exactly (loadtest/engine/merge.ts). The sampler runs in shard 0 only
 * (it measures the target, once).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { readResult } from '../../loadtest/engine/run.js';
import { StartFailureError } from '../../lib/errors.js';

/** How long after the parent's start the shards begin together, ms (they need ~1 s to start and get ready). */
export const SHARD_START_DELAY_MS = 3000;

/** Flags a shard must not inherit (they are set per shard), with whether they take a value. */
const PER_SHARD: Record<string, boolean> = {
  '--shards': true,
  '--shard': true,
  '--start-at': true,
  '--out': true,
  '-o': true,
  '--output': true,
  '-q': false,
  '--quiet': false,
};
/** Flags only shard 0 gets (the sampler). */
const FIRST_ONLY: Record<string, boolean> = { '--sample': true, '--sample-password-file': true };

/**
 * Split `arena loadtest run`'s arguments (argv after the script, starting
 * with `loadtest run`) into those every shard gets and the sampler's, which
 * only shard 0 gets. Handles `--flag value` and `--flag=value`.
 */
export function shardArgs(argv: readonly string[]): { common: string[]; first: string[] } {
  const common: string[] = [];
  const first: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.includes('=') && a.startsWith('--') ? a.slice(0, a.indexOf('=')) : a;
    const inline = name !== a;
    const table = name in PER_SHARD ? PER_SHARD : name in FIRST_ONLY ? FIRST_ONLY : null;
    if (!table) {
      common.push(a);
      continue;
    }
    const takesValue = table[name]!;
    const taken = takesValue && !inline ? [a, argv[++i]!] : [a];
    if (table === FIRST_ONLY) first.push(...taken);
  }
  return { common, first };
}

/**
 * Run the N shards as child processes of this arena and read their results.
 * Progress: one line per shard as it ends; a shard that fails names itself
 * with its last error line.
 * @throws StartFailureError when a shard exits 2 or 3, or writes no result.
 */
export async function runShardProcesses(
  args: { common: string[]; first: string[] },
  n: number,
  startAt: number,
  outDir: string,
): Promise<LoadTestResult[]> {
  const ignore = () => undefined; // the shards get the signal too and write partial results; wait for them
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  try {
    const runs = Array.from({ length: n }, (_, i) => {
      const dir = join(outDir, 'shards', `shard-${i}`);
      const argv = [...args.common, ...(i === 0 ? args.first : [])];
      argv.push('--shard', `${i}/${n}`, '--start-at', String(startAt), '--out', dir, '-o', 'json', '-q');
      return new Promise<{ i: number; code: number; err: string; dir: string }>((resolve) => {
        const child = spawn(process.execPath, [process.argv[1]!, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c));
        child.on('close', (code) => {
          process.stderr.write(`[loadtest] shard ${i}/${n}: exit ${code ?? 'signal'}\n`);
          resolve({ i, code: code ?? 3, err, dir });
        });
      });
    });
    const done = await Promise.all(runs);
    return done.map((d) => {
      const last =
        d.err
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('arena'))
          .at(-1) ??
        d.err.trim().split('\n').at(-1) ??
        '';
      if (d.code !== 0 && d.code !== 1)
        throw new StartFailureError(`shard ${d.i}/${n} failed (exit ${d.code}): ${last}`);
      try {
        return readResult(join(d.dir, 'result.json'));
      } catch (e) {
        throw new StartFailureError(`shard ${d.i}/${n} left no result: ${(e as Error).message}`);
      }
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
  }
}
