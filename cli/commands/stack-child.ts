/**
 * Shared by the commands that drive the local stack and the load engine as
 * child `arena` processes (`arena calibrate`, `arena bench`): run `arena ARGS` with its progress on stderr, bring a stack
 * up in a fresh temporary state directory, take it down again.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StartFailureError } from '../../lib/errors.js';
import type { StackState } from '../../loadtest/stack/state.js';

const ARENA = process.argv[1]!;

/** Run `arena ARGS` with stderr passed through (progress); resolves its exit code (3 when killed) and stdout. */
export function arenaChild(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [ARENA, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.on('close', (code) => res({ code: code ?? 3, out }));
  });
}

/**
 * `arena stack up -f FILE --free-ports` in a new temporary state directory
 * (mode 711: the servers run as the unprivileged user when arena runs as root).
 * @param apiEnv the API's environment (`--api-env KEY=VALUE` each).
 * @param who the command name for messages, e.g. 'arena calibrate'.
 * @returns the state directory and the stack's state.
 * @throws StartFailureError when the stack does not start (the directory is removed).
 */
export async function stackUpFresh(
  file: string,
  apiEnv: Record<string, string>,
  who: string,
  log: (line: string) => void,
): Promise<{ stateDir: string; state: StackState }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'arena-stack-'));
  chmodSync(stateDir, 0o711);
  const env = Object.entries(apiEnv).flatMap(([k, v]) => ['--api-env', `${k}=${v}`]);
  log(`arena stack up -f ${file} (${env.filter((_, i) => i % 2).join(' ') || 'default API settings'})`);
  const r = await arenaChild([
    'stack',
    'up',
    '-f',
    file,
    '--state-dir',
    stateDir,
    '--free-ports',
    ...env,
    '-o',
    'json',
  ]);
  if (r.code !== 0) {
    rmSync(stateDir, { recursive: true, force: true });
    throw new StartFailureError(`${who}: the stack of ${file} did not start (exit ${r.code}; see above)`);
  }
  return { stateDir, state: JSON.parse(r.out) as StackState };
}

/** `arena stack down --state-dir DIR`, then remove the directory. */
export function stackDownFresh(stateDir: string, log: (line: string) => void): void {
  log('arena stack down');
  spawnSync(process.execPath, [ARENA, 'stack', 'down', '--state-dir', stateDir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(stateDir, { recursive: true, force: true });
}
