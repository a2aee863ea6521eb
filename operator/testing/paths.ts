/** Paths for tests: the repository root, found from this compiled file's location. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

/** Absolute path of the repository root. */
export const REPO_ROOT = findRoot();
/** Absolute path of a file in the repository. */
export const repoPath = (...parts: string[]) => join(REPO_ROOT, ...parts);
